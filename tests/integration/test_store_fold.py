"""Folds run in transactions of their own, between group commits; a kill -9 anywhere in one loses
nothing committed and applies nothing twice."""

from __future__ import annotations

import asyncio
import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import pytest

from onecard_hub.domain.ledger import Transfer, TransferKind
from onecard_hub.store.records import Batch, CardStateRow, RequestRow
from onecard_hub.store.sqlite import SqliteStore
from tests.helpers import until

T = TypeVar("T")
ROOT = Path(__file__).resolve().parents[2]


def _campus(db: Path) -> tuple[list[tuple[int, str]], int]:
    """(wallet account, card) pairs and a merchant's account."""
    with sqlite3.connect(db) as conn:
        pairs = conn.execute(
            "SELECT s.wallet_account_id, c.card_no FROM cards c JOIN students s USING (student_id)"
            " ORDER BY c.card_no"
        ).fetchall()
        merchant = conn.execute("SELECT account_id FROM accounts WHERE kind = 'merchant' LIMIT 1").fetchone()
    conn.close()
    return [(int(w), str(c)) for w, c in pairs], int(merchant[0])


def _raw(db: Path, sql: str) -> list[Any]:
    with sqlite3.connect(db) as conn:
        rows = conn.execute(sql).fetchall()
    conn.close()
    return rows


def _purchases(first: int, count: int, pairs: list[tuple[int, str]], merchant: int) -> Batch:
    batch = Batch()
    for n in range(first, first + count):
        wallet, card = pairs[n % len(pairs)]
        batch.requests.append(RequestRow("pos-1", f"r{n}", "Authorize", b"f", b"body", n, n, card))
        batch.transfers.append(
            Transfer(wallet, merchant, 100, TransferKind.PURCHASE, "pos-1", f"r{n}", "", n)
        )
        batch.card_states.append(CardStateRow(card, n, 0, 1))
    return batch


def _expected(
    before: dict[int, int], pairs: list[tuple[int, str]], merchant: int, taps: int
) -> tuple[dict[int, int], dict[str, int]]:
    """Balances and each card's latest ATC after purchases 0..taps-1 of 100 fen."""
    balances = dict(before)
    atc: dict[str, int] = {}
    for n in range(taps):
        wallet, card = pairs[n % len(pairs)]
        balances[wallet] -= 100
        balances[merchant] += 100
        atc[card] = n
    return balances, atc


async def test_a_fold_runs_between_commits_and_never_inside_one(campus_dir: Path) -> None:
    db = campus_dir / "hub.db"
    pairs, merchant = _campus(db)
    before = dict(_raw(db, "SELECT account_id, balance_fen FROM accounts"))
    # a commit of 6 purchases is 12 rows: a fold's threshold; what is left after one fold is a
    # commit's rows or more, or nothing, so everything gets folded
    store = SqliteStore(db, checkpoint_rows=12, fold_chunk_rows=3)  # many chunks of 3 accounts
    store.folder.share = 0
    store.folder.idle_s = 3600.0  # not idle, and only a chunk per 1,000,000 rows: no fold goes on
    store.folder.pace_rows = 1_000_000
    await store.open()
    taps = 0
    for _ in range(2):  # 24 rows: past the threshold, not three thresholds behind (no pacing then)
        await store.write(_purchases(taps, 6, pairs, merchant))
        taps += 6
    # every commit only appended: the fold has not written a chunk, whatever it planned
    assert store.folder.chunks == 0
    assert dict(_raw(db, "SELECT account_id, balance_fen FROM accounts")) == before
    balances, atc = _expected(before, pairs, merchant, taps)
    snap = await store.load(0)
    assert {a.account_id: a.balance_fen for a in snap.accounts} == balances
    assert {c.card_no: c.atc for c in snap.cards if c.card_no in atc} == atc

    store.folder.idle_s = 0.0  # from now on the journal counts as idle once a commit ends
    await store.write(_purchases(taps, 6, pairs, merchant))  # the fold goes on, chunk by chunk
    taps += 6
    balances, atc = _expected(before, pairs, merchant, taps)
    await until(lambda: store.folder.folds >= 1, "a fold")
    await until(lambda: not _raw(db, "SELECT * FROM card_state_log"), "the card log emptied")
    assert store.folder.chunks > 3  # in chunks, each its own transaction
    assert dict(_raw(db, "SELECT account_id, balance_fen FROM accounts")) == balances
    stored = dict(_raw(db, "SELECT card_no, atc FROM card_state"))
    assert {c: stored[c] for c in atc} == atc
    last = _raw(db, "SELECT MAX(transfer_id) FROM transfers")[0][0]
    assert _raw(db, "SELECT position FROM checkpoints WHERE name = 'transfers'") == [(last,)]
    assert _raw(db, "SELECT fold_to, cursor FROM fold_progress") == [(last, 0)]
    assert await store.ledger_mismatches() == 0
    await store.close()


async def test_a_fold_interrupted_after_some_chunks_resumes_without_adding_twice(campus_dir: Path) -> None:
    """A fold's chunks end where a crash would end them: the positions say which accounts hold
    what, the views add the rest, and the next fold writes only the accounts not yet written."""
    db = campus_dir / "hub.db"
    pairs, merchant = _campus(db)
    before = dict(_raw(db, "SELECT account_id, balance_fen FROM accounts"))
    store = SqliteStore(db, checkpoint_rows=1_000_000, fold_chunk_rows=2)  # folds only when asked
    await store.open()
    await store.write(_purchases(0, 12, pairs, merchant))
    chunks = 0

    real = store.journal.transaction

    async def crashing(body: Callable[[sqlite3.Connection], T], *, off_loop: bool = False) -> T:
        nonlocal chunks
        if getattr(body, "__name__", "") == "body":  # a chunk of balances
            if chunks == 2:  # the third never runs
                raise ConnectionAbortedError("killed")
            chunks += 1
        return await real(body, off_loop=off_loop)

    store.journal.transaction = crashing  # type: ignore[method-assign]
    with pytest.raises(ConnectionAbortedError):
        await store.folder.fold()
    store.journal.transaction = real  # type: ignore[method-assign]
    folded = _raw(db, "SELECT position FROM checkpoints WHERE name = 'transfers'")[0][0]
    ((fold_to, cursor),) = _raw(db, "SELECT fold_to, cursor FROM fold_progress")
    assert fold_to > folded and cursor > 0  # stopped half way
    balances, _ = _expected(before, pairs, merchant, 12)
    assert dict(_raw(db, "SELECT account_id, balance_fen FROM account_balances")) == balances
    assert await store.ledger_mismatches() == 0
    await store.close()

    reopened = SqliteStore(db, checkpoint_rows=1_000_000, fold_chunk_rows=2)
    await reopened.open()
    await reopened.write(_purchases(12, 6, pairs, merchant))
    await reopened.folder.fold()  # the interrupted fold first: up to its fold_to
    balances, atc = _expected(before, pairs, merchant, 18)
    assert dict(_raw(db, "SELECT account_id, balance_fen FROM account_balances")) == balances
    await reopened.folder.fold()  # then the rest
    assert dict(_raw(db, "SELECT account_id, balance_fen FROM accounts")) == balances
    snap = await reopened.load(0)
    assert {c.card_no: c.atc for c in snap.cards if c.card_no in atc} == atc
    assert _raw(db, "SELECT COUNT(*) FROM card_state_log") == [(0,)]
    assert await reopened.ledger_mismatches() == 0
    await reopened.close()


_WRITER = textwrap.dedent(
    """
    import asyncio, sys
    from pathlib import Path
    from onecard_hub.store.sqlite import SqliteStore
    from tests.integration.test_store_fold import _campus, _purchases

    async def main() -> None:
        db, first = Path(sys.argv[1]), int(sys.argv[2])
        pairs, merchant = _campus(db)
        store = SqliteStore(db, checkpoint_rows=40, fold_chunk_rows=2)
        store.folder.share = 0
        store.folder.pace_rows = 4
        await store.open()
        n = first
        while True:
            await store.write(_purchases(n, 3, pairs, merchant))
            n += 3
            print(n, store.folder.chunks, flush=True)  # acknowledged: purchases below n are durable

    asyncio.run(main())
    """
)


@pytest.mark.slow
def test_kill_9_during_folds_loses_nothing_and_adds_nothing_twice(campus_dir: Path) -> None:
    db = campus_dir / "hub.db"
    pairs, merchant = _campus(db)
    before = dict(_raw(db, "SELECT account_id, balance_fen FROM accounts"))
    root = ROOT
    env = {**os.environ, "PYTHONPATH": str(root)}
    taps = 0
    for kill in range(6):
        proc = subprocess.Popen(
            [sys.executable, "-c", _WRITER, str(db), str(taps)], stdout=subprocess.PIPE, text=True, env=env
        )
        assert proc.stdout is not None
        acknowledged, chunks = taps, 0
        for line in proc.stdout:  # killed at a different point of a fold each time
            acknowledged, chunks = (int(v) for v in line.split())
            if chunks >= 5 + 7 * kill:
                break
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
        proc.stdout.close()
        # the purchases committed: every acknowledged one, perhaps the next commit's too
        committed = _raw(db, "SELECT COUNT(*) FROM transfers WHERE caller = 'pos-1'")[0][0]
        assert committed in (acknowledged, acknowledged + 3)
        taps = committed
        balances, atc = _expected(before, pairs, merchant, taps)
        assert dict(_raw(db, "SELECT account_id, balance_fen FROM account_balances")) == balances
        states = dict(_raw(db, "SELECT card_no, atc FROM card_states"))
        assert {c: states[c] for c in atc} == atc

    asyncio.run(_checkpoint(db))  # and a last whole fold from wherever the last kill left it
    assert (
        dict(_raw(db, "SELECT account_id, balance_fen FROM accounts"))
        == _expected(before, pairs, merchant, taps)[0]
    )
    assert _raw(db, "SELECT COUNT(*) FROM card_state_log") == [(0,)]


async def _checkpoint(db: Path) -> None:
    store = SqliteStore(db)
    await store.open()
    try:
        await store.checkpoint()
        assert await store.ledger_mismatches() == 0
    finally:
        await store.close()
