"""Ranges of an agent's input stream removed (retention, a purge) before the agent read them.

The ``nats://`` consumer finds them (:meth:`ssmd.transport.consumer.Consumer.take_holes`); an agent that
keeps state from its input, or archives it, asks for them with each event and records a ``bus`` gap.
"""

from __future__ import annotations

import logging
from typing import Any

from faust.types import TP

from ssmd.transport import naming

log = logging.getLogger("ssmd.agents.holes")


class StreamHoles:
    """The holes of one input topic, per partition. Build it in the agent (the app's consumer exists then)."""

    def __init__(self, app: Any, topic: str) -> None:
        self._take = getattr(app.consumer, "take_holes", None)  # nats:// only: memory:// loses nothing
        self.topic = topic
        self.stream = naming.stream_name(topic)

    def take(self, partition: int, consequence: str) -> list[tuple[int, int]]:
        """The ranges ``(first, end)`` of ``partition`` found since the last call, each logged with ``consequence``."""
        holes: list[tuple[int, int]] = self._take(TP(self.topic, partition)) if self._take is not None else []
        for first, end in holes:
            log.warning("%s partition %d: stream sequences %d..%d were removed before they were read; %s",
                        self.topic, partition, first, end - 1, consequence)  # fmt: skip
        return holes
