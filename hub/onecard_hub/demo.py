"""`make demo`: seed a small campus, start the hub, send a burst of taps, stop, summarize.

Runs the hub as its own process (as in production) on a simulated clock set to a
weekday lunch time, so the canteen is open whatever the real hour is. Everything goes
through the Python client, exactly as a vendor's terminal would.
"""

from __future__ import annotations

import asyncio
import random
import shutil
import signal
import sys
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path

from rich.console import Console
from rich.table import Table

from onecard.auth.v1 import authorization_service_pb2 as auth_pb
from onecard_client.campus import CampusCredentials, CardCredential, keys_dir_for
from onecard_client.client import AdminClient, ClientConfig, TerminalClient
from onecard_client.errors import OneCardError
from onecard_client.hub_time import HubTime
from onecard_client.taps import chip_tap, qr_scan
from onecard_hub.domain.clock import CST

DEMO_DIR = Path(".demo")
STUDENTS = 400
CALLS = 1_500
IN_FLIGHT = 32

console = Console()


@dataclass
class Holder:
    card: CardCredential
    atc: int
    inside: bool = False


@dataclass
class Tally:
    decisions: Counter[str] = field(default_factory=Counter)
    scenes: Counter[str] = field(default_factory=Counter)
    errors: Counter[str] = field(default_factory=Counter)
    latencies_ms: list[float] = field(default_factory=list)


def _lunch_today() -> str:
    now = datetime.now(CST)
    lunch = now.replace(hour=12, minute=5, second=0, microsecond=0)
    if lunch.weekday() >= 5:  # play a weekday
        lunch -= timedelta(days=lunch.weekday() - 4)
    return lunch.isoformat()


async def _start_hub(db: Path, clock_start: str) -> tuple[asyncio.subprocess.Process, str]:
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "onecard_hub.cli",
        "serve",
        "--db",
        str(db),
        "--listen",
        "127.0.0.1:0",
        "--clock-start",
        clock_start,
        "--log-level",
        "WARNING",
        stdout=asyncio.subprocess.PIPE,
    )
    assert process.stdout is not None
    while True:
        line = (await asyncio.wait_for(process.stdout.readline(), timeout=60)).decode()
        if not line:
            raise RuntimeError("the hub exited before listening")
        if "listening on" in line:
            return process, line.split("listening on ")[1].split()[0]


async def _burst(target: str, campus: CampusCredentials, tally: Tally, rng: random.Random) -> float:
    config = ClientConfig(target=target)
    clients = {t.terminal_id: TerminalClient(t.terminal_id, config) for t in campus.terminals}
    hub_time: HubTime = await next(iter(clients.values())).hub_time()
    holders = {school: [Holder(c, c.atc) for c in campus.cards_of(school)] for school in campus.schools}
    gates = {s: campus.terminals_of(s, "gate") for s in campus.schools}
    tills = {s: campus.terminals_of(s, "canteen_pos") for s in campus.schools}
    busy: set[str] = set()

    def next_request() -> tuple[str, auth_pb.AuthorizeRequest]:
        school = rng.choice(campus.schools)
        holder = rng.choice(holders[school])
        while holder.card.card_no in busy:  # one tap per card at a time, like a real card
            holder = rng.choice(holders[school])
        canteen = rng.random() < 0.6
        if canteen:
            terminal = rng.choice(tills[school]).terminal_id
            scene, amount = auth_pb.SCENE_CANTEEN_PURCHASE, rng.choice((600, 800, 1200, 1500, 2200))
            pin = ""
            if rng.random() < 0.04:  # a big order above the PIN-free limit; now and then a wrong PIN
                amount = 6_800
                pin = holder.card.pin if rng.random() < 0.8 else "000000"
        else:
            terminal = rng.choice(gates[school]).terminal_id
            scene = auth_pb.SCENE_GATE_EXIT if holder.inside else auth_pb.SCENE_GATE_ENTRY
            amount, pin = 0, ""
        if rng.random() < 0.05:  # a mistake: the other school's gate or till
            other = [s for s in campus.schools if s != school]
            if other:
                pool = tills[other[0]] if canteen else gates[other[0]]
                terminal = rng.choice(pool).terminal_id
        now = hub_time.now_ms()
        rid = uuid.uuid4().hex
        if rng.random() < 0.5:
            replay = rng.random() < 0.02  # a cloned card replays an old counter
            if not replay:
                holder.atc += 1
            request = chip_tap(
                holder.card,
                request_id=rid,
                terminal_id=terminal,
                scene=scene,
                atc=max(holder.atc, 1),
                tap_time_ms=now,
                amount_fen=amount,
                pin=pin,
            )
        else:
            request = qr_scan(
                campus,
                holder.card,
                request_id=rid,
                terminal_id=terminal,
                scene=scene,
                issued_ms=now,
                tap_time_ms=now,
                amount_fen=amount,
                pin=pin,
            )
        busy.add(holder.card.card_no)
        return holder.card.card_no, request

    by_card = {h.card.card_no: h for hs in holders.values() for h in hs}

    async def one(card_no: str, request: auth_pb.AuthorizeRequest) -> None:
        started = time.perf_counter()
        try:
            response = await clients[request.terminal_id].authorize(request)
        except OneCardError as exc:
            tally.errors[f"{exc.code.name} {exc.reason}"] += 1
            return
        finally:
            busy.discard(card_no)
        tally.latencies_ms.append((time.perf_counter() - started) * 1000)
        tally.scenes[auth_pb.Scene.Name(request.scene).removeprefix("SCENE_").lower()] += 1
        if response.decision == auth_pb.DECISION_APPROVED:
            tally.decisions["APPROVED"] += 1
            if request.scene != auth_pb.SCENE_CANTEEN_PURCHASE:
                by_card[card_no].inside = request.scene == auth_pb.SCENE_GATE_ENTRY
        else:
            tally.decisions[
                auth_pb.DeclineReason.Name(response.decline_reason).removeprefix("DECLINE_REASON_")
            ] += 1

    started = time.perf_counter()
    pending: set[asyncio.Task[None]] = set()
    for _ in range(CALLS):
        if len(pending) >= IN_FLIGHT:
            _, pending = await asyncio.wait(pending, return_when=asyncio.FIRST_COMPLETED)
        card_no, request = next_request()
        pending.add(asyncio.create_task(one(card_no, request)))
    if pending:
        await asyncio.wait(pending)
    elapsed = time.perf_counter() - started
    for client in clients.values():
        await client.close()
    return elapsed


def _percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))] if ordered else 0.0


def _fresh_folder() -> Path:
    shutil.rmtree(DEMO_DIR, ignore_errors=True)
    DEMO_DIR.mkdir()
    return DEMO_DIR / "hub.db"


async def run() -> int:
    db = _fresh_folder()
    from onecard_hub.seed import SeedOptions, seed_campus

    console.print(f"[bold]1. seeding[/] {STUDENTS} students in 2 schools into {db}")
    report = await seed_campus(
        db, keys_dir_for(db), SeedOptions(schools=2, students=STUDENTS), progress=False
    )
    console.print(f"   {report.cards} cards ({report.minors} minors), {report.terminals} terminals")
    clock_start = _lunch_today()
    console.print(f"[bold]2. starting the hub[/] on a simulated clock from {clock_start}")
    process, target = await _start_hub(db, clock_start)
    tally = Tally()
    try:
        campus = CampusCredentials.load(keys_dir_for(db))
        console.print(
            f"[bold]3. burst[/] of {CALLS} gate taps and canteen payments, {IN_FLIGHT} in flight, at {target}"
        )
        elapsed = await _burst(target, campus, tally, random.Random(7))
        async with AdminClient("province-admin", ClientConfig(target=target)) as admin:
            ledger = await admin.ledger_summary()
    finally:
        process.send_signal(signal.SIGTERM)
        code = await asyncio.wait_for(process.wait(), timeout=30)
    console.print(f"[bold]4. hub stopped[/] (exit code {code})")

    table = Table(title="OneCard Hub demo")
    table.add_column("what")
    table.add_column("count", justify="right")
    for name, count in tally.decisions.most_common():
        table.add_row(name, str(count))
    for name, count in tally.errors.most_common():
        table.add_row(f"error {name}", str(count))
    console.print(table)
    answered = sum(tally.decisions.values())
    console.print(
        f"scenes: {dict(tally.scenes)}\n"
        f"calls answered: {answered} in {elapsed:.2f} s = {answered / elapsed:,.0f} calls/s; "
        f"latency p50 {_percentile(tally.latencies_ms, 0.5):.1f} ms, "
        f"p99 {_percentile(tally.latencies_ms, 0.99):.1f} ms\n"
        f"ledger: sum over {sum(t.accounts for t in ledger.totals)} accounts = {ledger.sum_fen} fen "
        f"({'conserved' if ledger.sum_fen == 0 else 'NOT CONSERVED'}), {ledger.transfer_count} transfers"
    )
    ok = code == 0 and ledger.sum_fen == 0 and answered > 0 and not tally.errors
    console.print("[green]demo ok[/]" if ok else "[red]demo found a problem[/]")
    return 0 if ok else 1


def main() -> int:
    return asyncio.run(run())


if __name__ == "__main__":
    sys.exit(main())
