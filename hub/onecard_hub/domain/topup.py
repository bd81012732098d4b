"""Top-up (圈存) from the holder's bank account into the campus wallet: the two-phase state machine,
the limits, auto top-up and change of bank — pure rules, no I/O (funds/ runs them).

    PENDING ──debit POSTED──────────────→ POSTED   (ledger: bank clearing → wallet)
       │ ────debit REJECTED / REVERSED──→ VOIDED   (nothing moved; the bank's reason)
       │ ────debit UNCERTAIN──→ reversal (冲正) retried with backoff + jitter:
       │         REVERSED / REJECTED (nothing to undo) → VOIDED
       │         no answer after `max_reversals` tries → MANUAL_REVIEW
    MANUAL_REVIEW ──operator──→ POSTED | VOIDED (checked against the bank when it answers)

The top-up's bank `transfer_id` is fixed when it is created and journaled before the debit is sent;
there is never a second debit for the same top-up (an uncertain one is only ever reversed).
"""

from __future__ import annotations

import enum
from collections.abc import Callable
from dataclasses import dataclass, field

from onecard_hub.domain.bank import BankOutcome, RejectReason, reversal_id_of
from onecard_hub.domain.errors import FailedPrecondition, InvalidArgument

MAX_TOPUP_FEN = 100_000  # ¥1,000 per top-up
MAX_DAILY_FEN = 200_000  # ¥2,000 per wallet and business day (top-ups not voided)
MAX_REVERSALS = 8  # reversal tries before MANUAL_REVIEW
MAX_NOTE_CHARS = 200
MAX_THRESHOLD_FEN = 100_000


class TopUpState(enum.StrEnum):
    PENDING = "pending"
    POSTED = "posted"
    VOIDED = "voided"
    MANUAL_REVIEW = "manual_review"

    @property
    def final(self) -> bool:
        return self in (TopUpState.POSTED, TopUpState.VOIDED)


class Origin(enum.StrEnum):
    KIOSK = "kiosk"
    OPERATOR = "operator"
    AUTO = "auto"


class Step(enum.StrEnum):
    """What to do next with a top-up after a bank answer."""

    POST = "post"  # credit the wallet, POSTED
    VOID = "void"  # nothing moved, VOIDED
    REVERSE = "reverse"  # send (again) the reversal
    REVIEW = "review"  # give up: MANUAL_REVIEW


@dataclass(slots=True)
class TopUp:
    topup_id: str
    student_id: str
    school_id: str
    card_no: str
    bank_code: str
    amount_fen: int
    origin: Origin
    business_date: str  # the bank's business date of the debit (YYYY-MM-DD)
    created_ms: int
    state: TopUpState = TopUpState.PENDING
    reason: str = ""
    reversals: int = 0
    updated_ms: int = 0
    debit_sent: bool = False  # in memory: the first debit went out in this process

    @property
    def transfer_id(self) -> str:
        return self.topup_id

    @property
    def reversal_id(self) -> str:
        return reversal_id_of(self.transfer_id)

    @property
    def counts_today(self) -> bool:
        return self.state is not TopUpState.VOIDED


def letters(n: int, width: int = 0) -> str:
    """`n` in base 26 with the letters A–Z (most significant first), left-padded with A to `width`."""
    out = ""
    while n:
        n, digit = divmod(n, 26)
        out = chr(65 + digit) + out
    return out.rjust(width, "A")


def topup_id(created_ms: int, serial: int) -> str:
    """`TU-<ms in letters>-<serial in letters>`: unique, sortable by time, short (the bank's transfer id
    limit is 64), and with no run of digits, so it may stand in an audit entry's details."""
    return f"TU-{letters(created_ms, 10)}-{letters(serial, 6)}"


def check_amount(amount_fen: int, today_fen: int, field: str = "amount_fen") -> None:
    """1 ≤ amount ≤ the per-top-up limit (INVALID_ARGUMENT); within the day's limit (FAILED_PRECONDITION)."""
    if amount_fen <= 0:
        raise InvalidArgument(field, "must be a positive number of fen")
    if amount_fen > MAX_TOPUP_FEN:
        raise InvalidArgument(field, f"at most {MAX_TOPUP_FEN} fen (¥{MAX_TOPUP_FEN // 100}) per top-up")
    left = max(MAX_DAILY_FEN - today_fen, 0)
    if amount_fen > left:
        raise FailedPrecondition(
            f"{field}: the day's top-up limit of {MAX_DAILY_FEN} fen leaves {left} fen",
            reason="LIMIT_EXCEEDED",
            field=field,
            metadata={"limit_fen": str(MAX_DAILY_FEN), "left_fen": str(left)},
        )


def after_debit(outcome: BankOutcome, reject: RejectReason) -> tuple[Step, str]:
    """The next step after the Debit's answer, and the reason recorded with it."""
    if outcome is BankOutcome.POSTED:
        return Step.POST, ""
    if outcome is BankOutcome.REJECTED:
        return Step.VOID, reject.value or "rejected"
    if outcome is BankOutcome.REVERSED:
        return Step.VOID, "reversed_before"
    if outcome is BankOutcome.NOT_FOUND:
        return Step.VOID, "account_not_found"
    return Step.REVERSE, ""  # UNCERTAIN (or an answer a debit cannot have): undo it


def after_reversal(
    outcome: BankOutcome, reversals: int, max_reversals: int = MAX_REVERSALS
) -> tuple[Step, str]:
    """After the `reversals`-th reversal try: VOID when the bank says nothing stays debited, REVERSE
    again while tries are left, else REVIEW."""
    if outcome is BankOutcome.REVERSED:
        return Step.VOID, "reversed"
    if outcome is BankOutcome.REJECTED:
        return Step.VOID, "rejected"  # the debit had been refused: nothing to undo
    if reversals >= max_reversals:
        return Step.REVIEW, f"no definite answer after {reversals} reversals"
    return Step.REVERSE, ""


def backoff_s(reversals: int, base_s: float, cap_s: float, jitter: float) -> float:
    """Exponential backoff with full jitter: a uniform draw (`jitter` in [0, 1)) below base·2^n, capped."""
    return min(cap_s, base_s * (2 ** max(reversals - 1, 0))) * (0.5 + jitter / 2)


def check_resolution(resolution: TopUpState, bank: BankOutcome) -> None:
    """An operator's resolution of a MANUAL_REVIEW top-up must agree with a bank that answered."""
    if bank is BankOutcome.UNCERTAIN:
        return  # the bank is unreachable: the operator's word (from the bank's own records) stands
    debited = bank is BankOutcome.POSTED
    if (resolution is TopUpState.POSTED) != debited:
        raise FailedPrecondition(
            f"resolution: the bank says the debit is {bank.value}",
            reason="BANK_DISAGREES",
            field="resolution",
            metadata={"bank_status": bank.value},
        )


def check_note(note: str) -> str:
    note = note.strip()
    if not note:
        raise InvalidArgument("note", "required: what was checked")
    if len(note) > MAX_NOTE_CHARS:
        raise InvalidArgument("note", f"at most {MAX_NOTE_CHARS} characters")
    if any(run >= 6 for run in _digit_runs(note)):
        raise InvalidArgument("note", "must not hold personal numbers (6 or more digits in a row)")
    return note


def _digit_runs(text: str) -> list[int]:
    runs, run = [], 0
    for ch in text:
        run = run + 1 if ch.isdigit() else 0
        runs.append(run)
    return runs


# -- auto top-up -------------------------------------------------------------------------------


@dataclass(slots=True)
class AutoTopUp:
    student_id: str
    enabled: bool
    threshold_fen: int
    amount_fen: int
    last_topup_id: str = ""
    last_failure: str = ""
    updated_ms: int = 0


def check_auto(threshold_fen: int, amount_fen: int, enabled: bool) -> None:
    if not enabled:
        return
    if threshold_fen <= 0 or threshold_fen > MAX_THRESHOLD_FEN:
        raise InvalidArgument("threshold_fen", f"between 1 and {MAX_THRESHOLD_FEN} fen")
    if amount_fen <= 0 or amount_fen > MAX_TOPUP_FEN:
        raise InvalidArgument("amount_fen", f"between 1 and {MAX_TOPUP_FEN} fen")


# -- change of bank ----------------------------------------------------------------------------


class ChangeState(enum.StrEnum):
    PENDING_CLOSE = "pending_close"  # the old account waits for its pending top-ups
    CLOSED = "closed"


@dataclass(slots=True)
class BankChange:
    student_id: str
    card_no: str
    old_bank_code: str
    new_bank_code: str
    created_ms: int
    state: ChangeState = ChangeState.PENDING_CLOSE
    paid_out_fen: int = 0
    updated_ms: int = 0


@dataclass(slots=True)
class LowBalanceWatch:
    """The purchase path's hook for auto top-up: `purchased` costs one dict lookup for a wallet
    without auto top-up. A wallet under its threshold is queued (bounded; at most once while queued
    or in flight); `wake` tells the background consumer (funds/auto_topup.py). Nothing here waits."""

    thresholds: dict[str, int] = field(default_factory=dict)  # student id → threshold (enabled only)
    waiting: dict[str, None] = field(default_factory=dict)  # queued student ids, in order
    busy: set[str] = field(default_factory=set)  # a top-up in flight
    capacity: int = 1024
    dropped: int = 0
    wake: Callable[[], None] = lambda: None

    def purchased(self, student_id: str, balance_fen: int) -> None:
        threshold = self.thresholds.get(student_id)
        if threshold is None or balance_fen >= threshold:
            return
        if student_id in self.waiting or student_id in self.busy:
            return
        if len(self.waiting) >= self.capacity:
            self.dropped += 1
            return
        self.waiting[student_id] = None
        self.wake()

    def take(self) -> str | None:
        """The next queued wallet, now in flight (`done` when its top-up is final)."""
        for student_id in self.waiting:
            del self.waiting[student_id]
            self.busy.add(student_id)
            return student_id
        return None

    def done(self, student_id: str) -> None:
        self.busy.discard(student_id)
