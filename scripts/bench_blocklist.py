"""The live blocklist benchmark: `make bench-blocklist`.

How long a loss report takes to reach subscribed terminals: the delay from the moment a card
office sends `CardOfficeService.ReportLoss` to the moment each terminal's
`TerminalService.WatchBlocklist` stream hands it the change.

1. seeds the schools (`--subscribers` terminals, half gates, half canteen POS, at most
   `--per-school` (2,000, the hub's bound) in each school) into a temporary folder;
2. runs the hub as its own process (`onecard-hub serve`, pinned to CPU 0 when `taskset` exists);
3. in this process (grpc.aio on uvloop, pinned to CPU 1), subscribes every terminal with version 0
   over `--per-channel` (500) streams per channel — each channel its own HTTP/2 connection, under the
   hub's 1,000 streams per connection — and waits for every snapshot;
4. `--losses` rounds: each reports one card lost in every school at once (a loss reaches only its
   own school's terminals, so a round is what makes every subscriber receive a change), the next
   round once every terminal saw the last; records, per terminal and round, the delay from sending
   its school's report to receiving the change;
5. prints p50, p99 and max over all of them, the CPU the hub and this process used over the rounds
   (so a reader can tell which side limited the run) and how busy each CPU was, every process
   counted (a CPU near 100% busy with little of it ours: others' processes set the pace); this
   process's automatic garbage collections are off during the rounds (it only measures). The last
   line is

     bench_blocklist: subscribers=20000 p50_ms=<ms> p99_ms=<ms> max_ms=<ms> hub_cpu_us=<µs> client_cpu_us=<µs>

   where `*_cpu_us` are CPU microseconds per delivery (a terminal receiving a change).

The delay includes the report's own path (the RPC, the decision, the group commit and its fsync),
since a change reaches terminals only once it is durable. With 20,000 subscribers both processes
are busy: a CPU share near 100% on one side says that side set the figures. The default run takes
about 40 seconds.

    .venv/bin/python scripts/bench_blocklist.py            # 20,000 terminals in 10 schools, 20 rounds
    .venv/bin/python scripts/bench_blocklist.py --subscribers 200 --losses 50    # one school
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import itertools
import math
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import grpc
import uvloop

from onecard.terminal.v1 import terminal_service_pb2 as term_pb
from onecard.terminal.v1 import terminal_service_pb2_grpc as term_grpc
from onecard_client import CardOfficeClient, ClientConfig
from onecard_client.campus import CampusCredentials
from onecard_hub.blocklist_feed import MAX_PER_CONNECTION, MAX_PER_SCHOOL

HUB_CPU, CLIENT_CPU = 0, 1
ADMIN = "province-admin"
TERMINAL_HEADER = "onecard-terminal-id"
WAIT_S = 30.0  # a round, at most
SUBSCRIBE_WAIT_S = 300.0  # every snapshot, at most
OPENING_AT_ONCE = 500
ADDED = term_pb.BLOCKLIST_CHANGE_KIND_ADDED
KINDS = ("gate", "canteen_pos")  # the terminals subscribed


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


def seed(folder: Path, schools: int, per_school: int, losses: int) -> Path:
    """`schools` schools of `per_school` gates and POS, and at least `losses` cards in each."""
    db = folder / "hub.db"
    gates = per_school // 2
    students = max(2000, 2 * losses * schools)
    argv = [
        _onecard_hub(), "seed", "--db", str(db), "--schools", str(schools), "--students", str(students),
        "--gates-per-school", str(gates), "--pos-per-school", str(per_school - gates), "--quiet",
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


def cpu_seconds(pid: int) -> float:
    """User + system CPU of a process, from /proc (0.0 where there is none)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def cpus_busy() -> dict[int, float]:
    """Seconds each CPU spent busy (every process), from /proc/stat (empty where there is none)."""
    busy: dict[int, float] = {}
    with contextlib.suppress(OSError):
        for line in Path("/proc/stat").read_text().splitlines():
            name, *ticks = line.split()
            if name.startswith("cpu") and name != "cpu":
                user, nice, system, _idle, _iowait, irq, softirq, steal = (int(t) for t in ticks[:8])
                busy[int(name[3:])] = (user + nice + system + irq + softirq + steal) / os.sysconf(
                    "SC_CLK_TCK"
                )
    return busy


@dataclass
class Usage:
    """CPU seconds over a stretch of wall time: the hub's, this process's, each CPU's (everyone's)."""

    wall_s: float
    hub_s: float
    client_s: float
    cpus_s: dict[int, float]

    @staticmethod
    def now(hub_pid: int) -> Usage:
        return Usage(time.perf_counter(), cpu_seconds(hub_pid), time.process_time(), cpus_busy())

    def since(self, start: Usage) -> Usage:
        cpus = {cpu: busy - start.cpus_s.get(cpu, busy) for cpu, busy in self.cpus_s.items()}
        return Usage(
            self.wall_s - start.wall_s, self.hub_s - start.hub_s, self.client_s - start.client_s, cpus
        )


@dataclass
class Round:
    """The cards reported lost in one round: card → when its report was sent; deliveries left."""

    sent: dict[str, float] = field(default_factory=dict)
    left: int = 0
    done: asyncio.Event = field(default_factory=asyncio.Event)


class Subscribers:
    """Every terminal's stream, read in this process; records each awaited card's arrival."""

    def __init__(self) -> None:
        self.ready = 0
        self.all_ready = asyncio.Event()
        self.expected = 0
        self.round = Round()
        self.delays: list[float] = []
        self.tasks: list[asyncio.Task[None]] = []
        self.failed: list[BaseException] = []
        # Subscriptions waiting for their snapshot, at most: gRPC's server starts cancelling calls at
        # random once more than 1,000 wait to be taken up (grpc.server.max_pending_requests).
        self.opening = asyncio.Semaphore(OPENING_AT_ONCE)

    def watch(self, stub: term_grpc.TerminalServiceAsyncStub, terminal_id: str) -> None:
        self.expected += 1
        self.tasks.append(asyncio.create_task(self._run(stub, terminal_id)))

    async def _run(self, stub: term_grpc.TerminalServiceAsyncStub, terminal_id: str) -> None:
        request = term_pb.WatchBlocklistRequest(terminal_id=terminal_id, since_version=0)
        await self.opening.acquire()
        call = stub.WatchBlocklist(request, metadata=((TERMINAL_HEADER, terminal_id),))
        first = True
        try:
            while (message := await call.read()) is not grpc.aio.EOF:
                if first:
                    first = False
                    self.opening.release()
                    self.ready += 1
                    if self.ready == self.expected:
                        self.all_ready.set()
                    continue
                assert isinstance(message, term_pb.WatchBlocklistResponse)
                now = time.perf_counter()
                current = self.round
                for change in message.changes:
                    sent = current.sent.get(change.card_no) if change.kind == ADDED else None
                    if sent is not None:
                        self.delays.append((now - sent) * 1000)
                        current.left -= 1
                        if current.left == 0:
                            current.done.set()
        except grpc.aio.AioRpcError as exc:
            if first or exc.code() != grpc.StatusCode.CANCELLED:  # not cancelled by this process
                self.failed.append(exc)
                self.all_ready.set()
                self.round.done.set()


def _channels(target: str, count: int) -> list[grpc.aio.Channel]:
    """`count` channels, each its own connection (a local subchannel pool: plain-text channels to one
    target otherwise share one connection)."""
    options = [("grpc.use_local_subchannel_pool", 1), ("grpc.keepalive_permit_without_calls", 0)]
    return [grpc.aio.insecure_channel(target, options=options) for _ in range(count)]


@dataclass
class Result:
    delays: list[float]  # ms, per terminal and round
    answered: list[float]  # ms, per round: until every report of the round was answered
    usage: Usage  # over the rounds
    rounds: int


async def run(
    target: str,
    creds: CampusCredentials,
    schools: int,
    per_school: int,
    per_channel: int,
    losses: int,
    hub_pid: int,
) -> Result:
    subscribed = [
        t
        for school_id in creds.schools[:schools]
        for t in [t for t in creds.terminals if t.school_id == school_id and t.kind in KINDS][:per_school]
    ]
    cards = {
        school_id: [c.card_no for c in creds.cards_of(school_id) if c.status == "active"][: losses + 1]
        for school_id in creds.schools[:schools]
    }  # a round's card in each school, and one more in the first for the warm-up
    rounds = min(len(c) for c in cards.values()) - 1
    channels = _channels(target, math.ceil(len(subscribed) / per_channel))
    stubs: list[term_grpc.TerminalServiceAsyncStub] = [
        term_grpc.TerminalServiceStub(channel) for channel in channels
    ]
    subs = Subscribers()
    started = time.perf_counter()
    for i, info in enumerate(subscribed):
        subs.watch(stubs[i // per_channel], info.terminal_id)
    deadline = started + SUBSCRIBE_WAIT_S
    while not subs.all_ready.is_set():
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(subs.all_ready.wait(), 5.0)
        if time.perf_counter() > deadline:
            raise SystemExit(f"only {subs.ready} of {subs.expected} subscribed in {SUBSCRIBE_WAIT_S:.0f} s")
        if not subs.all_ready.is_set():
            say(f"  {subs.ready} of {subs.expected} subscribed (hub CPU {cpu_seconds(hub_pid):.1f} s)")
    if subs.failed:
        raise SystemExit(f"a subscription failed: {subs.failed[0]}")
    say(
        f"{subs.ready} terminals of {schools} school(s) subscribed over {len(channels)} connection(s)"
        f" in {time.perf_counter() - started:.1f} s; reporting {rounds} round(s) of {schools} loss(es)"
    )
    by_school: dict[str, int] = {}
    for info in subscribed:
        by_school[info.school_id] = by_school.get(info.school_id, 0) + 1
    ids = itertools.count(1)
    config = ClientConfig(target=target, deadline_s=10.0)
    gc.collect()
    gc.freeze()  # the streams' objects live to the end: no collection walks them
    gc.disable()  # nor do collections walk the reads in flight: this process only measures
    async with CardOfficeClient(ADMIN, config) as office:
        await office.report_loss(f"bench-blocklist-{os.getpid()}-warm", cards[creds.schools[0]][rounds])
        answered: list[float] = []
        start = Usage.now(hub_pid)
        for r in range(rounds):
            current = subs.round = Round(left=sum(by_school.values()))
            reports = []
            for school_id in by_school:
                card_no = cards[school_id][r]
                current.sent[card_no] = time.perf_counter()
                reports.append(office.report_loss(f"bench-blocklist-{os.getpid()}-{next(ids)}", card_no))
            await asyncio.gather(*reports)
            answered.append((time.perf_counter() - min(current.sent.values())) * 1000)
            await asyncio.wait_for(current.done.wait(), WAIT_S)
            if subs.failed:
                raise SystemExit(f"a stream failed: {subs.failed[0]}")
        usage = Usage.now(hub_pid).since(start)
    gc.enable()
    for task in subs.tasks:
        task.cancel()
    await asyncio.gather(*subs.tasks, return_exceptions=True)
    for channel in channels:
        await channel.close()
    return Result(subs.delays, answered, usage, rounds)


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--subscribers", type=int, default=20_000, help="terminals subscribed (default 20000)"
    )
    parser.add_argument(
        "--losses", type=int, default=20, help="rounds, each one loss per school (default 20)"
    )
    parser.add_argument(
        "--per-school",
        type=int,
        default=MAX_PER_SCHOOL,
        help=f"terminals per school (default {MAX_PER_SCHOOL})",
    )
    parser.add_argument(
        "--per-channel",
        type=int,
        default=MAX_PER_CONNECTION // 2,
        help=f"streams per channel / connection (default {MAX_PER_CONNECTION // 2})",
    )
    parser.add_argument("--keep", action="store_true", help="keep the temporary folder (hub.log)")
    args = parser.parse_args(argv)
    if min(args.subscribers, args.losses, args.per_school, args.per_channel) < 1:
        parser.error("--subscribers, --losses, --per-school and --per-channel must be positive")
    schools = math.ceil(args.subscribers / args.per_school)
    per_school = math.ceil(args.subscribers / schools)
    subscribers = schools * per_school
    folder = Path(tempfile.mkdtemp(prefix="bench-blocklist-"))
    hub: subprocess.Popen[bytes] | None = None
    try:
        say(f"seeding {schools} school(s) with {per_school} terminals each in {folder}")
        db = seed(folder, schools, per_school, args.losses)
        port = _free_port()
        hub = start_hub(db, port, folder / "hub.log")
        if hasattr(os, "sched_setaffinity") and shutil.which("taskset"):
            with contextlib.suppress(OSError):
                os.sched_setaffinity(0, {CLIENT_CPU})
        creds = CampusCredentials.load(folder / "hub.keys")
        result = uvloop.run(
            run(f"127.0.0.1:{port}", creds, schools, per_school, args.per_channel, args.losses, hub.pid)
        )
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
    delays, usage = result.delays, result.usage
    p50, p99, worst = percentile(delays, 0.5), percentile(delays, 0.99), max(delays)
    say(
        f"{len(delays)} deliveries in {result.rounds} rounds: mean {statistics.fmean(delays):.2f} ms;"
        f" a round's reports answered after {statistics.median(result.answered):.0f} ms (median)"
    )
    hub_us, client_us = (1e6 * cpu / len(delays) for cpu in (usage.hub_s, usage.client_s))
    say(
        f"CPU over the rounds ({usage.wall_s:.1f} s): hub {usage.hub_s:.2f} s"
        f" ({100 * usage.hub_s / usage.wall_s:.0f}% of a core, {hub_us:.1f} µs per delivery),"
        f" this client {usage.client_s:.2f} s ({100 * usage.client_s / usage.wall_s:.0f}%,"
        f" {client_us:.1f} µs per delivery)"
    )
    if usage.cpus_s:  # near 100% busy with little of it ours: others' processes set the pace
        busy = ", ".join(
            f"CPU {cpu} {100 * s / usage.wall_s:.0f}%" for cpu, s in sorted(usage.cpus_s.items())
        )
        say(f"busy over the rounds, every process: {busy}")
    figures = f"p50_ms={p50:.2f} p99_ms={p99:.2f} max_ms={worst:.2f}"
    cpu = f"hub_cpu_us={hub_us:.1f} client_cpu_us={client_us:.1f}"
    say(f"bench_blocklist: subscribers={subscribers} {figures} {cpu}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
