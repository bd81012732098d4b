"""GetUsageReport's message: the usage report (onecard_hub/usage.py) as proto."""

from __future__ import annotations

from onecard.admin.v1 import admin_service_pb2 as pb
from onecard_hub.usage import UsageReport


def usage_response(report: UsageReport) -> pb.GetUsageReportResponse:
    response = pb.GetUsageReportResponse(
        window_days=report.window_days, first_date=report.first_date, last_date=report.last_date
    )
    response.generated_at.FromMilliseconds(report.generated_ms)
    for s in report.schools:
        response.schools.append(
            pb.SchoolUsage(
                school_id=s.school_id,
                name=s.name,
                students=s.students,
                cards_issued=s.cards_issued,
                ecards_issued=s.ecards_issued,
                bank_function_activated=s.bank_activated,
                students_active=s.students_active,
                usage_rate=round(s.usage_rate, 4),
                taps=[
                    pb.SceneTaps(scene=int(scene), approved=c.approved, declined=c.declined)  # type: ignore[arg-type]
                    for scene, c in s.taps.items()
                ],
            )
        )
    return response
