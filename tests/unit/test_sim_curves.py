"""Arrival curves of the simulated school day and the seeded Poisson generator."""

from __future__ import annotations

import random

import pytest

from onecard_hub.domain.clock import parse_instant
from onecard_sim import curves


def at(hhmm: str) -> int:
    return parse_instant(f"2026-11-24T{hhmm}:00+08:00")


def test_local_minute_is_china_standard_time() -> None:
    assert curves.local_minute(at("00:00")) == 0
    assert curves.local_minute(at("12:30")) == 750


def test_meal_rush_peaks_at_lunch_and_is_quiet_between_meals() -> None:
    rush = curves.meal_rush(scale=100.0)
    assert rush(at("12:00")) == pytest.approx(100.0)
    assert rush(at("11:00")) < rush(at("11:30")) < rush(at("11:50"))  # the ramp
    assert rush(at("13:00")) < rush(at("12:20"))  # the decay
    assert rush(at("10:00")) == 0.0
    assert rush(at("15:00")) == 0.0
    assert 0 < rush(at("07:20")) < rush(at("17:45")) < rush(at("12:00"))  # breakfast < dinner < lunch


def test_morning_gate_rush_peaks_before_class() -> None:
    entries = curves.morning_entries(scale=10.0)
    assert entries(at("06:00")) == 0.0
    assert entries(at("07:00")) < entries(at("07:40")) == pytest.approx(10.0)
    assert entries(at("08:30")) == 0.0


def test_gate_exits_after_class_and_entries_in_the_evening() -> None:
    assert curves.day_exits(1.0)(at("17:20")) == pytest.approx(1.0)
    assert curves.evening_return(1.0)(at("21:00")) == pytest.approx(1.0)
    assert curves.class_changes(1.0)(at("09:50")) == pytest.approx(1.0)
    assert curves.class_changes(1.0)(at("10:30")) == 0.0
    assert curves.gate_exits(1.0)(at("17:20")) > curves.gate_entries(1.0)(at("17:20"))
    assert curves.gate_entries(1.0)(at("07:40")) > curves.gate_exits(1.0)(at("07:40"))


def test_negative_scale_is_refused() -> None:
    with pytest.raises(ValueError):
        curves.meal_rush(-1.0)


def test_poisson_arrivals_follow_the_curve_and_repeat_with_the_seed() -> None:
    rush = curves.meal_rush(scale=200.0)
    # 11:00 → 12:00 compressed into 60 real seconds (speed 60).
    first = list(curves.poisson_arrivals(rush, at("11:00"), 60.0, 60.0, random.Random(3)))
    again = list(curves.poisson_arrivals(rush, at("11:00"), 60.0, 60.0, random.Random(3)))
    assert first == again
    offsets = [t for t, _ in first]
    assert offsets == sorted(offsets) and offsets[0] >= 0 and offsets[-1] < 60.0
    early = sum(1 for t in offsets if t < 20)  # 11:00–11:20, the start of the ramp
    late = sum(1 for t in offsets if t >= 40)  # 11:40–12:00, near the peak
    assert late > 2 * early
    # Expected count: the integral of the rate; the ramp gives a mean near 200 × 60 × 0.64.
    assert 0.5 * 200 * 60 * 0.64 < len(first) < 1.5 * 200 * 60 * 0.64
    hub_ms = [h for _, h in first]
    assert all(at("11:00") <= h < at("12:00") for h in hub_ms)


def test_no_arrivals_when_the_rate_is_zero() -> None:
    rush = curves.meal_rush(scale=50.0)
    assert list(curves.poisson_arrivals(rush, at("14:00"), 1.0, 30.0, random.Random(1))) == []
