"""A small async client of the bank simulator for testers and scenarios: accounts (read, adjust),
faults (set, read), a transfer's status and a day's statement. Errors are raised as grpc errors:
this is a test tool (the hub's own way to a bank is `onecard_hub.bank.BankGateway`)."""

from __future__ import annotations

from typing import Any

import grpc

from onecard.bank.v1 import bank_service_pb2 as pb
from onecard.bank.v1 import bank_service_pb2_grpc as pb_grpc

DEADLINE_S = 5.0
STATES = {
    "not_activated": pb.ACCOUNT_STATE_NOT_ACTIVATED,
    "active": pb.ACCOUNT_STATE_ACTIVE,
    "frozen": pb.ACCOUNT_STATE_FROZEN,
    "closed": pb.ACCOUNT_STATE_CLOSED,
}


def party(card_no: str = "", account_no: str = "") -> pb.Party:
    return pb.Party(card_no=card_no) if card_no else pb.Party(account_no=account_no)


class BankSimClient:
    def __init__(self, target: str) -> None:
        options = [("grpc.use_local_subchannel_pool", 1), ("grpc.max_reconnect_backoff_ms", 1_000)]
        self.target = target
        self._channel = grpc.aio.insecure_channel(target, options=options)
        self.bank: Any = pb_grpc.BankServiceStub(self._channel)
        self.control: Any = pb_grpc.BankControlServiceStub(self._channel)

    async def close(self) -> None:
        await self._channel.close()

    async def __aenter__(self) -> BankSimClient:
        return self

    async def __aexit__(self, *_: object) -> None:
        await self.close()

    async def get_account(
        self, bank_code: str, *, card_no: str = "", account_no: str = ""
    ) -> pb.GetAccountResponse:
        request = pb.GetAccountRequest(bank_code=bank_code, account=party(card_no, account_no))
        answer: pb.GetAccountResponse = await self.bank.GetAccount(request, timeout=DEADLINE_S)
        return answer

    async def balance_fen(self, bank_code: str, *, card_no: str = "", account_no: str = "") -> int:
        return (await self.get_account(bank_code, card_no=card_no, account_no=account_no)).balance_fen

    async def adjust_account(
        self, bank_code: str, *, card_no: str = "", account_no: str = "", state: str = "", add_fen: int = 0
    ) -> pb.GetAccountResponse:
        """Sets the state ("active", "frozen", "not_activated", "closed"; "" leaves it) and/or adds money."""
        request = pb.AdjustAccountRequest(
            bank_code=bank_code,
            account=party(card_no, account_no),
            state=STATES[state] if state else pb.ACCOUNT_STATE_UNSPECIFIED,
            add_fen=add_fen,
        )
        answer: pb.AdjustAccountResponse = await self.control.AdjustAccount(request, timeout=DEADLINE_S)
        return answer.account

    async def set_faults(self, **plan: Any) -> pb.GetFaultsResponse:
        """`set_faults(error_rate=0.1, timeout_rate=0.1, drop_reply_rate=0.1, seed=7)`, `outage_s=60`, …"""
        answer: pb.SetFaultsResponse = await self.control.SetFaults(
            pb.SetFaultsRequest(**plan), timeout=DEADLINE_S
        )
        return answer.faults

    async def clear_faults(self) -> pb.GetFaultsResponse:
        return await self.set_faults()

    async def get_faults(self) -> pb.GetFaultsResponse:
        answer: pb.GetFaultsResponse = await self.control.GetFaults(pb.GetFaultsRequest(), timeout=DEADLINE_S)
        return answer

    async def get_transfer(self, bank_code: str, transfer_id: str) -> pb.GetTransferResponse:
        request = pb.GetTransferRequest(bank_code=bank_code, transfer_id=transfer_id)
        answer: pb.GetTransferResponse = await self.bank.GetTransfer(request, timeout=DEADLINE_S)
        return answer

    async def statement(self, bank_code: str, business_date: str) -> pb.GetStatementResponse:
        request = pb.GetStatementRequest(bank_code=bank_code, business_date=business_date)
        answer: pb.GetStatementResponse = await self.bank.GetStatement(request, timeout=DEADLINE_S)
        return answer
