"""学籍 rules: which status changes are allowed, and what a new student must look like (pure).

The transitions are one table. A status change takes effect on the student's next tap:
`campus.holder_refusal` declines every status but ENROLLED with its own reason.

    action      from                     to
    suspend     enrolled                 suspended   休学
    resume      suspended                enrolled    复学
    graduate    enrolled                 graduated   毕业
    withdraw    enrolled, suspended      withdrawn   退学
    transfer    enrolled, suspended      (unchanged) 转学: the school changes, the status stays

Graduated and withdrawn are final.
"""

from __future__ import annotations

import enum
import re
import unicodedata
from dataclasses import dataclass
from datetime import date

from onecard_hub.domain.errors import FailedPrecondition, InvalidArgument
from onecard_hub.domain.model import Enrollment, StudentGroup
from onecard_hub.domain.pii import is_valid_id_number

ADULT_AGE = 18
MAX_NAME_CHARS = 32
STUDENT_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:\-]{0,63}")


class Action(enum.StrEnum):
    SUSPEND = "suspend"
    RESUME = "resume"
    GRADUATE = "graduate"
    WITHDRAW = "withdraw"
    TRANSFER = "transfer"


_E = Enrollment
# action → {from status: to status}
TRANSITIONS: dict[Action, dict[Enrollment, Enrollment]] = {
    Action.SUSPEND: {_E.ENROLLED: _E.SUSPENDED},
    Action.RESUME: {_E.SUSPENDED: _E.ENROLLED},
    Action.GRADUATE: {_E.ENROLLED: _E.GRADUATED},
    Action.WITHDRAW: {_E.ENROLLED: _E.WITHDRAWN, _E.SUSPENDED: _E.WITHDRAWN},
    Action.TRANSFER: {_E.ENROLLED: _E.ENROLLED, _E.SUSPENDED: _E.SUSPENDED},
}


def next_status(action: Action, current: Enrollment) -> Enrollment:
    """The status after `action`, or FAILED_PRECONDITION ILLEGAL_TRANSITION naming the current one."""
    after = TRANSITIONS[action].get(current)
    if after is None:
        raise FailedPrecondition(
            f"a {current.value} student cannot {action.value}",
            reason="ILLEGAL_TRANSITION",
            metadata={"state": current.value},
        )
    return after


# -- a new student -----------------------------------------------------------------

GROUP_NAMES: dict[str, StudentGroup] = {
    "boarder": StudentGroup.BOARDER,
    "day": StudentGroup.DAY,
    "住校": StudentGroup.BOARDER,
    "住校生": StudentGroup.BOARDER,
    "走读": StudentGroup.DAY,
    "走读生": StudentGroup.DAY,
}


@dataclass(frozen=True, slots=True)
class NewStudent:
    """A student to enroll, checked: the ID number valid, the birth date the one inside it."""

    student_id: str
    name: str
    id_number: str  # upper-case check character; never logged or shown unmasked
    birth_date: date
    group: StudentGroup


class Problem(enum.IntEnum):
    """Why a new student's data is refused; numbers match onecard.records.v1.RowProblem."""

    MISSING_FIELD = 1
    BAD_ID_NUMBER = 2
    BAD_BIRTH_DATE = 3
    UNKNOWN_GROUP = 4
    BAD_FIELD = 5
    DUPLICATE_IN_ROSTER = 6
    STUDENT_ID_TAKEN = 7


class StudentDataError(ValueError):
    def __init__(self, problem: Problem, field: str, message: str) -> None:
        super().__init__(message)
        self.problem = problem
        self.field = field
        self.message = message

    def as_invalid_argument(self) -> InvalidArgument:
        return InvalidArgument(self.field, self.message)


def birth_date_in(id_number: str) -> date | None:
    try:
        return date(int(id_number[6:10]), int(id_number[10:12]), int(id_number[12:14]))
    except ValueError:
        return None


def check_new_student(
    student_id: str, name: str, id_number: str, birth_date: str, group: StudentGroup | None
) -> NewStudent:
    """Validates a new student's fields (no I/O); StudentDataError names the first bad one."""
    if not student_id:
        raise StudentDataError(Problem.MISSING_FIELD, "student_id", "required")
    if STUDENT_ID.fullmatch(student_id) is None:
        raise StudentDataError(
            Problem.BAD_FIELD, "student_id", "1 to 64 characters: letters, digits, '.', '_', ':' and '-'"
        )
    name = name.strip()
    if not name:
        raise StudentDataError(Problem.MISSING_FIELD, "name", "required")
    if len(name) > MAX_NAME_CHARS or any(unicodedata.category(c).startswith("C") for c in name):
        raise StudentDataError(
            Problem.BAD_FIELD, "name", f"at most {MAX_NAME_CHARS} characters, no control characters"
        )
    if not id_number:
        raise StudentDataError(Problem.MISSING_FIELD, "id_number", "required")
    id_number = id_number.upper()
    born_in_id = birth_date_in(id_number) if is_valid_id_number(id_number) else None
    if born_in_id is None:
        raise StudentDataError(
            Problem.BAD_ID_NUMBER, "id_number", "not an 18-character ID number with a valid check digit"
        )
    if not birth_date:
        raise StudentDataError(Problem.MISSING_FIELD, "birth_date", "required")
    try:
        born = date.fromisoformat(birth_date)
    except ValueError:
        raise StudentDataError(Problem.BAD_BIRTH_DATE, "birth_date", "not a date (YYYY-MM-DD)") from None
    if len(birth_date) != 10 or born != born_in_id:
        raise StudentDataError(
            Problem.BAD_BIRTH_DATE, "birth_date", "not the birth date inside the ID number (YYYY-MM-DD)"
        )
    if group is None:
        raise StudentDataError(Problem.UNKNOWN_GROUP, "group", "boarder or day")
    return NewStudent(student_id, name, id_number, born, group)


def age_on(born: date, day: date) -> int:
    return day.year - born.year - ((day.month, day.day) < (born.month, born.day))


def is_minor(birth_date: str, today: date) -> bool:
    """Under 18 on `today`; an unknown birth date ("") counts as a minor (the guardian is asked)."""
    try:
        born = date.fromisoformat(birth_date)
    except ValueError:
        return True
    return age_on(born, today) < ADULT_AGE
