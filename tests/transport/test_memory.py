"""The in-memory transport: fast agent tests without a server, restart within the process."""

from __future__ import annotations

from typing import Any

from transport_helpers import make_app, running, wait_for

from ssmd.transport import memory


def _app(sink: list[str]) -> tuple[Any, Any, Any]:
    app = make_app("mem", "memory://restart")
    words = app.topic("words", key_type=str, value_type=str, partitions=2)
    counts = app.Table("word-counts", default=int, partitions=2)

    @app.agent(words)
    async def count(stream: Any) -> None:
        async for word in stream:
            counts[word] += 1
            sink.append(word)

    return app, words, counts


async def test_memory_worker_commits_and_recovers_tables_across_restarts() -> None:
    memory.reset("restart")
    seen: list[str] = []
    app, words, counts = _app(seen)
    async with running(app):
        for w in ["a", "b", "a", "c", "a"]:
            await words.send(key=w, value=w)
        await wait_for(lambda: len(seen) == 5, what="5 words")
        assert (counts["a"], counts["b"], counts["c"]) == (3, 1, 1)
    seen2: list[str] = []
    app2, words2, counts2 = _app(seen2)
    async with running(app2):
        assert (counts2["a"], counts2["b"], counts2["c"]) == (3, 1, 1)  # restored from the changelog
        await words2.send(key="b", value="b")
        await wait_for(lambda: len(seen2) == 1, what="one new word")
        assert seen2 == ["b"] and counts2["b"] == 2  # resumed after the committed offset
    memory.reset("restart")
