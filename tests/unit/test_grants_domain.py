"""Grant rules without I/O: line checks, the CSV reader, transfer ids, notices, coverage."""

from __future__ import annotations

import pytest

from onecard_hub.domain.errors import InvalidArgument
from onecard_hub.domain.grant_csv import parse_grant_csv
from onecard_hub.domain.grants import (
    MAX_ITEM_FEN,
    GrantBatch,
    GrantItem,
    GrantType,
    Group,
    ItemStatus,
    Line,
    LineProblem,
    check_lines,
    coverage,
    notice_text,
    transfer_id,
)
from onecard_hub.domain.ledger import Account, AccountKind
from onecard_hub.domain.model import Enrollment, Student, StudentGroup, Wallet


def student(student_id: str, school_id: str = "S1", group: StudentGroup = StudentGroup.BOARDER) -> Student:
    wallet = Wallet(Account(hash(student_id) % 10_000, AccountKind.WALLET, student_id))
    return Student(student_id, school_id, "张*", group, Enrollment.ENROLLED, wallet)


STUDENTS = {s.student_id: s for s in (student("a"), student("b"), student("c", "S2"))}


def test_each_bad_line_is_reported_and_the_good_ones_kept() -> None:
    lines = [
        Line(1, "a", 100),
        Line(2, "zz", 100),
        Line(3, "c", 100),
        Line(4, "b", 0),
        Line(5, "b", MAX_ITEM_FEN + 1),
        Line(6, "a", 100),
        Line(7, "b", 5),
    ]
    good, errors = check_lines(lines, "S1", STUDENTS)
    assert [(g.line, g.student_id) for g in good] == [(1, "a"), (7, "b")]
    assert [(e.line, e.problem) for e in errors] == [
        (2, LineProblem.UNKNOWN_STUDENT),
        (3, LineProblem.OTHER_SCHOOL),
        (4, LineProblem.AMOUNT_NOT_POSITIVE),
        (5, LineProblem.AMOUNT_TOO_LARGE),
        (6, LineProblem.DUPLICATE_STUDENT),
    ]
    assert "line 1" in errors[-1].message


def test_the_csv_reader_numbers_lines_as_the_file_does() -> None:
    lines, errors = parse_grant_csv("\ufeffStudent_ID, Amount_Fen\n\na,100\nb\n,5\nc,x\nd,7,note\n")
    assert [(x.line, x.student_id, x.amount_fen) for x in lines] == [(3, "a", 100), (7, "d", 7)]
    assert [(e.line, e.problem) for e in errors] == [(n, LineProblem.MALFORMED_ROW) for n in (4, 5, 6)]
    for bad in ("", "\n\n", "id,amount\na,1"):
        with pytest.raises(InvalidArgument):
            parse_grant_csv(bad)


def batch(grant_type: GrantType = GrantType.NATIONAL_GRANT) -> GrantBatch:
    return GrantBatch("S1", "B1", grant_type, "2026-2027-1", "clerk", 0)


def test_transfer_ids_differ_per_item_and_attempt_and_repeat_for_the_same() -> None:
    b = batch()
    ids = {transfer_id(b, s, n) for s in ("a", "b") for n in (1, 2)}
    assert len(ids) == 4 and all(len(i) <= 64 for i in ids)
    assert transfer_id(b, "a", 1) == transfer_id(batch(), "a", 1)


def test_the_notice_names_the_grant_and_amount() -> None:
    text = notice_text(batch(GrantType.PROVINCIAL_SCHOLARSHIP), GrantItem("a", 123_456))
    assert "省政府奖学金" in text and "1234.56元" in text and "激活" in text


def test_coverage_counts_students_paid_per_type_and_group_and_the_gaps() -> None:
    day = student("d", group=StudentGroup.DAY)
    paid = batch()
    paid.items = {
        "a": GrantItem("a", 100, ItemStatus.PAID),
        "b": GrantItem("b", 100, ItemStatus.FAILED),
    }
    cells, not_covered, gaps = coverage([(STUDENTS["a"], True), (STUDENTS["b"], False), (day, False)], [paid])
    by = {(c.grant_type, c.group): c for c in cells}
    grant = GrantType.NATIONAL_GRANT
    assert (by[(grant, Group.BOARDER)].students, by[(grant, Group.BOARDER)].paid_students) == (2, 1)
    assert (by[(grant, Group.MINOR)].paid_students, by[(grant, Group.ADULT)].paid_students) == (1, 0)
    assert by[(grant, Group.BOARDER)].paid_fen == 100
    assert set(not_covered) == set(GrantType) - {grant}
    assert {(c.grant_type, c.group) for c in gaps if c.grant_type == grant} == {
        (grant, Group.DAY),
        (grant, Group.ADULT),
    }
