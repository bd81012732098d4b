"""The library and exam rules, without a server: loans, limits, the overdue block, the roster
report, the check-in window, once-only check-in and wrong rooms."""

from __future__ import annotations

import dataclasses
import itertools

import pytest

from onecard_client.credentials import chip_cryptogram
from onecard_hub.domain.campus import Campus, ChipCredential, Tap
from onecard_hub.domain.decisions import DeclineReason
from onecard_hub.domain.errors import PermissionDenied
from onecard_hub.domain.exam import ExamSession, RosterProblem, RosterRow, check_in, import_roster
from onecard_hub.domain.ledger import Account, AccountKind, Ledger
from onecard_hub.domain.library import DAY_MS, Library, Loan
from onecard_hub.domain.model import (
    Card,
    CardStatus,
    Enrollment,
    Scene,
    School,
    Student,
    StudentGroup,
    Terminal,
    TerminalKind,
    Wallet,
)
from onecard_hub.domain.policy import default_policy, policy_from_json, policy_to_json

NOW = 1_795_492_800_000
KEY = b"k" * 32
_atc = itertools.count(1)


def small_campus() -> Campus:
    ledger = Ledger()
    campus = Campus(ledger, lambda card_no, pin: b"")
    campus.schools["sc"] = School("sc", "School", dataclasses.replace(default_policy(), loan_limit=2))
    for n in (1, 2):
        wallet = ledger.add(Account(n, AccountKind.WALLET, f"s-{n}", 0))
        student = Student(f"s-{n}", "sc", "张*三", StudentGroup.BOARDER, Enrollment.ENROLLED, Wallet(wallet))
        campus.students[student.student_id] = student
        campus.cards[f"C000000{n}"] = Card(f"C000000{n}", student, CardStatus.ACTIVE, KEY, KEY, b"")
    campus.terminals["D-1"] = Terminal("D-1", "sc", TerminalKind.LIBRARY_DESK)
    campus.terminals["X-1"] = Terminal("X-1", "sc", TerminalKind.EXAM_TABLET, location="A101")
    campus.build_blocklists()
    return campus


def tap(campus: Campus, card_no: str, terminal_id: str, scene: Scene, now: int = NOW) -> Tap:
    atc = next(_atc)
    cryptogram = chip_cryptogram(
        KEY,
        card_no=card_no,
        atc=atc,
        terminal_id=terminal_id,
        scene=int(scene),
        amount_fen=0,
        tap_time_ms=now,
    )
    credential = ChipCredential(card_no, atc, cryptogram)
    return Tap(f"r-{atc}", campus.terminals[terminal_id], scene, credential, 0, "", now)


def test_library_policy_defaults_and_round_trip() -> None:
    policy = default_policy()
    assert (policy.loan_limit, policy.loan_days) == (5, 30)
    changed = dataclasses.replace(policy, loan_limit=3, loan_days=14)
    assert policy_from_json(policy_to_json(changed)) == changed
    old = policy_to_json(policy).replace('"loan_days": 30, ', "").replace(', "loan_limit": 5', "")
    assert "loan" not in old and policy_from_json(old) == policy  # a policy from before issue 4


def test_loans_limit_and_overdue() -> None:
    campus, library = small_campus(), Library()
    borrow = Scene.LIBRARY_BORROW
    first = library.borrow(campus, tap(campus, "C0000001", "D-1", borrow), "B1", NOW)
    assert first.tap.approved and first.loan is not None and first.loans_held == 1
    assert first.loan.due_ms == NOW + 30 * DAY_MS
    taken = library.borrow(campus, tap(campus, "C0000002", "D-1", borrow), "B1", NOW)
    assert taken.tap.reason is DeclineReason.BOOK_UNAVAILABLE
    assert library.borrow(campus, tap(campus, "C0000001", "D-1", borrow), "B2", NOW).tap.approved
    full = library.borrow(campus, tap(campus, "C0000001", "D-1", borrow), "B3", NOW)
    assert (full.tap.reason, full.loans_held) == (DeclineReason.LOAN_LIMIT_REACHED, 2)
    later = NOW + 30 * DAY_MS + 1
    back = library.return_book(
        campus, tap(campus, "C0000001", "D-1", Scene.LIBRARY_RETURN, later), "B2", later
    )
    assert back.tap.approved and back.loan is not None and back.loan.days_overdue(later + DAY_MS) == 1
    overdue = library.borrow(campus, tap(campus, "C0000001", "D-1", borrow, later), "B3", later)
    assert overdue.tap.reason is DeclineReason.LOAN_OVERDUE
    assert [loan.book_id for loan in library.overdue("sc", later)] == ["B1"]
    assert library.overdue("other", later) == []
    wrong = library.return_book(campus, tap(campus, "C0000002", "D-1", Scene.LIBRARY_RETURN), "B1", NOW)
    assert wrong.tap.reason is DeclineReason.BOOK_NOT_ON_LOAN


@pytest.mark.parametrize(("late_ms", "days"), [(-1, 0), (0, 0), (1, 1), (DAY_MS, 1), (DAY_MS + 1, 2)])
def test_days_overdue_counts_started_days(late_ms: int, days: int) -> None:
    loan = Loan("L", "sc", "B", small_campus().students["s-1"], "C0000001", 0, 1_000)
    assert loan.days_overdue(1_000 + late_ms) == days


def test_a_desk_refuses_what_is_not_its_scene() -> None:
    campus = small_campus()
    with pytest.raises(PermissionDenied):
        Library().borrow(campus, tap(campus, "C0000001", "X-1", Scene.LIBRARY_BORROW), "B1", NOW)


def exam(campus: Campus) -> ExamSession:
    session = ExamSession("S", "sc", "数学", ("A101", "A102"), NOW + 20 * 60_000, NOW + 140 * 60_000)
    report = import_roster(campus, session, [RosterRow("s-1", "A101", "01"), RosterRow("s-2", "A102", "01")])
    assert report.rejected == [] and report.applied_rows == 2
    return session


def test_roster_rows_are_checked_one_by_one() -> None:
    campus = small_campus()
    session = exam(campus)
    report = import_roster(
        campus,
        session,
        [
            RosterRow("s-2", "A101", "01"),
            RosterRow("nobody", "A101", "02"),
            RosterRow("s-2", "B1", "02"),
            RosterRow("s-2", "A101", "bad seat"),
            RosterRow("s-1", "A102", "09"),
            RosterRow("s-1", "A102", "08"),
        ],
    )
    assert [(r.index, r.problem) for r in report.rejected] == [
        (0, RosterProblem.DUPLICATE_SEAT),
        (1, RosterProblem.UNKNOWN_STUDENT),
        (2, RosterProblem.ROOM_NOT_IN_SESSION),
        (3, RosterProblem.INVALID),
        (5, RosterProblem.DUPLICATE_STUDENT),
    ]
    assert session.seats["s-1"].seat == "09" and session.seats["s-2"].room == "A102"


def test_check_in_window_room_and_once() -> None:
    campus = small_campus()
    session = exam(campus)
    scene = Scene.EXAM_CHECK_IN
    early = NOW - 11 * 60_000  # the window opens 30 minutes before the start: NOW - 10 min
    decision = check_in(campus, session, tap(campus, "C0000001", "X-1", scene, early), "A101", early)
    assert decision.tap.reason is DeclineReason.OUTSIDE_CHECK_IN_WINDOW and decision.recorded is None
    wrong = check_in(campus, session, tap(campus, "C0000002", "X-1", scene), "A101", NOW)
    assert wrong.tap.reason is DeclineReason.WRONG_ROOM and session.wrong_room == [wrong.recorded]
    ok = check_in(campus, session, tap(campus, "C0000001", "X-1", scene), "A101", NOW)
    assert ok.tap.approved and ok.first is ok.recorded
    again = check_in(campus, session, tap(campus, "C0000001", "X-1", scene, NOW + 1), "A101", NOW + 1)
    assert again.tap.reason is DeclineReason.ALREADY_CHECKED_IN and again.first == ok.recorded
    late = session.closes_ms
    after = check_in(campus, session, tap(campus, "C0000002", "X-1", scene, late), "A102", late)
    assert after.tap.reason is DeclineReason.OUTSIDE_CHECK_IN_WINDOW
    session.closed_ms = NOW
    closed = check_in(campus, session, tap(campus, "C0000002", "X-1", scene), "A102", NOW)
    assert closed.tap.reason is DeclineReason.OUTSIDE_CHECK_IN_WINDOW
