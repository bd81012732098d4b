"""GetUsageReport: usage statistics per school, from memory (rules in domain/usage.py).

The tap path feeds `hub.usage` (a `UsageBook`): `Hub.authorize` records every decided tap,
`offline.py` every booked offline record, `once.run_once` the library's and exams' taps
(`record_tap`).
"""

from __future__ import annotations

from dataclasses import dataclass

from onecard_hub.domain.clock import business_day
from onecard_hub.domain.errors import NotFound, PermissionDenied
from onecard_hub.domain.model import Operator
from onecard_hub.domain.usage import WINDOW_DAYS, SchoolUsage, business_date, usage_report, window_start
from onecard_hub.hub import Hub
from onecard_hub.store.records import RequestRow


@dataclass(frozen=True, slots=True)
class UsageReport:
    generated_ms: int
    window_days: int
    first_date: str
    last_date: str
    schools: list[SchoolUsage]


def record_tap(hub: Hub, request: RequestRow, now_ms: int) -> None:
    """A tap at a desk or tablet (`once.run_once`), from its journal row: the same rows the
    usage book is rebuilt from at start (a scene and a decision; reason 0 is an approval)."""
    if request.scene <= 0 or request.reason < 0:
        return
    terminal = hub.campus.terminals.get(request.caller)
    if terminal is not None:
        day = request.business_day or business_day(now_ms)
        hub.usage.record(terminal.school_id, request.card_no, request.scene, day, request.reason == 0)


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
