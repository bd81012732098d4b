"""Locust load shapes of the rushes in `profiles.py`: `MealRushShape` and `MorningGateShape`.

The peak and the length of the rush are the Locust options `--peak-rate` (taps/s) and `--shape-seconds`;
with `--user-rate` taps/s per user, the shape asks for `ceil(peak × level / user-rate)` users each second.
The run ends when the rush is over. Which users make up the load (the scene mix) is the locustfile's
choice: `loadtest/meal_rush.py` and `loadtest/morning_gate.py` weight their users by the profile's
canteen share.
"""

from __future__ import annotations

from typing import ClassVar

from locust import LoadTestShape

from onecard_load.options import LoadOptions
from onecard_load.profiles import MEAL_RUSH, MORNING_GATE, RushProfile

__all__ = ["MealRushShape", "MorningGateShape", "RushShape"]


class RushShape(LoadTestShape):
    """Follows a `RushProfile` over `--shape-seconds`, scaled to `--peak-rate`."""

    abstract: ClassVar[bool] = True
    profile: ClassVar[RushProfile]

    def tick(self) -> tuple[int, float] | None:
        assert self.runner is not None
        options = LoadOptions.of(self.runner.environment)
        elapsed = self.get_run_time()
        if elapsed >= options.shape_seconds:
            return None
        users = self.profile.users_at(elapsed / options.shape_seconds, options.peak_rate, options.user_rate)
        peak_users = self.profile.users_at(self.profile_peak(), options.peak_rate, options.user_rate)
        # Reach any step within about a second: users cost nothing to start (the channel opens lazily).
        return users, float(max(10, peak_users))

    def profile_peak(self) -> float:
        return max(self.profile.points, key=lambda point: point[1])[0]


class MealRushShape(RushShape):
    """Lunch at a canteen: ramp to the peak, hold while every window is busy, decay."""

    abstract = False
    profile = MEAL_RUSH


class MorningGateShape(RushShape):
    """A school morning at the gates: arrivals build up to the first bell, then stop."""

    abstract = False
    profile = MORNING_GATE
