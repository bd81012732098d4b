"""kill -9, then a restart days later: the card a call first names after the restart is built from
the store with what the killed hub acknowledged, counters and presence that only the unfolded
log holds included (campus_loader.py, store/campus_rows.py)."""

from __future__ import annotations

import asyncio
import os
import signal
import sqlite3
import subprocess
import sys
from pathlib import Path

from onecard.auth.v1 import authorization_service_pb2 as pb
from onecard_client.campus import CampusCredentials
from onecard_hub.domain.clock import ManualClock, parse_instant
from tests.helpers import Campus, name

FIRST_DAY = "2026-11-24T12:00:00+08:00"
DAYS_LATER = "2026-11-27T12:00:00+08:00"  # the first day's requests are out of the 48-hour window
BUY, ENTRY = pb.SCENE_CANTEEN_PURCHASE, pb.SCENE_GATE_ENTRY


def _start(db: Path, clock_start: str, log: Path) -> tuple[subprocess.Popen[str], str]:
    argv = [sys.executable, "-m", "onecard_hub.cli", "serve", "--db", str(db), "--listen", "127.0.0.1:0"]
    with log.open("w") as stderr:
        process = subprocess.Popen(
            [*argv, "--clock-start", clock_start], stdout=subprocess.PIPE, stderr=stderr, text=True
        )
    assert process.stdout is not None
    for line in process.stdout:
        if "listening on" in line:
            return process, line.split("listening on ")[1].split()[0]
    process.wait()
    raise RuntimeError(f"hub did not start:\n{log.read_text()}")


def test_a_card_first_used_after_a_kill_9_has_what_the_killed_hub_acknowledged(campus_dir: Path) -> None:
    db = campus_dir / "hub.db"
    creds = CampusCredentials.load(campus_dir / "hub.keys")

    async def first_day(target: str) -> tuple[str, int]:
        c = Campus(creds, ManualClock(parse_instant(FIRST_DAY)), target)
        card, pos = c.card(skip=7), c.pos()
        paid = await c.send(c.chip(card, pos, BUY, amount_fen=1_100, atc=5))
        assert paid.decision == pb.DECISION_APPROVED
        assert (await c.send(c.chip(card, c.gate(), ENTRY, atc=6))).decision == pb.DECISION_APPROVED
        await c.close()
        return card.card_no, paid.balance_fen

    process, target = _start(db, FIRST_DAY, campus_dir / "first.log")
    try:
        card_no, balance = asyncio.run(first_day(target))
    finally:
        os.kill(process.pid, signal.SIGKILL)  # no fold, no checkpoint: the counters are in the log only
        process.wait()
    with sqlite3.connect(db) as conn:
        logged = conn.execute("SELECT COUNT(*) FROM card_state_log WHERE card_no = ?", (card_no,)).fetchone()
    assert logged[0] >= 1

    async def days_later(target: str) -> None:
        c = Campus(creds, ManualClock(parse_instant(DAYS_LATER)), target)
        card = next(x for x in creds.cards if x.card_no == card_no)
        pos, gate = c.pos(), c.gate()
        assert name((await c.send(c.chip(card, gate, ENTRY, atc=6))).decline_reason) == "COUNTER_REPLAYED"
        assert name((await c.send(c.chip(card, gate, ENTRY, atc=7))).decline_reason) == "ANTI_PASSBACK"
        assert (await c.client(pos).wallet_balance(card_no)).balance_fen == balance
        assert (await c.send(c.chip(card, gate, pb.SCENE_GATE_EXIT, atc=8))).decision == pb.DECISION_APPROVED
        await c.close()

    log = campus_dir / "later.log"
    process, target = _start(db, DAYS_LATER, log)
    try:
        assert "0 cards in memory" in log.read_text()  # the card was not built at start
        asyncio.run(days_later(target))
    finally:
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=30) == 0
