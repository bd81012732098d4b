"""学籍 rules: the transition table, and what a new student must look like."""

from __future__ import annotations

from datetime import date

import pytest

from onecard_hub.domain.enrollment import (
    TRANSITIONS,
    Action,
    Problem,
    StudentDataError,
    check_new_student,
    is_minor,
    next_status,
)
from onecard_hub.domain.errors import FailedPrecondition
from onecard_hub.domain.model import Enrollment, StudentGroup
from onecard_hub.domain.pii import id_check_digit

E = Enrollment


def id_number(born: str = "20080101", area: str = "360102", seq: str = "123") -> str:
    first17 = area + born + seq
    return first17 + id_check_digit(first17)


ALLOWED = {
    (Action.SUSPEND, E.ENROLLED): E.SUSPENDED,
    (Action.RESUME, E.SUSPENDED): E.ENROLLED,
    (Action.GRADUATE, E.ENROLLED): E.GRADUATED,
    (Action.WITHDRAW, E.ENROLLED): E.WITHDRAWN,
    (Action.WITHDRAW, E.SUSPENDED): E.WITHDRAWN,
    (Action.TRANSFER, E.ENROLLED): E.ENROLLED,
    (Action.TRANSFER, E.SUSPENDED): E.SUSPENDED,
}


@pytest.mark.parametrize("action", list(Action))
@pytest.mark.parametrize("current", list(Enrollment))
def test_every_transition_is_allowed_or_refused_with_the_current_state(action: Action, current: E) -> None:
    expected = ALLOWED.get((action, current))
    if expected is not None:
        assert next_status(action, current) is expected
        return
    with pytest.raises(FailedPrecondition) as raised:
        next_status(action, current)
    assert raised.value.reason == "ILLEGAL_TRANSITION"
    assert raised.value.metadata == {"state": current.value}


def test_graduated_and_withdrawn_are_final() -> None:
    for final in (E.GRADUATED, E.WITHDRAWN):
        assert all(final not in table for table in TRANSITIONS.values())


def test_a_good_student_passes_and_the_check_character_is_upper_case() -> None:
    number = id_number(seq="002")
    lower = number[:17] + number[17].lower()
    new = check_new_student("2024-0001", " 张三 ", lower, "2008-01-01", StudentGroup.DAY)
    assert (new.name, new.id_number, new.birth_date) == ("张三", number.upper(), date(2008, 1, 1))


@pytest.mark.parametrize(
    ("fields", "problem", "field"),
    [
        ({"student_id": ""}, Problem.MISSING_FIELD, "student_id"),
        ({"student_id": "bad id!"}, Problem.BAD_FIELD, "student_id"),
        ({"name": "  "}, Problem.MISSING_FIELD, "name"),
        ({"name": "张" * 33}, Problem.BAD_FIELD, "name"),
        ({"name": "张\x00三"}, Problem.BAD_FIELD, "name"),
        ({"id_number": ""}, Problem.MISSING_FIELD, "id_number"),
        (
            {"id_number": id_number()[:17] + "0" if id_number()[17] != "0" else id_number()[:17] + "1"},
            Problem.BAD_ID_NUMBER,
            "id_number",
        ),
        (
            {"id_number": "36010220081301123" + id_check_digit("36010220081301123")},
            Problem.BAD_ID_NUMBER,
            "id_number",
        ),
        ({"id_number": "12345"}, Problem.BAD_ID_NUMBER, "id_number"),
        ({"birth_date": ""}, Problem.MISSING_FIELD, "birth_date"),
        ({"birth_date": "2008/01/01"}, Problem.BAD_BIRTH_DATE, "birth_date"),
        ({"birth_date": "2008-01-02"}, Problem.BAD_BIRTH_DATE, "birth_date"),
        ({"group": None}, Problem.UNKNOWN_GROUP, "group"),
    ],
)
def test_bad_fields_are_named(fields: dict[str, object], problem: Problem, field: str) -> None:
    values: dict[str, object] = {
        "student_id": "2024-0001",
        "name": "张三",
        "id_number": id_number(),
        "birth_date": "2008-01-01",
        "group": StudentGroup.BOARDER,
    }
    values.update(fields)
    with pytest.raises(StudentDataError) as raised:
        check_new_student(**values)  # type: ignore[arg-type]
    assert (raised.value.problem, raised.value.field) == (problem, field)
    assert id_number() not in str(raised.value)  # no ID number in the message


def test_minor_by_the_day() -> None:
    assert is_minor("2008-11-25", date(2026, 11, 24))
    assert not is_minor("2008-11-24", date(2026, 11, 24))
    assert is_minor("", date(2026, 11, 24))  # unknown: the guardian is asked
