"""What the hub knows about schools, students, cards and terminals, held in memory."""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import Any

from onecard_client.credentials import derive_card_key, derive_ecard_key
from onecard_hub.domain.ledger import Account


class Scene(enum.IntEnum):
    """Numbers match onecard.auth.v1.Scene."""

    GATE_ENTRY = 1
    GATE_EXIT = 2
    CANTEEN_PURCHASE = 3
    LIBRARY_BORROW = 4  # LibraryService.Borrow (needs a book: not through Authorize)
    LIBRARY_RETURN = 5  # LibraryService.Return
    EXAM_CHECK_IN = 6  # ExamService.CheckIn (needs a session)


class TerminalKind(enum.IntEnum):
    """Numbers match onecard.admin.v1.TerminalKind."""

    GATE = 1
    CANTEEN_POS = 2
    LIBRARY_DESK = 3
    EXAM_TABLET = 4
    KIOSK = 5


SCENES_BY_KIND: dict[TerminalKind, frozenset[Scene]] = {
    TerminalKind.GATE: frozenset({Scene.GATE_ENTRY, Scene.GATE_EXIT}),
    TerminalKind.CANTEEN_POS: frozenset({Scene.CANTEEN_PURCHASE}),
    TerminalKind.LIBRARY_DESK: frozenset({Scene.LIBRARY_BORROW, Scene.LIBRARY_RETURN}),
    TerminalKind.EXAM_TABLET: frozenset({Scene.EXAM_CHECK_IN}),
    TerminalKind.KIOSK: frozenset(),
}


class StudentGroup(enum.StrEnum):
    BOARDER = "boarder"  # 住校生
    DAY = "day"  # 走读生


class Enrollment(enum.StrEnum):
    """学籍 status; only ENROLLED students may use the card on campus."""

    ENROLLED = "enrolled"
    SUSPENDED = "suspended"
    GRADUATED = "graduated"
    WITHDRAWN = "withdrawn"


class CardStatus(enum.StrEnum):
    """Status of the card's identity function (the campus follows this one)."""

    ACTIVE = "active"
    NOT_ENABLED = "not_enabled"
    LOST = "lost"  # 挂失
    FROZEN = "frozen"  # frozen by the school
    REPLACED = "replaced"  # 补换: dead for good
    CANCELLED = "cancelled"


class BankStatus(enum.StrEnum):
    """Status of the card's bank function (社保卡银行功能): set by the co-branded bank, reported
    through the provincial card system's feed; campus taps never read it."""

    NOT_ACTIVATED = "not_activated"
    ACTIVE = "active"
    LOST = "lost"
    FROZEN = "frozen"


# Co-branded banks of the social security card in Jiangxi: code → name. The holder chooses freely
# at issue and at replacement (the notice guarantees that choice).
CO_BRANDED_BANKS: dict[str, str] = {
    "ICBC": "中国工商银行",
    "CCB": "中国建设银行",
    "ABC": "中国农业银行",
    "BOC": "中国银行",
    "JXB": "江西银行",
}


class Presence(enum.IntEnum):
    """Anti-passback state of a card on its campus."""

    UNKNOWN = 0
    INSIDE = 1
    OUTSIDE = 2


class AntiPassback(enum.StrEnum):
    HARD = "hard"  # decline a second entry without an exit
    SOFT = "soft"  # allow it, but it is recorded
    OFF = "off"


@dataclass(frozen=True, slots=True)
class TimeWindow:
    """[start, end) in minutes since local midnight."""

    start_min: int
    end_min: int

    def contains(self, minute: int) -> bool:
        return self.start_min <= minute < self.end_min


@dataclass(frozen=True, slots=True)
class MealWindow:
    name: str  # "breakfast" | "lunch" | "dinner"
    window: TimeWindow
    max_payments: int  # payments per card in this window per day


@dataclass(frozen=True, slots=True)
class GateGroup:
    name: str
    anti_passback: AntiPassback
    windows: dict[StudentGroup, tuple[TimeWindow, ...]]


@dataclass(frozen=True, slots=True)
class SchoolPolicy:
    pin_free_limit_fen: int = 5_000
    daily_limit_fen: int = 30_000
    pin_max_failures: int = 3
    meal_windows: tuple[MealWindow, ...] = ()
    gate_groups: dict[str, GateGroup] = field(default_factory=dict)
    # What a terminal may approve on its own while it cannot reach the hub (GetConfig).
    offline_per_payment_fen: int = 2_000
    offline_per_card_day_fen: int = 5_000
    offline_max_stored: int = 5_000
    # Library (图书借阅): books a student may hold at once, and the loan period.
    loan_limit: int = 5
    loan_days: int = 30


ALL_SCENES: frozenset[Scene] = frozenset(Scene)


@dataclass(slots=True)
class School:
    school_id: str
    name: str
    policy: SchoolPolicy
    # Pilot roll-out: the scenes live at this school; a tap for another is declined SCENE_NOT_LIVE.
    live_scenes: frozenset[Scene] = ALL_SCENES


class _NoMeals(dict[str, int]):
    """The meal counts of a wallet that has not been used on any day yet: empty, shared by every
    such wallet (a million wallets need no million empty dicts), and never written — `roll_to`
    gives the wallet a dict of its own before anything is counted."""

    def __setitem__(self, key: str, value: int) -> None:
        raise TypeError("roll the wallet to a day before counting its meals")


NO_MEALS: dict[str, int] = _NoMeals()


@dataclass(slots=True)
class Wallet:
    """The student's campus stored value; the balance mirrors its ledger account."""

    account: Account
    day: int = -1  # business day the counters below belong to
    spent_today_fen: int = 0
    meal_counts: dict[str, int] = field(default_factory=lambda: NO_MEALS)  # a dict of its own once rolled

    @property
    def balance_fen(self) -> int:
        return self.account.balance_fen

    def roll_to(self, day: int) -> None:
        if day != self.day:
            self.day = day
            self.spent_today_fen = 0
            self.meal_counts = {}


@dataclass(slots=True)
class Student:
    student_id: str
    school_id: str
    name_masked: str
    group: StudentGroup
    enrollment: Enrollment
    wallet: Wallet
    birth_date: str = ""  # ISO date; "" unknown (the card office then asks for a guardian)
    id_index: bytes = b""  # keyed index of the ID number (security/protect.py), for identity checks
    id_masked: str = ""  # the ID number masked (3601**********1234), for what the card office sees


@dataclass(slots=True)
class Card:
    card_no: str
    student: Student
    status: CardStatus
    card_key: bytes
    ecard_key: bytes
    pin_hash: bytes
    atc: int = 0
    pin_failures: int = 0
    presence: Presence = Presence.UNKNOWN
    ecard_suspended: bool = False  # the e-card is suspended; the physical card may still work
    ecard_issued: bool = True  # a third-generation card has its e-card from issue on
    generation: int = 3  # 社保卡 generation: 2 or 3
    bank_code: str = ""  # co-branded bank (CO_BRANDED_BANKS)
    bank_status: BankStatus = BankStatus.ACTIVE  # the bank function; see BankStatus
    issued_ms: int = 0  # hub clock; 0 for cards older than the card office
    replaced_by: str = ""  # the card number that replaced this one (status REPLACED)
    # When the presence last changed, by the hub's clock or an offline record's time (in memory
    # only: 0 after a restart), so an offline gate record older than a later pass does not undo it.
    presence_ms: int = 0


class CardKeys:
    """The hub's master keys a card's own keys are derived from (one HMAC each)."""

    __slots__ = ("ecard_master", "issuer_master")

    def __init__(self, issuer_master: bytes, ecard_master: bytes) -> None:
        self.issuer_master = issuer_master
        self.ecard_master = ecard_master


class LoadedCard(Card):
    """A card read back at start: its keys are derived on first use and then kept, so a hub with a
    million cards spends no two million HMACs before serving. Everything else is a Card's.

    Built straight from a row of the store (recovery.py), without the keys; the first read of
    `card_key` or `ecard_key` finds the slot empty, derives the key and fills the slot, so every
    later read is a plain attribute read."""

    __slots__ = ("_keys",)

    def __init__(  # one argument per column of the row
        self,
        keys: CardKeys,
        card_no: str,
        student: Student,
        status: CardStatus,
        pin_hash: bytes,
        atc: int,
        pin_failures: int,
        presence: Presence,
        ecard_suspended: bool,
        ecard_issued: bool,
        generation: int,
        bank_code: str,
        bank_status: BankStatus,
        issued_ms: int,
        replaced_by: str,
    ) -> None:
        self._keys = keys
        self.card_no = card_no
        self.student = student
        self.status = status
        self.pin_hash = pin_hash
        self.atc = atc
        self.pin_failures = pin_failures
        self.presence = presence
        self.ecard_suspended = ecard_suspended
        self.ecard_issued = ecard_issued
        self.generation = generation
        self.bank_code = bank_code
        self.bank_status = bank_status
        self.issued_ms = issued_ms
        self.replaced_by = replaced_by
        self.presence_ms = 0

    def __getattr__(self, name: str) -> Any:
        """Only called for an empty slot: a key not derived yet."""
        if name == "card_key":
            self.card_key = derive_card_key(self._keys.issuer_master, self.card_no)
            return self.card_key
        if name == "ecard_key":
            self.ecard_key = derive_ecard_key(self._keys.ecard_master, self.card_no)
            return self.ecard_key
        raise AttributeError(f"{type(self).__name__!r} object has no attribute {name!r}")


@dataclass(slots=True)
class Terminal:
    terminal_id: str
    school_id: str
    kind: TerminalKind
    location: str = ""
    gate_group: str = ""
    merchant_id: str = ""
    enabled: bool = True
    merchant_account_id: int = 0
    # What the last heartbeat said (not part of the registration: equality ignores them).
    last_seen_ms: int = field(default=0, compare=False)  # hub clock; 0 = never
    software_version: str = field(default="", compare=False)
    offline_pending: int = field(default=0, compare=False)


@dataclass(frozen=True, slots=True)
class Operator:
    operator_id: str
    school_id: str  # "" for a province administrator
    role: str  # "clerk" | "province_admin"
