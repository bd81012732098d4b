"""The SQLite rows of settlement (settlement/): payments (upsert by purpose) and reconciliation
reports (upsert by bank and date), read back at start; and a day's ledger transfers, for takings."""

from __future__ import annotations

import sqlite3
from dataclasses import astuple

import aiosqlite

from onecard_hub.domain.ledger import Transfer, TransferKind
from onecard_hub.domain.settlement import GIVEN_BACK, SALES
from onecard_hub.store.records import Batch, PaymentRow, ReconciliationRow, Snapshot

PAYMENT_COLUMNS = (
    "payment_key, purpose, party_id, school_id, business_date, booked_date, bank_code, payee, amount_fen,"
    " sales_fen, sales_count, given_back_fen, given_back_count, status, failure, attempts, transfer_id,"
    " updated_ms"
)
REPORT_COLUMNS = "bank_code, business_date, unexplained, report, created_ms"

UPSERT_PAYMENT = (
    f"INSERT OR REPLACE INTO settlement_payments ({PAYMENT_COLUMNS}) VALUES ({', '.join('?' * 18)})"
)
UPSERT_REPORT = f"INSERT OR REPLACE INTO reconciliation_reports ({REPORT_COLUMNS}) VALUES (?, ?, ?, ?, ?)"
MERCHANT_KINDS = tuple(kind.value for kind in (*SALES, *GIVEN_BACK))


def write_settlement(db: sqlite3.Connection, batch: Batch) -> None:
    """Runs on the journal's connection, inside the batch's transaction (store/journal.py)."""
    if batch.payments:
        db.executemany(UPSERT_PAYMENT, [astuple(r) for r in batch.payments])
    if batch.reconciliations:
        db.executemany(UPSERT_REPORT, [astuple(r) for r in batch.reconciliations])


async def load_settlement(db: aiosqlite.Connection, snap: Snapshot) -> None:
    async with db.execute(f"SELECT {PAYMENT_COLUMNS} FROM settlement_payments ORDER BY rowid") as cur:
        snap.payments = [PaymentRow(*r) for r in await cur.fetchall()]
    async with db.execute(f"SELECT {REPORT_COLUMNS} FROM reconciliation_reports ORDER BY rowid") as cur:
        snap.reconciliations = [ReconciliationRow(*r) for r in await cur.fetchall()]


async def merchant_transfers(db: aiosqlite.Connection, start_ms: int, end_ms: int) -> list[Transfer]:
    """Purchases, offline purchases, refunds and reversals booked in [start_ms, end_ms)."""
    marks = ", ".join("?" * len(MERCHANT_KINDS))
    async with db.execute(
        "SELECT from_account, to_account, amount_fen, kind, caller, request_id, origin_request_id, created_ms"
        f" FROM transfers WHERE created_ms >= ? AND created_ms < ? AND kind IN ({marks})",
        (start_ms, end_ms, *MERCHANT_KINDS),
    ) as cur:
        rows = await cur.fetchall()
    return [Transfer(r[0], r[1], r[2], TransferKind(r[3]), r[4], r[5], r[6], r[7]) for r in rows]
