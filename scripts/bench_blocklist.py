"""The live blocklist benchmark: `make bench-blocklist`.

How long a loss report takes to reach subscribed terminals (issue 4): the delay from the moment a
card office sends `CardOfficeService.ReportLoss` to the moment each terminal's
`TerminalService.WatchBlocklist` stream hands it the change.

1. seeds one school with 200 terminals (100 gates, 100 canteen POS) into a temporary folder;
2. runs the hub as its own process (`onecard-hub serve`, pinned to CPU 0 when `taskset` exists);
3. in this process (grpc.aio on uvloop, pinned to CPU 1), opens 200 terminal clients — a channel
   each, as 200 devices would — subscribes each with version 0 and waits for every snapshot;
4. reports `--losses` cards lost, one after the other (the next once every terminal saw the last),
   and records, per terminal and loss, the delay from sending the report to receiving the change;
5. prints p50, p99 and max over all of them; the last line is

     bench_blocklist: subscribers=200 p50_ms=<ms> p99_ms=<ms> max_ms=<ms>

The delay includes the report's own path (the RPC, the decision, the group commit and its fsync),
since a change reaches terminals only once it is durable.

    .venv/bin/python scripts/bench_blocklist.py                  # 200 terminals, 50 losses
    .venv/bin/python scripts/bench_blocklist.py --subscribers 50 --losses 10
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import itertools
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import uvloop

from onecard.terminal.v1 import terminal_service_pb2 as term_pb
from onecard_client import CardOfficeClient, ClientConfig, TerminalClient
from onecard_client.campus import CampusCredentials

HUB_CPU, CLIENT_CPU = 0, 1
ADMIN = "province-admin"
WAIT_S = 30.0


def say(message: str = "") -> None:
    print(message, flush=True)


def _onecard_hub() -> str:
    script = Path(sys.executable).parent / "onecard-hub"
    if script.exists():
        return str(script)
    found = shutil.which("onecard-hub")
    if found is None:
        raise SystemExit("onecard-hub is not installed (run `make venv`)")
    return found


def _pinned(argv: list[str], cpu: int) -> list[str]:
    cpus = os.sched_getaffinity(0) if hasattr(os, "sched_getaffinity") else set()
    if shutil.which("taskset") and {HUB_CPU, CLIENT_CPU} <= cpus:
        return ["taskset", "-c", str(cpu), *argv]
    return argv


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def seed(folder: Path, terminals: int) -> Path:
    db = folder / "hub.db"
    gates = terminals // 2
    argv = [
        _onecard_hub(), "seed", "--db", str(db), "--schools", "1", "--students", "2000",
        "--gates-per-school", str(gates), "--pos-per-school", str(terminals - gates), "--quiet",
    ]  # fmt: skip
    subprocess.run(argv, check=True, stdout=subprocess.DEVNULL)
    return db


def start_hub(db: Path, port: int, log: Path) -> subprocess.Popen[bytes]:
    argv = _pinned([_onecard_hub(), "serve", "--db", str(db), "--listen", f"127.0.0.1:{port}"], HUB_CPU)
    with log.open("wb") as out:
        proc = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + WAIT_S
    while time.monotonic() < deadline:
        if "listening" in log.read_text(encoding="utf-8", errors="replace"):
            return proc
        if proc.poll() is not None:
            break
        time.sleep(0.05)
    proc.kill()
    raise SystemExit(f"the hub did not start:\n{log.read_text(errors='replace')[-2000:]}")


class Subscriber:
    """One terminal's stream; records when each awaited card arrives."""

    def __init__(self, client: TerminalClient) -> None:
        self.client = client
        self.ready = asyncio.Event()
        self.arrived: dict[str, float] = {}
        self.waiting: dict[str, asyncio.Event] = {}
        self.task = asyncio.create_task(self._run())

    async def _run(self) -> None:
        async for message in self.client.watch_blocklist(0):
            now = time.perf_counter()
            self.ready.set()
            for change in message.changes:
                if change.kind == term_pb.BLOCKLIST_CHANGE_KIND_ADDED:
                    self.arrived[change.card_no] = now
                    event = self.waiting.get(change.card_no)
                    if event is not None:
                        event.set()

    def expect(self, card_no: str) -> asyncio.Event:
        event = self.waiting[card_no] = asyncio.Event()
        if card_no in self.arrived:
            event.set()
        return event


async def run(target: str, creds: CampusCredentials, subscribers: int, losses: int) -> list[float]:
    school_id = creds.schools[0]
    infos = [t for t in creds.terminals if t.school_id == school_id][:subscribers]
    if len(infos) < subscribers:
        raise SystemExit(f"the seeded school has {len(infos)} terminals, fewer than {subscribers}")
    cards = [c.card_no for c in creds.cards_of(school_id) if c.status == "active"][:losses]
    config = ClientConfig(target=target, deadline_s=10.0)
    clients = [TerminalClient(info.terminal_id, config) for info in infos]
    subs = [Subscriber(client) for client in clients]
    await asyncio.wait_for(asyncio.gather(*(s.ready.wait() for s in subs)), WAIT_S)
    say(f"{len(subs)} terminals subscribed; reporting {len(cards)} losses")
    delays: list[float] = []
    ids = itertools.count(1)
    async with CardOfficeClient(ADMIN, config) as office:
        for card_no in cards:
            events = [s.expect(card_no) for s in subs]
            sent = time.perf_counter()
            await office.report_loss(f"bench-blocklist-{os.getpid()}-{next(ids)}", card_no)
            await asyncio.wait_for(asyncio.gather(*(e.wait() for e in events)), WAIT_S)
            delays.extend((s.arrived[card_no] - sent) * 1000 for s in subs)
    for s in subs:
        s.task.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await s.task
    for client in clients:
        await client.close()
    return delays


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--subscribers", type=int, default=200)
    parser.add_argument("--losses", type=int, default=50)
    parser.add_argument("--keep", action="store_true", help="keep the temporary folder (hub.log)")
    args = parser.parse_args(argv)
    folder = Path(tempfile.mkdtemp(prefix="bench-blocklist-"))
    hub: subprocess.Popen[bytes] | None = None
    try:
        say(f"seeding one school with {args.subscribers} terminals in {folder}")
        db = seed(folder, args.subscribers)
        port = _free_port()
        hub = start_hub(db, port, folder / "hub.log")
        if hasattr(os, "sched_setaffinity") and shutil.which("taskset"):
            with contextlib.suppress(OSError):
                os.sched_setaffinity(0, {CLIENT_CPU})
        creds = CampusCredentials.load(folder / "hub.keys")
        delays = uvloop.run(run(f"127.0.0.1:{port}", creds, args.subscribers, args.losses))
    finally:
        if hub is not None:
            hub.terminate()
            with contextlib.suppress(subprocess.TimeoutExpired):
                hub.wait(10)
            if hub.poll() is None:
                hub.kill()
        if args.keep:
            say(f"kept {folder}")
        else:
            shutil.rmtree(folder, ignore_errors=True)
    p50, p99, worst = percentile(delays, 0.5), percentile(delays, 0.99), max(delays)
    say(f"{len(delays)} deliveries: mean {statistics.fmean(delays):.2f} ms")
    figures = f"p50_ms={p50:.2f} p99_ms={p99:.2f} max_ms={worst:.2f}"
    say(f"bench_blocklist: subscribers={args.subscribers} {figures}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
