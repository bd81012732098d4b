"""Rows the hub hands to a store, and the snapshot a store hands back at start.

These are plain data shared by every store backend (SQLite now, PostgreSQL later).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from onecard_hub.domain.ledger import Transfer
from onecard_hub.domain.offline import OfflineRecord


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

    def __len__(self) -> int:
        return (
            len(self.requests)
            + len(self.terminals)
            + len(self.terminal_status)
            + len(self.offline)
            + len(self.cards)
            + len(self.guardians)
            + len(self.audit)
        )

    def extend(self, other: Batch) -> None:
        self.requests.extend(other.requests)
        self.transfers.extend(other.transfers)
        self.card_states.extend(other.card_states)
        self.terminals.extend(other.terminals)
        self.terminal_status.extend(other.terminal_status)
        self.offline.extend(other.offline)
        self.cards.extend(other.cards)
        self.guardians.extend(other.guardians)
        self.audit.extend(other.audit)


@dataclass(frozen=True, slots=True)
class SchoolRow:
    school_id: str
    name: str
    policy_json: str


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
class TapCountRow:
    """Taps of one terminal, scene and business day, approved and declined (usage statistics)."""

    terminal_id: str
    scene: int
    business_day: int
    approved: int
    declined: int


@dataclass(slots=True)
class Snapshot:
    """What the hub needs in memory, read once at start."""

    schools: list[SchoolRow] = field(default_factory=list)
    accounts: list[AccountRow] = field(default_factory=list)
    students: list[StudentRow] = field(default_factory=list)
    cards: list[CardRow] = field(default_factory=list)
    merchants: list[MerchantRow] = field(default_factory=list)
    terminals: list[TerminalRow] = field(default_factory=list)
    operators: list[OperatorRow] = field(default_factory=list)
    requests: list[RequestRow] = field(default_factory=list)  # within the retention window
    transfers: list[TransferRow] = field(default_factory=list)  # within the retention window
    terminal_status: list[TerminalStatusRow] = field(default_factory=list)
    offline: list[OfflineRecord] = field(default_factory=list)  # booked ones, all of them, in booking order
    guardians: list[GuardianRow] = field(default_factory=list)
    # Usage statistics (domain/usage.py): taps since `load`'s `usage_since_ms`, and each card's last
    # business day with an approved tap in that time.
    tap_counts: list[TapCountRow] = field(default_factory=list)
    card_last_used: dict[str, int] = field(default_factory=dict)


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
