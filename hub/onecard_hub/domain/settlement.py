"""Merchant settlement and the wallet refund on leaving: the pure rules (no I/O).

- A canteen window's takings for one business date (China Standard Time) are its purchases (online and
  offline, the latter on the date they were booked) less its refunds and reversals of that date.
- Each payment to a bank has one `transfer_id`, derived from its purpose, so it can never be made twice:
  one per (merchant, business date), one per student leaving (a wallet is refunded once).
- A payment is two-phase: PENDING (transfer_id recorded, call made) → PAID, or FAILED (refused: nothing
  moved; may be retried with the same transfer_id after the cause is fixed), or UNCERTAIN (settled by
  inquiry, reversal or reconciliation — never by a second transfer).
"""

from __future__ import annotations

import enum
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime, time

from onecard_hub.domain.clock import CST
from onecard_hub.domain.errors import quoted
from onecard_hub.domain.ledger import Transfer, TransferKind

DAY_MS = 86_400_000

SALES = frozenset({TransferKind.PURCHASE, TransferKind.OFFLINE_PURCHASE})
GIVEN_BACK = frozenset({TransferKind.REFUND, TransferKind.REVERSAL})


class PaymentStatus(enum.StrEnum):
    PENDING = "pending"  # recorded; the bank call is in flight or unanswered
    UNCERTAIN = "uncertain"  # the bank may have applied it; settled by inquiry or reconciliation
    PAID = "paid"  # the bank posted it; the ledger has it
    FAILED = "failed"  # the bank refused it; nothing moved; may be retried
    NOTHING_TO_PAY = "nothing_to_pay"  # takings or balance of zero (or less): no bank call

    @property
    def final(self) -> bool:
        return self in (PaymentStatus.PAID, PaymentStatus.NOTHING_TO_PAY)

    @property
    def open(self) -> bool:
        return self in (PaymentStatus.PENDING, PaymentStatus.UNCERTAIN)


@dataclass(frozen=True, slots=True)
class Takings:
    """One window's day: what it sold and gave back, and what it is owed."""

    sales_fen: int = 0
    sales_count: int = 0
    given_back_fen: int = 0
    given_back_count: int = 0

    @property
    def net_fen(self) -> int:
        return self.sales_fen - self.given_back_fen

    @property
    def count(self) -> int:
        return self.sales_count + self.given_back_count


class BusinessDateError(ValueError):
    """A business date that is not "YYYY-MM-DD"."""


def parse_business_date(text: str) -> date:
    stripped = text.strip()
    try:
        if len(stripped) == 10 and stripped[4] == stripped[7] == "-":
            return date.fromisoformat(stripped)
    except ValueError:
        pass
    raise BusinessDateError(f"{quoted(text)} is not a date as YYYY-MM-DD")


def day_bounds_ms(day: date) -> tuple[int, int]:
    """[start, end) of a business date in epoch ms: midnight to midnight, China Standard Time."""
    start = int(datetime.combine(day, time(), tzinfo=CST).timestamp() * 1000)
    return start, start + DAY_MS


def takings(transfers: Iterable[Transfer], merchant_account: int) -> Takings:
    """The takings of one merchant account from the transfers of one business date."""
    sales = sales_count = back = back_count = 0
    for transfer in transfers:
        if transfer.kind in SALES and transfer.to_account == merchant_account:
            sales += transfer.amount_fen
            sales_count += 1
        elif transfer.kind in GIVEN_BACK and transfer.from_account == merchant_account:
            back += transfer.amount_fen
            back_count += 1
    return Takings(sales, sales_count, back, back_count)


def settlement_transfer_id(merchant_id: str, day: date) -> str:
    """The one bank transfer that settles a merchant's day (at most 64 characters)."""
    return f"stl-{day.isoformat()}-{merchant_id}"[:64]


def wallet_refund_transfer_id(student_id: str) -> str:
    """The one bank transfer that refunds a leaving student's wallet."""
    return f"wrf-{student_id}"[:64]
