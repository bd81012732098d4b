"""Use cases of the library scene (图书借阅): Borrow and Return at a library desk, and the
overdue list for the card office. The rules are in `domain/library.py`.

A desk tap is journaled like an Authorize: the request row (with card, scene and decision, and
the QR nonce it used up), the card's new counter and the loan made or closed go to the writer
in one batch, durable before the desk hears the answer; idempotent by (terminal, request_id).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

from google.protobuf.message import Message

from onecard_hub.domain.campus import Campus, Tap, TapResult
from onecard_hub.domain.clock import business_day
from onecard_hub.domain.library import LibraryDecision, Loan
from onecard_hub.domain.model import Card, Operator
from onecard_hub.domain.scope import listed_school
from onecard_hub.hub import Hub
from onecard_hub.once import run_once
from onecard_hub.store.records import Batch, CardStateRow, LoanRow, RequestRow

M = TypeVar("M", bound=Message)
BORROW, RETURN = "Borrow", "Return"


async def borrow(
    hub: Hub,
    tap: Tap,
    book_id: str,
    fingerprint: bytes,
    render: Callable[[LibraryDecision, int], M],
    parse: Callable[[bytes], M],
) -> M:
    return await _desk_call(hub, BORROW, hub.library.borrow, tap, book_id, fingerprint, render, parse)


async def return_book(
    hub: Hub,
    tap: Tap,
    book_id: str,
    fingerprint: bytes,
    render: Callable[[LibraryDecision, int], M],
    parse: Callable[[bytes], M],
) -> M:
    return await _desk_call(hub, RETURN, hub.library.return_book, tap, book_id, fingerprint, render, parse)


async def _desk_call(
    hub: Hub,
    method: str,
    decide: Callable[[Campus, Tap, str, int], LibraryDecision],
    tap: Tap,
    book_id: str,
    fingerprint: bytes,
    render: Callable[[LibraryDecision, int], M],
    parse: Callable[[bytes], M],
) -> M:
    """`decide` is the domain rule (`Library.borrow` or `Library.return_book`)."""
    key = (tap.terminal.terminal_id, tap.request_id)

    def act(now: int) -> tuple[M, Batch, RequestRow]:
        decision = decide(hub.campus, tap, book_id, now)
        result = decision.tap
        rows = Batch(
            card_states=card_state_rows(result.card, result.card_changed),
            loans=[loan_row(decision.loan)] if decision.loan is not None else [],
        )
        return render(decision, now), rows, tap_request_row(key, method, tap, result, now)

    return await run_once(hub, key, method, fingerprint, parse, act)


def overdue_loans(hub: Hub, operator: Operator, school_id: str) -> list[Loan]:
    """A school's overdue loans; a clerk names their own school, a province administrator may
    leave `school_id` empty for every school."""
    return hub.library.overdue(listed_school(operator, school_id, hub.campus.schools), hub.clock.now_ms())


# -- journal rows (shared with exams.py) ------------------------------------------------


def card_state_rows(card: Card | None, changed: bool) -> list[CardStateRow]:
    if card is None or not changed:
        return []
    return [CardStateRow(card.card_no, card.atc, card.pin_failures, int(card.presence))]


def tap_request_row(key: tuple[str, str], method: str, tap: Tap, result: TapResult, now: int) -> RequestRow:
    """The journal row of a desk or tablet tap; `run_once` fills in fingerprint and response."""
    return RequestRow(
        key[0],
        key[1],
        method,
        b"",
        b"",
        now,
        card_no=tap.card_no,
        scene=int(tap.scene),
        reason=int(result.reason),
        business_day=business_day(now),
        qr_nonce=result.qr_nonce,
        qr_expires_ms=result.qr_expires_ms,
    )


def loan_row(loan: Loan) -> LoanRow:
    return LoanRow(
        loan.loan_id,
        loan.school_id,
        loan.book_id,
        loan.student.student_id,
        loan.card_no,
        loan.borrowed_ms,
        loan.due_ms,
        loan.returned_ms,
    )
