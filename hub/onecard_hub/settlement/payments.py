"""Paying merchants' days and leaving students' wallets into bank accounts, two-phase.

One payment, one attempt at a time (the grant payer's steps, grants/payer.py):
1. The attempt's transfer id (`<payment_key>-<attempt>`) and UNCERTAIN are journaled BEFORE the credit
   is sent, so a crash between call and answer is settled after restart (or by reconciliation).
2. POSTED → PAID, with the ledger transfer (merchant or wallet → the bank's clearing account) in the
   same batch; REJECTED → FAILED with the bank's reason (nothing moved; a later run tries again under
   the next attempt's id); RETURNED → FAILED RETURNED (nothing stays moved).
3. No answer → inquiry with backoff, a bounded number of times. NOT_FOUND → reversal (冲正) first, so
   the original can never post later; REVERSED → the attempt is void (FAILED, retried by a later run).
   Still no answer → UNCERTAIN stays; the next run, or reconciliation (对账), settles it.
A PAID payment is never paid again; a payment is never credited under a second id while an earlier
attempt may still post (an UNCERTAIN attempt is only ever inquired about).
"""

from __future__ import annotations

import asyncio
import logging

from onecard_hub.bank.inquiry import settle_by_inquiry
from onecard_hub.domain.bank import BankOutcome, TransferResult
from onecard_hub.domain.clock import business_date
from onecard_hub.domain.ledger import Account, AccountKind, TransferKind
from onecard_hub.domain.settlement import PaymentStatus
from onecard_hub.hub import Hub
from onecard_hub.settlement.bank_port import SettlementBank
from onecard_hub.settlement.book import MERCHANT_SETTLEMENT, Payment, SettlementBook
from onecard_hub.store.records import Batch

log = logging.getLogger(__name__)
CALLER = "settlement"
INQUIRIES = 5  # per run, before an attempt is left UNCERTAIN


class Payer:
    def __init__(
        self,
        hub: Hub,
        book: SettlementBook,
        bank: SettlementBank,
        *,
        backoff_s: float = 0.05,
        max_backoff_s: float = 1.0,
    ) -> None:
        self._hub = hub
        self._book = book
        self._bank = bank
        self._backoff_s = backoff_s
        self._max_backoff_s = max_backoff_s
        self._locks: dict[str, asyncio.Lock] = {}

    async def pay(self, payment: Payment) -> Payment:
        """Brings one payment as far as the bank allows in this run; one run at a time per payment."""
        lock = self._locks.setdefault(payment.payment_key, asyncio.Lock())
        async with lock:
            if payment.status.final:
                return payment
            if payment.status.open and payment.transfer_id:
                outcome = await self._bank.get_transfer(payment.bank_code, payment.transfer_id)
            elif not payment.bank_code or not payment.payee:
                await self._finish(payment, PaymentStatus.FAILED, "NO_BANK_ACCOUNT")
                return payment
            else:
                outcome = await self._attempt(payment)
            await self._settle(payment, outcome)
            return payment

    async def _attempt(self, payment: Payment) -> TransferResult:
        payment.attempts += 1
        payment.transfer_id = f"{payment.payment_key}-{payment.attempts}"[:64]
        payment.booked_date = self.today()
        payment.status, payment.failure = PaymentStatus.UNCERTAIN, ""
        payment.updated_ms = self._hub.clock.now_ms()
        self._book.keep(payment)
        # durable before the call
        await self._hub.writer.submit(Batch(payments=[payment.row()]))
        merchant = payment.purpose == MERCHANT_SETTLEMENT
        return await self._bank.credit(
            payment.transfer_id,
            payment.bank_code,
            payment.amount_fen,
            payment.booked_date,
            account_no=payment.payee if merchant else "",
            card_no="" if merchant else payment.payee,
            memo=f"商户结算 {payment.party_id} {payment.business_date}" if merchant else "校园卡余额退还",
        )

    async def _settle(self, payment: Payment, outcome: TransferResult) -> None:
        outcome = await settle_by_inquiry(
            self._bank,
            outcome,
            payment.bank_code,
            payment.transfer_id,
            payment.booked_date,
            backoff_s=self._backoff_s,
            max_backoff_s=self._max_backoff_s,
            inquiries=INQUIRIES,
        )
        answer = outcome.outcome
        if answer is BankOutcome.POSTED:
            await self.post(payment)
        elif answer is BankOutcome.REJECTED:
            await self._finish(
                payment, PaymentStatus.FAILED, outcome.reject_reason.value.upper() or "REJECTED"
            )
        elif answer is BankOutcome.RETURNED:
            await self._finish(payment, PaymentStatus.FAILED, "RETURNED")
        elif answer is BankOutcome.REVERSED:
            await self.void(payment)
        else:
            log.warning("payment %s: no definite answer yet; left uncertain", payment.transfer_id)

    async def post(self, payment: Payment) -> None:
        """The bank posted the current attempt: the ledger moves the amount to the bank's clearing account."""
        if payment.status is PaymentStatus.PAID:
            return
        ledger = self._hub.campus.ledger
        kind = (
            TransferKind.MERCHANT_SETTLEMENT
            if payment.purpose == MERCHANT_SETTLEMENT
            else TransferKind.WALLET_REFUND
        )
        owner_kind = AccountKind.MERCHANT if payment.purpose == MERCHANT_SETTLEMENT else AccountKind.WALLET
        now = self._hub.clock.now_ms()
        transfer = ledger.post(
            self._account(owner_kind, payment.party_id),
            self._account(AccountKind.BANK_CLEARING, payment.bank_code),
            payment.amount_fen,
            kind,
            caller=CALLER,
            request_id=payment.transfer_id,
            created_ms=now,
        )
        payment.status, payment.failure, payment.updated_ms = PaymentStatus.PAID, "", now
        await self._hub.writer.submit(Batch(transfers=[transfer], payments=[payment.row()]))

    async def void(self, payment: Payment) -> None:
        """The current attempt never moved money: FAILED, tried again under a new id by a later run."""
        await self._finish(payment, PaymentStatus.FAILED, "NOT_APPLIED")

    async def _finish(self, payment: Payment, status: PaymentStatus, failure: str) -> None:
        payment.status, payment.failure, payment.updated_ms = status, failure, self._hub.clock.now_ms()
        self._book.keep(payment)
        await self._hub.writer.submit(Batch(payments=[payment.row()]))

    def _account(self, kind: AccountKind, owner: str) -> Account:
        if kind is AccountKind.WALLET:
            return self._hub.campus.students[owner].wallet.account
        if kind is AccountKind.MERCHANT:
            return self._hub.campus.ledger.accounts[self._hub.merchant_accounts[owner]]
        return self._hub.campus.ledger.party(kind, owner)

    def today(self) -> str:
        return business_date(self._hub.clock.now_ms())
