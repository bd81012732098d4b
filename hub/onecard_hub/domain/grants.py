"""Grants (奖助学金): batches of (student, amount) paid into students' bank accounts.

Plain rules, no I/O: checking a batch's lines, the item's life (PENDING → UNCERTAIN → PAID / FAILED /
RETURNED), what a bank answer makes of an item, the advance notice text, the coverage report.
Numbers of the enums match onecard.grants.v1.
"""

from __future__ import annotations

import enum
import hashlib
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from onecard_hub.domain.bank import RejectReason
from onecard_hub.domain.model import BankStatus, Student

MAX_ITEM_FEN = 100_000 * 100  # no single grant item above 100 000 yuan
MAX_ITEMS = 20_000  # lines in one batch
MAX_ATTEMPTS = 5  # uncertain-then-voided attempts of one item before manual review
BATCH_ID = re.compile(r"^[A-Za-z0-9_-]{1,32}$")
ACADEMIC_YEAR = re.compile(r"^\d{4}-\d{4}(-[12])?$")


class GrantType(enum.IntEnum):
    NATIONAL_GRANT = 1  # 国家助学金
    NATIONAL_SCHOLARSHIP = 2  # 国家奖学金
    PROVINCIAL_SCHOLARSHIP = 3  # 省政府奖学金
    SCHOOL_AWARD = 4  # 校级奖励


GRANT_NAMES: dict[GrantType, str] = {
    GrantType.NATIONAL_GRANT: "国家助学金",
    GrantType.NATIONAL_SCHOLARSHIP: "国家奖学金",
    GrantType.PROVINCIAL_SCHOLARSHIP: "省政府奖学金",
    GrantType.SCHOOL_AWARD: "校级奖励",
}


class BatchStatus(enum.IntEnum):
    SUBMITTED = 1
    PAYING = 2
    DONE = 3


class ItemStatus(enum.IntEnum):
    PENDING = 1
    UNCERTAIN = 2
    PAID = 3
    FAILED = 4
    RETURNED = 5


FINAL = frozenset({ItemStatus.PAID, ItemStatus.FAILED, ItemStatus.RETURNED})


class FailReason(enum.IntEnum):
    NONE = 0
    NOT_ACTIVATED = 1
    ACCOUNT_FROZEN = 2
    ACCOUNT_CLOSED = 3
    ACCOUNT_NOT_FOUND = 4
    LIMIT_EXCEEDED = 5
    NO_CARD = 6
    MANUAL_REVIEW = 7


class LineProblem(enum.IntEnum):
    UNKNOWN_STUDENT = 1
    OTHER_SCHOOL = 2
    AMOUNT_NOT_POSITIVE = 3
    AMOUNT_TOO_LARGE = 4
    DUPLICATE_STUDENT = 5
    MALFORMED_ROW = 6


class Group(enum.IntEnum):
    """Student groups of the coverage report (onecard.grants.v1.StudentGroup)."""

    BOARDER = 1
    DAY = 2
    MINOR = 3
    ADULT = 4


@dataclass(frozen=True, slots=True)
class Line:
    """One input line: its number (item position or CSV line) and what it says."""

    line: int
    student_id: str
    amount_fen: int


@dataclass(frozen=True, slots=True)
class LineError:
    line: int
    student_id: str
    problem: LineProblem
    message: str


@dataclass(slots=True)
class GrantItem:
    student_id: str
    amount_fen: int
    status: ItemStatus = ItemStatus.PENDING
    fail_reason: FailReason = FailReason.NONE
    attempts: int = 0
    transfer_id: str = ""  # the current attempt's bank transfer id
    bank_code: str = ""
    card_no: str = ""
    updated_ms: int = 0
    line_no: int = 0  # position in the batch, 1-based

    @property
    def final(self) -> bool:
        return self.status in FINAL


@dataclass(slots=True)
class GrantBatch:
    school_id: str
    batch_id: str
    grant_type: GrantType
    academic_year: str
    submitted_by: str
    created_ms: int
    status: BatchStatus = BatchStatus.SUBMITTED
    approved_by: str = ""
    items: dict[str, GrantItem] = field(default_factory=dict)  # by student id, in line order

    @property
    def key(self) -> tuple[str, str]:
        return (self.school_id, self.batch_id)

    @property
    def total_fen(self) -> int:
        return sum(i.amount_fen for i in self.items.values())

    def settle_status(self) -> bool:
        """PAYING → DONE once every item is final; True when it changed."""
        if self.status == BatchStatus.PAYING and all(i.final for i in self.items.values()):
            self.status = BatchStatus.DONE
            return True
        return False


@dataclass(frozen=True, slots=True)
class Notification:
    school_id: str
    batch_id: str
    student_id: str
    name_masked: str
    grant_type: GrantType
    amount_fen: int
    created_ms: int
    message: str


def check_lines(
    lines: Iterable[Line], school_id: str, students: Mapping[str, Student]
) -> tuple[list[Line], list[LineError]]:
    """The good lines and an error per bad line (unknown student, another school's, amount not
    positive or too large, a student on an earlier line)."""
    good: list[Line] = []
    errors: list[LineError] = []
    seen: dict[str, int] = {}
    for line in lines:
        student = students.get(line.student_id)
        problem: tuple[LineProblem, str] | None = None
        if student is None:
            problem = (LineProblem.UNKNOWN_STUDENT, "no such student")
        elif student.school_id != school_id:
            problem = (LineProblem.OTHER_SCHOOL, "a student of another school")
        elif line.amount_fen <= 0:
            problem = (LineProblem.AMOUNT_NOT_POSITIVE, f"amount_fen {line.amount_fen}: must be positive")
        elif line.amount_fen > MAX_ITEM_FEN:
            problem = (LineProblem.AMOUNT_TOO_LARGE, f"amount_fen {line.amount_fen}: over {MAX_ITEM_FEN}")
        elif line.student_id in seen:
            problem = (
                LineProblem.DUPLICATE_STUDENT,
                f"the student is on line {seen[line.student_id]} already",
            )
        if problem is not None:
            errors.append(LineError(line.line, line.student_id, problem[0], problem[1]))
            continue
        seen[line.student_id] = line.line
        good.append(line)
    return good, errors


def needs_notice(bank_status: BankStatus | None) -> bool:
    """Told in advance: the bank function is not activated (or there is no card at all)."""
    return bank_status is None or bank_status == BankStatus.NOT_ACTIVATED


def notice_text(batch: GrantBatch, item: GrantItem) -> str:
    yuan = f"{item.amount_fen // 100}.{item.amount_fen % 100:02d}"
    return (
        f"您的{GRANT_NAMES[batch.grant_type]}（{batch.academic_year}，{yuan}元）将发放至社保卡银行账户，"
        "但该卡银行功能尚未激活，请尽快到合作银行网点激活，以免发放失败。"
    )


# -- what a bank answer makes of an item ----------------------------------------------


# What the bank's refusal means for the item (domain/bank.py RejectReason → FailReason); any
# other refusal is for an operator to look at.
REJECT_REASONS: dict[RejectReason, FailReason] = {
    RejectReason.ACCOUNT_NOT_FOUND: FailReason.ACCOUNT_NOT_FOUND,
    RejectReason.NOT_ACTIVATED: FailReason.NOT_ACTIVATED,
    RejectReason.ACCOUNT_FROZEN: FailReason.ACCOUNT_FROZEN,
    RejectReason.ACCOUNT_CLOSED: FailReason.ACCOUNT_CLOSED,
    RejectReason.LIMIT_EXCEEDED: FailReason.LIMIT_EXCEEDED,
}


def transfer_id(batch: GrantBatch, student_id: str, attempt: int) -> str:
    """The bank transfer id of one attempt: the same item and attempt always give the same id (a
    restart asks the bank about the same transfer); another item or attempt never does."""
    digest = hashlib.sha256(f"{batch.school_id}|{batch.batch_id}|{student_id}".encode()).hexdigest()[:32]
    return f"G{digest}.{attempt}"


# -- coverage -------------------------------------------------------------------------


@dataclass(slots=True)
class CoverageCell:
    grant_type: GrantType
    group: Group
    students: int = 0
    paid_students: int = 0
    paid_fen: int = 0


def groups_of(student: Student, minor: bool) -> tuple[Group, Group]:
    boarding = Group.BOARDER if student.group.value == "boarder" else Group.DAY
    return boarding, Group.MINOR if minor else Group.ADULT


def coverage(
    students: Iterable[tuple[Student, bool]], batches: Iterable[GrantBatch]
) -> tuple[list[CoverageCell], list[GrantType], list[CoverageCell]]:
    """`students`: (student, is minor) in scope; `batches`: the batches in scope. Returns every
    (type, group) cell, the types no one was paid, and the gaps (a group with students, none paid)."""
    cells = {(t, g): CoverageCell(t, g) for t in GrantType for g in Group}
    groups: dict[str, tuple[Group, Group]] = {}
    for student, minor in students:
        groups[student.student_id] = groups_of(student, minor)
        for g in groups[student.student_id]:
            for t in GrantType:
                cells[(t, g)].students += 1
    paid: set[tuple[GrantType, str]] = set()
    for batch in batches:
        for item in batch.items.values():
            if item.status != ItemStatus.PAID or item.student_id not in groups:
                continue
            first = (batch.grant_type, item.student_id) not in paid
            paid.add((batch.grant_type, item.student_id))
            for g in groups[item.student_id]:
                cell = cells[(batch.grant_type, g)]
                cell.paid_fen += item.amount_fen
                cell.paid_students += int(first)
    ordered = list(cells.values())
    not_covered = [t for t in GrantType if not any(c.paid_students for c in ordered if c.grant_type == t)]
    gaps = [c for c in ordered if c.students and not c.paid_students]
    return ordered, not_covered, gaps
