"""What the grant payer needs of a bank: credit, inquiry, reversal — each answered with a
`BankAnswer` (UNKNOWN when the outcome is uncertain: timeout, UNAVAILABLE, dropped reply).

`StubBank` talks to BankService directly with a deadline on every call. It stands in until the
hub's bank gateway (`hub/onecard_hub/bank/gateway.py`, issue 5 K1) is the one way to the bank;
then an adapter over the gateway replaces it here and nothing else in grants/ changes.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import grpc

from onecard.bank.v1 import bank_service_pb2 as bank_pb
from onecard.bank.v1 import bank_service_pb2_grpc as bank_grpc
from onecard_hub.domain.grants import BankAnswer


@dataclass(frozen=True, slots=True)
class Outcome:
    answer: BankAnswer
    reject_reason: int = 0  # onecard.bank.v1.RejectReason


class GrantBank(Protocol):
    async def credit(
        self, transfer_id: str, bank_code: str, card_no: str, amount_fen: int, business_date: str, memo: str
    ) -> Outcome: ...

    async def inquire(self, bank_code: str, transfer_id: str) -> Outcome: ...

    async def reverse(
        self, reversal_id: str, bank_code: str, transfer_id: str, business_date: str
    ) -> Outcome: ...


class StubBank:
    """BankService over one channel; every call has `deadline_s`; an RPC error is UNKNOWN."""

    def __init__(self, channel: grpc.aio.Channel, deadline_s: float = 2.0) -> None:
        self._stub = bank_grpc.BankServiceStub(channel)
        self._deadline_s = deadline_s

    async def credit(
        self, transfer_id: str, bank_code: str, card_no: str, amount_fen: int, business_date: str, memo: str
    ) -> Outcome:
        request = bank_pb.CreditRequest(
            transfer_id=transfer_id,
            bank_code=bank_code,
            payee=bank_pb.Party(card_no=card_no),
            amount_fen=amount_fen,
            business_date=business_date,
            memo=memo,
        )
        try:
            reply = await self._stub.Credit(request, timeout=self._deadline_s)
        except grpc.RpcError:
            return Outcome(BankAnswer.UNKNOWN)
        return Outcome(BankAnswer(reply.status), reply.reject_reason)

    async def inquire(self, bank_code: str, transfer_id: str) -> Outcome:
        request = bank_pb.GetTransferRequest(bank_code=bank_code, transfer_id=transfer_id)
        try:
            reply = await self._stub.GetTransfer(request, timeout=self._deadline_s)
        except grpc.RpcError:
            return Outcome(BankAnswer.UNKNOWN)
        return Outcome(BankAnswer(reply.status), reply.reject_reason)

    async def reverse(
        self, reversal_id: str, bank_code: str, transfer_id: str, business_date: str
    ) -> Outcome:
        request = bank_pb.ReverseRequest(
            reversal_id=reversal_id, bank_code=bank_code, transfer_id=transfer_id, business_date=business_date
        )
        try:
            reply = await self._stub.Reverse(request, timeout=self._deadline_s)
        except grpc.RpcError:
            return Outcome(BankAnswer.UNKNOWN)
        return Outcome(BankAnswer(reply.status))
