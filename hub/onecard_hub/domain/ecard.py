"""The e-card platform's rule for minting a QR code for the holder's phone app.

The app proves it acts for the holder with `proof = HMAC-SHA256(e-card key, "mint|" + card_no +
"|" + requested_ms)` (`onecard_client.credentials.mint_proof`), stamped with the hub's time as
the app knows it; the hub mints only for a card that exists and is active.
"""

from __future__ import annotations

import hmac

from onecard_client.credentials import mint_proof
from onecard_hub.domain.errors import FailedPrecondition, InvalidArgument, NotFound, PermissionDenied
from onecard_hub.domain.model import Card, CardStatus

# How far `requested_at` may be from the hub's clock.
MINT_WINDOW_MS = 60_000


def check_mint(card: Card | None, card_no: str, requested_ms: int, proof: bytes, now_ms: int) -> Card:
    """The card a code may be minted for, or the error that says why not."""
    if abs(requested_ms - now_ms) > MINT_WINDOW_MS:
        raise InvalidArgument(
            "requested_at", "more than 60 s from the hub's clock: read the hub's time and ask again"
        )
    if card is None:
        raise NotFound("card_no: no such card", field="card_no")
    if not hmac.compare_digest(mint_proof(card.ecard_key, card_no, requested_ms), proof):
        raise PermissionDenied(
            "proof: does not show the holder's e-card key", reason="HOLDER_PROOF_INVALID", field="proof"
        )
    if card.status is not CardStatus.ACTIVE:
        raise FailedPrecondition(
            "card_no: the card is not active (lost, frozen, replaced or cancelled)",
            reason="CARD_NOT_ACTIVE",
            field="card_no",
        )
    return card
