"""The simulator as one async object: model + server + faults + ground truth, paced by a rate.

Usage (tests of later issues start it in-process)::

    async with Simulator(SimConfig(markets=50, rate=2000, seed=7, record=True)) as sim:
        headers = sim.client_key.headers()           # signed for GET /trade-api/ws/v2
        async with websockets.connect(sim.ws_url, additional_headers=headers) as ws: ...
        sim.faults.drop_next(sid=1)                  # one-shot, deterministic faults
        sim.ground_truth.frames(conn=1)              # exact texts sent (needs record=True)

With ``rate=0`` nothing moves until ``await sim.step(n)``, which makes runs fully deterministic.
Pacing: the generator produces ``rate`` messages per second in batches of at most ``max_batch`` and
hands each batch to every connection in one write; if it falls more than a second behind (slow clients
or CPU), it does not try to catch up in a burst.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType

from cryptography.hazmat.primitives.asymmetric import rsa

from ssmd.kalshi.auth import KeyRing, auth_headers, generate_private_key, private_key_pem
from ssmd.kalshi.protocol import REST_PREFIX, WS_PATH
from ssmd.sim.config import SimConfig
from ssmd.sim.faults import Faults
from ssmd.sim.groundtruth import GroundTruth
from ssmd.sim.model import Clock, MarketModel
from ssmd.sim.render import Out
from ssmd.sim.server import Server

log = logging.getLogger("ssmd.sim")


def _report_crash(task: asyncio.Task[None]) -> None:
    """A background task that dies is a simulator bug: say so loudly rather than go quiet."""
    if not task.cancelled() and task.exception() is not None:
        log.error("simulator task %s crashed", task.get_name(), exc_info=task.exception())


@dataclass(frozen=True)
class ClientKey:
    """The API key the simulator generated for its clients (when none was registered)."""

    key_id: str
    private_key: rsa.RSAPrivateKey
    path: Path | None = None
    """Where the private key PEM was written (mode 0600), if it was."""

    def headers(self, method: str = "GET", path: str = WS_PATH) -> dict[str, str]:
        return auth_headers(self.key_id, self.private_key, method, path)


class Simulator:
    def __init__(self, config: SimConfig | None = None, *, clock: Clock = time.time_ns,
                 key_path: Path | None = None) -> None:
        """``key_path``: where to write a generated private key (only used when no key is registered)."""
        self.config = config = config or SimConfig()
        config.validate()
        self.model = MarketModel(markets=config.markets, seed=config.seed, subpenny=config.faults.subpenny,
                                 lifecycle_prob=config.lifecycle_prob, legacy=config.legacy_format, clock=clock)
        self.faults = Faults(config.faults, config.seed)
        self.ground_truth = GroundTruth(memory=config.record, directory=config.record_dir)
        keys = dict(config.keys)
        self.client_key: ClientKey | None = None
        if not keys:
            private = generate_private_key()
            if key_path is not None:
                key_path.parent.mkdir(parents=True, exist_ok=True)
                key_path.touch(mode=0o600)
                key_path.chmod(0o600)
                key_path.write_bytes(private_key_pem(private))
            self.client_key = ClientKey(str(uuid.uuid4()), private, key_path)
            keys[self.client_key.key_id] = private.public_key()
        self.keys = KeyRing(keys)
        self.server = Server(config, self.model, self.faults, self.ground_truth, self.keys)
        self.faults.hooks = self.server
        self.rate = config.rate
        self.produced = 0
        self._tasks: list[asyncio.Task[None]] = []

    @property
    def ws_url(self) -> str:
        return f"ws://{self.config.host}:{self.server.port}{WS_PATH}"

    @property
    def rest_url(self) -> str:
        return f"http://{self.config.host}:{self.server.port}{REST_PREFIX}"

    async def start(self) -> None:
        if self.ground_truth.enabled:
            self.ground_truth.open(self.model.market_list)
            self.model.on_change = self.ground_truth.on_book
        await self.server.start()
        self._tasks.append(asyncio.create_task(self._generate(), name="sim-generate"))
        c = self.config.faults
        if c.close_abrupt or c.close_frame:
            self._tasks.append(asyncio.create_task(self._periodic_closes(), name="sim-closes"))
        for task in self._tasks:
            task.add_done_callback(_report_crash)

    async def stop(self) -> None:
        """Stop producing, close connections (1001), stop the server, flush the ground-truth files."""
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks.clear()
        await self.server.stop()
        self.ground_truth.close()

    async def __aenter__(self) -> Simulator:
        await self.start()
        return self

    async def __aexit__(self, et: type[BaseException] | None, e: BaseException | None,
                        tb: TracebackType | None) -> None:
        await self.stop()

    async def step(self, steps: int = 1) -> list[Out]:
        """Run ``steps`` model steps now, deliver their messages and write them; returns the messages."""
        outs: list[Out] = []
        for _ in range(steps):
            outs.extend(self.model.step())
        await self._deliver(outs)
        return outs

    async def flush(self) -> None:
        """Write whatever is queued on every connection (e.g. after arming a fault that sends)."""
        for session in self.server.sessions():
            await self.server.flush(session)

    async def _deliver(self, outs: list[Out]) -> None:
        self.produced += len(outs)
        for session in self.server.sessions():
            session.deliver(outs)
        await self.flush()

    async def _generate(self) -> None:
        loop = asyncio.get_running_loop()
        step, max_batch = self.model.step, self.config.max_batch
        start, done, rate = loop.time(), 0, self.rate
        while True:
            if self.rate != rate or self.rate <= 0:
                rate = self.rate
                start, done = loop.time(), 0
                if rate <= 0:
                    await asyncio.sleep(0.05)
                    continue
            elapsed = loop.time() - start
            due = int(elapsed * rate) - done
            if due <= 0:
                await asyncio.sleep(min(0.05, (done + 1) / rate - elapsed))
                continue
            if due > rate:  # more than a second behind: resume the pace from here, no burst
                start, done, due = loop.time() - max_batch / rate, 0, max_batch
            outs: list[Out] = []
            while len(outs) < min(due, max_batch):
                batch = step()
                if not batch:
                    done += 1  # a silent step (a market closing) still counts, so pacing progresses
                outs.extend(batch)
            done += len(outs)
            await self._deliver(outs)
            await asyncio.sleep(0)  # let commands and REST requests in between batches

    async def _periodic_closes(self) -> None:
        c = self.config.faults
        period, abrupt = (c.close_abrupt, True) if c.close_abrupt else (c.close_frame, False)
        while True:
            await asyncio.sleep(period)
            self.faults.close_all(abrupt=abrupt)
            if c.refuse:
                self.faults.refuse_connections(c.refuse)
