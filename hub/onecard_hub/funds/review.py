"""The manual-review queue: top-ups whose reversal (冲正) got no definite answer after the bounded
number of tries. An operator resolves one as POSTED or VOIDED; the resolution is checked against
the bank (inquiry) when it answers, and audit-logged with the operator's note."""

from __future__ import annotations

from onecard_hub.card_office.common import audit_row
from onecard_hub.domain import audit
from onecard_hub.domain.bank import BankOutcome
from onecard_hub.domain.errors import FailedPrecondition
from onecard_hub.domain.model import Operator
from onecard_hub.domain.topup import TopUp, TopUpState, check_note, check_resolution
from onecard_hub.funds.topups import TopUps

RESOLVE = "resolve_topup_review"


async def resolve(
    topups: TopUps, operator: Operator, request_id: str, topup: TopUp, resolution: TopUpState, note: str
) -> tuple[TopUp, BankOutcome]:
    """Settles a MANUAL_REVIEW top-up; FAILED_PRECONDITION when it is not in review or the bank
    contradicts the resolution (BANK_DISAGREES)."""
    note = check_note(note)
    if topup.state is not TopUpState.MANUAL_REVIEW:
        raise FailedPrecondition(
            f"topup_id: the top-up is {topup.state.value}, not in manual review",
            reason="ILLEGAL_TRANSITION",
            field="topup_id",
            metadata={"state": topup.state.value},
        )
    bank = await topups.bank_says(topup)
    check_resolution(resolution, bank)
    if resolution is TopUpState.VOIDED and bank in (BankOutcome.NOT_FOUND, BankOutcome.UNCERTAIN):
        # make sure the debit can never post later: the bank remembers a reversal that came first
        await topups.reverse(topup)
    student = topups.hub.campus.students[topup.student_id]
    now = topups.hub.clock.now_ms()
    details = audit.details(topup=topup.topup_id, resolution=resolution.value, bank=bank.value, note=note)
    rows = [audit_row(operator, now, RESOLVE, request_id, student, topup.card_no, details)]
    reason = f"resolved by {operator.operator_id}: {note}"
    if topup.state is not TopUpState.MANUAL_REVIEW:  # settled meanwhile (another operator)
        return topup, bank
    if resolution is TopUpState.POSTED:
        await topups.post(topup, reason, audit=rows)
    else:
        await topups.finish(topup, TopUpState.VOIDED, reason, audit=rows)
    return topup, bank
