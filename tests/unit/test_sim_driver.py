"""The open-loop driver keeps its schedule whatever the actions take, and bounds its backlog."""

from __future__ import annotations

import asyncio
import random
from collections.abc import Callable

from onecard_client.hub_time import HubTime
from onecard_sim import curves
from onecard_sim.driver import Arrival, OpenLoopDriver, Stream, merge_arrivals

NOON = 1_795_492_800_000  # 2026-11-24T12:00:00+08:00


def count_arrivals(streams: list[Stream], duration_s: float, seed: int) -> int:
    """How many arrivals the driver will schedule (the same seed gives the same arrivals)."""
    return sum(1 for _ in merge_arrivals(streams, NOON, 1.0, duration_s, random.Random(seed)))


async def until(condition: Callable[[], bool]) -> None:
    for _ in range(400):  # up to 20 s on a loaded machine; returns as soon as it holds
        if condition():
            return
        await asyncio.sleep(0.05)
    raise AssertionError("condition not reached")


async def test_slow_actions_do_not_delay_the_schedule() -> None:
    seen: list[Arrival] = []
    release = asyncio.Event()

    async def stuck(arrival: Arrival) -> None:
        seen.append(arrival)
        await release.wait()  # the "hub" never answers until the run ends

    streams = [Stream("canteen", curves.constant(200.0), stuck)]
    expected = count_arrivals(streams, 0.5, seed=1)
    driver = OpenLoopDriver(HubTime.from_clock(NOON, speed=60.0), max_in_flight=4, max_backlog=1_000)
    run = asyncio.create_task(driver.run(streams, 0.5, seed=1))
    await until(lambda: driver.stats.scheduled == expected)
    # Only 4 actions may run at once, yet every arrival was scheduled and is waiting.
    assert expected > 40
    assert len(seen) == 4
    release.set()
    stats = await run
    assert stats.completed == stats.scheduled == len(seen)
    assert stats.dropped == 0 and stats.errors == 0


async def test_full_backlog_drops_and_counts() -> None:
    async def never(arrival: Arrival) -> None:
        await asyncio.sleep(3600)

    streams = [Stream("gate", curves.constant(300.0), never)]
    expected = count_arrivals(streams, 0.3, seed=2)
    driver = OpenLoopDriver(HubTime.from_clock(NOON), max_in_flight=2, max_backlog=5)
    run = asyncio.create_task(driver.run(streams, 0.3, seed=2))
    await until(lambda: driver.stats.scheduled == expected)
    assert driver.stats.dropped == expected - 5 > 0
    run.cancel()


async def test_arrivals_carry_hub_time_and_errors_are_counted() -> None:
    got: list[Arrival] = []

    async def act(arrival: Arrival) -> None:
        got.append(arrival)
        if len(got) % 2:
            raise RuntimeError("a bug in an action")

    driver = OpenLoopDriver(HubTime.from_clock(NOON, speed=120.0), max_in_flight=8)
    stats = await driver.run(
        [Stream("a", curves.constant(100.0), act), Stream("b", curves.constant(50.0), act)], 0.3, seed=5
    )
    assert stats.errors == (len(got) + 1) // 2 and stats.completed == len(got) // 2
    assert set(stats.by_stream) == {"a", "b"}
    for a in got:
        assert abs(a.hub_ms - (NOON + a.at_s * 120_000)) < 5_000  # 0.3 s × 120 = 36 s of hub time
        assert a.scheduled_at > 0
