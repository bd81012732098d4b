"""Credential checks: chip cryptogram and counter, QR tag, expiry and single use."""

from __future__ import annotations

import pytest

from onecard.auth.v1 import authorization_service_pb2 as pb
from onecard_client.credentials import mint_qr_token
from onecard_client.errors import InvalidArgumentError
from tests.helpers import Campus, name

ENTRY, EXIT, BUY = pb.SCENE_GATE_ENTRY, pb.SCENE_GATE_EXIT, pb.SCENE_CANTEEN_PURCHASE


async def test_repeated_or_backward_counter_is_a_replay(campus: Campus) -> None:
    card, pos = campus.card(), campus.pos()
    assert (
        await campus.send(campus.chip(card, pos, BUY, amount_fen=500, atc=10))
    ).decision == pb.DECISION_APPROVED
    repeat = await campus.send(campus.chip(card, pos, BUY, amount_fen=500, atc=10))
    assert name(repeat.decline_reason) == "COUNTER_REPLAYED"
    backward = await campus.send(campus.chip(card, pos, BUY, amount_fen=500, atc=9))
    assert name(backward.decline_reason) == "COUNTER_REPLAYED"
    forward = await campus.send(campus.chip(card, pos, BUY, amount_fen=500, atc=11))
    assert forward.decision == pb.DECISION_APPROVED


async def test_a_wrong_cryptogram_is_declined(campus: Campus) -> None:
    card, gate = campus.card(), campus.gate()
    request = campus.chip(card, gate, ENTRY)
    request.chip.cryptogram = bytes(8)
    assert name((await campus.send(request)).decline_reason) == "CREDENTIAL_INVALID"
    tampered = campus.chip(card, campus.pos(), BUY, amount_fen=100)
    tampered.amount_fen = 1  # the cryptogram covers the amount
    assert name((await campus.send(tampered)).decline_reason) == "CREDENTIAL_INVALID"


async def test_a_tap_time_far_from_the_hub_clock_is_declined(campus: Campus) -> None:
    card, gate = campus.card(), campus.gate()
    late = campus.chip(card, gate, ENTRY, tap_time_ms=campus.clock.now_ms() - 10 * 60_000)
    assert name((await campus.send(late)).decline_reason) == "CLOCK_SKEW"


async def test_a_qr_code_works_once(campus: Campus) -> None:
    card, gate = campus.card(), campus.gate()
    first = campus.qr(card, gate, ENTRY)
    assert (await campus.send(first)).decision == pb.DECISION_APPROVED
    replay = pb.AuthorizeRequest()
    replay.CopyFrom(first)
    replay.request_id = "replayed-code"
    replay.scene = EXIT
    assert name((await campus.send(replay)).decline_reason) == "QR_REPLAYED"


async def test_an_expired_qr_code_is_declined(campus: Campus) -> None:
    card, gate = campus.card(), campus.gate()
    request = campus.qr(card, gate, ENTRY)
    campus.clock.advance(seconds=61)
    assert name((await campus.send(request)).decline_reason) == "QR_EXPIRED"


async def test_a_qr_code_with_a_forged_tag_is_declined(campus: Campus) -> None:
    card, gate = campus.card(), campus.gate()
    request = campus.qr(card, gate, ENTRY)
    request.qr.token = mint_qr_token(
        card_no=card.card_no,
        ecard_key=bytes(32),
        signing_key=campus.creds.signing_key,
        issued_ms=campus.clock.now_ms(),
        nonce=b"12345678",
    )
    assert name((await campus.send(request)).decline_reason) == "CREDENTIAL_INVALID"


async def test_an_unknown_card_is_declined(campus: Campus) -> None:
    from dataclasses import replace

    ghost = replace(campus.card(), card_no="Z99999999")
    assert (
        name((await campus.send(campus.chip(ghost, campus.gate(), ENTRY))).decline_reason) == "CARD_UNKNOWN"
    )


@pytest.mark.parametrize("token", ["hello", "OC1.a.b", "OC1.!!!.AAAA.BBBB", "x" * 600])
async def test_an_unparseable_qr_code_is_invalid_argument(campus: Campus, token: str) -> None:
    request = campus.qr(campus.card(), campus.gate(), ENTRY)
    request.qr.token = token
    with pytest.raises(InvalidArgumentError) as caught:
        await campus.send(request)
    assert caught.value.field == "qr.token"
