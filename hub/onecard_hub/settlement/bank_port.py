"""What settlement needs of a bank: the part of `BankGateway` (bank/gateway.py, the one way the hub
calls a bank) it uses — credit, inquiry, reversal (冲正) and the daily statement. Every call has a
deadline there and answers a plain result (domain/bank.py); no answer is UNCERTAIN, never raised."""

from __future__ import annotations

from typing import Protocol

from onecard_hub.bank.inquiry import InquiryBank
from onecard_hub.domain.bank import StatementResult, TransferResult


class SettlementBank(InquiryBank, Protocol):
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

    async def statement(
        self, bank_code: str, business_date: str, *, deadline_s: float | None = None
    ) -> StatementResult: ...
