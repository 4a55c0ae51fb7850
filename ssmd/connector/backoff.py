"""Capped, jittered exponential backoff (the nats.py ``reconnect_time_wait[_max]`` + jitter shape)."""

from __future__ import annotations

import random
from dataclasses import dataclass, field


@dataclass
class Backoff:
    """Delay before retry ``n`` (0-based): ``min(cap, initial * factor**n)`` scaled by a random factor
    in ``[1 - jitter, 1]`` so that many clients retrying together spread out."""

    initial: float = 0.5
    cap: float = 30.0
    factor: float = 2.0
    jitter: float = 0.5
    attempt: int = 0
    _rng: random.Random = field(default_factory=random.Random, repr=False)

    def next(self) -> float:
        """The next delay; each call advances the attempt counter."""
        base = min(self.cap, self.initial * self.factor ** min(self.attempt, 64))
        self.attempt += 1
        return base * (1.0 - self.jitter * self._rng.random())

    def reset(self) -> None:
        self.attempt = 0
