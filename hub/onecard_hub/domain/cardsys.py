"""Changes from the provincial card system (省社保卡系统) and what the hub does with each.

The card's identity function and its bank function are handled outside the school too: a loss,
unlock or cancellation at a human-resources service window, an activation, loss, unlock or
freeze at a bank branch. The provincial system numbers them (`version`); the hub takes them in
order and decides each here:

    identity  loss      active | frozen → lost      (a frozen card reported lost is lost: a reported
                                                     loss always blocks; unlocking it needs the
                                                     identity check, and the school may freeze again)
                        lost → unchanged; not_enabled, replaced, cancelled → not applicable
              unlock    lost → active               active → unchanged; anything else → not applicable
                                                     (an HR unlock does not lift a school's freeze)
              cancel    active | lost | frozen | not_enabled → cancelled, for good
                        cancelled → unchanged; replaced → not applicable
    bank      the bank's word is the status: activate/unlock/unfreeze → active, loss → lost,
              freeze → frozen (unchanged when it already is)

An unknown card, or a function/action pair this hub does not know, is skipped — its version is
still taken, so the feed never stalls on it. Pure: `Campus.set_card_status` applies an identity
change (the blocklist follows), the caller journals it.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from onecard_hub.domain.model import BankStatus, Card, CardStatus


class CardFunction(enum.StrEnum):
    IDENTITY = "identity"
    BANK = "bank"


class FeedAction(enum.StrEnum):
    ACTIVATE = "activate"
    LOSS = "loss"
    UNLOCK = "unlock"
    FREEZE = "freeze"
    UNFREEZE = "unfreeze"
    CANCEL = "cancel"


class FeedOutcome(enum.StrEnum):
    APPLIED = "applied"
    UNCHANGED = "unchanged"  # the card was in that state already
    NOT_APPLICABLE = "not_applicable"  # the card's state does not allow it (see the table above)
    UNKNOWN_CARD = "unknown_card"
    NOT_UNDERSTOOD = "not_understood"  # a function/action pair this hub does not know


@dataclass(frozen=True, slots=True)
class FeedChange:
    version: int
    card_no: str
    function: str  # a CardFunction value, or what a newer feed sends
    action: str  # a FeedAction value, or what a newer feed sends
    channel: str  # hr_window, bank_branch, hotline
    occurred_ms: int


@dataclass(frozen=True, slots=True)
class FeedDecision:
    outcome: FeedOutcome
    identity_to: CardStatus | None = None  # set when the identity status changes
    bank_to: BankStatus | None = None  # set when the bank status changes


_S = CardStatus
IDENTITY_RULES: dict[FeedAction, dict[CardStatus, CardStatus]] = {
    FeedAction.LOSS: {_S.ACTIVE: _S.LOST, _S.FROZEN: _S.LOST, _S.LOST: _S.LOST},
    FeedAction.UNLOCK: {_S.LOST: _S.ACTIVE, _S.ACTIVE: _S.ACTIVE},
    FeedAction.CANCEL: {
        s: _S.CANCELLED for s in (_S.ACTIVE, _S.LOST, _S.FROZEN, _S.NOT_ENABLED, _S.CANCELLED)
    },
}
BANK_RULES: dict[FeedAction, BankStatus] = {
    FeedAction.ACTIVATE: BankStatus.ACTIVE,
    FeedAction.LOSS: BankStatus.LOST,
    FeedAction.UNLOCK: BankStatus.ACTIVE,
    FeedAction.FREEZE: BankStatus.FROZEN,
    FeedAction.UNFREEZE: BankStatus.ACTIVE,
}


def decide(card: Card | None, change: FeedChange) -> FeedDecision:
    """What `change` does to `card` (None: the hub does not know the card)."""
    if card is None:
        return FeedDecision(FeedOutcome.UNKNOWN_CARD)
    try:
        function, action = CardFunction(change.function), FeedAction(change.action)
    except ValueError:
        return FeedDecision(FeedOutcome.NOT_UNDERSTOOD)
    if function is CardFunction.BANK:
        bank_to = BANK_RULES.get(action)
        if bank_to is None:
            return FeedDecision(FeedOutcome.NOT_UNDERSTOOD)
        if bank_to is card.bank_status:
            return FeedDecision(FeedOutcome.UNCHANGED)
        return FeedDecision(FeedOutcome.APPLIED, bank_to=bank_to)
    rules = IDENTITY_RULES.get(action)
    if rules is None:
        return FeedDecision(FeedOutcome.NOT_UNDERSTOOD)
    identity_to = rules.get(card.status)
    if identity_to is None:
        return FeedDecision(FeedOutcome.NOT_APPLICABLE)
    if identity_to is card.status:
        return FeedDecision(FeedOutcome.UNCHANGED)
    return FeedDecision(FeedOutcome.APPLIED, identity_to=identity_to)
