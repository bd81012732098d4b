"""Sizing a scenario's traffic: which streams of arrivals, on which curves, how many arrivals each.

A curve's `scale` is its peak in arrivals per real second (see `onecard_sim.curves`). A scenario thinks
in people instead ("90% of the students eat lunch"), so `scale_for` turns a number of arrivals over the
stretch into the peak rate that gives it: arrivals = scale × mean(shape over the stretch) × duration.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

from onecard_sim import curves
from onecard_sim.driver import Stream
from onecard_sim.events import CANTEEN_PURCHASE, GATE_ENTRY, GATE_EXIT
from onecard_sim.gate import GateFleet
from onecard_sim.population import Population
from onecard_sim.pos import CanteenFleet
from onecard_sim.scenarios.catalog import ScenarioSpec

__all__ = ["CURVES", "TrafficPlan", "mean_shape", "plan_traffic", "scale_for"]

CurveFactory = Callable[[float], curves.Curve]
CURVES: dict[str, CurveFactory] = {
    "meal_rush": curves.meal_rush,
    "morning_entries": curves.morning_entries,
    "class_changes": curves.class_changes,
    "constant": curves.constant,
}
_MINUTE_MS = 60_000


def mean_shape(factory: CurveFactory, start_ms: int, simulated_s: float) -> float:
    """The curve's mean intensity (0..1) over [start, start + simulated_s], sampled every simulated minute."""
    curve = factory(1.0)
    steps = max(1, int(simulated_s * 1000 // _MINUTE_MS))
    width = simulated_s * 1000 / steps
    return sum(curve(start_ms + int((i + 0.5) * width)) for i in range(steps)) / steps


def scale_for(
    arrivals: float, factory: CurveFactory, start_ms: int, simulated_s: float, duration_s: float
) -> float:
    """The peak rate (per real second) that gives `arrivals` over the stretch, on average."""
    mean = mean_shape(factory, start_ms, simulated_s)
    if arrivals <= 0 or mean <= 0 or duration_s <= 0:
        return 0.0
    return arrivals / (mean * duration_s)


@dataclass(frozen=True)
class TrafficPlan:
    """What will be asked of the hub: streams, and the arrivals each should bring on average."""

    streams: list[Stream]
    expected: dict[str, int]


def plan_traffic(
    spec: ScenarioSpec,
    population: Population,
    *,
    gates: GateFleet | None,
    canteens: CanteenFleet | None,
    start_ms: int,
    simulated_s: float,
    duration_s: float,
) -> TrafficPlan:
    usable = [s for school in population.schools for s in population.usable(school)]
    outside = sum(1 for s in usable if not s.inside)
    streams: list[Stream] = []
    expected: dict[str, int] = {}

    def add(name: str, curve_name: str, arrivals: float, action: Callable[..., object]) -> None:
        factory = CURVES[curve_name]
        scale = scale_for(arrivals, factory, start_ms, simulated_s, duration_s)
        if scale > 0:
            streams.append(Stream(name, factory(scale), action))  # type: ignore[arg-type]
            expected[name] = math.ceil(arrivals)

    if canteens is not None and spec.canteen:
        add(CANTEEN_PURCHASE, spec.canteen_curve, spec.canteen_share * len(usable), canteens.buy)
    if gates is not None and spec.gates:
        if spec.gate_curve == "morning_entries":
            # The morning: those who slept outside come in; a few go out again (an errand, a mistake).
            add(GATE_ENTRY, "morning_entries", spec.gate_share * outside, gates.enter)
            add(GATE_EXIT, "constant", spec.exit_share * len(usable), gates.leave)
        else:
            half = spec.gate_share * len(usable) / 2
            add(GATE_ENTRY, spec.gate_curve, half, gates.enter)
            add(GATE_EXIT, spec.gate_curve, half, gates.leave)
    return TrafficPlan(streams, expected)
