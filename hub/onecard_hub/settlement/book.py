"""Settlement's state in memory: every payment by its purpose key, and the stored reconciliation
reports; rebuilt from the store at start. Rows are made here (the one place that knows both shapes)."""

from __future__ import annotations

from dataclasses import dataclass, field

from onecard_hub.domain.settlement import PaymentStatus
from onecard_hub.store.records import PaymentRow, ReconciliationRow, Snapshot

MERCHANT_SETTLEMENT = "merchant_settlement"
WALLET_REFUND = "wallet_refund"


@dataclass(slots=True)
class Payment:
    """One payment to a bank account; `transfer_id` is the current attempt's."""

    payment_key: str
    purpose: str
    party_id: str
    school_id: str
    business_date: str
    bank_code: str
    payee: str
    amount_fen: int
    sales_fen: int = 0
    sales_count: int = 0
    given_back_fen: int = 0
    given_back_count: int = 0
    status: PaymentStatus = PaymentStatus.PENDING
    failure: str = ""
    attempts: int = 0
    transfer_id: str = ""
    booked_date: str = ""
    updated_ms: int = 0

    @property
    def paid_fen(self) -> int:
        return self.amount_fen if self.status is PaymentStatus.PAID else 0

    def row(self) -> PaymentRow:
        return PaymentRow(
            self.payment_key,
            self.purpose,
            self.party_id,
            self.school_id,
            self.business_date,
            self.booked_date,
            self.bank_code,
            self.payee,
            self.amount_fen,
            self.sales_fen,
            self.sales_count,
            self.given_back_fen,
            self.given_back_count,
            self.status.value,
            self.failure,
            self.attempts,
            self.transfer_id,
            self.updated_ms,
        )

    @classmethod
    def from_row(cls, r: PaymentRow) -> Payment:
        return cls(
            r.payment_key,
            r.purpose,
            r.party_id,
            r.school_id,
            r.business_date,
            r.bank_code,
            r.payee,
            r.amount_fen,
            r.sales_fen,
            r.sales_count,
            r.given_back_fen,
            r.given_back_count,
            PaymentStatus(r.status),
            r.failure,
            r.attempts,
            r.transfer_id,
            r.booked_date,
            r.updated_ms,
        )


@dataclass(slots=True)
class SettlementBook:
    payments: dict[str, Payment] = field(default_factory=dict)
    by_transfer: dict[str, Payment] = field(default_factory=dict)  # every attempt's transfer_id
    reports: dict[tuple[str, str], ReconciliationRow] = field(default_factory=dict)  # (bank, date)

    @classmethod
    def from_snapshot(cls, snap: Snapshot) -> SettlementBook:
        book = cls()
        for row in snap.payments:
            book.keep(Payment.from_row(row))
        for report in snap.reconciliations:
            book.reports[(report.bank_code, report.business_date)] = report
        return book

    def keep(self, payment: Payment) -> None:
        self.payments[payment.payment_key] = payment
        if payment.transfer_id:
            self.by_transfer[payment.transfer_id] = payment

    def merchants_of(self, business_date: str, school_ids: set[str] | None) -> list[Payment]:
        return sorted(
            (
                p
                for p in self.payments.values()
                if p.purpose == MERCHANT_SETTLEMENT
                and p.business_date == business_date
                and (school_ids is None or p.school_id in school_ids)
            ),
            key=lambda p: (p.school_id, p.party_id),
        )

    def booked_on(self, bank_code: str, booked_date: str) -> list[Payment]:
        return [
            p for p in self.payments.values() if p.bank_code == bank_code and p.booked_date == booked_date
        ]
