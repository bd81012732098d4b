"""The SQLite rows of the provincial card system's feed: each change the hub took, written in the
batch that applied it; the highest version read back at start (where the feed resumes)."""

from __future__ import annotations

import sqlite3
from dataclasses import astuple

import aiosqlite

from onecard_hub.store.records import Batch, CardsysChangeRow, Snapshot

COLUMNS = "version, card_no, function, action, channel, occurred_ms, applied_ms, outcome"
INSERT_CHANGE = f"INSERT INTO cardsys_changes ({COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?)"


def write_cardsys(db: sqlite3.Connection, batch: Batch) -> None:
    """Runs on the journal's connection, inside the batch's transaction (store/journal.py)."""
    if batch.cardsys:
        db.executemany(INSERT_CHANGE, [astuple(c) for c in batch.cardsys])


async def load_cardsys(db: aiosqlite.Connection, snap: Snapshot) -> None:
    async with db.execute("SELECT COALESCE(MAX(version), 0) FROM cardsys_changes") as cur:
        row = await cur.fetchone()
    snap.cardsys_version = int(row[0]) if row else 0


async def cardsys_changes(db: aiosqlite.Connection, card_no: str = "") -> list[CardsysChangeRow]:
    """Every change taken (of one card, if named), by version: for tests and support."""
    sql = f"SELECT {COLUMNS} FROM cardsys_changes WHERE (? = '' OR card_no = ?) ORDER BY version"
    async with db.execute(sql, (card_no, card_no)) as cur:
        return [CardsysChangeRow(*r) for r in await cur.fetchall()]
