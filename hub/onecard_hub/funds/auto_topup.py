"""Auto top-up: when an approved purchase leaves a wallet under the holder's threshold, a top-up of
the chosen amount is made OFF the purchase's path.

The purchase path only calls `hub.low_balance.purchased(...)` (domain/topup.py LowBalanceWatch: one
dict lookup for a wallet without auto top-up; a bounded queue otherwise). `AutoTopUps.run` consumes
the queue in a background task: at most one auto top-up in flight per wallet; a top-up that cannot
start or ends VOIDED / in review is recorded (`last_failure`) and the wallet's auto top-up is
suspended until the holder sets it again — never retried into a loop.
"""

from __future__ import annotations

import asyncio
import logging

from onecard_hub.domain.errors import HubError
from onecard_hub.domain.model import Student
from onecard_hub.domain.topup import AutoTopUp, Origin, TopUp, TopUpState, check_auto
from onecard_hub.funds.book import FundsBook, auto_row
from onecard_hub.funds.topups import TopUps
from onecard_hub.grants.batches import current_card
from onecard_hub.store.records import Batch

log = logging.getLogger(__name__)


class AutoTopUps:
    def __init__(self, topups: TopUps, book: FundsBook) -> None:
        self._topups = topups
        self._book = book
        self._hub = topups.hub
        self._watch = topups.hub.low_balance
        self._event = asyncio.Event()
        self._watch.wake = self._event.set
        self._task: asyncio.Task[None] | None = None
        self._writes: set[asyncio.Task[None]] = set()
        for auto in book.autos.values():
            if auto.enabled:
                self._watch.thresholds[auto.student_id] = auto.threshold_fen
        topups.on_final.append(self._ended)

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self.run(), name="auto top-up")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
        await asyncio.gather(*self._writes, return_exceptions=True)

    async def set(self, student: Student, threshold_fen: int, amount_fen: int, enabled: bool) -> AutoTopUp:
        check_auto(threshold_fen, amount_fen, enabled)
        old = self._book.autos.get(student.student_id)
        auto = AutoTopUp(
            student.student_id,
            enabled,
            threshold_fen if enabled else 0,
            amount_fen if enabled else 0,
            old.last_topup_id if old else "",
            "",
            self._hub.clock.now_ms(),
        )
        await self._hub.writer.submit(Batch(auto_topups=[auto_row(auto)]))
        self._book.autos[student.student_id] = auto
        if enabled:
            self._watch.thresholds[student.student_id] = threshold_fen
        else:
            self._watch.thresholds.pop(student.student_id, None)
        return auto

    async def run(self) -> None:
        while True:
            await self._event.wait()
            self._event.clear()
            while (student_id := self._watch.take()) is not None:
                try:
                    await self._one(student_id)
                except asyncio.CancelledError:
                    raise
                except Exception:
                    log.exception("auto top-up of %s failed", student_id)
                    self._watch.done(student_id)

    async def _one(self, student_id: str) -> None:
        auto = self._book.autos.get(student_id)
        student = self._hub.campus.students.get(student_id)
        if auto is None or not auto.enabled or student is None:
            self._watch.done(student_id)
            return
        card = current_card(self._hub, student)
        try:
            if card is None:
                raise HubError("no current card")
            topup = await self._topups.start(card, auto.amount_fen, Origin.AUTO)
        except HubError as refused:
            await self._failed(auto, "", f"not started: {refused.message}")
            return
        auto.last_topup_id, auto.last_failure = topup.topup_id, ""
        await self._hub.writer.submit(Batch(auto_topups=[auto_row(auto)]))

    def _ended(self, topup: TopUp) -> None:
        if topup.origin is not Origin.AUTO:
            return
        self._watch.done(topup.student_id)
        if topup.state is TopUpState.POSTED:
            return
        auto = self._book.autos.get(topup.student_id)
        if auto is not None and auto.last_topup_id == topup.topup_id:
            task = asyncio.get_running_loop().create_task(
                self._failed(auto, topup.topup_id, f"{topup.state.value}: {topup.reason}")
            )
            self._writes.add(task)
            task.add_done_callback(self._writes.discard)

    async def _failed(self, auto: AutoTopUp, topup_id: str, failure: str) -> None:
        """Recorded, and the auto top-up suspended until the holder sets it again."""
        log.info("auto top-up of %s suspended: %s", auto.student_id, failure)
        auto.enabled, auto.last_failure, auto.updated_ms = False, failure, self._hub.clock.now_ms()
        if topup_id:
            auto.last_topup_id = topup_id
        self._watch.thresholds.pop(auto.student_id, None)
        self._watch.done(auto.student_id)
        await self._hub.writer.submit(Batch(auto_topups=[auto_row(auto)]))
