"""Arrival-rate curves over a simulated school day, and a seeded Poisson arrival generator.

A curve is a pure function of the hub's time: `rate(sim_ms)` is the number of arrivals per
**real** second the hub should see at that (simulated) instant. Its `scale` is the peak: a
`meal_rush(scale=80)` curve asks for 80 taps a second at the height of lunch, whatever the
clock's speed — so a scenario sizes the load it puts on the hub directly, and the speed only
decides how much of the day passes in the run.

Shapes (business time, China Standard Time, UTC+8 without daylight saving):

- `meal_rush`: breakfast 06:30–09:00 (peak 07:10–07:40, 0.45 of lunch), lunch 10:45–13:30 (ramp
  to 11:50, hold to 12:20, decay), dinner 16:45–19:30 (peak 17:30–18:00, 0.8 of lunch).
- `morning_entries`: day students and boarders back from breakfast outside, 06:30–08:00,
  peaking 07:35–07:50 just before the first class at 08:00.
- `class_changes`: short bursts at the breaks (09:50, 11:50, 13:50, 15:50), both directions.
- `day_exits`: day students (走读生) leave after the last class, 17:00–18:40, peak 17:15–17:35.
- `evening_outings` / `evening_return`: boarders (住校生) go out after dinner and are back
  before the 22:30 curfew (returns peak 20:30–21:30).
- `gate_entries` / `gate_exits`: what a main gate sees all day (sums of the above).
- `constant(scale)`: the same rate at any hour.
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable, Iterator
from dataclasses import dataclass

__all__ = [
    "Curve",
    "RateFn",
    "class_changes",
    "constant",
    "day_exits",
    "evening_outings",
    "evening_return",
    "gate_entries",
    "gate_exits",
    "local_minute",
    "meal_rush",
    "morning_entries",
    "poisson_arrivals",
]

RateFn = Callable[[int], float]  # hub time (Unix ms) → arrivals per real second
Shape = Callable[[float], float]  # local minute of day [0, 1440) → intensity in [0, 1]

_CST_OFFSET_MIN = 8 * 60
_DAY_MIN = 24 * 60
_MAX_SAMPLES = 50_000


def local_minute(sim_ms: int) -> float:
    """Minutes since local midnight (China Standard Time) of a Unix-ms instant, with fractions."""
    return (sim_ms / 60_000 + _CST_OFFSET_MIN) % _DAY_MIN


def _hm(text: str) -> float:
    hours, minutes = text.split(":")
    return int(hours) * 60 + int(minutes)


def _trapezoid(minute: float, rise: str, peak: str, hold: str, end: str) -> float:
    """0 before `rise`, linear up to 1 at `peak`, 1 until `hold`, linear down to 0 at `end`."""
    a, b, c, d = _hm(rise), _hm(peak), _hm(hold), _hm(end)
    if minute <= a or minute >= d:
        return 0.0
    if minute < b:
        return (minute - a) / (b - a)
    if minute <= c:
        return 1.0
    return (d - minute) / (d - c)


def _meal_shape(minute: float) -> float:
    return max(
        0.45 * _trapezoid(minute, "06:30", "07:10", "07:40", "09:00"),
        _trapezoid(minute, "10:45", "11:50", "12:20", "13:30"),
        0.8 * _trapezoid(minute, "16:45", "17:30", "18:00", "19:30"),
    )


def _morning_shape(minute: float) -> float:
    return _trapezoid(minute, "06:30", "07:35", "07:50", "08:00")


_BREAKS = ("09:50", "11:50", "13:50", "15:50")


def _class_change_shape(minute: float) -> float:
    best = 0.0
    for at in _BREAKS:
        centre = _hm(at)
        best = max(best, 1.0 - abs(minute - centre) / 10.0)
    return best


def _day_exit_shape(minute: float) -> float:
    return _trapezoid(minute, "17:00", "17:15", "17:35", "18:40")


def _outing_shape(minute: float) -> float:
    return 0.6 * _trapezoid(minute, "18:00", "18:40", "19:20", "20:30")


def _return_shape(minute: float) -> float:
    return _trapezoid(minute, "19:00", "20:30", "21:30", "22:30")


def _entries_shape(minute: float) -> float:
    return max(_morning_shape(minute), 0.4 * _class_change_shape(minute), 0.7 * _return_shape(minute))


def _exits_shape(minute: float) -> float:
    return max(0.4 * _class_change_shape(minute), 0.8 * _day_exit_shape(minute), _outing_shape(minute))


@dataclass(frozen=True, slots=True)
class Curve:
    """A daily shape times a peak rate; call it with a hub time (Unix ms)."""

    name: str
    shape: Shape
    scale: float  # peak arrivals per real second

    def __call__(self, sim_ms: int) -> float:
        return self.scale * self.shape(local_minute(sim_ms))

    def rate(self, sim_ms: int) -> float:
        return self(sim_ms)


def _curve(name: str, shape: Shape, scale: float) -> Curve:
    if scale < 0 or not math.isfinite(scale):
        raise ValueError("scale must be a finite number >= 0")
    return Curve(name, shape, scale)


def meal_rush(scale: float = 1.0) -> Curve:
    return _curve("meal_rush", _meal_shape, scale)


def morning_entries(scale: float = 1.0) -> Curve:
    return _curve("morning_entries", _morning_shape, scale)


def class_changes(scale: float = 1.0) -> Curve:
    return _curve("class_changes", _class_change_shape, scale)


def day_exits(scale: float = 1.0) -> Curve:
    return _curve("day_exits", _day_exit_shape, scale)


def evening_outings(scale: float = 1.0) -> Curve:
    return _curve("evening_outings", _outing_shape, scale)


def evening_return(scale: float = 1.0) -> Curve:
    return _curve("evening_return", _return_shape, scale)


def gate_entries(scale: float = 1.0) -> Curve:
    return _curve("gate_entries", _entries_shape, scale)


def gate_exits(scale: float = 1.0) -> Curve:
    return _curve("gate_exits", _exits_shape, scale)


def constant(scale: float = 1.0) -> Curve:
    return _curve("constant", lambda _minute: 1.0, scale)


def _peak(rate: RateFn, start_ms: int, span_ms: int) -> float:
    """The largest rate over [start, start + span]: the curves are piecewise linear with corners
    on whole minutes, so sampling every whole minute (and both ends) finds it."""
    samples = [rate(start_ms), rate(start_ms + span_ms)]
    step = max(60_000, span_ms // _MAX_SAMPLES)
    t = (start_ms // 60_000 + 1) * 60_000
    while t < start_ms + span_ms:
        samples.append(rate(t))
        t += step
    return max(samples)


def poisson_arrivals(
    rate: RateFn, start_ms: int, speed: float, duration_s: float, rng: random.Random
) -> Iterator[tuple[float, int]]:
    """Arrival times of a non-homogeneous Poisson process (thinning), as (real offset s, hub ms).

    Real offset t maps to hub time `start_ms + t × speed × 1000`; the rate is read there.
    The same seed gives the same arrivals.
    """
    if speed <= 0 or duration_s <= 0:
        return
    span_ms = int(duration_s * speed * 1000)
    peak = _peak(rate, start_ms, span_ms) * 1.01
    if peak <= 0:
        return
    t = 0.0
    while True:
        t += rng.expovariate(peak)
        if t >= duration_s:
            return
        hub_ms = start_ms + int(t * speed * 1000)
        if rng.random() * peak < rate(hub_ms):
            yield t, hub_ms
