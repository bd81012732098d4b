"""Offline store-and-forward (DESIGN §4, §9): booking what a terminal did while it could not
reach the hub.

An uploaded transaction is a record of what already happened, not a request. So:

- the same (terminal, serial) is booked once, ever: a second upload answers DUPLICATE and
  changes nothing (the keys are kept for good and reloaded at start);
- a chip record's cryptogram is checked with `tap_time = occurred_at`; its ATC must be unique
  for that card among offline records (never declined for being older than the card's
  counter); the card's live counter moves up to it, so the ATC cannot be replayed online;
- a QR record's Ed25519 signature (what the terminal checked offline) and MAC are checked, the
  code must have been valid when it was scanned (`occurred_at` before its expiry), and its
  nonce is booked once, ever;
- an unknown card, a credential that does not check out, or a card of another school is
  REJECTED with a reason: nothing is booked, and a later upload of that serial is checked again;
- a purchase moves the money wallet → merchant even when the wallet cannot cover it: the
  wallet goes below zero: that is the debt. A result's `debt_fen` is how far below zero the wallet
  is after that purchase; the card office sees each wallet's debt with the records that caused it
  (AdminService.ListWalletDebts);
- a gate pass updates the card's presence, unless the hub has seen a later pass already.

A record made with a card that was blocked (lost, frozen, …), or of a student who is not
enrolled, is BOOKED all the same, and its result carries the reason the online path would have
given (CARD_REPORTED_LOST, CARD_FROZEN, STUDENT_SUSPENDED, ...) so the terminal and the card
office see it. Why book it: the terminal accepted the card — with an old copy of the blocklist,
or none — and the meal was served or the gate opened; the record is a fact. Rejecting it would
silently move the loss to the canteen and leave the ledger disagreeing with what happened. Who
bears it (the holder, before or after the loss report was made) is the card office's decision,
and a correction is a new transfer, as everywhere in the ledger.

`book_batch` runs with no await inside, like `Campus.authorize`: on the hub's one event loop no
two bookings interleave. The Ed25519 checks (≈0.1 ms each) are made before it, outside the
atomic step, so that a 500-record batch does not stall the loop in one piece.
"""

from __future__ import annotations

import enum
import hmac
from dataclasses import dataclass, field

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from onecard_client.credentials import QR_MAX_LIFETIME_MS, chip_cryptogram, qr_mac, verify_qr_signature
from onecard_hub.domain.campus import (
    CLOCK_SKEW_MS,
    Campus,
    ChipCredential,
    Credential,
    QrCredential,
    holder_refusal,
)
from onecard_hub.domain.clock import business_day
from onecard_hub.domain.decisions import APPROVED, DeclineReason
from onecard_hub.domain.ledger import Transfer, TransferKind
from onecard_hub.domain.model import Card, Presence, Scene, Student, Terminal


class OfflineOutcome(enum.IntEnum):
    """Numbers match onecard.auth.v1.OfflineOutcome."""

    BOOKED = 1
    DUPLICATE = 2
    REJECTED = 3


BOOKED = int(OfflineOutcome.BOOKED)


@dataclass(frozen=True, slots=True)
class OfflineTransaction:
    """One validated record of an upload."""

    serial: int
    scene: Scene
    credential: Credential
    amount_fen: int
    occurred_ms: int

    @property
    def card_no(self) -> str:
        cred = self.credential
        return cred.card_no if isinstance(cred, ChipCredential) else cred.token.card_no


@dataclass(frozen=True, slots=True)
class OfflineResult:
    serial: int
    outcome: OfflineOutcome
    reason: DeclineReason = APPROVED
    debt_fen: int = 0


@dataclass(frozen=True, slots=True)
class OfflineRecord:
    """What the store keeps of one booked or rejected record (table offline_transactions)."""

    terminal_id: str
    serial: int
    card_no: str
    student_id: str
    atc: int
    qr_nonce: bytes
    scene: int
    amount_fen: int
    occurred_ms: int
    booked_ms: int
    outcome: int
    reason: int
    debt_fen: int
    balance_after_fen: int
    request_id: str

    @property
    def ref(self) -> str:
        return offline_ref(self.terminal_id, self.serial)


def offline_ref(terminal_id: str, serial: int) -> str:
    """How people name an offline record: terminal id and serial, "T-1#42"."""
    return f"{terminal_id}#{serial}"


@dataclass(slots=True)
class Debt:
    """A wallet below zero and the offline records that took it there."""

    student: Student
    card_no: str
    refs: list[str] = field(default_factory=list)

    @property
    def debt_fen(self) -> int:
        return max(0, -self.student.wallet.balance_fen)


@dataclass(slots=True)
class Booking:
    """What one batch changed, for the journal, and what to answer."""

    results: list[OfflineResult] = field(default_factory=list)
    records: list[OfflineRecord] = field(default_factory=list)
    transfers: list[Transfer] = field(default_factory=list)
    cards: dict[str, Card] = field(default_factory=dict)  # cards whose counter or presence moved


class OfflineBook:
    """Every booked offline record's keys, for good; and the wallets' debts."""

    def __init__(self) -> None:
        self.serials: dict[str, set[int]] = {}  # terminal_id → booked serials
        self.chip_counters: set[tuple[str, int]] = set()  # (card_no, atc) booked offline
        self.qr_nonces: set[bytes] = set()  # card_no + nonce booked offline
        self.debts: dict[str, Debt] = {}  # student_id → debt

    def is_booked(self, terminal_id: str, serial: int) -> bool:
        return serial in self.serials.get(terminal_id, ())

    def remember(self, record: OfflineRecord, campus: Campus) -> None:
        """Takes in a booked record (while booking, and from the store at start)."""
        self.serials.setdefault(record.terminal_id, set()).add(record.serial)
        if record.qr_nonce:
            self.qr_nonces.add(record.card_no.encode() + record.qr_nonce)
        else:
            self.chip_counters.add((record.card_no, record.atc))
        student = campus.students.get(record.student_id)
        if record.debt_fen > 0 and student is not None:
            debt = self.debts.get(record.student_id)
            if debt is None or record.balance_after_fen + record.amount_fen >= 0:
                # The wallet was not below zero before this record: a new debt starts here.
                debt = self.debts[record.student_id] = Debt(student, record.card_no)
            debt.card_no = record.card_no
            debt.refs.append(record.ref)

    def debts_of(self, school_id: str | None) -> list[Debt]:
        """Wallets below zero now (of one school, or of all), by student id."""
        found = [
            d
            for d in self.debts.values()
            if d.debt_fen > 0 and (school_id is None or d.student.school_id == school_id)
        ]
        return sorted(found, key=lambda d: d.student.student_id)


def signature_valid(public_key: Ed25519PublicKey, tx: OfflineTransaction) -> bool:
    """The offline QR check (Ed25519); chip records have nothing to check here."""
    cred = tx.credential
    return not isinstance(cred, QrCredential) or verify_qr_signature(public_key, cred.token)


def book_batch(
    campus: Campus,
    book: OfflineBook,
    terminal: Terminal,
    request_id: str,
    transactions: list[OfflineTransaction],
    signatures_valid: list[bool],
    now_ms: int,
) -> Booking:
    """Books a validated batch in order and applies it to the campus in memory."""
    booking = Booking()
    for tx, signature_ok in zip(transactions, signatures_valid, strict=True):
        if book.is_booked(terminal.terminal_id, tx.serial):
            booking.results.append(OfflineResult(tx.serial, OfflineOutcome.DUPLICATE))
            continue
        card = campus.cards.get(tx.card_no)
        reason = _refusal(campus, book, terminal, tx, card, signature_ok)
        if reason is not APPROVED or card is None:
            booking.results.append(OfflineResult(tx.serial, OfflineOutcome.REJECTED, reason))
            booking.records.append(_record(terminal, request_id, tx, card, now_ms, reason, 0, 0))
            continue
        debt, balance_after = _apply(campus, terminal, request_id, tx, card, now_ms, booking)
        flag = _flag(card)
        record = _record(terminal, request_id, tx, card, now_ms, flag, debt, balance_after, booked=True)
        book.remember(record, campus)
        booking.records.append(record)
        booking.results.append(OfflineResult(tx.serial, OfflineOutcome.BOOKED, flag, debt))
    return booking


def _refusal(
    campus: Campus,
    book: OfflineBook,
    terminal: Terminal,
    tx: OfflineTransaction,
    card: Card | None,
    signature_ok: bool,
) -> DeclineReason:
    if card is None:
        return DeclineReason.CARD_UNKNOWN
    cred = tx.credential
    if isinstance(cred, ChipCredential):
        expected = chip_cryptogram(
            card.card_key,
            card_no=card.card_no,
            atc=cred.atc,
            terminal_id=terminal.terminal_id,
            scene=int(tx.scene),
            amount_fen=tx.amount_fen,
            tap_time_ms=tx.occurred_ms,
        )
        if not hmac.compare_digest(expected, cred.cryptogram):
            return DeclineReason.CREDENTIAL_INVALID
        if (card.card_no, cred.atc) in book.chip_counters:
            return DeclineReason.COUNTER_REPLAYED
    else:
        token = cred.token
        if not signature_ok or not hmac.compare_digest(qr_mac(card.ecard_key, token.payload), token.mac):
            return DeclineReason.CREDENTIAL_INVALID
        if not 0 <= token.expires_ms - token.issued_ms <= QR_MAX_LIFETIME_MS:
            return DeclineReason.CREDENTIAL_INVALID
        if tx.occurred_ms >= token.expires_ms:
            return DeclineReason.QR_EXPIRED
        if tx.occurred_ms < token.issued_ms - CLOCK_SKEW_MS:
            return DeclineReason.CLOCK_SKEW
        key = card.card_no.encode() + token.nonce
        if key in book.qr_nonces or key in campus.used_nonces:
            return DeclineReason.QR_REPLAYED
    if card.student.school_id != terminal.school_id:
        return DeclineReason.CARD_OTHER_SCHOOL
    return APPROVED


def _flag(card: Card) -> DeclineReason:
    """What the online path would have declined this card for (booked all the same)."""
    return holder_refusal(card, card.student.school_id, qr=False)


def _apply(
    campus: Campus,
    terminal: Terminal,
    request_id: str,
    tx: OfflineTransaction,
    card: Card,
    now_ms: int,
    booking: Booking,
) -> tuple[int, int]:
    """Applies a booked record; returns (debt it left, wallet balance after)."""
    cred = tx.credential
    if isinstance(cred, ChipCredential):
        if cred.atc > card.atc:
            card.atc = cred.atc
            booking.cards[card.card_no] = card
    else:
        token = cred.token
        if token.expires_ms > now_ms:  # still valid: an online scan of the same code is a replay
            campus.used_nonces[card.card_no.encode() + token.nonce] = token.expires_ms
    wallet = card.student.wallet
    if tx.scene is not Scene.CANTEEN_PURCHASE:
        if tx.occurred_ms >= card.presence_ms:
            card.presence = Presence.INSIDE if tx.scene is Scene.GATE_ENTRY else Presence.OUTSIDE
            card.presence_ms = tx.occurred_ms
            booking.cards[card.card_no] = card
        return 0, wallet.balance_fen
    booking.transfers.append(
        campus.ledger.post(
            wallet.account,
            campus.ledger.accounts[terminal.merchant_account_id],
            tx.amount_fen,
            TransferKind.OFFLINE_PURCHASE,
            caller=terminal.terminal_id,
            request_id=request_id,
            origin_request_id=offline_ref(terminal.terminal_id, tx.serial),
            created_ms=now_ms,
        )
    )
    wallet.roll_to(business_day(now_ms))
    if business_day(tx.occurred_ms) == wallet.day:
        wallet.spent_today_fen += tx.amount_fen
    after = wallet.balance_fen
    return max(0, -after), after


def _record(
    terminal: Terminal,
    request_id: str,
    tx: OfflineTransaction,
    card: Card | None,
    now_ms: int,
    reason: DeclineReason,
    debt_fen: int,
    balance_after_fen: int,
    *,
    booked: bool = False,
) -> OfflineRecord:
    cred = tx.credential
    return OfflineRecord(
        terminal_id=terminal.terminal_id,
        serial=tx.serial,
        card_no=tx.card_no,
        student_id=card.student.student_id if card is not None else "",
        atc=cred.atc if isinstance(cred, ChipCredential) else 0,
        qr_nonce=cred.token.nonce if isinstance(cred, QrCredential) else b"",
        scene=int(tx.scene),
        amount_fen=tx.amount_fen,
        occurred_ms=tx.occurred_ms,
        booked_ms=now_ms,
        outcome=int(OfflineOutcome.BOOKED if booked else OfflineOutcome.REJECTED),
        reason=int(reason),
        debt_fen=debt_fen,
        balance_after_fen=balance_after_fen,
        request_id=request_id,
    )
