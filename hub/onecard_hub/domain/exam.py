"""The exam scene (考试管理): sessions with rooms and a check-in window, the seating roster,
check-ins (once per student), wrong-room attempts and attendance. Pure rules on in-memory
state; the use cases journal what they change.
"""

from __future__ import annotations

import enum
import re
from dataclasses import dataclass, field

from onecard_hub.domain.campus import Campus, Tap, TapResult
from onecard_hub.domain.decisions import APPROVED, DeclineReason
from onecard_hub.domain.desk_tap import admit
from onecard_hub.domain.model import Student

MINUTE_MS = 60_000
DEFAULT_OPENS_BEFORE_MIN = 30
DEFAULT_CLOSES_AFTER_MIN = 15
_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:\-]{0,63}")
_SEAT = re.compile(r"[A-Za-z0-9][A-Za-z0-9\-]{0,15}")


class RosterProblem(enum.IntEnum):
    """Numbers match onecard.exam.v1.RosterRowProblem; NONE: applied."""

    NONE = 0
    INVALID = 1
    UNKNOWN_STUDENT = 2
    ROOM_NOT_IN_SESSION = 3
    DUPLICATE_SEAT = 4
    DUPLICATE_STUDENT = 5
    ALREADY_CHECKED_IN = 6


@dataclass(frozen=True, slots=True)
class Seat:
    room: str
    seat: str


@dataclass(frozen=True, slots=True)
class CheckIn:
    """A check-in (`expected_room` == `room`) or a wrong-room attempt."""

    student_id: str
    expected_room: str
    room: str
    at_ms: int
    terminal_id: str
    request_id: str

    @property
    def present(self) -> bool:
        return self.room == self.expected_room


@dataclass(slots=True)
class ExamSession:
    session_id: str
    school_id: str
    subject: str
    rooms: tuple[str, ...]
    start_ms: int
    end_ms: int
    opens_before_min: int = DEFAULT_OPENS_BEFORE_MIN
    closes_after_min: int = DEFAULT_CLOSES_AFTER_MIN
    created_ms: int = 0
    closed_ms: int = 0  # 0 while open
    seats: dict[str, Seat] = field(default_factory=dict)  # student_id → seat
    holders: dict[Seat, str] = field(default_factory=dict)  # seat → student_id
    check_ins: dict[str, CheckIn] = field(default_factory=dict)  # student_id → the first
    wrong_room: list[CheckIn] = field(default_factory=list)  # in the order they happened

    @property
    def opens_ms(self) -> int:
        return self.start_ms - self.opens_before_min * MINUTE_MS

    @property
    def closes_ms(self) -> int:
        return self.start_ms + self.closes_after_min * MINUTE_MS

    def same_setup(self, other: ExamSession) -> bool:
        """Whether `other` describes this session as created (for a repeated create)."""
        return (
            self.session_id,
            self.school_id,
            self.subject,
            self.rooms,
            self.start_ms,
            self.end_ms,
            self.opens_before_min,
            self.closes_after_min,
        ) == (
            other.session_id,
            other.school_id,
            other.subject,
            other.rooms,
            other.start_ms,
            other.end_ms,
            other.opens_before_min,
            other.closes_after_min,
        )

    def seat_student(self, student_id: str, seat: Seat) -> None:
        old = self.seats.get(student_id)
        if old is not None:
            self.holders.pop(old, None)
        self.seats[student_id] = seat
        self.holders[seat] = student_id

    def record(self, check_in: CheckIn) -> None:
        if check_in.present:
            self.check_ins.setdefault(check_in.student_id, check_in)
        else:
            self.wrong_room.append(check_in)


@dataclass(frozen=True, slots=True)
class RosterRow:
    student_id: str
    room: str
    seat: str


@dataclass(frozen=True, slots=True)
class RosterResult:
    index: int
    problem: RosterProblem
    detail: str = ""


@dataclass(slots=True)
class RosterReport:
    rejected: list[RosterResult] = field(default_factory=list)
    applied: list[tuple[str, Seat]] = field(default_factory=list)  # (student_id, seat) that changed
    applied_rows: int = 0  # rows applied, unchanged ones included


@dataclass(slots=True)
class CheckInDecision:
    tap: TapResult
    seat: Seat | None = None  # the student's seat, when on the roster
    first: CheckIn | None = None  # the first check-in (ALREADY_CHECKED_IN) or this one (approved)
    recorded: CheckIn | None = None  # what this tap added to the session: to journal


def import_roster(campus: Campus, session: ExamSession, rows: list[RosterRow]) -> RosterReport:
    """Seats each good row; a refused row changes nothing. Rows apply in order, so a seat freed
    by an earlier row of the import may be taken by a later one."""
    report = RosterReport()
    seen: set[str] = set()
    for index, row in enumerate(rows):
        problem, detail = _row_problem(campus, session, row, seen)
        if problem is not RosterProblem.NONE:
            report.rejected.append(RosterResult(index, problem, detail))
            continue
        seen.add(row.student_id)
        seat = Seat(row.room, row.seat)
        report.applied_rows += 1
        if session.seats.get(row.student_id) != seat:
            session.seat_student(row.student_id, seat)
            report.applied.append((row.student_id, seat))
    return report


def _row_problem(
    campus: Campus, session: ExamSession, row: RosterRow, seen: set[str]
) -> tuple[RosterProblem, str]:
    for name, value, pattern in (
        ("student_id", row.student_id, _ID),
        ("room", row.room, _ID),
        ("seat", row.seat, _SEAT),
    ):
        if pattern.fullmatch(value) is None:
            return RosterProblem.INVALID, f"{name}: missing or malformed"
    student = campus.students.get(row.student_id)
    if student is None or student.school_id != session.school_id:
        return RosterProblem.UNKNOWN_STUDENT, "no student of the session's school with this id"
    if row.room not in session.rooms:
        return RosterProblem.ROOM_NOT_IN_SESSION, f"room {row.room} is not a room of this session"
    if row.student_id in seen:
        return RosterProblem.DUPLICATE_STUDENT, "the student is in an earlier row of this import"
    seat = Seat(row.room, row.seat)
    if row.student_id in session.check_ins and session.seats.get(row.student_id) != seat:
        return RosterProblem.ALREADY_CHECKED_IN, "the student has checked in: the seat cannot change"
    holder = session.holders.get(seat)
    if holder is not None and holder != row.student_id:
        return RosterProblem.DUPLICATE_SEAT, f"seat {row.seat} of room {row.room} is taken"
    return RosterProblem.NONE, ""


def check_in(campus: Campus, session: ExamSession, tap: Tap, room: str, now_ms: int) -> CheckInDecision:
    """Checks the holder in, once: the session is open, the student on its roster, inside the
    check-in window, in the room of their seat (a wrong room is recorded as an attempt)."""
    result = admit(campus, tap, now_ms)
    decision = CheckInDecision(result)
    if result.card is None or result.reason is not APPROVED:
        return decision
    student: Student = result.card.student
    decision.seat = seat = session.seats.get(student.student_id)
    first = session.check_ins.get(student.student_id)
    if session.closed_ms:
        result.reason = DeclineReason.OUTSIDE_CHECK_IN_WINDOW
    elif seat is None:
        result.reason = DeclineReason.NOT_ON_ROSTER
    elif first is not None:
        result.reason = DeclineReason.ALREADY_CHECKED_IN
        decision.first = first
    elif not session.opens_ms <= now_ms < session.closes_ms:
        result.reason = DeclineReason.OUTSIDE_CHECK_IN_WINDOW
    else:
        attempt = CheckIn(
            student.student_id, seat.room, room, now_ms, tap.terminal.terminal_id, tap.request_id
        )
        session.record(attempt)
        decision.recorded = attempt
        if attempt.present:
            decision.first = attempt
        else:
            result.reason = DeclineReason.WRONG_ROOM
    return decision
