"""The campus' students and cards as the hub reads them when it first needs one (recovery.py):
a student's row and the rows of all their cards, each card with its current counters.

The hub does not read the million students and cards of a large campus at start. It reads a
student, with all their cards, the first time a call names the student or one of the cards, through
`CampusRows`: a read-only connection of its own on the event loop's thread (a lookup by primary key
or index, tens of microseconds), and it keeps what it built. A whole walk (`student_chunks`,
`card_chunks`) is for the few callers that need every student or card.

A card's counters are `card_state` (what the last fold wrote) unless `card_state_log` holds rows for
the card that no fold took in yet; the latest of those is read once, when the store loads (`tail`),
not per card: every row the log gains later is about a card the hub already holds, so a card read
later has no log rows but those of the tail.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from onecard_hub.domain.blocklist import BLOCKING_STATUSES

# A card's columns, in the order of records.CardRow's fields.
CARD_COLUMNS = (
    "c.card_no, c.student_id, c.status, c.pin_hash, c.bank_code, COALESCE(s.atc, 0),"
    " COALESCE(s.pin_failures, 0), COALESCE(s.presence, 0), c.bank_status, c.generation,"
    " c.ecard_issued, c.ecard_suspended, c.issued_ms, c.replaced_by"
)
CARDS = f"SELECT {CARD_COLUMNS} FROM cards c LEFT JOIN card_state s ON s.card_no = c.card_no"
STUDENT_COLUMNS = (
    "student_id, school_id, name, id_number_index, id_number_masked, birth_date, student_group,"
    " enrollment, wallet_account_id"
)
STUDENT_WIDTH = 9
_STUDENT = ", ".join(f"st.{name.strip()}" for name in STUDENT_COLUMNS.split(","))
# A student and all their cards, by the student or by one of the cards, the cards in issue order.
BY_STUDENT = (
    f"SELECT {_STUDENT}, {CARD_COLUMNS} FROM students st LEFT JOIN cards c ON c.student_id = st.student_id"
    " LEFT JOIN card_state s ON s.card_no = c.card_no WHERE st.student_id = ? ORDER BY c.rowid"
)
BY_CARD = (
    f"SELECT {_STUDENT}, {CARD_COLUMNS} FROM cards k JOIN students st ON st.student_id = k.student_id"
    " JOIN cards c ON c.student_id = k.student_id LEFT JOIN card_state s ON s.card_no = c.card_no"
    " WHERE k.card_no = ? ORDER BY c.rowid"
)
# The students of a range of rowids, each with all their cards: a step of the background fill.
BY_ROWIDS = (
    f"SELECT {_STUDENT}, {CARD_COLUMNS} FROM students st LEFT JOIN cards c ON c.student_id = st.student_id"
    " LEFT JOIN card_state s ON s.card_no = c.card_no WHERE st.rowid > ? AND st.rowid <= ?"
    " ORDER BY st.rowid, c.rowid"
)
# The latest counters of each card the log holds (the log is folded away every so often).
LOG_TAIL = (
    "SELECT card_no, atc, pin_failures, presence FROM card_state_log"
    " WHERE entry_id IN (SELECT MAX(entry_id) FROM card_state_log GROUP BY card_no)"
)
CHUNK_ROWS = 4_096  # rows of a whole walk in memory at once
POINT_CACHE_KB = 16_384  # SQLite's page cache of the lookups' connection
STATE = slice(5, 8)  # atc, pin_failures, presence in a card's row

CardTail = dict[str, tuple[int, int, int]]  # card_no → the latest (atc, pin_failures, presence) logged
StudentWithCards = tuple[tuple[Any, ...], list[tuple[Any, ...]]]  # STUDENT_COLUMNS, CARD_COLUMNS rows


def with_tail(row: tuple[Any, ...], tail: CardTail) -> tuple[Any, ...]:
    """A card's row with its counters from the tail of the log, when the log has any."""
    logged = tail.get(row[0])
    return row if logged is None else (*row[: STATE.start], *logged, *row[STATE.stop :])


class CampusRows:
    """Students and cards read one student at a time (or all of them, walked in chunks), through a
    read-only connection used on one thread: the event loop's."""

    def __init__(self, path: Path, tail: CardTail) -> None:
        self.path = path
        self.tail = tail
        self._uri = path.resolve().as_uri() + "?mode=ro"
        self._db: sqlite3.Connection | None = None
        self._closed = False

    def _conn(self) -> sqlite3.Connection:
        if self._db is None:
            if self._closed:
                raise RuntimeError("store is not open")
            self._db = sqlite3.connect(self._uri, uri=True, isolation_level=None)
            self._db.execute("PRAGMA busy_timeout=5000")
            # the inner pages of the b-trees a lookup descends stay cached: at 1M cards a first lookup
            # took 91 µs of CPU with SQLite's default 2 MB, 26 µs with this (measured)
            self._db.execute(f"PRAGMA cache_size=-{POINT_CACHE_KB}")
        return self._db

    def forget_pages(self) -> None:
        """Nothing more is looked up but the odd ID number: the lookups' page cache goes back to
        SQLite's default."""
        if self._db is not None:
            self._db.execute("PRAGMA cache_size=-2000")

    def close(self) -> None:
        """For good: a lookup after it raises (the store is closed)."""
        self._closed = True
        db, self._db = self._db, None
        if db is not None:
            db.close()

    # -- one student ---------------------------------------------------------------------------------

    def student(self, student_id: str) -> StudentWithCards | None:
        """The student's row and their cards' rows, in issue order; None when there is no such
        student. One query (a student's cards come with them: each lookup is a few pages)."""
        rows = self._conn().execute(BY_STUDENT, (student_id,)).fetchall()
        return self._split(rows)

    def student_of_card(self, card_no: str) -> StudentWithCards | None:
        """As `student`, for the student whose card `card_no` is; None when there is no such card."""
        return self._split(self._conn().execute(BY_CARD, (card_no,)).fetchall())

    def student_with_id_index(self, id_index: bytes) -> str | None:
        """The student_id of the student whose ID number has this keyed index (a unique column)."""
        row = self._conn().execute("SELECT student_id FROM students WHERE id_number_index = ?", (id_index,))
        found = row.fetchone()
        return None if found is None else str(found[0])

    def students_between(self, after: int, upto: int) -> list[StudentWithCards]:
        """The students whose rowid is in (after, upto], each with all their cards, in rowid order."""
        rows = self._conn().execute(BY_ROWIDS, (after, upto)).fetchall()
        found: list[StudentWithCards] = []
        start = 0
        for end in range(1, len(rows) + 1):
            if end == len(rows) or rows[end][0] != rows[start][0]:
                one = self._split(rows[start:end])
                if one is not None:
                    found.append(one)
                start = end
        return found

    def last_student_rowid(self) -> int:
        return int(self._conn().execute("SELECT COALESCE(MAX(rowid), 0) FROM students").fetchone()[0])

    def _split(self, rows: list[tuple[Any, ...]]) -> StudentWithCards | None:
        if not rows:
            return None
        cards = [with_tail(row[STUDENT_WIDTH:], self.tail) for row in rows if row[STUDENT_WIDTH] is not None]
        return rows[0][:STUDENT_WIDTH], cards

    # -- everything ----------------------------------------------------------------------------------

    def blocked_cards(self) -> list[tuple[str, str]]:
        """(card_no, school_id) of every card whose status puts it on its school's blocklist."""
        marks = ", ".join("?" * len(BLOCKING_STATUSES))
        rows = self._conn().execute(
            "SELECT c.card_no, s.school_id FROM cards c JOIN students s ON s.student_id = c.student_id"
            f" WHERE c.status IN ({marks}) ORDER BY c.rowid",
            sorted(status.value for status in BLOCKING_STATUSES),
        )
        return [(str(no), str(school)) for no, school in rows]

    def student_chunks(self) -> Iterator[Sequence[tuple[Any, ...]]]:
        """Every student's row (STUDENT_COLUMNS), in rowid order, a chunk at a time."""
        return self._walk(f"SELECT {STUDENT_COLUMNS} FROM students ORDER BY rowid")

    def card_chunks(self) -> Iterator[Sequence[tuple[Any, ...]]]:
        """Every card's row with its current counters, in issue order, a chunk at a time."""
        tail = self.tail
        for chunk in self._walk(f"{CARDS} ORDER BY c.rowid"):
            yield [with_tail(row, tail) for row in chunk] if tail else chunk

    def _walk(self, query: str) -> Iterator[Sequence[tuple[Any, ...]]]:
        # a connection of its own: a walk may be read while point reads go on
        return walk(self._uri, query)


def walk(uri: str, query: str) -> Iterator[list[tuple[Any, ...]]]:
    """The rows of `query`, `CHUNK_ROWS` at a time, through a read-only connection of its own
    (`uri`: the database's, with mode=ro) that is closed once the walk ends."""
    conn = sqlite3.connect(uri, uri=True)
    try:
        cursor = conn.execute(query)
        cursor.arraysize = CHUNK_ROWS
        while chunk := cursor.fetchmany():
            yield chunk
    finally:
        conn.close()
