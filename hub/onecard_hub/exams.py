"""Use cases of the exam scene (考试管理): sessions, rosters and attendance for the card office;
check-in at an exam tablet. The rules are in `domain/exam.py`.

Every mutating call is idempotent by (caller, request_id) and durable before its answer
(`once.run_once`); a check-in is journaled like an Authorize (request row with card, scene and
decision, the card's counter, the QR nonce), plus the check-in or wrong-room attempt it records.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import TypeVar

from google.protobuf.message import Message

from onecard_hub.domain.campus import Tap
from onecard_hub.domain.errors import (
    AlreadyExists,
    FailedPrecondition,
    InvalidArgument,
    NotFound,
    PermissionDenied,
)
from onecard_hub.domain.exam import (
    CheckIn,
    CheckInDecision,
    ExamSession,
    RosterReport,
    RosterRow,
    check_in,
    import_roster,
)
from onecard_hub.domain.model import Operator, Terminal
from onecard_hub.hub import Hub
from onecard_hub.library import card_state_rows, tap_request_row
from onecard_hub.once import run_once
from onecard_hub.store.records import Batch, ExamCheckInRow, ExamSeatRow, ExamSessionRow, RequestRow

M = TypeVar("M", bound=Message)
CHECK_IN = "CheckIn"
CREATE_EXAM_SESSION = "CreateExamSession"
IMPORT_EXAM_ROSTER = "ImportExamRoster"
CLOSE_EXAM_SESSION = "CloseExamSession"


# -- the exam tablet ---------------------------------------------------------------------


async def check_in_at_tablet(
    hub: Hub,
    tap: Tap,
    session_id: str,
    room: str,
    fingerprint: bytes,
    render: Callable[[CheckInDecision, ExamSession, int], M],
    parse: Callable[[bytes], M],
) -> M:
    key = (tap.terminal.terminal_id, tap.request_id)

    def act(now: int) -> tuple[M, Batch, RequestRow]:
        hub.campus.check_scene(tap.terminal, tap.scene)
        session = hub.exams.get(session_id)
        if session is None:
            raise NotFound("session_id: no such exam session", field="session_id")
        if session.school_id != tap.terminal.school_id:
            raise PermissionDenied("session_id: an exam session of another school")
        where = _room(tap.terminal, room, session)
        decision = check_in(hub.campus, session, tap, where, now)
        result = decision.tap
        rows = Batch(card_states=card_state_rows(result.card, result.card_changed))
        if decision.recorded is not None:
            rows.exam_check_ins.append(check_in_row(session.session_id, decision.recorded))
        return render(decision, session, now), rows, tap_request_row(key, CHECK_IN, tap, result, now)

    return await run_once(hub, key, CHECK_IN, fingerprint, parse, act)


def _room(terminal: Terminal, room: str, session: ExamSession) -> str:
    """The tablet's room: its registered location, or the room it names when it has none."""
    if terminal.location and room and room != terminal.location:
        raise InvalidArgument("room", "the tablet is registered in another room")
    where = room or terminal.location
    if not where:
        raise InvalidArgument("room", "required: the tablet has no registered location")
    if where not in session.rooms:
        raise InvalidArgument("room", "not a room of this exam session")
    return where


# -- the card office ---------------------------------------------------------------------


def _in_scope(operator: Operator, school_id: str) -> None:
    if operator.school_id and operator.school_id != school_id:
        raise PermissionDenied("session_id: an exam session of another school than the operator's")


def session_of(hub: Hub, operator: Operator, session_id: str) -> ExamSession:
    session = hub.exams.get(session_id)
    if session is None:
        raise NotFound("session_id: no such exam session", field="session_id")
    _in_scope(operator, session.school_id)
    return session


async def create_session(
    hub: Hub,
    operator: Operator,
    request_id: str,
    session: ExamSession,
    fingerprint: bytes,
    render: Callable[[ExamSession], M],
    parse: Callable[[bytes], M],
) -> M:
    key = (operator.operator_id, request_id)

    def act(now: int) -> tuple[M, Batch, RequestRow]:
        if session.school_id not in hub.campus.schools:
            raise NotFound("session.school_id: no such school", field="session.school_id")
        if operator.school_id and operator.school_id != session.school_id:
            raise PermissionDenied("session.school_id: another school than the operator's")
        rows = Batch()
        existing = hub.exams.get(session.session_id)
        if existing is None:
            session.created_ms = now
            hub.exams[session.session_id] = existing = session
            rows.exam_sessions.append(session_row(session))
        elif not existing.same_setup(session):
            raise AlreadyExists("session.session_id: an exam session with other values exists")
        request = RequestRow(key[0], key[1], CREATE_EXAM_SESSION, b"", b"", now)
        return render(existing), rows, request

    return await run_once(hub, key, CREATE_EXAM_SESSION, fingerprint, parse, act)


async def import_exam_roster(
    hub: Hub,
    operator: Operator,
    request_id: str,
    session_id: str,
    rows_in: list[RosterRow],
    fingerprint: bytes,
    render: Callable[[RosterReport, ExamSession], M],
    parse: Callable[[bytes], M],
) -> M:
    key = (operator.operator_id, request_id)

    def act(now: int) -> tuple[M, Batch, RequestRow]:
        session = session_of(hub, operator, session_id)
        _open(session)
        report = import_roster(hub.campus, session, rows_in)
        rows = Batch(exam_seats=[ExamSeatRow(session_id, sid, s.room, s.seat) for sid, s in report.applied])
        request = RequestRow(key[0], key[1], IMPORT_EXAM_ROSTER, b"", b"", now)
        return render(report, session), rows, request

    return await run_once(hub, key, IMPORT_EXAM_ROSTER, fingerprint, parse, act)


async def close_session(
    hub: Hub,
    operator: Operator,
    request_id: str,
    session_id: str,
    fingerprint: bytes,
    render: Callable[[ExamSession], M],
    parse: Callable[[bytes], M],
) -> M:
    key = (operator.operator_id, request_id)

    def act(now: int) -> tuple[M, Batch, RequestRow]:
        session = session_of(hub, operator, session_id)
        _open(session)
        session.closed_ms = now
        request = RequestRow(key[0], key[1], CLOSE_EXAM_SESSION, b"", b"", now)
        return render(session), Batch(exam_sessions=[session_row(session)]), request

    return await run_once(hub, key, CLOSE_EXAM_SESSION, fingerprint, parse, act)


def _open(session: ExamSession) -> None:
    if session.closed_ms:
        raise FailedPrecondition(
            "session_id: the exam session is closed",
            reason="ILLEGAL_TRANSITION",
            metadata={"state": "closed"},
        )


# -- journal rows ------------------------------------------------------------------------


def session_row(s: ExamSession) -> ExamSessionRow:
    return ExamSessionRow(
        s.session_id,
        s.school_id,
        s.subject,
        json.dumps(list(s.rooms)),
        s.start_ms,
        s.end_ms,
        s.opens_before_min,
        s.closes_after_min,
        s.created_ms,
        s.closed_ms,
    )


def check_in_row(session_id: str, c: CheckIn) -> ExamCheckInRow:
    return ExamCheckInRow(
        session_id, c.student_id, c.expected_room, c.room, c.at_ms, c.terminal_id, c.request_id
    )
