"""Roster CSV: the header, each row checked on its own, duplicates, limits."""

from __future__ import annotations

import pytest

from onecard_hub.domain.enrollment import Problem
from onecard_hub.domain.errors import InvalidArgument
from onecard_hub.domain.model import StudentGroup
from onecard_hub.domain.roster_csv import MAX_ROWS, decode, parse_roster
from tests.unit.test_enrollment import id_number

HEADER = "student_id,name,id_number,birth_date,group\n"
A = id_number("20080101", seq="011")
B = id_number("20070615", seq="022")
C = id_number("20090303", seq="033")


def test_good_rows_in_any_column_order_with_chinese_groups() -> None:
    text = (
        "\ufeff Group ,NAME,id_number,birth_date,student_id\r\n"
        f"boarder,张三,{A},2008-01-01,s-1\r\n"
        "\r\n"
        f"走读,李四,{B.lower()},2007-06-15,s-2\r\n"
    )
    rows = parse_roster(text)
    assert [(r.line, r.student_id, r.problem) for r in rows] == [(2, "s-1", None), (4, "s-2", None)]
    assert [r.student.group for r in rows if r.student] == [StudentGroup.BOARDER, StudentGroup.DAY]


def test_each_bad_row_says_why_and_the_good_ones_stand() -> None:
    bad_check = A[:17] + ("0" if A[17] != "0" else "1")
    text = HEADER + "\n".join(
        [
            f"s-1,张三,{A},2008-01-01,boarder",  # good
            f"s-2,李四,{bad_check},2008-01-01,day",  # bad check digit
            f"s-3,王五,{B},2007-06-16,day",  # birth date not the ID's
            f"s-4,赵六,{C},2009-03-03,dorm",  # unknown group
            f"s-5,钱七,{A},2008-01-01,day",  # same ID number as s-1
            f"s-1,孙八,{B},2007-06-15,day",  # same student_id as s-1
            f"s-7,周九,{C}",  # too few fields
            f"s-8,,{C},2009-03-03,day",  # empty name
            f"s 9,吴十,{C},2009-03-03,day",  # bad student_id
            f"s-10,郑一,{C},2009-03-03,住校",  # good
        ]
    )
    rows = parse_roster(text)
    assert [r.problem for r in rows] == [
        None,
        Problem.BAD_ID_NUMBER,
        Problem.BAD_BIRTH_DATE,
        Problem.UNKNOWN_GROUP,
        Problem.DUPLICATE_IN_ROSTER,
        Problem.DUPLICATE_IN_ROSTER,
        Problem.MISSING_FIELD,
        Problem.MISSING_FIELD,
        Problem.BAD_FIELD,
        None,
    ]
    assert [r.line for r in rows] == list(range(2, 12))
    assert all(r.message and A not in r.message and C not in r.message for r in rows if r.problem)


@pytest.mark.parametrize(
    "text",
    [
        "",
        "\n\n",
        "student_id,name,id_number,birth_date\n",
        HEADER.replace("group", "class"),
        HEADER[:-1] + ",extra\n",
    ],
)
def test_a_roster_without_the_right_header_is_refused_whole(text: str) -> None:
    with pytest.raises(InvalidArgument) as raised:
        parse_roster(text)
    assert raised.value.field == "csv_text"


def test_limits_and_encoding() -> None:
    row = f"s-1,张三,{A},2008-01-01,day\n"
    with pytest.raises(InvalidArgument, match="rows"):
        parse_roster(HEADER + "x\n" * (MAX_ROWS + 1))
    with pytest.raises(InvalidArgument, match="bytes"):
        parse_roster(HEADER + row * 5_000)
    with pytest.raises(InvalidArgument) as raised:
        decode("名".encode("gbk") * 3)
    assert raised.value.field == "csv_bytes"
    assert decode(("\ufeff" + HEADER).encode()) == HEADER
    with pytest.raises(InvalidArgument, match="CSV"):
        parse_roster(HEADER + 's-1,"unterminated,x,y,z\n')
