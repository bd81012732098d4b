"""Copying the write-ahead log into the database file, off the commit path.

In WAL mode SQLite appends every commit to the -wal file; a checkpoint copies those pages into
the database file and fsyncs it, so that the log can start over. By default the connection that
commits runs one whenever the log passes 1,000 pages, inside that commit: measured with the
journal's group commits, those commits took 20-500 ms instead of 0.5, the longest stalls the
journal had. Here the journal's connection never checkpoints inside a commit
(`wal_autocheckpoint=0`, set by the store); this copier asks the journal for a checkpoint
(`JournalConnection.checkpoint`, on the journal's thread, between transactions) every `every_s`
while commits come in. Small and frequent, each one copies a tenth of a second of commits, and the
commit after it starts the log over, so the log stays small and is written over in place rather
than grown (an fdatasync of a file that grows costs more and waits longer).

Why not a connection of its own beside the commits: with commits landing while it copied, the
log was never copied whole at the moment a commit began, so it never started over and grew by
tens of MB a minute; and its fsyncs of the database ran at the same time as the journal's of the
log, making those wait (60-100 ms measured at 1,000 taps/s).

A crash at any point is SQLite's own business: the log is the durable copy until a checkpoint
has copied it, and the next connection to open the database replays it.
"""

from __future__ import annotations

import asyncio
import logging
import sqlite3
from collections.abc import Awaitable, Callable

from onecard_hub.stopping import cancelled

log = logging.getLogger(__name__)


class WalCopier:
    def __init__(self, checkpoint: Callable[[], Awaitable[object]], *, every_s: float = 0.1) -> None:
        self._checkpoint = checkpoint
        self.every_s = every_s
        self.copies = 0  # checkpoints run
        self._task: asyncio.Task[None] | None = None
        self._commits = asyncio.Event()

    def committed(self) -> None:
        """A group commit ended: there is something to copy."""
        self._commits.set()
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._run(), name="wal-copier")

    async def _run(self) -> None:
        try:
            while True:
                await self._commits.wait()
                self._commits.clear()
                await self._checkpoint()
                self.copies += 1
                await asyncio.sleep(self.every_s)
        except asyncio.CancelledError:
            raise
        except (sqlite3.Error, RuntimeError):  # the journal goes on; its next open copies the log
            log.exception("copying the write-ahead log failed; it grows until the hub restarts")

    async def stop(self) -> None:
        """Stops copying (a copy under way finishes first: it runs on the journal's thread)."""
        task, self._task = self._task, None
        await cancelled(task)
