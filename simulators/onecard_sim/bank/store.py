"""The co-branded banks' own durable books: accounts, transfers and reversals.

SQLite (WAL, synchronous FULL) through aiosqlite; every change is one transaction, committed
before the simulator answers, so a restart keeps everything. One writer at a time (a lock).
A transfer is keyed by (bank, transfer_id) — the idempotency key; a reversal by (bank, reversal_id).
A reversal of a transfer the bank has not seen leaves a row of kind `unseen` (status REVERSED):
the original, when it comes, is refused with REVERSED_BEFORE.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from pathlib import Path

import aiosqlite

from onecard.bank.v1 import bank_service_pb2 as pb

SCHEMA = """
CREATE TABLE IF NOT EXISTS accounts (
    account_no  TEXT PRIMARY KEY,
    bank_code   TEXT NOT NULL,
    card_no     TEXT NOT NULL,
    owner       TEXT NOT NULL,
    state       INTEGER NOT NULL,
    balance_fen INTEGER NOT NULL,
    opened_ms   INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS accounts_by_card ON accounts (bank_code, card_no);
CREATE TABLE IF NOT EXISTS transfers (
    seq            INTEGER PRIMARY KEY AUTOINCREMENT,
    bank_code      TEXT NOT NULL,
    transfer_id    TEXT NOT NULL,
    kind           TEXT NOT NULL,
    account_no     TEXT NOT NULL,
    card_no        TEXT NOT NULL,
    amount_fen     INTEGER NOT NULL,
    status         INTEGER NOT NULL,
    reject_reason  INTEGER NOT NULL,
    bank_reference TEXT NOT NULL,
    business_date  TEXT NOT NULL,
    posted_ms      INTEGER NOT NULL,
    memo           TEXT NOT NULL,
    return_due_ms  INTEGER NOT NULL DEFAULT 0,
    UNIQUE (bank_code, transfer_id)
);
CREATE INDEX IF NOT EXISTS transfers_by_date ON transfers (bank_code, business_date);
CREATE TABLE IF NOT EXISTS reversals (
    bank_code     TEXT NOT NULL,
    reversal_id   TEXT NOT NULL,
    transfer_id   TEXT NOT NULL,
    reversed_fen  INTEGER NOT NULL,
    business_date TEXT NOT NULL,
    PRIMARY KEY (bank_code, reversal_id)
);
"""
ACCOUNT_COLUMNS = "account_no, bank_code, card_no, owner, state, balance_fen"
TRANSFER_COLUMNS = (
    "bank_code, transfer_id, kind, account_no, card_no, amount_fen, status, reject_reason,"
    " bank_reference, business_date, posted_ms, memo"
)
DEBIT, CREDIT, UNSEEN = "debit", "credit", "unseen"
POSTED, REJECTED, REVERSED = (
    pb.TRANSFER_STATUS_POSTED,
    pb.TRANSFER_STATUS_REJECTED,
    pb.TRANSFER_STATUS_REVERSED,
)
RETURNED = pb.TRANSFER_STATUS_RETURNED
ACTIVE, NOT_ACTIVATED = pb.ACCOUNT_STATE_ACTIVE, pb.ACCOUNT_STATE_NOT_ACTIVATED
FROZEN, CLOSED = pb.ACCOUNT_STATE_FROZEN, pb.ACCOUNT_STATE_CLOSED
LIMIT_FEN = 5_000_000  # ¥50,000: the single-transfer limit
BANK_DIGITS = {"ICBC": "1", "CCB": "2", "ABC": "3", "BOC": "4", "JXB": "5"}


@dataclass(frozen=True, slots=True)
class Account:
    account_no: str
    bank_code: str
    card_no: str
    owner: str  # "card" or "merchant:<id>"
    state: int
    balance_fen: int


@dataclass(frozen=True, slots=True)
class Transfer:
    bank_code: str
    transfer_id: str
    kind: str
    account_no: str
    card_no: str
    amount_fen: int
    status: int
    reject_reason: int
    bank_reference: str
    business_date: str
    posted_ms: int
    memo: str


@dataclass(frozen=True, slots=True)
class Party:
    card_no: str = ""
    account_no: str = ""


@dataclass(frozen=True, slots=True)
class Reversal:
    status: int
    reversed_fen: int


class ReversalIdReused(Exception):
    """The reversal_id was used for another transfer."""


class BankStore:
    def __init__(self, path: str | Path, *, return_after_ms: int = 0) -> None:
        self.path = Path(path)
        # > 0: a credit to a frozen account is posted, then sent back (退回) this much later
        # (`send_back_due`); 0: it is refused (ACCOUNT_FROZEN).
        self.return_after_ms = return_after_ms
        self._db: aiosqlite.Connection | None = None
        self._lock = asyncio.Lock()

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

    async def close(self) -> None:
        if self._db is not None:
            await self._db.close()
            self._db = None

    # -- accounts ------------------------------------------------------------------------------

    async def account(self, bank_code: str, party: Party) -> Account | None:
        """The account of a party: by number, or the card's latest account (open before closed)."""
        if party.account_no:
            sql = f"SELECT {ACCOUNT_COLUMNS} FROM accounts WHERE account_no = ? AND bank_code = ?"
            args: tuple[str, ...] = (party.account_no, bank_code)
        else:
            sql = (
                f"SELECT {ACCOUNT_COLUMNS} FROM accounts WHERE bank_code = ? AND card_no = ?"
                f" ORDER BY state = {CLOSED}, opened_ms DESC LIMIT 1"
            )
            args = (bank_code, party.card_no)
        async with self.db.execute(sql, args) as cur:
            row = await cur.fetchone()
        return Account(*row) if row else None

    async def open_account(
        self,
        bank_code: str,
        card_no: str,
        owner: str,
        state: int,
        balance_fen: int,
        now_ms: int,
        account_no: str = "",
    ) -> tuple[Account, bool]:
        """Opens an account for a card (or merchant: `owner`), unless one is open: (account, new)."""
        async with self._lock:
            held = await self._open_for(bank_code, card_no, owner)
            if held is not None:
                return held, False
            async with self.db.execute(
                "SELECT COUNT(*) FROM accounts WHERE bank_code = ?", (bank_code,)
            ) as cur:
                (count,) = await cur.fetchone()  # type: ignore[misc]
            account_no = account_no or f"62{BANK_DIGITS.get(bank_code, '9')}{count + 1:013d}"
            await self.db.execute(
                f"INSERT INTO accounts ({ACCOUNT_COLUMNS}, opened_ms) VALUES (?, ?, ?, ?, ?, ?, ?)",
                (account_no, bank_code, card_no, owner, state, balance_fen, now_ms),
            )
            return Account(account_no, bank_code, card_no, owner, state, balance_fen), True

    async def _open_for(self, bank_code: str, card_no: str, owner: str) -> Account | None:
        sql = (
            f"SELECT {ACCOUNT_COLUMNS} FROM accounts WHERE bank_code = ? AND card_no = ? AND owner = ?"
            f" AND state != {CLOSED} LIMIT 1"
        )
        async with self.db.execute(sql, (bank_code, card_no, owner)) as cur:
            row = await cur.fetchone()
        return Account(*row) if row else None

    async def adjust(self, account: Account, state: int, add_fen: int) -> Account:
        async with self._lock:
            async with self.db.execute(
                "SELECT balance_fen FROM accounts WHERE account_no = ?", (account.account_no,)
            ) as cur:
                (balance,) = await cur.fetchone()  # type: ignore[misc]
            if balance + add_fen < 0:
                raise ValueError("add_fen: the balance would go below zero")
            new_state = state or account.state
            await self.db.execute(
                "UPDATE accounts SET state = ?, balance_fen = balance_fen + ? WHERE account_no = ?",
                (new_state, add_fen, account.account_no),
            )
        got = await self.account(account.bank_code, Party(account_no=account.account_no))
        assert got is not None
        return got

    async def close_account(self, account: Account) -> int:
        """Closes it and pays out its balance (at the branch): the fen paid out."""
        async with self._lock:
            if account.state == CLOSED:
                return 0
            await self.db.execute("BEGIN IMMEDIATE")
            async with self.db.execute(
                "SELECT balance_fen FROM accounts WHERE account_no = ?", (account.account_no,)
            ) as cur:
                (balance,) = await cur.fetchone()  # type: ignore[misc]
            await self.db.execute(
                f"UPDATE accounts SET state = {CLOSED}, balance_fen = 0 WHERE account_no = ?",
                (account.account_no,),
            )
            await self.db.execute("COMMIT")
            return int(balance)

    async def total_fen(self, bank_code: str = "") -> int:
        sql = "SELECT COALESCE(SUM(balance_fen), 0) FROM accounts"
        args: tuple[str, ...] = ()
        if bank_code:
            sql, args = sql + " WHERE bank_code = ?", (bank_code,)
        async with self.db.execute(sql, args) as cur:
            (total,) = await cur.fetchone()  # type: ignore[misc]
        return int(total)

    # -- transfers -----------------------------------------------------------------------------

    async def transfer(self, bank_code: str, transfer_id: str) -> Transfer | None:
        sql = f"SELECT {TRANSFER_COLUMNS} FROM transfers WHERE bank_code = ? AND transfer_id = ?"
        async with self.db.execute(sql, (bank_code, transfer_id)) as cur:
            row = await cur.fetchone()
        return Transfer(*row) if row else None

    async def apply(
        self,
        kind: str,
        bank_code: str,
        transfer_id: str,
        party: Party,
        amount_fen: int,
        date: str,
        memo: str,
        now_ms: int,
    ) -> Transfer:
        """Applies a debit or credit once: the first outcome is kept and answered again."""
        async with self._lock:
            held = await self.transfer(bank_code, transfer_id)
            if held is not None and held.kind != UNSEEN:
                return held
            account = await self.account(bank_code, party)
            status, reason = POSTED, pb.REJECT_REASON_UNSPECIFIED
            if held is not None:  # reversed before it came
                status, reason = REJECTED, pb.REJECT_REASON_REVERSED_BEFORE
            elif account is None:
                status, reason = REJECTED, pb.REJECT_REASON_ACCOUNT_NOT_FOUND
            elif account.state == NOT_ACTIVATED:
                status, reason = REJECTED, pb.REJECT_REASON_NOT_ACTIVATED
            elif account.state == FROZEN and not (kind == CREDIT and self.return_after_ms > 0):
                status, reason = REJECTED, pb.REJECT_REASON_ACCOUNT_FROZEN
            elif account.state == CLOSED:
                status, reason = REJECTED, pb.REJECT_REASON_ACCOUNT_CLOSED
            elif amount_fen > LIMIT_FEN:
                status, reason = REJECTED, pb.REJECT_REASON_LIMIT_EXCEEDED
            elif kind == DEBIT and account.balance_fen < amount_fen:
                status, reason = REJECTED, pb.REJECT_REASON_INSUFFICIENT_FUNDS
            account_no = account.account_no if account else party.account_no
            card_no = account.card_no if account else party.card_no
            posted_ms = now_ms if status == POSTED else 0
            await self.db.execute("BEGIN IMMEDIATE")
            try:
                if held is not None:
                    await self.db.execute(
                        "UPDATE transfers SET kind = ?, account_no = ?, card_no = ?, amount_fen = ?,"
                        " status = ?, reject_reason = ?, memo = ? WHERE bank_code = ? AND transfer_id = ?",
                        (kind, account_no, card_no, amount_fen, status, reason, memo, bank_code, transfer_id),
                    )
                else:
                    cur = await self.db.execute(
                        f"INSERT INTO transfers ({TRANSFER_COLUMNS})"
                        " VALUES (?, ?, ?, ?, ?, ?, ?, ?, '', ?, ?, ?)",
                        (
                            bank_code,
                            transfer_id,
                            kind,
                            account_no,
                            card_no,
                            amount_fen,
                            status,
                            reason,
                            date,
                            posted_ms,
                            memo,
                        ),
                    )
                    if status == POSTED:
                        reference = f"{bank_code}{date.replace('-', '')}{cur.lastrowid:08d}"
                        await self.db.execute(
                            "UPDATE transfers SET bank_reference = ? WHERE seq = ?",
                            (reference, cur.lastrowid),
                        )
                        delta = -amount_fen if kind == DEBIT else amount_fen
                        await self.db.execute(
                            "UPDATE accounts SET balance_fen = balance_fen + ? WHERE account_no = ?",
                            (delta, account_no),
                        )
                        if account is not None and account.state == FROZEN:  # to be sent back
                            await self.db.execute(
                                "UPDATE transfers SET return_due_ms = ? WHERE seq = ?",
                                (now_ms + self.return_after_ms, cur.lastrowid),
                            )
                await self.db.execute("COMMIT")
            except BaseException:
                await self.db.execute("ROLLBACK")
                raise
        got = await self.transfer(bank_code, transfer_id)
        assert got is not None
        return got

    async def reverse(self, bank_code: str, reversal_id: str, transfer_id: str, date: str) -> Reversal:
        """冲正 once: undoes a posted transfer, or remembers an unseen one so it is refused later."""
        async with self._lock:
            async with self.db.execute(
                "SELECT transfer_id FROM reversals WHERE bank_code = ? AND reversal_id = ?",
                (bank_code, reversal_id),
            ) as cur:
                row = await cur.fetchone()
            if row is not None and row[0] != transfer_id:
                raise ReversalIdReused(reversal_id)
            held = await self.transfer(bank_code, transfer_id)
            if held is not None and held.status != POSTED:
                reversed_fen = held.amount_fen if held.status == REVERSED and held.kind != UNSEEN else 0
                if row is None:
                    await self._remember(bank_code, reversal_id, transfer_id, 0, date)
                status = REVERSED if held.status == REVERSED else held.status
                if held.reject_reason == pb.REJECT_REASON_REVERSED_BEFORE:
                    status = REVERSED
                return Reversal(status, reversed_fen)
            await self.db.execute("BEGIN IMMEDIATE")
            try:
                if held is None:
                    await self.db.execute(
                        f"INSERT INTO transfers ({TRANSFER_COLUMNS})"
                        " VALUES (?, ?, ?, '', '', 0, ?, 0, '', ?, 0, '')",
                        (bank_code, transfer_id, UNSEEN, REVERSED, date),
                    )
                    reversed_fen = 0
                else:
                    delta = held.amount_fen if held.kind == DEBIT else -held.amount_fen
                    await self.db.execute(
                        "UPDATE accounts SET balance_fen = balance_fen + ? WHERE account_no = ?",
                        (delta, held.account_no),
                    )
                    await self.db.execute(
                        f"UPDATE transfers SET status = {REVERSED} WHERE bank_code = ? AND transfer_id = ?",
                        (bank_code, transfer_id),
                    )
                    reversed_fen = held.amount_fen
                await self.db.execute(
                    "INSERT OR IGNORE INTO reversals VALUES (?, ?, ?, ?, ?)",
                    (bank_code, reversal_id, transfer_id, reversed_fen, date),
                )
                await self.db.execute("COMMIT")
            except BaseException:
                await self.db.execute("ROLLBACK")
                raise
            return Reversal(REVERSED, reversed_fen)

    async def send_back_due(self, now_ms: int) -> int:
        """Credits to frozen accounts whose time came are sent back (退回): RETURNED, money out again."""
        async with self._lock:
            sql = (
                "SELECT seq, account_no, amount_fen FROM transfers"
                f" WHERE status = {POSTED} AND return_due_ms > 0 AND return_due_ms <= ?"
            )
            async with self.db.execute(sql, (now_ms,)) as cur:
                due = list(await cur.fetchall())
            if not due:
                return 0
            await self.db.execute("BEGIN IMMEDIATE")
            try:
                for seq, account_no, amount_fen in due:
                    await self.db.execute(
                        "UPDATE accounts SET balance_fen = balance_fen - ? WHERE account_no = ?",
                        (amount_fen, account_no),
                    )
                    await self.db.execute(f"UPDATE transfers SET status = {RETURNED} WHERE seq = ?", (seq,))
                await self.db.execute("COMMIT")
            except BaseException:
                await self.db.execute("ROLLBACK")
                raise
            return len(due)

    async def _remember(
        self, bank_code: str, reversal_id: str, transfer_id: str, fen: int, date: str
    ) -> None:
        await self.db.execute(
            "INSERT OR IGNORE INTO reversals VALUES (?, ?, ?, ?, ?)",
            (bank_code, reversal_id, transfer_id, fen, date),
        )

    async def statement(self, bank_code: str, date: str) -> list[Transfer]:
        """Transfers of a business date that moved money (posted; reversed or returned afterwards)."""
        sql = (
            f"SELECT {TRANSFER_COLUMNS} FROM transfers WHERE bank_code = ? AND business_date = ?"
            f" AND kind != '{UNSEEN}' AND posted_ms > 0 ORDER BY seq"
        )
        async with self.db.execute(sql, (bank_code, date)) as cur:
            return [Transfer(*row) async for row in cur]
