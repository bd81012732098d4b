"""A small in-process BankService for the settlement tests: Credit, GetTransfer, Reverse and the
daily statement (GetStatement CSV, as the proto says), by account number or card, with one-shot
faults per account (`drop_once`: applied, then UNAVAILABLE; `refuse_once`: UNAVAILABLE, not applied)
and inquiries that can be made to fail. It stands in until `onecard-sim bank` (issue 5, K1) offers
`running_bank(...)`; the tests then run against that instead.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field

import grpc

from onecard.bank.v1 import bank_service_pb2 as pb
from onecard.bank.v1 import bank_service_pb2_grpc as pb_grpc
from onecard_hub.domain.bank import STATEMENT_HEADER


@dataclass
class Line:
    transfer_id: str
    account: str
    amount_fen: int
    business_date: str
    status: pb.TransferStatus.ValueType
    reject_reason: pb.RejectReason.ValueType = pb.REJECT_REASON_UNSPECIFIED


@dataclass
class StatementBank(pb_grpc.BankServiceServicer):
    balances: dict[str, int] = field(default_factory=dict)  # account_no or card_no → fen
    not_activated: set[str] = field(default_factory=set)
    transfers: dict[str, Line] = field(default_factory=dict)
    drop_once: set[str] = field(default_factory=set)  # accounts: the next credit applied, its reply dropped
    refuse_once: set[str] = field(default_factory=set)  # accounts: the next credit UNAVAILABLE, not applied
    inquiries_down: bool = False  # GetTransfer answers UNAVAILABLE
    calls: int = 0

    def credit_direct(self, transfer_id: str, account: str, amount_fen: int, business_date: str) -> None:
        """A transfer made at the bank that the hub never asked for."""
        self.transfers[transfer_id] = Line(
            transfer_id, account, amount_fen, business_date, pb.TRANSFER_STATUS_POSTED
        )
        self.balances[account] = self.balances.get(account, 0) + amount_fen

    async def Credit(self, request: pb.CreditRequest, context: grpc.aio.ServicerContext) -> pb.CreditResponse:
        self.calls += 1
        account = request.payee.account_no or request.payee.card_no
        if account in self.refuse_once:
            self.refuse_once.discard(account)
            await context.abort(grpc.StatusCode.UNAVAILABLE, "injected error")
        line = self.transfers.get(request.transfer_id)
        if line is None:
            if account in self.not_activated:
                line = Line(
                    request.transfer_id,
                    account,
                    request.amount_fen,
                    request.business_date,
                    pb.TRANSFER_STATUS_REJECTED,
                    pb.REJECT_REASON_NOT_ACTIVATED,
                )
            else:
                line = Line(
                    request.transfer_id,
                    account,
                    request.amount_fen,
                    request.business_date,
                    pb.TRANSFER_STATUS_POSTED,
                )
                self.balances[account] = self.balances.get(account, 0) + request.amount_fen
            self.transfers[request.transfer_id] = line
        if account in self.drop_once:
            self.drop_once.discard(account)
            await context.abort(grpc.StatusCode.UNAVAILABLE, "injected dropped reply")
        return pb.CreditResponse(
            transfer_id=line.transfer_id, status=line.status, reject_reason=line.reject_reason
        )

    async def GetTransfer(
        self, request: pb.GetTransferRequest, context: grpc.aio.ServicerContext
    ) -> pb.GetTransferResponse:
        if self.inquiries_down:
            await context.abort(grpc.StatusCode.UNAVAILABLE, "injected error")
        line = self.transfers.get(request.transfer_id)
        if line is None:
            return pb.GetTransferResponse(
                transfer_id=request.transfer_id, status=pb.TRANSFER_STATUS_NOT_FOUND
            )
        return pb.GetTransferResponse(
            transfer_id=line.transfer_id,
            status=line.status,
            reject_reason=line.reject_reason,
            amount_fen=line.amount_fen,
        )

    async def Reverse(
        self, request: pb.ReverseRequest, context: grpc.aio.ServicerContext
    ) -> pb.ReverseResponse:
        line = self.transfers.get(request.transfer_id)
        if line is None:
            self.transfers[request.transfer_id] = Line(
                request.transfer_id, "", 0, request.business_date, pb.TRANSFER_STATUS_REVERSED
            )
            return pb.ReverseResponse(reversal_id=request.reversal_id, status=pb.TRANSFER_STATUS_REVERSED)
        if line.status == pb.TRANSFER_STATUS_POSTED:
            self.balances[line.account] -= line.amount_fen
            line.status = pb.TRANSFER_STATUS_REVERSED
            return pb.ReverseResponse(
                reversal_id=request.reversal_id,
                status=pb.TRANSFER_STATUS_REVERSED,
                reversed_fen=line.amount_fen,
            )
        return pb.ReverseResponse(reversal_id=request.reversal_id, status=line.status)

    async def GetStatement(
        self, request: pb.GetStatementRequest, context: grpc.aio.ServicerContext
    ) -> pb.GetStatementResponse:
        rows = [STATEMENT_HEADER]
        for n, line in enumerate(self.transfers.values()):
            if line.business_date != request.business_date or line.status not in (
                pb.TRANSFER_STATUS_POSTED,
                pb.TRANSFER_STATUS_REVERSED,
            ):
                continue
            status = pb.TransferStatus.Name(line.status).removeprefix("TRANSFER_STATUS_")
            rows.append(f"B{n:06d},{line.transfer_id},CREDIT,{line.account},,{line.amount_fen},{status},")
        return pb.GetStatementResponse(
            bank_code=request.bank_code,
            business_date=request.business_date,
            csv="\n".join(rows) + "\n",
            lines=len(rows) - 1,
        )

    # Not used by settlement: refused, so a test that needs them notices.
    async def Debit(self, request: pb.DebitRequest, context: grpc.aio.ServicerContext) -> pb.DebitResponse:
        await context.abort(grpc.StatusCode.UNIMPLEMENTED, "not in the settlement tests' bank")
        raise AssertionError

    async def GetAccount(
        self, request: pb.GetAccountRequest, context: grpc.aio.ServicerContext
    ) -> pb.GetAccountResponse:
        await context.abort(grpc.StatusCode.UNIMPLEMENTED, "not in the settlement tests' bank")
        raise AssertionError

    async def OpenAccount(
        self, request: pb.OpenAccountRequest, context: grpc.aio.ServicerContext
    ) -> pb.OpenAccountResponse:
        await context.abort(grpc.StatusCode.UNIMPLEMENTED, "not in the settlement tests' bank")
        raise AssertionError

    async def CloseAccount(
        self, request: pb.CloseAccountRequest, context: grpc.aio.ServicerContext
    ) -> pb.CloseAccountResponse:
        await context.abort(grpc.StatusCode.UNIMPLEMENTED, "not in the settlement tests' bank")
        raise AssertionError


@asynccontextmanager
async def running_statement_bank(bank: StatementBank) -> AsyncIterator[str]:
    server = grpc.aio.server()
    pb_grpc.add_BankServiceServicer_to_server(bank, server)
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    try:
        yield f"127.0.0.1:{port}"
    finally:
        await server.stop(0)
