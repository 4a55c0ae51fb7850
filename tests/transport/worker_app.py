"""A small Faust app run as a real worker process by the multi-worker tests.

Usage: ``python worker_app.py NATS_URL APP_ID``. The ``relay`` agent counts inputs per key in a
table and writes ``"<value>:<pid>:<count>"`` to topic ``out``; a leader-only timer writes this
worker's pid to topic ``ticks``.
"""

from __future__ import annotations

import os
import sys
from typing import Any

import faust

URL, APP_ID = sys.argv[1], sys.argv[2]
PID = os.getpid()
PARTITIONS = 6  # with 4, Faust's sticky assignor leaves a third worker idle (ceil(4/3) = 2 each)

app = faust.App(APP_ID, broker=URL, store="memory://", web_enabled=False, broker_commit_interval=0.2,
                datadir=os.environ.get("TEST_DATADIR", "."),
                topic_partitions=PARTITIONS)
source = app.topic("in", key_type=str, value_type=int, partitions=PARTITIONS)
out = app.topic("out", key_type=str, value_type=str, partitions=PARTITIONS)
ticks = app.topic("ticks", value_type=int, partitions=1)
counts = app.Table("counts", default=int, partitions=PARTITIONS)


@app.agent(source)
async def relay(stream: Any) -> None:
    async for key, value in stream.items():
        counts[key] += 1
        await out.send(key=key, value=f"{value}:{PID}:{counts[key]}")


@app.timer(0.2, on_leader=True)
async def tick() -> None:
    await ticks.maybe_declare()  # a topic only sent to must be declared to get its partitions
    await ticks.send(value=PID)


if __name__ == "__main__":
    faust.Worker(app, loglevel="info", quiet=True).execute_from_commandline()
