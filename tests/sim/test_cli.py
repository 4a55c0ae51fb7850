"""``ssmd sim`` as a process: prints its URLs and key, serves signed clients, stops cleanly on SIGTERM."""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import httpx
import pytest
from websockets.asyncio.client import connect

from ssmd.commands import sim as sim_command
from ssmd.errors import ConfigError
from ssmd.kalshi.auth import auth_headers, generate_private_key, load_private_key, public_key_pem

ROOT = Path(__file__).resolve().parents[2]


def parse(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    sim_command.add_arguments(parser)
    return parser.parse_args(argv)


async def test_sim_process_prints_settings_serves_and_stops_on_sigterm(tmp_path: Path) -> None:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "ssmd.cli", "sim", "--port", "0", "--markets", "5", "--rate", "50", "--seed", "4",
        "--private-key-out", str(tmp_path / "k.pem"), "--record", str(tmp_path / "truth"),
        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, env=env,
    )
    try:
        assert proc.stdout is not None
        lines = [(await asyncio.wait_for(proc.stdout.readline(), 30)).decode() for _ in range(4)]
        settings = dict(line.strip().split("=", 1) for line in lines)
        assert settings["SSMD_KALSHI_WS_URL"].startswith("ws://127.0.0.1:")
        assert settings["SSMD_KALSHI_WS_URL"].endswith("/trade-api/ws/v2")
        assert settings["SSMD_KALSHI_REST_URL"].endswith("/trade-api/v2")
        assert settings["SSMD_KALSHI_PRIVATE_KEY"] == str(tmp_path / "k.pem")
        key = load_private_key(Path(settings["SSMD_KALSHI_PRIVATE_KEY"]))
        headers = auth_headers(settings["SSMD_KALSHI_KEY_ID"], key, "GET", "/trade-api/ws/v2")
        async with connect(settings["SSMD_KALSHI_WS_URL"], additional_headers=headers) as ws:
            await ws.send(json.dumps({"id": 1, "cmd": "subscribe", "params": {"channels": ["ticker"]}}))
            assert json.loads(await ws.recv())["type"] == "subscribed"
            assert json.loads(await ws.recv())["type"] == "ticker"
        async with httpx.AsyncClient() as http:
            markets = (await http.get(settings["SSMD_KALSHI_REST_URL"] + "/markets")).json()["markets"]
        assert len(markets) == 5
        proc.send_signal(signal.SIGTERM)
        assert await asyncio.wait_for(proc.wait(), 10) == 0
        assert (tmp_path / "truth" / "frames.jsonl").read_text().count('"type\\":\\"ticker\\"') >= 1
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()


def test_bad_arguments_are_one_line_errors_with_exit_2() -> None:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    result = subprocess.run([sys.executable, "-m", "ssmd.cli", "sim", "--fault", "warp=9"], env=env,
                            capture_output=True, text=True, timeout=60, check=False)
    assert result.returncode == 2
    assert len(result.stderr.strip().splitlines()) == 1 and "unknown fault 'warp'" in result.stderr


def test_registered_keys_and_bad_arguments(tmp_path: Path) -> None:
    public = tmp_path / "pub.pem"
    public.write_bytes(public_key_pem(generate_private_key().public_key()))
    config = sim_command.build_config(parse("--api-key-id", "k1", "--public-key", str(public),
                                            "--fault", "drop_seq=0.01", "--legacy-format"))
    assert set(config.keys) == {"k1"} and config.faults.drop_seq == 0.01 and config.legacy_format
    for argv, message in (
        (("--api-key-id", "k1"), "come in pairs"),
        (("--api-key-id", "k1", "--public-key", str(tmp_path / "missing.pem")), "No such file"),
        (("--api-key-id", "k1", "--public-key", str(tmp_path)), "--public-key"),
        (("--fault", "warp=1"), "unknown fault"),
        (("--markets", "0"), "markets must be >= 1"),
        (("--rate", "-5"), "rate must be >= 0"),
        (("--legacy-format", "--fault", "subpenny=0.5"), "legacy"),
    ):
        with pytest.raises(ConfigError, match=message):
            sim_command.build_config(parse(*argv))
