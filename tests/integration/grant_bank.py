"""A small in-process BankService (Credit, GetTransfer, Reverse) for grant outcomes the bank
simulator does not make on demand: a credit RETURNED at once, a credit applied and then never
answered (not even to an inquiry) while the hub stops. Seeded faults too: errors (not applied),
timeouts (not applied, DEADLINE_EXCEEDED) and dropped replies (applied, then UNAVAILABLE). The
main grant tests run against `onecard-sim bank` (test_grants_bank_sim.py).
"""

from __future__ import annotations

import random
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field

import grpc

from onecard.bank.v1 import bank_service_pb2 as pb
from onecard.bank.v1 import bank_service_pb2_grpc as pb_grpc

REJECTS: dict[pb.AccountState.ValueType, pb.RejectReason.ValueType] = {
    pb.ACCOUNT_STATE_NOT_ACTIVATED: pb.REJECT_REASON_NOT_ACTIVATED,
    pb.ACCOUNT_STATE_FROZEN: pb.REJECT_REASON_ACCOUNT_FROZEN,
    pb.ACCOUNT_STATE_CLOSED: pb.REJECT_REASON_ACCOUNT_CLOSED,
}


@dataclass
class Transfer:
    card_no: str
    amount_fen: int
    status: pb.TransferStatus.ValueType
    reject_reason: pb.RejectReason.ValueType = pb.REJECT_REASON_UNSPECIFIED


@dataclass
class FakeBank(pb_grpc.BankServiceServicer):
    states: dict[str, pb.AccountState.ValueType] = field(
        default_factory=dict
    )  # card_no → AccountState (default ACTIVE)
    balances: dict[str, int] = field(default_factory=dict)
    transfers: dict[str, Transfer] = field(default_factory=dict)
    credits_applied: dict[str, int] = field(default_factory=dict)  # transfer_id → times applied
    returning: set[str] = field(default_factory=set)  # cards whose credits come back (退回)
    error_rate: float = 0.0
    timeout_rate: float = 0.0
    drop_reply_rate: float = 0.0
    rng: random.Random = field(default_factory=lambda: random.Random(5))

    def _fault(self) -> str:
        draw = self.rng.random()
        if draw < self.error_rate:
            return "error"
        if draw < self.error_rate + self.timeout_rate:
            return "timeout"
        if draw < self.error_rate + self.timeout_rate + self.drop_reply_rate:
            return "drop"
        return ""

    async def Credit(self, request: pb.CreditRequest, context: grpc.aio.ServicerContext) -> pb.CreditResponse:
        fault = self._fault()
        if fault == "error":
            await context.abort(grpc.StatusCode.UNAVAILABLE, "injected error")
        if fault == "timeout":
            await context.abort(grpc.StatusCode.DEADLINE_EXCEEDED, "injected timeout")
        t = self.transfers.get(request.transfer_id)
        if t is None:
            card = request.payee.card_no
            state = self.states.get(card, pb.ACCOUNT_STATE_ACTIVE)
            if state != pb.ACCOUNT_STATE_ACTIVE:
                t = Transfer(card, request.amount_fen, pb.TRANSFER_STATUS_REJECTED, REJECTS[state])
            elif card in self.returning:
                t = Transfer(card, request.amount_fen, pb.TRANSFER_STATUS_RETURNED)
            else:
                t = Transfer(card, request.amount_fen, pb.TRANSFER_STATUS_POSTED)
                self.balances[card] = self.balances.get(card, 0) + request.amount_fen
                self.credits_applied[request.transfer_id] = (
                    self.credits_applied.get(request.transfer_id, 0) + 1
                )
            self.transfers[request.transfer_id] = t
        if fault == "drop":
            await context.abort(grpc.StatusCode.UNAVAILABLE, "injected dropped reply")
        return pb.CreditResponse(
            transfer_id=request.transfer_id, status=t.status, reject_reason=t.reject_reason
        )

    async def GetTransfer(
        self, request: pb.GetTransferRequest, context: grpc.aio.ServicerContext
    ) -> pb.GetTransferResponse:
        if self._fault() in ("error", "timeout"):
            await context.abort(grpc.StatusCode.UNAVAILABLE, "injected error")
        t = self.transfers.get(request.transfer_id)
        if t is None:
            return pb.GetTransferResponse(
                transfer_id=request.transfer_id, status=pb.TRANSFER_STATUS_NOT_FOUND
            )
        return pb.GetTransferResponse(
            transfer_id=request.transfer_id,
            status=t.status,
            reject_reason=t.reject_reason,
            amount_fen=t.amount_fen,
        )

    async def Reverse(
        self, request: pb.ReverseRequest, context: grpc.aio.ServicerContext
    ) -> pb.ReverseResponse:
        if self._fault() in ("error", "timeout"):
            await context.abort(grpc.StatusCode.UNAVAILABLE, "injected error")
        t = self.transfers.get(request.transfer_id)
        if t is None:
            self.transfers[request.transfer_id] = Transfer("", 0, pb.TRANSFER_STATUS_REVERSED)
            return pb.ReverseResponse(reversal_id=request.reversal_id, status=pb.TRANSFER_STATUS_REVERSED)
        if t.status == pb.TRANSFER_STATUS_POSTED:
            self.balances[t.card_no] -= t.amount_fen
            t.status = pb.TRANSFER_STATUS_REVERSED
            return pb.ReverseResponse(
                reversal_id=request.reversal_id, status=pb.TRANSFER_STATUS_REVERSED, reversed_fen=t.amount_fen
            )
        return pb.ReverseResponse(reversal_id=request.reversal_id, status=t.status)

    # Not used by grants: refused, so a test that needs them notices.
    async def Debit(self, request: pb.DebitRequest, context: grpc.aio.ServicerContext) -> pb.DebitResponse:
        await context.abort(grpc.StatusCode.UNIMPLEMENTED, "not in the grant tests' bank")
        raise AssertionError

    async def GetAccount(
        self, request: pb.GetAccountRequest, context: grpc.aio.ServicerContext
    ) -> pb.GetAccountResponse:
        await context.abort(grpc.StatusCode.UNIMPLEMENTED, "not in the grant tests' bank")
        raise AssertionError

    async def OpenAccount(
        self, request: pb.OpenAccountRequest, context: grpc.aio.ServicerContext
    ) -> pb.OpenAccountResponse:
        await context.abort(grpc.StatusCode.UNIMPLEMENTED, "not in the grant tests' bank")
        raise AssertionError

    async def CloseAccount(
        self, request: pb.CloseAccountRequest, context: grpc.aio.ServicerContext
    ) -> pb.CloseAccountResponse:
        await context.abort(grpc.StatusCode.UNIMPLEMENTED, "not in the grant tests' bank")
        raise AssertionError

    async def GetStatement(
        self, request: pb.GetStatementRequest, context: grpc.aio.ServicerContext
    ) -> pb.GetStatementResponse:
        await context.abort(grpc.StatusCode.UNIMPLEMENTED, "not in the grant tests' bank")
        raise AssertionError


@asynccontextmanager
async def running_fake_bank(bank: FakeBank) -> AsyncIterator[str]:
    server = grpc.aio.server()
    pb_grpc.add_BankServiceServicer_to_server(bank, server)
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    try:
        yield f"127.0.0.1:{port}"
    finally:
        await server.stop(0)
