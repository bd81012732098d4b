"""kill -9 while clients are paying: no acknowledged debit lost, none applied twice, ledger at zero.

The hub runs as its own process on a real SQLite file; it is killed with SIGKILL several
times mid-load and restarted. Calls that got no answer are retried with the same
request_id after the restart, as a terminal does.
"""

from __future__ import annotations

import asyncio
import os
import random
import signal
import sqlite3
import subprocess
import sys
import uuid
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from onecard.auth.v1 import authorization_service_pb2 as pb
from onecard_client.campus import CampusCredentials, CardCredential
from onecard_client.client import ClientConfig, RetryConfig, TerminalClient
from onecard_client.errors import OneCardError
from onecard_client.taps import chip_tap, qr_scan
from onecard_hub.seed import SeedOptions, seed_campus

pytestmark = pytest.mark.slow

KILLS = 3
LOAD_SECONDS = 1.5
WORKERS = 16


@dataclass
class Ledgerbook:
    acknowledged: dict[tuple[str, str], int] = field(default_factory=dict)  # (terminal, request_id) → fen
    unanswered: list[pb.AuthorizeRequest] = field(default_factory=list)
    declines: Counter[str] = field(default_factory=Counter)


def _start(db: Path) -> tuple[subprocess.Popen[str], str]:
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "onecard_hub.cli",
            "serve",
            "--db",
            str(db),
            "--listen",
            "127.0.0.1:0",
            "--clock-start",
            "2026-11-24T12:00:00+08:00",
            "--log-level",
            "WARNING",
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert process.stdout is not None
    for line in process.stdout:
        if "listening on" in line:
            return process, line.split("listening on ")[1].split()[0]
    raise RuntimeError("hub did not start")


async def _pay(
    target: str,
    campus: CampusCredentials,
    cards: list[CardCredential],
    atc: dict[str, int],
    book: Ledgerbook,
    seconds: float,
    rng: random.Random,
) -> None:
    config = ClientConfig(target=target, deadline_s=1.0, retry=RetryConfig(attempts=1))
    tills = [t for t in campus.terminals if t.kind == "canteen_pos"]
    clients = {t.terminal_id: TerminalClient(t.terminal_id, config) for t in tills}
    now = await next(iter(clients.values())).hub_time()
    loop = asyncio.get_running_loop()
    stop_at = loop.time() + seconds

    async def worker(mine: list[CardCredential]) -> None:
        while loop.time() < stop_at:
            card = rng.choice(mine)
            till = rng.choice([t for t in tills if t.school_id == card.school_id])
            amount = rng.randint(100, 400)
            rid = uuid.uuid4().hex
            if rng.random() < 0.5:
                atc[card.card_no] += 1
                request = chip_tap(
                    card,
                    request_id=rid,
                    terminal_id=till.terminal_id,
                    scene=pb.SCENE_CANTEEN_PURCHASE,
                    atc=atc[card.card_no],
                    tap_time_ms=now.now_ms(),
                    amount_fen=amount,
                )
            else:
                request = qr_scan(
                    campus,
                    card,
                    request_id=rid,
                    terminal_id=till.terminal_id,
                    scene=pb.SCENE_CANTEEN_PURCHASE,
                    issued_ms=now.now_ms(),
                    tap_time_ms=now.now_ms(),
                    amount_fen=amount,
                )
            if not await _send(clients[till.terminal_id], request, book):
                await asyncio.sleep(0.05)  # the hub is gone: back off like a terminal

    await asyncio.gather(*(worker(cards[i::WORKERS]) for i in range(WORKERS)))
    for client in clients.values():
        await client.close()


async def _send(client: TerminalClient, request: pb.AuthorizeRequest, book: Ledgerbook) -> bool:
    try:
        answer = await client.authorize(request)
    except OneCardError:
        book.unanswered.append(request)
        return False
    if answer.decision == pb.DECISION_APPROVED:
        book.acknowledged[(request.terminal_id, request.request_id)] = request.amount_fen
    else:
        book.declines[pb.DeclineReason.Name(answer.decline_reason)] += 1
    return True


async def _retry_unanswered(target: str, book: Ledgerbook) -> None:
    pending, book.unanswered = book.unanswered, []
    config = ClientConfig(target=target, deadline_s=5.0)
    clients: dict[str, TerminalClient] = {}
    for request in pending:
        client = clients.setdefault(request.terminal_id, TerminalClient(request.terminal_id, config))
        assert await _send(client, request, book), "a retry after restart must be answered"
    for client in clients.values():
        await client.close()


def test_kill_9_mid_load_loses_and_duplicates_nothing(tmp_path: Path) -> None:
    db = tmp_path / "hub.db"
    options = SeedOptions(
        schools=2,
        students=200,
        anomalies=0.0,
        meal_count_limit=100_000,
        daily_limit_fen=100_000_000,
        initial_balance_fen=10_000_000,
        seed=3,
    )
    asyncio.run(seed_campus(db, tmp_path / "hub.keys", options, progress=False))
    campus = CampusCredentials.load(tmp_path / "hub.keys")
    atc = {c.card_no: c.atc for c in campus.cards}
    with sqlite3.connect(db) as conn:
        initial = dict(
            conn.execute("SELECT account_id, balance_fen FROM accounts WHERE kind = 'wallet'").fetchall()
        )
    book = Ledgerbook()
    rng = random.Random(5)
    for _ in range(KILLS):
        process, target = _start(db)
        try:
            asyncio.run(_retry_unanswered(target, book))

            async def load_then_kill(process: subprocess.Popen[str], target: str) -> None:
                task = asyncio.create_task(
                    _pay(target, campus, campus.cards, atc, book, LOAD_SECONDS + 1, rng)
                )
                await asyncio.sleep(LOAD_SECONDS)
                os.kill(process.pid, signal.SIGKILL)  # mid-load, no warning
                await task

            asyncio.run(load_then_kill(process, target))
        finally:
            process.kill()
            process.wait()
    process, target = _start(db)
    try:
        asyncio.run(_retry_unanswered(target, book))
    finally:
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=30) == 0

    assert len(book.acknowledged) > 200, "the load should have made many approvals"
    with sqlite3.connect(db) as conn:
        purchases = Counter(
            conn.execute("SELECT caller, request_id FROM transfers WHERE kind = 'purchase'").fetchall()
        )
        journal = Counter(conn.execute("SELECT caller, request_id FROM requests").fetchall())
        for key in book.acknowledged:
            assert purchases[key] == 1, f"acknowledged approval {key} is not booked exactly once"
        assert all(n == 1 for n in purchases.values()), "a purchase was booked twice"
        assert all(n == 1 for n in journal.values()), "a request was journaled twice"
        total = conn.execute("SELECT SUM(balance_fen) FROM accounts").fetchone()[0]
        assert total == 0
        debited = dict(
            conn.execute(
                "SELECT from_account, SUM(amount_fen) FROM transfers"
                " WHERE kind = 'purchase' GROUP BY from_account"
            ).fetchall()
        )
        balances = dict(
            conn.execute("SELECT account_id, balance_fen FROM accounts WHERE kind = 'wallet'").fetchall()
        )
        for account, start in initial.items():
            assert balances[account] == start - debited.get(account, 0)
