"""What the hub does with each change of the provincial feed (domain/cardsys.py), and what the
simulator accepts (onecard_sim/cardsys/rules.py)."""

from __future__ import annotations

import pytest

from onecard.cardsys.v1 import card_system_service_pb2 as pb
from onecard_hub.cardsys_feed import feed_change
from onecard_hub.domain.cardsys import FeedChange, FeedOutcome, decide
from onecard_hub.domain.ledger import Account, AccountKind
from onecard_hub.domain.model import (
    BankStatus,
    Card,
    CardStatus,
    Enrollment,
    Student,
    StudentGroup,
    Wallet,
)
from onecard_sim.cardsys.rules import ChangeRequest, RuleError, check_change

S = CardStatus


def _card(status: CardStatus = S.ACTIVE, bank: BankStatus = BankStatus.ACTIVE) -> Card:
    wallet = Wallet(Account(1, AccountKind.WALLET, "s1"))
    student = Student("s1", "school", "张*三", StudentGroup.DAY, Enrollment.ENROLLED, wallet)
    return Card("A12345678", student, status, b"k", b"e", b"p", bank_status=bank)


def _change(function: str, action: str) -> FeedChange:
    return FeedChange(1, "A12345678", function, action, "hr_window", 0)


@pytest.mark.parametrize(
    ("action", "before", "outcome", "after"),
    [
        ("loss", S.ACTIVE, FeedOutcome.APPLIED, S.LOST),
        ("loss", S.FROZEN, FeedOutcome.APPLIED, S.LOST),
        ("loss", S.LOST, FeedOutcome.UNCHANGED, None),
        ("loss", S.NOT_ENABLED, FeedOutcome.NOT_APPLICABLE, None),
        ("loss", S.REPLACED, FeedOutcome.NOT_APPLICABLE, None),
        ("unlock", S.LOST, FeedOutcome.APPLIED, S.ACTIVE),
        ("unlock", S.ACTIVE, FeedOutcome.UNCHANGED, None),
        ("unlock", S.FROZEN, FeedOutcome.NOT_APPLICABLE, None),  # an HR unlock does not lift a school freeze
        ("unlock", S.CANCELLED, FeedOutcome.NOT_APPLICABLE, None),
        ("cancel", S.LOST, FeedOutcome.APPLIED, S.CANCELLED),
        ("cancel", S.CANCELLED, FeedOutcome.UNCHANGED, None),
        ("cancel", S.REPLACED, FeedOutcome.NOT_APPLICABLE, None),
        ("activate", S.ACTIVE, FeedOutcome.NOT_UNDERSTOOD, None),
        ("teleport", S.ACTIVE, FeedOutcome.NOT_UNDERSTOOD, None),
    ],
)
def test_identity_changes(
    action: str, before: CardStatus, outcome: FeedOutcome, after: CardStatus | None
) -> None:
    decision = decide(_card(before), _change("identity", action))
    assert decision.outcome is outcome
    assert decision.identity_to is after
    assert decision.bank_to is None


@pytest.mark.parametrize(
    ("action", "before", "after"),
    [
        ("activate", BankStatus.NOT_ACTIVATED, BankStatus.ACTIVE),
        ("loss", BankStatus.ACTIVE, BankStatus.LOST),
        ("unlock", BankStatus.LOST, BankStatus.ACTIVE),
        ("freeze", BankStatus.ACTIVE, BankStatus.FROZEN),
        ("unfreeze", BankStatus.FROZEN, BankStatus.ACTIVE),
    ],
)
def test_bank_changes_follow_the_bank(action: str, before: BankStatus, after: BankStatus) -> None:
    card = _card(S.LOST, before)  # the identity function has no say over the bank function
    decision = decide(card, _change("bank", action))
    assert decision.outcome is FeedOutcome.APPLIED
    assert decision.bank_to is after and decision.identity_to is None
    card.bank_status = after
    assert decide(card, _change("bank", action)).outcome is FeedOutcome.UNCHANGED


def test_an_unknown_card_or_function() -> None:
    assert decide(None, _change("identity", "loss")).outcome is FeedOutcome.UNKNOWN_CARD
    assert decide(_card(), _change("pension", "loss")).outcome is FeedOutcome.NOT_UNDERSTOOD
    assert decide(_card(), _change("bank", "cancel")).outcome is FeedOutcome.NOT_UNDERSTOOD


def test_a_change_on_the_wire_becomes_a_feed_change() -> None:
    wire = pb.Change(
        version=7,
        card_no="A12345678",
        function=pb.CARD_FUNCTION_BANK,
        action=pb.CHANGE_ACTION_UNFREEZE,
        channel=pb.CHANNEL_BANK_BRANCH,
    )
    wire.occurred_at.FromMilliseconds(1_700_000_000_000)
    assert feed_change(wire) == FeedChange(
        7, "A12345678", "bank", "unfreeze", "bank_branch", 1_700_000_000_000
    )


def _request(function: int, action: int, channel: int, **kw: object) -> ChangeRequest:
    fields: dict[str, object] = {"request_id": "r-1", "card_no": "A12345678", "occurred_ms": 0}
    fields.update(kw)
    return ChangeRequest(function=function, action=action, channel=channel, **fields)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("function", "action", "channel"),
    [
        (pb.CARD_FUNCTION_IDENTITY, pb.CHANGE_ACTION_LOSS, pb.CHANNEL_HR_WINDOW),
        (pb.CARD_FUNCTION_IDENTITY, pb.CHANGE_ACTION_LOSS, pb.CHANNEL_HOTLINE),
        (pb.CARD_FUNCTION_IDENTITY, pb.CHANGE_ACTION_CANCEL, pb.CHANNEL_HR_WINDOW),
        (pb.CARD_FUNCTION_BANK, pb.CHANGE_ACTION_ACTIVATE, pb.CHANNEL_BANK_BRANCH),
        (pb.CARD_FUNCTION_BANK, pb.CHANGE_ACTION_LOSS, pb.CHANNEL_HOTLINE),
    ],
)
def test_the_simulator_takes_changes_that_fit(function: int, action: int, channel: int) -> None:
    check_change(_request(function, action, channel))


@pytest.mark.parametrize(
    ("change", "field"),
    [
        (_request(pb.CARD_FUNCTION_IDENTITY, pb.CHANGE_ACTION_FREEZE, pb.CHANNEL_HR_WINDOW), "action"),
        (_request(pb.CARD_FUNCTION_BANK, pb.CHANGE_ACTION_CANCEL, pb.CHANNEL_BANK_BRANCH), "action"),
        (_request(pb.CARD_FUNCTION_UNSPECIFIED, pb.CHANGE_ACTION_LOSS, pb.CHANNEL_HR_WINDOW), "function"),
        (_request(pb.CARD_FUNCTION_IDENTITY, pb.CHANGE_ACTION_LOSS, pb.CHANNEL_BANK_BRANCH), "channel"),
        (_request(pb.CARD_FUNCTION_BANK, pb.CHANGE_ACTION_UNLOCK, pb.CHANNEL_HOTLINE), "channel"),
        (_request(pb.CARD_FUNCTION_BANK, pb.CHANGE_ACTION_LOSS, pb.CHANNEL_UNSPECIFIED), "channel"),
        (
            _request(pb.CARD_FUNCTION_BANK, pb.CHANGE_ACTION_LOSS, pb.CHANNEL_BANK_BRANCH, request_id=""),
            "request_id",
        ),
        (
            _request(pb.CARD_FUNCTION_BANK, pb.CHANGE_ACTION_LOSS, pb.CHANNEL_BANK_BRANCH, card_no="A 1"),
            "card_no",
        ),
        (
            _request(pb.CARD_FUNCTION_BANK, pb.CHANGE_ACTION_LOSS, pb.CHANNEL_BANK_BRANCH, occurred_ms=-1),
            "at",
        ),
    ],
)
def test_the_simulator_names_what_does_not_fit(change: ChangeRequest, field: str) -> None:
    with pytest.raises(RuleError) as caught:
        check_change(change)
    assert caught.value.field == field
