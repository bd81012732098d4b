"""Use cases of the pilot roll-out: which scenes are live per school, and a school's summary.

`set_live_scenes` is for province administrators; it changes `School.live_scenes` in memory
(the next tap sees it) and journals the change with its audit entry, durable before the answer.
Rules in `domain/pilot.py`.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

from google.protobuf.message import Message

from onecard_hub.domain.audit import details
from onecard_hub.domain.errors import NotFound
from onecard_hub.domain.model import Enrollment, Operator, Scene, School
from onecard_hub.domain.pilot import live_scenes_text, require_province_admin
from onecard_hub.hub import Hub
from onecard_hub.store.records import AuditRow, Batch, LiveScenesRow
from onecard_hub.student_records import check_school, idempotent

M = TypeVar("M", bound=Message)


@dataclass(frozen=True, slots=True)
class SchoolView:
    school: School
    students: Counter[Enrollment]


def school_view(hub: Hub, operator: Operator, school_id: str) -> SchoolView:
    check_school(hub, operator, school_id)
    counts = Counter(s.enrollment for s in hub.campus.students.values() if s.school_id == school_id)
    return SchoolView(hub.campus.schools[school_id], counts)


async def set_live_scenes(
    hub: Hub,
    operator: Operator,
    request_id: str,
    school_id: str,
    scenes: frozenset[Scene],
    fingerprint: bytes,
    render: Callable[[SchoolView], M],
    parse: Callable[[bytes], M],
) -> M:
    require_province_admin(operator, "setting a school's live scenes")

    def decide(now: int) -> tuple[M, Batch]:
        school = hub.campus.schools.get(school_id)
        if school is None:
            raise NotFound("school_id: no such school", field="school_id")
        before = school.live_scenes
        school.live_scenes = scenes
        text = live_scenes_text(scenes)
        rows = Batch(
            live_scenes=[LiveScenesRow(school_id, text)],
            audit=[
                AuditRow(
                    now,
                    "operator",
                    operator.operator_id,
                    school_id,
                    "",
                    "",
                    "SetLiveScenes",
                    request_id,
                    details(before=_names(before), after=_names(scenes)),
                )
            ],
        )
        return render(school_view(hub, operator, school_id)), rows

    return await idempotent(hub, operator, request_id, "SetLiveScenes", fingerprint, parse, decide)


def _names(scenes: frozenset[Scene]) -> str:
    return ",".join(s.name.lower() for s in sorted(scenes)) or "none"
