"""The request messages of the library and exam admin calls, built once for the async and the
sync clients (the retry loop resends the very message, so a mutating call keeps its request_id)."""

from __future__ import annotations

from collections.abc import Iterable

from onecard.exam.v1 import exam_service_pb2 as exam_pb
from onecard.library.v1 import library_service_pb2 as library_pb


def exam_session(
    session_id: str,
    school_id: str,
    subject: str,
    rooms: Iterable[str],
    start_ms: int,
    end_ms: int,
    *,
    opens_minutes_before: int | None = None,
    closes_minutes_after: int | None = None,
) -> exam_pb.ExamSession:
    """An exam session to create; the check-in window defaults to 30 minutes before the start
    until 15 minutes after it."""
    session = exam_pb.ExamSession(
        session_id=session_id,
        school_id=school_id,
        subject=subject,
        rooms=list(rooms),
        check_in_opens_minutes_before=opens_minutes_before,
        check_in_closes_minutes_after=closes_minutes_after,
    )
    session.start.FromMilliseconds(start_ms)
    session.end.FromMilliseconds(end_ms)
    return session


def roster_rows(rows: Iterable[exam_pb.RosterRow | tuple[str, str, str]]) -> list[exam_pb.RosterRow]:
    """Roster rows from messages or (student_id, room, seat) tuples."""
    return [
        r if isinstance(r, exam_pb.RosterRow) else exam_pb.RosterRow(student_id=r[0], room=r[1], seat=r[2])
        for r in rows
    ]


def create_exam_session(request_id: str, session: exam_pb.ExamSession) -> exam_pb.CreateExamSessionRequest:
    return exam_pb.CreateExamSessionRequest(request_id=request_id, session=session)


def import_exam_roster(
    request_id: str, session_id: str, rows: Iterable[exam_pb.RosterRow | tuple[str, str, str]]
) -> exam_pb.ImportExamRosterRequest:
    return exam_pb.ImportExamRosterRequest(
        request_id=request_id, session_id=session_id, rows=roster_rows(rows)
    )


def close_exam_session(request_id: str, session_id: str) -> exam_pb.CloseExamSessionRequest:
    return exam_pb.CloseExamSessionRequest(request_id=request_id, session_id=session_id)


def attendance(session_id: str) -> exam_pb.GetAttendanceRequest:
    return exam_pb.GetAttendanceRequest(session_id=session_id)


def overdue_loans(school_id: str) -> library_pb.ListOverdueLoansRequest:
    return library_pb.ListOverdueLoansRequest(school_id=school_id)
