"""School policies: defaults a school starts with, and their JSON form in the store."""

from __future__ import annotations

import json
from typing import Any

from onecard_hub.domain.clock import hhmm
from onecard_hub.domain.model import (
    AntiPassback,
    GateGroup,
    MealWindow,
    SchoolPolicy,
    StudentGroup,
    TimeWindow,
)

_DEFAULT = SchoolPolicy()


def _minutes(value: int) -> str:
    return f"{value // 60:02d}:{value % 60:02d}"


def default_policy(
    *,
    pin_free_limit_fen: int = 5_000,
    daily_limit_fen: int = 30_000,
    meal_count_limit: int = 3,
) -> SchoolPolicy:
    """A technical school's usual day: three meals, a main gate and a side gate."""
    return SchoolPolicy(
        pin_free_limit_fen=pin_free_limit_fen,
        daily_limit_fen=daily_limit_fen,
        pin_max_failures=3,
        meal_windows=(
            MealWindow("breakfast", TimeWindow(hhmm("06:30"), hhmm("09:00")), meal_count_limit),
            MealWindow("lunch", TimeWindow(hhmm("10:45"), hhmm("13:30")), meal_count_limit),
            MealWindow("dinner", TimeWindow(hhmm("16:45"), hhmm("19:30")), meal_count_limit),
        ),
        gate_groups={
            "main": GateGroup(
                "main",
                AntiPassback.HARD,
                {
                    StudentGroup.BOARDER: (TimeWindow(hhmm("06:00"), hhmm("23:00")),),
                    StudentGroup.DAY: (TimeWindow(hhmm("06:00"), hhmm("22:00")),),
                },
            ),
            "side": GateGroup(
                "side",
                AntiPassback.SOFT,
                {
                    StudentGroup.BOARDER: (TimeWindow(hhmm("07:00"), hhmm("19:00")),),
                    StudentGroup.DAY: (TimeWindow(hhmm("07:00"), hhmm("19:00")),),
                },
            ),
        },
    )


def policy_to_json(policy: SchoolPolicy) -> str:
    doc: dict[str, Any] = {
        "pin_free_limit_fen": policy.pin_free_limit_fen,
        "daily_limit_fen": policy.daily_limit_fen,
        "pin_max_failures": policy.pin_max_failures,
        "meal_windows": [
            {
                "name": m.name,
                "start": _minutes(m.window.start_min),
                "end": _minutes(m.window.end_min),
                "max_payments": m.max_payments,
            }
            for m in policy.meal_windows
        ],
        "gate_groups": {
            g.name: {
                "anti_passback": g.anti_passback.value,
                "windows": {
                    group.value: [[_minutes(w.start_min), _minutes(w.end_min)] for w in windows]
                    for group, windows in g.windows.items()
                },
            }
            for g in policy.gate_groups.values()
        },
        "offline_per_payment_fen": policy.offline_per_payment_fen,
        "offline_per_card_day_fen": policy.offline_per_card_day_fen,
        "offline_max_stored": policy.offline_max_stored,
        "loan_limit": policy.loan_limit,
        "loan_days": policy.loan_days,
    }
    return json.dumps(doc, ensure_ascii=False, sort_keys=True)


def policy_from_json(text: str) -> SchoolPolicy:
    doc = json.loads(text)
    return SchoolPolicy(
        pin_free_limit_fen=int(doc["pin_free_limit_fen"]),
        daily_limit_fen=int(doc["daily_limit_fen"]),
        pin_max_failures=int(doc["pin_max_failures"]),
        meal_windows=tuple(
            MealWindow(m["name"], TimeWindow(hhmm(m["start"]), hhmm(m["end"])), int(m["max_payments"]))
            for m in doc["meal_windows"]
        ),
        gate_groups={
            name: GateGroup(
                name,
                AntiPassback(g["anti_passback"]),
                {
                    StudentGroup(group): tuple(TimeWindow(hhmm(a), hhmm(b)) for a, b in windows)
                    for group, windows in g["windows"].items()
                },
            )
            for name, g in doc["gate_groups"].items()
        },
        # Policies written before issue 3 have no offline limits: they take the defaults.
        offline_per_payment_fen=int(doc.get("offline_per_payment_fen", _DEFAULT.offline_per_payment_fen)),
        offline_per_card_day_fen=int(doc.get("offline_per_card_day_fen", _DEFAULT.offline_per_card_day_fen)),
        offline_max_stored=int(doc.get("offline_max_stored", _DEFAULT.offline_max_stored)),
        # Policies written before issue 4 have no library settings: they take the defaults.
        loan_limit=int(doc.get("loan_limit", _DEFAULT.loan_limit)),
        loan_days=int(doc.get("loan_days", _DEFAULT.loan_days)),
    )
