"""What every card-office use case shares: the idempotent, durable run of an action; the
operator's scope; the rows (card, guardian, audit) an action journals; the card as shown.

An action is a function of the hub's clock that checks everything first and only then changes
memory, returning the answer and the rows that record it. `run` journals those rows with the
request row in one writer batch and answers once they are durable (the audit entry is in the same
batch as the change it records). A refusal that must itself be recorded (a wrong old PIN counts
toward the lockout) is journaled like an answer, with a marker instead of a response, so a repeat
of the same request_id gets the same refusal — also after a restart.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date
from typing import Generic, TypeVar

from google.protobuf.message import Message

from onecard_client.credentials import derive_card_key, derive_ecard_key
from onecard_hub.domain.card_lifecycle import ECardStatus, ecard_status
from onecard_hub.domain.clock import to_cst
from onecard_hub.domain.errors import HubError, InvalidArgument, NotFound, PermissionDenied
from onecard_hub.domain.guardian import Guardian, is_minor
from onecard_hub.domain.model import Card, Operator, Student
from onecard_hub.domain.pii import is_valid_id_number, mask_id_number
from onecard_hub.hub import Hub
from onecard_hub.idempotency import Entry
from onecard_hub.security.protect import FieldProtector
from onecard_hub.store.records import AuditRow, Batch, CardRow, CardStateRow, GuardianRow, RequestRow

M = TypeVar("M", bound=Message)
R = TypeVar("R")

OPERATOR = "operator"
# A journaled refusal: this prefix, then the ErrorReason. A serialized response never starts with
# a zero byte (field number 0 does not exist), so the two cannot be confused.
_REFUSED = b"\x00refused:"
MAX_ID_CHARS = 64


@dataclass(slots=True)
class Outcome(Generic[R]):
    """What an action decided: its result, the rows that record it, or a recorded refusal."""

    result: R | None
    rows: Batch = field(default_factory=Batch)
    refusal: HubError | None = None


@dataclass(frozen=True, slots=True)
class CardView:
    """A card as the card office shows it."""

    card: Card
    guardians: list[Guardian]
    minor: bool
    pin_locked: bool
    ecard: ECardStatus


@dataclass(frozen=True, slots=True)
class Personalization:
    card_no: str
    card_key: bytes
    ecard_key: bytes  # b"" without an e-card


async def run(
    hub: Hub,
    operator: Operator,
    method: str,
    request_id: str,
    fingerprint: bytes,
    act: Callable[[int], Outcome[R]],
    render: Callable[[R], M],
    parse: Callable[[bytes], M],
    redact: Callable[[M], bytes] | None = None,
) -> M:
    """Runs an action once per (operator, request_id): same id and body → the first answer.

    `redact` gives the bytes kept for replays when the answer holds secrets (card keys); `parse`
    must then restore them.
    """
    key = (operator.operator_id, request_id)
    if (answer := await hub.answered(key, method, fingerprint, _refusing(parse))) is not None:
        return answer
    now = hub.clock.now_ms()
    outcome = act(now)
    response: M | None = None
    if outcome.refusal is not None:
        body = _REFUSED + outcome.refusal.reason.encode()
    else:
        assert outcome.result is not None
        response = render(outcome.result)
        body = redact(response) if redact is not None else response.SerializeToString()
    rows = outcome.rows
    rows.requests.append(RequestRow(operator.operator_id, request_id, method, fingerprint, body, now))
    await hub.commit(key, Entry(method, fingerprint, now, body), rows)
    if outcome.refusal is not None:
        raise outcome.refusal
    assert response is not None
    return response


def _refusing(parse: Callable[[bytes], M]) -> Callable[[bytes], M]:
    def parse_or_raise(body: bytes) -> M:
        if body.startswith(_REFUSED):
            reason = body[len(_REFUSED) :].decode()
            raise PermissionDenied("refused (the original answer to this request_id)", reason=reason)
        return parse(body)

    return parse_or_raise


# -- scope ----------------------------------------------------------------------------


def text_id(value: str, field: str) -> str:
    if not value:
        raise InvalidArgument(field, "required")
    if len(value) > MAX_ID_CHARS:
        raise InvalidArgument(field, f"at most {MAX_ID_CHARS} characters")
    return value


def student_in_scope(hub: Hub, operator: Operator, student_id: str, field: str = "student_id") -> Student:
    """The student, if the operator may act on them: a clerk only on their own school's."""
    student = hub.campus.students.get(text_id(student_id, field))
    if student is None:
        raise NotFound(f"{field}: no such student", field=field)
    if operator.school_id and operator.school_id != student.school_id:
        raise PermissionDenied(f"{field}: a student of another school")
    return student


def card_in_scope(hub: Hub, operator: Operator, card_no: str, field: str = "card_no") -> Card:
    card = hub.campus.cards.get(text_id(card_no, field))
    if card is None:
        raise NotFound(f"{field}: no such card", field=field)
    if operator.school_id and operator.school_id != card.student.school_id:
        raise PermissionDenied(f"{field}: a card of another school's student")
    return card


def today(now_ms: int) -> date:
    return to_cst(now_ms).date()


def protector(hub: Hub) -> FieldProtector:
    return FieldProtector(hub.keys)


# -- what an action shows and journals --------------------------------------------------


def view(hub: Hub, card: Card, now_ms: int) -> CardView:
    student = card.student
    policy = hub.campus.schools[student.school_id].policy
    return CardView(
        card=card,
        guardians=list(hub.card_book.guardians_of(student.student_id)),
        minor=is_minor(student, today(now_ms)),
        pin_locked=card.pin_failures >= policy.pin_max_failures,
        ecard=ecard_status(card),
    )


def personalization(hub: Hub, card: Card) -> Personalization:
    """The keys the issuing machine writes to the chip, derived again whenever asked."""
    ecard_key = derive_ecard_key(hub.keys.ecard_master.key, card.card_no) if card.ecard_issued else b""
    return Personalization(card.card_no, derive_card_key(hub.keys.issuer_master.key, card.card_no), ecard_key)


def card_row(card: Card) -> CardRow:
    return CardRow(
        card_no=card.card_no,
        student_id=card.student.student_id,
        status=card.status.value,
        pin_hash=card.pin_hash,
        bank_code=card.bank_code,
        atc=card.atc,
        pin_failures=card.pin_failures,
        presence=int(card.presence),
        bank_status=card.bank_status.value,
        generation=card.generation,
        ecard_issued=card.ecard_issued,
        ecard_suspended=card.ecard_suspended,
        issued_ms=card.issued_ms,
        replaced_by=card.replaced_by,
    )


def card_state_row(card: Card) -> CardStateRow:
    return CardStateRow(card.card_no, card.atc, card.pin_failures, int(card.presence))


def guardian_row(hub: Hub, student: Student, name: str, id_number: str, guardian: Guardian) -> GuardianRow:
    enc = protector(hub).encrypt(id_number, context=b"guardian_id_number")
    return GuardianRow(
        student.student_id,
        guardian.id_index,
        enc,
        guardian.id_masked,
        name,
        guardian.relation.value,
        guardian.added_ms,
    )


def audit_row(
    operator: Operator,
    now_ms: int,
    action: str,
    request_id: str,
    student: Student,
    card_no: str,
    details: str,
) -> AuditRow:
    return AuditRow(
        at_ms=now_ms,
        actor_kind=OPERATOR,
        actor_id=operator.operator_id,
        school_id=student.school_id,
        student_id=student.student_id,
        card_no=card_no,
        action=action,
        request_id=request_id,
        details=details,
    )


# -- the identity check ----------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Proof:
    """ID numbers shown at the window (IdentityProof): compared by keyed index, never kept."""

    holder_id_number: str
    guardian_id_number: str = ""


@dataclass(frozen=True, slots=True)
class CheckedProof:
    holder_index: bytes
    guardian_index: bytes | None
    guardian_masked: str  # for the audit log

    @property
    def who(self) -> str:
        return f"guardian {self.guardian_masked}" if self.guardian_index is not None else "holder"


def check_proof(hub: Hub, proof: Proof, field: str = "proof") -> CheckedProof:
    """Validates the proof's form (INVALID_ARGUMENT); whether it matches is `check_identity`'s."""
    if not proof.holder_id_number:
        raise InvalidArgument(f"{field}.holder_id_number", "required")
    if not is_valid_id_number(proof.holder_id_number):
        raise InvalidArgument(f"{field}.holder_id_number", "not a valid 18-character resident ID number")
    index = protector(hub).index
    guardian_index, masked = None, ""
    if proof.guardian_id_number:
        if not is_valid_id_number(proof.guardian_id_number):
            raise InvalidArgument(
                f"{field}.guardian_id_number", "not a valid 18-character resident ID number"
            )
        guardian_index = index(proof.guardian_id_number.upper())
        masked = mask_id_number(proof.guardian_id_number)
    return CheckedProof(index(proof.holder_id_number.upper()), guardian_index, masked)
