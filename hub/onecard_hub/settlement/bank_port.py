"""What settlement needs of a bank: the part of `BankGateway` (bank/gateway.py, the one way the hub
calls a bank) it uses — credit, inquiry, reversal (冲正) and the daily statement. Every call has a
deadline there and answers a plain result (domain/bank.py); no answer is UNCERTAIN, never raised."""

from __future__ import annotations

from typing import Protocol

from onecard_hub.domain.bank import ReversalResult, StatementResult, TransferResult


class SettlementBank(Protocol):
    async def credit(
        self,
        transfer_id: str,
        bank_code: str,
        amount_fen: int,
        business_date: str,
        *,
        card_no: str = "",
        account_no: str = "",
        memo: str = "",
        deadline_s: float | None = None,
    ) -> TransferResult: ...

    async def get_transfer(
        self, bank_code: str, transfer_id: str, *, deadline_s: float | None = None
    ) -> TransferResult: ...

    async def reverse(
        self,
        reversal_id: str,
        bank_code: str,
        transfer_id: str,
        business_date: str,
        *,
        deadline_s: float | None = None,
    ) -> ReversalResult: ...

    async def statement(
        self, bank_code: str, business_date: str, *, deadline_s: float | None = None
    ) -> StatementResult: ...
