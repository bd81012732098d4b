"""Settling an uncertain credit by inquiry (查询) and reversal (冲正), with backoff: the one loop the
grant payer (grants/payer.py) and the settlement payer (settlement/payments.py) share.

A credit that got no answer is asked about under the SAME transfer id until the bank says what
became of it. NOT_FOUND (the bank never applied it) is answered by a reversal first, so the
original can never post later; the next inquiry then says REVERSED. Never a second credit.
"""

from __future__ import annotations

import asyncio
from typing import Protocol

from onecard_hub.domain.bank import BankOutcome, ReversalResult, TransferResult, reversal_id_of

# what the payers act on; NOT_FOUND and UNCERTAIN are asked about again
SETTLED = frozenset({BankOutcome.POSTED, BankOutcome.REJECTED, BankOutcome.RETURNED, BankOutcome.REVERSED})


class InquiryBank(Protocol):
    """The part of `BankGateway` (bank/gateway.py) an inquiry needs."""

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


async def settle_by_inquiry(
    bank: InquiryBank,
    answer: TransferResult,
    bank_code: str,
    transfer_id: str,
    business_date: str,
    *,
    backoff_s: float,
    max_backoff_s: float,
    inquiries: int | None = None,
) -> TransferResult:
    """From the `answer` to a credit of `transfer_id` (or to an inquiry about it): the first answer
    in `SETTLED`, asking again with a backoff doubling from `backoff_s` up to `max_backoff_s`; or,
    after `inquiries` inquiries (None: no bound), the last answer (UNCERTAIN or NOT_FOUND) for the
    caller to leave open. A reversal's own answer is not awaited for: the next inquiry tells."""
    delay = backoff_s
    asked = 0
    while answer.outcome not in SETTLED:
        if inquiries is not None and asked >= inquiries:
            break
        if answer.outcome is BankOutcome.NOT_FOUND:
            await bank.reverse(reversal_id_of(transfer_id), bank_code, transfer_id, business_date)
        await asyncio.sleep(delay)
        delay = min(delay * 2, max_backoff_s)
        answer = await bank.get_transfer(bank_code, transfer_id)
        asked += 1
    return answer
