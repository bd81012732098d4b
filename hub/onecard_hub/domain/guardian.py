"""Guardians (监护人) and the identity checks of the card office.

The notice's attachment (§一, §二): a holder of 18 or more acts with their own ID card; for one
under 18 the legal guardian acts, with their own ID card and the household register. So:

- issuing a card to a minor needs a guardian (name, valid ID number of an adult, relation),
  registered with the card or before it, else FAILED_PRECONDITION GUARDIAN_REQUIRED;
- an identity check (unlock, replacement, PIN reset) matches the holder's ID number against the
  stored keyed index, and for a minor also a registered guardian's, else PERMISSION_DENIED
  IDENTITY_CHECK_FAILED.

ID numbers reach this module only as keyed indexes (`security/protect.py`), never in clear; a
birth date whose holder is unknown counts as a minor's (the card office then asks for a guardian).
"""

from __future__ import annotations

import enum
import hmac
from dataclasses import dataclass
from datetime import date

from onecard_hub.domain.errors import FailedPrecondition, InvalidArgument, PermissionDenied
from onecard_hub.domain.model import Student
from onecard_hub.domain.pii import is_valid_id_number

ADULT_AGE = 18
MAX_NAME_CHARS = 32
MAX_GUARDIANS = 4  # per student


class Relation(enum.StrEnum):
    """Numbers in the contract: onecard.cardoffice.v1.GuardianRelation, in this order from 1."""

    PARENT = "parent"
    GRANDPARENT = "grandparent"
    SIBLING = "sibling"  # an adult brother or sister
    LEGAL_GUARDIAN = "legal_guardian"  # appointed (民政, court)
    OTHER_RELATIVE = "other_relative"


@dataclass(frozen=True, slots=True)
class Guardian:
    name_masked: str
    id_index: bytes  # keyed index of the guardian's ID number
    id_masked: str  # 3607**********1234
    relation: Relation
    added_ms: int


@dataclass(frozen=True, slots=True)
class GuardianCandidate:
    """A guardian as a request names them, checked but not yet registered."""

    name: str
    id_number: str
    relation: Relation


def age_on(born: date, day: date) -> int:
    return day.year - born.year - ((day.month, day.day) < (born.month, born.day))


def birth_date_in_id(id_number: str) -> date | None:
    """The birth date a resident ID number carries (digits 7 to 14), or None."""
    try:
        return date(int(id_number[6:10]), int(id_number[10:12]), int(id_number[12:14]))
    except ValueError:
        return None


def is_minor(student: Student, today: date) -> bool:
    try:
        born = date.fromisoformat(student.birth_date)
    except ValueError:
        return True
    return age_on(born, today) < ADULT_AGE


def check_candidate(
    name: str, id_number: str, relation: Relation | None, today: date, field: str
) -> GuardianCandidate:
    """Validates a guardian named in a request; `field` prefixes the offending field's name."""
    name = name.strip()
    if not name:
        raise InvalidArgument(f"{field}.name", "required")
    if len(name) > MAX_NAME_CHARS:
        raise InvalidArgument(f"{field}.name", f"at most {MAX_NAME_CHARS} characters")
    if not is_valid_id_number(id_number):
        raise InvalidArgument(f"{field}.id_number", "not a valid 18-character resident ID number")
    born = birth_date_in_id(id_number)
    if born is None or born > today:
        raise InvalidArgument(f"{field}.id_number", "the birth date in it is not a real past date")
    if age_on(born, today) < ADULT_AGE:
        raise InvalidArgument(f"{field}.id_number", "a guardian must be 18 or older")
    if relation is None:
        raise InvalidArgument(f"{field}.relation", "required")
    return GuardianCandidate(name, id_number.upper(), relation)


def require_guardian(student: Student, guardians: list[Guardian], today: date, *, offered: bool) -> None:
    """A minor needs a registered guardian, or one offered in the same request."""
    if is_minor(student, today) and not guardians and not offered:
        raise FailedPrecondition(
            "the student is under 18: name a guardian (name, ID number, relation)", reason="GUARDIAN_REQUIRED"
        )


def check_identity(
    student: Student,
    guardians: list[Guardian],
    today: date,
    holder_index: bytes,
    guardian_index: bytes | None,
) -> None:
    """The identity check at the window: the holder's ID number, and for a minor a guardian's."""
    if not student.id_index or not hmac.compare_digest(holder_index, student.id_index):
        raise PermissionDenied("the holder's ID number does not match", reason="IDENTITY_CHECK_FAILED")
    if not is_minor(student, today):
        return
    if guardian_index is None:
        raise FailedPrecondition(
            "the holder is under 18: a registered guardian must act for them (proof.guardian_id_number)",
            reason="GUARDIAN_REQUIRED",
        )
    if not guardians:
        raise FailedPrecondition(
            "the holder is under 18 and has no registered guardian: register one first (SetGuardian)",
            reason="GUARDIAN_REQUIRED",
        )
    if not any(hmac.compare_digest(guardian_index, g.id_index) for g in guardians):
        raise PermissionDenied(
            "the guardian's ID number matches no registered guardian", reason="IDENTITY_CHECK_FAILED"
        )


def with_guardian(guardians: list[Guardian], guardian: Guardian) -> list[Guardian]:
    """The list with `guardian` added, or replacing the one with the same ID number."""
    kept = [g for g in guardians if not hmac.compare_digest(g.id_index, guardian.id_index)]
    if len(kept) >= MAX_GUARDIANS:
        raise FailedPrecondition(
            f"a student has at most {MAX_GUARDIANS} guardians",
            reason="ILLEGAL_TRANSITION",
            metadata={"state": "guardians_full"},
        )
    return [*kept, guardian]
