"""`onecard school …` (pilot roll-out: live scenes), `onecard library overdue`, `onecard exam …`
(sessions, rosters, attendance) and `onecard misuse` (cards used at two places too close in time)."""

from __future__ import annotations

import argparse
import csv
import io
from datetime import datetime
from pathlib import Path
from typing import Any

from onecard.auth.v1 import authorization_service_pb2 as auth_pb
from onecard.exam.v1 import exam_service_pb2 as exam_pb
from onecard_cli.render import show_record
from onecard_cli.session import Session, UsageError, mutating, request_id_of
from onecard_client.sync import AdminClient, ExamAdminClient, LibraryAdminClient

# Names people use for the scenes; each scene's own name works too (gate_entry, library_borrow, …).
SCENE_GROUPS: dict[str, tuple[int, ...]] = {
    "gate": (auth_pb.SCENE_GATE_ENTRY, auth_pb.SCENE_GATE_EXIT),
    "canteen": (auth_pb.SCENE_CANTEEN_PURCHASE,),
    "library": (auth_pb.SCENE_LIBRARY_BORROW, auth_pb.SCENE_LIBRARY_RETURN),
    "exam": (auth_pb.SCENE_EXAM_CHECK_IN,),
}


def scenes_from_text(text: str) -> list[int]:
    """ "gate,canteen" → scene numbers; "" or "none" → no scene."""
    found: list[int] = []
    for word in (w.strip().lower() for w in text.split(",")):
        if word in ("", "none"):
            continue
        if word in SCENE_GROUPS:
            found += SCENE_GROUPS[word]
            continue
        try:
            found.append(auth_pb.Scene.Value(f"SCENE_{word.upper()}"))
        except ValueError:
            names = sorted(SCENE_GROUPS) + [
                n.removeprefix("SCENE_").lower() for n in auth_pb.Scene.keys()[1:]
            ]
            raise UsageError(f"--live: unknown scene {word!r}; one of {', '.join(names)}") from None
    return sorted(set(found))


def register(commands: Any) -> None:
    school = commands.add_parser("school", help="a school, and its live scenes (pilot roll-out)")
    school_actions = school.add_subparsers(dest="action", metavar="ACTION", required=True)
    show = school_actions.add_parser("show", help="a school: live scenes, policy, students by status")
    show.add_argument("school_id")
    show.set_defaults(run=_school_show)
    live = mutating(school_actions.add_parser("scenes", help="set the live scenes (province administrators)"))
    live.add_argument("school_id")
    live.add_argument("--live", required=True, help="gate,canteen,library,exam (or scene names; 'none')")
    live.set_defaults(run=_school_scenes)

    library = commands.add_parser("library", help="the library: overdue loans")
    library_actions = library.add_subparsers(dest="action", metavar="ACTION", required=True)
    overdue = library_actions.add_parser("overdue", help="a school's overdue loans")
    overdue.add_argument("--school", default="")
    overdue.set_defaults(run=_overdue)

    exam = commands.add_parser("exam", help="exam sessions, rosters and attendance")
    exam_actions = exam.add_subparsers(dest="action", metavar="ACTION", required=True)
    create = mutating(exam_actions.add_parser("create", help="create an exam session"))
    create.add_argument("session_id")
    create.add_argument("--school", required=True)
    create.add_argument("--subject", required=True)
    create.add_argument("--rooms", required=True, help="comma-separated")
    create.add_argument("--start", required=True, help="ISO time, e.g. 2026-11-24T09:00+08:00")
    create.add_argument("--end", required=True)
    create.set_defaults(run=_exam_create)
    roster = mutating(
        exam_actions.add_parser("roster", help="import a session's roster (CSV: student_id,room,seat)")
    )
    roster.add_argument("session_id")
    roster.add_argument("file", metavar="FILE.csv")
    roster.set_defaults(run=_exam_roster)
    close = mutating(exam_actions.add_parser("close", help="close a session"))
    close.add_argument("session_id")
    close.set_defaults(run=_exam_close)
    attendance = exam_actions.add_parser("attendance", help="present, absent, wrong-room attempts")
    attendance.add_argument("session_id")
    attendance.set_defaults(run=_exam_attendance)

    misuse = commands.add_parser("misuse", help="cards used at two places too close in time")
    misuse.add_argument("--school", default="")
    misuse.add_argument("--limit", type=int, default=0)
    misuse.set_defaults(run=_misuse)


def _school_show(args: argparse.Namespace, session: Session) -> int:
    session.emit(session.client(AdminClient).get_school(args.school_id), show_record)
    return 0


def _school_scenes(args: argparse.Namespace, session: Session) -> int:
    scenes = scenes_from_text(args.live)
    request_id = request_id_of(args)
    response = session.client(AdminClient).set_live_scenes(request_id, args.school_id, scenes)
    session.emit(response, show_record, request_id=request_id)
    return 0


def _overdue(args: argparse.Namespace, session: Session) -> int:
    session.emit(session.client(LibraryAdminClient).list_overdue_loans(args.school), show_record)
    return 0


def _instant(text: str, option: str) -> datetime:
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise UsageError(f"{option}: not an ISO time: {text!r}") from None
    if moment.tzinfo is None:
        raise UsageError(f"{option}: give the time zone, e.g. {text}+08:00")
    return moment


def _exam_create(args: argparse.Namespace, session: Session) -> int:
    exam = exam_pb.ExamSession(
        session_id=args.session_id,
        school_id=args.school,
        subject=args.subject,
        rooms=[r.strip() for r in args.rooms.split(",") if r.strip()],
    )
    exam.start.FromDatetime(_instant(args.start, "--start"))
    exam.end.FromDatetime(_instant(args.end, "--end"))
    request_id = request_id_of(args)
    response = session.client(ExamAdminClient).create_exam_session(request_id, exam)
    session.emit(response, show_record, request_id=request_id)
    return 0


def _exam_roster(args: argparse.Namespace, session: Session) -> int:
    try:
        text = Path(args.file).read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        raise UsageError(f"{args.file}: cannot read it ({exc})") from None
    rows = [
        tuple(c.strip() for c in r) for r in csv.reader(io.StringIO(text)) if r and any(c.strip() for c in r)
    ]
    if rows and rows[0][0].lower() == "student_id":
        rows = rows[1:]
    if any(len(r) != 3 for r in rows):
        raise UsageError(f"{args.file}: every row needs student_id,room,seat")
    request_id = request_id_of(args)
    response = session.client(ExamAdminClient).import_exam_roster(
        request_id, args.session_id, [(r[0], r[1], r[2]) for r in rows]
    )
    session.emit(response, show_record, request_id=request_id)
    return 0


def _exam_close(args: argparse.Namespace, session: Session) -> int:
    request_id = request_id_of(args)
    response = session.client(ExamAdminClient).close_exam_session(request_id, args.session_id)
    session.emit(response, show_record, request_id=request_id)
    return 0


def _exam_attendance(args: argparse.Namespace, session: Session) -> int:
    session.emit(session.client(ExamAdminClient).get_attendance(args.session_id), show_record)
    return 0


def _misuse(args: argparse.Namespace, session: Session) -> int:
    response = session.client(AdminClient).list_misuse_signals(args.school, limit=args.limit)
    session.emit(response, show_record)
    return 0
