"""ExamService (exam tablets) and ExamAdminService (operators): thin — proto in, use case,
proto out."""

from __future__ import annotations

import grpc

from onecard.exam.v1 import exam_service_pb2 as pb
from onecard.exam.v1 import exam_service_pb2_grpc as pb_grpc
from onecard_hub import exams
from onecard_hub.api import convert
from onecard_hub.api.desk import desk_tap, fill, identifier, timestamp
from onecard_hub.api.identity import Identity
from onecard_hub.domain.errors import InvalidArgument
from onecard_hub.domain.exam import (
    DEFAULT_CLOSES_AFTER_MIN,
    DEFAULT_OPENS_BEFORE_MIN,
    CheckInDecision,
    ExamSession,
    RosterReport,
    RosterRow,
)
from onecard_hub.domain.model import Scene, Student
from onecard_hub.hub import Hub
from onecard_hub.security.protect import RequestFingerprint

MAX_ROOMS = 200
MAX_ROSTER_ROWS = 5_000
MAX_SUBJECT = 64
MAX_OPENS_BEFORE_MIN = 240
MAX_EXAM_MS = 24 * 3600 * 1000


def session_message(s: ExamSession) -> pb.ExamSession:
    message = pb.ExamSession(
        session_id=s.session_id,
        school_id=s.school_id,
        subject=s.subject,
        rooms=list(s.rooms),
        check_in_opens_minutes_before=s.opens_before_min,
        check_in_closes_minutes_after=s.closes_after_min,
        closed=bool(s.closed_ms),
        roster_size=len(s.seats),
    )
    message.start.FromMilliseconds(s.start_ms)
    message.end.FromMilliseconds(s.end_ms)
    return message


def session_from(m: pb.ExamSession) -> ExamSession:
    session_id = identifier(m.session_id, "session.session_id")
    school_id = identifier(m.school_id, "session.school_id")
    if not m.subject.strip() or len(m.subject) > MAX_SUBJECT:
        raise InvalidArgument("session.subject", f"1 to {MAX_SUBJECT} characters")
    if not 1 <= len(m.rooms) <= MAX_ROOMS:
        raise InvalidArgument("session.rooms", f"1 to {MAX_ROOMS} rooms")
    rooms = tuple(identifier(room, f"session.rooms[{i}]") for i, room in enumerate(m.rooms))
    if len(set(rooms)) != len(rooms):
        raise InvalidArgument("session.rooms", "a room is named twice")
    start = convert.required_instant_ms(m, "start", "session.start")
    end = convert.required_instant_ms(m, "end", "session.end")
    if not start < end <= start + MAX_EXAM_MS:
        raise InvalidArgument("session.end", "after start, at most 24 hours later")
    opens = DEFAULT_OPENS_BEFORE_MIN
    if m.HasField("check_in_opens_minutes_before"):
        opens = m.check_in_opens_minutes_before
        if not 0 <= opens <= MAX_OPENS_BEFORE_MIN:
            raise InvalidArgument("session.check_in_opens_minutes_before", f"0 to {MAX_OPENS_BEFORE_MIN}")
    closes = min(DEFAULT_CLOSES_AFTER_MIN, (end - start) // 60_000)
    if m.HasField("check_in_closes_minutes_after"):
        closes = m.check_in_closes_minutes_after
        if not 0 <= closes * 60_000 <= end - start:
            raise InvalidArgument("session.check_in_closes_minutes_after", "0 up to the exam's length")
    return ExamSession(session_id, school_id, m.subject, rooms, start, end, opens, closes)


class ExamServicer(pb_grpc.ExamServiceServicer):
    def __init__(self, hub: Hub, fingerprint: RequestFingerprint, identity: Identity) -> None:
        self._hub = hub
        self._fingerprint = fingerprint
        self._identity = identity

    async def CheckIn(
        self, request: pb.CheckInRequest, context: grpc.aio.ServicerContext
    ) -> pb.CheckInResponse:
        tap = desk_tap(request, self._identity.terminal(context), Scene.EXAM_CHECK_IN)
        session_id = identifier(request.session_id, "session_id")
        room = identifier(request.room, "room") if request.room else ""

        def render(decision: CheckInDecision, session: ExamSession, now_ms: int) -> pb.CheckInResponse:
            response = pb.CheckInResponse(session_id=session.session_id)
            fill(response, tap, decision.tap, now_ms)
            if decision.seat is not None:
                response.room, response.seat = decision.seat.room, decision.seat.seat
            if decision.first is not None:
                response.checked_in_at.FromMilliseconds(decision.first.at_ms)
            return response

        fingerprint = self._fingerprint.of("CheckIn", request)
        return await exams.check_in_at_tablet(
            self._hub, tap, session_id, room, fingerprint, render, pb.CheckInResponse.FromString
        )


class ExamAdminServicer(pb_grpc.ExamAdminServiceServicer):
    def __init__(self, hub: Hub, fingerprint: RequestFingerprint, identity: Identity) -> None:
        self._hub = hub
        self._fingerprint = fingerprint
        self._identity = identity

    async def CreateExamSession(
        self, request: pb.CreateExamSessionRequest, context: grpc.aio.ServicerContext
    ) -> pb.CreateExamSessionResponse:
        operator = self._identity.operator(context)
        request_id = identifier(request.request_id, "request_id")
        if not request.HasField("session"):
            raise InvalidArgument("session", "required")
        session = session_from(request.session)
        return await exams.create_session(
            self._hub,
            operator,
            request_id,
            session,
            self._fingerprint.of("CreateExamSession", request),
            lambda s: pb.CreateExamSessionResponse(session=session_message(s)),
            pb.CreateExamSessionResponse.FromString,
        )

    async def ImportExamRoster(
        self, request: pb.ImportExamRosterRequest, context: grpc.aio.ServicerContext
    ) -> pb.ImportExamRosterResponse:
        operator = self._identity.operator(context)
        request_id = identifier(request.request_id, "request_id")
        session_id = identifier(request.session_id, "session_id")
        if not 1 <= len(request.rows) <= MAX_ROSTER_ROWS:
            raise InvalidArgument("rows", f"1 to {MAX_ROSTER_ROWS} rows")
        rows = [RosterRow(r.student_id, r.room, r.seat) for r in request.rows]

        def render(report: RosterReport, session: ExamSession) -> pb.ImportExamRosterResponse:
            return pb.ImportExamRosterResponse(
                rejected=[
                    pb.RosterRowResult(index=r.index, problem=int(r.problem), detail=r.detail)  # type: ignore[arg-type]
                    for r in report.rejected
                ],
                applied=report.applied_rows,
                roster_size=len(session.seats),
            )

        return await exams.import_exam_roster(
            self._hub,
            operator,
            request_id,
            session_id,
            rows,
            self._fingerprint.of("ImportExamRoster", request),
            render,
            pb.ImportExamRosterResponse.FromString,
        )

    async def CloseExamSession(
        self, request: pb.CloseExamSessionRequest, context: grpc.aio.ServicerContext
    ) -> pb.CloseExamSessionResponse:
        operator = self._identity.operator(context)
        request_id = identifier(request.request_id, "request_id")
        session_id = identifier(request.session_id, "session_id")

        def render(session: ExamSession) -> pb.CloseExamSessionResponse:
            response = pb.CloseExamSessionResponse(session=session_message(session))
            response.closed_at.FromMilliseconds(session.closed_ms)
            return response

        return await exams.close_session(
            self._hub,
            operator,
            request_id,
            session_id,
            self._fingerprint.of("CloseExamSession", request),
            render,
            pb.CloseExamSessionResponse.FromString,
        )

    async def GetAttendance(
        self, request: pb.GetAttendanceRequest, context: grpc.aio.ServicerContext
    ) -> pb.GetAttendanceResponse:
        operator = self._identity.operator(context)
        session = exams.session_of(self._hub, operator, identifier(request.session_id, "session_id"))
        students = self._hub.campus.students
        response = pb.GetAttendanceResponse(session=session_message(session))
        for student_id, seat in sorted(session.seats.items(), key=lambda kv: (kv[1].room, kv[1].seat)):
            name = _masked(students.get(student_id))
            first = session.check_ins.get(student_id)
            if first is None:
                response.absent.add(
                    student_id=student_id, holder_name_masked=name, room=seat.room, seat=seat.seat
                )
                continue
            present = response.present.add(
                student_id=student_id,
                holder_name_masked=name,
                room=first.room,
                seat=seat.seat,
                terminal_id=first.terminal_id,
            )
            timestamp(present.checked_in_at, first.at_ms)
        for attempt in session.wrong_room:
            added = response.wrong_room_attempts.add(
                student_id=attempt.student_id,
                holder_name_masked=_masked(students.get(attempt.student_id)),
                expected_room=attempt.expected_room,
                room=attempt.room,
                terminal_id=attempt.terminal_id,
            )
            added.at.FromMilliseconds(attempt.at_ms)
        return response


def _masked(student: Student | None) -> str:
    return student.name_masked if student is not None else ""
