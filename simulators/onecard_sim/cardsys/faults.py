"""Fault injection for the change feed: drop the open streams, now or every few seconds, and
refuse new ones for a while — so a subscriber's reconnect is exercised."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import dataclass, field

log = logging.getLogger(__name__)

MAX_SECONDS = 86_400.0


@dataclass(eq=False)
class Subscriber:
    """One open WatchChanges stream: woken by a new change or by a drop."""

    wake: asyncio.Event = field(default_factory=asyncio.Event)
    dropped: bool = False


class Faults:
    def __init__(self) -> None:
        self.subscribers: set[Subscriber] = set()
        self.drop_every_s = 0.0
        self.refuse_for_s = 0.0
        self._refuse_until = 0.0
        self._dropper: asyncio.Task[None] | None = None
        self.drops = 0  # streams dropped so far

    def notify(self) -> None:
        for sub in self.subscribers:
            sub.wake.set()

    def refusing(self) -> bool:
        return asyncio.get_running_loop().time() < self._refuse_until

    def drop_all(self) -> int:
        """Ends every open stream (each sees UNAVAILABLE) and starts the refusal period."""
        count = 0
        for sub in self.subscribers:
            if not sub.dropped:
                sub.dropped = True
                sub.wake.set()
                count += 1
        self.drops += count
        if self.refuse_for_s > 0:
            self._refuse_until = asyncio.get_running_loop().time() + self.refuse_for_s
        if count:
            log.info("fault: dropped %d stream(s); refusing new ones for %.1f s", count, self.refuse_for_s)
        return count

    def set_plan(self, *, drop_now: bool, drop_every_s: float, refuse_for_s: float) -> int:
        """Sets the plan; returns the streams dropped now."""
        self.drop_every_s, self.refuse_for_s = drop_every_s, refuse_for_s
        self._refuse_until = 0.0
        self._stop_dropper()
        if drop_every_s > 0:
            self._dropper = asyncio.get_running_loop().create_task(self._drop_every(drop_every_s))
        if drop_now:
            return self.drop_all()
        if refuse_for_s > 0 and drop_every_s == 0:
            self._refuse_until = asyncio.get_running_loop().time() + refuse_for_s
        return 0

    async def _drop_every(self, every_s: float) -> None:
        while True:
            await asyncio.sleep(every_s)
            self.drop_all()

    def _stop_dropper(self) -> None:
        if self._dropper is not None:
            self._dropper.cancel()
            self._dropper = None

    async def close(self) -> None:
        task, self._dropper = self._dropper, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
