"""The SQLite rows of funds (funds/): top-ups, auto top-up settings and changes of bank, upserted as
they change (a top-up's row is written PENDING with its transfer id before the debit is sent) and
read back at start, so the settler resumes every top-up that is not final."""

from __future__ import annotations

import sqlite3
from dataclasses import astuple

import aiosqlite

from onecard_hub.store.records import AutoTopUpRow, BankChangeRow, Batch, Snapshot, TopUpRow

TOPUP_COLUMNS = (
    "topup_id, student_id, school_id, card_no, bank_code, amount_fen, origin, business_date, created_ms,"
    " state, reason, reversals, updated_ms"
)
AUTO_COLUMNS = "student_id, enabled, threshold_fen, amount_fen, last_topup_id, last_failure, updated_ms"
CHANGE_COLUMNS = (
    "student_id, card_no, old_bank_code, new_bank_code, created_ms, state, paid_out_fen, updated_ms"
)

UPSERT_TOPUP = f"INSERT OR REPLACE INTO topups ({TOPUP_COLUMNS}) VALUES ({', '.join('?' * 13)})"
UPSERT_AUTO = f"INSERT OR REPLACE INTO auto_topups ({AUTO_COLUMNS}) VALUES ({', '.join('?' * 7)})"
UPSERT_CHANGE = f"INSERT OR REPLACE INTO bank_changes ({CHANGE_COLUMNS}) VALUES ({', '.join('?' * 8)})"


def write_funds(db: sqlite3.Connection, batch: Batch) -> None:
    """Runs on the journal's connection, inside the batch's transaction (store/journal.py)."""
    for statement, rows in (
        (UPSERT_TOPUP, batch.topups),
        (UPSERT_AUTO, batch.auto_topups),
        (UPSERT_CHANGE, batch.bank_changes),
    ):
        if rows:
            db.executemany(statement, [astuple(r) for r in rows])


async def load_funds(db: aiosqlite.Connection, snap: Snapshot) -> None:
    async with db.execute(f"SELECT {TOPUP_COLUMNS} FROM topups ORDER BY created_ms, rowid") as cur:
        snap.topups = [TopUpRow(*r) for r in await cur.fetchall()]
    async with db.execute(f"SELECT {AUTO_COLUMNS} FROM auto_topups") as cur:
        snap.auto_topups = [
            AutoTopUpRow(r[0], bool(r[1]), r[2], r[3], r[4], r[5], r[6]) for r in await cur.fetchall()
        ]
    async with db.execute(f"SELECT {CHANGE_COLUMNS} FROM bank_changes ORDER BY created_ms, rowid") as cur:
        snap.bank_changes = [BankChangeRow(*r) for r in await cur.fetchall()]
