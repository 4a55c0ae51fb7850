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


@pytest.mark.parametrize("argv", [["demo"], ["dev", "up"]])
def test_embedded_stack_runs_until_ctrl_c(argv: list[str], tmp_path: Path) -> None:
    proc = subprocess.Popen(
        [sys.executable, "-m", "ssmd.cli", *argv, "--data-dir", str(tmp_path / "data")],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None
    lines: list[str] = []
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        if not line:
            break
        lines.append(line)
        if "Ctrl-C stops" in line:
            break
    text = "".join(lines)
    assert "nats://127.0.0.1:" in text and "redis://127.0.0.1:" in text, text
    children = subprocess.run(["pgrep", "-P", str(proc.pid)], capture_output=True, text=True).stdout.split()
    assert len(children) == 2
    proc.send_signal(signal.SIGINT)
    assert proc.wait(timeout=20) == 0
    time.sleep(0.2)
    for pid in children:
        assert not Path(f"/proc/{pid}").exists() or Path(f"/proc/{pid}/stat").read_text().split()[2] == "Z"
