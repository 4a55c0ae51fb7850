"""The ssmd command line: subcommands listed, errors as one line, demo stops cleanly on Ctrl-C."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from ssmd.cli import COMMANDS, PENDING, main


def _ssmd(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "ssmd.cli", *args], capture_output=True, text=True, timeout=60, env=env
    )


def test_help_lists_every_subcommand() -> None:
    out = _ssmd("--help")
    assert out.returncode == 0
    for name in ["worker", "gateway", "sim", "replay", "env", "archive", "demo", "dev"]:
        assert f"    {name} " in out.stdout
    assert set(COMMANDS) | set(PENDING) >= {"worker", "gateway", "sim", "replay", "env", "archive", "demo", "dev"}


@pytest.mark.parametrize("name", sorted(PENDING))
def test_unbuilt_commands_say_so(name: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main([name]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith(f"ssmd: error: 'ssmd {name}' is not built yet")
    assert "\n" not in err


def test_bad_setting_is_one_line_not_a_traceback() -> None:
    env = {**os.environ, "SSMD_ENV": "Not Valid"}
    out = _ssmd("demo", env=env)
    assert out.returncode == 2
    assert out.stderr.strip().splitlines() == [
        "ssmd: error: invalid SSMD_ENV='Not Valid': invalid environment name 'Not Valid': use 1-64 "
        "lowercase letters, digits and '-', starting and ending with a letter or digit (e.g. 'kalshi-dev')"
    ]


def test_unknown_argument_is_a_usage_error() -> None:
    out = _ssmd("demo", "--no-such-flag")
    assert out.returncode == 2 and "unrecognized arguments: --no-such-flag" in out.stderr


def _kill_tree(proc: subprocess.Popen[str]) -> None:
    """On a failed test, leave nothing running: the process and its children."""
    if proc.poll() is None:
        for pid in _children(proc.pid):
            subprocess.run(["kill", "-9", pid], check=False)
        proc.kill()
        proc.wait()


def _children(pid: int) -> list[str]:
    return subprocess.run(["pgrep", "-P", str(pid)], capture_output=True, text=True).stdout.split()


def _gone(pid: str) -> bool:
    return not Path(f"/proc/{pid}").exists() or Path(f"/proc/{pid}/stat").read_text().split()[2] == "Z"


def _read_until(proc: subprocess.Popen[str], marker: str, within: float) -> str:
    assert proc.stdout is not None
    lines: list[str] = []
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        if not line:
            break
        lines.append(line)
        if marker in line:
            break
    return "".join(lines)


def test_dev_up_runs_until_ctrl_c(tmp_path: Path) -> None:
    proc = subprocess.Popen(
        [sys.executable, "-m", "ssmd.cli", "dev", "up", "--data-dir", str(tmp_path / "data")],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        text = _read_until(proc, "Ctrl-C stops", 30)
        assert "nats://127.0.0.1:" in text and "redis://127.0.0.1:" in text, text
        children = _children(proc.pid)
        assert len(children) == 2
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=20) == 0
        time.sleep(0.2)
        assert all(_gone(pid) for pid in children)
    finally:
        _kill_tree(proc)


def test_demo_runs_the_pipeline_until_ctrl_c(tmp_path: Path) -> None:
    proc = subprocess.Popen(
        [sys.executable, "-m", "ssmd.cli", "demo", "--data-dir", str(tmp_path / "data"), "--report-every", "1",
         "--markets", "5", "--store-url", f"file://{tmp_path / 'store'}"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        text = _read_until(proc, "Ctrl-C stops", 60)
        assert "nats://127.0.0.1:" in text and "simulator ws://127.0.0.1:" in text, text
        status = ""
        for _ in range(40):
            status = _read_until(proc, "streams:", 5)
            if "markets in Redis" in status and " 0 markets" not in status:
                break
        assert "kalshi_raw" in status and "markets in Redis" in status and " 0 markets" not in status, status
        children = _children(proc.pid)
        assert len(children) == 6  # nats-server, valkey-server, the simulator, three workers
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=60) == 0
        time.sleep(0.2)
        assert all(_gone(pid) for pid in children)
        # Stopping uploads what is pending: both archives and their manifests are in the store.
        manifests = sorted(str(p.relative_to(tmp_path / "store")) for p in (tmp_path / "store").rglob("manifest.json"))
        assert any(m.startswith("ssmd-raw/kalshi-dev/kalshi/") for m in manifests), manifests
        assert any(m.startswith("ssmd-normalized/kalshi-dev/kalshi/v1/") for m in manifests), manifests
    finally:
        _kill_tree(proc)
