"""Rows the hub hands to a store, and the snapshot a store hands back at start.

These are plain data shared by every store backend (SQLite now, PostgreSQL later).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field, fields
from operator import attrgetter
from typing import Any, Generic, TypeVar

from onecard_hub.domain.blocklist import BlocklistChange
from onecard_hub.domain.ledger import Transfer
from onecard_hub.domain.misuse import MisuseSignal
from onecard_hub.domain.offline import OfflineRecord
from onecard_hub.store.campus_rows import CampusRows


@dataclass(frozen=True, slots=True)
class RequestRow:
    """One answered mutating call: its idempotency key, body fingerprint and response."""

    caller: str
    request_id: str
    method: str
    fingerprint: bytes
    response: bytes
    created_ms: int
    seq: int = 0  # authorization sequence number (Authorize only)
    card_no: str = ""
    scene: int = 0
    reason: int = -1  # DeclineReason number; 0 = approved; -1 = not a tap
    amount_fen: int = 0
    business_day: int = 0
    meal_window: str = ""
    qr_nonce: bytes = b""
    qr_expires_ms: int = 0
    origin_request_id: str = ""  # Refund/Reverse: the purchase's request_id
    outcome: int = 0  # Reverse: ReversalOutcome number


@dataclass(frozen=True, slots=True)
class CardStateRow:
    """The mutable counters of a card, as they were when the change was decided."""

    card_no: str
    atc: int
    pin_failures: int
    presence: int


@dataclass(frozen=True, slots=True)
class TerminalRow:
    terminal_id: str
    school_id: str
    kind: int
    location: str
    gate_group: str
    merchant_id: str
    enabled: bool


@dataclass(frozen=True, slots=True)
class TerminalStatusRow:
    """What a terminal's last heartbeat said."""

    terminal_id: str
    last_seen_ms: int
    software_version: str
    offline_pending: int


@dataclass(slots=True)
class Batch:
    """Everything one group commit writes, in one transaction."""

    requests: list[RequestRow] = field(default_factory=list)
    transfers: list[Transfer] = field(default_factory=list)
    card_states: list[CardStateRow] = field(default_factory=list)
    terminals: list[TerminalRow] = field(default_factory=list)
    terminal_status: list[TerminalStatusRow] = field(default_factory=list)
    offline: list[OfflineRecord] = field(default_factory=list)
    cards: list[CardRow] = field(default_factory=list)  # new cards and identity/bank/e-card changes (upsert)
    guardians: list[GuardianRow] = field(default_factory=list)
    audit: list[AuditRow] = field(default_factory=list)
    # 学籍 (student_records.py): new wallet accounts and students; status and school changes;
    # a school's live scenes (pilot roll-out).
    accounts: list[AccountRow] = field(default_factory=list)
    students: list[StudentRow] = field(default_factory=list)
    student_status: list[StudentStatusRow] = field(default_factory=list)
    live_scenes: list[LiveScenesRow] = field(default_factory=list)
    # Library and exam scenes (library.py, exams.py): loans made or closed (upsert), exam
    # sessions created or closed (upsert), roster seats (upsert), check-ins and wrong-room attempts.
    loans: list[LoanRow] = field(default_factory=list)
    exam_sessions: list[ExamSessionRow] = field(default_factory=list)
    exam_seats: list[ExamSeatRow] = field(default_factory=list)
    exam_check_ins: list[ExamCheckInRow] = field(default_factory=list)
    # Blocklist changes (Campus.set_card_status returns them): in the status change's own batch.
    blocklist: list[BlocklistChange] = field(default_factory=list)
    misuse: list[MisuseSignal] = field(default_factory=list)  # with the tap that raised them
    cardsys: list[CardsysChangeRow] = field(default_factory=list)  # the provincial feed (cardsys_feed.py)
    # Grants (grants/): batches and items (upsert), advance notices (store/grant_rows.py).
    grant_batches: list[GrantBatchRow] = field(default_factory=list)
    grant_items: list[GrantItemRow] = field(default_factory=list)
    grant_notices: list[GrantNoticeRow] = field(default_factory=list)
    # Settlement (settlement/): merchant settlements and wallet refunds (upsert by transfer purpose),
    # reconciliation reports (upsert by bank and date) (store/settlement_rows.py).
    payments: list[PaymentRow] = field(default_factory=list)
    reconciliations: list[ReconciliationRow] = field(default_factory=list)
    # Funds (funds/): top-ups 圈存 (upsert: the row carries its state; written PENDING before the
    # debit), auto top-up settings, changes of bank (store/topup_rows.py).
    topups: list[TopUpRow] = field(default_factory=list)
    auto_topups: list[AutoTopUpRow] = field(default_factory=list)
    bank_changes: list[BankChangeRow] = field(default_factory=list)

    def __len__(self) -> int:
        """Rows that count toward a commit's size: every list but transfers and card states,
        which ride along with the request that made them."""
        return sum(map(len, _counted(self)))

    def extend(self, other: Batch) -> None:
        for name in _ROW_LISTS:
            rows = getattr(other, name)
            if rows:
                getattr(self, name).extend(rows)


# Every row list of a Batch, so that merging and counting cannot forget a new one.
_ROW_LISTS = tuple(f.name for f in fields(Batch))
_counted = attrgetter(*(name for name in _ROW_LISTS if name not in ("transfers", "card_states")))


@dataclass(frozen=True, slots=True)
class CardsysChangeRow:
    """A change the provincial card system's feed brought, and what the hub did with it."""

    version: int
    card_no: str
    function: str  # domain/cardsys.py CardFunction
    action: str  # FeedAction
    channel: str
    occurred_ms: int
    applied_ms: int  # hub clock
    outcome: str  # FeedOutcome


@dataclass(frozen=True, slots=True)
class SchoolRow:
    school_id: str
    name: str
    policy_json: str
    live_scenes: str | None = None  # scene numbers, comma-separated; None: every scene (see pilot.py)


@dataclass(frozen=True, slots=True)
class AccountRow:
    account_id: int
    kind: str
    owner: str
    balance_fen: int


@dataclass(frozen=True, slots=True)
class StudentRow:
    student_id: str
    school_id: str
    name: str
    id_number_enc: bytes
    id_number_index: bytes
    id_number_masked: str
    birth_date: str
    student_group: str
    enrollment: str
    wallet_account_id: int


@dataclass(frozen=True, slots=True)
class StudentStatusRow:
    """A student's 学籍 status and school after a change (suspend, resume, ..., transfer)."""

    student_id: str
    school_id: str
    enrollment: str


@dataclass(frozen=True, slots=True)
class LiveScenesRow:
    school_id: str
    live_scenes: str  # scene numbers, comma-separated, ascending; "" none


@dataclass(frozen=True, slots=True)
class CardRow:
    card_no: str
    student_id: str
    status: str
    pin_hash: bytes
    bank_code: str
    atc: int = 0
    pin_failures: int = 0
    presence: int = 0
    bank_status: str = "active"
    generation: int = 3
    ecard_issued: bool = True
    ecard_suspended: bool = False
    issued_ms: int = 0
    replaced_by: str = ""


@dataclass(frozen=True, slots=True)
class GuardianRow:
    """A student's guardian (监护人): the ID number only encrypted, indexed and masked."""

    student_id: str
    id_number_index: bytes
    id_number_enc: bytes
    id_number_masked: str
    name: str
    relation: str
    added_ms: int


@dataclass(frozen=True, slots=True)
class AuditRow:
    """One card-office (or student-records) action: who, what, when, on whom; details masked."""

    at_ms: int
    actor_kind: str  # "operator" | "terminal" | "cardsys"
    actor_id: str
    school_id: str
    student_id: str
    card_no: str
    action: str  # the RPC name, e.g. "ReportLoss"
    request_id: str
    details: str  # masked: never a clear ID number or PIN
    audit_id: int = 0  # set by the store


@dataclass(frozen=True, slots=True)
class MerchantRow:
    merchant_id: str
    school_id: str
    name: str
    account_id: int
    bank_code: str = ""  # the canteen operator's settlement account ("": none known)
    account_no: str = ""


@dataclass(frozen=True, slots=True)
class OperatorRow:
    operator_id: str
    school_id: str
    role: str


@dataclass(frozen=True, slots=True)
class TransferRow:
    from_account: int
    to_account: int
    amount_fen: int
    kind: str
    caller: str
    request_id: str
    origin_request_id: str
    created_ms: int


@dataclass(frozen=True, slots=True)
class LoanRow:
    """A library loan; `returned_ms` 0 while the book is on loan."""

    loan_id: str
    school_id: str
    book_id: str
    student_id: str
    card_no: str
    borrowed_ms: int
    due_ms: int
    returned_ms: int


@dataclass(frozen=True, slots=True)
class ExamSessionRow:
    session_id: str
    school_id: str
    subject: str
    rooms_json: str  # JSON list of room ids
    start_ms: int
    end_ms: int
    opens_before_min: int
    closes_after_min: int
    created_ms: int
    closed_ms: int  # 0 while open


@dataclass(frozen=True, slots=True)
class ExamSeatRow:
    session_id: str
    student_id: str
    room: str
    seat: str


@dataclass(frozen=True, slots=True)
class ExamCheckInRow:
    """A check-in (room == expected_room) or a wrong-room attempt."""

    session_id: str
    student_id: str
    expected_room: str
    room: str
    at_ms: int
    terminal_id: str
    request_id: str


@dataclass(frozen=True, slots=True)
class TapCountRow:
    """Taps of one terminal, scene and business day, approved and declined (usage statistics)."""

    terminal_id: str
    scene: int
    business_day: int
    approved: int
    declined: int


R = TypeVar("R")
Chunks = Callable[[], Iterator[Sequence[tuple[Any, ...]]]]


def _no_chunks() -> Iterator[Sequence[tuple[Any, ...]]]:
    return iter(())


class TableRows(Generic[R]):
    """The rows of one of the campus' big tables (accounts, cards), read from the store when they
    are walked, a chunk at a time, and never all held: at start the hub builds the accounts from one
    chunk while the rows of the others are not in memory (students and cards it builds when first
    needed: store/campus_rows.py).

    `chunks()` gives the rows as the store's plain tuples, in the order of the fields of the row
    type (recovery.py builds its objects straight from them); iterating gives row objects. Each
    walk reads the table again."""

    __slots__ = ("_chunks", "_make")

    def __init__(self, chunks: Chunks = _no_chunks, make: Callable[..., R] | None = None) -> None:
        self._chunks = chunks
        self._make = make  # a row object from a tuple's values (None: no rows, as by default)

    def chunks(self) -> Iterator[Sequence[tuple[Any, ...]]]:
        return self._chunks()

    def __iter__(self) -> Iterator[R]:
        make = self._make
        if make is None:
            return
        for chunk in self._chunks():
            for row in chunk:
                yield make(*row)


@dataclass(slots=True)
class Snapshot:
    """What the hub needs in memory, read once at start (the big tables when walked: TableRows;
    students and cards when first needed: campus_rows)."""

    schools: list[SchoolRow] = field(default_factory=list)
    accounts: TableRows[AccountRow] = field(default_factory=TableRows)
    # students and cards one student at a time, as the hub first needs them (store/campus_rows.py)
    campus_rows: CampusRows | None = None
    merchants: list[MerchantRow] = field(default_factory=list)
    terminals: list[TerminalRow] = field(default_factory=list)
    operators: list[OperatorRow] = field(default_factory=list)
    requests: list[RequestRow] = field(default_factory=list)  # within the retention window
    terminal_status: list[TerminalStatusRow] = field(default_factory=list)
    offline: list[OfflineRecord] = field(default_factory=list)  # booked ones, all of them, in booking order
    guardians: list[GuardianRow] = field(default_factory=list)
    loans: list[LoanRow] = field(default_factory=list)  # open ones only
    exam_sessions: list[ExamSessionRow] = field(default_factory=list)
    exam_seats: list[ExamSeatRow] = field(default_factory=list)
    exam_check_ins: list[ExamCheckInRow] = field(default_factory=list)  # in the order they happened
    blocklist_changes: list[BlocklistChange] = field(default_factory=list)  # the newest per school
    misuse_signals: list[MisuseSignal] = field(default_factory=list)  # the newest per school, oldest first
    # Usage statistics (domain/usage.py): taps since `load`'s `usage_since_ms`, and each card's last
    # business day with an approved tap in that time.
    tap_counts: list[TapCountRow] = field(default_factory=list)
    card_last_used: dict[str, int] = field(default_factory=dict)
    cardsys_version: int = 0  # the last provincial feed version applied (cardsys_feed.py)
    grant_batches: list[GrantBatchRow] = field(default_factory=list)  # every batch
    grant_items: list[GrantItemRow] = field(default_factory=list)  # every item, in line order
    grant_notices: list[GrantNoticeRow] = field(default_factory=list)
    payments: list[PaymentRow] = field(default_factory=list)  # settlement/: every payment
    reconciliations: list[ReconciliationRow] = field(default_factory=list)
    topups: list[TopUpRow] = field(default_factory=list)  # funds/: every top-up
    auto_topups: list[AutoTopUpRow] = field(default_factory=list)
    bank_changes: list[BankChangeRow] = field(default_factory=list)


@dataclass(slots=True)
class SeedData:
    schools: list[SchoolRow] = field(default_factory=list)
    accounts: list[AccountRow] = field(default_factory=list)
    students: list[StudentRow] = field(default_factory=list)
    cards: list[CardRow] = field(default_factory=list)
    merchants: list[MerchantRow] = field(default_factory=list)
    terminals: list[TerminalRow] = field(default_factory=list)
    operators: list[OperatorRow] = field(default_factory=list)
    transfers: list[TransferRow] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class LedgerTotals:
    sum_fen: int
    transfer_count: int
    by_kind: list[tuple[str, int, int]]  # kind, accounts, balance


@dataclass(frozen=True, slots=True)
class GrantBatchRow:
    school_id: str
    batch_id: str
    grant_type: int
    academic_year: str
    status: int
    submitted_by: str
    approved_by: str
    created_ms: int


@dataclass(frozen=True, slots=True)
class GrantItemRow:
    school_id: str
    batch_id: str
    student_id: str
    line_no: int
    amount_fen: int
    status: int
    fail_reason: int
    attempts: int
    transfer_id: str
    bank_code: str
    card_no: str
    updated_ms: int


@dataclass(frozen=True, slots=True)
class GrantNoticeRow:
    school_id: str
    batch_id: str
    student_id: str
    name_masked: str
    grant_type: int
    amount_fen: int
    created_ms: int
    message: str


@dataclass(frozen=True, slots=True)
class PaymentRow:
    """A payment to a bank account (settlement/): a merchant's day or a leaving student's wallet.
    One row per purpose (`payment_key`); `transfer_id` is the current attempt's, written before the call."""

    payment_key: str  # stl-<date>-<merchant> or wrf-<student>
    purpose: str  # merchant_settlement, wallet_refund
    party_id: str  # merchant_id or student_id
    school_id: str
    business_date: str  # the takings' date (settlement); "" for a refund
    booked_date: str  # the date sent to the bank with the current attempt (its statement's date)
    bank_code: str
    payee: str  # account_no (merchant) or card_no (student)
    amount_fen: int
    sales_fen: int
    sales_count: int
    given_back_fen: int
    given_back_count: int
    status: str  # domain.settlement.PaymentStatus
    failure: str
    attempts: int
    transfer_id: str
    updated_ms: int


@dataclass(frozen=True, slots=True)
class ReconciliationRow:
    """A stored reconciliation report (对账) of one bank and business date; `report` is the
    ReconciliationReport message as sent to callers."""

    bank_code: str
    business_date: str
    unexplained: int
    report: bytes
    created_ms: int


@dataclass(frozen=True, slots=True)
class TopUpRow:
    """A top-up (圈存, funds/): its bank transfer id is its `topup_id`; upserted on every change."""

    topup_id: str
    student_id: str
    school_id: str
    card_no: str
    bank_code: str
    amount_fen: int
    origin: str  # domain.topup.Origin
    business_date: str
    created_ms: int
    state: str  # domain.topup.TopUpState
    reason: str
    reversals: int
    updated_ms: int


@dataclass(frozen=True, slots=True)
class AutoTopUpRow:
    student_id: str
    enabled: bool
    threshold_fen: int
    amount_fen: int
    last_topup_id: str
    last_failure: str
    updated_ms: int


@dataclass(frozen=True, slots=True)
class BankChangeRow:
    """A change of co-branded bank (funds/): the old account closed once its top-ups are final."""

    student_id: str
    card_no: str
    old_bank_code: str
    new_bank_code: str
    created_ms: int
    state: str  # domain.topup.ChangeState
    paid_out_fen: int
    updated_ms: int
