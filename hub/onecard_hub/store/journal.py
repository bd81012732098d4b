"""The SQLite store's one writing connection, on a thread of its own (DESIGN §7).

aiosqlite hops to its thread and back once per statement. A group commit is BEGIN, an INSERT
per kind of row and COMMIT: five or six hops, each costing the hub's one core tens of
microseconds on both sides (a queue, a thread wake-up, a loop wake-up, a future). At 1,000
taps/s the writer commits almost every tap on its own, so that was most of a tap's cost.
Here a whole transaction is one call: the statements run back to back on this thread, and
the event loop hears once, when it is committed. (aiosqlite has no public way to run a
callable on its thread: omnilib/aiosqlite#19.) Reads stay on the store's aiosqlite
connection; in WAL mode they see every committed transaction and never wait for this one.
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TypeVar

T = TypeVar("T")


def _connect(path: Path, synchronous: str) -> sqlite3.Connection:
    conn = sqlite3.connect(path, isolation_level=None)  # transactions are begun explicitly
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute(f"PRAGMA synchronous={synchronous}")
    conn.execute("PRAGMA foreign_keys=ON")
    conn.execute("PRAGMA busy_timeout=5000")
    return conn


class JournalConnection:
    """Runs write transactions, one at a time and in the order asked, on one connection."""

    def __init__(self, path: Path, synchronous: str) -> None:
        self._path = path
        self._synchronous = synchronous
        self._executor: ThreadPoolExecutor | None = None
        self._conn: sqlite3.Connection | None = None

    async def open(self, before: Callable[[], object] | None = None) -> None:
        """Connects on the journal's own thread; `before` runs there first (the store's read-only
        checks of the file), and if it raises, nothing is opened for writing. Call `close` after
        a failed open: the thread is running."""
        # One thread: the connection is made, used and closed on it, and transactions queue.
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="onecard-journal")
        if before is not None:
            await self._call(before)
        self._conn = await self._call(_connect, self._path, self._synchronous)

    async def transaction(self, body: Callable[[sqlite3.Connection], T]) -> T:
        """Runs `body` between BEGIN IMMEDIATE and COMMIT (ROLLBACK if it raises); returns once
        committed, which with synchronous=FULL means durable."""
        conn = self._conn
        if conn is None:
            raise RuntimeError("store is not open")
        return await self._call(_in_transaction, conn, body)

    async def close(self) -> None:
        """Closes the connection on its thread, then stops the thread, even when closing raised."""
        executor, conn = self._executor, self._conn
        if executor is None:
            return
        self._conn = None
        try:
            if conn is not None:
                await asyncio.get_running_loop().run_in_executor(executor, conn.close)
        finally:
            self._executor = None
            executor.shutdown(wait=True)

    async def _call(self, fn: Callable[..., T], *args: object) -> T:
        if self._executor is None:
            raise RuntimeError("store is not open")
        return await asyncio.get_running_loop().run_in_executor(self._executor, fn, *args)


def _in_transaction(conn: sqlite3.Connection, body: Callable[[sqlite3.Connection], T]) -> T:
    conn.execute("BEGIN IMMEDIATE")
    try:
        result = body(conn)
        conn.execute("COMMIT")
    except BaseException:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        raise
    return result
