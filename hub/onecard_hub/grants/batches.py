"""Use cases of grant batches (operators): submit by items or CSV, advance notice, approval, retry
of failed items, the batch and coverage reports. Mutating calls are idempotent per (operator,
request_id) and durable before answered (`student_records.idempotent`); a refused batch writes
nothing. Paying is the payer's job (`payer.py`), woken by approval and retry."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import TypeVar

from google.protobuf.message import Message

from onecard_hub.domain.enrollment import is_minor
from onecard_hub.domain.errors import (
    AlreadyExists,
    FailedPrecondition,
    InvalidArgument,
    NotFound,
    PermissionDenied,
)
from onecard_hub.domain.grants import (
    ACADEMIC_YEAR,
    BATCH_ID,
    MAX_ITEMS,
    BatchStatus,
    CoverageCell,
    FailReason,
    GrantBatch,
    GrantItem,
    GrantType,
    ItemStatus,
    Line,
    LineError,
    Notification,
    check_lines,
    coverage,
    needs_notice,
    notice_text,
)
from onecard_hub.domain.model import Card, CardStatus, Operator, Student
from onecard_hub.grants.book import GrantBook, batch_row, item_row, notice_row
from onecard_hub.hub import Hub
from onecard_hub.store.records import Batch
from onecard_hub.student_records import check_school, idempotent, today

M = TypeVar("M", bound=Message)


@dataclass(frozen=True, slots=True)
class NewBatch:
    school_id: str
    batch_id: str
    grant_type: GrantType
    academic_year: str
    lines: list[Line]
    accept_valid_lines: bool
    parse_errors: list[LineError]  # rows the CSV reader could not read


@dataclass(frozen=True, slots=True)
class Submitted:
    accepted: bool
    batch: GrantBatch | None
    errors: list[LineError]
    notified: int


def check_new_batch(batch_id: str, grant_type: int, academic_year: str, lines: int) -> None:
    if not BATCH_ID.match(batch_id):
        raise InvalidArgument("batch_id", "1 to 32 characters of A-Z a-z 0-9 _ -")
    if grant_type not in set(GrantType):
        raise InvalidArgument("grant_type", "a grant type")
    if not ACADEMIC_YEAR.match(academic_year):
        raise InvalidArgument("academic_year", "YYYY-YYYY or YYYY-YYYY-T (term 1 or 2)")
    if lines > MAX_ITEMS:
        raise InvalidArgument("items", f"at most {MAX_ITEMS}")


def usable(card: Card) -> bool:
    return card.status not in (CardStatus.REPLACED, CardStatus.CANCELLED)


def current_card(hub: Hub, student: Student) -> Card | None:
    """The card that carries the student's bank account now (not replaced nor cancelled)."""
    cards = [c for c in hub.campus.cards_of(student) if usable(c)]
    return max(cards, key=lambda c: c.issued_ms) if cards else None


def current_cards(hub: Hub, student_ids: Iterable[str]) -> dict[str, Card]:
    """`current_card` of each of these students at once (one pass over the cards in memory, once
    each student is: a student in memory has all their cards there): student_id → card."""
    wanted = {student_id for student_id in student_ids if hub.campus.students.get(student_id) is not None}
    found: dict[str, Card] = {}
    for card in hub.campus.held_cards():
        if usable(card) and card.student.student_id in wanted:
            best = found.get(card.student.student_id)
            if best is None or card.issued_ms > best.issued_ms:
                found[card.student.student_id] = card
    return found


def _notify(hub: Hub, book: GrantBook, batch: GrantBatch, now: int) -> list[Notification]:
    told = book.notices.get(batch.key, {})
    new: list[Notification] = []
    cards = current_cards(hub, batch.items)
    for item in batch.items.values():
        if item.student_id in told or item.final:
            continue
        student = hub.campus.students[item.student_id]
        card = cards.get(item.student_id)
        if needs_notice(card.bank_status if card else None):
            new.append(
                Notification(
                    batch.school_id,
                    batch.batch_id,
                    item.student_id,
                    student.name_masked,
                    batch.grant_type,
                    item.amount_fen,
                    now,
                    notice_text(batch, item),
                )
            )
    return new


def _remember(book: GrantBook, notices: list[Notification]) -> None:
    for n in notices:
        book.notices.setdefault((n.school_id, n.batch_id), {})[n.student_id] = n


async def submit(
    hub: Hub,
    book: GrantBook,
    operator: Operator,
    request_id: str,
    new: NewBatch,
    fingerprint: bytes,
    render: Callable[[Submitted], M],
    parse: Callable[[bytes], M],
) -> M:
    check_school(hub, operator, new.school_id)
    good, errors = check_lines(new.lines, new.school_id, hub.campus.students)
    errors = sorted([*new.parse_errors, *errors], key=lambda e: e.line)
    if (errors and not new.accept_valid_lines) or not good:
        return render(Submitted(False, None, errors, 0))  # refused whole: nothing written

    def decide(now: int) -> tuple[M, Batch]:
        if (new.school_id, new.batch_id) in book.batches:
            raise AlreadyExists("batch_id: the school has a batch of this id already", field="batch_id")
        batch = GrantBatch(
            new.school_id, new.batch_id, new.grant_type, new.academic_year, operator.operator_id, now
        )
        for n, line in enumerate(good, start=1):
            batch.items[line.student_id] = GrantItem(
                line.student_id, line.amount_fen, updated_ms=now, line_no=n
            )
        notices = _notify(hub, book, batch, now)
        book.batches[batch.key] = batch
        _remember(book, notices)
        rows = Batch(
            grant_batches=[batch_row(batch)],
            grant_items=[item_row(batch, i) for i in batch.items.values()],
            grant_notices=[notice_row(n) for n in notices],
        )
        return render(Submitted(True, batch, errors, len(notices))), rows

    return await idempotent(hub, operator, request_id, "SubmitGrantBatch", fingerprint, parse, decide)


def batch_of(hub: Hub, book: GrantBook, operator: Operator, school_id: str, batch_id: str) -> GrantBatch:
    check_school(hub, operator, school_id)
    batch = book.batches.get((school_id, batch_id))
    if batch is None:
        raise NotFound("batch_id: no such batch", field="batch_id")
    return batch


async def notify(
    hub: Hub,
    book: GrantBook,
    operator: Operator,
    request_id: str,
    school_id: str,
    batch_id: str,
    fingerprint: bytes,
    render: Callable[[int], M],
    parse: Callable[[bytes], M],
) -> M:
    batch = batch_of(hub, book, operator, school_id, batch_id)

    def decide(now: int) -> tuple[M, Batch]:
        notices = _notify(hub, book, batch, now)
        _remember(book, notices)
        return render(len(notices)), Batch(grant_notices=[notice_row(n) for n in notices])

    return await idempotent(hub, operator, request_id, "NotifyBatch", fingerprint, parse, decide)


def notifications(
    hub: Hub, book: GrantBook, operator: Operator, school_id: str, batch_id: str
) -> list[Notification]:
    batch = batch_of(hub, book, operator, school_id, batch_id)
    return sorted(book.notices.get(batch.key, {}).values(), key=lambda n: (n.created_ms, n.student_id))


async def approve(
    hub: Hub,
    book: GrantBook,
    operator: Operator,
    request_id: str,
    school_id: str,
    batch_id: str,
    fingerprint: bytes,
    render: Callable[[GrantBatch], M],
    parse: Callable[[bytes], M],
    wake: Callable[[], None],
) -> M:
    batch = batch_of(hub, book, operator, school_id, batch_id)

    def decide(now: int) -> tuple[M, Batch]:
        if batch.status != BatchStatus.SUBMITTED:
            raise FailedPrecondition(
                "the batch is approved already",
                reason="ILLEGAL_TRANSITION",
                metadata={"state": batch.status.name},
            )
        batch.status = BatchStatus.PAYING
        batch.approved_by = operator.operator_id
        return render(batch), Batch(grant_batches=[batch_row(batch)])

    response = await idempotent(hub, operator, request_id, "ApproveGrantBatch", fingerprint, parse, decide)
    wake()
    return response


async def retry_failed(
    hub: Hub,
    book: GrantBook,
    operator: Operator,
    request_id: str,
    school_id: str,
    batch_id: str,
    fingerprint: bytes,
    render: Callable[[int, GrantBatch], M],
    parse: Callable[[bytes], M],
    wake: Callable[[], None],
) -> M:
    batch = batch_of(hub, book, operator, school_id, batch_id)

    def decide(now: int) -> tuple[M, Batch]:
        if batch.status == BatchStatus.SUBMITTED:
            raise FailedPrecondition(
                "the batch is not approved yet",
                reason="ILLEGAL_TRANSITION",
                metadata={"state": batch.status.name},
            )
        again = [i for i in batch.items.values() if i.status == ItemStatus.FAILED]
        for item in again:
            item.status, item.fail_reason, item.updated_ms = ItemStatus.PENDING, FailReason.NONE, now
        if again:
            batch.status = BatchStatus.PAYING
        rows = Batch(grant_batches=[batch_row(batch)], grant_items=[item_row(batch, i) for i in again])
        return render(len(again), batch), rows

    response = await idempotent(hub, operator, request_id, "RetryFailedItems", fingerprint, parse, decide)
    wake()
    return response


def grant_coverage(
    hub: Hub, book: GrantBook, operator: Operator, school_id: str, academic_year: str
) -> tuple[list[CoverageCell], list[GrantType], list[CoverageCell]]:
    if operator.school_id and not school_id:
        raise PermissionDenied("school_id: the whole province is for province administrators")
    if school_id:
        check_school(hub, operator, school_id)
    on = today(hub)
    students = [
        (s, is_minor(s.birth_date, on))
        for s in hub.campus.students.values()
        if (not school_id or s.school_id == school_id) and s.enrollment.value == "enrolled"
    ]
    batches = [
        b
        for b in book.batches.values()
        if (not school_id or b.school_id == school_id)
        and (not academic_year or b.academic_year == academic_year)
    ]
    return coverage(students, batches)
