"""Validate a Cap'n Proto schema file without risking the calling process.

pycapnp aborts the whole process (SIGABRT, no Python exception) when ``capnp.load`` meets a schema
error. So before a process loads a schema it checks it here, in a child Python process running the
same pycapnp: a broken schema then costs the child, and the caller gets a :class:`SchemaError`
carrying the compiler's message.

The check costs one interpreter start (~0.1 s). A success is remembered in a marker file named by
the schema's SHA-256 and the pycapnp version (under ``$XDG_CACHE_HOME/ssmd`` or ``~/.cache/ssmd``),
so each distinct schema is checked once per machine, not once per process (the temp directory
stands in when there is no home). If the directory is not writable the check runs every time.
The fingerprint covers the one file, so a schema checked this way must not import other files.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import tempfile
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

from ssmd.errors import SsmdError

_CHECK_TIMEOUT_S = 60.0
_LOAD_SCRIPT = "import sys, capnp; capnp.load(sys.argv[1])"


class SchemaError(SsmdError):
    """A Cap'n Proto schema file does not compile; ``path`` names it."""

    def __init__(self, message: str, *, path: Path) -> None:
        super().__init__(message)
        self.path = path


def check_schema(path: Path) -> None:
    """Compile ``path`` with pycapnp in a child process; SchemaError (never an abort) if it fails."""
    try:
        proc = subprocess.run(
            [sys.executable, "-c", _LOAD_SCRIPT, str(path)],
            capture_output=True,
            text=True,
            timeout=_CHECK_TIMEOUT_S,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired) as e:
        msg = f"could not check schema {path}: {e}"
        raise SchemaError(msg, path=path) from e
    if proc.returncode != 0:
        msg = f"schema {path} does not compile: {_compiler_message(proc.stderr)}"
        raise SchemaError(msg, path=path)


def ensure_valid(path: Path) -> None:
    """Like :func:`check_schema`, but skip the child process if this exact schema passed before."""
    try:
        text = path.read_bytes()
    except OSError as e:
        msg = f"cannot read schema {path}: {e}"
        raise SchemaError(msg, path=path) from e
    marker = _cache_dir() / f"schema-ok-{_fingerprint(text)}"
    if marker.exists():
        return
    check_schema(path)
    try:
        marker.parent.mkdir(parents=True, exist_ok=True)
        marker.touch()
    except OSError:
        pass  # an unwritable cache only costs a re-check next time


def _fingerprint(schema_text: bytes) -> str:
    try:
        pycapnp = version("pycapnp")
    except PackageNotFoundError:
        pycapnp = "unknown"
    digest = hashlib.sha256(schema_text + b"\0pycapnp " + pycapnp.encode()).hexdigest()
    return digest[:32]


def _cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME")
    if not base:
        try:
            base = str(Path.home() / ".cache")
        except RuntimeError:  # no home directory (some containers): remember nothing
            base = tempfile.gettempdir()
    return Path(base) / "ssmd"


def _compiler_message(stderr: str) -> str:
    # kj prints the failing node and the error itself; the last non-empty lines say what is wrong.
    lines = [line.strip() for line in stderr.splitlines() if line.strip()]
    return " | ".join(lines[-3:]) if lines else "the compiler aborted without a message"
