"""The open-loop driver: arrivals happen at their scheduled times, whatever the hub answers.

A scenario describes its traffic as `Stream`s: a name, an arrival-rate curve over the hub's
(simulated) day, and an action that performs one arrival (a student walking up to a gate or a
canteen window). `OpenLoopDriver.run` turns the curves into seeded Poisson arrivals over a real
duration and starts each arrival's action at its time, concurrently, bounded by a semaphore:

    hub_time = await reader.client.hub_time()            # or the clock from get_config()
    streams = [
        Stream("gate_entry", curves.morning_entries(scale=40.0), gates.enter),
        Stream("gate_exit", curves.day_exits(scale=10.0), gates.leave),
        Stream("canteen_purchase", curves.meal_rush(scale=80.0), canteens.buy),
    ]
    stats = await OpenLoopDriver(hub_time, max_in_flight=128).run(streams, duration_s=30, seed=7)

Open loop (DESIGN §7): the schedule never waits for an answer. A slow hub makes actions queue at
the semaphore (their latency, measured from the scheduled time, grows); it never makes later
arrivals later. The queue is bounded too (`max_backlog`): an arrival that finds it full is
dropped and counted, never silently delayed.

Rates are in arrivals per real second (see `curves.py`), read at the hub time of the arrival:
real offset t after the start is hub time `start_ms + t × speed`. So a 30-minute lunch rush played
at speed 60 lasts 30 real seconds, and the curve's `scale` is the peak load the hub sees.
"""

from __future__ import annotations

import asyncio
import contextlib
import heapq
import random
import time
from collections.abc import Awaitable, Callable, Iterator, Sequence
from dataclasses import dataclass, field

from onecard_client.hub_time import HubTime
from onecard_sim.curves import RateFn, poisson_arrivals

__all__ = ["Action", "Arrival", "DriverStats", "OpenLoopDriver", "Stream", "merge_arrivals"]


@dataclass(frozen=True, slots=True)
class Arrival:
    """One scheduled arrival: when (real offset and hub time) and in which stream."""

    at_s: float  # real seconds after the driver's start
    hub_ms: int  # the hub's (simulated) time at that moment, Unix ms
    stream: str
    scheduled_at: float = 0.0  # time.monotonic() of the scheduled moment (set by the driver)


# Performs one arrival (picks a student and a device, taps, emits a TapEvent). It should not
# raise: a device turns a broken call into an "ERROR_<code>" event. An exception that escapes is
# counted in DriverStats.errors and does not stop the run.
Action = Callable[[Arrival], Awaitable[object]]


@dataclass(frozen=True, slots=True)
class Stream:
    name: str
    rate: RateFn  # arrivals per real second at a hub time (Unix ms)
    action: Action


@dataclass(slots=True)
class DriverStats:
    scheduled: int = 0  # arrivals generated for the run
    completed: int = 0  # actions that returned
    errors: int = 0  # actions that raised (a bug in an action, not a declined tap)
    dropped: int = 0  # arrivals refused because the backlog was full
    late_starts: int = 0  # actions that started more than 100 ms after their scheduled time
    by_stream: dict[str, int] = field(default_factory=dict)


def merge_arrivals(
    streams: Sequence[Stream], start_ms: int, speed: float, duration_s: float, rng: random.Random
) -> Iterator[Arrival]:
    """Every stream's arrivals, in time order (each stream drawn with its own child generator)."""

    def arrivals_of(stream: Stream, child: random.Random) -> Iterator[Arrival]:
        for at_s, hub_ms in poisson_arrivals(stream.rate, start_ms, speed, duration_s, child):
            yield Arrival(at_s, hub_ms, stream.name)

    iterators = [arrivals_of(stream, random.Random(rng.getrandbits(64))) for stream in streams]
    return heapq.merge(*iterators, key=lambda a: a.at_s)


class OpenLoopDriver:
    """Plays streams of arrivals against the hub on a fixed schedule, bounded in concurrency."""

    def __init__(
        self,
        hub_time: HubTime,
        *,
        max_in_flight: int = 128,
        max_backlog: int = 4_096,
        on_tick: Callable[[DriverStats], None] | None = None,
    ) -> None:
        if max_in_flight < 1 or max_backlog < max_in_flight:
            raise ValueError("max_in_flight must be >= 1 and max_backlog >= max_in_flight")
        self.hub_time = hub_time
        self.max_in_flight = max_in_flight
        self.max_backlog = max_backlog
        self.on_tick = on_tick  # called about 4 times a second with the running stats (live progress)
        self.stats = DriverStats()
        self._stop = asyncio.Event()

    def stop(self) -> None:
        """Ends the run early: no further arrivals start; those in flight finish."""
        self._stop.set()

    async def run(self, streams: Sequence[Stream], duration_s: float, seed: int = 0) -> DriverStats:
        """Runs every stream for `duration_s` real seconds from now; returns when all actions ended."""
        if duration_s <= 0:
            raise ValueError("duration_s must be positive")
        actions = {s.name: s.action for s in streams}
        if len(actions) != len(streams):
            raise ValueError("stream names must be unique")
        stats = self.stats
        semaphore = asyncio.Semaphore(self.max_in_flight)
        pending: set[asyncio.Task[None]] = set()
        loop = asyncio.get_running_loop()
        t0 = loop.time()
        start_ms = self.hub_time.now_ms()
        next_tick = t0
        arrivals = merge_arrivals(streams, start_ms, self.hub_time.speed, duration_s, random.Random(seed))

        async def perform(arrival: Arrival) -> None:
            async with semaphore:
                if loop.time() - (t0 + arrival.at_s) > 0.1:
                    stats.late_starts += 1
                try:
                    await actions[arrival.stream](arrival)
                except Exception:
                    stats.errors += 1
                else:
                    stats.completed += 1

        offset = time.monotonic() - loop.time()
        for arrival in arrivals:
            if self._stop.is_set():
                break
            delay = t0 + arrival.at_s - loop.time()
            if delay > 0:
                try:
                    await asyncio.wait_for(self._stop.wait(), delay)
                    break
                except TimeoutError:
                    pass
            stats.scheduled += 1
            stats.by_stream[arrival.stream] = stats.by_stream.get(arrival.stream, 0) + 1
            if len(pending) >= self.max_backlog:
                stats.dropped += 1
                continue
            scheduled = Arrival(arrival.at_s, arrival.hub_ms, arrival.stream, t0 + arrival.at_s + offset)
            task = asyncio.create_task(perform(scheduled))
            pending.add(task)
            task.add_done_callback(pending.discard)
            if self.on_tick is not None and loop.time() >= next_tick:
                self.on_tick(stats)
                next_tick = loop.time() + 0.25
        remaining = t0 + duration_s - loop.time()
        if remaining > 0 and not self._stop.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stop.wait(), remaining)
        if pending:
            await asyncio.gather(*pending)
        if self.on_tick is not None:
            self.on_tick(stats)
        return stats
