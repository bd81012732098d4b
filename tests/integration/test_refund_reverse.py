"""Refunds (partial, never more than what is left) and reversals (冲正), including early ones."""

from __future__ import annotations

import pytest

from onecard.auth.v1 import authorization_service_pb2 as pb
from onecard_client.errors import FailedPreconditionError, NotFoundError
from tests.helpers import Campus, name

BUY, ENTRY = pb.SCENE_CANTEEN_PURCHASE, pb.SCENE_GATE_ENTRY


async def test_partial_refunds_up_to_the_original(campus: Campus) -> None:
    card, pos = campus.card(), campus.pos()
    till = campus.client(pos)
    purchase = campus.chip(card, pos, BUY, amount_fen=1_000)
    paid = await campus.send(purchase)
    first = await till.refund("rf-1", purchase.request_id, 300)
    assert (first.refunded_fen, first.remaining_refundable_fen) == (300, 700)
    assert first.balance_fen == paid.balance_fen + 300
    assert await till.refund("rf-1", purchase.request_id, 300) == first  # idempotent
    with pytest.raises(FailedPreconditionError) as caught:
        await till.refund("rf-2", purchase.request_id, 701)
    assert caught.value.reason == "REFUND_EXCEEDS_REMAINING"
    last = await till.refund("rf-3", purchase.request_id, 700)
    assert last.remaining_refundable_fen == 0
    assert last.balance_fen == paid.balance_fen + 1_000


async def test_refund_needs_an_approved_purchase_of_this_terminal(campus: Campus) -> None:
    card, pos = campus.card(), campus.pos()
    with pytest.raises(NotFoundError):
        await campus.client(pos).refund("rf-x", "never-sent", 100)
    purchase = campus.chip(card, pos, BUY, amount_fen=1_000)
    await campus.send(purchase)
    with pytest.raises(NotFoundError):  # another till cannot refund it by this id
        await campus.client(campus.pos(index=1)).refund("rf-y", purchase.request_id, 100)
    gate_pass = campus.chip(card, campus.gate(), ENTRY)
    await campus.send(gate_pass)
    with pytest.raises(FailedPreconditionError) as caught:
        await campus.client(campus.gate()).refund("rf-z", gate_pass.request_id, 100)
    assert caught.value.reason == "NOT_REFUNDABLE"


async def test_reversal_gives_the_money_back_and_frees_the_limits(campus: Campus) -> None:
    card, pos = campus.card(), campus.pos()
    till = campus.client(pos)
    before = (await till.wallet_balance(card.card_no)).balance_fen
    purchase = campus.qr(card, pos, BUY, amount_fen=1_800)
    await campus.send(purchase)
    reversed_ = await till.reverse("rv-1", purchase.request_id)
    assert reversed_.outcome == pb.REVERSAL_OUTCOME_REVERSED
    assert reversed_.reversed_fen == 1_800
    assert reversed_.balance_fen == before
    balance = await till.wallet_balance(card.card_no)
    assert (balance.balance_fen, balance.spent_today_fen) == (before, 0)
    again = await till.reverse("rv-2", purchase.request_id)
    assert again.outcome == pb.REVERSAL_OUTCOME_NOTHING_TO_REVERSE
    with pytest.raises(FailedPreconditionError):
        await till.refund("rf-after", purchase.request_id, 100)


async def test_a_reversal_before_its_original_declines_the_late_original(campus: Campus) -> None:
    card, pos = campus.card(), campus.pos()
    till = campus.client(pos)
    before = (await till.wallet_balance(card.card_no)).balance_fen
    late = campus.chip(card, pos, BUY, amount_fen=900, request_id="late-1")
    early = await till.reverse("rv-early", "late-1")
    assert early.outcome == pb.REVERSAL_OUTCOME_ORIGINAL_NOT_SEEN
    answer = await campus.send(late)
    assert answer.decision == pb.DECISION_DECLINED
    assert name(answer.decline_reason) == "REVERSED"
    assert await campus.send(late) == answer
    assert (await till.wallet_balance(card.card_no)).balance_fen == before


async def test_reversing_a_declined_tap_changes_nothing(campus: Campus) -> None:
    card, pos = campus.card(status="lost"), campus.pos()
    declined = campus.chip(card, pos, BUY, amount_fen=900)
    await campus.send(declined)
    outcome = await campus.client(pos).reverse("rv-d", declined.request_id)
    assert outcome.outcome == pb.REVERSAL_OUTCOME_NOTHING_TO_REVERSE
