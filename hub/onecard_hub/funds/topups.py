"""Top-up (圈存): the holder's bank account → the campus wallet, two-phase (domain/topup.py).

1. `start` checks the amount and the day's limit, then journals the top-up PENDING with its
   transfer id (= the top-up id) BEFORE the bank is called, and drives it in a task of its own.
2. `_drive` debits the holder's account at the card's bank ONCE (only in the process that created
   the top-up: after a restart a PENDING top-up is never debited again, only reversed). POSTED → the
   ledger moves the amount bank clearing → wallet (TOP_UP) and the top-up is POSTED in the same
   batch; REJECTED → VOIDED with the bank's reason; no answer → reversal (冲正) under the same
   transfer id, retried with exponential backoff and jitter until the bank says REVERSED or REJECTED
   (→ VOIDED), or `max_reversals` tries passed (→ MANUAL_REVIEW, for an operator: `resolve`).
3. The caller waits for a final state up to `answer_within_s`, else answers PENDING; the task goes on.
   `resume` (at start) drives every top-up that is not final and not in review.
A top-up's end runs `on_final` (bank change closes old accounts, auto top-up frees the wallet).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import secrets
from collections.abc import Awaitable, Callable

from onecard_hub.bank.gateway import BankGateway
from onecard_hub.domain.bank import BankOutcome, ReversalResult
from onecard_hub.domain.clock import business_date
from onecard_hub.domain.errors import FailedPrecondition, NotFound, Unavailable, quoted
from onecard_hub.domain.ledger import Account, AccountKind, TransferKind
from onecard_hub.domain.model import Card, CardStatus
from onecard_hub.domain.topup import (
    MAX_REVERSALS,
    Origin,
    Step,
    TopUp,
    TopUpState,
    after_debit,
    after_reversal,
    backoff_s,
    check_amount,
    topup_id,
)
from onecard_hub.funds.book import FundsBook, topup_row
from onecard_hub.hub import Hub
from onecard_hub.store.records import AuditRow, Batch

log = logging.getLogger(__name__)
CALLER = "funds"


class TopUps:
    def __init__(
        self,
        hub: Hub,
        book: FundsBook,
        bank: BankGateway | None,
        *,
        max_reversals: int = MAX_REVERSALS,
        backoff_base_s: float = 0.2,
        backoff_cap_s: float = 10.0,
        answer_within_s: float = 3.0,
    ) -> None:
        self.hub = hub
        self.book = book
        self.bank = bank
        self.max_reversals = max_reversals
        self.backoff_base_s = backoff_base_s
        self.backoff_cap_s = backoff_cap_s
        self.answer_within_s = answer_within_s
        self.on_final: list[Callable[[TopUp], None]] = []
        self._tasks: dict[str, asyncio.Task[TopUp]] = {}
        self._clearing: dict[str, Account] = {}
        self._random = random.Random()

    # -- starting ----------------------------------------------------------------------------

    def business_date(self) -> str:
        return business_date(self.hub.clock.now_ms())

    def prepare(self, card: Card, amount_fen: int, origin: Origin) -> TopUp:
        """Checks the card and the amount; the new PENDING top-up counts towards the day's limit at
        once (two calls cannot both pass). `start` journals it, then launches it (or forgets it when
        the journal refused it)."""
        self._bank()  # UNAVAILABLE before anything is written when the hub has no bank
        student = card.student
        if not card.bank_code:
            raise FailedPrecondition("card_no: the card has no co-branded bank", reason="ILLEGAL_TRANSITION")
        if card.status is not CardStatus.ACTIVE:
            raise FailedPrecondition(
                f"card_no: the card is {card.status.value}",
                reason="CARD_NOT_ACTIVE",
                metadata={"state": card.status.value},
            )
        day = self.business_date()
        check_amount(amount_fen, self.book.today_fen(student.student_id, day))
        now = self.hub.clock.now_ms()
        topup = TopUp(
            topup_id(now, secrets.randbelow(26**6)),
            student.student_id,
            student.school_id,
            card.card_no,
            card.bank_code,
            amount_fen,
            origin,
            day,
            now,
            updated_ms=now,
        )
        self.book.keep(topup)
        return topup

    def forget(self, topup: TopUp) -> None:
        self.book.topups.pop(topup.topup_id, None)
        self.book.by_student[topup.student_id].remove(topup)

    def launch(self, topup: TopUp) -> None:
        """Once the PENDING row is durable: the debit goes out (once) and the top-up is driven."""
        self.drive(topup, debit=True)

    async def start(
        self,
        card: Card,
        amount_fen: int,
        origin: Origin,
        journal: Callable[[TopUp], Awaitable[None]] | None = None,
    ) -> TopUp:
        """prepare, journal PENDING (durable before any bank call), launch. `journal` writes
        `topup_row(topup)` with what else must be durable with it (an RPC's answer); by default
        the row alone."""
        topup = self.prepare(card, amount_fen, origin)
        try:
            if journal is None:
                await self.hub.writer.submit(Batch(topups=[topup_row(topup)]))
            else:
                await journal(topup)
        except BaseException:
            self.forget(topup)
            raise
        self.launch(topup)
        return topup

    async def wait(self, topup: TopUp, within_s: float | None = None) -> TopUp:
        """The top-up once final, or as it stands after `within_s` (the RPC's answer deadline)."""
        task = self._tasks.get(topup.topup_id)
        if task is not None:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(
                    asyncio.shield(task), self.answer_within_s if within_s is None else within_s
                )
        return topup

    def drive(self, topup: TopUp, *, debit: bool = False) -> asyncio.Task[TopUp]:
        task = self._tasks.get(topup.topup_id)
        if task is None or task.done():
            task = asyncio.get_running_loop().create_task(
                self._drive(topup, debit), name=f"topup {topup.topup_id}"
            )
            self._tasks[topup.topup_id] = task
            task.add_done_callback(self._untrack)
        return task

    def _untrack(self, task: asyncio.Task[TopUp]) -> None:
        for key, known in list(self._tasks.items()):
            if known is task:
                del self._tasks[key]

    @property
    def running(self) -> set[str]:
        """Top-up ids being driven by a task now."""
        return set(self._tasks)

    def resume(self) -> int:
        """At start: every top-up left PENDING is settled by reversal (never debited again)."""
        pending = [t for t in self.book.not_final() if t.state is TopUpState.PENDING]
        for topup in pending:
            self.drive(topup)
        return len(pending)

    async def stop(self) -> None:
        tasks = list(self._tasks.values())
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    # -- driving ----------------------------------------------------------------------------

    async def _drive(self, topup: TopUp, debit: bool) -> TopUp:
        bank = self._bank()
        if debit:
            result = await bank.debit(
                topup.transfer_id,
                topup.bank_code,
                topup.amount_fen,
                topup.business_date,
                card_no=topup.card_no,
                memo="圈存 校园卡",
            )
            step, reason = after_debit(result.outcome, result.reject_reason)
        else:
            step, reason = Step.REVERSE, ""
        tried = 0
        while step is Step.REVERSE:
            if tried:  # the first reversal of this task goes at once (also right after a restart)
                jitter = self._random.random()
                await asyncio.sleep(
                    backoff_s(topup.reversals, self.backoff_base_s, self.backoff_cap_s, jitter)
                )
            topup.reversals += 1
            tried += 1
            topup.updated_ms = self.hub.clock.now_ms()
            await self.hub.writer.submit(Batch(topups=[topup_row(topup)]))
            answer = await self.reverse(topup)
            step, reason = after_reversal(answer.outcome, topup.reversals, self.max_reversals)
        if step is Step.POST:
            await self.post(topup)
        elif step is Step.VOID:
            await self.finish(topup, TopUpState.VOIDED, reason)
        else:
            log.warning("top-up %s: %s; waits for manual review", topup.topup_id, reason)
            await self.finish(topup, TopUpState.MANUAL_REVIEW, reason)
        return topup

    async def post(self, topup: TopUp, reason: str = "", audit: list[AuditRow] | None = None) -> None:
        """The bank debited the account: bank clearing → wallet, POSTED, in one batch."""
        if topup.state.final:
            return
        student = self.hub.campus.students.get(topup.student_id)
        if student is None:
            raise NotFound(f"no student {topup.student_id}")
        now = self.hub.clock.now_ms()
        transfer = self.hub.campus.ledger.post(
            self._clearing_of(topup.bank_code),
            student.wallet.account,
            topup.amount_fen,
            TransferKind.TOP_UP,
            caller=CALLER,
            request_id=topup.transfer_id,
            created_ms=now,
        )
        topup.state, topup.reason, topup.updated_ms = TopUpState.POSTED, reason, now
        await self.hub.writer.submit(
            Batch(transfers=[transfer], topups=[topup_row(topup)], audit=audit or [])
        )
        self._ended(topup)

    async def finish(
        self, topup: TopUp, state: TopUpState, reason: str, audit: list[AuditRow] | None = None
    ) -> None:
        if topup.state.final:
            return
        topup.state, topup.reason, topup.updated_ms = state, reason, self.hub.clock.now_ms()
        await self.hub.writer.submit(Batch(topups=[topup_row(topup)], audit=audit or []))
        self._ended(topup)

    def _ended(self, topup: TopUp) -> None:
        for listener in self.on_final:
            listener(topup)

    def _clearing_of(self, bank_code: str) -> Account:
        account = self._clearing.get(bank_code)
        if account is None:
            account = self._clearing[bank_code] = self.hub.campus.ledger.party(
                AccountKind.BANK_CLEARING, bank_code
            )
        return account

    def _bank(self) -> BankGateway:
        if self.bank is None:
            raise Unavailable("the hub runs without a bank (serve --bank HOST:PORT)")
        return self.bank

    def get(self, topup_id_: str) -> TopUp:
        topup = self.book.topups.get(topup_id_)
        if topup is None:
            raise NotFound(f"topup_id: no top-up {quoted(topup_id_)}", field="topup_id")
        return topup

    async def reverse(self, topup: TopUp) -> ReversalResult:
        """冲正 of the top-up's debit under its reversal id (the bank remembers one that came first)."""
        return await self._bank().reverse(
            topup.reversal_id, topup.bank_code, topup.transfer_id, topup.business_date
        )

    async def bank_says(self, topup: TopUp) -> BankOutcome:
        """Inquiry for a review: POSTED (debited), REVERSED/REJECTED/NOT_FOUND (nothing), or UNCERTAIN."""
        answer = await self._bank().get_transfer(topup.bank_code, topup.transfer_id)
        return answer.outcome
