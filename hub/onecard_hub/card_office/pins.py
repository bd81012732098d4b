"""Use cases: PIN change (old PIN required) and PIN reset (identity check; clears the lockout).

PINs exist here only as the keyed hash (`security/protect.py` PinHasher); neither PIN of a request
is stored or logged. A wrong old PIN counts toward the same lockout as a wrong PIN at a POS
(`SchoolPolicy.pin_max_failures`): that count is journaled with the refusal, and a repeat of the
same request_id answers the same refusal without counting again.
"""

from __future__ import annotations

import hmac
from collections.abc import Callable
from typing import TypeVar

from google.protobuf.message import Message

from onecard_hub.card_office.common import (
    CardView,
    Outcome,
    Proof,
    audit_row,
    card_in_scope,
    card_row,
    card_state_row,
    check_proof,
    run,
    today,
    view,
)
from onecard_hub.domain import audit
from onecard_hub.domain.card_lifecycle import CardAction, check_pin, check_pin_action
from onecard_hub.domain.errors import InvalidArgument, PermissionDenied
from onecard_hub.domain.guardian import check_identity
from onecard_hub.domain.model import Operator
from onecard_hub.hub import Hub
from onecard_hub.store.records import Batch

M = TypeVar("M", bound=Message)
MAX_PIN_CHARS = 12


async def change_pin(
    hub: Hub,
    operator: Operator,
    request_id: str,
    card_no: str,
    old_pin: str,
    new_pin: str,
    fingerprint: bytes,
    render: Callable[[CardView], M],
    parse: Callable[[bytes], M],
) -> M:
    action = CardAction.CHANGE_PIN

    def act(now_ms: int) -> Outcome[CardView]:
        card = card_in_scope(hub, operator, card_no)
        policy = hub.campus.schools[card.student.school_id].policy
        check_pin_action(action, card, policy.pin_max_failures)
        if not old_pin or len(old_pin) > MAX_PIN_CHARS or not old_pin.isdigit():
            raise InvalidArgument("old_pin", "the card's current PIN, digits")
        check_pin(new_pin, "new_pin")
        if new_pin == old_pin:
            raise InvalidArgument("new_pin", "the same as the old PIN")
        hasher = hub.campus.pin_hasher
        if not hmac.compare_digest(hasher(card.card_no, old_pin), card.pin_hash):
            card.pin_failures += 1
            left = max(policy.pin_max_failures - card.pin_failures, 0)
            details = audit.details(result="wrong old PIN", failures=card.pin_failures, locked=left == 0)
            rows = Batch(
                card_states=[card_state_row(card)],
                audit=[
                    audit_row(operator, now_ms, action.value, request_id, card.student, card.card_no, details)
                ],
            )
            refusal = PermissionDenied(
                f"the old PIN is wrong ({left} tries left before the PIN locks)",
                reason="IDENTITY_CHECK_FAILED",
            )
            return Outcome(None, rows, refusal)
        card.pin_hash = hasher(card.card_no, new_pin)
        card.pin_failures = 0
        rows = Batch(
            cards=[card_row(card)],
            card_states=[card_state_row(card)],
            audit=[
                audit_row(
                    operator, now_ms, action.value, request_id, card.student, card.card_no, "result=changed"
                )
            ],
        )
        return Outcome(view(hub, card, now_ms), rows)

    return await run(hub, operator, action.value, request_id, fingerprint, act, render, parse)


async def reset_pin(
    hub: Hub,
    operator: Operator,
    request_id: str,
    card_no: str,
    proof: Proof,
    new_pin: str,
    fingerprint: bytes,
    render: Callable[[CardView], M],
    parse: Callable[[bytes], M],
) -> M:
    action = CardAction.RESET_PIN

    def act(now_ms: int) -> Outcome[CardView]:
        card = card_in_scope(hub, operator, card_no)
        student = card.student
        policy = hub.campus.schools[student.school_id].policy
        check_pin_action(action, card, policy.pin_max_failures)
        check_pin(new_pin, "new_pin")
        checked = check_proof(hub, proof)
        guardians = hub.card_book.guardians_of(student.student_id)
        check_identity(student, guardians, today(now_ms), checked.holder_index, checked.guardian_index)
        was_locked = card.pin_failures >= policy.pin_max_failures
        card.pin_hash = hub.campus.pin_hasher(card.card_no, new_pin)
        card.pin_failures = 0
        details = audit.details(identity=checked.who, lockout_cleared=was_locked)
        rows = Batch(
            cards=[card_row(card)],
            card_states=[card_state_row(card)],
            audit=[audit_row(operator, now_ms, action.value, request_id, student, card.card_no, details)],
        )
        return Outcome(view(hub, card, now_ms), rows)

    return await run(hub, operator, action.value, request_id, fingerprint, act, render, parse)
