"""The SQLite store's one writing connection: transactions on the event loop, fsyncs on a thread.

A write transaction (a group commit: BEGIN, an INSERT per kind of row, COMMIT) runs on the event
loop's own thread, with SQLite's `synchronous=NORMAL`: the commit writes the new pages to the
-wal file, which is the operating system's page cache, and does not wait for the disk. What
makes it durable is `fdatasync` of the -wal file, on a thread of its own: the caller of
`transaction` gets its answer once an fdatasync that began after its commit has ended. One
fdatasync covers every transaction committed before it began, so while one runs the next
transactions commit and then share the next one (group fsync, on top of the writer's group
commit).

Why not the whole transaction on a thread, as before. At 1,000 taps/s the writer commits
nearly every tap on its own, and on this kind of machine (2 cores, the hub pinned to one) a
commit on the journal's thread cost the hub's core about 250-300 µs of CPU: the hand-off to the
thread and back (a queue, a thread wake-up, a GIL hand-over for every statement, a loop
wake-up), SQLite's own fsync of the log, and the wake-ups around it. Measured with the hub's
own path driven in-process, one tap per commit, same machine and run: 285-305 µs of CPU per
tap with the transaction on the thread, 220-290 with the statements inline (a few tens of
microseconds of page-cache writes). The fsync is the part that has to leave the loop: it waits
for the disk.

Durability is the same as SQLite's `synchronous=FULL` in WAL mode, which syncs the log at every
commit: here a commit is answered only after the log was synced, by the same system call on the
same file (fdatasync flushes every dirty page of the file, whichever descriptor wrote it, and
its size). A crash before that sync may lose the commit, which nobody was told about; the next
open replays the log up to the last whole transaction. With `synchronous=NORMAL` or `OFF` the
store asked for less: no fsync is waited for (NORMAL: SQLite syncs at checkpoints).

The connection never checkpoints on its own commits (the store sets `wal_autocheckpoint=0`): a
checkpoint fsyncs, which must not happen on the loop. `checkpoint` runs one on the journal's thread,
between transactions (store/wal_copier.py says when).

A transaction whose SQL takes long for the loop (a fold's step, store/fold.py) asks to run
`off_loop`, on the journal's thread, so that the calls on the loop go on meanwhile; the transactions
asked for while it runs wait for it (in order) without blocking the loop. Seeding a campus and
migrations run on the loop: nothing else is served then.
"""

from __future__ import annotations

import asyncio
import os
import sqlite3
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, TypeVar

T = TypeVar("T")

WAL_LIMIT_BYTES = 64 * 1024 * 1024  # the -wal file is trimmed to this when it starts over

# The store's synchronous mode → the connection's own and whether a commit waits for fdatasync.
_MODES = {
    "OFF": ("OFF", False),
    "NORMAL": ("NORMAL", False),
    "FULL": ("NORMAL", True),
    "EXTRA": ("NORMAL", True),
}


def _connect(path: Path, synchronous: str) -> sqlite3.Connection:
    # Made on the loop's thread and used there, or on the journal's thread for an off-loop
    # transaction, never both at once (`transaction` waits for an off-loop one to end).
    conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False)  # BEGIN is explicit
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute(f"PRAGMA synchronous={synchronous}")
    conn.execute("PRAGMA foreign_keys=ON")
    conn.execute(f"PRAGMA journal_size_limit={WAL_LIMIT_BYTES}")  # the log, once started over, is trimmed
    # Every write of the hub is this connection's: only another process (a second hub on the same
    # file) could hold a lock it waits for.
    conn.execute("PRAGMA busy_timeout=5000")
    return conn


class JournalConnection:
    """Runs write transactions one at a time, in the order asked; each returns once durable."""

    def __init__(self, path: Path, synchronous: str) -> None:
        self._path = path
        self._synchronous, self._fsync = _MODES[synchronous.upper()]
        self._executor: ThreadPoolExecutor | None = None
        self._conn: sqlite3.Connection | None = None
        self._wal_fd = -1
        self._committed = 0  # transactions committed (numbered from 1)
        self._synced = 0  # every transaction up to this one is durable
        self._syncing: asyncio.Future[None] | None = None  # the fdatasync under way
        self._waiters: list[tuple[int, asyncio.Future[None]]] = []  # (transaction, its future)
        self.failed: BaseException | None = None  # an fdatasync failed: nothing more is durable
        self.syncs = 0  # fdatasyncs made
        self._off_loop: asyncio.Future[Any] | None = None  # a transaction running on the thread

    async def open(self, before: Callable[[], object] | None = None) -> None:
        """Connects; `before` runs first, on the fsync thread (the store's read-only checks of the
        file, which read all of it), and if it raises, nothing is opened for writing. Call `close`
        after a failed open: the thread is running."""
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="onecard-journal")
        if before is not None:
            await asyncio.get_running_loop().run_in_executor(self._executor, before)
        self._conn = _connect(self._path, self._synchronous)

    async def transaction(self, body: Callable[[sqlite3.Connection], T], *, off_loop: bool = False) -> T:
        """Runs `body` between BEGIN IMMEDIATE and COMMIT (ROLLBACK if it raises) on this thread,
        or with `off_loop` on the journal's thread (a transaction whose SQL takes long, which would
        hold up every call on the loop); returns once the commit is durable (see the module's
        docstring). Transactions commit in the order asked: one asked for while an off-loop one
        runs waits for it."""
        while self._off_loop is not None:
            await asyncio.wait([self._off_loop])
        conn = self._conn
        if conn is None:
            raise RuntimeError("store is not open")
        if self.failed is not None:
            raise RuntimeError("the journal's log could not be synced") from self.failed
        if off_loop:
            result = await self._on_thread(_in_transaction, conn, body)
        else:
            result = _in_transaction(conn, body)
        self._committed += 1
        if self._fsync:
            await self._durable(self._committed)
        return result

    async def checkpoint(self) -> tuple[int, int, int]:
        """Copies the log into the database file (SQLite's PASSIVE checkpoint, which syncs the log
        before and the database after), on this connection and the journal's thread, between
        transactions: those asked for meanwhile wait for it, as for an off-loop transaction. So the
        log is copied whole, and the next commit starts it over from its beginning (SQLite's rule)
        instead of making it longer: a checkpoint from another connection, with commits landing
        while it copies, left the log growing by tens of MB a minute, and every fdatasync of a
        growing file costs more and waits longer. Returns SQLite's (busy, frames in the log,
        frames copied)."""
        while self._off_loop is not None:
            await asyncio.wait([self._off_loop])
        conn = self._conn
        if conn is None:
            raise RuntimeError("store is not open")
        busy, frames, copied = await self._on_thread(_checkpoint, conn)
        return int(busy), int(frames), int(copied)

    async def _on_thread(self, fn: Callable[..., T], *args: object) -> T:
        executor = self._executor
        if executor is None:
            raise RuntimeError("store is not open")
        running = asyncio.get_running_loop().run_in_executor(executor, fn, *args)
        self._off_loop = running
        running.add_done_callback(self._off_loop_done)
        # A caller cancelled here leaves the transaction to finish on the thread; the next one waits.
        return await asyncio.shield(running)

    def _off_loop_done(self, running: asyncio.Future[Any]) -> None:
        if self._off_loop is running:
            self._off_loop = None

    def _durable(self, transaction: int) -> asyncio.Future[None]:
        """A future that resolves once `transaction` is durable: after the next fdatasync that
        begins after it (the one under way may have begun before it committed)."""
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiters.append((transaction, future))
        if self._syncing is None:
            self._sync()
        return future

    def _sync(self) -> None:
        """Starts an fdatasync covering every transaction committed so far."""
        executor = self._executor
        if executor is None:
            raise RuntimeError("store is not open")
        if self._wal_fd < 0:  # the log exists once the first transaction committed
            self._wal_fd = os.open(f"{self._path}-wal", os.O_RDONLY | os.O_CLOEXEC)
        upto = self._committed
        done = asyncio.get_running_loop().run_in_executor(executor, os.fdatasync, self._wal_fd)
        self._syncing = done
        done.add_done_callback(lambda f: self._synced_to(upto, f))

    def _synced_to(self, upto: int, done: asyncio.Future[None]) -> None:
        self._syncing = None
        self.syncs += 1
        error = done.exception() if not done.cancelled() else asyncio.CancelledError()
        if error is not None:
            # After a failed fsync the kernel may have dropped the dirty pages: nothing committed
            # since the last good sync can be called durable, now or later.
            self.failed = error
            waiters, self._waiters = self._waiters, []
            for _, future in waiters:
                if not future.done():
                    future.set_exception(OSError(f"syncing the journal's log failed: {error}"))
            return
        self._synced = upto
        still: list[tuple[int, asyncio.Future[None]]] = []
        for transaction, future in self._waiters:
            if transaction <= upto:
                if not future.done():
                    future.set_result(None)
            else:
                still.append((transaction, future))
        self._waiters = still
        if still:
            self._sync()

    async def close(self) -> None:
        """Waits for the off-loop transaction and the fsync under way, closes the connection, then
        stops the thread, even when closing raised."""
        executor, conn = self._executor, self._conn
        if executor is None:
            return
        self._conn = None
        try:
            while self._off_loop is not None:  # the thread is using the connection
                await asyncio.wait([self._off_loop])
            while self._syncing is not None:  # its waiters are answered before it is let go
                await asyncio.wait([self._syncing])
            if conn is not None:
                conn.close()
        finally:
            if self._wal_fd >= 0:
                os.close(self._wal_fd)
                self._wal_fd = -1
            self._executor = None
            executor.shutdown(wait=True)


def _checkpoint(conn: sqlite3.Connection) -> tuple[int, int, int]:
    busy, frames, copied = conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
    return busy, frames, copied


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
