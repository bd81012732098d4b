"""The campus in memory, and the rules that decide a tap or scan (DESIGN §3, §4).

`Campus.authorize` runs with no await inside, so on the hub's single event loop no two
decisions interleave: a decision reads and changes the state in one step, and the
service makes it durable before anyone is answered.
"""

from __future__ import annotations

import hmac
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from onecard_client.credentials import QR_MAX_LIFETIME_MS, QrToken, chip_cryptogram, qr_mac
from onecard_hub.domain.blocklist import Blocklist, BlocklistChange, blocks
from onecard_hub.domain.clock import business_day, local_minute_of_day
from onecard_hub.domain.decisions import APPROVED, DeclineReason
from onecard_hub.domain.errors import FailedPrecondition, PermissionDenied
from onecard_hub.domain.ledger import Account, Ledger, Transfer, TransferKind
from onecard_hub.domain.misuse import MisuseSignal, MisuseWatch
from onecard_hub.domain.model import (
    SCENES_BY_KIND,
    AntiPassback,
    Card,
    CardStatus,
    Enrollment,
    MealWindow,
    Operator,
    Presence,
    Scene,
    School,
    Student,
    Terminal,
    Wallet,
)
from onecard_hub.domain.on_demand import OnDemand

# How far a terminal's tap time may be from the hub's clock (in business time).
CLOCK_SKEW_MS = 5 * 60_000

PinHasher = Callable[[str, str], bytes]


@dataclass(frozen=True, slots=True)
class ChipCredential:
    card_no: str
    atc: int
    cryptogram: bytes


@dataclass(frozen=True, slots=True)
class QrCredential:
    token: QrToken


Credential = ChipCredential | QrCredential


@dataclass(frozen=True, slots=True)
class Tap:
    request_id: str
    terminal: Terminal
    scene: Scene
    credential: Credential
    amount_fen: int
    pin: str
    tap_time_ms: int

    @property
    def card_no(self) -> str:
        cred = self.credential
        return cred.card_no if isinstance(cred, ChipCredential) else cred.token.card_no


@dataclass(slots=True)
class Purchase:
    """An approved canteen payment, kept so that it can be refunded or reversed."""

    wallet: Wallet
    merchant: Account
    amount_fen: int
    day: int
    meal_window: str
    refunded_fen: int = 0
    reversed: bool = False

    @property
    def remaining_fen(self) -> int:
        return 0 if self.reversed else self.amount_fen - self.refunded_fen


@dataclass(slots=True)
class GatePass:
    """An approved gate passage, kept so that a reversal can restore the presence."""

    card: Card
    previous: Presence
    reversed: bool = False


@dataclass(slots=True)
class TapResult:
    reason: DeclineReason
    card: Card | None
    transfer: Transfer | None = None
    purchase: Purchase | None = None
    gate_pass: GatePass | None = None
    card_changed: bool = False  # counter, PIN failures or presence changed
    qr_nonce: bytes = b""
    qr_expires_ms: int = 0
    meal_window: str = ""
    misuse: MisuseSignal | None = None  # the card used elsewhere too close in time (domain/misuse.py)

    @property
    def approved(self) -> bool:
        return self.reason is APPROVED


@dataclass(frozen=True, slots=True)
class Reversal:
    reversed_fen: int
    transfer: Transfer | None
    card_changed: Card | None


class Campus:
    """Hot state: schools, students, cards, terminals, wallets, counters, used QR nonces."""

    def __init__(self, ledger: Ledger, pin_hasher: PinHasher) -> None:
        self.ledger = ledger
        self.pin_hasher = pin_hasher
        self.schools: dict[str, School] = {}
        self.students: dict[str, Student] = {}
        self.cards: dict[str, Card] = {}
        self.terminals: dict[str, Terminal] = {}
        self.operators: dict[str, Operator] = {}
        # card_no + nonce → expiry (ms); a nonce is remembered until its code expires.
        self.used_nonces: dict[bytes, int] = {}
        # school_id → the cards its terminals must refuse (see domain/blocklist.py).
        self.blocklists: dict[str, Blocklist] = {}
        # The last approved tap per card, and the misuse signals raised (see domain/misuse.py).
        self.misuse = MisuseWatch()

    # -- card status and the blocklist ---------------------------------------------

    def build_blocklists(
        self, changes: Iterable[BlocklistChange] = (), blocked: Iterable[tuple[str, str]] | None = None
    ) -> None:
        """Makes every school's blocklist from the cards' statuses — or from `blocked`, the
        (card_no, school_id) of every card whose status blocks it, as the store reads them at start
        while the cards are not in memory — and its version and recent changes from the change log
        read back from the store (at start)."""
        self.blocklists = {school_id: Blocklist(school_id) for school_id in self.schools}
        if blocked is None:
            blocked = (
                (card.card_no, card.student.school_id) for card in self.cards.values() if blocks(card.status)
            )
        for card_no, school_id in blocked:
            self.blocklist(school_id).card_nos.add(card_no)
        by_school: dict[str, list[BlocklistChange]] = {}
        for change in changes:
            by_school.setdefault(change.school_id, []).append(change)
        for school_id in set(self.blocklists) | set(by_school):
            logged = sorted(by_school.get(school_id, ()), key=lambda c: c.version)
            self.blocklist(school_id).restore(logged)

    def blocklist(self, school_id: str) -> Blocklist:
        found = self.blocklists.get(school_id)
        if found is None:
            found = self.blocklists[school_id] = Blocklist(school_id)
        return found

    def set_card_status(self, card_no: str, status: CardStatus, *, at_ms: int = 0) -> list[BlocklistChange]:
        """The one way a card's identity status changes (loss report, unlock, replacement, a new
        card — add it to `cards`, then call this with its status — …): the card's school's
        blocklist follows. Returns the blocklist changes (none, or one with the school's next
        version) that the caller MUST add to the same writer batch as the status change
        (`Batch.blocklist`): the live feed sends them to terminals once that batch is durable."""
        card = self.cards[card_no]
        card.status = status
        change = self.blocklist(card.student.school_id).update(card_no, status, at_ms)
        return [] if change is None else [change]

    def move_student(self, student: Student, school_id: str, *, at_ms: int = 0) -> list[BlocklistChange]:
        """转学: the student, their wallet and their cards now belong to `school_id`. Each school's
        blocklist follows: a blocked card of the student leaves the old school's list and joins the
        new one's (updating with ACTIVE is how a card leaves a list). Returns the blocklist changes
        to add to the same writer batch (`Batch.blocklist`), as `set_card_status` does."""
        old_school = student.school_id
        student.school_id = school_id
        changes: list[BlocklistChange] = []
        for card in self.cards_of(student):
            for change in (
                self.blocklist(old_school).update(card.card_no, CardStatus.ACTIVE, at_ms),
                self.blocklist(school_id).update(card.card_no, card.status, at_ms),
            ):
                if change is not None:
                    changes.append(change)
        return changes

    def cards_of(self, student: Student) -> list[Card]:
        """The student's cards, in the order they were issued. (When the cards are built on first
        use, domain/on_demand.py, a student in memory has all their cards in memory beside them:
        looking among those is enough.)"""
        return [card for card in self.held_cards() if card.student is student]

    def held_cards(self) -> Iterable[Card]:
        """The cards in memory, in the order they came in; builds none (domain/on_demand.py)."""
        cards = self.cards
        return cards.in_memory() if isinstance(cards, OnDemand) else cards.values()

    # -- the critical path ---------------------------------------------------------

    def check_scene(self, terminal: Terminal, scene: Scene) -> None:
        if not terminal.enabled:
            raise PermissionDenied("terminal is disabled", reason="TERMINAL_DISABLED")
        if scene not in SCENES_BY_KIND[terminal.kind]:
            raise PermissionDenied(
                f"a {terminal.kind.name.lower()} terminal cannot serve {scene.name.lower()}",
                reason="SCENE_NOT_ALLOWED",
            )

    def authorize(self, tap: Tap, now_ms: int) -> TapResult:
        """Decides a tap and applies what it changes to the in-memory state."""
        self.check_scene(tap.terminal, tap.scene)
        card = self.cards.get(tap.card_no)
        if tap.scene not in self.schools[tap.terminal.school_id].live_scenes:
            return TapResult(DeclineReason.SCENE_NOT_LIVE, card)
        if card is None:
            return TapResult(DeclineReason.CARD_UNKNOWN, None)
        result = self.check_credential(card, tap, now_ms)
        if result.reason is not APPROVED:
            return result
        refusal = holder_refusal(card, tap.terminal.school_id, qr=isinstance(tap.credential, QrCredential))
        if refusal is not APPROVED:
            result.reason = refusal
        elif tap.scene is Scene.CANTEEN_PURCHASE:
            self._purchase(card, tap, now_ms, result)
        else:
            self._pass_gate(card, tap, now_ms, result)
        if result.reason is APPROVED or result.reason is DeclineReason.CARD_OTHER_SCHOOL:
            # A signal, never a decline: the card itself was here (its credential checked out).
            result.misuse = self.misuse.observe(card, tap.terminal, tap.scene, now_ms)
        return result

    def check_credential(self, card: Card, tap: Tap, now_ms: int) -> TapResult:
        """Checks a chip cryptogram (its counter moves on) or an e-card QR code (its nonce is used
        up); every scene calls it, then `holder_refusal`."""
        cred = tap.credential
        if isinstance(cred, ChipCredential):
            expected = chip_cryptogram(
                card.card_key,
                card_no=card.card_no,
                atc=cred.atc,
                terminal_id=tap.terminal.terminal_id,
                scene=int(tap.scene),
                amount_fen=tap.amount_fen,
                tap_time_ms=tap.tap_time_ms,
            )
            if not hmac.compare_digest(expected, cred.cryptogram):
                return TapResult(DeclineReason.CREDENTIAL_INVALID, card)
            if abs(tap.tap_time_ms - now_ms) > CLOCK_SKEW_MS:
                return TapResult(DeclineReason.CLOCK_SKEW, card)
            if cred.atc <= card.atc:
                return TapResult(DeclineReason.COUNTER_REPLAYED, card)
            card.atc = cred.atc
            return TapResult(APPROVED, card, card_changed=True)
        token = cred.token
        if not hmac.compare_digest(qr_mac(card.ecard_key, token.payload), token.mac):
            return TapResult(DeclineReason.CREDENTIAL_INVALID, card)
        if token.expires_ms - token.issued_ms > QR_MAX_LIFETIME_MS or token.expires_ms < token.issued_ms:
            return TapResult(DeclineReason.CREDENTIAL_INVALID, card)
        if token.expires_ms <= now_ms:
            return TapResult(DeclineReason.QR_EXPIRED, card)
        if token.issued_ms > now_ms + CLOCK_SKEW_MS:
            return TapResult(DeclineReason.CLOCK_SKEW, card)
        key = card.card_no.encode() + token.nonce
        if key in self.used_nonces:
            return TapResult(DeclineReason.QR_REPLAYED, card)
        self.used_nonces[key] = token.expires_ms
        return TapResult(APPROVED, card, qr_nonce=token.nonce, qr_expires_ms=token.expires_ms)

    def _pass_gate(self, card: Card, tap: Tap, now_ms: int, result: TapResult) -> None:
        policy = self.schools[tap.terminal.school_id].policy
        group = policy.gate_groups.get(tap.terminal.gate_group)
        if group is not None:
            minute = local_minute_of_day(now_ms)
            windows = group.windows.get(card.student.group, ())
            if not any(w.contains(minute) for w in windows):
                result.reason = DeclineReason.OUTSIDE_TIME_WINDOW
                return
            entering = tap.scene is Scene.GATE_ENTRY
            if group.anti_passback is AntiPassback.HARD and card.presence is (
                Presence.INSIDE if entering else Presence.OUTSIDE
            ):
                result.reason = DeclineReason.ANTI_PASSBACK
                return
        result.gate_pass = GatePass(card, card.presence)
        card.presence = Presence.INSIDE if tap.scene is Scene.GATE_ENTRY else Presence.OUTSIDE
        card.presence_ms = now_ms
        result.card_changed = True

    def _purchase(self, card: Card, tap: Tap, now_ms: int, result: TapResult) -> None:
        policy = self.schools[tap.terminal.school_id].policy
        meal = _meal_window(policy.meal_windows, local_minute_of_day(now_ms))
        if meal is None:
            result.reason = DeclineReason.OUTSIDE_MEAL_WINDOW
            return
        result.meal_window = meal.name
        amount = tap.amount_fen
        if amount > policy.pin_free_limit_fen:
            if card.pin_failures >= policy.pin_max_failures:
                result.reason = DeclineReason.PIN_LOCKED
                return
            if not tap.pin:
                result.reason = DeclineReason.PIN_REQUIRED
                return
            if not hmac.compare_digest(self.pin_hasher(card.card_no, tap.pin), card.pin_hash):
                card.pin_failures += 1
                result.card_changed = True
                result.reason = DeclineReason.PIN_INCORRECT
                return
            if card.pin_failures:
                card.pin_failures = 0
                result.card_changed = True
        wallet = card.student.wallet
        day = business_day(now_ms)
        wallet.roll_to(day)
        if wallet.spent_today_fen + amount > policy.daily_limit_fen:
            result.reason = DeclineReason.DAILY_LIMIT_EXCEEDED
            return
        if wallet.meal_counts.get(meal.name, 0) >= meal.max_payments:
            result.reason = DeclineReason.MEAL_COUNT_EXCEEDED
            return
        if wallet.balance_fen < amount:
            result.reason = DeclineReason.INSUFFICIENT_FUNDS
            return
        merchant = self.ledger.accounts[tap.terminal.merchant_account_id]
        result.transfer = self.ledger.post(
            wallet.account,
            merchant,
            amount,
            TransferKind.PURCHASE,
            caller=tap.terminal.terminal_id,
            request_id=tap.request_id,
            created_ms=now_ms,
        )
        wallet.spent_today_fen += amount
        wallet.meal_counts[meal.name] = wallet.meal_counts.get(meal.name, 0) + 1
        result.purchase = Purchase(wallet, merchant, amount, day, meal.name)

    # -- undoing -------------------------------------------------------------------

    def refund(
        self,
        terminal: Terminal,
        request_id: str,
        original_request_id: str,
        purchase: Purchase,
        amount_fen: int,
        now_ms: int,
    ) -> Transfer:
        """Gives back part or all of a purchase; never more than what is left of it."""
        if purchase.reversed:
            raise FailedPrecondition("the purchase was reversed", reason="NOT_REFUNDABLE")
        if amount_fen > purchase.remaining_fen:
            raise FailedPrecondition(
                f"amount_fen: at most {purchase.remaining_fen} fen is left to refund",
                reason="REFUND_EXCEEDS_REMAINING",
            )
        purchase.refunded_fen += amount_fen
        return self.ledger.post(
            purchase.merchant,
            purchase.wallet.account,
            amount_fen,
            TransferKind.REFUND,
            caller=terminal.terminal_id,
            request_id=request_id,
            origin_request_id=original_request_id,
            created_ms=now_ms,
        )

    def reverse(
        self,
        terminal: Terminal,
        request_id: str,
        original_request_id: str,
        undo: Purchase | GatePass | None,
        now_ms: int,
    ) -> Reversal:
        """Undoes an approval the terminal never got an answer for (冲正)."""
        if undo is None or undo.reversed:
            return Reversal(0, None, None)
        undo.reversed = True
        if isinstance(undo, GatePass):
            undo.card.presence = undo.previous
            return Reversal(0, None, undo.card)
        amount = undo.amount_fen - undo.refunded_fen
        wallet = undo.wallet
        if wallet.day == undo.day:
            wallet.spent_today_fen -= undo.amount_fen
            count = wallet.meal_counts.get(undo.meal_window, 0)
            if count:
                wallet.meal_counts[undo.meal_window] = count - 1
        if amount <= 0:
            return Reversal(0, None, None)
        transfer = self.ledger.post(
            undo.merchant,
            wallet.account,
            amount,
            TransferKind.REVERSAL,
            caller=terminal.terminal_id,
            request_id=request_id,
            origin_request_id=original_request_id,
            created_ms=now_ms,
        )
        return Reversal(amount, transfer, None)

    # -- housekeeping --------------------------------------------------------------

    def forget_expired_nonces(self, now_ms: int) -> int:
        expired = [k for k, exp in self.used_nonces.items() if exp <= now_ms]
        for key in expired:
            del self.used_nonces[key]
        return len(expired)


def _meal_window(windows: tuple[MealWindow, ...], minute: int) -> MealWindow | None:
    for meal in windows:
        if meal.window.contains(minute):
            return meal
    return None


_CARD_REFUSALS: dict[CardStatus, DeclineReason] = {
    CardStatus.LOST: DeclineReason.CARD_REPORTED_LOST,
    CardStatus.FROZEN: DeclineReason.CARD_FROZEN,
    CardStatus.REPLACED: DeclineReason.CARD_REPLACED,
    CardStatus.NOT_ENABLED: DeclineReason.CARD_INACTIVE,
    CardStatus.CANCELLED: DeclineReason.CARD_INACTIVE,
}
_STUDENT_REFUSALS: dict[Enrollment, DeclineReason] = {
    Enrollment.SUSPENDED: DeclineReason.STUDENT_SUSPENDED,
    Enrollment.GRADUATED: DeclineReason.STUDENT_GRADUATED,
    Enrollment.WITHDRAWN: DeclineReason.STUDENT_WITHDRAWN,
}


def holder_refusal(card: Card, school_id: str, *, qr: bool) -> DeclineReason:
    """Why this card may not be used at a terminal of `school_id`, or APPROVED.

    One rule for every scene (gate, canteen, library, exam): the card's identity function
    is active (and its e-card, for a QR scan), the card belongs to this school, and its
    student is enrolled (学籍).
    """
    if card.status is not CardStatus.ACTIVE:
        return _CARD_REFUSALS.get(card.status, DeclineReason.CARD_INACTIVE)
    if qr and (card.ecard_suspended or not card.ecard_issued):  # no e-card yet: as good as suspended
        return DeclineReason.ECARD_SUSPENDED
    student = card.student
    if student.school_id != school_id:
        return DeclineReason.CARD_OTHER_SCHOOL
    if student.enrollment is not Enrollment.ENROLLED:
        return _STUDENT_REFUSALS.get(student.enrollment, DeclineReason.STUDENT_NOT_ENROLLED)
    return APPROVED
