"""`onecard student …`: 学籍 (StudentRecordsService) — enroll, suspend, resume, graduate,
withdraw, transfer, show, and a school's roster from CSV."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from rich.console import Console

from onecard.records.v1 import student_records_service_pb2 as records_pb
from onecard_cli.render import show_record, show_rows
from onecard_cli.session import Session, UsageError, as_dict, mutating, request_id_of, secret
from onecard_client.sync import StudentRecordsClient

# Status changes: command → the client's method.
CHANGES = {
    "suspend": "suspend_student",
    "resume": "resume_student",
    "graduate": "graduate_student",
    "withdraw": "withdraw_student",
}


def register(commands: Any) -> None:
    group = commands.add_parser(
        "student", help="学籍: enroll, change status, transfer, show, import a roster"
    )
    actions = group.add_subparsers(dest="action", metavar="ACTION", required=True)
    enroll = mutating(
        actions.add_parser("enroll", help="enroll a student (ID number: ONECARD_ID_NUMBER or stdin)")
    )
    enroll.add_argument("student_id")
    enroll.add_argument("--school", required=True)
    enroll.add_argument("--name", required=True)
    enroll.add_argument("--birth-date", required=True, metavar="YYYY-MM-DD")
    enroll.add_argument("--group", choices=("boarder", "day"), default="boarder")
    enroll.set_defaults(run=_enroll)
    for action in CHANGES:
        parser = mutating(actions.add_parser(action, help=f"{action} a student"))
        parser.add_argument("student_id")
        parser.set_defaults(run=_change, method=CHANGES[action])
    transfer = mutating(actions.add_parser("transfer", help="move a student to another school"))
    transfer.add_argument("student_id")
    transfer.add_argument("--to", required=True, metavar="SCHOOL")
    transfer.set_defaults(run=_transfer)
    show = actions.add_parser("show", help="a student (masked)")
    show.add_argument("student_id")
    show.set_defaults(run=_show)
    roster = mutating(actions.add_parser("import-roster", help="enroll a school's roster from CSV"))
    roster.add_argument("file", metavar="FILE.csv")
    roster.add_argument("--school", required=True)
    roster.set_defaults(run=_import)


def _enroll(args: argparse.Namespace, session: Session) -> int:
    id_number = secret(args, "ID number", "ONECARD_ID_NUMBER")
    request_id = request_id_of(args)
    response = session.client(StudentRecordsClient).enroll_student(
        request_id, args.school, args.student_id, args.name, id_number, args.birth_date, args.group
    )
    session.emit(response, show_record, request_id=request_id)
    return 0


def _change(args: argparse.Namespace, session: Session) -> int:
    request_id = request_id_of(args)
    client = session.client(StudentRecordsClient)
    response = getattr(client, args.method)(request_id, args.student_id)
    session.emit(response, show_record, request_id=request_id)
    return 0


def _transfer(args: argparse.Namespace, session: Session) -> int:
    request_id = request_id_of(args)
    response = session.client(StudentRecordsClient).transfer_student(request_id, args.student_id, args.to)
    session.emit(response, show_record, request_id=request_id)
    return 0


def _show(args: argparse.Namespace, session: Session) -> int:
    session.emit(session.client(StudentRecordsClient).get_student(args.student_id), show_record)
    return 0


def _show_roster(console: Console, r: records_pb.ImportRosterResponse) -> None:
    console.print(f"enrolled {r.enrolled}, already there {r.existing}, rejected {r.rejected}")
    rows = as_dict(r).get("rows", [])
    if rows:
        show_rows(console, "rows", rows)


def _import(args: argparse.Namespace, session: Session) -> int:
    try:
        roster = Path(args.file).read_bytes()
    except OSError as exc:
        raise UsageError(f"{args.file}: {exc.strerror}") from None
    request_id = request_id_of(args)
    response = session.client(StudentRecordsClient).import_roster(request_id, args.school, roster)
    session.emit(response, _show_roster, request_id=request_id)
    return 1 if response.rejected else 0
