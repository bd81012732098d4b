"""The e-card platform mints QR codes for the holder's app, and only for the holder."""

from __future__ import annotations

import grpc
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from onecard.auth.v1 import authorization_service_pb2 as auth_pb
from onecard.ecard.v1 import ecard_service_pb2 as pb
from onecard.ecard.v1 import ecard_service_pb2_grpc as pb_grpc
from onecard_client.client import ClientConfig, ECardClient
from onecard_client.credentials import mint_proof, parse_qr_token, verify_qr_signature
from onecard_client.errors import (
    FailedPreconditionError,
    InvalidArgumentError,
    NotFoundError,
    PermissionDeniedError,
)
from onecard_hub.domain.clock import ManualClock
from onecard_hub.server import RunningHub
from tests.helpers import Campus, name, new_request_id


async def test_a_minted_code_opens_the_gate_once(campus: Campus, hub: RunningHub, clock: ManualClock) -> None:
    card, gate = campus.card(), campus.gate()
    async with ECardClient(ClientConfig(target=hub.target)) as app:
        minted = await app.mint_qr_code(card.card_no, card.ecard_key, clock.now_ms())
    token = parse_qr_token(minted.token)
    assert token.card_no == card.card_no
    assert minted.expires_at.ToMilliseconds() == token.expires_ms == clock.now_ms() + 60_000
    public_key = (await campus.client(gate).get_config()).ecard_public_key
    assert verify_qr_signature(Ed25519PublicKey.from_public_bytes(public_key), token)

    def scan() -> auth_pb.AuthorizeRequest:
        request = auth_pb.AuthorizeRequest(
            request_id=new_request_id(),
            terminal_id=gate.terminal_id,
            scene=auth_pb.SCENE_GATE_ENTRY,
            qr=auth_pb.QrScan(token=minted.token),
        )
        request.tap_time.FromMilliseconds(clock.now_ms())
        return request

    assert (await campus.send(scan())).decision == auth_pb.DECISION_APPROVED
    assert name((await campus.send(scan())).decline_reason) == "QR_REPLAYED"


async def test_minting_refuses_what_it_should(campus: Campus, hub: RunningHub, clock: ManualClock) -> None:
    card, lost = campus.card(), campus.card(status="lost")
    now = clock.now_ms()
    async with ECardClient(ClientConfig(target=hub.target)) as app:
        with pytest.raises(PermissionDeniedError) as forged:
            await app.mint_qr_code(card.card_no, lost.ecard_key, now)  # another card's key
        assert forged.value.reason == "HOLDER_PROOF_INVALID"
        with pytest.raises(InvalidArgumentError) as stale:
            await app.mint_qr_code(card.card_no, card.ecard_key, now - 61_000)
        assert stale.value.field == "requested_at"
        with pytest.raises(FailedPreconditionError) as blocked:
            await app.mint_qr_code(lost.card_no, lost.ecard_key, now)
        assert blocked.value.reason == "CARD_NOT_ACTIVE"
        with pytest.raises(NotFoundError):
            await app.mint_qr_code("ZZ0000000000", card.ecard_key, now)
        # A code asked for 59 s ago by the app's idea of the hub's time is still fine.
        assert (await app.mint_qr_code(card.card_no, card.ecard_key, now - 59_000)).token


async def test_malformed_mint_requests_name_the_field(
    hub: RunningHub, campus: Campus, clock: ManualClock
) -> None:
    card = campus.card()
    now = clock.now_ms()
    good = pb.MintQrCodeRequest(card_no=card.card_no, proof=mint_proof(card.ecard_key, card.card_no, now))
    good.requested_at.FromMilliseconds(now)
    cases = {
        "card_no": pb.MintQrCodeRequest(card_no="no!", requested_at=good.requested_at, proof=good.proof),
        "requested_at": pb.MintQrCodeRequest(card_no=card.card_no, proof=good.proof),
        "proof": pb.MintQrCodeRequest(card_no=card.card_no, requested_at=good.requested_at, proof=b"short"),
    }
    async with grpc.aio.insecure_channel(hub.target) as channel:
        stub = pb_grpc.ECardServiceStub(channel)
        assert (await stub.MintQrCode(good)).token
        for field, request in cases.items():
            with pytest.raises(grpc.aio.AioRpcError) as caught:
                await stub.MintQrCode(request)
            assert caught.value.code() is grpc.StatusCode.INVALID_ARGUMENT
            assert field in (caught.value.details() or "")
