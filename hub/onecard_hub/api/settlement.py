"""SettlementService: proto in → use case (settlement/) → proto out. Operators only; a clerk sees
their own school's merchants and students, a province administrator every school."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from typing import TypeVar

import grpc
from google.protobuf.message import Message

from onecard.settlement.v1 import settlement_service_pb2 as pb
from onecard.settlement.v1 import settlement_service_pb2_grpc as pb_grpc
from onecard_hub.api import convert
from onecard_hub.api.identity import Identity
from onecard_hub.card_office.common import student_in_scope
from onecard_hub.domain.errors import InvalidArgument
from onecard_hub.domain.model import Operator
from onecard_hub.domain.settlement import PaymentStatus, parse_business_date
from onecard_hub.hub import Hub
from onecard_hub.once import run_once_awaiting
from onecard_hub.security.protect import RequestFingerprint
from onecard_hub.settlement import merchants, refunds
from onecard_hub.settlement.book import Payment
from onecard_hub.settlement.reconcile import banks_to_check, reconcile_date
from onecard_hub.settlement.runtime import Settlement
from onecard_hub.store.records import ReconciliationRow
from onecard_hub.student_records import schools_in_scope

M = TypeVar("M", bound=Message)
STATUS = {
    PaymentStatus.PENDING: pb.PAYMENT_STATUS_PENDING,
    PaymentStatus.UNCERTAIN: pb.PAYMENT_STATUS_UNCERTAIN,
    PaymentStatus.PAID: pb.PAYMENT_STATUS_PAID,
    PaymentStatus.FAILED: pb.PAYMENT_STATUS_FAILED,
    PaymentStatus.NOTHING_TO_PAY: pb.PAYMENT_STATUS_NOTHING_TO_PAY,
}
FINDING = {
    "matched": pb.FINDING_MATCHED,
    "missing_at_bank": pb.FINDING_MISSING_AT_BANK,
    "missing_in_hub": pb.FINDING_MISSING_IN_HUB,
    "amount_differs": pb.FINDING_AMOUNT_DIFFERS,
}
ACTION = {"none": pb.SETTLE_ACTION_NONE, "void": pb.SETTLE_ACTION_VOIDED, "post": pb.SETTLE_ACTION_POSTED}


def merchant_message(p: Payment) -> pb.MerchantSettlement:
    return pb.MerchantSettlement(
        merchant_id=p.party_id,
        school_id=p.school_id,
        business_date=p.business_date,
        bank_code=p.bank_code,
        sales_fen=p.sales_fen,
        sales_count=p.sales_count,
        given_back_fen=p.given_back_fen,
        given_back_count=p.given_back_count,
        takings_fen=p.sales_fen - p.given_back_fen,
        paid_fen=p.paid_fen,
        status=STATUS[p.status],
        transfer_id=p.transfer_id,
        failure=p.failure,
    )


def refund_message(p: Payment) -> pb.WalletRefund:
    return pb.WalletRefund(
        student_id=p.party_id,
        school_id=p.school_id,
        bank_code=p.bank_code,
        amount_fen=p.amount_fen,
        status=STATUS[p.status],
        transfer_id=p.transfer_id,
        failure=p.failure,
    )


def report_message(row: ReconciliationRow) -> pb.ReconciliationReport:
    body = json.loads(row.report)
    report = pb.ReconciliationReport(
        bank_code=row.bank_code,
        business_date=row.business_date,
        unexplained=row.unexplained,
        statement_error=body.get("statement_error", ""),
    )
    for line in body["lines"]:
        report.lines.append(
            pb.ReconciliationLine(
                transfer_id=line["transfer_id"],
                flow=line["flow"],
                finding=FINDING[line["finding"]],
                action=ACTION[line["action"]],
                hub_amount_fen=line["hub_amount_fen"],
                bank_amount_fen=line["bank_amount_fen"],
                hub_state=line["hub_state"],
                bank_status=line["bank_status"],
                unexplained=line["unexplained"],
                note=line["note"],
            )
        )
        setattr(report, line["finding"], getattr(report, line["finding"]) + 1)  # the count's field
        if line["action"] != "none":
            report.auto_settled += 1
    return report


class SettlementServicer(pb_grpc.SettlementServiceServicer):
    def __init__(
        self, hub: Hub, settlement: Settlement, fingerprint: RequestFingerprint, identity: Identity
    ) -> None:
        self._hub = hub
        self._settlement = settlement
        self._fingerprint = fingerprint
        self._identity = identity

    async def _once(
        self,
        operator: Operator,
        request_id: str,
        method: str,
        request: Message,
        parse: Callable[[bytes], M],
        act: Callable[[], Awaitable[M]],
    ) -> M:
        """Idempotent by (operator, request_id): a repeat answers the first answer; the use cases are
        idempotent by purpose themselves, so a crash before the answer is journaled repeats safely."""
        key = (operator.operator_id, request_id)
        fingerprint = self._fingerprint.of(method, request)
        return await run_once_awaiting(self._hub, key, method, fingerprint, parse, act)

    async def RunMerchantSettlement(
        self, request: pb.RunMerchantSettlementRequest, context: grpc.aio.ServicerContext
    ) -> pb.RunMerchantSettlementResponse:
        operator = self._identity.operator(context)
        request_id = convert.request_id(request.request_id)
        schools = schools_in_scope(self._hub, operator, request.school_id)
        _date(request.business_date)
        payer, _ = self._settlement.ready()

        async def act() -> pb.RunMerchantSettlementResponse:
            paid = await merchants.settle_merchants(
                self._hub,
                self._settlement.book,
                payer,
                self._settlement.merchant_banks,
                request.business_date,
                schools,
            )
            return pb.RunMerchantSettlementResponse(settlements=[merchant_message(p) for p in paid])

        return await self._once(
            operator,
            request_id,
            "RunMerchantSettlement",
            request,
            pb.RunMerchantSettlementResponse.FromString,
            act,
        )

    async def GetSettlementReport(
        self, request: pb.GetSettlementReportRequest, context: grpc.aio.ServicerContext
    ) -> pb.GetSettlementReportResponse:
        operator = self._identity.operator(context)
        schools = schools_in_scope(self._hub, operator, request.school_id)
        day = _date(request.business_date)
        payments = self._settlement.book.merchants_of(day, schools)
        return pb.GetSettlementReportResponse(
            settlements=[merchant_message(p) for p in payments],
            takings_fen=sum(p.sales_fen - p.given_back_fen for p in payments),
            paid_fen=sum(p.paid_fen for p in payments),
        )

    async def RefundWallet(
        self, request: pb.RefundWalletRequest, context: grpc.aio.ServicerContext
    ) -> pb.RefundWalletResponse:
        operator = self._identity.operator(context)
        request_id = convert.request_id(request.request_id)
        student = student_in_scope(self._hub, operator, request.student_id)
        payer, _ = self._settlement.ready()

        async def act() -> pb.RefundWalletResponse:
            payment = await refunds.refund_wallet(self._hub, self._settlement.book, payer, student)
            return pb.RefundWalletResponse(refund=refund_message(payment))

        return await self._once(
            operator, request_id, "RefundWallet", request, pb.RefundWalletResponse.FromString, act
        )

    async def Reconcile(
        self, request: pb.ReconcileRequest, context: grpc.aio.ServicerContext
    ) -> pb.ReconcileResponse:
        operator = self._identity.operator(context)
        request_id = convert.request_id(request.request_id)
        _date(request.business_date)
        banks_to_check(request.bank_code)
        _, bank = self._settlement.ready()

        async def act() -> pb.ReconcileResponse:
            rows = await reconcile_date(
                self._hub,
                self._settlement.book,
                bank,
                self._settlement.flows,
                request.business_date,
                request.bank_code,
            )
            reports = [report_message(row) for row in rows]
            return pb.ReconcileResponse(reports=reports, unexplained=sum(r.unexplained for r in reports))

        return await self._once(
            operator, request_id, "Reconcile", request, pb.ReconcileResponse.FromString, act
        )

    async def GetReconciliationReport(
        self, request: pb.GetReconciliationReportRequest, context: grpc.aio.ServicerContext
    ) -> pb.GetReconciliationReportResponse:
        self._identity.operator(context)
        day = _date(request.business_date)
        codes = banks_to_check(request.bank_code)
        rows = [
            self._settlement.book.reports[(c, day)]
            for c in codes
            if (c, day) in self._settlement.book.reports
        ]
        reports = [report_message(row) for row in rows]
        return pb.GetReconciliationReportResponse(
            reports=reports, unexplained=sum(r.unexplained for r in reports)
        )


def _date(text: str) -> str:
    try:
        return parse_business_date(text).isoformat()
    except ValueError as error:
        raise InvalidArgument("business_date", str(error)) from None
