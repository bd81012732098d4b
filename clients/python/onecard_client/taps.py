"""Building tap and scan requests the way a reader does, from a card holder's credentials."""

from __future__ import annotations

import secrets

from onecard.auth.v1 import authorization_service_pb2 as auth_pb
from onecard_client.campus import CampusCredentials, CardCredential
from onecard_client.credentials import chip_cryptogram, mint_qr_token


def chip_tap(
    card: CardCredential,
    *,
    request_id: str,
    terminal_id: str,
    scene: int,
    atc: int,
    tap_time_ms: int,
    amount_fen: int = 0,
    pin: str = "",
) -> auth_pb.AuthorizeRequest:
    request = auth_pb.AuthorizeRequest(
        request_id=request_id,
        terminal_id=terminal_id,
        scene=scene,  # type: ignore[arg-type]
        amount_fen=amount_fen,
        pin=pin,
        chip=auth_pb.ChipTap(
            card_no=card.card_no,
            atc=atc,
            cryptogram=chip_cryptogram(
                card.card_key,
                card_no=card.card_no,
                atc=atc,
                terminal_id=terminal_id,
                scene=scene,
                amount_fen=amount_fen,
                tap_time_ms=tap_time_ms,
            ),
        ),
    )
    request.tap_time.FromMilliseconds(tap_time_ms)
    return request


def qr_scan(
    campus: CampusCredentials,
    card: CardCredential,
    *,
    request_id: str,
    terminal_id: str,
    scene: int,
    issued_ms: int,
    tap_time_ms: int,
    amount_fen: int = 0,
    pin: str = "",
) -> auth_pb.AuthorizeRequest:
    """A scan of a freshly minted e-card code (the simulator plays the e-card platform)."""
    token = mint_qr_token(
        card_no=card.card_no,
        ecard_key=card.ecard_key,
        signing_key=campus.signing_key,
        issued_ms=issued_ms,
        nonce=secrets.token_bytes(8),
    )
    request = auth_pb.AuthorizeRequest(
        request_id=request_id,
        terminal_id=terminal_id,
        scene=scene,  # type: ignore[arg-type]
        amount_fen=amount_fen,
        pin=pin,
        qr=auth_pb.QrScan(token=token),
    )
    request.tap_time.FromMilliseconds(tap_time_ms)
    return request
