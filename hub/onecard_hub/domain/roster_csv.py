"""A school's roster as CSV: parsing and row validation (pure; no I/O, no keys).

    student_id,name,id_number,birth_date,group
    2024-0001,张三,360102200801011234,2008-01-01,boarder
    2024-0002,李四,36010220080202123X,2008-02-02,走读

The header names the five columns in any order (case and surrounding spaces ignored; nothing else).
`group` is boarder or day (住校/住校生, 走读/走读生 too); `birth_date` is YYYY-MM-DD and must be the
one inside the ID number. UTF-8, a byte-order mark allowed; blank lines are skipped. Each data row
becomes a `RosterRow`: its checked student, or the problem that rejects it. A row repeating the ID
number or student_id of an earlier good row is rejected as a duplicate; the first one stands.
Whether a student is known already is for the caller to decide (it needs the campus and the keys).
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass

from onecard_hub.domain.enrollment import (
    GROUP_NAMES,
    NewStudent,
    Problem,
    StudentDataError,
    check_new_student,
)
from onecard_hub.domain.errors import InvalidArgument
from onecard_hub.domain.pii import mask_id_number

COLUMNS = ("student_id", "name", "id_number", "birth_date", "group")
MAX_ROWS = 5_000
MAX_BYTES = 200 * 1024
MAX_FIELD_CHARS = 256


@dataclass(frozen=True, slots=True)
class RosterRow:
    line: int  # the CSV line the row ends on; the header is line 1
    student_id: str  # as written (for the report)
    student: NewStudent | None  # None: rejected
    problem: Problem | None = None
    message: str = ""


def decode(data: bytes, field: str = "csv_bytes") -> str:
    if len(data) > MAX_BYTES:
        raise InvalidArgument(field, f"at most {MAX_BYTES} bytes")
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise InvalidArgument(field, "not UTF-8 text") from None


def parse_roster(text: str, field: str = "csv_text") -> list[RosterRow]:
    """Every data row of the roster, checked; INVALID_ARGUMENT for a roster that cannot be read at all."""
    if len(text.encode()) > MAX_BYTES:
        raise InvalidArgument(field, f"at most {MAX_BYTES} bytes")
    text = text.removeprefix("\ufeff")
    reader = csv.reader(io.StringIO(text, newline=""), strict=True)
    try:
        header = next((r for r in reader if any(c.strip() for c in r)), None)
        if header is None:
            raise InvalidArgument(field, "empty: the header line is missing")
        names = [c.strip().lower() for c in header]
        if sorted(names) != sorted(COLUMNS):
            raise InvalidArgument(field, f"the header must name exactly these columns: {','.join(COLUMNS)}")
        position = {name: names.index(name) for name in COLUMNS}
        rows: list[RosterRow] = []
        seen_ids: set[str] = set()
        seen_student_ids: set[str] = set()
        for record in reader:
            if not any(c.strip() for c in record):
                continue
            if len(rows) >= MAX_ROWS:
                raise InvalidArgument(field, f"at most {MAX_ROWS} rows")
            row = _row(reader.line_num, record, position)
            if row.student is not None:
                row = _unique(row, row.student, seen_ids, seen_student_ids)
            rows.append(row)
    except csv.Error as exc:
        raise InvalidArgument(field, f"not readable as CSV at line {reader.line_num}: {exc}") from None
    return rows


def _row(line: int, record: list[str], position: dict[str, int]) -> RosterRow:
    raw_id = record[position["student_id"]].strip() if len(record) > position["student_id"] else ""
    shown_id = raw_id[:64]
    if len(record) != len(COLUMNS):
        return RosterRow(
            line,
            shown_id,
            None,
            Problem.MISSING_FIELD,
            f"{len(record)} fields where the header has {len(COLUMNS)}",
        )
    fields = {name: record[i].strip() for name, i in position.items()}
    for name, value in fields.items():
        if len(value) > MAX_FIELD_CHARS:
            return RosterRow(line, shown_id, None, Problem.BAD_FIELD, f"{name}: too long")
    group_text = fields["group"]
    group = GROUP_NAMES.get(group_text.lower(), GROUP_NAMES.get(group_text))
    if not group_text:
        return RosterRow(line, shown_id, None, Problem.MISSING_FIELD, "group: required")
    try:
        student = check_new_student(
            fields["student_id"], fields["name"], fields["id_number"], fields["birth_date"], group
        )
    except StudentDataError as exc:
        return RosterRow(line, shown_id, None, exc.problem, f"{exc.field}: {exc.message}")
    return RosterRow(line, shown_id, student)


def _unique(row: RosterRow, student: NewStudent, seen_ids: set[str], seen_student_ids: set[str]) -> RosterRow:
    if student.id_number in seen_ids:
        return RosterRow(
            row.line,
            row.student_id,
            None,
            Problem.DUPLICATE_IN_ROSTER,
            f"id_number: {mask_id_number(student.id_number)} is on an earlier row",
        )
    if student.student_id in seen_student_ids:
        return RosterRow(
            row.line, row.student_id, None, Problem.DUPLICATE_IN_ROSTER, "student_id: on an earlier row"
        )
    seen_ids.add(student.id_number)
    seen_student_ids.add(student.student_id)
    return row
