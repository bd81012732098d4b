"""The one source of time. Business time is China Standard Time (UTC+8, no DST).

Every rule takes `now_ms` (Unix epoch milliseconds) from a Clock handed in; nothing
else reads the wall clock. A simulated clock starts at a chosen instant and runs at a
chosen speed, so a demo can play "lunch on a Tuesday" at any real hour.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta, timezone
from typing import Protocol

CST = timezone(timedelta(hours=8), "Asia/Shanghai")
TIME_ZONE = "Asia/Shanghai"
_CST_OFFSET_MIN = 8 * 60
MINUTES_PER_DAY = 24 * 60


class Clock(Protocol):
    def now_ms(self) -> int: ...


@dataclass
class SystemClock:
    """Real time."""

    def now_ms(self) -> int:
        return time.time_ns() // 1_000_000


@dataclass
class SimulatedClock:
    """Starts at `start_ms` when made and runs `speed` times faster than real time."""

    start_ms: int
    speed: float = 1.0
    real_start_ms: int = field(default_factory=lambda: time.time_ns() // 1_000_000)
    _mono_start: float = field(default_factory=time.monotonic, repr=False)

    def now_ms(self) -> int:
        return self.start_ms + int((time.monotonic() - self._mono_start) * 1000 * self.speed)


@dataclass
class ManualClock:
    """For tests: time moves only when told."""

    ms: int

    def now_ms(self) -> int:
        return self.ms

    def advance(self, *, seconds: float = 0, minutes: float = 0) -> None:
        self.ms += int((seconds + minutes * 60) * 1000)


def local_minute_of_day(now_ms: int) -> int:
    """Minutes since local (CST) midnight."""
    return (now_ms // 60_000 + _CST_OFFSET_MIN) % MINUTES_PER_DAY


def business_day(now_ms: int) -> int:
    """Days since 1970-01-01 in CST; rolls over at local midnight."""
    return (now_ms // 60_000 + _CST_OFFSET_MIN) // MINUTES_PER_DAY


def business_date(now_ms: int) -> str:
    """The business day of `now_ms` as an ISO date ("2026-09-01"), as the banks book it."""
    return (date(1970, 1, 1) + timedelta(days=business_day(now_ms))).isoformat()


def to_cst(now_ms: int) -> datetime:
    return datetime.fromtimestamp(now_ms / 1000, tz=CST)


def parse_instant(text: str) -> int:
    """An ISO-8601 instant to epoch ms; a time without zone is read as CST."""
    moment = datetime.fromisoformat(text)
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=CST)
    return int(moment.astimezone(UTC).timestamp() * 1000)


def hhmm(text: str) -> int:
    """ "06:30" → minutes since midnight."""
    hours, minutes = text.split(":")
    value = int(hours) * 60 + int(minutes)
    if not 0 <= value <= MINUTES_PER_DAY:
        raise ValueError(f"not a time of day: {text!r}")
    return value
