"""What the provincial card system accepts, and what a card's status is after its changes.

Plain functions over the contract's enums. The simulator is permissive on purpose: it does not
know where a card stood before its first recorded change (the school's card office may have
changed it), so it records any change that fits its function and channel, and refuses only
changes to a card whose identity function was cancelled — that one is final.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from onecard.cardsys.v1 import card_system_service_pb2 as pb

# The contract's enum values as plain ints (the store keeps them so).
IDENTITY: int = pb.CARD_FUNCTION_IDENTITY
BANK: int = pb.CARD_FUNCTION_BANK
ACTIVATE: int = pb.CHANGE_ACTION_ACTIVATE
LOSS: int = pb.CHANGE_ACTION_LOSS
UNLOCK: int = pb.CHANGE_ACTION_UNLOCK
FREEZE: int = pb.CHANGE_ACTION_FREEZE
UNFREEZE: int = pb.CHANGE_ACTION_UNFREEZE
CANCEL: int = pb.CHANGE_ACTION_CANCEL
HR_WINDOW: int = pb.CHANNEL_HR_WINDOW
BANK_BRANCH: int = pb.CHANNEL_BANK_BRANCH
HOTLINE: int = pb.CHANNEL_HOTLINE

# function → action → the function's status after it.
IDENTITY_AFTER: dict[int, int] = {
    LOSS: pb.IDENTITY_STATUS_LOST,
    UNLOCK: pb.IDENTITY_STATUS_ACTIVE,
    CANCEL: pb.IDENTITY_STATUS_CANCELLED,
}
BANK_AFTER: dict[int, int] = {
    ACTIVATE: pb.BANK_STATUS_ACTIVE,
    LOSS: pb.BANK_STATUS_LOST,
    UNLOCK: pb.BANK_STATUS_ACTIVE,
    FREEZE: pb.BANK_STATUS_FROZEN,
    UNFREEZE: pb.BANK_STATUS_ACTIVE,
}
AFTER: dict[int, dict[int, int]] = {IDENTITY: IDENTITY_AFTER, BANK: BANK_AFTER}
# Where each function is handled: its own counter, and the hotline for loss reports only.
HOME_CHANNEL: dict[int, int] = {IDENTITY: HR_WINDOW, BANK: BANK_BRANCH}

_REQUEST_ID = re.compile(r"[A-Za-z0-9._:-]{1,64}")
_CARD_NO = re.compile(r"[A-Za-z0-9]{1,32}")


class RuleError(Exception):
    """A request the system refuses: INVALID_ARGUMENT (with `field`) or FAILED_PRECONDITION."""

    def __init__(
        self, message: str, *, field: str = "", reason: str = "FIELD_INVALID", state: str = ""
    ) -> None:
        super().__init__(message)
        self.message = message
        self.field = field
        self.reason = reason
        self.state = state


@dataclass(frozen=True, slots=True)
class ChangeRequest:
    request_id: str
    card_no: str
    function: int
    action: int
    channel: int
    occurred_ms: int  # 0: now


def check_card_no(card_no: str) -> str:
    if _CARD_NO.fullmatch(card_no) is None:
        raise RuleError("card_no: 1 to 32 letters and digits", field="card_no")
    return card_no


def check_change(req: ChangeRequest) -> None:
    """Raises RuleError naming the field when the change does not fit its function or channel."""
    if _REQUEST_ID.fullmatch(req.request_id) is None:
        raise RuleError("request_id: 1 to 64 of letters, digits, '.', '_', ':' and '-'", field="request_id")
    check_card_no(req.card_no)
    if req.function not in AFTER:
        raise RuleError("function: identity or bank", field="function")
    if req.action not in AFTER[req.function]:
        allowed = ", ".join(pb.ChangeAction.Name(a) for a in AFTER[req.function])  # type: ignore[arg-type]
        raise RuleError(f"action: for this function one of {allowed}", field="action")
    if req.channel == HOTLINE:
        if req.action != LOSS:
            raise RuleError("channel: the hotline only takes loss reports", field="channel")
    elif req.channel != HOME_CHANNEL[req.function]:
        raise RuleError(
            "channel: identity changes are made at an HR window, bank changes at a bank branch"
            " (either loss at the hotline)",
            field="channel",
        )
    if req.occurred_ms < 0:
        raise RuleError("at: before 1970", field="at")


def refuse_after_cancel(cancelled: bool) -> None:
    if cancelled:
        raise RuleError(
            "the card's identity function is cancelled: nothing more is recorded for it",
            reason="ILLEGAL_TRANSITION",
            state="cancelled",
        )


def status_after(function: int, action: int) -> int:
    return AFTER[function][action]
