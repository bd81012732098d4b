"""Protecting personal data and PINs with the hub's keys.

ID numbers and bank account numbers are stored encrypted (AES-256-GCM, key version in
the first byte) with a keyed index for exact-match search; PINs only as a keyed hash
whose key (the pepper) lives outside the database.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets

from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from google.protobuf.message import Message

from onecard_hub.security.keys import HubKeys


class FieldProtector:
    def __init__(self, keys: HubKeys) -> None:
        self._keys = keys
        self._aead = {v: AESGCM(raw) for v, raw in keys.field_key.versions.items()}

    def encrypt(self, text: str, *, context: bytes) -> bytes:
        version = self._keys.field_key.current
        nonce = secrets.token_bytes(12)
        return bytes([version]) + nonce + self._aead[version].encrypt(nonce, text.encode(), context)

    def decrypt(self, blob: bytes, *, context: bytes) -> str:
        return self._aead[blob[0]].decrypt(blob[1:13], blob[13:], context).decode()

    def index(self, text: str) -> bytes:
        return hmac.digest(self._keys.index_key.key, text.encode(), "sha256")


class PinHasher:
    """HMAC-SHA256(pepper, card_no | pin): never the PIN itself."""

    def __init__(self, keys: HubKeys) -> None:
        self._pepper = keys.pin_pepper.key

    def __call__(self, card_no: str, pin: str) -> bytes:
        return hmac.digest(self._pepper, f"{card_no}|{pin}".encode(), "sha256")


class RequestFingerprint:
    """A keyed 16-byte digest of a request body: compares bodies without keeping them."""

    def __init__(self, keys: HubKeys) -> None:
        self._key = keys.request_key.key

    def __call__(self, method: str, body: bytes) -> bytes:
        return hashlib.blake2b(method.encode() + b"\0" + body, key=self._key, digest_size=16).digest()

    def of(self, method: str, request: Message) -> bytes:
        """The fingerprint of a request message (its deterministic serialization)."""
        return self(method, request.SerializeToString(deterministic=True))
