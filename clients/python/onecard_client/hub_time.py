"""The hub's business clock, as seen from a terminal (from TerminalService.GetClock)."""

from __future__ import annotations

import time
from dataclasses import dataclass


@dataclass(frozen=True)
class HubTime:
    """Hub time = `base_ms` + (local now − `local_base_ms`) × `speed`."""

    base_ms: int
    local_base_ms: int
    speed: float = 1.0

    @classmethod
    def from_clock(cls, now_ms: int, speed: float = 1.0) -> HubTime:
        return cls(now_ms, time.time_ns() // 1_000_000, speed)

    def now_ms(self) -> int:
        return self.base_ms + int((time.time_ns() // 1_000_000 - self.local_base_ms) * self.speed)
