"""The bank function (社保卡银行功能) and change of co-branded bank.

`change_bank` (an operator at the window, with the identity check; a guardian for a minor): opens
the account at the new bank (OpenAccount, idempotent per card at the bank), links it (the card's
bank code; its bank function as the new bank reports it) and records the change PENDING_CLOSE. The
old account is closed by `Closer` only once every top-up of the student at the old bank is final
(none pending, none in review); then CLOSED with what the old bank paid out to the holder. The holder
picks any co-branded bank freely.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

from onecard_hub.bank.gateway import BankGateway
from onecard_hub.card_office.common import Proof, audit_row, card_row, check_proof, today
from onecard_hub.domain import audit
from onecard_hub.domain.bank import AccountState, BankOutcome
from onecard_hub.domain.errors import FailedPrecondition, InvalidArgument, Unavailable, quoted
from onecard_hub.domain.guardian import check_identity
from onecard_hub.domain.model import CO_BRANDED_BANKS, BankStatus, Card, Operator
from onecard_hub.domain.topup import BankChange, ChangeState
from onecard_hub.funds.book import FundsBook, change_row
from onecard_hub.hub import Hub
from onecard_hub.store.records import Batch

log = logging.getLogger(__name__)
CHANGE_BANK = "change_bank"


async def change_bank(
    hub: Hub,
    book: FundsBook,
    bank: BankGateway,
    operator: Operator,
    request_id: str,
    card: Card,
    new_bank_code: str,
    proof: Proof,
) -> tuple[BankChange, str]:
    """The change recorded and the new account number; nothing written when refused."""
    if new_bank_code not in CO_BRANDED_BANKS:
        raise InvalidArgument(
            "new_bank_code",
            f"{quoted(new_bank_code)} is not a co-branded bank ({', '.join(CO_BRANDED_BANKS)})",
        )
    if new_bank_code == card.bank_code:
        raise InvalidArgument("new_bank_code", f"the card is already with {new_bank_code}")
    student = card.student
    closing = [c for c in book.changes.get(student.student_id, ()) if c.state is ChangeState.PENDING_CLOSE]
    if any(c.old_bank_code == new_bank_code for c in closing):
        raise FailedPrecondition(
            f"new_bank_code: the account at {new_bank_code} is being closed; choose it again once closed",
            reason="ILLEGAL_TRANSITION",
            field="new_bank_code",
            metadata={"state": ChangeState.PENDING_CLOSE.value},
        )
    checked = check_proof(hub, proof)
    now = hub.clock.now_ms()
    check_identity(
        student,
        hub.card_book.guardians_of(student.student_id),
        today(now),
        checked.holder_index,
        checked.guardian_index,
    )
    opened = await bank.open_account(
        f"open-{card.card_no}-{new_bank_code}", new_bank_code, card.card_no, activated=True
    )
    if opened.outcome is BankOutcome.UNCERTAIN or opened.account is None:
        if opened.outcome is BankOutcome.UNCERTAIN:
            raise Unavailable("the new bank did not answer; nothing changed: retry with the same request_id")
        raise FailedPrecondition(
            f"the new bank refused to open the account ({opened.error or opened.outcome})"
        )
    account = opened.account
    old_bank = card.bank_code
    card.bank_code = new_bank_code
    card.bank_status = BankStatus.ACTIVE if account.state is AccountState.ACTIVE else BankStatus.NOT_ACTIVATED
    change = BankChange(student.student_id, card.card_no, old_bank, new_bank_code, now, updated_ms=now)
    details = audit.details(old_bank=old_bank, new_bank=new_bank_code, identity=checked.who)
    await hub.writer.submit(
        Batch(
            cards=[card_row(card)],
            bank_changes=[change_row(change)],
            audit=[audit_row(operator, now, CHANGE_BANK, request_id, student, card.card_no, details)],
        )
    )
    book.changes.setdefault(student.student_id, []).append(change)
    return change, account.account_no


class Closer:
    """Closes old accounts of changes whose top-ups at the old bank are all final; runs every
    `every_s` and when poked (a top-up ended)."""

    def __init__(self, hub: Hub, book: FundsBook, bank: BankGateway, every_s: float = 1.0) -> None:
        self._hub = hub
        self._book = book
        self._bank = bank
        self._every_s = every_s
        self._event = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    def poke(self, *_: object) -> None:
        self._event.set()

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self.run(), name="bank change closer")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)

    async def run(self) -> None:
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._event.wait(), self._every_s)
            self._event.clear()
            for change in self._book.pending_closes():
                try:
                    await self.close_if_settled(change)
                except asyncio.CancelledError:
                    raise
                except Exception:
                    log.exception("closing the old account of %s failed; tried again", change.student_id)

    async def close_if_settled(self, change: BankChange) -> bool:
        if change.state is not ChangeState.PENDING_CLOSE:
            return True
        if self._book.open_at(change.student_id, change.old_bank_code):
            return False  # its top-ups are not final yet
        closed = await self._bank.close_account(
            f"close-{change.card_no}-{change.old_bank_code}-{change.created_ms}",
            change.old_bank_code,
            card_no=change.card_no,
        )
        if closed.outcome not in (BankOutcome.OK, BankOutcome.NOT_FOUND):
            return False  # no answer (or refused): tried again on the next round
        change.state, change.paid_out_fen = ChangeState.CLOSED, closed.paid_out_fen
        change.updated_ms = self._hub.clock.now_ms()
        await self._hub.writer.submit(Batch(bank_changes=[change_row(change)]))
        return True
