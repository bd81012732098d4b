"""Folding the journal into the state tables, off the commit path and off the event loop.

A group commit only appends: a tap's transfer to `transfers`, its card's counters to
`card_state_log`. The views `account_balances` and `card_states` add what has not been folded
yet, so every committed tap reads back at once; the fold only keeps that unfolded tail short,
so that a start has little to add up.

Why this design. The fold used to run every 2,000 rows inside the commit that crossed them:
that commit took 10-25 ms longer, and the fold wrote every page of `accounts` and `card_state`
it touched, 2,000 random pages at a million cards, so the bytes written per tap grew with the
campus (4.8 kB at 20,000 cards, 25.8 kB at 1,000,000). Here a fold

- waits until the unfolded rows are a quarter of the campus (`FOLD_SHARE` times the number of
  accounts, at least `min_rows`): by then nearly every page of the two state tables has
  something to take in, and each page is written once per fold, so a fold costs about the size
  of those tables, and the taps between two folds grow with the campus too: the bytes per tap
  no longer depend on the campus (the two tables hold about 80 bytes per card; written twice,
  to the -wal file and then the database, over a quarter as many journal rows as cards, about
  1 kB per tap at any size). A larger share writes less per tap but leaves a longer tail for a
  start to add up; a smaller one the reverse;
- does all its work in SQL, in short transactions on the journal's thread (`off_loop`): it adds
  up the transfers and the card log into two TEMP tables of the journal's connection (staged
  per account and per card, `step_rows` journal rows per statement), then writes them into
  `accounts` and `card_state` in key order, `step_rows` keys per statement, then deletes the
  folded card log. Nothing of it runs on the event loop but a few awaits, nor holds the GIL
  for long: a statement releases it while SQLite works, and no Python loop or sort goes over
  the rows (an earlier version added them up in dicts on the loop and sorted a campus's keys,
  a pause that grew with the campus);
- keeps each transaction short and leaves the journal to the commits most of the time: a
  transaction runs statements until it has taken `budget_s` (at least one), and after it the
  fold rests `(1 - duty) / duty` times as long as it took, so it takes at most `duty` of the
  journal's thread (`duty_behind` once the unfolded rows are three thresholds or more: after a
  burst it catches up faster, still in short steps). A commit asked for while a step runs waits
  for that step only, and goes before the next one. (Earlier, past three thresholds, chunks of
  1,000 rows ran back to back, however busy the hub was.)

Measured with scripts/bench_fold.py (20,000 students, 1,000 calls/s after a burst of 8,000, the
hub on one CPU, four runs each): the earlier fold took 83-112 ms of the loop's CPU per fold, in
stretches of up to 1-1.9 ms, and 5-7 ms on the journal's thread; this one 1-2 ms on the loop (its
awaits), in stretches of at most 0.3 ms, and 9-12.5 ms on the thread, at most 1.4 ms of it per
transaction; a commit asked for while one of its steps ran waited at most 1.1 ms for it. SQL
costs the thread more than the dicts did; the loop, where the calls are served, pays almost
nothing. (At a million cards the earlier fold also sorted some 250,000 card numbers in one call
holding the GIL: about 80 ms during which the loop could not run.)

Crash safety. Balances are sums, so each account must take each transfer exactly once. The
`fold_progress` table says how far: accounts below its `cursor` hold the transfers up to its
`fold_to`, the others up to the `transfers` checkpoint; the views add the rest. A step that
writes balances adds the deltas of its accounts and moves the cursor past them in one
transaction, after checking that the cursor is where it left it; the last step sets `transfers`
to `fold_to`. A kill at any instant leaves a consistent position (the TEMP tables go with the
connection); the next fold resumes it: it stages again the transfers from `transfers` to
`fold_to` of the accounts from the cursor on, and writes only those. Card state is a value, not
a sum: a step writes each card's latest logged state at or before the fold's last log entry, and
only once every card is written are those log entries deleted; the view prefers a card's logged
state, which is never older than its folded one.

Start cost. `load` adds up the unfolded tail in SQL (the views): one fold threshold plus what
arrives while a fold runs, so up to about half a campus's worth of journal rows (balances: one
`transfers` row each; counters: one `card_state_log` row each).
"""

from __future__ import annotations

import asyncio
import logging
import sqlite3
import time
from collections.abc import Awaitable, Callable
from functools import partial
from typing import Any, TypeVar

from onecard_hub.stopping import cancelled
from onecard_hub.store.journal import JournalConnection

log = logging.getLogger(__name__)

FOLD_SHARE = 0.25  # a fold starts when the unfolded rows reach this share of the accounts

Reader = Callable[[str, tuple[Any, ...]], Awaitable[list[Any]]]
P = TypeVar("P")  # where a fold's work stands: a journal row, an account, a card

_POSITIONS = (
    "SELECT (SELECT position FROM checkpoints WHERE name = 'transfers'), fold_to, cursor FROM fold_progress"
)
_SET_FOLDED = "UPDATE checkpoints SET position = ? WHERE name = 'transfers'"
_SET_PROGRESS = "UPDATE fold_progress SET fold_to = ?, cursor = ?"
_SIZES = (
    "SELECT COALESCE((SELECT MAX(account_id) FROM accounts), 0),"
    " COALESCE((SELECT MAX(transfer_id) FROM transfers), 0)"
    "   - (SELECT position FROM checkpoints WHERE name = 'transfers'),"
    " COALESCE((SELECT MAX(entry_id) - MIN(entry_id) + 1 FROM card_state_log), 0)"
)
# The staging tables: the journal connection's own, gone with it (a crash stages again).
_STAGING = (
    "CREATE TEMP TABLE IF NOT EXISTS fold_deltas (account INTEGER PRIMARY KEY, delta INTEGER NOT NULL)",
    "CREATE TEMP TABLE IF NOT EXISTS fold_cards (card_no TEXT PRIMARY KEY, atc INTEGER NOT NULL,"
    " pin_failures INTEGER NOT NULL, presence INTEGER NOT NULL, entry_id INTEGER NOT NULL) WITHOUT ROWID",
    "DELETE FROM temp.fold_deltas",
    "DELETE FROM temp.fold_cards",
)
_STAGE_TRANSFERS = (
    "INSERT INTO temp.fold_deltas (account, delta)"
    " SELECT account, SUM(delta) FROM ("
    "  SELECT to_account AS account, amount_fen AS delta FROM transfers"
    "  WHERE transfer_id > ?1 AND transfer_id <= ?2"
    "  UNION ALL"
    "  SELECT from_account, -amount_fen FROM transfers WHERE transfer_id > ?1 AND transfer_id <= ?2)"
    " WHERE account >= ?3"  # the accounts below the cursor hold these already
    " GROUP BY account"
    " ON CONFLICT (account) DO UPDATE SET delta = delta + excluded.delta"
)
# SQLite's bare columns beside MAX(): the values of the row holding the maximum, each card's latest;
# steps go up the log, so a later step's entry replaces an earlier one's
_STAGE_CARDS = (
    "INSERT INTO temp.fold_cards (card_no, atc, pin_failures, presence, entry_id)"
    " SELECT card_no, atc, pin_failures, presence, MAX(entry_id) FROM card_state_log"
    " WHERE entry_id > ? AND entry_id <= ? GROUP BY card_no"
    " ON CONFLICT (card_no) DO UPDATE SET atc = excluded.atc, pin_failures = excluded.pin_failures,"
    " presence = excluded.presence, entry_id = excluded.entry_id"
)
_NTH_ACCOUNT = "SELECT account FROM temp.fold_deltas WHERE account >= ? ORDER BY account LIMIT 1 OFFSET ?"
_LAST_ACCOUNT = "SELECT MAX(account) FROM temp.fold_deltas"
_ADD_BALANCES = (
    "UPDATE accounts SET balance_fen = balance_fen + d.delta FROM temp.fold_deltas AS d"
    " WHERE d.account = accounts.account_id AND d.account BETWEEN ? AND ? AND d.delta != 0"
)
_NTH_CARD = "SELECT card_no FROM temp.fold_cards WHERE card_no > ? ORDER BY card_no LIMIT 1 OFFSET ?"
_LAST_CARD = "SELECT MAX(card_no) FROM temp.fold_cards"
_PUT_CARD_STATES = (
    "INSERT INTO card_state (card_no, atc, pin_failures, presence)"
    " SELECT card_no, atc, pin_failures, presence FROM temp.fold_cards WHERE card_no > ? AND card_no <= ?"
    " ON CONFLICT (card_no) DO UPDATE SET atc = excluded.atc, pin_failures = excluded.pin_failures,"
    " presence = excluded.presence"
)
_DROP_LOG = "DELETE FROM card_state_log WHERE entry_id <= ?"


class FoldMoved(Exception):
    """The fold's position is not where this fold left it (a full checkpoint ran): it stops."""


class Folder:
    """Runs folds in the background while the store is open (see the module's docstring)."""

    def __init__(
        self,
        journal: Callable[[], JournalConnection],
        read: Reader,
        *,
        min_rows: int,
        step_rows: int = 256,
        budget_s: float = 0.001,
        duty: float = 0.1,
        duty_behind: float = 0.25,
    ) -> None:
        self._journal = journal
        self._read = read
        self.min_rows = min_rows
        self.step_rows = step_rows  # journal rows or keys per statement
        self.budget_s = budget_s  # a step runs statements until it has taken this long
        self.duty = duty  # the most of the journal's thread a fold takes (1: no rest)
        self.duty_behind = duty_behind  # the same, three thresholds behind or more
        self.share = FOLD_SHARE
        self.unfolded = 0  # journal rows not folded yet (transfers and card states)
        self.campus = 0  # accounts, about (the highest account id)
        self.folds = 0  # folds finished
        self.steps = 0  # transactions run by folds
        self._progress = asyncio.Event()  # set by a commit that leaves a fold's worth unfolded
        self._task: asyncio.Task[None] | None = None
        self._sized = False

    @property
    def threshold(self) -> int:
        return max(self.min_rows, int(self.share * self.campus))

    @property
    def running(self) -> bool:
        return self._task is not None and not self._task.done()

    # -- told by the store -------------------------------------------------------

    def committed(self, rows: int) -> None:
        """A group commit ended (committed or not), with `rows` journal rows to fold."""
        self.unfolded += rows
        if self.unfolded >= self.threshold:  # the task waits for nothing less
            self._progress.set()
        if self._task is None and (self.unfolded >= self.threshold or not self._sized):
            self._task = asyncio.get_running_loop().create_task(self._run(), name="journal-fold")

    async def stop(self) -> None:
        """Stops folding between two steps (each step is whole or not at all)."""
        task, self._task = self._task, None
        await cancelled(task)

    # -- the background task -----------------------------------------------------

    async def _run(self) -> None:
        try:
            await self._size()
            while True:
                if self.unfolded >= self.threshold:
                    try:
                        await self.fold()
                    except FoldMoved:
                        log.info("a fold stopped: the journal was folded under it")
                    except sqlite3.Error:
                        log.exception("a fold failed; the journal stays unfolded until the next one")
                        await asyncio.sleep(1.0)
                    await self._size()
                    continue
                self._progress.clear()
                await self._progress.wait()
        except asyncio.CancelledError:
            raise
        except Exception:  # a fold's fault must not take the hub down: commits do not need it
            log.exception("folding stopped")

    async def _size(self) -> None:
        rows = await self._read(_SIZES, ())
        campus, transfers, log_rows = (int(v) for v in rows[0])
        self.campus, self.unfolded, self._sized = campus, transfers + log_rows, True

    async def fold(self) -> None:
        """One whole fold of what the journal holds now (or the rest of one a crash interrupted)."""
        folded, fold_to, cursor, first_entry, last_entry = await self._step(_plan)
        await self._steps(partial(_stage_transfers, upto=fold_to, cursor=cursor), folded)
        await self._steps(partial(_stage_cards, upto=last_entry), first_entry)
        while True:  # balances, in account order, each step moving the cursor
            cursor, done = await self._step(
                partial(_add_balances, folded=folded, fold_to=fold_to, cursor=cursor)
            )
            if done:
                break
        await self._step(partial(_finish, expected=(folded, fold_to, cursor)))
        await self._steps(_put_card_states, "")
        await self._steps(partial(_drop_log, upto=last_entry), first_entry)
        await self._step(_clear)
        self.folds += 1

    async def _steps(self, work: Callable[[sqlite3.Connection, P, int], tuple[P, bool]], position: P) -> None:
        """Steps of `work` from `position` until it is done, each its own transaction."""
        done = False
        while not done:
            position, done = await self._step(partial(_budgeted, work=work, position=position))

    async def _step(self, body: Callable[[sqlite3.Connection, int, float], Any]) -> Any:
        """Runs `body(db, rows, budget_s)` in a transaction on the journal's thread (the loop serves
        calls meanwhile; a commit asked for now goes before the next step), then rests."""
        result, took = await self._journal().transaction(
            partial(_timed, body, self.step_rows, self.budget_s), off_loop=True
        )
        self.steps += 1
        duty = self.duty_behind if self.unfolded >= 3 * self.threshold else self.duty
        await asyncio.sleep(took * (1.0 - duty) / duty if 0 < duty < 1 else 0.0)
        return result


# -- inside a journal transaction (a step's: on the journal's thread) --------------------------------


def _timed(
    body: Callable[[sqlite3.Connection, int, float], Any], rows: int, budget_s: float, db: sqlite3.Connection
) -> tuple[Any, float]:
    started = time.perf_counter()
    result = body(db, rows, budget_s)
    return result, time.perf_counter() - started


def _budgeted(
    db: sqlite3.Connection,
    rows: int,
    budget_s: float,
    *,
    work: Callable[[sqlite3.Connection, P, int], tuple[P, bool]],
    position: P,
) -> tuple[P, bool]:
    """`work` from `position`, `rows` rows at a time (a statement or two), until done or `budget_s`
    is spent: (where it stopped, whether it is done)."""
    deadline = time.perf_counter() + budget_s
    while True:
        position, done = work(db, position, rows)
        if done or time.perf_counter() >= deadline:
            return position, done


def _positions(db: sqlite3.Connection) -> tuple[int, int, int]:
    folded, fold_to, cursor = db.execute(_POSITIONS).fetchone()
    return int(folded), int(fold_to), int(cursor)


def _plan(db: sqlite3.Connection, rows: int, budget_s: float) -> tuple[int, int, int, int, int]:
    """Where this fold goes: to the journal's end now, or on with the one a crash interrupted;
    empty staging tables."""
    folded, fold_to, cursor = _positions(db)
    if fold_to <= folded:
        fold_to = int(db.execute("SELECT COALESCE(MAX(transfer_id), 0) FROM transfers").fetchone()[0])
        cursor = 0
        db.execute(_SET_PROGRESS, (fold_to, cursor))
    first, last = db.execute(
        "SELECT COALESCE(MIN(entry_id), 1) - 1, COALESCE(MAX(entry_id), 0) FROM card_state_log"
    ).fetchone()
    for statement in _STAGING:
        db.execute(statement)
    return folded, fold_to, cursor, int(first), int(last)


def _stage_transfers(
    db: sqlite3.Connection, low: int, rows: int, *, upto: int, cursor: int
) -> tuple[int, bool]:
    high = min(low + rows, upto)
    db.execute(_STAGE_TRANSFERS, (low, high, cursor))
    return high, high >= upto


def _stage_cards(db: sqlite3.Connection, low: int, rows: int, *, upto: int) -> tuple[int, bool]:
    high = min(low + rows, upto)
    db.execute(_STAGE_CARDS, (low, high))
    return high, high >= upto


def _add_balances(
    db: sqlite3.Connection, rows: int, budget_s: float, *, folded: int, fold_to: int, cursor: int
) -> tuple[int, bool]:
    """Adds the staged deltas of the accounts from `cursor` on and moves the cursor past them."""
    if _positions(db) != (folded, fold_to, cursor):
        raise FoldMoved
    moved, done = _budgeted(db, rows, budget_s, work=_add_some_balances, position=cursor)
    db.execute(_SET_PROGRESS, (fold_to, moved))
    return moved, done


def _add_some_balances(db: sqlite3.Connection, cursor: int, rows: int) -> tuple[int, bool]:
    nth = db.execute(_NTH_ACCOUNT, (cursor, rows - 1)).fetchone()
    high = nth[0] if nth is not None else db.execute(_LAST_ACCOUNT).fetchone()[0]
    if high is None or high < cursor:
        return cursor, True
    db.execute(_ADD_BALANCES, (cursor, high))
    return int(high) + 1, nth is None


def _finish(
    db: sqlite3.Connection, rows: int, budget_s: float, *, expected: tuple[int, int, int]
) -> tuple[None, bool]:
    if _positions(db) != expected:
        raise FoldMoved
    db.execute(_SET_FOLDED, (expected[1],))
    db.execute(_SET_PROGRESS, (expected[1], 0))
    return None, True


def _put_card_states(db: sqlite3.Connection, after: str, rows: int) -> tuple[str, bool]:
    nth = db.execute(_NTH_CARD, (after, rows - 1)).fetchone()
    high = nth[0] if nth is not None else db.execute(_LAST_CARD).fetchone()[0]
    if high is None or high <= after:
        return after, True
    db.execute(_PUT_CARD_STATES, (after, high))
    return str(high), nth is None


def _drop_log(db: sqlite3.Connection, low: int, rows: int, *, upto: int) -> tuple[int, bool]:
    """Only after every card took its state from these entries (the view prefers the log)."""
    high = min(low + rows, upto)
    db.execute(_DROP_LOG, (high,))
    return high, high >= upto


def _clear(db: sqlite3.Connection, rows: int, budget_s: float) -> tuple[None, bool]:
    db.execute("DELETE FROM temp.fold_deltas")
    db.execute("DELETE FROM temp.fold_cards")
    return None, True
