"""Use case: the e-card platform mints a dynamic QR code for the holder's phone app
(ECardService.MintQrCode), as the national platform would; the rule is `domain/ecard.py`.

The hub signs with the issuer's Ed25519 key it holds in `HubKeys` and tags with the card's
e-card key, exactly like `onecard_client.credentials.mint_qr_token` does for simulators. Minting
writes nothing: a code's nonce is remembered when the code is used.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass

from onecard_client.credentials import QR_MAX_LIFETIME_MS, QR_NONCE_BYTES, mint_qr_token
from onecard_hub.domain.ecard import check_mint
from onecard_hub.hub import Hub


@dataclass(frozen=True, slots=True)
class MintedCode:
    token: str
    expires_ms: int


def mint_qr_code(hub: Hub, card_no: str, requested_ms: int, proof: bytes) -> MintedCode:
    now = hub.clock.now_ms()
    card = check_mint(hub.campus.cards.get(card_no), card_no, requested_ms, proof, now)
    token = mint_qr_token(
        card_no=card.card_no,
        ecard_key=card.ecard_key,
        signing_key=hub.keys.ecard_signing_key,
        issued_ms=now,
        nonce=secrets.token_bytes(QR_NONCE_BYTES),
        lifetime_ms=QR_MAX_LIFETIME_MS,
    )
    return MintedCode(token, now + QR_MAX_LIFETIME_MS)
