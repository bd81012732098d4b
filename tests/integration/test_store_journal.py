"""The journal's connection: transactions on the loop, answered only after an fdatasync of the log.

A real SQLite file in tmp_path; the fsync is the real system call on the real -wal file.
"""

from __future__ import annotations

import asyncio
import os
import sqlite3
import threading
from pathlib import Path

import pytest

from onecard_hub.store.journal import JournalConnection


async def _journal(tmp_path: Path, synchronous: str = "FULL") -> JournalConnection:
    journal = JournalConnection(tmp_path / "j.db", synchronous)
    await journal.open()
    await journal.transaction(lambda db: db.execute("CREATE TABLE t (n INTEGER NOT NULL)"))
    return journal


def _insert(n: int):  # type: ignore[no-untyped-def]
    return lambda db: db.execute("INSERT INTO t (n) VALUES (?)", (n,))


def _rows(path: Path) -> list[int]:
    with sqlite3.connect(path) as conn:
        return [n for (n,) in conn.execute("SELECT n FROM t ORDER BY n")]


async def test_transactions_committed_while_a_sync_runs_share_the_next_one(tmp_path: Path) -> None:
    journal = await _journal(tmp_path)
    try:
        before = journal.syncs
        # The first commit starts an fdatasync; the other 49 commit on the loop before it can end
        # (its end is a callback on this loop), so one more fdatasync covers all of them.
        await asyncio.gather(*(journal.transaction(_insert(n)) for n in range(50)))
        assert journal.syncs - before == 2
        assert _rows(tmp_path / "j.db") == list(range(50))
    finally:
        await journal.close()


async def test_each_answer_waits_for_a_sync_begun_after_its_commit(tmp_path: Path) -> None:
    journal = await _journal(tmp_path)
    try:
        for n in range(5):
            before = journal.syncs
            await journal.transaction(_insert(n))
            assert journal.syncs == before + 1
    finally:
        await journal.close()


async def test_normal_and_off_wait_for_no_sync(tmp_path: Path) -> None:
    for mode in ("NORMAL", "OFF"):
        folder = tmp_path / mode
        folder.mkdir()
        journal = await _journal(folder, mode)
        try:
            await asyncio.gather(*(journal.transaction(_insert(n)) for n in range(10)))
            assert journal.syncs == 0
            assert _rows(folder / "j.db") == list(range(10))
        finally:
            await journal.close()


async def test_a_failed_sync_fails_its_waiters_and_every_later_transaction(tmp_path: Path) -> None:
    journal = await _journal(tmp_path)
    try:
        # The log's descriptor swapped for a pipe's: the next fdatasync fails (EINVAL), as a dying
        # disk's would (EIO).
        os.close(journal._wal_fd)
        read_end, write_end = os.pipe()
        os.close(write_end)
        journal._wal_fd = read_end
        with pytest.raises(OSError, match="syncing the journal's log failed"):
            await journal.transaction(_insert(1))
        assert journal.failed is not None
        with pytest.raises(RuntimeError, match="could not be synced"):
            await journal.transaction(_insert(2))
        assert _rows(tmp_path / "j.db") == [1]  # committed, never called durable
    finally:
        await journal.close()


async def test_a_transaction_that_raises_is_rolled_back_and_not_synced(tmp_path: Path) -> None:
    journal = await _journal(tmp_path)
    try:
        before = journal.syncs

        def fails(db: sqlite3.Connection) -> None:
            db.execute("INSERT INTO t (n) VALUES (7)")
            raise ValueError("refused")

        with pytest.raises(ValueError, match="refused"):
            await journal.transaction(fails)
        assert journal.syncs == before
        assert _rows(tmp_path / "j.db") == []
    finally:
        await journal.close()


async def test_an_off_loop_transaction_keeps_the_order_and_leaves_the_loop_free(tmp_path: Path) -> None:
    journal = await _journal(tmp_path)
    try:
        started, release = threading.Event(), threading.Event()
        loop_ran: list[str] = []

        def big(db: sqlite3.Connection) -> str:
            db.execute("INSERT INTO t (n) VALUES (1)")
            started.set()
            release.wait(10)  # holds the transaction open on the journal's thread
            return threading.current_thread().name

        off = asyncio.ensure_future(journal.transaction(big, off_loop=True))
        await asyncio.to_thread(started.wait, 10)
        after = asyncio.ensure_future(journal.transaction(_insert(2)))  # asked while `big` runs
        await asyncio.sleep(0)
        loop_ran.append("the loop served something else meanwhile")
        assert not after.done()  # it waits for `big`, and does not block the loop while waiting
        release.set()
        assert (await off).startswith("onecard-journal")
        await after
        assert loop_ran
        assert _rows(tmp_path / "j.db") == [1, 2]
    finally:
        await journal.close()
