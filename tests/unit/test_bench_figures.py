"""The benchmark's arithmetic: the order of the servers in the rounds, quartiles, pooled CPU per call."""

from __future__ import annotations

from collections import Counter
from typing import Any

import pytest

from scripts import _bench_load, bench


@pytest.mark.parametrize("names", [["hub", "echo"], ["hub", "echo", "echo2"], ["a", "b", "c", "d", "e"]])
def test_over_a_cycle_of_rounds_each_server_is_in_each_place_and_before_each_other_equally_often(
    names: list[str],
) -> None:
    orders = _bench_load.round_orders(names)
    assert all(sorted(order) == sorted(names) for order in orders)
    places = Counter((name, order.index(name)) for order in orders for name in names)
    assert set(places.values()) == {len(orders) // len(names)}
    before = Counter(
        (a, b) for order in orders for a in names for b in names if order.index(a) < order.index(b)
    )
    assert set(before.values()) == {len(orders) // 2}


def test_quartiles_of_one_value_and_of_several() -> None:
    assert bench.quartiles([1.5]) == (1.5, 1.5, 1.5)
    assert bench.quartiles([1.0, 2.0, 3.0, 4.0, 5.0]) == (2.0, 3.0, 4.0)


def _round(hub: dict[str, Any], echo: dict[str, Any]) -> dict[str, Any]:
    return {"closed": {"hub": hub, "echo": echo}, "open": {"hub": hub, "echo": echo}}


def test_cpu_per_call_is_pooled_over_rounds_and_ratios_are_paired_per_round() -> None:
    rounds = [
        _round({"rps": 1000.0, "completed_in_window": 1000, "calls": 500, "server_cpu_s": 0.5},
               {"rps": 2000.0, "completed_in_window": 2000, "calls": 500, "server_cpu_s": 0.5}),
        _round({"rps": 1500.0, "completed_in_window": 3000, "calls": 500, "server_cpu_s": 2.5},
               {"rps": 1500.0, "completed_in_window": 1000, "calls": 500, "server_cpu_s": None}),
    ]  # fmt: skip
    assert bench.pooled_cpu_us(rounds, "closed", "hub") == pytest.approx(750.0)  # 3 s over 4,000 calls
    assert bench.pooled_cpu_us(rounds, "closed", "echo") == pytest.approx(250.0)  # the unmeasured left out
    assert bench.pooled_cpu_us(rounds, "open", "hub") == pytest.approx(3000.0)
    assert bench.paired(rounds, "hub") == [0.5, 1.0]
