"""The grant payer: one background task that pays the items of approved batches (a bound on how
many at once) and settles uncertain outcomes. A model: `cardsys_feed.py`.

One item, one attempt at a time:
1. PENDING → the attempt's transfer id (`domain.grants.transfer_id`) and UNCERTAIN are journaled
   BEFORE the credit is sent, so a crash between call and answer is settled after restart.
2. The credit's answer: POSTED → PAID (ledger: grant pool → bank clearing); REJECTED → FAILED with
   the bank's reason; RETURNED → RETURNED (paid, then sent back: both transfers booked).
3. No answer (UNKNOWN) → inquiry (GetTransfer) with backoff until definite. NOT_FOUND → reversal
   (冲正) of that transfer id, so it can never post later, then inquiry again. REVERSED → the
   attempt is void; the item goes back to PENDING and the next attempt has a new transfer id —
   after MAX_ATTEMPTS void attempts it is FAILED MANUAL_REVIEW. An item is never credited under a
   second id while an earlier attempt may still post.
At start every UNCERTAIN item of a PAYING batch is inquired about first (step 3).
"""

from __future__ import annotations

import asyncio
import logging

from onecard_hub.bank.gateway import BankGateway
from onecard_hub.bank.inquiry import settle_by_inquiry
from onecard_hub.domain.bank import BankOutcome
from onecard_hub.domain.clock import business_date
from onecard_hub.domain.grants import (
    GRANT_NAMES,
    MAX_ATTEMPTS,
    REJECT_REASONS,
    FailReason,
    GrantBatch,
    GrantItem,
    ItemStatus,
    transfer_id,
)
from onecard_hub.domain.ledger import Account, AccountKind, TransferKind
from onecard_hub.domain.model import Card
from onecard_hub.grants.batches import current_cards
from onecard_hub.grants.book import GrantBook, batch_row, item_row
from onecard_hub.hub import Hub
from onecard_hub.stopping import cancelled
from onecard_hub.store.records import Batch

log = logging.getLogger(__name__)
CALLER = "grants"


class GrantPayer:
    def __init__(
        self,
        hub: Hub,
        book: GrantBook,
        bank: BankGateway,
        *,
        concurrency: int = 8,
        backoff_s: float = 0.05,
        max_backoff_s: float = 2.0,
    ) -> None:
        self._hub = hub
        self._book = book
        self._bank = bank
        self._limit = asyncio.Semaphore(concurrency)
        self._backoff_s = backoff_s
        self._max_backoff_s = max_backoff_s
        self._wake = asyncio.Event()
        self._busy: set[tuple[str, str, str]] = set()
        self._task: asyncio.Task[None] | None = None
        self._items: set[asyncio.Task[None]] = set()
        self._cards: dict[str, Card] = {}  # student → current card, as of the last wake
        self._accounts: dict[tuple[AccountKind, str], Account] = {}

    def start(self) -> None:
        self._wake.set()  # resume what a restart left
        self._task = asyncio.get_running_loop().create_task(self._run(), name="grant-payer")

    def wake(self) -> None:
        self._wake.set()

    async def stop(self) -> None:
        await cancelled(self._task, *self._items)
        self._task = None

    async def _run(self) -> None:
        while True:
            await self._wake.wait()
            self._wake.clear()
            unfinished = self._book.unfinished()
            self._cards = current_cards(
                self._hub,
                (item.student_id for b in unfinished for item in b.items.values() if not item.final),
            )
            for batch in unfinished:
                for item in list(batch.items.values()):
                    key = (batch.school_id, batch.batch_id, item.student_id)
                    if item.final or key in self._busy:
                        continue
                    self._busy.add(key)
                    task = asyncio.get_running_loop().create_task(self._pay(batch, item, key))
                    self._items.add(task)
                    task.add_done_callback(self._items.discard)

    async def _pay(self, batch: GrantBatch, item: GrantItem, key: tuple[str, str, str]) -> None:
        try:
            async with self._limit:
                while not item.final:
                    await self._attempt(batch, item)
                if batch.settle_status():
                    await self._commit(Batch(grant_batches=[batch_row(batch)]))
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("grant item %s/%s: payer stopped on it", batch.batch_id, item.student_id)
        finally:
            self._busy.discard(key)

    async def _attempt(self, batch: GrantBatch, item: GrantItem) -> None:
        date_ = business_date(self._hub.clock.now_ms())
        if item.status == ItemStatus.PENDING:
            card = self._cards.get(item.student_id)
            now = self._hub.clock.now_ms()
            if card is None or not card.bank_code:
                await self._final(batch, item, ItemStatus.FAILED, FailReason.NO_CARD, [])
                return
            item.attempts += 1
            item.transfer_id = transfer_id(batch, item.student_id, item.attempts)
            item.status, item.bank_code, item.card_no, item.updated_ms = (
                ItemStatus.UNCERTAIN,
                card.bank_code,
                card.card_no,
                now,
            )
            await self._commit(Batch(grant_items=[item_row(batch, item)]))  # durable before the call
            memo = f"{GRANT_NAMES[batch.grant_type]} {batch.academic_year} {batch.batch_id}"
            result = await self._bank.credit(
                item.transfer_id, item.bank_code, item.amount_fen, date_, card_no=item.card_no, memo=memo
            )
        else:
            result = await self._bank.get_transfer(item.bank_code, item.transfer_id)
        result = await settle_by_inquiry(
            self._bank,
            result,
            item.bank_code,
            item.transfer_id,
            date_,
            backoff_s=self._backoff_s,
            max_backoff_s=self._max_backoff_s,
        )
        answer = result.outcome
        if answer == BankOutcome.POSTED:
            await self._final(batch, item, ItemStatus.PAID, FailReason.NONE, [TransferKind.GRANT_PAYMENT])
        elif answer == BankOutcome.REJECTED:
            reason = REJECT_REASONS.get(result.reject_reason, FailReason.MANUAL_REVIEW)
            await self._final(batch, item, ItemStatus.FAILED, reason, [])
        elif answer == BankOutcome.RETURNED:
            kinds = [TransferKind.GRANT_PAYMENT, TransferKind.GRANT_RETURN]
            await self._final(batch, item, ItemStatus.RETURNED, FailReason.NONE, kinds)
        else:  # REVERSED
            await self._void(batch, item)

    async def _void(self, batch: GrantBatch, item: GrantItem) -> None:
        """The attempt never moved money (reversed before or after it arrived)."""
        if item.attempts >= MAX_ATTEMPTS:
            await self._final(batch, item, ItemStatus.FAILED, FailReason.MANUAL_REVIEW, [])
            return
        item.status, item.updated_ms = ItemStatus.PENDING, self._hub.clock.now_ms()
        await self._commit(Batch(grant_items=[item_row(batch, item)]))

    async def _final(
        self,
        batch: GrantBatch,
        item: GrantItem,
        status: ItemStatus,
        reason: FailReason,
        kinds: list[TransferKind],
    ) -> None:
        now = self._hub.clock.now_ms()
        rows = Batch()
        if kinds:
            pool = self._account(AccountKind.GRANT_POOL, batch.school_id)
            clearing = self._account(AccountKind.BANK_CLEARING, item.bank_code)
            for kind in kinds:
                source, target = (pool, clearing) if kind == TransferKind.GRANT_PAYMENT else (clearing, pool)
                rows.transfers.append(
                    self._hub.campus.ledger.post(
                        source,
                        target,
                        item.amount_fen,
                        kind,
                        caller=CALLER,
                        request_id=item.transfer_id,
                        created_ms=now,
                    )
                )
        item.status, item.fail_reason, item.updated_ms = status, reason, now
        rows.grant_items.append(item_row(batch, item))
        await self._commit(rows)

    def _account(self, kind: AccountKind, owner: str) -> Account:
        account = self._accounts.get((kind, owner))
        if account is None:
            account = self._accounts[(kind, owner)] = self._hub.campus.ledger.party(kind, owner)
        return account

    async def _commit(self, rows: Batch) -> None:
        """Durable before the payer goes on (cancelling the payer at stop waits for the commit:
        the writer's future cannot be cancelled)."""
        self._hub.check_healthy()
        await self._hub.writer.submit(rows)
