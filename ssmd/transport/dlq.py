"""A Faust ``Topic`` class that sets undecodable messages aside instead of crashing the agent, and
sends pre-encoded values without Faust's per-send machinery (:meth:`Topic.send_value`).

Faust's default reaction to a key or value that cannot be deserialized is to raise the error
inside the agent. Apps that use ``faust.App(..., Topic="ssmd.transport.dlq:Topic")`` (or create
topics with this class) get instead: the message is logged, counted (``Topic.dead_letters``, per
topic name) and published unchanged to the app's dead-letter subject
``faust-dlq.<app id>.<topic>`` (stream ``FAUST_DLQ``; headers ``Ssmd-Topic``, ``Ssmd-Partition``,
``Ssmd-Offset``, ``Ssmd-Error``), and the agent goes on with the next message. Faust has already
acknowledged the message, so its offset is committed normally.
"""

from __future__ import annotations

import asyncio
import logging
from collections import Counter
from typing import Any, ClassVar, cast

import faust
from faust.types import Message, RecordMetadata

log = logging.getLogger(__name__)


class Topic(faust.Topic):
    """``faust.Topic`` whose decode errors go to the dead-letter subject."""

    dead_letters: ClassVar[Counter[str]] = Counter()

    async def send_value(self, value: bytes, partition: int) -> asyncio.Future[RecordMetadata]:
        """Send ``value``, already serialized, to ``partition``; the future resolves once it is stored.

        The message is the one ``send(value=value, partition=partition)`` sends with the raw serializers
        and no key (the producer gives it the same time and message id), straight through the producer:
        without Faust's send machinery (a ``FutureMessage``, its channel, callbacks and sensors), which
        cost more than the producer's own work, once per batch sent on the capture path.
        """
        sent = await self.app.producer.send(self.get_topic_name(), None, value, partition, None, None)
        return cast("asyncio.Future[RecordMetadata]", sent)  # both ssmd transports return a future

    async def on_key_decode_error(self, exc: Exception, message: Message) -> None:
        await self._dead_letter(exc, message)

    async def on_value_decode_error(self, exc: Exception, message: Message) -> None:
        await self._dead_letter(exc, message)

    async def _dead_letter(self, exc: Exception, message: Message) -> None:
        Topic.dead_letters[message.topic] += 1
        log.warning("undecodable message %s[%d]@%d set aside: %s", message.topic, message.partition,
                    message.offset, exc)
        producer: Any = self.app.producer
        sink = getattr(producer, "dead_letter", None)
        if sink is None:
            return
        try:
            await sink(message.topic, message.partition, message.offset, message.key, message.value, str(exc))
        except Exception:
            log.exception("could not publish a dead letter for %s@%d", message.topic, message.offset)
