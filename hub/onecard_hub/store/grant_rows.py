"""The SQLite rows of grants (grants/): batches and items are upserted (an item's row carries its
current state and bank transfer id), notices inserted once; all read back at start."""

from __future__ import annotations

import sqlite3
from dataclasses import astuple

import aiosqlite

from onecard_hub.store.records import Batch, GrantBatchRow, GrantItemRow, GrantNoticeRow, Snapshot

BATCH_COLUMNS = (
    "school_id, batch_id, grant_type, academic_year, status, submitted_by, approved_by, created_ms"
)
ITEM_COLUMNS = (
    "school_id, batch_id, student_id, line_no, amount_fen, status, fail_reason, attempts, transfer_id,"
    " bank_code, card_no, updated_ms"
)
NOTICE_COLUMNS = "school_id, batch_id, student_id, name_masked, grant_type, amount_fen, created_ms, message"

UPSERT_BATCH = f"INSERT OR REPLACE INTO grant_batches ({BATCH_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?)"
UPSERT_ITEM = (
    f"INSERT OR REPLACE INTO grant_items ({ITEM_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
)
INSERT_NOTICE = f"INSERT OR IGNORE INTO grant_notices ({NOTICE_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?)"


def write_grants(db: sqlite3.Connection, batch: Batch) -> None:
    """Runs on the journal's connection, inside the batch's transaction (store/journal.py)."""
    for statement, rows in (
        (UPSERT_BATCH, batch.grant_batches),
        (UPSERT_ITEM, batch.grant_items),
        (INSERT_NOTICE, batch.grant_notices),
    ):
        if rows:
            db.executemany(statement, [astuple(r) for r in rows])


async def load_grants(db: aiosqlite.Connection, snap: Snapshot) -> None:
    async with db.execute(f"SELECT {BATCH_COLUMNS} FROM grant_batches ORDER BY created_ms, rowid") as cur:
        snap.grant_batches = [GrantBatchRow(*r) for r in await cur.fetchall()]
    async with db.execute(
        f"SELECT {ITEM_COLUMNS} FROM grant_items ORDER BY school_id, batch_id, line_no"
    ) as cur:
        snap.grant_items = [GrantItemRow(*r) for r in await cur.fetchall()]
    async with db.execute(f"SELECT {NOTICE_COLUMNS} FROM grant_notices ORDER BY created_ms, rowid") as cur:
        snap.grant_notices = [GrantNoticeRow(*r) for r in await cur.fetchall()]
