"""Proto ↔ domain for the pilot roll-out (AdminService.SetLiveScenes, GetSchool)."""

from __future__ import annotations

from onecard.admin.v1 import admin_service_pb2 as pb
from onecard_hub.domain.model import Enrollment, SchoolPolicy, TimeWindow
from onecard_hub.pilot import SchoolView


def _hhmm(minute: int) -> str:
    return f"{minute // 60:02d}:{minute % 60:02d}"


def _window(w: TimeWindow) -> str:
    return f"{_hhmm(w.start_min)}-{_hhmm(w.end_min)}"


def policy_summary(policy: SchoolPolicy) -> pb.PolicySummary:
    return pb.PolicySummary(
        pin_free_limit_fen=policy.pin_free_limit_fen,
        daily_limit_fen=policy.daily_limit_fen,
        pin_max_failures=policy.pin_max_failures,
        meal_windows=[f"{m.name} {_window(m.window)}" for m in policy.meal_windows],
        gate_groups=[f"{name} ({g.anti_passback.value})" for name, g in sorted(policy.gate_groups.items())],
        offline_per_payment_fen=policy.offline_per_payment_fen,
        offline_per_card_day_fen=policy.offline_per_card_day_fen,
    )


def school_message(view: SchoolView) -> pb.School:
    school, counts = view.school, view.students
    return pb.School(
        school_id=school.school_id,
        name=school.name,
        live_scenes=[int(s) for s in sorted(school.live_scenes)],  # type: ignore[misc]
        policy=policy_summary(school.policy),
        students_enrolled=counts[Enrollment.ENROLLED],
        students_suspended=counts[Enrollment.SUSPENDED],
        students_graduated=counts[Enrollment.GRADUATED],
        students_withdrawn=counts[Enrollment.WITHDRAWN],
    )
