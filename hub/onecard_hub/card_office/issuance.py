"""Use cases: issuing cards (one, or a whole intake) and replacing one (补换).

A new card gets a fresh number; its keys are derived from the issuer master keys like every
card's (HMAC, `onecard_client.credentials`), so the number is all the hub stores. The answer
carries the keys for the issuing machine; the copy kept for idempotent replays does not (the
servicer redacts it and derives them again on a replay).
"""

from __future__ import annotations

import secrets
import string
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

from google.protobuf.message import Message

from onecard_client.credentials import derive_card_key, derive_ecard_key
from onecard_hub.card_office.common import (
    CardView,
    Outcome,
    Personalization,
    Proof,
    audit_row,
    card_in_scope,
    card_row,
    card_state_row,
    check_proof,
    guardian_row,
    personalization,
    protector,
    run,
    student_in_scope,
    today,
    view,
)
from onecard_hub.domain import audit
from onecard_hub.domain.card_lifecycle import (
    ECARD_GENERATION,
    ISSUED_STATUS,
    REPLACEMENT_STATUS,
    CardAction,
    check_bank,
    check_generation,
    check_pin,
    next_status,
)
from onecard_hub.domain.errors import AlreadyExists, HubError, InvalidArgument
from onecard_hub.domain.guardian import (
    Guardian,
    GuardianCandidate,
    Relation,
    check_candidate,
    check_identity,
    require_guardian,
    with_guardian,
)
from onecard_hub.domain.model import BankStatus, Card, CardStatus, Operator, Student
from onecard_hub.domain.pii import mask_id_number, mask_name
from onecard_hub.hub import Hub
from onecard_hub.store.records import Batch

M = TypeVar("M", bound=Message)
MAX_BULK_ROWS = 500


@dataclass(frozen=True, slots=True)
class GuardianInput:
    name: str
    id_number: str
    relation: Relation | None


@dataclass(frozen=True, slots=True)
class IssueOrder:
    student_id: str
    bank_code: str
    generation: int
    pin: str
    guardian: GuardianInput | None = None


@dataclass(frozen=True, slots=True)
class Issued:
    view: CardView
    keys: Personalization


@dataclass(frozen=True, slots=True)
class RowResult:
    row: int
    issued: Issued | None
    error: HubError | None


@dataclass(frozen=True, slots=True)
class Replaced:
    old: CardView
    new: Issued


@dataclass(frozen=True, slots=True)
class ReplaceOrder:
    card_no: str
    bank_code: str
    generation: int
    pin: str
    proof: Proof


def new_card_no(hub: Hub) -> str:
    """A social security card number as seeded: one capital letter and eight digits, unused."""
    while True:
        number = f"{secrets.choice(string.ascii_uppercase)}{secrets.randbelow(10**8):08d}"
        if number not in hub.campus.cards:
            return number


async def issue_card(
    hub: Hub,
    operator: Operator,
    request_id: str,
    order: IssueOrder,
    fingerprint: bytes,
    render: Callable[[Issued], M],
    parse: Callable[[bytes], M],
    redact: Callable[[M], bytes],
) -> M:
    def act(now_ms: int) -> Outcome[Issued]:
        rows = Batch()
        issued = _issue(hub, operator, order, now_ms, Stamp(request_id, CardAction.ISSUE.value), rows)
        return Outcome(issued, rows)

    return await run(
        hub, operator, CardAction.ISSUE.value, request_id, fingerprint, act, render, parse, redact
    )


async def bulk_issue(
    hub: Hub,
    operator: Operator,
    request_id: str,
    orders: list[IssueOrder],
    fingerprint: bytes,
    render: Callable[[list[RowResult]], M],
    parse: Callable[[bytes], M],
    redact: Callable[[M], bytes],
) -> M:
    """Each row is checked and applied alone: a bad row is reported and applies nothing."""
    if not orders:
        raise InvalidArgument("rows", "at least one row")
    if len(orders) > MAX_BULK_ROWS:
        raise InvalidArgument("rows", f"at most {MAX_BULK_ROWS} rows")

    def act(now_ms: int) -> Outcome[list[RowResult]]:
        rows = Batch()
        results = []
        for i, order in enumerate(orders):
            try:
                issued = _issue(hub, operator, order, now_ms, Stamp(request_id, BULK_ISSUE, i), rows)
            except HubError as exc:
                results.append(RowResult(i, None, exc))
            else:
                results.append(RowResult(i, issued, None))
        return Outcome(results, rows)

    return await run(hub, operator, BULK_ISSUE, request_id, fingerprint, act, render, parse, redact)


async def replace_card(
    hub: Hub,
    operator: Operator,
    request_id: str,
    order: ReplaceOrder,
    fingerprint: bytes,
    render: Callable[[Replaced], M],
    parse: Callable[[bytes], M],
    redact: Callable[[M], bytes],
) -> M:
    """补换: the old card is REPLACED for good; the new one has a new number and keys, and the
    student keeps wallet, limits and history (they belong to the student, not the card)."""

    def act(now_ms: int) -> Outcome[Replaced]:
        old = card_in_scope(hub, operator, order.card_no)
        student = old.student
        next_status(CardAction.REPLACE, old)
        check_bank(order.bank_code)
        check_generation(order.generation)
        check_pin(order.pin, "initial_pin")
        proof = check_proof(hub, order.proof)
        check_identity(
            student,
            hub.card_book.guardians_of(student.student_id),
            today(now_ms),
            proof.holder_index,
            proof.guardian_index,
        )

        was = old.status
        new = _new_card(hub, student, order.bank_code, order.generation, order.pin, now_ms)
        new.presence = old.presence  # the holder is where the old card last passed
        new.ecard_suspended = old.ecard_suspended and new.ecard_issued
        old.replaced_by = new.card_no
        rows = Batch(blocklist=hub.campus.set_card_status(old.card_no, CardStatus.REPLACED, at_ms=now_ms))
        hub.card_book.note_card(old)
        rows.cards.append(card_row(old))
        _install(hub, new, REPLACEMENT_STATUS[was], now_ms, rows)
        rows.card_states.append(card_state_row(new))
        rows.audit.append(
            audit_row(
                operator,
                now_ms,
                CardAction.REPLACE.value,
                request_id,
                student,
                old.card_no,
                audit.details(
                    new_card_no=new.card_no,
                    was=was.value,
                    bank=f"{old.bank_code}->{new.bank_code}",
                    generation=new.generation,
                    identity=proof.who,
                ),
            )
        )
        return Outcome(
            Replaced(view(hub, old, now_ms), Issued(view(hub, new, now_ms), personalization(hub, new))), rows
        )

    return await run(
        hub, operator, CardAction.REPLACE.value, request_id, fingerprint, act, render, parse, redact
    )


# -- internals ----------------------------------------------------------------------------

BULK_ISSUE = "BulkIssueCards"


@dataclass(frozen=True, slots=True)
class Stamp:
    """Which request an issue belongs to, for the audit log."""

    request_id: str
    action: str
    row: int | None = None


def _new_card(hub: Hub, student: Student, bank_code: str, generation: int, pin: str, now_ms: int) -> Card:
    card_no = new_card_no(hub)
    return Card(
        card_no=card_no,
        student=student,
        status=ISSUED_STATUS,
        card_key=derive_card_key(hub.keys.issuer_master.key, card_no),
        ecard_key=derive_ecard_key(hub.keys.ecard_master.key, card_no),
        pin_hash=hub.campus.pin_hasher(card_no, pin),
        ecard_issued=generation == ECARD_GENERATION,
        generation=generation,
        bank_code=bank_code,
        bank_status=BankStatus.NOT_ACTIVATED,  # a new card's bank function is activated at the bank
        issued_ms=now_ms,
    )


def _install(hub: Hub, card: Card, status: CardStatus, now_ms: int, rows: Batch) -> None:
    """Puts a new card in the campus; its status goes through set_card_status (the blocklist follows)."""
    hub.campus.cards[card.card_no] = card
    rows.blocklist.extend(hub.campus.set_card_status(card.card_no, status, at_ms=now_ms))
    hub.card_book.note_card(card)
    rows.cards.append(card_row(card))


def _issue(hub: Hub, operator: Operator, order: IssueOrder, now_ms: int, stamp: Stamp, rows: Batch) -> Issued:
    """Checks one issue order completely, then applies it and adds its rows; nothing on failure."""
    prefix = "" if stamp.row is None else f"rows[{stamp.row}]."
    student = student_in_scope(hub, operator, order.student_id, f"{prefix}student_id")
    if student.student_id in hub.card_book.current:
        raise AlreadyExists(f"{prefix}student_id: the student has a card already (ReplaceCard replaces it)")
    check_bank(order.bank_code, f"{prefix}bank_code")
    check_generation(order.generation, f"{prefix}generation")
    check_pin(order.pin, f"{prefix}initial_pin")
    day = today(now_ms)
    guardians = hub.card_book.guardians_of(student.student_id)
    candidate: GuardianCandidate | None = None
    added: Guardian | None = None
    if order.guardian is not None:
        g = order.guardian
        candidate = check_candidate(g.name, g.id_number, g.relation, day, f"{prefix}guardian")
        added = new_guardian(hub, student, candidate, now_ms, f"{prefix}guardian")
        guardians = with_guardian(guardians, added)
    require_guardian(student, guardians, day, offered=candidate is not None)

    card = _new_card(hub, student, order.bank_code, order.generation, order.pin, now_ms)
    _install(hub, card, ISSUED_STATUS, now_ms, rows)
    if candidate is not None and added is not None:
        hub.card_book.guardians[student.student_id] = guardians
        rows.guardians.append(guardian_row(hub, student, candidate.name, candidate.id_number, added))
    details = audit.details(
        row=stamp.row,
        bank=card.bank_code,
        generation=card.generation,
        ecard="issued" if card.ecard_issued else "none",
        guardian=f"{added.id_masked} ({added.relation.value})" if added else None,
    )
    rows.audit.append(
        audit_row(operator, now_ms, stamp.action, stamp.request_id, student, card.card_no, details)
    )
    return Issued(view(hub, card, now_ms), personalization(hub, card))


def new_guardian(
    hub: Hub, student: Student, candidate: GuardianCandidate, now_ms: int, field: str
) -> Guardian:
    """The guardian to register (not yet registered): the ID number only as keyed index and mask."""
    index = protector(hub).index(candidate.id_number)
    if student.id_index and index == student.id_index:
        raise InvalidArgument(f"{field}.id_number", "the student's own ID number")
    return Guardian(
        mask_name(candidate.name), index, mask_id_number(candidate.id_number), candidate.relation, now_ms
    )
