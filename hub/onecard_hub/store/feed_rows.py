"""The SQLite rows of the live blocklist's change log and of misuse signals: written in the batch
that made them, read back (the newest `keep` per school) at start."""

from __future__ import annotations

import sqlite3
from typing import Any

import aiosqlite

from onecard_hub.domain.blocklist import KEEP_CHANGES, BlocklistChange
from onecard_hub.domain.misuse import KEEP_SIGNALS, MisuseKind, MisuseSignal, PlacedTap
from onecard_hub.domain.model import Scene
from onecard_hub.store.records import Batch, Snapshot

INSERT_BLOCKLIST_CHANGE = "INSERT INTO blocklist_changes VALUES (?, ?, ?, ?, ?)"
MISUSE_COLUMNS = (
    "signal_id, kind, card_no, student_id, school_id, first_terminal_id, first_school_id, first_place,"
    " first_scene, first_ms, second_terminal_id, second_school_id, second_place, second_scene, second_ms"
)
INSERT_MISUSE = f"INSERT INTO misuse_signals ({MISUSE_COLUMNS}) VALUES ({', '.join('?' * 15)})"
NEWEST_CHANGES = (
    "SELECT school_id, version, card_no, added, changed_ms FROM ("
    " SELECT *, ROW_NUMBER() OVER (PARTITION BY school_id ORDER BY version DESC) AS n"
    " FROM blocklist_changes) WHERE n <= ? ORDER BY school_id, version"
)
NEWEST_SIGNALS = (
    f"SELECT {MISUSE_COLUMNS} FROM ("
    " SELECT *, ROW_NUMBER() OVER (PARTITION BY school_id ORDER BY signal_id DESC) AS n"
    " FROM misuse_signals) WHERE n <= ? ORDER BY signal_id"
)


def _tap_params(tap: PlacedTap) -> tuple[Any, ...]:
    return (tap.terminal_id, tap.school_id, tap.place, int(tap.scene), tap.at_ms)


def misuse_params(s: MisuseSignal) -> tuple[Any, ...]:
    return (
        s.signal_id,
        s.kind.value,
        s.card_no,
        s.student_id,
        s.school_id,
        *_tap_params(s.first),
        *_tap_params(s.second),
    )


def _signal(r: Any) -> MisuseSignal:
    return MisuseSignal(
        r[0],
        MisuseKind(r[1]),
        r[2],
        r[3],
        r[4],
        PlacedTap(r[5], r[6], r[7], Scene(r[8]), r[9]),
        PlacedTap(r[10], r[11], r[12], Scene(r[13]), r[14]),
    )


def write_feed(db: sqlite3.Connection, batch: Batch) -> None:
    """Runs on the journal's connection, inside the batch's transaction (store/journal.py)."""
    if batch.blocklist:
        db.executemany(
            INSERT_BLOCKLIST_CHANGE,
            [(c.school_id, c.version, c.card_no, int(c.added), c.changed_ms) for c in batch.blocklist],
        )
    if batch.misuse:
        db.executemany(INSERT_MISUSE, [misuse_params(s) for s in batch.misuse])


async def load_feed(
    db: aiosqlite.Connection,
    snap: Snapshot,
    keep_changes: int = KEEP_CHANGES,
    keep_signals: int = KEEP_SIGNALS,
) -> None:
    async with db.execute(NEWEST_CHANGES, (keep_changes,)) as cur:
        snap.blocklist_changes = [
            BlocklistChange(r[0], r[1], r[2], bool(r[3]), r[4]) for r in await cur.fetchall()
        ]
    async with db.execute(NEWEST_SIGNALS, (keep_signals,)) as cur:
        snap.misuse_signals = [_signal(r) for r in await cur.fetchall()]
