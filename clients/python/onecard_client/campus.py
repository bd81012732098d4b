"""Reads the credentials export that `onecard-hub seed` writes beside the database.

The export lets simulators, load tests and benchmarks act as terminals and card
holders (and as the e-card platform that mints QR codes). It is test material for a
simulated campus: it holds the simulated holders' card keys and PINs.

Layout of the keys folder (`hub.db` → `hub.keys/`):

    credentials.json        schools, terminals, operators, cards (see below)
    ecard_signing_key.pem   Ed25519 private key of the e-card issuer (PKCS#8, PEM)
    ecard_public_key.pem    its public key, for offline QR checks
    hub_keys.json           the hub's own secrets (never read by clients)
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import load_pem_private_key, load_pem_public_key

__all__ = ["CampusCredentials", "CardCredential", "TerminalInfo", "keys_dir_for"]

CREDENTIALS_FILE = "credentials.json"
SIGNING_KEY_FILE = "ecard_signing_key.pem"
PUBLIC_KEY_FILE = "ecard_public_key.pem"


def keys_dir_for(db_path: str | Path) -> Path:
    """The default keys folder beside a database: `hub.db` → `hub.keys/`."""
    db = Path(db_path)
    return db.with_name(db.stem + ".keys")


@dataclass(frozen=True, slots=True)
class TerminalInfo:
    terminal_id: str
    school_id: str
    kind: str  # "gate" | "canteen_pos" | "library_desk" | "exam_tablet" | "kiosk"
    gate_group: str
    merchant_id: str
    location: str = ""  # as registered; an exam tablet's room (older exports: "")


@dataclass(frozen=True, slots=True)
class CardCredential:
    card_no: str
    school_id: str
    student_group: str  # "boarder" | "day"
    card_key: bytes
    ecard_key: bytes
    pin: str
    atc: int  # the counter the chip holds after seeding; taps must send atc + 1 onwards
    status: str = "active"  # identity function: "active", "lost", "frozen", …
    enrollment: str = "enrolled"  # 学籍: "enrolled", "suspended", …
    student_id: str = ""  # the holder (card-office, 学籍 and exam roster calls name the student)
    bank_code: str = ""  # co-branded bank of the card's bank function ("ICBC", "CCB", "ABC", "BOC", "JXB")
    bank_status: str = "active"  # the bank function: "active", "not_activated", "frozen", "lost"

    @property
    def usable(self) -> bool:
        """Active card of an enrolled student: its taps can be approved."""
        return self.status == "active" and self.enrollment == "enrolled"


@dataclass(frozen=True)
class MerchantAccount:
    """A canteen window's (merchant's) settlement account at its bank."""

    merchant_id: str
    school_id: str
    bank_code: str
    account_no: str


@dataclass(frozen=True)
class CampusCredentials:
    schools: list[str]
    terminals: list[TerminalInfo]
    operators: list[str]
    cards: list[CardCredential]
    signing_key: Ed25519PrivateKey
    public_key: Ed25519PublicKey
    merchants: list[MerchantAccount] = field(default_factory=list)

    @classmethod
    def load(cls, keys_dir: str | Path) -> CampusCredentials:
        folder = Path(keys_dir)
        doc = json.loads((folder / CREDENTIALS_FILE).read_text(encoding="utf-8"))
        signing = load_pem_private_key((folder / SIGNING_KEY_FILE).read_bytes(), password=None)
        public = load_pem_public_key((folder / PUBLIC_KEY_FILE).read_bytes())
        if not isinstance(signing, Ed25519PrivateKey) or not isinstance(public, Ed25519PublicKey):
            raise ValueError(f"{folder}: e-card keys are not Ed25519")
        return cls(
            schools=[s["school_id"] for s in doc["schools"]],
            terminals=[TerminalInfo(**t) for t in doc["terminals"]],
            operators=list(doc["operators"]),
            cards=[
                CardCredential(
                    card_no=c["card_no"],
                    school_id=c["school_id"],
                    student_group=c["student_group"],
                    card_key=bytes.fromhex(c["card_key"]),
                    ecard_key=bytes.fromhex(c["ecard_key"]),
                    pin=c["pin"],
                    atc=c["atc"],
                    status=c.get("status", "active"),
                    enrollment=c.get("enrollment", "enrolled"),
                    student_id=c.get("student_id", ""),
                    bank_code=c.get("bank_code", ""),
                    bank_status=c.get("bank_status", "active"),
                )
                for c in doc["cards"]
            ],
            signing_key=signing,
            public_key=public,
            merchants=[MerchantAccount(**m) for m in doc.get("merchants", [])],
        )

    def terminals_of(self, school_id: str, kind: str) -> list[TerminalInfo]:
        return [t for t in self.terminals if t.school_id == school_id and t.kind == kind]

    def cards_of(self, school_id: str) -> list[CardCredential]:
        return [c for c in self.cards if c.school_id == school_id]
