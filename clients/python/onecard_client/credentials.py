"""The credential formats of OneCard: chip-card cryptograms and e-card QR tokens.

This module is the executable specification that terminals, simulators and the hub
share. It is pure (no I/O): keys come in as bytes, times as integer milliseconds.

Chip card (DESIGN §4)
    card key   = HMAC-SHA256(issuer master key, "card|" + card_no)
    cryptogram = HMAC-SHA256(card key, canonical fields)[:8]
    canonical  = "|".join(card_no, atc, terminal_id, scene, amount_fen, tap_time_ms)

E-card QR token
    e-card key = HMAC-SHA256(e-card master key, "ecard|" + card_no)
    payload    = version (1 byte) | issued_ms (8) | expires_ms (8) | nonce (8) | card_no
    token      = "OC1." + b64url(payload) + "." + b64url(MAC) + "." + b64url(signature)
    MAC        = HMAC-SHA256(e-card key, payload)[:16]          (the hub checks this online)
    signature  = Ed25519(issuer signing key, payload)           (terminals check this offline)

E-card app's mint proof (ECardService.MintQrCode)
    proof      = HMAC-SHA256(e-card key, "mint|" + card_no + "|" + str(requested_ms))
"""

from __future__ import annotations

import base64
import hmac
import struct
from dataclasses import dataclass

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

__all__ = [
    "CRYPTOGRAM_BYTES",
    "MINT_PROOF_BYTES",
    "QR_MAX_LIFETIME_MS",
    "QR_PREFIX",
    "MalformedToken",
    "QrToken",
    "chip_cryptogram",
    "derive_card_key",
    "derive_ecard_key",
    "mint_proof",
    "mint_qr_token",
    "parse_qr_token",
    "qr_mac",
    "verify_qr_signature",
]

CRYPTOGRAM_BYTES = 8
QR_PREFIX = "OC1."
QR_VERSION = 1
QR_MAX_LIFETIME_MS = 60_000
QR_MAC_BYTES = 16
QR_NONCE_BYTES = 8
QR_SIGNATURE_BYTES = 64
MINT_PROOF_BYTES = 32
_HEADER = struct.Struct(">BQQ8s")
_MAX_CARD_NO = 32


class MalformedToken(ValueError):
    """The text is not an OC1 e-card token (bad layout, encoding or lengths)."""


def derive_card_key(issuer_master_key: bytes, card_no: str) -> bytes:
    return hmac.digest(issuer_master_key, b"card|" + card_no.encode(), "sha256")


def derive_ecard_key(ecard_master_key: bytes, card_no: str) -> bytes:
    return hmac.digest(ecard_master_key, b"ecard|" + card_no.encode(), "sha256")


def chip_cryptogram(
    card_key: bytes,
    *,
    card_no: str,
    atc: int,
    terminal_id: str,
    scene: int,
    amount_fen: int,
    tap_time_ms: int,
) -> bytes:
    """The 8-byte application cryptogram a chip computes over one transaction."""
    fields = f"{card_no}|{atc}|{terminal_id}|{scene}|{amount_fen}|{tap_time_ms}".encode()
    return hmac.digest(card_key, fields, "sha256")[:CRYPTOGRAM_BYTES]


@dataclass(frozen=True, slots=True)
class QrToken:
    """A parsed e-card token; its tags are not checked by parsing."""

    card_no: str
    issued_ms: int
    expires_ms: int
    nonce: bytes
    payload: bytes
    mac: bytes
    signature: bytes


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def qr_mac(ecard_key: bytes, payload: bytes) -> bytes:
    return hmac.digest(ecard_key, payload, "sha256")[:QR_MAC_BYTES]


def mint_qr_token(
    *,
    card_no: str,
    ecard_key: bytes,
    signing_key: Ed25519PrivateKey,
    issued_ms: int,
    nonce: bytes,
    lifetime_ms: int = QR_MAX_LIFETIME_MS,
) -> str:
    """Mints the text of a dynamic QR code, as the e-card platform does for the app."""
    if not 0 < lifetime_ms <= QR_MAX_LIFETIME_MS:
        raise ValueError("lifetime_ms must be within (0, 60000]")
    if len(nonce) != QR_NONCE_BYTES:
        raise ValueError("nonce must be 8 bytes")
    payload = _HEADER.pack(QR_VERSION, issued_ms, issued_ms + lifetime_ms, nonce) + card_no.encode()
    mac = qr_mac(ecard_key, payload)
    signature = signing_key.sign(payload)
    return f"{QR_PREFIX}{_b64(payload)}.{_b64(mac)}.{_b64(signature)}"


def mint_proof(ecard_key: bytes, card_no: str, requested_ms: int) -> bytes:
    """What the e-card app sends with MintQrCode to show it holds the card's e-card key."""
    return hmac.digest(ecard_key, f"mint|{card_no}|{requested_ms}".encode(), "sha256")


def parse_qr_token(text: str) -> QrToken:
    """Splits a token into its fields; raises MalformedToken when it is not one."""
    if not text.startswith(QR_PREFIX):
        raise MalformedToken("prefix")
    parts = text[len(QR_PREFIX) :].split(".")
    if len(parts) != 3:
        raise MalformedToken("parts")
    try:
        payload, mac, signature = (_unb64(p) for p in parts)
    except ValueError as exc:
        raise MalformedToken("encoding") from exc
    if len(mac) != QR_MAC_BYTES or len(signature) != QR_SIGNATURE_BYTES:
        raise MalformedToken("tag length")
    if not _HEADER.size < len(payload) <= _HEADER.size + _MAX_CARD_NO:
        raise MalformedToken("payload length")
    version, issued_ms, expires_ms, nonce = _HEADER.unpack_from(payload)
    if version != QR_VERSION:
        raise MalformedToken("version")
    try:
        card_no = payload[_HEADER.size :].decode("ascii")
    except UnicodeDecodeError as exc:
        raise MalformedToken("card number") from exc
    if not card_no.isalnum():
        raise MalformedToken("card number")
    return QrToken(card_no, issued_ms, expires_ms, nonce, payload, mac, signature)


def verify_qr_signature(public_key: Ed25519PublicKey, token: QrToken) -> bool:
    """The offline check a terminal makes with the issuer's public key."""
    try:
        public_key.verify(token.signature, token.payload)
    except Exception:  # cryptography raises InvalidSignature
        return False
    return True
