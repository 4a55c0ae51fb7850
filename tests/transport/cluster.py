"""Driving real worker processes (``worker_app.py``) and reading their topics from the test."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from nats.aio.client import Client as NATS
from nats.aio.msg import Msg
from nats.js.errors import NotFoundError

from ssmd.transport import envelope, keys, naming

WORKER = Path(__file__).with_name("worker_app.py")


class Worker:
    """One ``worker_app.py`` process; its log goes to ``log_dir``."""

    def __init__(self, url: str, app_id: str, log_dir: Path, name: str, *, fast: bool = True) -> None:
        self.log = log_dir / f"{name}.log"
        env = {**os.environ, "TEST_DATADIR": str(log_dir / f"{name}-data")}
        if fast:  # short group timings so tests take seconds; the defaults are 1 s and 6 s
            env.update(SSMD_NATS_HEARTBEAT="0.3", SSMD_NATS_SESSION_TIMEOUT="2")
        with self.log.open("wb") as fh:
            self.proc = subprocess.Popen([sys.executable, str(WORKER), url, app_id], stdout=fh,
                                         stderr=subprocess.STDOUT, env=env)

    @property
    def pid(self) -> int:
        return self.proc.pid

    def kill(self) -> None:
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(5)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.kill()


class Topic:
    """Collects every message of a Faust topic's stream as it arrives."""

    def __init__(self, nc: NATS, topic: str) -> None:
        self.nc = nc
        self.topic = topic
        self.values: list[str] = []

    async def start(self) -> None:
        js = self.nc.jetstream()
        await wait_stream(js, self.topic)

        async def on_msg(msg: Msg) -> None:
            self.values.append(str(json.loads(msg.data)))

        await js.subscribe(f"{naming.topic_subject_base(self.topic)}.>", cb=on_msg, ordered_consumer=True)


async def wait_stream(js: object, topic: str, within: float = 30.0) -> None:
    deadline = time.monotonic() + within
    while True:
        try:
            await js.stream_info(naming.stream_name(topic))  # type: ignore[attr-defined]
            return
        except NotFoundError:
            if time.monotonic() > deadline:
                raise
            await asyncio.sleep(0.1)


async def send_inputs(nc: NATS, values: range, partitions: int = 6, topic: str = "in") -> None:
    """Publish ``values`` to the workers' input topic as Faust would (key ``k<v % 8>``)."""
    js = nc.jetstream()
    await wait_stream(js, topic)
    for v in values:
        key = f"k{v % 8}".encode()
        p = keys.partition_for(key, partitions)
        headers = envelope.encode_headers(key, str(v).encode(), time.time(), None, f"test-{v}")
        await js.publish(f"{naming.partition_subject(topic, p)}", str(v).encode(), headers=headers)
