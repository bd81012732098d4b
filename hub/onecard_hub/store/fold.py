"""Folding the journal into the state tables, off the commit path.

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
- adds up what is to be folded on the store's reading connection (its own thread; readers
  never wait for the writer in WAL mode), in steps of `stage_rows` journal rows, into a dict;
- writes in key order, in chunks of `chunk_rows` accounts or cards, each its own short
  transaction on the journal (a chunk writes a few dozen neighbouring pages, in about the
  time of a commit), and between group commits: at most one chunk per `pace_rows` rows the
  hub commits, or whenever the journal has had nothing to commit for `idle_s`. A tap's commit
  waits for at most one chunk, never for a fold.

Crash safety. Balances are sums, so each account must take each transfer exactly once. The
`fold_progress` table says how far: accounts below its `cursor` hold the transfers up to its
`fold_to`, the others up to the `transfers` checkpoint; the views add the rest. A chunk adds the deltas of its
accounts and moves the cursor past them in one transaction, after checking that the cursor is
where it left it; the last step sets `transfers` to `fold_to`. A kill at any instant leaves a
consistent position; the next fold resumes it (the unfolded transfers are added up again,
from `transfers` to `fold_to`, and only accounts from the cursor on are written). Card state
is a value, not a sum: a chunk writes each card's latest logged state at or before the fold's
last log entry, and only once every card is written are those log entries deleted; the view
prefers a card's logged state, which is never older than its folded one.

Start cost. `load` adds up the unfolded tail in SQL (the views): one fold threshold plus what
arrives while a fold runs, so up to about half a campus's worth of journal rows (balances: one
`transfers` row each; counters: one `card_state_log` row each); a fold keeps up with a commit
rate of `chunk_rows` / `pace_rows` times the rows it folds, and stops pacing itself at three
thresholds behind.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sqlite3
from collections.abc import Awaitable, Callable
from functools import partial
from typing import Any

from onecard_hub.stopping import cancelled
from onecard_hub.store.journal import JournalConnection

log = logging.getLogger(__name__)

FOLD_SHARE = 0.25  # a fold starts when the unfolded rows reach this share of the accounts

Reader = Callable[[str, tuple[Any, ...]], Awaitable[list[Any]]]

_POSITIONS = (
    "SELECT (SELECT position FROM checkpoints WHERE name = 'transfers'), fold_to, cursor FROM fold_progress"
)
_SET_FOLDED = "UPDATE checkpoints SET position = ? WHERE name = 'transfers'"
_SET_PROGRESS = "UPDATE fold_progress SET fold_to = ?, cursor = ?"
_ADD_BALANCE = "UPDATE accounts SET balance_fen = balance_fen + ? WHERE account_id = ?"
_PUT_CARD_STATE = (
    "INSERT INTO card_state (card_no, atc, pin_failures, presence) VALUES (?, ?, ?, ?)"
    " ON CONFLICT (card_no) DO UPDATE SET atc = excluded.atc, pin_failures = excluded.pin_failures,"
    " presence = excluded.presence"
)
_DROP_LOG = "DELETE FROM card_state_log WHERE entry_id <= ?"
_STAGE_TRANSFERS = (
    "SELECT account, SUM(delta) FROM ("
    " SELECT to_account AS account, amount_fen AS delta FROM transfers"
    " WHERE transfer_id > ? AND transfer_id <= ?"
    " UNION ALL"
    " SELECT from_account, -amount_fen FROM transfers WHERE transfer_id > ? AND transfer_id <= ?)"
    " GROUP BY account"
)
# SQLite's bare columns beside MAX(): the values of the row holding the maximum, each card's latest
_STAGE_CARDS = (
    "SELECT card_no, atc, pin_failures, presence, MAX(entry_id) FROM card_state_log"
    " WHERE entry_id > ? AND entry_id <= ? GROUP BY card_no"
)
_SIZES = (
    "SELECT COALESCE((SELECT MAX(account_id) FROM accounts), 0),"
    " COALESCE((SELECT MAX(transfer_id) FROM transfers), 0)"
    "   - (SELECT position FROM checkpoints WHERE name = 'transfers'),"
    " COALESCE((SELECT MAX(entry_id) - MIN(entry_id) + 1 FROM card_state_log), 0)"
)


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
        chunk_rows: int = 1_000,
        stage_rows: int = 5_000,
        pace_rows: int = 256,
        idle_s: float = 0.002,
    ) -> None:
        self._journal = journal
        self._read = read
        self.min_rows = min_rows
        self.chunk_rows = chunk_rows
        self.stage_rows = stage_rows
        self.pace_rows = pace_rows
        self.idle_s = idle_s
        self.share = FOLD_SHARE
        self.unfolded = 0  # journal rows not folded yet (transfers and card states)
        self.campus = 0  # accounts, about (the highest account id)
        self.folds = 0  # folds finished
        self.chunks = 0  # write transactions run by folds
        self._writing = False
        self._since_chunk = 0  # rows committed since the last chunk
        self._last_commit = 0.0
        self._progress = asyncio.Event()  # set by every commit
        self._task: asyncio.Task[None] | None = None
        self._sized = False

    @property
    def threshold(self) -> int:
        return max(self.min_rows, int(self.share * self.campus))

    @property
    def running(self) -> bool:
        return self._task is not None and not self._task.done()

    # -- told by the store -------------------------------------------------------

    def writing(self) -> None:
        """A group commit starts."""
        self._writing = True

    def committed(self, rows: int) -> None:
        """A group commit ended (committed or not), with `rows` journal rows to fold."""
        self._writing = False
        self.unfolded += rows
        self._since_chunk += rows
        self._last_commit = asyncio.get_running_loop().time()
        self._progress.set()
        if self._task is None and (self.unfolded >= self.threshold or not self._sized):
            self._task = asyncio.get_running_loop().create_task(self._run(), name="journal-fold")

    async def stop(self) -> None:
        """Stops folding between two chunks (each chunk is whole or not at all)."""
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
        folded, fold_to, cursor, last_entry = await self._journal().transaction(_plan)
        deltas = await self._stage_transfers(folded, fold_to)
        cards = await self._stage_cards(last_entry)
        # sorting a campus's worth of keys takes a while: on a thread, so the loop gets the GIL back
        # every few milliseconds instead of waiting for the whole sort
        accounts = await asyncio.to_thread(_accounts_in_order, deltas, cursor)
        for i in range(0, len(accounts), self.chunk_rows):
            part = accounts[i : i + self.chunk_rows]
            rows = [(deltas[a], a) for a in part]
            start, cursor = cursor, part[-1] + 1
            await self._chunk(_balances_body((folded, fold_to, start), rows, cursor))
        await self._chunk(_finish_body((folded, fold_to, cursor)))
        names = await asyncio.to_thread(sorted, cards)
        for i in range(0, len(names), self.chunk_rows):
            states = [(n, *cards[n]) for n in names[i : i + self.chunk_rows]]
            await self._chunk(partial(_put_card_states, states=states))
        first = await self._read("SELECT COALESCE(MIN(entry_id), 1) - 1 FROM card_state_log", ())
        for bound in range(int(first[0][0]) + self.stage_rows, last_entry + self.stage_rows, self.stage_rows):
            await self._chunk(partial(_drop_log, upto=min(bound, last_entry)))
        self.folds += 1

    async def _stage_transfers(self, folded: int, fold_to: int) -> dict[int, int]:
        deltas: dict[int, int] = {}
        for low in range(folded, fold_to, self.stage_rows):
            high = min(low + self.stage_rows, fold_to)
            for account, delta in await self._read(_STAGE_TRANSFERS, (low, high, low, high)):
                deltas[account] = deltas.get(account, 0) + delta
        return deltas

    async def _stage_cards(self, last_entry: int) -> dict[str, tuple[int, int, int]]:
        cards: dict[str, tuple[int, int, int]] = {}
        first = await self._read("SELECT COALESCE(MIN(entry_id), 1) - 1 FROM card_state_log", ())
        for low in range(int(first[0][0]), last_entry, self.stage_rows):
            high = min(low + self.stage_rows, last_entry)
            for card_no, atc, pin_failures, presence, _ in await self._read(_STAGE_CARDS, (low, high)):
                cards[card_no] = (atc, pin_failures, presence)  # later steps hold later entries
        return cards

    async def _chunk(self, body: Callable[[sqlite3.Connection], object]) -> None:
        await self._pace()
        self._since_chunk = 0
        await self._journal().transaction(body, off_loop=True)  # the loop serves calls meanwhile
        self.chunks += 1

    async def _pace(self) -> None:
        """Returns when a chunk may run: `pace_rows` rows were committed since the last one, the
        journal has been idle for `idle_s`, or the unfolded rows are three thresholds behind."""
        loop = asyncio.get_running_loop()
        while self._since_chunk < self.pace_rows and self.unfolded < 3 * self.threshold:
            quiet = loop.time() - self._last_commit
            if not self._writing and quiet >= self.idle_s:
                return
            self._progress.clear()
            # the next commit, or the end of the quiet time that makes the journal idle
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(
                    self._progress.wait(), self.idle_s - quiet if quiet < self.idle_s else None
                )


def _accounts_in_order(deltas: dict[int, int], cursor: int) -> list[int]:
    return sorted(a for a, d in deltas.items() if a >= cursor and d != 0)


# -- inside a journal transaction (a chunk's: on the journal's thread) -------------------------------


def _positions(db: sqlite3.Connection) -> tuple[int, int, int]:
    folded, fold_to, cursor = db.execute(_POSITIONS).fetchone()
    return int(folded), int(fold_to), int(cursor)


def _plan(db: sqlite3.Connection) -> tuple[int, int, int, int]:
    """Where this fold goes: to the journal's end now, or on with the one a crash interrupted."""
    folded, fold_to, cursor = _positions(db)
    if fold_to <= folded:
        fold_to = int(db.execute("SELECT COALESCE(MAX(transfer_id), 0) FROM transfers").fetchone()[0])
        cursor = 0
        db.execute(_SET_PROGRESS, (fold_to, cursor))
    last_entry = int(db.execute("SELECT COALESCE(MAX(entry_id), 0) FROM card_state_log").fetchone()[0])
    return folded, fold_to, cursor, last_entry


def _balances_body(
    expected: tuple[int, int, int], rows: list[tuple[int, int]], cursor: int
) -> Callable[[sqlite3.Connection], None]:
    def body(db: sqlite3.Connection) -> None:
        if _positions(db) != expected:
            raise FoldMoved
        db.executemany(_ADD_BALANCE, rows)
        db.execute(_SET_PROGRESS, (expected[1], cursor))

    return body


def _finish_body(expected: tuple[int, int, int]) -> Callable[[sqlite3.Connection], None]:
    def body(db: sqlite3.Connection) -> None:
        if _positions(db) != expected:
            raise FoldMoved
        db.execute(_SET_FOLDED, (expected[1],))
        db.execute(_SET_PROGRESS, (expected[1], 0))

    return body


def _put_card_states(db: sqlite3.Connection, *, states: list[tuple[str, int, int, int]]) -> None:
    db.executemany(_PUT_CARD_STATE, states)


def _drop_log(db: sqlite3.Connection, *, upto: int) -> None:
    """Only after every card took its state from these entries (the view prefers the log)."""
    db.execute(_DROP_LOG, (upto,))
