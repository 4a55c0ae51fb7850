"""The ``nats://`` Faust transport: ``faust.App(..., broker="nats://a:4222;b:4222")``.

Registered in the ``faust.transports`` entry-point group as ``nats`` (pyproject.toml). Settings:
:mod:`ssmd.transport.options`; names on the server: :mod:`ssmd.transport.naming`.
Not supported: ``processing_guarantee="exactly_once"`` (transactions), ``producer_threaded``,
topic patterns.
"""

from __future__ import annotations

import asyncio
from typing import Any, ClassVar

from faust.transport import base
from faust.types import AppT
from nats.aio.client import __version__ as nats_py_version
from yarl import URL

from ssmd.errors import ConfigError

from .consumer import Consumer
from .options import NatsOptions, resolve
from .producer import Producer
from .topology import Topology, topology_of


class Transport(base.Transport):
    """JetStream-backed Faust transport."""

    Consumer: ClassVar[type[Any]] = Consumer
    Producer: ClassVar[type[Any]] = Producer
    driver_version = f"ssmd-nats (nats-py {nats_py_version})"

    def __init__(self, url: list[URL], app: AppT, loop: asyncio.AbstractEventLoop | None = None) -> None:
        super().__init__(url, app, loop=loop)
        if getattr(app.conf.processing_guarantee, "value", None) == "exactly_once":
            msg = "the nats:// transport is at-least-once; processing_guarantee='exactly_once' is unsupported"
            raise ConfigError(msg)
        if app.conf.producer_threaded:
            msg = "the nats:// transport does not support producer_threaded=True"
            raise ConfigError(msg)
        self.options: NatsOptions = resolve(url, default_name=app.conf.id)
        self.topology: Topology = topology_of(app, self.options)
