"""StudentRecordsService (学籍): proto in → use case (`student_records.py`) → proto out."""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

import grpc
from google.protobuf.message import Message

from onecard.records.v1 import student_records_service_pb2 as pb
from onecard.records.v1 import student_records_service_pb2_grpc as pb_grpc
from onecard_hub import student_records as records
from onecard_hub.api import convert
from onecard_hub.api.identity import Identity
from onecard_hub.domain.enrollment import Action, StudentDataError, check_new_student, is_minor
from onecard_hub.domain.errors import InvalidArgument
from onecard_hub.domain.model import Enrollment, Student, StudentGroup
from onecard_hub.domain.roster_csv import decode, parse_roster
from onecard_hub.hub import Hub
from onecard_hub.security.protect import RequestFingerprint

_GROUPS = {pb.STUDENT_GROUP_BOARDER: StudentGroup.BOARDER, pb.STUDENT_GROUP_DAY: StudentGroup.DAY}
_GROUP_NUMBERS = {group: number for number, group in _GROUPS.items()}
_ENROLLMENT_NUMBERS = {
    Enrollment.ENROLLED: pb.ENROLLMENT_STATUS_ENROLLED,
    Enrollment.SUSPENDED: pb.ENROLLMENT_STATUS_SUSPENDED,
    Enrollment.GRADUATED: pb.ENROLLMENT_STATUS_GRADUATED,
    Enrollment.WITHDRAWN: pb.ENROLLMENT_STATUS_WITHDRAWN,
}
M = TypeVar("M", bound=Message)
StatusRequest = (
    pb.SuspendStudentRequest | pb.ResumeStudentRequest | pb.GraduateStudentRequest | pb.WithdrawStudentRequest
)


class StudentRecordsServicer(pb_grpc.StudentRecordsServiceServicer):
    def __init__(self, hub: Hub, fingerprint: RequestFingerprint, identity: Identity) -> None:
        self._hub = hub
        self._fingerprint = fingerprint
        self._identity = identity

    def _student(self, student: Student) -> pb.Student:
        return pb.Student(
            student_id=student.student_id,
            school_id=student.school_id,
            name_masked=student.name_masked,
            id_number_masked=student.id_masked,
            group=_GROUP_NUMBERS[student.group],
            enrollment=_ENROLLMENT_NUMBERS[student.enrollment],
            minor=is_minor(student.birth_date, records.today(self._hub)),
            wallet_balance_fen=student.wallet.balance_fen,
            card_nos=records.card_nos_of(self._hub, student),
        )

    async def EnrollStudent(
        self, request: pb.EnrollStudentRequest, context: grpc.aio.ServicerContext
    ) -> pb.EnrollStudentResponse:
        operator = self._identity.operator(context)
        request_id = convert.request_id(request.request_id)
        school_id = convert.request_id(request.school_id, "school_id")
        if request.group not in _GROUPS:
            raise InvalidArgument("group", "boarder or day")
        try:
            new = check_new_student(
                request.student_id,
                request.name,
                request.id_number,
                request.birth_date,
                _GROUPS[request.group],
            )
        except StudentDataError as exc:
            raise exc.as_invalid_argument() from None
        return await records.enroll(
            self._hub,
            operator,
            request_id,
            school_id,
            new,
            self._fingerprint.of("EnrollStudent", request),
            lambda s: pb.EnrollStudentResponse(student=self._student(s)),
            pb.EnrollStudentResponse.FromString,
        )

    async def _change(
        self,
        context: grpc.aio.ServicerContext,
        request: StatusRequest,
        action: Action,
        render: Callable[[Student], M],
        parse: Callable[[bytes], M],
    ) -> M:
        operator = self._identity.operator(context)
        request_id = convert.request_id(request.request_id)
        student_id = convert.request_id(request.student_id, "student_id")
        method = records.ACTION_NAMES[action]
        return await records.change_status(
            self._hub,
            operator,
            request_id,
            student_id,
            action,
            self._fingerprint.of(method, request),
            render,
            parse,
        )

    async def SuspendStudent(
        self, request: pb.SuspendStudentRequest, context: grpc.aio.ServicerContext
    ) -> pb.SuspendStudentResponse:
        return await self._change(
            context,
            request,
            Action.SUSPEND,
            lambda s: pb.SuspendStudentResponse(student=self._student(s)),
            pb.SuspendStudentResponse.FromString,
        )

    async def ResumeStudent(
        self, request: pb.ResumeStudentRequest, context: grpc.aio.ServicerContext
    ) -> pb.ResumeStudentResponse:
        return await self._change(
            context,
            request,
            Action.RESUME,
            lambda s: pb.ResumeStudentResponse(student=self._student(s)),
            pb.ResumeStudentResponse.FromString,
        )

    async def GraduateStudent(
        self, request: pb.GraduateStudentRequest, context: grpc.aio.ServicerContext
    ) -> pb.GraduateStudentResponse:
        return await self._change(
            context,
            request,
            Action.GRADUATE,
            lambda s: pb.GraduateStudentResponse(student=self._student(s)),
            pb.GraduateStudentResponse.FromString,
        )

    async def WithdrawStudent(
        self, request: pb.WithdrawStudentRequest, context: grpc.aio.ServicerContext
    ) -> pb.WithdrawStudentResponse:
        return await self._change(
            context,
            request,
            Action.WITHDRAW,
            lambda s: pb.WithdrawStudentResponse(student=self._student(s)),
            pb.WithdrawStudentResponse.FromString,
        )

    async def TransferStudent(
        self, request: pb.TransferStudentRequest, context: grpc.aio.ServicerContext
    ) -> pb.TransferStudentResponse:
        operator = self._identity.operator(context)
        request_id = convert.request_id(request.request_id)
        student_id = convert.request_id(request.student_id, "student_id")
        to_school_id = convert.request_id(request.to_school_id, "to_school_id")
        return await records.transfer(
            self._hub,
            operator,
            request_id,
            student_id,
            to_school_id,
            self._fingerprint.of("TransferStudent", request),
            lambda s, from_school: pb.TransferStudentResponse(
                student=self._student(s), from_school_id=from_school
            ),
            pb.TransferStudentResponse.FromString,
        )

    async def GetStudent(
        self, request: pb.GetStudentRequest, context: grpc.aio.ServicerContext
    ) -> pb.GetStudentResponse:
        operator = self._identity.operator(context)
        student_id = convert.request_id(request.student_id, "student_id")
        return pb.GetStudentResponse(
            student=self._student(records.student_of(self._hub, operator, student_id))
        )

    async def ImportRoster(
        self, request: pb.ImportRosterRequest, context: grpc.aio.ServicerContext
    ) -> pb.ImportRosterResponse:
        operator = self._identity.operator(context)
        request_id = convert.request_id(request.request_id)
        school_id = convert.request_id(request.school_id, "school_id")
        which = request.WhichOneof("roster")
        if which == "csv_bytes":
            rows = parse_roster(decode(request.csv_bytes), "csv_bytes")
        elif which == "csv_text":
            rows = parse_roster(request.csv_text, "csv_text")
        else:
            raise InvalidArgument("csv_text", "required: the roster as csv_text or csv_bytes")
        return await records.import_roster(
            self._hub,
            operator,
            request_id,
            school_id,
            rows,
            self._fingerprint.of("ImportRoster", request),
            _roster_response,
            pb.ImportRosterResponse.FromString,
        )


def _roster_response(results: list[records.RowResult]) -> pb.ImportRosterResponse:
    return pb.ImportRosterResponse(
        rows=[
            pb.RosterRowReport(
                line=r.line,
                student_id=r.student_id,
                outcome=r.outcome,  # type: ignore[arg-type]
                problem=r.problem,  # type: ignore[arg-type]
                message=r.message,
            )
            for r in results
        ],
        enrolled=sum(r.outcome == records.ENROLLED for r in results),
        existing=sum(r.outcome == records.EXISTING for r in results),
        rejected=sum(r.outcome == records.REJECTED for r in results),
    )
