"""Use cases: the identity function's status (enable, 挂失 loss, 解挂 unlock, freeze, unfreeze),
the e-card's (suspend, resume) and guardians.

Each change follows the one table in `domain/card_lifecycle.py`; an identity change goes through
`Campus.set_card_status`, so the card's school's blocklist follows it, and the very next tap is
decided on the new status (the change is in memory before the answer, and durable before it).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

from google.protobuf.message import Message

from onecard_hub.card_office.common import (
    CardView,
    Outcome,
    Proof,
    audit_row,
    card_in_scope,
    card_row,
    check_proof,
    guardian_row,
    run,
    student_in_scope,
    today,
    view,
)
from onecard_hub.card_office.issuance import GuardianInput, new_guardian
from onecard_hub.domain import audit
from onecard_hub.domain.card_lifecycle import CardAction, ECardStatus, next_ecard_status, next_status
from onecard_hub.domain.guardian import Guardian, check_candidate, check_identity, with_guardian
from onecard_hub.domain.model import Operator
from onecard_hub.hub import Hub
from onecard_hub.store.records import Batch

M = TypeVar("M", bound=Message)

# The identity changes that need no identity check at the window.
PLAIN_CHANGES = (CardAction.ENABLE, CardAction.REPORT_LOSS, CardAction.FREEZE, CardAction.UNFREEZE)


@dataclass(frozen=True, slots=True)
class StatusChanged:
    view: CardView
    blocklist_version: int


@dataclass(frozen=True, slots=True)
class Guardians:
    student_id: str
    guardians: list[Guardian]


async def change_identity(
    hub: Hub,
    operator: Operator,
    action: CardAction,
    request_id: str,
    card_no: str,
    fingerprint: bytes,
    render: Callable[[StatusChanged], M],
    parse: Callable[[bytes], M],
    proof: Proof | None = None,
) -> M:
    """EnableIdentity, ReportLoss, FreezeCard, UnfreezeCard; Unlock with an identity check (`proof`)."""
    if action not in (*PLAIN_CHANGES, CardAction.UNLOCK):
        raise ValueError(f"{action} is not a status change")

    def act(now_ms: int) -> Outcome[StatusChanged]:
        card = card_in_scope(hub, operator, card_no)
        student = card.student
        was = card.status
        to = next_status(action, card)
        who = None
        if action is CardAction.UNLOCK:
            if proof is None:
                raise ValueError("Unlock needs a proof")
            checked = check_proof(hub, proof)
            guardians = hub.card_book.guardians_of(student.student_id)
            check_identity(student, guardians, today(now_ms), checked.holder_index, checked.guardian_index)
            who = checked.who
        changes = hub.campus.set_card_status(card.card_no, to, at_ms=now_ms)
        details = audit.details(status=f"{was.value}->{to.value}", identity=who)
        rows = Batch(
            cards=[card_row(card)],
            audit=[audit_row(operator, now_ms, action.value, request_id, student, card.card_no, details)],
            blocklist=changes,  # durable with the status change; the live feed sends them on
        )
        version = hub.campus.blocklist(student.school_id).version
        return Outcome(StatusChanged(view(hub, card, now_ms), version), rows)

    return await run(hub, operator, action.value, request_id, fingerprint, act, render, parse)


async def change_ecard(
    hub: Hub,
    operator: Operator,
    action: CardAction,
    request_id: str,
    card_no: str,
    fingerprint: bytes,
    render: Callable[[CardView], M],
    parse: Callable[[bytes], M],
) -> M:
    """SuspendECard, ResumeECard: only QR scans change; the physical card and the blocklist do not."""

    def act(now_ms: int) -> Outcome[CardView]:
        card = card_in_scope(hub, operator, card_no)
        to = next_ecard_status(action, card)
        card.ecard_suspended = to is ECardStatus.SUSPENDED
        details = audit.details(ecard=to.value)
        rows = Batch(
            cards=[card_row(card)],
            audit=[
                audit_row(operator, now_ms, action.value, request_id, card.student, card.card_no, details)
            ],
        )
        return Outcome(view(hub, card, now_ms), rows)

    return await run(hub, operator, action.value, request_id, fingerprint, act, render, parse)


SET_GUARDIAN = "SetGuardian"


async def set_guardian(
    hub: Hub,
    operator: Operator,
    request_id: str,
    student_id: str,
    guardian: GuardianInput,
    fingerprint: bytes,
    render: Callable[[Guardians], M],
    parse: Callable[[bytes], M],
) -> M:
    """Registers a guardian (the card office has seen their ID card and the household register),
    or updates the one with the same ID number."""

    def act(now_ms: int) -> Outcome[Guardians]:
        student = student_in_scope(hub, operator, student_id)
        candidate = check_candidate(
            guardian.name, guardian.id_number, guardian.relation, today(now_ms), "guardian"
        )
        added = new_guardian(hub, student, candidate, now_ms, "guardian")
        guardians = with_guardian(hub.card_book.guardians_of(student.student_id), added)
        hub.card_book.guardians[student.student_id] = guardians
        details = audit.details(
            guardian=added.id_masked, name=added.name_masked, relation=added.relation.value
        )
        rows = Batch(
            guardians=[guardian_row(hub, student, candidate.name, candidate.id_number, added)],
            audit=[audit_row(operator, now_ms, SET_GUARDIAN, request_id, student, "", details)],
        )
        return Outcome(Guardians(student.student_id, guardians), rows)

    return await run(hub, operator, SET_GUARDIAN, request_id, fingerprint, act, render, parse)
