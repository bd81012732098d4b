"""Read-only use cases of the card office: a card's view, and the audit log.

A card comes from memory. The audit log is read from the store (it is not kept in memory); a
clerk sees only entries about their own school's students, a province administrator all.
"""

from __future__ import annotations

from dataclasses import dataclass

from onecard_hub.card_office.common import CardView, card_in_scope, student_in_scope, text_id, view
from onecard_hub.domain import audit
from onecard_hub.domain.errors import InvalidArgument, NotFound, PermissionDenied
from onecard_hub.domain.model import Operator
from onecard_hub.hub import Hub
from onecard_hub.store.records import AuditRow


@dataclass(frozen=True, slots=True)
class AuditPage:
    entries: list[AuditRow]
    next_token: str


def get_card(hub: Hub, operator: Operator, card_no: str, student_id: str) -> CardView:
    """By card number, or the student's current card; exactly one of the two."""
    if bool(card_no) == bool(student_id):
        raise InvalidArgument("card_no", "exactly one of card_no and student_id")
    now = hub.clock.now_ms()
    if card_no:
        return view(hub, card_in_scope(hub, operator, card_no), now)
    student = student_in_scope(hub, operator, student_id)
    current = hub.card_book.current.get(student.student_id)
    if current is None:
        raise NotFound("student_id: the student has no card", field="student_id")
    return view(hub, hub.campus.cards[current], now)


async def query_audit_log(
    hub: Hub, operator: Operator, student_id: str, operator_id: str, page_size: int, page_token: str
) -> AuditPage:
    if bool(student_id) == bool(operator_id):
        raise InvalidArgument("student_id", "exactly one of student_id and operator_id")
    size = audit.page_size(page_size)
    after = audit.after_id(page_token)
    if student_id:
        student_in_scope(hub, operator, student_id)
    else:
        text_id(operator_id, "operator_id")
        actor = hub.campus.operators.get(operator_id)
        if actor is None:
            raise NotFound("operator_id: no such operator", field="operator_id")
        if operator.school_id and actor.school_id not in ("", operator.school_id):
            raise PermissionDenied("operator_id: an operator of another school")
    entries = await hub.store.audit_entries(
        student_id=student_id,
        actor_id=operator_id,
        school_id=operator.school_id,  # a clerk: their own school's entries only
        after_id=after,
        limit=size,
    )
    return AuditPage(entries, audit.next_token([e.audit_id for e in entries], size))
