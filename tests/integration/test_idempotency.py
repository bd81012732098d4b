"""Idempotency by request_id (AIP-155): replays, concurrent copies, reuse with another body."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from onecard.auth.v1 import authorization_service_pb2 as pb
from onecard_client.errors import FailedPreconditionError
from onecard_hub.server import RunningHub
from tests.conftest import db_count
from tests.helpers import Campus

BUY = pb.SCENE_CANTEEN_PURCHASE


async def test_same_request_twice_gives_the_same_answer_and_one_debit(
    campus: Campus, campus_dir: Path
) -> None:
    card, pos = campus.card(), campus.pos()
    request = campus.chip(card, pos, BUY, amount_fen=900)
    transfers = db_count(campus_dir, "transfers")
    first = await campus.send(request)
    second = await campus.send(request)
    assert second == first
    assert db_count(campus_dir, "transfers") == transfers + 1


async def test_a_decline_is_replayed_too(campus: Campus) -> None:
    card, pos = campus.card(status="lost"), campus.pos()
    request = campus.qr(card, pos, BUY, amount_fen=900)
    first = await campus.send(request)
    assert first.decision == pb.DECISION_DECLINED
    assert await campus.send(request) == first  # not QR_REPLAYED: the same request gets the same answer


async def test_fifty_concurrent_copies_make_one_debit(campus: Campus, campus_dir: Path) -> None:
    card, pos = campus.card(), campus.pos()
    before = (await campus.client(pos).wallet_balance(card.card_no)).balance_fen
    request = campus.qr(card, pos, BUY, amount_fen=700)
    transfers = db_count(campus_dir, "transfers")
    answers = await asyncio.gather(*(campus.send(request) for _ in range(50)))
    assert all(a == answers[0] for a in answers)
    assert answers[0].decision == pb.DECISION_APPROVED
    assert (await campus.client(pos).wallet_balance(card.card_no)).balance_fen == before - 700
    assert db_count(campus_dir, "transfers") == transfers + 1


async def test_reused_request_id_with_another_body_changes_nothing(
    campus: Campus,
    campus_dir: Path,
    hub: RunningHub,
) -> None:
    card, pos = campus.card(), campus.pos()
    await campus.send(campus.chip(card, pos, BUY, amount_fen=900, request_id="dup-1"))
    before = (await campus.client(pos).wallet_balance(card.card_no)).balance_fen
    rows = db_count(campus_dir, "requests")
    with pytest.raises(FailedPreconditionError) as caught:
        await campus.send(campus.chip(card, pos, BUY, amount_fen=100, request_id="dup-1"))
    assert caught.value.reason == "IDEMPOTENCY_KEY_REUSED"
    assert caught.value.field == "request_id"
    assert (await campus.client(pos).wallet_balance(card.card_no)).balance_fen == before
    assert db_count(campus_dir, "requests") == rows


async def test_request_ids_are_scoped_to_the_terminal(campus: Campus) -> None:
    card = campus.card()
    a = await campus.send(campus.chip(card, campus.pos(index=0), BUY, amount_fen=500, request_id="same"))
    b = await campus.send(campus.chip(card, campus.pos(index=1), BUY, amount_fen=500, request_id="same"))
    assert a.decision == b.decision == pb.DECISION_APPROVED
    assert a.authorization_id != b.authorization_id
