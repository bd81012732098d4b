"""GetUsageReport: usage statistics per school, from memory (rules in domain/usage.py).

The tap path feeds `hub.usage` (a `UsageBook`): `Hub.authorize` records every decided tap,
`offline.py` every booked offline record; library and exam scenes call `record_tap` too.
"""

from __future__ import annotations

from dataclasses import dataclass

from onecard_hub.domain.clock import business_day
from onecard_hub.domain.errors import NotFound, PermissionDenied
from onecard_hub.domain.model import Operator
from onecard_hub.domain.usage import WINDOW_DAYS, SchoolUsage, business_date, usage_report, window_start
from onecard_hub.hub import Hub


@dataclass(frozen=True, slots=True)
class UsageReport:
    generated_ms: int
    window_days: int
    first_date: str
    last_date: str
    schools: list[SchoolUsage]


def record_tap(hub: Hub, school_id: str, card_no: str, scene: int, approved: bool) -> None:
    """A live tap or scan of any scene, decided now at a terminal of `school_id`."""
    hub.usage.record(school_id, card_no, scene, business_day(hub.clock.now_ms()), approved)


def school_usage(hub: Hub, operator: Operator, school_id: str) -> UsageReport:
    """A clerk: their school (named or left empty). A province administrator: one school or all."""
    if operator.school_id:
        if school_id and school_id != operator.school_id:
            raise PermissionDenied("school_id: another school than the operator's")
        school_id = operator.school_id
    campus = hub.campus
    if school_id and school_id not in campus.schools:
        raise NotFound("school_id: no such school", field="school_id")
    now = hub.clock.now_ms()
    today = business_day(now)
    hub.usage.prune(today)
    schools = [campus.schools[school_id]] if school_id else list(campus.schools.values())
    rows = usage_report(schools, campus.students.values(), campus.cards.values(), hub.usage, today)
    return UsageReport(now, WINDOW_DAYS, business_date(window_start(today)), business_date(today), rows)
