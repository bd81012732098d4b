"""`onecard report`: usage statistics per school (GetUsageReport), as a table, CSV or JSON.

CSV and JSON are for the province's roll-up: one row (object) per school with fixed columns —
the counts, the usage rate, approved and declined taps per scene, and the window's dates.
"""

from __future__ import annotations

import argparse
import csv
import io
import json
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from onecard.admin.v1 import admin_service_pb2 as admin_pb
from onecard.auth.v1 import authorization_service_pb2 as auth_pb
from onecard_cli.session import Session, UsageError
from onecard_client.sync import AdminClient

COUNTS = ("students", "cards_issued", "ecards_issued", "bank_function_activated", "students_active")
FORMATS = ("table", "csv", "json")


def register(commands: Any) -> None:
    parser = commands.add_parser(
        "report",
        help="usage statistics per school (students, cards, e-cards, bank function, use in 7 days, taps)",
    )
    parser.add_argument("--school", default="", help="one school (a clerk: their own, the default)")
    parser.add_argument("--format", choices=FORMATS, default="", help="table (default), csv or json")
    parser.add_argument("--out", default="", metavar="FILE", help="write there instead of standard output")
    parser.set_defaults(run=run)


def scene_name(scene: int) -> str:
    return auth_pb.Scene.Name(scene).removeprefix("SCENE_").lower()  # type: ignore[arg-type]


def school_row(school: admin_pb.SchoolUsage, report: admin_pb.GetUsageReportResponse) -> dict[str, Any]:
    """One school as a flat record: the CSV row, and (with `taps` nested) the JSON object."""
    row: dict[str, Any] = {"school_id": school.school_id, "name": school.name}
    row.update({k: getattr(school, k) for k in COUNTS})
    row["usage_rate"] = round(school.usage_rate, 4)
    for t in school.taps:
        row[f"{scene_name(t.scene)}_approved"] = t.approved
        row[f"{scene_name(t.scene)}_declined"] = t.declined
    row["first_date"], row["last_date"] = report.first_date, report.last_date
    return row


def as_json(report: admin_pb.GetUsageReportResponse) -> dict[str, Any]:
    schools = []
    for school in report.schools:
        doc: dict[str, Any] = {"school_id": school.school_id, "name": school.name}
        doc.update({k: getattr(school, k) for k in COUNTS})
        doc["usage_rate"] = round(school.usage_rate, 4)
        doc["taps"] = {
            scene_name(t.scene): {"approved": t.approved, "declined": t.declined} for t in school.taps
        }
        schools.append(doc)
    return {
        "generated_at": report.generated_at.ToJsonString(),
        "window_days": report.window_days,
        "first_date": report.first_date,
        "last_date": report.last_date,
        "schools": schools,
        "totals": _totals(report),
    }


def as_csv(report: admin_pb.GetUsageReportResponse) -> str:
    rows = [school_row(s, report) for s in report.schools]
    text = io.StringIO()
    if rows:
        writer = csv.DictWriter(text, fieldnames=list(rows[0]), lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)
    return text.getvalue()


def _totals(report: admin_pb.GetUsageReportResponse) -> dict[str, Any]:
    totals: dict[str, Any] = {k: sum(getattr(s, k) for s in report.schools) for k in COUNTS}
    totals["usage_rate"] = (
        round(totals["students_active"] / totals["students"], 4) if totals["students"] else 0.0
    )
    taps: dict[str, dict[str, int]] = {}
    for school in report.schools:
        for t in school.taps:
            entry = taps.setdefault(scene_name(t.scene), {"approved": 0, "declined": 0})
            entry["approved"] += t.approved
            entry["declined"] += t.declined
    totals["taps"] = taps
    return totals


def show_table(console: Console, report: admin_pb.GetUsageReportResponse) -> None:
    scenes = [t.scene for t in report.schools[0].taps] if report.schools else []
    table = Table(
        title=f"Card use per school, {report.first_date} to {report.last_date} ({report.window_days} days)",
        caption="students: enrolled now; cards, e-cards, bank on, used: of them; taps: approved (declined)",
    )
    table.add_column("school")
    for heading in ("students", "cards", "e-cards", "bank on", "used", "rate"):
        table.add_column(heading, justify="right")
    for scene in scenes:
        table.add_column(scene_name(scene).replace("_", " "), justify="right")
    for school in report.schools:
        table.add_row(
            school.school_id,
            *(str(getattr(school, k)) for k in COUNTS),
            f"{school.usage_rate:.1%}",
            *(f"{t.approved} ({t.declined})" for t in school.taps),
        )
    if len(report.schools) > 1:
        totals = _totals(report)
        table.add_section()
        table.add_row(
            "all schools",
            *(str(totals[k]) for k in COUNTS),
            f"{totals['usage_rate']:.1%}",
            *(f"{v['approved']} ({v['declined']})" for v in totals["taps"].values()),
        )
    console.print(table)


def run(args: argparse.Namespace, session: Session) -> int:
    fmt = args.format or ("json" if session.json else "table")
    report = session.client(AdminClient).usage_report(args.school)
    if fmt == "json":
        text = json.dumps(as_json(report), ensure_ascii=False, indent=2) + "\n"
    elif fmt == "csv":
        text = as_csv(report)
    elif not args.out:
        show_table(session.out, report)
        return 0
    else:
        buffer = io.StringIO()
        show_table(Console(file=buffer, width=200, highlight=False), report)
        text = buffer.getvalue()
    if args.out:
        try:
            Path(args.out).write_text(text, encoding="utf-8")
        except OSError as exc:
            raise UsageError(f"--out {args.out}: {exc.strerror}") from None
        if not session.json:
            print(f"onecard report: {len(report.schools)} school(s) written to {args.out} ({fmt})")
    else:
        session.write(text)
    return 0
