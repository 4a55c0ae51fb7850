"""The embedded servers start on free ports, answer their real protocols, and are stopped."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import nats
import pytest
import redis

from ssmd.devstack import DevStack, EmbeddedServer, NatsServer, ValkeyServer
from ssmd.errors import ServerError


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie still answers kill(0); it is gone for our purposes once its state is Z.
    try:
        return Path(f"/proc/{pid}/stat").read_text().split()[2] != "Z"
    except OSError:
        return False


def test_devstack_serves_jetstream_and_redis(tmp_path: Path) -> None:
    with DevStack(tmp_path) as stack:
        pids = [stack.nats.proc.pid, stack.valkey.proc.pid]  # type: ignore[union-attr]

        async def use_nats() -> int:
            nc = await nats.connect(stack.nats.url)
            js = nc.jetstream()
            await js.add_stream(name="probe", subjects=["probe.>"])
            ack = await js.publish("probe.x", b"hello")
            await nc.close()
            return ack.seq

        assert asyncio.run(use_nats()) == 1
        client = redis.Redis.from_url(stack.valkey.url)
        client.set("k", "v")
        assert client.get("k") == b"v"
        client.close()
    assert not any(_alive(p) for p in pids)


def test_given_store_dir_persists_streams(tmp_path: Path) -> None:
    async def count_streams(url: str, create: bool) -> int:
        nc = await nats.connect(url)
        js = nc.jetstream()
        if create:
            await js.add_stream(name="keep", subjects=["keep.>"])
            await js.publish("keep.a", b"1")
        names = await js.streams_info()
        await nc.close()
        return len(names)

    with NatsServer(data_dir=tmp_path) as server:
        asyncio.run(count_streams(server.url, create=True))
    with NatsServer(data_dir=tmp_path) as server:
        assert asyncio.run(count_streams(server.url, create=False)) == 1


def test_servers_die_with_a_killed_parent(tmp_path: Path) -> None:
    """Even kill -9 of the process that started them leaves no server running."""
    code = (
        "import sys, time\n"
        "from ssmd.devstack import DevStack\n"
        f"s = DevStack({str(tmp_path)!r}).start()\n"
        "print(s.nats.proc.pid, s.valkey.proc.pid, flush=True)\n"
        "time.sleep(60)\n"
    )
    parent = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    assert parent.stdout is not None
    pids = [int(p) for p in parent.stdout.readline().split()]
    assert len(pids) == 2 and all(_alive(p) for p in pids)
    parent.send_signal(signal.SIGKILL)
    parent.wait()
    deadline = time.monotonic() + 10
    while any(_alive(p) for p in pids) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not any(_alive(p) for p in pids)


@pytest.mark.parametrize("kind", [NatsServer, ValkeyServer])
def test_a_port_another_server_holds_is_not_taken_for_ours(kind: type[EmbeddedServer], tmp_path: Path) -> None:
    """The ready check knows its own server: one already on the port (the picked port taken between the
    pick and the bind) answers too, but is not the one just started, which is refused instead."""
    with kind(data_dir=tmp_path / "first") as first:
        second = kind(port=first.port, data_dir=tmp_path / "second")
        with pytest.raises(ServerError, match="did not become ready"):
            second.start()
        assert first.running and not second.running
