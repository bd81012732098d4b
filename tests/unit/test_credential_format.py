"""The shared credential formats: minting and parsing agree; offline signature check."""

from __future__ import annotations

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from onecard_client.credentials import (
    MalformedToken,
    chip_cryptogram,
    derive_card_key,
    mint_qr_token,
    parse_qr_token,
    qr_mac,
    verify_qr_signature,
)


def test_qr_round_trip_and_offline_signature() -> None:
    signer = Ed25519PrivateKey.generate()
    key = derive_card_key(b"k" * 32, "A12345678")
    token = mint_qr_token(
        card_no="A12345678", ecard_key=key, signing_key=signer, issued_ms=1_000, nonce=b"n" * 8
    )
    parsed = parse_qr_token(token)
    assert (parsed.card_no, parsed.issued_ms, parsed.expires_ms, parsed.nonce) == (
        "A12345678",
        1_000,
        61_000,
        b"n" * 8,
    )
    assert qr_mac(key, parsed.payload) == parsed.mac
    assert verify_qr_signature(signer.public_key(), parsed)
    assert not verify_qr_signature(Ed25519PrivateKey.generate().public_key(), parsed)
    assert len(token) < 200


@pytest.mark.parametrize("text", ["", "OC1.", "OC1.a.b.c", "OC2.x.y.z", "OC1.AAAA.AAAA.AAAA"])
def test_malformed_tokens(text: str) -> None:
    with pytest.raises(MalformedToken):
        parse_qr_token(text)


def test_cryptogram_covers_every_field() -> None:
    key = b"c" * 32
    base = {"card_no": "A1", "atc": 1, "terminal_id": "t", "scene": 3, "amount_fen": 100, "tap_time_ms": 5}
    reference = chip_cryptogram(key, **base)  # type: ignore[arg-type]
    assert len(reference) == 8
    for field, other in [
        ("atc", 2),
        ("terminal_id", "u"),
        ("scene", 1),
        ("amount_fen", 101),
        ("tap_time_ms", 6),
    ]:
        assert chip_cryptogram(key, **{**base, field: other}) != reference  # type: ignore[arg-type]
