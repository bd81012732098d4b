"""The card's life at the card office (卡务): every state change in one table.

The identity function (campus taps follow it) and the e-card each have a status; an action moves
one of them from → to, and anything not in the table is FAILED_PRECONDITION ILLEGAL_TRANSITION with
the current state in ErrorInfo metadata "state". The bank function is the bank's: the card office
never changes it here (the provincial feed brings the bank's changes).

    identity   IssueCard           (no card) → not_enabled
               EnableIdentity      not_enabled → active
               ReportLoss (挂失)    active → lost
               Unlock (解挂)        lost → active            (after an identity check)
               FreezeCard          active → frozen          (by the school; not a loss)
               UnfreezeCard        frozen → active
               ReplaceCard (补换)   active | lost | frozen | not_enabled → replaced, for good;
                                   the new card starts as REPLACEMENT_STATUS says (a frozen card's
                                   replacement is frozen too, a lost card's is active)
    e-card     SuspendECard        active → suspended       (the physical card is unaffected)
               ResumeECard         suspended → active
    PIN        ChangePin/ResetPin  any card that is not replaced or cancelled

Pure: no I/O. `Campus.set_card_status` applies an identity change (the blocklist follows it).
"""

from __future__ import annotations

import enum
import re

from onecard_hub.domain.errors import FailedPrecondition, InvalidArgument
from onecard_hub.domain.guardian import Guardian
from onecard_hub.domain.model import CO_BRANDED_BANKS, Card, CardStatus


class CardAction(enum.StrEnum):
    """The card office's actions, named as their RPCs (also the audit log's `action`)."""

    ISSUE = "IssueCard"
    ENABLE = "EnableIdentity"
    REPORT_LOSS = "ReportLoss"
    UNLOCK = "Unlock"
    REPLACE = "ReplaceCard"
    FREEZE = "FreezeCard"
    UNFREEZE = "UnfreezeCard"
    CHANGE_PIN = "ChangePin"
    RESET_PIN = "ResetPin"
    SUSPEND_ECARD = "SuspendECard"
    RESUME_ECARD = "ResumeECard"


class ECardStatus(enum.StrEnum):
    NOT_ISSUED = "not_issued"  # a second-generation card's holder has not claimed an e-card
    ACTIVE = "active"
    SUSPENDED = "suspended"


_S = CardStatus
IDENTITY_TRANSITIONS: dict[CardAction, dict[CardStatus, CardStatus]] = {
    CardAction.ENABLE: {_S.NOT_ENABLED: _S.ACTIVE},
    CardAction.REPORT_LOSS: {_S.ACTIVE: _S.LOST},
    CardAction.UNLOCK: {_S.LOST: _S.ACTIVE},
    CardAction.FREEZE: {_S.ACTIVE: _S.FROZEN},
    CardAction.UNFREEZE: {_S.FROZEN: _S.ACTIVE},
    CardAction.REPLACE: {s: _S.REPLACED for s in (_S.ACTIVE, _S.LOST, _S.FROZEN, _S.NOT_ENABLED)},
}
# The replacement card's identity status, by the old card's status before the replacement.
REPLACEMENT_STATUS: dict[CardStatus, CardStatus] = {
    _S.ACTIVE: _S.ACTIVE,
    _S.LOST: _S.ACTIVE,
    _S.FROZEN: _S.FROZEN,
    _S.NOT_ENABLED: _S.NOT_ENABLED,
}
ECARD_TRANSITIONS: dict[CardAction, dict[ECardStatus, ECardStatus]] = {
    CardAction.SUSPEND_ECARD: {ECardStatus.ACTIVE: ECardStatus.SUSPENDED},
    CardAction.RESUME_ECARD: {ECardStatus.SUSPENDED: ECardStatus.ACTIVE},
}
# A card in one of these states is history: nothing more happens to it.
DEAD = frozenset({_S.REPLACED, _S.CANCELLED})
# What a new card starts as.
ISSUED_STATUS = _S.NOT_ENABLED
GENERATIONS = (2, 3)
ECARD_GENERATION = 3  # a third-generation card creates its e-card at issue

_PIN = re.compile(r"[0-9]{6}")


def illegal(action: CardAction, state: str) -> FailedPrecondition:
    return FailedPrecondition(
        f"{action.value} is not allowed while the card is {state}",
        reason="ILLEGAL_TRANSITION",
        metadata={"state": state},
    )


def next_status(action: CardAction, card: Card) -> CardStatus:
    """The identity status `action` leads to from the card's, or ILLEGAL_TRANSITION."""
    to = IDENTITY_TRANSITIONS[action].get(card.status)
    if to is None:
        raise illegal(action, card.status.value)
    return to


def ecard_status(card: Card) -> ECardStatus:
    if not card.ecard_issued:
        return ECardStatus.NOT_ISSUED
    return ECardStatus.SUSPENDED if card.ecard_suspended else ECardStatus.ACTIVE


def next_ecard_status(action: CardAction, card: Card) -> ECardStatus:
    if card.status in DEAD:
        raise illegal(action, card.status.value)
    current = ecard_status(card)
    to = ECARD_TRANSITIONS[action].get(current)
    if to is None:
        raise illegal(action, f"ecard_{current.value}")
    return to


def check_pin_action(action: CardAction, card: Card, max_failures: int) -> None:
    """PINs change only on a live card; ChangePin also needs the PIN not locked (ResetPin unlocks)."""
    if card.status in DEAD:
        raise illegal(action, card.status.value)
    if action is CardAction.CHANGE_PIN and card.pin_failures >= max_failures:
        raise illegal(action, "pin_locked")


def check_pin(pin: str, field: str) -> str:
    """A new PIN: six digits, not one digit repeated and not a run (123456, 654321)."""
    if _PIN.fullmatch(pin) is None:
        raise InvalidArgument(field, "six digits")
    if len(set(pin)) == 1 or pin in "0123456789" or pin in "9876543210":
        raise InvalidArgument(field, "too easy to guess: no repeated digit or run of digits")
    return pin


def check_bank(code: str, field: str = "bank_code") -> str:
    if code not in CO_BRANDED_BANKS:
        raise InvalidArgument(field, f"one of the co-branded banks: {', '.join(CO_BRANDED_BANKS)}")
    return code


def check_generation(generation: int, field: str = "generation") -> int:
    if generation not in GENERATIONS:
        raise InvalidArgument(field, "2 (second generation) or 3 (third generation)")
    return generation


class CardBook:
    """What the card office keeps in memory beside the campus: each student's current card (the
    newest that is not replaced or cancelled) and their registered guardians."""

    def __init__(self) -> None:
        self.current: dict[str, str] = {}  # student_id → card_no
        self.guardians: dict[str, list[Guardian]] = {}  # student_id → guardians

    def note_card(self, card: Card) -> None:
        """A card was loaded, issued or changed: the student's current card follows."""
        student_id = card.student.student_id
        if card.status not in DEAD:
            self.current[student_id] = card.card_no
        elif self.current.get(student_id) == card.card_no:
            del self.current[student_id]

    def guardians_of(self, student_id: str) -> list[Guardian]:
        return self.guardians.get(student_id, [])
