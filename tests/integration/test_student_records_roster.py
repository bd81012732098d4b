"""ImportRoster on a real hub: a per-row report, good rows in, a bad row never half-applied."""

from __future__ import annotations

import sqlite3
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from onecard.records.v1 import student_records_service_pb2 as pb
from onecard_client import (
    ClientConfig,
    FailedPreconditionError,
    InvalidArgumentError,
    PermissionDeniedError,
    StudentRecordsClient,
)
from onecard_hub.server import RunningHub
from tests.conftest import db_count
from tests.helpers import Campus
from tests.unit.test_enrollment import id_number

HEADER = "student_id,name,id_number,birth_date,group\n"
A, B, C = id_number("20080101", seq="301"), id_number("20070615", seq="302"), id_number("20090303", seq="303")
ROSTER = HEADER + "\n".join(
    [
        f"r-1,张三,{A},2008-01-01,boarder",
        f"r-2,李四,{A[:17]}{'0' if A[17] != '0' else '1'},2008-01-01,day",  # bad check digit
        f"r-3,王五,{B},2007-06-15,day",
        f"r-4,赵六,{C},2009-03-04,day",  # birth date is not the ID's
        f"r-5,钱七,{C},2009-03-03,dorm",  # unknown group
        f"r-6,孙八,{B},2007-06-15,day",  # the ID number of r-3 again
        f"r-7,周九,{C},2009-03-03,走读",
    ]
)
OUTCOMES = [
    (2, "r-1", pb.ROW_OUTCOME_ENROLLED, pb.ROW_PROBLEM_UNSPECIFIED),
    (3, "r-2", pb.ROW_OUTCOME_REJECTED, pb.ROW_PROBLEM_BAD_ID_NUMBER),
    (4, "r-3", pb.ROW_OUTCOME_ENROLLED, pb.ROW_PROBLEM_UNSPECIFIED),
    (5, "r-4", pb.ROW_OUTCOME_REJECTED, pb.ROW_PROBLEM_BAD_BIRTH_DATE),
    (6, "r-5", pb.ROW_OUTCOME_REJECTED, pb.ROW_PROBLEM_UNKNOWN_GROUP),
    (7, "r-6", pb.ROW_OUTCOME_REJECTED, pb.ROW_PROBLEM_DUPLICATE_IN_ROSTER),
    (8, "r-7", pb.ROW_OUTCOME_ENROLLED, pb.ROW_PROBLEM_UNSPECIFIED),
]


@pytest.fixture
async def office(hub: RunningHub, campus: Campus) -> AsyncIterator[StudentRecordsClient]:
    async with StudentRecordsClient(f"{campus.school()}-clerk", ClientConfig(target=hub.target)) as client:
        yield client


def _outcomes(answer: pb.ImportRosterResponse) -> list[tuple[int, str, int, int]]:
    return [(r.line, r.student_id, r.outcome, r.problem) for r in answer.rows]


def _ids(campus_dir: Path) -> set[str]:
    with sqlite3.connect(campus_dir / "hub.db") as db:
        return {r[0] for r in db.execute("SELECT student_id FROM students WHERE student_id LIKE 'r-%'")}


async def test_good_rows_go_in_and_each_bad_row_is_reported(
    office: StudentRecordsClient, campus: Campus, campus_dir: Path
) -> None:
    students, accounts = db_count(campus_dir, "students"), db_count(campus_dir, "accounts")
    answer = await office.import_roster("roster-1", campus.school(), ROSTER)
    assert _outcomes(answer) == OUTCOMES
    assert (answer.enrolled, answer.existing, answer.rejected) == (3, 0, 4)
    assert all(r.message for r in answer.rows if r.outcome == pb.ROW_OUTCOME_REJECTED)
    assert not any(number in r.message for r in answer.rows for number in (A, B, C))
    assert _ids(campus_dir) == {"r-1", "r-3", "r-7"}
    assert db_count(campus_dir, "students") == students + 3
    assert db_count(campus_dir, "accounts") == accounts + 3
    r7 = (await office.get_student("r-7")).student
    assert (r7.group, r7.enrollment, r7.school_id) == (
        pb.STUDENT_GROUP_DAY,
        pb.ENROLLMENT_STATUS_ENROLLED,
        campus.school(),
    )


async def test_a_roster_is_idempotent_and_known_students_are_reported_existing(
    office: StudentRecordsClient, campus: Campus, campus_dir: Path
) -> None:
    school = campus.school()
    first = await office.import_roster("roster-2", school, ROSTER.encode())
    assert await office.import_roster("roster-2", school, ROSTER.encode()) == first  # a replay
    with pytest.raises(FailedPreconditionError) as reused:
        await office.import_roster("roster-2", school, ROSTER + "\n")
    assert reused.value.reason == "IDEMPOTENCY_KEY_REUSED"
    students = db_count(campus_dir, "students")
    fresh = id_number("20080101", seq="305")
    corrected = HEADER + "\n".join(
        [
            f"r-8,钱七,{C},2009-03-03,day",  # C is known already (as r-7)
            f"r-3,王五,{B},2007-06-15,boarder",  # known: the group does not change
            f"r-1,李四,{fresh},2008-01-01,day",  # a new ID number, but r-1 is someone else's
        ]
    )
    again = await office.import_roster("roster-3", school, corrected)
    assert [(r.outcome, r.problem) for r in again.rows] == [
        (pb.ROW_OUTCOME_EXISTING, pb.ROW_PROBLEM_UNSPECIFIED),
        (pb.ROW_OUTCOME_EXISTING, pb.ROW_PROBLEM_UNSPECIFIED),
        (pb.ROW_OUTCOME_REJECTED, pb.ROW_PROBLEM_STUDENT_ID_TAKEN),
    ]
    assert db_count(campus_dir, "students") == students
    assert (await office.get_student("r-3")).student.group == pb.STUDENT_GROUP_DAY


async def test_a_roster_that_cannot_be_read_changes_nothing(
    office: StudentRecordsClient, hub: RunningHub, campus: Campus, campus_dir: Path
) -> None:
    students = db_count(campus_dir, "students")
    with pytest.raises(InvalidArgumentError) as header:
        await office.import_roster("roster-4", campus.school(), "id,name\n1,张三\n")
    assert header.value.field == "csv_text"
    with pytest.raises(InvalidArgumentError) as encoding:
        await office.import_roster("roster-5", campus.school(), ROSTER.encode("gbk"))
    assert encoding.value.field == "csv_bytes"
    with pytest.raises(PermissionDeniedError):
        await office.import_roster("roster-6", campus.school(1), ROSTER)
    assert db_count(campus_dir, "students") == students
