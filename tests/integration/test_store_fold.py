"""Folds run in short transactions of their own, between group commits, and let a commit asked for
meanwhile go before their next one; a kill -9 anywhere in one loses nothing committed and applies
nothing twice."""

from __future__ import annotations

import asyncio
import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import pytest

from onecard_hub.domain.ledger import Transfer, TransferKind
from onecard_hub.store.records import Batch, CardStateRow, RequestRow
from onecard_hub.store.sqlite import SqliteStore
from tests.helpers import loaded_counters, until

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
    store = SqliteStore(db, checkpoint_rows=1_000, fold_step_rows=3)  # statements of 3 accounts
    store.folder.share = 0
    store.folder.budget_s = 0.0  # a statement per transaction: many of them
    store.folder.duty = 1.0  # no rest between them
    await store.open()
    taps = 0
    for _ in range(2):  # 24 rows: below the threshold, no fold yet
        await store.write(_purchases(taps, 6, pairs, merchant))
        taps += 6
    # every commit only appended
    assert store.folder.steps == 0
    assert dict(_raw(db, "SELECT account_id, balance_fen FROM accounts")) == before
    balances, atc = _expected(before, pairs, merchant, taps)
    snap = await store.load(0)
    assert {a.account_id: a.balance_fen for a in snap.accounts} == balances
    assert {no: c[0] for no, c in loaded_counters(snap).items() if no in atc} == atc

    # a commit of 6 purchases is 12 rows: the threshold; what is left after one fold is a commit's
    # rows or more, or nothing, so everything gets folded
    store.folder.min_rows = 12
    await store.write(_purchases(taps, 6, pairs, merchant))  # the fold goes on, step by step
    taps += 6
    balances, atc = _expected(before, pairs, merchant, taps)
    await until(lambda: store.folder.folds >= 1, "a fold")
    await until(lambda: not _raw(db, "SELECT * FROM card_state_log"), "the card log emptied")
    assert store.folder.steps > 3  # in steps, each its own transaction
    assert dict(_raw(db, "SELECT account_id, balance_fen FROM accounts")) == balances
    stored = dict(_raw(db, "SELECT card_no, atc FROM card_state"))
    assert {c: stored[c] for c in atc} == atc
    last = _raw(db, "SELECT MAX(transfer_id) FROM transfers")[0][0]
    assert _raw(db, "SELECT position FROM checkpoints WHERE name = 'transfers'") == [(last,)]
    assert _raw(db, "SELECT fold_to, cursor FROM fold_progress") == [(last, 0)]
    assert await store.ledger_mismatches() == 0
    await store.close()


def _cursor_moves(db: Path, moved: list[int]) -> None:
    """Notes the fold's cursor when it moved since the last look."""
    cursor = _raw(db, "SELECT cursor FROM fold_progress")[0][0]
    if cursor and (not moved or moved[-1] != cursor):
        moved.append(cursor)


async def test_a_step_writes_until_its_budget_is_spent(campus_dir: Path) -> None:
    """Balances are written 2 accounts per statement; a step with no budget is one statement, a
    step with a large one writes them all."""
    db = campus_dir / "hub.db"
    pairs, merchant = _campus(db)
    store = SqliteStore(db, checkpoint_rows=1_000_000, fold_step_rows=2)  # folds only when asked
    store.folder.duty = 1.0
    await store.open()
    real = store.journal.transaction
    moved: list[int] = []

    async def watched(body: Callable[[sqlite3.Connection], T], *, off_loop: bool = False) -> T:
        _cursor_moves(db, moved)
        return await real(body, off_loop=off_loop)

    store.journal.transaction = watched  # type: ignore[method-assign]
    await store.write(_purchases(0, 12, pairs, merchant))  # 12 wallets and a merchant
    store.folder.budget_s = 0.0
    await store.folder.fold()
    assert len(moved) == 7  # 13 accounts, 2 at a time: the cursor moved 7 times, a step each

    moved.clear()
    await store.write(_purchases(12, 12, pairs, merchant))
    store.folder.budget_s = 3600.0
    await store.folder.fold()
    assert len(moved) == 1  # one step wrote them all
    store.journal.transaction = real  # type: ignore[method-assign]
    assert await store.ledger_mismatches() == 0
    await store.close()


async def test_a_commit_asked_for_during_a_step_goes_before_the_next_step(campus_dir: Path) -> None:
    """Without waiting for an fdatasync (NORMAL), nothing but the fold's pacing lets a commit
    in between two of its steps: one asked for while a step runs must not wait for more."""
    db = campus_dir / "hub.db"
    pairs, merchant = _campus(db)
    store = SqliteStore(db, synchronous="NORMAL", checkpoint_rows=1_000_000, fold_step_rows=1)
    store.folder.budget_s = 0.0  # many steps
    store.folder.duty = 1.0  # no rest between them: the tightest the fold can go
    await store.open()
    await store.write(_purchases(0, 12, pairs, merchant))
    real = store.journal.transaction
    order: list[str] = []
    steps = 0
    held, release = threading.Event(), threading.Event()

    async def watched(body: Callable[[sqlite3.Connection], T], *, off_loop: bool = False) -> T:
        nonlocal steps
        if not off_loop:
            return await real(body, off_loop=off_loop)
        steps += 1
        number = steps

        def step(db: sqlite3.Connection) -> T:  # on the journal's thread
            order.append(f"step {number}")
            if number == 5:  # the fifth step waits until a commit is asked for
                held.set()
                release.wait()
            return body(db)

        return await real(step, off_loop=True)

    store.journal.transaction = watched  # type: ignore[method-assign]
    fold = asyncio.get_running_loop().create_task(store.folder.fold())
    await until(held.is_set, "the fifth step")
    commit: asyncio.Task[None] = asyncio.get_running_loop().create_task(
        store.journal.transaction(lambda db: order.append("commit"))
    )
    await asyncio.sleep(0)  # the commit asks for the journal, which the step holds
    assert not commit.done()
    release.set()
    await commit
    await fold
    store.journal.transaction = real
    assert order.index("commit") == order.index("step 5") + 1  # before step 6
    assert len(order) > 7
    assert await store.ledger_mismatches() == 0
    await store.close()


async def test_a_fold_interrupted_after_some_steps_resumes_without_adding_twice(campus_dir: Path) -> None:
    """A fold's steps end where a crash would end them: the positions say which accounts hold
    what, the views add the rest, and the next fold writes only the accounts not yet written."""
    db = campus_dir / "hub.db"
    pairs, merchant = _campus(db)
    before = dict(_raw(db, "SELECT account_id, balance_fen FROM accounts"))
    store = SqliteStore(db, checkpoint_rows=1_000_000, fold_step_rows=2)  # folds only when asked
    store.folder.budget_s = 0.0  # 2 accounts per step
    store.folder.duty = 1.0
    await store.open()
    await store.write(_purchases(0, 12, pairs, merchant))
    moved: list[int] = []

    real = store.journal.transaction

    async def crashing(body: Callable[[sqlite3.Connection], T], *, off_loop: bool = False) -> T:
        _cursor_moves(db, moved)
        if len(moved) == 2:  # two steps of balances ran; the third never runs
            raise ConnectionAbortedError("killed")
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

    reopened = SqliteStore(db, checkpoint_rows=1_000_000, fold_step_rows=2)
    reopened.folder.duty = 1.0
    await reopened.open()
    await reopened.write(_purchases(12, 6, pairs, merchant))
    await reopened.folder.fold()  # the interrupted fold first: up to its fold_to
    balances, atc = _expected(before, pairs, merchant, 18)
    assert dict(_raw(db, "SELECT account_id, balance_fen FROM account_balances")) == balances
    await reopened.folder.fold()  # then the rest
    assert dict(_raw(db, "SELECT account_id, balance_fen FROM accounts")) == balances
    snap = await reopened.load(0)
    assert {no: c[0] for no, c in loaded_counters(snap).items() if no in atc} == atc
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
        store = SqliteStore(db, checkpoint_rows=40, fold_step_rows=2)
        store.folder.share = 0
        store.folder.budget_s = 0.0  # a statement per step: a kill finds a fold at many places
        await store.open()
        n = first
        while True:
            await store.write(_purchases(n, 3, pairs, merchant))
            n += 3
            print(n, store.folder.steps, flush=True)  # acknowledged: purchases below n are durable

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
        acknowledged, steps = taps, 0
        for line in proc.stdout:  # killed at a different point of a fold each time
            acknowledged, steps = (int(v) for v in line.split())
            if steps >= 5 + 7 * kill:
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
