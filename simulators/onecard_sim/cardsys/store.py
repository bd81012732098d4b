"""The provincial card system's own durable store: every change, its version and its request.

SQLite (WAL, synchronous FULL) through aiosqlite, written by one caller at a time. The version is
the row id (AUTOINCREMENT: it only grows and is never reused), so a subscriber that asks for the
changes after version V gets every change recorded after it, before and after a restart.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from pathlib import Path

import aiosqlite

from onecard_sim.cardsys.rules import BANK, CANCEL, IDENTITY, ChangeRequest, refuse_after_cancel, status_after

SCHEMA = """
CREATE TABLE IF NOT EXISTS changes (
    version     INTEGER PRIMARY KEY AUTOINCREMENT,
    request_id  TEXT NOT NULL UNIQUE,
    fingerprint BLOB NOT NULL,
    card_no     TEXT NOT NULL,
    function    INTEGER NOT NULL,
    action      INTEGER NOT NULL,
    channel     INTEGER NOT NULL,
    occurred_ms INTEGER NOT NULL,
    recorded_ms INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS changes_by_card ON changes (card_no, function, version);
"""
COLUMNS = "version, request_id, fingerprint, card_no, function, action, channel, occurred_ms, recorded_ms"
MAX_PAGE = 1_000


@dataclass(frozen=True, slots=True)
class ChangeRow:
    version: int
    request_id: str
    fingerprint: bytes
    card_no: str
    function: int
    action: int
    channel: int
    occurred_ms: int
    recorded_ms: int


@dataclass(frozen=True, slots=True)
class CardStatus:
    card_no: str
    identity_status: int  # IdentityStatus; 0 when no identity change was recorded
    bank_status: int  # BankStatus; 0 when no bank change was recorded
    last_version: int


class KeyReused(Exception):
    """The request_id was recorded with another body."""


class ChangeStore:
    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self._db: aiosqlite.Connection | None = None
        self._lock = asyncio.Lock()
        self.head = 0  # the latest version recorded

    @property
    def db(self) -> aiosqlite.Connection:
        if self._db is None:
            raise RuntimeError("the store is not open")
        return self._db

    async def open(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._db = await aiosqlite.connect(self.path, isolation_level=None)
        await self._db.execute("PRAGMA journal_mode = WAL")
        await self._db.execute("PRAGMA synchronous = FULL")
        await self._db.executescript(SCHEMA)
        async with self._db.execute("SELECT COALESCE(MAX(version), 0) FROM changes") as cur:
            row = await cur.fetchone()
        self.head = int(row[0]) if row else 0

    async def close(self) -> None:
        if self._db is not None:
            await self._db.close()
            self._db = None

    async def record(self, req: ChangeRequest, fingerprint: bytes, now_ms: int) -> tuple[ChangeRow, bool]:
        """Records the change and returns it with True; a repeat of a recorded request returns the
        first recording with False. Raises KeyReused, or RuleError after a cancellation."""
        async with self._lock:
            existing = await self._one(
                f"SELECT {COLUMNS} FROM changes WHERE request_id = ?", (req.request_id,)
            )
            if existing is not None:
                if existing.fingerprint != fingerprint:
                    raise KeyReused(req.request_id)
                return existing, False
            cancelled = await self._one(
                f"SELECT {COLUMNS} FROM changes WHERE card_no = ? AND function = ? AND action = ? LIMIT 1",
                (req.card_no, IDENTITY, CANCEL),
            )
            refuse_after_cancel(cancelled is not None)
            occurred = req.occurred_ms or now_ms
            db = self.db
            await db.execute("BEGIN IMMEDIATE")
            try:
                cur = await db.execute(
                    "INSERT INTO changes (request_id, fingerprint, card_no, function, action, channel,"
                    " occurred_ms, recorded_ms) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                    (
                        req.request_id,
                        fingerprint,
                        req.card_no,
                        req.function,
                        req.action,
                        req.channel,
                        occurred,
                        now_ms,
                    ),
                )
                version = int(cur.lastrowid or 0)
                await db.execute("COMMIT")
            except BaseException:
                await db.execute("ROLLBACK")
                raise
            self.head = version
            row = ChangeRow(
                version,
                req.request_id,
                fingerprint,
                req.card_no,
                req.function,
                req.action,
                req.channel,
                occurred,
                now_ms,
            )
            return row, True

    async def since(self, version: int, limit: int = 100) -> list[ChangeRow]:
        """The changes after `version`, oldest first, at most `limit` (≤ MAX_PAGE)."""
        async with self.db.execute(
            f"SELECT {COLUMNS} FROM changes WHERE version > ? ORDER BY version LIMIT ?",
            (version, min(limit, MAX_PAGE)),
        ) as cur:
            return [ChangeRow(*r) for r in await cur.fetchall()]

    async def status(self, card_no: str) -> CardStatus | None:
        """Each function's status after its latest change; None when nothing was recorded for the card."""
        latest: dict[int, ChangeRow] = {}
        for function in (IDENTITY, BANK):
            row = await self._one(
                f"SELECT {COLUMNS} FROM changes WHERE card_no = ? AND function = ?"
                " ORDER BY version DESC LIMIT 1",
                (card_no, function),
            )
            if row is not None:
                latest[function] = row
        if not latest:
            return None
        identity, bank = latest.get(IDENTITY), latest.get(BANK)
        return CardStatus(
            card_no,
            status_after(IDENTITY, identity.action) if identity else 0,
            status_after(BANK, bank.action) if bank else 0,
            max(r.version for r in latest.values()),
        )

    async def _one(self, sql: str, params: tuple[object, ...]) -> ChangeRow | None:
        async with self.db.execute(sql, params) as cur:
            row = await cur.fetchone()
        return ChangeRow(*row) if row is not None else None
