"""A fleet: every simulated terminal of one kind in a run, started, stopped and sent offline together.

`GateFleet` and `CanteenFleet` extend it with the actions a scenario's streams call. The
offline controls act on every terminal of the fleet at once (`onecard-sim pos` maps SIGUSR1 /
SIGUSR2 to `go_offline` / `go_online`).
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Generic, TypeVar

from onecard_sim.events import UploadEvent
from onecard_sim.terminal import SimTerminal

__all__ = ["Fleet"]

T = TypeVar("T", bound=SimTerminal)


class Fleet(Generic[T]):
    label = "terminals"  # what the fleet's terminals are, for summaries ("gate readers")

    def __init__(self, terminals: Sequence[T]) -> None:
        if not terminals:
            raise ValueError("a fleet needs at least one terminal")
        self.terminals: list[T] = list(terminals)

    async def start(self) -> None:
        """Downloads every terminal's configuration and starts the heartbeats."""
        await asyncio.gather(*(t.start() for t in self.terminals))

    async def stop(self) -> None:
        await asyncio.gather(*(t.stop() for t in self.terminals), return_exceptions=True)

    @property
    def offline(self) -> bool:
        return any(t.offline for t in self.terminals)

    def go_offline(self) -> None:
        for terminal in self.terminals:
            terminal.go_offline()

    async def go_online(self) -> list[UploadEvent]:
        """Every terminal back online; returns the upload events of the stored transactions."""
        results = await asyncio.gather(*(t.go_online() for t in self.terminals))
        return [event for events in results for event in events]

    async def reupload_all(self) -> list[UploadEvent]:
        results = await asyncio.gather(*(t.reupload_all() for t in self.terminals))
        return [event for events in results for event in events]

    def offline_pending(self) -> int:
        return sum(t.offline_pending() for t in self.terminals)
