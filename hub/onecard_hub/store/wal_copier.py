"""Copying the write-ahead log into the database file, off the commit path.

In WAL mode SQLite appends every commit to the -wal file; a checkpoint copies those pages into
the database file and fsyncs it, so that the log can start over. By default the connection that
commits runs one whenever the log passes 1,000 pages, inside that commit: measured with the
journal's group commits, those commits took 20-500 ms instead of 0.5, the longest stalls the
journal had. Here the journal's connection never checkpoints (`wal_autocheckpoint=0`, set by the
store), and this copier does, on a connection and a thread of its own, every `every_s` while
commits come in: a PASSIVE checkpoint, which takes no lock a writer or a reader waits for, so
commits go on while it copies and fsyncs. The log starts over at the first commit after a
checkpoint that copied all of it (SQLite's rule); `journal_size_limit` then trims the file.

A crash at any point is SQLite's own business: the log is the durable copy until a checkpoint
has copied it, and the next connection to open the database replays it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sqlite3
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

log = logging.getLogger(__name__)

WAL_LIMIT_BYTES = 64 * 1024 * 1024  # the -wal file is trimmed to this once it starts over


class WalCopier:
    def __init__(self, path: Path, synchronous: str, *, every_s: float = 0.1) -> None:
        self._path = path
        self._synchronous = synchronous
        self.every_s = every_s
        self.copies = 0  # checkpoints run
        self._executor: ThreadPoolExecutor | None = None
        self._conn: sqlite3.Connection | None = None
        self._task: asyncio.Task[None] | None = None
        self._commits = asyncio.Event()

    def committed(self) -> None:
        """A group commit ended: there is something to copy."""
        self._commits.set()
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._run(), name="wal-copier")

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="onecard-wal")
        try:
            self._conn = await loop.run_in_executor(self._executor, self._connect)
            while True:
                await self._commits.wait()
                self._commits.clear()
                await loop.run_in_executor(self._executor, self._copy)
                self.copies += 1
                await asyncio.sleep(self.every_s)
        except asyncio.CancelledError:
            raise
        except sqlite3.Error:  # the journal goes on; its next open copies the log
            log.exception("copying the write-ahead log failed; it grows until the hub restarts")

    def _connect(self) -> sqlite3.Connection:
        conn = sqlite3.connect(self._path, isolation_level=None, check_same_thread=False)
        conn.execute(f"PRAGMA synchronous={self._synchronous}")
        conn.execute("PRAGMA busy_timeout=5000")
        conn.execute(f"PRAGMA journal_size_limit={WAL_LIMIT_BYTES}")
        return conn

    def _copy(self) -> None:
        if self._conn is not None:
            self._conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()

    async def stop(self) -> None:
        """Stops copying (a copy under way finishes first) and closes the connection."""
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        executor, conn = self._executor, self._conn
        self._executor = self._conn = None
        if executor is not None:
            try:
                if conn is not None:
                    await asyncio.get_running_loop().run_in_executor(executor, conn.close)
            finally:
                executor.shutdown(wait=True)
