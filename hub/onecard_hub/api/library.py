"""LibraryService (library desks) and LibraryAdminService (operators): thin — proto in, use case,
proto out."""

from __future__ import annotations

import grpc

from onecard.library.v1 import library_service_pb2 as pb
from onecard.library.v1 import library_service_pb2_grpc as pb_grpc
from onecard_hub import library
from onecard_hub.api.desk import desk_tap, fill, identifier, timestamp
from onecard_hub.api.identity import Identity
from onecard_hub.domain.errors import InvalidArgument
from onecard_hub.domain.library import LibraryDecision, Loan
from onecard_hub.domain.model import Scene
from onecard_hub.hub import Hub
from onecard_hub.security.protect import RequestFingerprint

MAX_TEXT = 128


def loan_message(loan: Loan, now_ms: int) -> pb.Loan:
    message = pb.Loan(
        loan_id=loan.loan_id,
        school_id=loan.school_id,
        book_id=loan.book_id,
        student_id=loan.student.student_id,
        holder_name_masked=loan.student.name_masked,
        days_overdue=loan.days_overdue(now_ms),
    )
    message.borrowed_at.FromMilliseconds(loan.borrowed_ms)
    message.due_at.FromMilliseconds(loan.due_ms)
    timestamp(message.returned_at, loan.returned_ms)
    return message


class LibraryServicer(pb_grpc.LibraryServiceServicer):
    def __init__(self, hub: Hub, fingerprint: RequestFingerprint, identity: Identity) -> None:
        self._hub = hub
        self._fingerprint = fingerprint
        self._identity = identity

    async def Borrow(self, request: pb.BorrowRequest, context: grpc.aio.ServicerContext) -> pb.BorrowResponse:
        tap = desk_tap(request, self._identity.terminal(context), Scene.LIBRARY_BORROW)
        book_id = identifier(request.book_id, "book_id")

        def render(decision: LibraryDecision, now_ms: int) -> pb.BorrowResponse:
            response = pb.BorrowResponse(loans_held=decision.loans_held, loan_limit=decision.loan_limit)
            fill(response, tap, decision.tap, now_ms)
            if decision.loan is not None:
                response.loan.CopyFrom(loan_message(decision.loan, now_ms))
            return response

        fingerprint = self._fingerprint.of("Borrow", request)
        return await library.borrow(
            self._hub, tap, book_id, fingerprint, render, pb.BorrowResponse.FromString
        )

    async def Return(self, request: pb.ReturnRequest, context: grpc.aio.ServicerContext) -> pb.ReturnResponse:
        tap = desk_tap(request, self._identity.terminal(context), Scene.LIBRARY_RETURN)
        book_id = identifier(request.book_id, "book_id")

        def render(decision: LibraryDecision, now_ms: int) -> pb.ReturnResponse:
            response = pb.ReturnResponse(loans_held=decision.loans_held)
            fill(response, tap, decision.tap, now_ms)
            if decision.loan is not None:
                response.loan.CopyFrom(loan_message(decision.loan, now_ms))
            return response

        fingerprint = self._fingerprint.of("Return", request)
        return await library.return_book(
            self._hub, tap, book_id, fingerprint, render, pb.ReturnResponse.FromString
        )


class LibraryAdminServicer(pb_grpc.LibraryAdminServiceServicer):
    def __init__(self, hub: Hub, identity: Identity) -> None:
        self._hub = hub
        self._identity = identity

    async def ListOverdueLoans(
        self, request: pb.ListOverdueLoansRequest, context: grpc.aio.ServicerContext
    ) -> pb.ListOverdueLoansResponse:
        operator = self._identity.operator(context)
        if len(request.school_id) > MAX_TEXT:
            raise InvalidArgument("school_id", f"at most {MAX_TEXT} characters")
        loans = library.overdue_loans(self._hub, operator, request.school_id)
        now = self._hub.clock.now_ms()
        response = pb.ListOverdueLoansResponse(loans=[loan_message(loan, now) for loan in loans])
        response.as_of.FromMilliseconds(now)
        return response
