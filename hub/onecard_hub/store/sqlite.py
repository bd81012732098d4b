"""The SQLite store: WAL, synchronous=FULL by default; one writing connection (store/journal.py)
whose transactions are one call each, and an aiosqlite connection for reads."""

from __future__ import annotations

import logging
import sqlite3
import time
from collections.abc import Callable
from dataclasses import astuple
from functools import partial
from pathlib import Path
from typing import Any, TypeVar

import aiosqlite

from onecard_hub.domain.offline import BOOKED, OfflineRecord
from onecard_hub.store import statements as sql
from onecard_hub.store.campus_rows import LOG_TAIL, CampusRows, walk
from onecard_hub.store.cardsys_rows import load_cardsys, write_cardsys
from onecard_hub.store.checks import (
    NotAHubDatabase,
    NotWritable,
    SchemaTooNew,
    SchemaTooOld,
    check_writable,
    inspect_database,
)
from onecard_hub.store.feed_rows import load_feed, write_feed
from onecard_hub.store.fold import Folder
from onecard_hub.store.grant_rows import load_grants, write_grants
from onecard_hub.store.journal import JournalConnection
from onecard_hub.store.records import (
    AccountRow,
    AuditRow,
    Batch,
    ExamCheckInRow,
    ExamSeatRow,
    ExamSessionRow,
    GuardianRow,
    LedgerTotals,
    LoanRow,
    MerchantRow,
    OperatorRow,
    RequestRow,
    SchoolRow,
    SeedData,
    Snapshot,
    TableRows,
    TerminalRow,
    TerminalStatusRow,
)
from onecard_hub.store.schema import APPLICATION_ID, MIGRATIONS, SCHEMA_VERSION
from onecard_hub.store.settlement_rows import load_settlement, write_settlement
from onecard_hub.store.topup_rows import load_funds, write_funds
from onecard_hub.store.usage_rows import load_usage
from onecard_hub.store.wal_copier import WalCopier

log = logging.getLogger(__name__)
R = TypeVar("R")

SYNCHRONOUS_MODES = ("OFF", "NORMAL", "FULL", "EXTRA")
__all__ = ["SYNCHRONOUS_MODES", "SchemaTooNew", "SqliteStore"]  # SchemaTooNew: store/checks.py


class SqliteStore:
    def __init__(
        self,
        path: str | Path,
        *,
        synchronous: str = "FULL",
        checkpoint_rows: int = 2_000,
        fold_step_rows: int = 256,
    ) -> None:
        """`checkpoint_rows`: the fewest unfolded journal rows that start a fold (store/fold.py; a
        large campus waits for more); `fold_step_rows`: journal rows, accounts or cards per
        statement of a fold."""
        if synchronous.upper() not in SYNCHRONOUS_MODES:
            raise ValueError(f"synchronous must be one of {SYNCHRONOUS_MODES}")
        self.path = Path(path)
        self.synchronous = synchronous.upper()
        self.checkpoint_rows = checkpoint_rows
        self._db: aiosqlite.Connection | None = None  # reads
        self._journal: JournalConnection | None = None  # every write
        self._campus_rows: CampusRows | None = None  # students and cards, as the hub first needs them
        self.wal = WalCopier(lambda: self.journal.checkpoint())  # checkpoints of the -wal file
        self.folder = Folder(
            lambda: self.journal, self._all, min_rows=checkpoint_rows, step_rows=fold_step_rows
        )

    @property
    def db(self) -> aiosqlite.Connection:
        if self._db is None:
            raise RuntimeError("store is not open")
        return self._db

    async def open(self, *, create: bool = False) -> None:
        """Opens the database for the hub: checked read-only first (store/checks.py), so a file that
        is not a whole, writable hub database of a known schema is refused (a DatabaseRefused) and
        left as it was; then migrated to SCHEMA_VERSION in one transaction.

        Only `create=True` (`onecard-hub seed`) may make a new database: a file that does not
        exist or is empty gets the schema and the hub's application id; an existing file must
        still pass the checks, though it may hold no campus yet."""
        self._journal = JournalConnection(self.path, self.synchronous)
        try:
            await self._journal.open(before=lambda: self._check(create=create))
            await self._journal.transaction(self._migrate)
            # its commits never copy the -wal file into the database: the WalCopier has it done, between them
            await self._journal.transaction(lambda db: db.execute("PRAGMA wal_autocheckpoint=0"))
            # Reads: their own connection, which may not write (every write is the journal's).
            self._db = await aiosqlite.connect(self.path, isolation_level=None)
            await self.db.execute("PRAGMA busy_timeout=5000")
            await self.db.execute("PRAGMA query_only=ON")
        except sqlite3.OperationalError as exc:
            await self.close()
            if exc.sqlite_errorcode & 0xFF in (sqlite3.SQLITE_READONLY, sqlite3.SQLITE_CANTOPEN):
                raise NotWritable(f"{self.path} cannot be written: {exc}") from exc
            raise
        except BaseException:
            await self.close()  # a refused file, a schema too new: no thread left behind
            raise

    def _check(self, *, create: bool) -> None:
        """On the journal's thread, before it connects: store/checks.py, reading only."""
        if create and (not self.path.exists() or self.path.stat().st_size == 0):
            return  # seed: a new database
        started = time.perf_counter()
        info = inspect_database(self.path)
        log.info(
            "%s checked: schema %d, quick_check ok in %.0f ms",
            self.path,
            info.schema_version,
            1000 * (time.perf_counter() - started),
        )
        if not create and not info.has_campus:
            raise NotAHubDatabase(
                f"{self.path} has the hub's schema but no campus (did `onecard-hub seed` stop"
                " before it finished?); seed a new database"
            )
        check_writable(self.path)

    def _migrate(self, db: sqlite3.Connection) -> None:
        """Brings the schema to SCHEMA_VERSION and writes the hub's application id (a database seeded
        before the id existed gets it now), in one transaction: a failed step changes nothing."""
        version = int(db.execute("PRAGMA user_version").fetchone()[0])
        if version > SCHEMA_VERSION:
            raise SchemaTooNew(f"{self.path} has schema {version}; this hub knows up to {SCHEMA_VERSION}")
        for number in range(version, SCHEMA_VERSION):
            log.info("migrating %s to schema version %d", self.path, number + 1)
            try:
                for statement in _statements(MIGRATIONS[number]):
                    db.execute(statement)
            except sqlite3.OperationalError as exc:
                if exc.sqlite_errorcode & 0xFF == sqlite3.SQLITE_READONLY or version == 0:
                    raise
                raise SchemaTooOld(
                    f"{self.path} has schema {version}, and bringing it to schema {number + 1} failed"
                    f" ({exc}); nothing was changed"
                ) from exc
            db.execute(f"PRAGMA user_version={number + 1}")
        if int(db.execute("PRAGMA application_id").fetchone()[0]) != APPLICATION_ID:
            db.execute(f"PRAGMA application_id={APPLICATION_ID}")

    async def close(self) -> None:
        """Stops folding, then closes both connections and stops the journal's thread, whatever
        either close raises."""
        await self.folder.stop()
        await self.wal.stop()
        if self._campus_rows is not None:
            self._campus_rows.close()
        db, journal = self._db, self._journal
        self._db = self._journal = None
        try:
            if db is not None:
                await db.close()
        finally:
            if journal is not None:
                await journal.close()

    async def schema_version(self) -> int:
        async with self.db.execute("PRAGMA user_version") as cur:
            row = await cur.fetchone()
        return int(row[0]) if row else 0

    # -- the journal ---------------------------------------------------------------

    @property
    def journal(self) -> JournalConnection:
        if self._journal is None:
            raise RuntimeError("store is not open")
        return self._journal

    async def write(self, batch: Batch) -> None:
        """Appends the batch in one transaction of the journal (store/journal.py), answered once durable.

        Only appends: balances and card state are folded in by the folder, in transactions of
        its own between group commits (store/fold.py).
        """
        rows = 0
        try:
            await self.journal.transaction(lambda db: _append(db, batch))
            rows = len(batch.transfers) + len(batch.card_states)
        finally:
            self.folder.committed(rows)
            self.wal.committed()

    async def _load_scenes(self, snap: Snapshot) -> None:
        snap.loans = [
            LoanRow(*r)
            for r in await self._all(
                f"SELECT {sql.LOAN_COLUMNS} FROM loans WHERE returned_ms = 0 ORDER BY rowid"
            )
        ]
        snap.exam_sessions = [
            ExamSessionRow(*r)
            for r in await self._all(f"SELECT {sql.EXAM_SESSION_COLUMNS} FROM exam_sessions ORDER BY rowid")
        ]
        snap.exam_seats = [
            ExamSeatRow(*r)
            for r in await self._all(f"SELECT {sql.EXAM_SEAT_COLUMNS} FROM exam_seats ORDER BY rowid")
        ]
        snap.exam_check_ins = [
            ExamCheckInRow(*r)
            for r in await self._all(f"SELECT {sql.EXAM_CHECK_IN_COLUMNS} FROM exam_check_ins ORDER BY rowid")
        ]

    async def checkpoint(self) -> None:
        """Folds everything the journal holds in, in one transaction (on stop, and in tests): a
        fold under way stops first, between two of its steps."""
        await self.folder.stop()
        await self.journal.transaction(_fold)
        self.folder.unfolded = 0

    # -- start-up ------------------------------------------------------------------

    async def load(self, since_ms: int, usage_since_ms: int | None = None) -> Snapshot:
        snap = Snapshot()
        snap.schools = [
            SchoolRow(*r)
            for r in await self._all("SELECT school_id, name, policy_json, live_scenes FROM schools")
        ]
        snap.accounts = self._table(ACCOUNT_ROWS, AccountRow)
        if self._campus_rows is not None:
            self._campus_rows.close()
        # the latest counters the log holds beyond the last fold, per card (store/campus_rows.py)
        tail = {no: (atc, failures, presence) for no, atc, failures, presence in await self._all(LOG_TAIL)}
        snap.campus_rows = self._campus_rows = CampusRows(self.path, tail)
        snap.guardians = [
            GuardianRow(*r)
            for r in await self._all(f"SELECT {sql.GUARDIAN_COLUMNS} FROM guardians ORDER BY rowid")
        ]
        snap.merchants = [MerchantRow(*r) for r in await self._all(MERCHANT_ROWS)]
        snap.terminals = [
            TerminalRow(r[0], r[1], r[2], r[3], r[4], r[5], bool(r[6]))
            for r in await self._all(
                "SELECT terminal_id, school_id, kind, location, gate_group, merchant_id, enabled"
                " FROM terminals"
            )
        ]
        snap.operators = [
            OperatorRow(*r) for r in await self._all("SELECT operator_id, school_id, role FROM operators")
        ]
        snap.requests = [
            RequestRow(*r)
            for r in await self._all(
                "SELECT caller, request_id, method, fingerprint, response, created_ms, seq, card_no, scene,"
                " reason, amount_fen, business_day, meal_window, qr_nonce, qr_expires_ms, origin_request_id,"
                " outcome FROM requests WHERE created_ms >= ? ORDER BY rowid",
                (since_ms,),
            )
        ]
        snap.terminal_status = [
            TerminalStatusRow(*r)
            for r in await self._all(
                "SELECT terminal_id, last_seen_ms, software_version, offline_pending FROM terminal_status"
            )
        ]
        snap.offline = [
            OfflineRecord(*r)
            for r in await self._all(
                f"SELECT {sql.OFFLINE_COLUMNS} FROM offline_transactions WHERE outcome = ?"
                " ORDER BY booked_ms, rowid",
                (BOOKED,),
            )
        ]
        await self._load_scenes(snap)
        await load_feed(self.db, snap)
        await load_cardsys(self.db, snap)
        await load_grants(self.db, snap)
        await load_settlement(self.db, snap)
        await load_funds(self.db, snap)
        if usage_since_ms is not None:
            await load_usage(self.db, snap, usage_since_ms)
        return snap

    def _table(self, query: str, make: Callable[..., R]) -> TableRows[R]:
        """One of the campus' big tables, read when walked (records.TableRows): through a
        connection of its own, which reads only, a chunk at a time (campus_rows.walk)."""
        uri = self.path.resolve().as_uri() + "?mode=ro"
        return TableRows(partial(walk, uri, query), make)

    async def merchant_banks(self) -> dict[str, tuple[str, str]]:
        """merchant_id → (bank code, account number) of each canteen operator's settlement account
        the database knows (the seed writes them)."""
        rows = await self._all("SELECT merchant_id, bank_code, account_no FROM merchant_accounts")
        return {str(m): (str(bank), str(account)) for m, bank, account in rows}

    async def audit_entries(
        self, *, student_id: str, actor_id: str, school_id: str, after_id: int, limit: int
    ) -> list[AuditRow]:
        """Audit entries, newest first, below `after_id` (0: from the newest), filtered by whichever
        of student, actor and school is not empty."""
        where: list[str] = ["(? = 0 OR audit_id < ?)"]
        params: list[Any] = [after_id, after_id]
        for column, value in (("student_id", student_id), ("actor_id", actor_id), ("school_id", school_id)):
            if value:
                where.append(f"{column} = ?")
                params.append(value)
        rows = await self._all(
            f"SELECT {sql.AUDIT_COLUMNS}, audit_id FROM audit_log WHERE {' AND '.join(where)}"
            " ORDER BY audit_id DESC LIMIT ?",
            (*params, limit),
        )
        return [AuditRow(*r) for r in rows]

    async def max_seq(self) -> int:
        rows = await self._all("SELECT COALESCE(MAX(seq), 0) FROM requests")
        return int(rows[0][0])

    async def _all(self, sql: str, params: tuple[Any, ...] = ()) -> list[Any]:
        async with self.db.execute(sql, params) as cur:
            return list(await cur.fetchall())

    # -- seeding and reports -------------------------------------------------------

    async def seed(self, data: SeedData) -> None:
        await self.journal.transaction(lambda db: _seed(db, data))

    async def is_empty(self) -> bool:
        rows = await self._all("SELECT COUNT(*) FROM schools")
        return int(rows[0][0]) == 0

    async def ledger_totals(self) -> LedgerTotals:
        by_kind = [
            (str(k), int(n), int(b))
            for k, n, b in await self._all(
                "SELECT kind, COUNT(*), COALESCE(SUM(balance_fen), 0) FROM account_balances"
                " GROUP BY kind ORDER BY kind"
            )
        ]
        count = await self._all("SELECT COUNT(*) FROM transfers")
        return LedgerTotals(sum(b for _, _, b in by_kind), int(count[0][0]), by_kind)

    async def ledger_mismatches(self) -> int:
        """Accounts whose balance differs from what their transfers add up to (0 when consistent)."""
        rows = await self._all(
            "SELECT COUNT(*) FROM account_balances a LEFT JOIN ("
            " SELECT account, SUM(delta) AS total FROM ("
            "  SELECT to_account AS account, amount_fen AS delta FROM transfers"
            "  UNION ALL SELECT from_account, -amount_fen FROM transfers)"
            " GROUP BY account) t ON t.account = a.account_id"
            " WHERE a.balance_fen != COALESCE(t.total, 0)"
        )
        return int(rows[0][0])


# The campus' big tables at start, each in the order of its row type's fields (records.py).
ACCOUNT_ROWS = "SELECT account_id, kind, owner, balance_fen FROM account_balances"
MERCHANT_ROWS = (
    "SELECT m.merchant_id, m.school_id, m.name, m.account_id, COALESCE(a.bank_code, ''),"
    " COALESCE(a.account_no, '') FROM merchants m LEFT JOIN merchant_accounts a USING (merchant_id)"
)


def _statements(script: str) -> list[str]:
    code = "\n".join(line for line in script.splitlines() if not line.strip().startswith("--"))
    return [s.strip() for s in code.split(";") if s.strip()]


# -- the journal's side: these run on its thread, inside its transaction (store/journal.py) ---------


def _append(db: sqlite3.Connection, batch: Batch) -> None:
    if batch.accounts or batch.students or batch.student_status or batch.live_scenes:
        _write_records(db, batch)  # before cards: a card names its student
    if batch.requests:
        db.executemany(sql.INSERT_REQUEST, [sql.request_params(r) for r in batch.requests])
    if batch.transfers:
        db.executemany(sql.INSERT_TRANSFER, [sql.transfer_params(t) for t in batch.transfers])
    if batch.card_states:
        db.executemany(
            sql.APPEND_CARD_STATE,
            [(c.card_no, c.atc, c.pin_failures, c.presence) for c in batch.card_states],
        )
    if batch.terminals:
        db.executemany(sql.UPSERT_TERMINAL, [sql.terminal_params(t) for t in batch.terminals])
    if batch.terminal_status:
        db.executemany(
            sql.UPSERT_TERMINAL_STATUS,
            [
                (t.terminal_id, t.last_seen_ms, t.software_version, t.offline_pending)
                for t in batch.terminal_status
            ],
        )
    if batch.offline:
        db.executemany(sql.UPSERT_OFFLINE, [sql.offline_params(o) for o in batch.offline])
    if batch.cards:
        db.executemany(sql.UPSERT_CARD, [sql.card_params(c) for c in batch.cards])
    if batch.guardians:
        db.executemany(sql.UPSERT_GUARDIAN, [sql.guardian_params(g) for g in batch.guardians])
    if batch.audit:
        db.executemany(sql.INSERT_AUDIT, [sql.audit_params(a) for a in batch.audit])
    if batch.loans or batch.exam_sessions or batch.exam_seats or batch.exam_check_ins:
        _write_scenes(db, batch)
    if batch.blocklist or batch.misuse:
        write_feed(db, batch)
    if batch.cardsys:
        write_cardsys(db, batch)
    if batch.grant_batches or batch.grant_items or batch.grant_notices:
        write_grants(db, batch)
    if batch.payments or batch.reconciliations:
        write_settlement(db, batch)
    if batch.topups or batch.auto_topups or batch.bank_changes:
        write_funds(db, batch)


def _write_records(db: sqlite3.Connection, batch: Batch) -> None:
    """学籍 and pilot rows: new wallet accounts and students, status changes, live scenes."""
    if batch.accounts:
        db.executemany(sql.INSERT_ACCOUNT, [sql.account_params(a) for a in batch.accounts])
    if batch.students:
        db.executemany(sql.INSERT_STUDENT, [sql.student_params(s) for s in batch.students])
    if batch.student_status:
        db.executemany(
            sql.UPDATE_STUDENT_STATUS,
            [(s.school_id, s.enrollment, s.student_id) for s in batch.student_status],
        )
    if batch.live_scenes:
        db.executemany(sql.UPDATE_LIVE_SCENES, [(r.live_scenes, r.school_id) for r in batch.live_scenes])


def _write_scenes(db: sqlite3.Connection, batch: Batch) -> None:
    """Library loans and exam sessions, seats and check-ins (sessions first: the others name one)."""
    for statement, rows in (
        (sql.UPSERT_LOAN, batch.loans),
        (sql.UPSERT_EXAM_SESSION, batch.exam_sessions),
        (sql.UPSERT_EXAM_SEAT, batch.exam_seats),
        (sql.INSERT_EXAM_CHECK_IN, batch.exam_check_ins),
    ):
        if rows:
            db.executemany(statement, [astuple(r) for r in rows])


def _fold(db: sqlite3.Connection) -> None:
    for statement in sql.CHECKPOINT:
        db.execute(statement)


def _seed(db: sqlite3.Connection, data: SeedData) -> None:
    db.executemany(
        "INSERT INTO schools (school_id, name, policy_json) VALUES (?, ?, ?)",
        [(s.school_id, s.name, s.policy_json) for s in data.schools],
    )
    db.executemany(sql.INSERT_ACCOUNT, [sql.account_params(a) for a in data.accounts])
    db.executemany(sql.INSERT_STUDENT, [sql.student_params(s) for s in data.students])
    db.executemany(sql.UPSERT_CARD, [sql.card_params(c) for c in data.cards])
    db.executemany(
        "INSERT INTO merchants VALUES (?, ?, ?, ?)",
        [(m.merchant_id, m.school_id, m.name, m.account_id) for m in data.merchants],
    )
    db.executemany(
        "INSERT INTO merchant_accounts (merchant_id, bank_code, account_no) VALUES (?, ?, ?)",
        [(m.merchant_id, m.bank_code, m.account_no) for m in data.merchants if m.bank_code],
    )
    db.executemany(sql.UPSERT_TERMINAL, [sql.terminal_params(t) for t in data.terminals])
    db.executemany(
        "INSERT INTO operators VALUES (?, ?, ?)",
        [(o.operator_id, o.school_id, o.role) for o in data.operators],
    )
    db.executemany(
        sql.INSERT_TRANSFER,
        [
            (
                t.from_account,
                t.to_account,
                t.amount_fen,
                t.kind,
                t.caller,
                t.request_id,
                t.origin_request_id,
                t.created_ms,
            )
            for t in data.transfers
        ],
    )
    for statement in sql.FOLDED_ALL:  # the seeded balances include the seeded transfers
        db.execute(statement)
