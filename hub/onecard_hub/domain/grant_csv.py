"""A grant batch as CSV text (pure; no I/O):

    student_id,amount_fen
    2024-0001,250000
    2024-0002,250000,备注 (an optional third column, ignored)

The header must be `student_id,amount_fen` (case and surrounding spaces ignored; a third column
`note` allowed). Amounts are integer fen. Blank lines are skipped. The header is line 1; each row's
number is the line it is on, so the error report points at the file. A row that cannot be read
(too few or too many columns, empty student_id, an amount that is not an integer) becomes a
MALFORMED_ROW error; the others become `Line`s for `grants.check_lines`.
"""

from __future__ import annotations

import csv
import io

from onecard_hub.domain.errors import InvalidArgument, quoted
from onecard_hub.domain.grants import MAX_ITEMS, Line, LineError, LineProblem

MAX_CHARS = 1024 * 1024
HEADER = ("student_id", "amount_fen")


def parse_grant_csv(text: str, field: str = "csv") -> tuple[list[Line], list[LineError]]:
    if len(text) > MAX_CHARS:
        raise InvalidArgument(field, f"at most {MAX_CHARS} characters")
    rows = list(csv.reader(io.StringIO(text.lstrip("\ufeff"))))
    numbered = [(n, row) for n, row in enumerate(rows, start=1) if any(c.strip() for c in row)]
    if not numbered:
        raise InvalidArgument(field, "empty: a header student_id,amount_fen and one row per item")
    head_line, head = numbered[0]
    names = tuple(c.strip().lower() for c in head)
    if names[:2] != HEADER or len(names) > 3:
        raise InvalidArgument(field, f"line {head_line}: the header must be student_id,amount_fen[,note]")
    if len(numbered) - 1 > MAX_ITEMS:
        raise InvalidArgument(field, f"at most {MAX_ITEMS} rows")
    lines: list[Line] = []
    errors: list[LineError] = []
    for number, row in numbered[1:]:
        student_id = row[0].strip() if row else ""
        if len(row) < 2 or len(row) > 3:
            errors.append(
                LineError(
                    number,
                    student_id,
                    LineProblem.MALFORMED_ROW,
                    f"{len(row)} columns, expected student_id,amount_fen[,note]",
                )
            )
            continue
        if not student_id:
            errors.append(LineError(number, "", LineProblem.MALFORMED_ROW, "student_id is empty"))
            continue
        amount = row[1].strip()
        try:
            fen = int(amount)
        except ValueError:
            errors.append(
                LineError(
                    number,
                    student_id,
                    LineProblem.MALFORMED_ROW,
                    f"amount_fen {quoted(amount)}: not an integer",
                )
            )
            continue
        lines.append(Line(number, student_id, fen))
    return lines, errors
