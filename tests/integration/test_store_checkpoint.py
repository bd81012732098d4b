"""The journal only appends on the hot path; balances and card state are checkpoints.

Whatever was committed — checkpointed or not, closed cleanly or not — reads back the same.
"""

from __future__ import annotations

import asyncio
import sqlite3
import threading
from pathlib import Path

import pytest

from onecard_hub.domain.ledger import Transfer, TransferKind
from onecard_hub.store.records import Batch, CardStateRow, RequestRow
from onecard_hub.store.schema import SCHEMA_VERSION
from onecard_hub.store.sqlite import SchemaTooNew, SqliteStore
from onecard_hub.store.writer import JournalWriter
from tests.helpers import loaded_counters, until


def _accounts(db: Path) -> tuple[int, int, str]:
    with sqlite3.connect(db) as conn:
        wallet = conn.execute("SELECT account_id FROM accounts WHERE kind = 'wallet' LIMIT 1").fetchone()[0]
        merchant = conn.execute("SELECT account_id FROM accounts WHERE kind = 'merchant' LIMIT 1").fetchone()
        card = conn.execute("SELECT card_no FROM cards LIMIT 1").fetchone()[0]
    return int(wallet), int(merchant[0]), str(card)


def _raw(db: Path, sql: str) -> int:
    with sqlite3.connect(db) as conn:
        return int(conn.execute(sql).fetchone()[0])


def _purchase(n: int, wallet: int, merchant: int, card: str, fen: int) -> Batch:
    return Batch(
        requests=[RequestRow("pos-1", f"r{n}", "Authorize", b"f", b"body", 1_000 + n, n, card)],
        transfers=[Transfer(wallet, merchant, fen, TransferKind.PURCHASE, "pos-1", f"r{n}", "", 1_000 + n)],
        card_states=[CardStateRow(card, n, 0, 1)],
    )


async def _state(store: SqliteStore, wallet: int, card: str) -> tuple[int, int, int]:
    snap = await store.load(0)
    balance = next(a.balance_fen for a in snap.accounts if a.account_id == wallet)
    atc, _, presence = loaded_counters(snap)[card]
    totals = await store.ledger_totals()
    assert totals.sum_fen == 0
    assert await store.ledger_mismatches() == 0
    return balance, atc, presence


async def test_balances_and_card_state_read_back_before_and_after_checkpoints(campus_dir: Path) -> None:
    db = campus_dir / "hub.db"
    wallet, merchant, card = _accounts(db)
    stored_before = _raw(db, f"SELECT balance_fen FROM accounts WHERE account_id = {wallet}")

    store = SqliteStore(db, checkpoint_rows=10)  # a purchase logs a transfer and a card state
    store.folder.share = 0  # folds start at 10 rows, whatever the campus
    await store.open()
    start, _, _ = await _state(store, wallet, card)
    for n in range(1, 4):
        await store.write(_purchase(n, wallet, merchant, card, 100))
    assert await _state(store, wallet, card) == (start - 300, 3, 1)
    # nothing rewrote the balance yet: the hot path only appended
    assert _raw(db, f"SELECT balance_fen FROM accounts WHERE account_id = {wallet}") == stored_before
    assert _raw(db, "SELECT COUNT(*) FROM card_state_log") == 3

    for n in range(4, 7):  # the fifth write crosses 10 rows: a fold follows, in its own transactions
        await store.write(_purchase(n, wallet, merchant, card, 100))
    await until(lambda: store.folder.folds == 1, "a fold")
    assert await _state(store, wallet, card) == (start - 600, 6, 1)
    folded = _raw(db, f"SELECT balance_fen FROM accounts WHERE account_id = {wallet}")
    assert folded in (start - 500, start - 600)  # the sixth write may have come before the fold began
    unfolded = (folded - (start - 600)) // 100  # purchases the fold did not take in
    assert _raw(db, "SELECT COUNT(*) FROM card_state_log") == unfolded
    await store.close()  # closed without a checkpoint, as after a crash

    reopened = SqliteStore(db)
    await reopened.open()
    assert await _state(reopened, wallet, card) == (start - 600, 6, 1)
    await reopened.checkpoint()
    assert await _state(reopened, wallet, card) == (start - 600, 6, 1)
    assert _raw(db, f"SELECT balance_fen FROM accounts WHERE account_id = {wallet}") == start - 600
    assert _raw(db, "SELECT COUNT(*) FROM card_state_log") == 0
    await reopened.close()


async def test_a_failed_write_leaves_nothing_behind(campus_dir: Path) -> None:
    db = campus_dir / "hub.db"
    wallet, merchant, card = _accounts(db)
    store = SqliteStore(db)
    await store.open()
    before = await _state(store, wallet, card)
    bad = _purchase(1, wallet, merchant, card, 100)
    bad.transfers.append(Transfer(wallet, merchant, -5, TransferKind.PURCHASE, "pos-1", "r1", "", 1))
    try:
        await store.write(bad)
    except sqlite3.IntegrityError:
        pass
    else:
        raise AssertionError("a negative transfer must violate the CHECK constraint")
    assert await _state(store, wallet, card) == before
    assert _raw(db, "SELECT COUNT(*) FROM requests") == 0
    await store.close()


async def test_the_writer_paces_commits_by_how_busy_the_hub_is(campus_dir: Path) -> None:
    store = SqliteStore(campus_dir / "hub.db")
    await store.open()
    loop = asyncio.get_running_loop()
    meter = {"share": 0.0, "since": loop.time(), "used": 0.0}  # the process's CPU use, as told

    def cpu_clock() -> float:
        return meter["used"] + meter["share"] * (loop.time() - meter["since"])

    # paced from 70% of a core: 50 ms apart at 80%, 100 ms at 90% and above
    writer = JournalWriter(store, linger_s=0.1, busy_window_s=0.02, cpu_clock=cpu_clock)
    writer.start()

    def row(n: int) -> Batch:
        return Batch(requests=[RequestRow("pos-1", f"w{n}", "Authorize", b"f", b"body", n)])

    async def later(n: int, delay: float) -> None:
        await asyncio.sleep(delay)
        await writer.submit(row(n))

    async def window(cpu_share: float) -> None:
        """From now on the hub uses `cpu_share` of a core; two judging windows pass (each
        closed by a commit), the second wholly at that share."""
        meter.update(used=cpu_clock(), share=cpu_share, since=loop.time())
        for n in range(2):
            await asyncio.sleep(0.06)
            await writer.submit(row(1000 + 10 * len(shares) + n))
        shares.append(cpu_share)

    async def commits(first: int, second_after: float) -> int:
        """Commits made for a row and another `second_after` seconds later."""
        before = writer.stats().batches
        await asyncio.gather(writer.submit(row(first)), later(first + 1, second_after))
        return writer.stats().batches - before

    shares: list[float] = []
    # light load: a row 10 ms after another gets its own commit
    assert await commits(0, 0.01) == 2
    # a window at 60% of a core: still no waiting
    await window(0.6)
    assert await commits(2, 0.01) == 2
    # at 80%: a commit starts 50 ms after the last one at the soonest, so a row 10 ms later joins it
    await window(0.8)
    assert await commits(4, 0.01) == 1
    # at 100%: commits go 100 ms apart, so a row 60 ms later still joins
    await window(1.0)
    assert await commits(6, 0.06) == 1
    # the load falls back (a window at 30%): single rows commit at once again
    await window(0.3)
    assert await commits(8, 0.01) == 2
    await writer.close()
    await store.close()


async def test_a_cancelled_caller_cannot_cancel_a_commit_shared_with_others(campus_dir: Path) -> None:
    db = campus_dir / "hub.db"
    wallet, merchant, card = _accounts(db)
    store = SqliteStore(db)
    await store.open()
    writer = JournalWriter(store, linger_s=0)
    first = writer.submit(_purchase(1, wallet, merchant, card, 100))
    second = writer.submit(_purchase(2, wallet, merchant, card, 100))
    assert first is second  # one commit, one future

    async def wait() -> None:
        await first

    impatient, patient = asyncio.create_task(wait()), asyncio.create_task(wait())
    await asyncio.sleep(0)
    impatient.cancel()
    writer.start()
    await asyncio.wait_for(patient, 10)  # the other caller still learns that the commit is durable
    assert first.done() and not first.cancelled()
    assert impatient.cancelled()  # the cancelled one is cancelled once the commit is done
    await writer.close()  # and stopping the writer raises nothing
    assert writer.failed is None
    assert _raw(db, "SELECT COUNT(*) FROM requests WHERE caller = 'pos-1'") == 2
    await store.close()


async def test_writes_go_through_the_journal_only(campus_dir: Path) -> None:
    """The reading connection may not write: one connection (the journal's) does every write."""
    store = SqliteStore(campus_dir / "hub.db")
    await store.open()
    with pytest.raises(sqlite3.OperationalError, match="readonly"):
        await store.db.execute("DELETE FROM requests")
    await store.close()


async def test_a_database_from_a_newer_hub_is_refused_and_left_as_it_was(campus_dir: Path) -> None:
    db = campus_dir / "hub.db"
    with sqlite3.connect(db) as conn:
        conn.execute(f"PRAGMA user_version={SCHEMA_VERSION + 1}")
    before = {t.name for t in threading.enumerate()}
    with pytest.raises(SchemaTooNew):
        await SqliteStore(db).open()
    assert {t.name for t in threading.enumerate()} == before  # no journal thread left running
    assert _raw(db, "PRAGMA user_version") == SCHEMA_VERSION + 1
