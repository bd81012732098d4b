"""The load profiles of a rush, as plain numbers: what share of the peak rate is wanted when.

`shapes.py` turns a profile into a Locust load shape; `run.py` and `measure.py` read a profile's hub time
and scene mix without importing Locust.

A profile is piecewise linear in the share of the rush that has elapsed (0 → 1), so the same rush can be
played over 30 seconds or 30 minutes. A Locust user of these load tests is one terminal tapping at a fixed
rate (`--user-rate`), so a wanted rate becomes a number of users.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

__all__ = [
    "LUNCH_CLOCK_START",
    "MEAL_RUSH",
    "MORNING_GATE",
    "PROFILES",
    "STEADY_CANTEEN_SHARE",
    "RushProfile",
    "users_for_rate",
]

# The mix of the steady load (loadtest/locustfile.py): the benchmark's 60% canteen, 40% gates.
STEADY_CANTEEN_SHARE = 0.6
LUNCH_CLOCK_START = "2026-11-24T12:00:00+08:00"  # a Tuesday, inside the lunch window (10:45-13:30)


def users_for_rate(rate: float, user_rate: float) -> int:
    """Users, each tapping `user_rate` times a second, that make `rate` taps a second (at least one)."""
    if user_rate <= 0:
        raise ValueError("a load shape needs a positive --user-rate: it turns taps/s into users")
    return max(1, math.ceil(rate / user_rate - 1e-9))


@dataclass(frozen=True)
class RushProfile:
    """The share of the peak rate over a rush, and where the rush happens."""

    name: str
    points: tuple[tuple[float, float], ...]  # (share of the rush elapsed, share of the peak rate)
    canteen_share: float  # share of the taps made at canteen POS; the rest are gate taps
    clock_start: str  # a hub time inside this rush's meal and gate windows, for `--clock-start`
    story: str

    def __post_init__(self) -> None:
        xs = [x for x, _ in self.points]
        if xs[0] != 0.0 or xs[-1] != 1.0 or xs != sorted(xs):
            raise ValueError(f"{self.name}: points must run from 0 to 1 in order")
        if not all(0.0 <= y <= 1.0 for _, y in self.points):
            raise ValueError(f"{self.name}: levels must be within [0, 1]")

    def level(self, progress: float) -> float:
        """Share of the peak rate wanted when `progress` of the rush has elapsed."""
        progress = min(max(progress, 0.0), 1.0)
        for (x0, y0), (x1, y1) in zip(self.points, self.points[1:], strict=False):
            if progress <= x1:
                return y0 if x1 == x0 else y0 + (y1 - y0) * (progress - x0) / (x1 - x0)
        return self.points[-1][1]

    def users_at(self, progress: float, peak_rate: float, user_rate: float) -> int:
        return users_for_rate(peak_rate * self.level(progress), user_rate)


# A canteen at lunch (11:20 to 12:40, compressed into the run): a trickle before the bell, the queues of
# the whole school within a quarter of an hour, a plateau while every window is busy, a long tail. Most
# taps are payments; some students go out through the gates (day students) and come back.
MEAL_RUSH = RushProfile(
    name="meal-rush",
    points=((0.0, 0.1), (0.2, 0.35), (0.3, 1.0), (0.6, 1.0), (0.8, 0.4), (1.0, 0.1)),
    canteen_share=0.85,
    clock_start=LUNCH_CLOCK_START,
    story="lunch: trickle, bell, plateau while every window is busy, long tail",
)

# The gates on a school morning (06:30 to 08:10): boarders come back from breakfast, day students arrive,
# everyone before the first bell at 07:50, then almost nobody. Some breakfast payments run alongside.
MORNING_GATE = RushProfile(
    name="morning-gate",
    points=((0.0, 0.05), (0.35, 0.35), (0.55, 1.0), (0.7, 1.0), (0.8, 0.2), (1.0, 0.05)),
    canteen_share=0.15,
    clock_start="2026-11-24T07:30:00+08:00",  # both gate groups open (side gate from 07:00), breakfast on
    story="school morning: arrivals build up to the first bell, then stop",
)

PROFILES = {profile.name: profile for profile in (MEAL_RUSH, MORNING_GATE)}
