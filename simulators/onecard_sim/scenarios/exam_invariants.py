"""The exam-day invariants, as a pure function over what the tablets saw and what the hub's
attendance lists (GetAttendance) say at the end.

- every roster student the tablets saw checked in (APPROVED) is listed present exactly once, in the
  room of the check-in; nobody is listed present without an approved check-in; no student is
  approved twice for one session;
- every double check-in (a student already approved, at the right tablet again) is answered
  ALREADY_CHECKED_IN — or OUTSIDE_CHECK_IN_WINDOW when its tap time is outside the window;
- a wrong room, a late arrival (tap time after the window closed) or a student not on the roster
  is never approved;
- the attendance counts match the devices: present = students approved, absent = roster − present,
  wrong-room attempts = WRONG_ROOM answers.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone

from onecard_sim.events import APPROVED

__all__ = ["ALREADY", "AttemptKind", "Attendance", "CheckInSeen", "SessionFacts", "check_exams"]

_CST = timezone(timedelta(hours=8))
ALREADY = "ALREADY_CHECKED_IN"
OUTSIDE = "OUTSIDE_CHECK_IN_WINDOW"
WRONG_ROOM = "WRONG_ROOM"


class AttemptKind:
    """What the student meant to do (the scenario's intention, not the hub's answer)."""

    ARRIVAL = "arrival"  # at the right tablet, window open
    DOUBLE = "double"  # again, right after an approval
    WRONG_ROOM = "wrong_room"  # at another room's tablet
    LATE = "late"  # after the window closed
    NOT_ON_ROSTER = "not_on_roster"  # a student who sits no exam in this session


@dataclass(frozen=True, slots=True)
class CheckInSeen:
    session_id: str
    student_id: str
    room: str  # the room of the tablet
    kind: str  # an AttemptKind
    outcome: str  # APPROVED, a decline reason name, or ERROR_<code>
    tap_ms: int


@dataclass(frozen=True)
class Attendance:
    """GetAttendance, reduced: present student → room (a repeated student appears twice in
    `present_rows`), absent students, wrong-room attempts."""

    present_rows: tuple[tuple[str, str], ...] = ()
    absent: frozenset[str] = frozenset()
    wrong_room_attempts: int = 0


@dataclass(frozen=True)
class SessionFacts:
    session_id: str
    roster: Mapping[str, str]  # student → room
    opens_ms: int
    closes_ms: int
    attendance: Attendance = field(default_factory=Attendance)


def check_exams(
    sessions: Iterable[SessionFacts], seen: Iterable[CheckInSeen]
) -> tuple[dict[str, object], list[str]]:
    """The report's `exam` section and one violation line per broken rule."""
    by_session: dict[str, list[CheckInSeen]] = {}
    for item in seen:
        by_session.setdefault(item.session_id, []).append(item)
    lines: list[str] = []
    totals: Counter[str] = Counter()
    outcomes: dict[str, Counter[str]] = {}
    for session in sessions:
        attempts = by_session.get(session.session_id, [])
        totals["sessions"] += 1
        totals["roster"] += len(session.roster)
        for attempt in attempts:
            outcomes.setdefault(attempt.kind, Counter())[attempt.outcome] += 1
        lines += _attempts(session, attempts)
        lines += _attendance(session, attempts, totals)
    section: dict[str, object] = {
        **{key: totals[key] for key in ("sessions", "roster", "present", "absent", "wrong_room_attempts")},
        "attempts": {kind: dict(sorted(c.items())) for kind, c in sorted(outcomes.items())},
    }
    return section, lines


def _attempts(session: SessionFacts, attempts: list[CheckInSeen]) -> list[str]:
    lines = []
    approvals = Counter(a.student_id for a in attempts if a.outcome == APPROVED)
    for student, count in sorted(approvals.items()):
        if count > 1:
            lines.append(f"session {session.session_id}: student {student} was approved {count} times")
    for a in attempts:
        where = f"session {session.session_id}: student {a.student_id} at room {a.room} ({_when(a.tap_ms)})"
        inside = session.opens_ms <= a.tap_ms <= session.closes_ms
        if (
            a.kind == AttemptKind.DOUBLE
            and a.outcome != ALREADY
            and not (a.outcome == OUTSIDE and not inside)
        ):
            if not a.outcome.startswith("ERROR_"):
                lines.append(f"{where}: a second check-in was answered {a.outcome}, not {ALREADY}")
        elif a.kind == AttemptKind.WRONG_ROOM and a.outcome == APPROVED:
            lines.append(f"{where}: approved in the wrong room (seat in {session.roster.get(a.student_id)})")
        elif a.kind == AttemptKind.LATE and a.outcome == APPROVED and a.tap_ms > session.closes_ms:
            lines.append(f"{where}: approved after the check-in window closed at {_when(session.closes_ms)}")
        elif a.kind == AttemptKind.NOT_ON_ROSTER and a.outcome == APPROVED:
            lines.append(f"{where}: approved although not on the session's roster")
    return lines


def _attendance(session: SessionFacts, attempts: list[CheckInSeen], totals: Counter[str]) -> list[str]:
    lines = []
    name = f"session {session.session_id}"
    approved = {a.student_id: a.room for a in attempts if a.outcome == APPROVED}
    listed = Counter(student for student, _ in session.attendance.present_rows)
    rooms = dict(session.attendance.present_rows)
    for student, room in sorted(approved.items()):
        if listed[student] != 1:
            lines.append(
                f"{name}: student {student} checked in (approved) but GetAttendance lists them present"
                f" {listed[student]} time(s)"
            )
        elif rooms[student] != room:
            lines.append(
                f"{name}: student {student} checked in at room {room}, listed present in {rooms[student]}"
            )
    for student in sorted(set(listed) - set(approved)):
        lines.append(f"{name}: student {student} is listed present without an approved check-in")
    present, absent = len(listed), len(session.attendance.absent)
    wrong = sum(1 for a in attempts if a.outcome == WRONG_ROOM)
    totals["present"] += present
    totals["absent"] += absent
    totals["wrong_room_attempts"] += session.attendance.wrong_room_attempts
    if present + absent != len(session.roster):
        lines.append(f"{name}: {present} present + {absent} absent ≠ {len(session.roster)} on the roster")
    if session.attendance.wrong_room_attempts != wrong:
        lines.append(
            f"{name}: GetAttendance lists {session.attendance.wrong_room_attempts} wrong-room attempt(s),"
            f" the tablets were answered WRONG_ROOM {wrong} time(s)"
        )
    return lines


def _when(hub_ms: int) -> str:
    return datetime.fromtimestamp(hub_ms / 1000, tz=_CST).strftime("%H:%M:%S")
