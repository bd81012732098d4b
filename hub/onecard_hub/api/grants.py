"""GrantService (奖助学金): proto in → use case (`grants/batches.py`) → proto out."""

from __future__ import annotations

import functools
from typing import TypeVar

import grpc

from onecard.grants.v1 import grant_service_pb2 as pb
from onecard.grants.v1 import grant_service_pb2_grpc as pb_grpc
from onecard_hub.api import convert
from onecard_hub.api.identity import Identity
from onecard_hub.domain.grant_csv import parse_grant_csv
from onecard_hub.domain.grants import (
    CoverageCell,
    GrantBatch,
    GrantType,
    ItemStatus,
    Line,
    LineError,
    Notification,
)
from onecard_hub.grants import batches as uc
from onecard_hub.grants.runtime import Grants
from onecard_hub.hub import Hub
from onecard_hub.security.protect import RequestFingerprint

# The two ways to submit a batch answer the same fields, each in its own message (Buf style).
Submission = TypeVar("Submission", pb.SubmitGrantBatchResponse, pb.ImportGrantBatchCsvResponse)


def batch_pb(hub: Hub, batch: GrantBatch) -> pb.GrantBatch:
    totals: dict[ItemStatus, list[int]] = {s: [0, 0] for s in ItemStatus}
    items = []
    for item in batch.items.values():
        totals[item.status][0] += 1
        totals[item.status][1] += item.amount_fen
        student = hub.campus.students.get(item.student_id)
        items.append(
            pb.GrantItem(
                student_id=item.student_id,
                name_masked=student.name_masked if student else "",
                amount_fen=item.amount_fen,
                status=pb.ItemStatus.ValueType(item.status),
                fail_reason=pb.FailReason.ValueType(item.fail_reason),
                attempts=item.attempts,
                transfer_id=item.transfer_id,
                bank_code=item.bank_code,
            )
        )
    return pb.GrantBatch(
        school_id=batch.school_id,
        batch_id=batch.batch_id,
        grant_type=pb.GrantType.ValueType(batch.grant_type),
        academic_year=batch.academic_year,
        status=pb.BatchStatus.ValueType(batch.status),
        submitted_by=batch.submitted_by,
        approved_by=batch.approved_by,
        total_fen=batch.total_fen,
        totals=[
            pb.StatusTotal(status=pb.ItemStatus.ValueType(s), count=c, sum_fen=f)
            for s, (c, f) in totals.items()
            if c
        ],
        items=items,
    )


def _notification(n: Notification) -> pb.Notification:
    return pb.Notification(
        school_id=n.school_id,
        batch_id=n.batch_id,
        student_id=n.student_id,
        name_masked=n.name_masked,
        grant_type=pb.GrantType.ValueType(n.grant_type),
        amount_fen=n.amount_fen,
        created_ms=n.created_ms,
        message=n.message,
    )


def _cell(c: CoverageCell) -> pb.CoverageCell:
    return pb.CoverageCell(
        grant_type=pb.GrantType.ValueType(c.grant_type),
        group=pb.StudentGroup.ValueType(c.group),
        students=c.students,
        paid_students=c.paid_students,
        paid_fen=c.paid_fen,
    )


class GrantServicer(pb_grpc.GrantServiceServicer):
    def __init__(self, hub: Hub, grants: Grants, fingerprint: RequestFingerprint, identity: Identity) -> None:
        self._hub = hub
        self._grants = grants
        self._fingerprint = fingerprint
        self._identity = identity

    def _submitted(self, answer: type[Submission], s: uc.Submitted) -> Submission:
        return answer(
            accepted=s.accepted,
            batch=batch_pb(self._hub, s.batch) if s.batch is not None else None,
            errors=[
                pb.LineError(
                    line=e.line,
                    student_id=e.student_id,
                    problem=pb.LineProblem.ValueType(e.problem),
                    message=e.message,
                )
                for e in s.errors
            ],
            notified=s.notified,
        )

    async def _submit(
        self,
        context: grpc.aio.ServicerContext,
        request: pb.SubmitGrantBatchRequest | pb.ImportGrantBatchCsvRequest,
        method: str,
        lines: list[Line],
        parse_errors: list[LineError],
        answer: type[Submission],
    ) -> Submission:
        operator = self._identity.operator(context)
        request_id = convert.request_id(request.request_id)
        uc.check_new_batch(request.batch_id, request.grant_type, request.academic_year, len(lines))
        new = uc.NewBatch(
            request.school_id,
            request.batch_id,
            GrantType(request.grant_type),
            request.academic_year,
            lines,
            request.accept_valid_lines,
            parse_errors,
        )
        return await uc.submit(
            self._hub,
            self._grants.book,
            operator,
            request_id,
            new,
            self._fingerprint.of(method, request),
            functools.partial(self._submitted, answer),
            answer.FromString,
        )

    async def SubmitGrantBatch(
        self, request: pb.SubmitGrantBatchRequest, context: grpc.aio.ServicerContext
    ) -> pb.SubmitGrantBatchResponse:
        lines = [Line(n, i.student_id, i.amount_fen) for n, i in enumerate(request.items, start=1)]
        return await self._submit(
            context, request, "SubmitGrantBatch", lines, [], pb.SubmitGrantBatchResponse
        )

    async def ImportGrantBatchCsv(
        self, request: pb.ImportGrantBatchCsvRequest, context: grpc.aio.ServicerContext
    ) -> pb.ImportGrantBatchCsvResponse:
        lines, errors = parse_grant_csv(request.csv)
        return await self._submit(
            context, request, "ImportGrantBatchCsv", lines, errors, pb.ImportGrantBatchCsvResponse
        )

    async def NotifyBatch(
        self, request: pb.NotifyBatchRequest, context: grpc.aio.ServicerContext
    ) -> pb.NotifyBatchResponse:
        operator = self._identity.operator(context)
        return await uc.notify(
            self._hub,
            self._grants.book,
            operator,
            convert.request_id(request.request_id),
            request.school_id,
            request.batch_id,
            self._fingerprint.of("NotifyBatch", request),
            lambda n: pb.NotifyBatchResponse(notified=n),
            pb.NotifyBatchResponse.FromString,
        )

    async def ListNotifications(
        self, request: pb.ListNotificationsRequest, context: grpc.aio.ServicerContext
    ) -> pb.ListNotificationsResponse:
        operator = self._identity.operator(context)
        found = uc.notifications(self._hub, self._grants.book, operator, request.school_id, request.batch_id)
        return pb.ListNotificationsResponse(notifications=[_notification(n) for n in found])

    async def ApproveGrantBatch(
        self, request: pb.ApproveGrantBatchRequest, context: grpc.aio.ServicerContext
    ) -> pb.ApproveGrantBatchResponse:
        operator = self._identity.operator(context)
        return await uc.approve(
            self._hub,
            self._grants.book,
            operator,
            convert.request_id(request.request_id),
            request.school_id,
            request.batch_id,
            self._fingerprint.of("ApproveGrantBatch", request),
            lambda b: pb.ApproveGrantBatchResponse(batch=batch_pb(self._hub, b)),
            pb.ApproveGrantBatchResponse.FromString,
            self._grants.wake,
        )

    async def RetryFailedItems(
        self, request: pb.RetryFailedItemsRequest, context: grpc.aio.ServicerContext
    ) -> pb.RetryFailedItemsResponse:
        operator = self._identity.operator(context)
        return await uc.retry_failed(
            self._hub,
            self._grants.book,
            operator,
            convert.request_id(request.request_id),
            request.school_id,
            request.batch_id,
            self._fingerprint.of("RetryFailedItems", request),
            lambda n, b: pb.RetryFailedItemsResponse(retried=n, batch=batch_pb(self._hub, b)),
            pb.RetryFailedItemsResponse.FromString,
            self._grants.wake,
        )

    async def GetGrantBatch(
        self, request: pb.GetGrantBatchRequest, context: grpc.aio.ServicerContext
    ) -> pb.GetGrantBatchResponse:
        operator = self._identity.operator(context)
        batch = uc.batch_of(self._hub, self._grants.book, operator, request.school_id, request.batch_id)
        return pb.GetGrantBatchResponse(batch=batch_pb(self._hub, batch))

    async def GetGrantCoverage(
        self, request: pb.GetGrantCoverageRequest, context: grpc.aio.ServicerContext
    ) -> pb.GetGrantCoverageResponse:
        operator = self._identity.operator(context)
        cells, not_covered, gaps = uc.grant_coverage(
            self._hub, self._grants.book, operator, request.school_id, request.academic_year
        )
        return pb.GetGrantCoverageResponse(
            cells=[_cell(c) for c in cells],
            types_not_covered=[pb.GrantType.ValueType(t) for t in not_covered],
            gaps=[_cell(c) for c in gaps],
        )


__all__ = ["GrantServicer", "batch_pb"]
