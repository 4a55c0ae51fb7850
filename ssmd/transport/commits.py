"""A Faust consumer whose commit, asked for while another commit runs, commits again after it.

Faust 0.15.3 runs one commit at a time: a caller that finds a commit in flight waits for it and returns
without committing (``Consumer.commit`` -> ``maybe_wait_for_commit_to_finish``). That in-flight commit
took its offsets before the caller's events were acknowledged, so those were left uncommitted: a clean
stop whose final commit met the periodic one resumed one commit interval early after a restart, and
handled those events again. Here a caller that had to wait then makes its own commit, which covers
everything acknowledged so far. Both transports' consumers inherit this.
"""

from __future__ import annotations

from collections.abc import Set

from faust.transport import consumer as base
from faust.types import TP


class CommitsAfterWaiting(base.Consumer):
    async def commit(self, topics: Set[str | TP] | None = None, start_new_transaction: bool = True) -> bool:
        """Commit every acknowledged offset (of ``topics``), after any commit already running."""
        while self._commit_fut is not None:
            await self.maybe_wait_for_commit_to_finish()
        # No await between the loop's check and Faust's own: this call starts a commit of its own.
        return await super().commit(topics, start_new_transaction=start_new_transaction)
