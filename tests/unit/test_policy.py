"""School policies survive their JSON form; the clock helpers follow CST."""

from __future__ import annotations

from onecard_hub.domain.clock import business_day, local_minute_of_day, parse_instant
from onecard_hub.domain.policy import default_policy, policy_from_json, policy_to_json


def test_policy_round_trip() -> None:
    policy = default_policy(pin_free_limit_fen=3_000, daily_limit_fen=12_000, meal_count_limit=2)
    assert policy_from_json(policy_to_json(policy)) == policy


def test_business_day_rolls_over_at_cst_midnight() -> None:
    before = parse_instant("2026-11-24T23:59:00+08:00")
    after = parse_instant("2026-11-25T00:01:00+08:00")
    assert business_day(after) == business_day(before) + 1
    assert local_minute_of_day(before) == 23 * 60 + 59
    assert local_minute_of_day(parse_instant("2026-11-24T16:00:00Z")) == 0  # midnight in Ganzhou
