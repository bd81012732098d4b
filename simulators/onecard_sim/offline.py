"""Store-and-forward: what a terminal decides on its own while it cannot reach the hub.

The rules come from the terminal's last configuration download (TerminalService.GetConfig):
the school's blocklist, the e-card issuer's public key (a QR code's Ed25519 signature is checked
offline, its MAC only the hub can check), and the offline limits — largest single payment, spend
per card per business day on this terminal, and the number of transactions the terminal may
hold. The terminal cannot check a PIN or a chip cryptogram offline (it holds neither the PIN hash
nor the card keys), so amounts above the offline per-payment cap are refused.

An approved transaction gets the terminal's own serial (increasing, never reused) and is kept in
`OfflineBook` until uploaded in batches of at most 500 (UploadOfflineBatch). Every batch sent
stays in `uploaded` so it can be sent again (`CanteenPos.reupload_all`) to show that the hub
books nothing twice.
"""

from __future__ import annotations

import enum
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from onecard.auth.v1 import authorization_service_pb2 as auth_pb
from onecard.terminal.v1 import terminal_service_pb2 as term_pb
from onecard_client.credentials import MalformedToken, parse_qr_token, verify_qr_signature

__all__ = ["MAX_BATCH", "OfflineBook", "OfflineRules", "Refusal", "business_day"]

MAX_BATCH = 500  # UploadOfflineBatchRequest takes 1 to 500 transactions
_DAY_MS = 86_400_000
_CST_MS = 8 * 3_600_000


def business_day(hub_ms: int) -> int:
    """Days since 1970-01-01 in China Standard Time: offline day caps roll over at local midnight."""
    return (hub_ms + _CST_MS) // _DAY_MS


class Refusal(enum.StrEnum):
    """Why a terminal refused a tap on its local rules."""

    NO_CONFIG = "NO_CONFIG"  # never downloaded a configuration: nothing to decide with
    BLOCKLISTED = "BLOCKLISTED"
    QR_MALFORMED = "QR_MALFORMED"
    QR_SIGNATURE = "QR_SIGNATURE"
    QR_EXPIRED = "QR_EXPIRED"
    QR_REUSED = "QR_REUSED"
    OVER_PAYMENT_CAP = "OVER_PAYMENT_CAP"
    OVER_DAY_CAP = "OVER_DAY_CAP"
    STORE_FULL = "STORE_FULL"


@dataclass(frozen=True, slots=True)
class OfflineRules:
    """The local rules, taken from one configuration download."""

    blocked: frozenset[str]
    blocklist_version: int
    public_key: Ed25519PublicKey | None
    per_payment_fen: int
    per_card_day_fen: int
    max_stored: int

    @classmethod
    def from_config(cls, config: term_pb.GetConfigResponse) -> OfflineRules:
        key = None
        if len(config.ecard_public_key) == 32:
            key = Ed25519PublicKey.from_public_bytes(config.ecard_public_key)
        return cls(
            blocked=frozenset(config.blocked_card_nos),
            blocklist_version=config.blocklist_version,
            public_key=key,
            per_payment_fen=config.offline.per_payment_fen,
            per_card_day_fen=config.offline.per_card_day_fen,
            max_stored=config.offline.max_stored,
        )


class OfflineBook:
    """A terminal's offline transactions: serials, local checks, what is stored and what was sent."""

    def __init__(self, first_serial: int = 1) -> None:
        if first_serial < 1:
            raise ValueError("serials start at 1 or above")
        self.rules: OfflineRules | None = None
        self.next_serial = first_serial
        self.stored: list[auth_pb.OfflineTransaction] = []  # approved, not yet uploaded
        self.uploaded: list[list[auth_pb.OfflineTransaction]] = []  # every batch sent, in order
        self.refusals: Counter[str] = Counter()
        self.approved = 0
        self._spent: dict[tuple[str, int], int] = {}  # (card, business day) → fen approved offline
        self._nonces: set[bytes] = set()  # QR codes this terminal accepted (single use, locally)

    def check(self, card_no: str, amount_fen: int, hub_ms: int, qr_text: str | None = None) -> Refusal | None:
        """None when local rules allow the tap; otherwise why not (counted in `refusals`).

        For a QR scan, `card_no` is ignored and read from the token.
        """
        refusal, _ = self._check(card_no, amount_fen, hub_ms, qr_text)
        if refusal is not None:
            self.refusals[refusal.value] += 1
        return refusal

    def _check(
        self, card_no: str, amount_fen: int, hub_ms: int, qr_text: str | None
    ) -> tuple[Refusal | None, str]:
        rules = self.rules
        if rules is None:
            return Refusal.NO_CONFIG, card_no
        if qr_text is not None:
            try:
                token = parse_qr_token(qr_text)
            except MalformedToken:
                return Refusal.QR_MALFORMED, card_no
            card_no = token.card_no
            if rules.public_key is None or not verify_qr_signature(rules.public_key, token):
                return Refusal.QR_SIGNATURE, card_no
            if token.expires_ms <= hub_ms:
                return Refusal.QR_EXPIRED, card_no
            if card_no.encode() + token.nonce in self._nonces:
                return Refusal.QR_REUSED, card_no
        if card_no in rules.blocked:
            return Refusal.BLOCKLISTED, card_no
        if amount_fen > rules.per_payment_fen:
            return Refusal.OVER_PAYMENT_CAP, card_no
        if self._spent.get((card_no, business_day(hub_ms)), 0) + amount_fen > rules.per_card_day_fen:
            return Refusal.OVER_DAY_CAP, card_no
        if len(self.stored) >= rules.max_stored:
            return Refusal.STORE_FULL, card_no
        return None, card_no

    def record(
        self,
        *,
        scene: int,
        card_no: str,
        amount_fen: int,
        occurred_ms: int,
        chip: auth_pb.ChipTap | None = None,
        qr_text: str | None = None,
    ) -> auth_pb.OfflineTransaction:
        """Stores an approved transaction under the next serial (after `check` allowed it)."""
        if (chip is None) == (qr_text is None):
            raise ValueError("an offline transaction has exactly one credential: chip or qr")
        txn = auth_pb.OfflineTransaction(serial=self.next_serial, scene=scene, amount_fen=amount_fen)  # type: ignore[arg-type]
        if chip is not None:
            txn.chip.CopyFrom(chip)
        else:
            assert qr_text is not None
            txn.qr.token = qr_text
            self._nonces.add(card_no.encode() + parse_qr_token(qr_text).nonce)
        txn.occurred_at.FromMilliseconds(occurred_ms)
        self.next_serial += 1
        self.stored.append(txn)
        self.approved += 1
        key = (card_no, business_day(occurred_ms))
        self._spent[key] = self._spent.get(key, 0) + amount_fen
        return txn

    def pending_batches(self, size: int = MAX_BATCH) -> list[list[auth_pb.OfflineTransaction]]:
        """The stored transactions cut into batches of at most `size`, oldest first."""
        if not 1 <= size <= MAX_BATCH:
            raise ValueError(f"batch size must be within 1..{MAX_BATCH}")
        return [self.stored[i : i + size] for i in range(0, len(self.stored), size)]

    def mark_uploaded(self, batch: Sequence[auth_pb.OfflineTransaction]) -> None:
        """The hub answered this batch: it leaves the store and joins `uploaded`."""
        sent = {t.serial for t in batch}
        self.stored = [t for t in self.stored if t.serial not in sent]
        self.uploaded.append(list(batch))
