"""The -wal file is copied into the database beside the commits, never by one."""

from __future__ import annotations

import shutil
import sqlite3
from pathlib import Path

from onecard_hub.store.records import Batch, RequestRow
from onecard_hub.store.sqlite import SqliteStore
from tests.helpers import until


def _requests(first: int, count: int) -> Batch:
    body = b"x" * 3000  # about a page per row
    return Batch(
        requests=[
            RequestRow("pos-1", f"w{n}", "Authorize", b"f", body, n, n) for n in range(first, first + count)
        ]
    )


def _in_database_file(db: Path, copy: Path) -> int:
    """Requests of ours in the database file alone, as if its -wal file were lost (-1: the copy
    caught a checkpoint half way)."""
    shutil.copyfile(db, copy)
    try:
        with sqlite3.connect(copy) as conn:
            return int(conn.execute("SELECT COUNT(*) FROM requests WHERE caller = 'pos-1'").fetchone()[0])
    except sqlite3.DatabaseError:
        return -1
    finally:
        conn.close()
        copy.unlink()


async def test_commits_never_copy_the_wal_and_the_copier_does(campus_dir: Path, tmp_path: Path) -> None:
    db = campus_dir / "hub.db"
    store = SqliteStore(db)
    await store.open()
    copier = store.wal.committed
    store.wal.committed = lambda: None  # type: ignore[method-assign]  # no copier for now
    for n in range(0, 1_500, 100):  # 1,500 pages: past SQLite's default of a checkpoint per 1,000
        await store.write(_requests(n, 100))
    assert _in_database_file(db, tmp_path / "alone.db") == 0  # only in the -wal file
    assert await store.journal.transaction(lambda c: c.execute("PRAGMA wal_autocheckpoint").fetchone()) == (
        0,
    )

    store.wal.committed = copier  # type: ignore[method-assign]
    await store.write(_requests(1_500, 1))
    await until(lambda: _in_database_file(db, tmp_path / "alone.db") == 1_501, "the -wal file copied")
    await store.close()


async def _a_copy(store: SqliteStore) -> None:
    wanted = store.wal.copies + 1
    await until(lambda: store.wal.copies >= wanted, "a checkpoint after ten commits")


async def test_the_log_starts_over_instead_of_growing(campus_dir: Path) -> None:
    """The copier's checkpoints run between commits, so each copies the whole log and the next commit
    writes it over from the start: after 300 commits of a page or more each, the log holds only what
    came since the last checkpoint."""
    store = SqliteStore(campus_dir / "hub.db")
    await store.open()
    try:
        store.wal.every_s = 0.0
        for n in range(300):
            await store.write(_requests(n, 1))
            if n % 10 == 9:
                await _a_copy(store)
        busy, frames, copied = await store.journal.checkpoint()
        assert busy == 0
        assert frames < 60, frames  # 300 commits wrote 300 frames or more: the log started over
        assert copied == frames
    finally:
        await store.close()
