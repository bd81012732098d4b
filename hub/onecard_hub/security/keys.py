"""The hub's secrets, kept outside the database in the keys folder (DESIGN §8).

`hub_keys.json` holds each secret by version; the newest version signs and derives,
older ones stay for verification, so a key can be rotated without downtime. The
e-card issuer's Ed25519 key pair lives beside it as PEM files.
"""

from __future__ import annotations

import json
import os
import secrets
from dataclasses import dataclass
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import (
    Encoding,
    NoEncryption,
    PrivateFormat,
    PublicFormat,
    load_pem_private_key,
)

from onecard_client.campus import PUBLIC_KEY_FILE, SIGNING_KEY_FILE
from onecard_hub.security.files import write_private

HUB_KEYS_FILE = "hub_keys.json"
SECRET_NAMES = ("issuer_master", "ecard_master", "pin_pepper", "field_key", "index_key", "request_key")


@dataclass(frozen=True)
class VersionedKey:
    current: int
    versions: dict[int, bytes]

    @property
    def key(self) -> bytes:
        return self.versions[self.current]


@dataclass(frozen=True)
class HubKeys:
    issuer_master: VersionedKey  # derives chip card keys
    ecard_master: VersionedKey  # derives e-card MAC keys
    pin_pepper: VersionedKey  # keys the PIN hash
    field_key: VersionedKey  # AES-256-GCM for ID and bank account numbers
    index_key: VersionedKey  # keyed search index over encrypted fields
    request_key: VersionedKey  # keys request fingerprints (idempotency)
    ecard_signing_key: Ed25519PrivateKey

    @property
    def ecard_public_key(self) -> Ed25519PublicKey:
        return self.ecard_signing_key.public_key()

    @classmethod
    def generate(cls) -> HubKeys:
        fresh = {name: VersionedKey(1, {1: secrets.token_bytes(32)}) for name in SECRET_NAMES}
        return cls(**fresh, ecard_signing_key=Ed25519PrivateKey.generate())

    def save(self, folder: Path) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        os.chmod(folder, 0o700)
        doc = {
            name: {
                "current": key.current,
                "versions": {str(v): raw.hex() for v, raw in key.versions.items()},
            }
            for name in SECRET_NAMES
            for key in [getattr(self, name)]
        }
        write_private(folder / HUB_KEYS_FILE, json.dumps(doc, indent=2).encode())
        write_private(
            folder / SIGNING_KEY_FILE,
            self.ecard_signing_key.private_bytes(Encoding.PEM, PrivateFormat.PKCS8, NoEncryption()),
        )
        (folder / PUBLIC_KEY_FILE).write_bytes(
            self.ecard_public_key.public_bytes(Encoding.PEM, PublicFormat.SubjectPublicKeyInfo)
        )

    @classmethod
    def load(cls, folder: Path) -> HubKeys:
        doc = json.loads((folder / HUB_KEYS_FILE).read_text(encoding="utf-8"))
        keys = {
            name: VersionedKey(
                int(doc[name]["current"]),
                {int(v): bytes.fromhex(raw) for v, raw in doc[name]["versions"].items()},
            )
            for name in SECRET_NAMES
        }
        signing = load_pem_private_key((folder / SIGNING_KEY_FILE).read_bytes(), password=None)
        if not isinstance(signing, Ed25519PrivateKey):
            raise ValueError(f"{folder / SIGNING_KEY_FILE} is not an Ed25519 key")
        return cls(**keys, ecard_signing_key=signing)
