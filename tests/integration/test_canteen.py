"""Canteen rules: balance, PIN, daily limit, meal windows and counts (real hub, real SQLite)."""

from __future__ import annotations

from pathlib import Path

import pytest

from onecard.auth.v1 import authorization_service_pb2 as pb
from onecard_hub.domain.clock import ManualClock
from tests.helpers import Campus, name

BUY = pb.SCENE_CANTEEN_PURCHASE


async def test_purchase_debits_the_wallet(campus: Campus) -> None:
    card, pos = campus.card(), campus.pos()
    before = (await campus.client(pos).wallet_balance(card.card_no)).balance_fen
    answer = await campus.send(campus.chip(card, pos, BUY, amount_fen=1_250))
    assert answer.decision == pb.DECISION_APPROVED, name(answer.decline_reason)
    assert answer.balance_fen == before - 1_250
    balance = await campus.client(pos).wallet_balance(card.card_no)
    assert balance.balance_fen == before - 1_250
    assert balance.spent_today_fen == 1_250


async def test_pin_above_the_pin_free_limit_and_lockout(campus: Campus) -> None:
    card, pos = campus.card(), campus.pos()
    assert (
        name((await campus.send(campus.qr(card, pos, BUY, amount_fen=6_000))).decline_reason)
        == "PIN_REQUIRED"
    )
    wrong = "111111" if card.pin != "111111" else "222222"
    for _ in range(3):
        answer = await campus.send(campus.qr(card, pos, BUY, amount_fen=6_000, pin=wrong))
        assert name(answer.decline_reason) == "PIN_INCORRECT"
    locked = await campus.send(campus.qr(card, pos, BUY, amount_fen=6_000, pin=card.pin))
    assert name(locked.decline_reason) == "PIN_LOCKED"
    other = campus.card(skip=1)
    ok = await campus.send(campus.chip(other, pos, BUY, amount_fen=6_000, pin=other.pin))
    assert ok.decision == pb.DECISION_APPROVED, name(ok.decline_reason)


async def test_meal_window_and_count(campus: Campus) -> None:
    card, pos = campus.card(), campus.pos()
    for _ in range(3):
        assert (
            await campus.send(campus.chip(card, pos, BUY, amount_fen=500))
        ).decision == pb.DECISION_APPROVED
    fourth = await campus.send(campus.chip(card, pos, BUY, amount_fen=500))
    assert name(fourth.decline_reason) == "MEAL_COUNT_EXCEEDED"
    campus.clock.advance(minutes=3 * 60)  # 15:00, between lunch and dinner
    closed = await campus.send(campus.chip(card, pos, BUY, amount_fen=500))
    assert name(closed.decline_reason) == "OUTSIDE_MEAL_WINDOW"
    campus.clock.advance(minutes=2 * 60)  # 17:00, dinner: a new meal window
    assert (await campus.send(campus.qr(card, pos, BUY, amount_fen=500))).decision == pb.DECISION_APPROVED


@pytest.mark.parametrize("limit_fen", [2_000])
async def test_daily_limit_rolls_over_at_local_midnight(
    campus_dir: Path, clock: ManualClock, limit_fen: int
) -> None:
    from onecard_hub.server import running_hub
    from tests.conftest import hub_config, set_policy

    set_policy(campus_dir, daily_limit_fen=limit_fen)
    from onecard_client.campus import CampusCredentials

    async with running_hub(hub_config(campus_dir), clock) as running:
        c = Campus(CampusCredentials.load(campus_dir / "hub.keys"), clock, running.target)
        card, pos = c.card(), c.pos()
        assert (await c.send(c.chip(card, pos, BUY, amount_fen=1_500))).decision == pb.DECISION_APPROVED
        over = await c.send(c.chip(card, pos, BUY, amount_fen=600))
        assert name(over.decline_reason) == "DAILY_LIMIT_EXCEEDED"
        clock.advance(minutes=19 * 60)  # 07:00 next day, breakfast
        assert (await c.send(c.chip(card, pos, BUY, amount_fen=600))).decision == pb.DECISION_APPROVED
        await c.close()


async def test_insufficient_funds(campus_dir: Path, clock: ManualClock) -> None:
    from onecard_client.campus import CampusCredentials
    from onecard_hub.server import running_hub
    from tests.conftest import hub_config, set_policy

    set_policy(campus_dir, daily_limit_fen=10_000_000)
    async with running_hub(hub_config(campus_dir), clock) as running:
        c = Campus(CampusCredentials.load(campus_dir / "hub.keys"), clock, running.target)
        card, pos = c.card(), c.pos()
        balance = (await c.client(pos).wallet_balance(card.card_no)).balance_fen
        short = await c.send(c.chip(card, pos, BUY, amount_fen=balance + 1, pin=card.pin))
        assert name(short.decline_reason) == "INSUFFICIENT_FUNDS"
        assert short.display_text == "余额不足"
        exact = await c.send(c.chip(card, pos, BUY, amount_fen=balance, pin=card.pin))
        assert exact.decision == pb.DECISION_APPROVED
        assert exact.balance_fen == 0
        await c.close()
