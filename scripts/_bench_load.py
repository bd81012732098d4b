"""The load generator of `scripts/bench.py`; bench.py starts one for the whole run, pinned to its own CPU.

It keeps one grpc.aio channel on uvloop open to each server of the run (the hub, the do-nothing server,
its twin for the calibration, the telemetry variants) and loads them one at a time in short slices, so
that the servers compared are measured seconds apart, many times over; a server not being loaded is
idle. It talks to every server exactly as terminals do: `onecard-terminal-id` metadata, request.terminal_id
the same, tap_time and QR issue time from that server's GetClock. Every request of a round is built and
serialized before the round starts (minting is not what we measure); the calls send those bytes and keep
the answers as bytes, decoded after the round.

Traffic: 60% canteen purchases (500..2000 fen, below the PIN-free limit), 40% gate taps (each card
alternates entry and exit); half chip taps (ATC moving forward per card), half e-card QR scans (a fresh
token per scan, minted with the server's time just before the round). Each server has its own copy of the
cards' state (a hub keeps its counters), cards used round-robin in a shuffled order, so two taps of one
card are always thousands of calls apart and never in flight together.

A round, for each server in the round's order (every order in turn: the rotations of the server list and
of its reverse, so each server comes first, last, before and after each other one equally often):
  closed  `--inflight` calls always in flight: `--warmup-seconds`, then `--closed-seconds` measured
  open    `--rate` calls per second on a fixed schedule for `--open-seconds` (after every server's closed
          slice); latency runs from each call's scheduled send time, so a stalled sender cannot hide
          queueing
Each slice records the CPU its server used, the CPU this process used, the CPU the other servers used
meanwhile (they should be idle) and how busy the server's CPU was in all (the rest is someone else's).

Output: one JSON document per round on stdout, one line each, as soon as the round is over.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import math
import os
import random
import sys
import time
from array import array
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import grpc

from onecard.auth.v1 import authorization_service_pb2 as auth_pb2
from onecard.terminal.v1 import terminal_service_pb2 as terminal_pb2
from onecard.terminal.v1 import terminal_service_pb2_grpc as terminal_grpc
from onecard_client.campus import CampusCredentials, CardCredential, TerminalInfo
from onecard_client.credentials import chip_cryptogram, mint_qr_token

AUTHORIZE = "/onecard.auth.v1.AuthorizationService/Authorize"
TERMINAL_HEADER = "onecard-terminal-id"
CANTEEN_SHARE = 0.6
CHIP_SHARE = 0.5
AMOUNT_MIN_FEN = 500
AMOUNT_MAX_FEN = 2000
QR_SAFE_AGE_S = 40.0  # tokens live 60 s; a round must end well before the first one expires
PAUSE_S = 0.2  # rest between two slices: the last answers are in, the server goes idle
HEADROOM = 1.5  # requests built for a closed slice: this many times the best rate any server has had
MIN_CLOSED_RPS = 3000.0

Metadata = tuple[tuple[str, str], ...]
KINDS = ("canteen/chip", "canteen/qr", "gate_entry/chip", "gate_entry/qr", "gate_exit/chip", "gate_exit/qr")


def log(message: str) -> None:
    print(f"[load] {message}", file=sys.stderr, flush=True)


# -- the server's clock --------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ServerClock:
    """The server's business time, extrapolated from one GetClock answer."""

    anchor_ms: float  # server time at `anchor_mono`
    anchor_mono: float
    speed: float

    def now_ms(self) -> int:
        return int(self.anchor_ms + (time.perf_counter() - self.anchor_mono) * 1000.0 * self.speed)


async def read_clock(channel: grpc.aio.Channel, terminal_id: str) -> ServerClock:
    stub = terminal_grpc.TerminalServiceStub(channel)
    best: ServerClock | None = None
    best_rtt = math.inf
    for _ in range(5):  # keep the answer with the shortest round trip
        sent = time.perf_counter()
        answer: terminal_pb2.GetClockResponse = await stub.GetClock(
            terminal_pb2.GetClockRequest(terminal_id=terminal_id),
            metadata=((TERMINAL_HEADER, terminal_id),),
            timeout=10.0,
        )
        received = time.perf_counter()
        if received - sent < best_rtt:
            best_rtt = received - sent
            speed = answer.speed if answer.speed > 0 else 1.0
            best = ServerClock(answer.now.ToMilliseconds(), (sent + received) / 2, speed)
    assert best is not None
    return best


# -- the simulated campus: cards, terminals, requests --------------------------------------------


@dataclass(slots=True)
class CardState:
    card: CardCredential
    atc: int  # the last counter the chip used
    inside: bool = False  # next gate tap is an exit when True


@dataclass(slots=True)
class Batch:
    """The serialized requests of one phase and what they are (an index into KINDS)."""

    payloads: list[bytes] = field(default_factory=list)
    metadata: list[Metadata] = field(default_factory=list)
    kinds: list[int] = field(default_factory=list)
    cards: list[CardState] = field(default_factory=list)
    start_position: int = 0

    def __len__(self) -> int:
        return len(self.payloads)


class Campus:
    """Hands out taps over all cards round-robin, keeping each card's ATC and gate state."""

    def __init__(self, creds: CampusCredentials, seed: int) -> None:
        self.creds = creds
        self.rng = random.Random(seed)
        self.gates: dict[str, list[TerminalInfo]] = {}
        self.canteens: dict[str, list[TerminalInfo]] = {}
        for school in creds.schools:
            self.gates[school] = creds.terminals_of(school, "gate")
            self.canteens[school] = creds.terminals_of(school, "canteen_pos")
        schools = {card.school_id for card in creds.cards}
        for school in schools:
            if not self.gates.get(school) or not self.canteens.get(school):
                raise SystemExit(f"school {school} has no gate or no canteen POS in the credentials export")
        self.order = [CardState(card, card.atc) for card in creds.cards]
        self.rng.shuffle(self.order)
        if not self.order:
            raise SystemExit("the credentials export holds no cards")
        self.position = 0
        self.request_prefix = f"b{os.getpid():x}{self.rng.getrandbits(24):06x}-"
        self.request_counter = 0
        self.metadata = {t.terminal_id: ((TERMINAL_HEADER, t.terminal_id),) for t in creds.terminals}

    def build(self, count: int, clock: ServerClock) -> Batch:
        rng = self.rng
        batch = Batch(start_position=self.position)
        signing_key = self.creds.signing_key
        for _ in range(count):
            state = self.order[self.position]
            self.position = (self.position + 1) % len(self.order)
            card = state.card
            self.request_counter += 1
            now_ms = clock.now_ms()
            request = auth_pb2.AuthorizeRequest(request_id=f"{self.request_prefix}{self.request_counter}")
            if rng.random() < CANTEEN_SHARE:
                terminal = rng.choice(self.canteens[card.school_id])
                scene = auth_pb2.SCENE_CANTEEN_PURCHASE
                amount = rng.randint(AMOUNT_MIN_FEN, AMOUNT_MAX_FEN)
                kind = 0
            else:
                terminal = rng.choice(self.gates[card.school_id])
                scene = auth_pb2.SCENE_GATE_EXIT if state.inside else auth_pb2.SCENE_GATE_ENTRY
                state.inside = not state.inside
                amount = 0
                kind = 4 if scene == auth_pb2.SCENE_GATE_EXIT else 2
            request.terminal_id = terminal.terminal_id
            request.scene = scene
            request.amount_fen = amount
            request.tap_time.FromMilliseconds(now_ms)
            if rng.random() < CHIP_SHARE:
                state.atc += 1
                request.chip.card_no = card.card_no
                request.chip.atc = state.atc
                request.chip.cryptogram = chip_cryptogram(
                    card.card_key,
                    card_no=card.card_no,
                    atc=state.atc,
                    terminal_id=terminal.terminal_id,
                    scene=int(scene),
                    amount_fen=amount,
                    tap_time_ms=now_ms,
                )
            else:
                request.qr.token = mint_qr_token(
                    card_no=card.card_no,
                    ecard_key=card.ecard_key,
                    signing_key=signing_key,
                    issued_ms=now_ms,
                    nonce=rng.randbytes(8),
                )
                kind += 1
            batch.payloads.append(request.SerializeToString())
            batch.metadata.append(self.metadata[terminal.terminal_id])
            batch.kinds.append(kind)
            batch.cards.append(state)
        return batch

    def rewind(self, batch: Batch, sent: int) -> None:
        """Undoes what building did for the requests of `batch` that were never sent."""
        for i in range(len(batch) - 1, sent - 1, -1):
            state, kind = batch.cards[i], batch.kinds[i]
            if kind >= 2:  # a gate tap flipped inside/outside
                state.inside = not state.inside
            if kind % 2 == 0:  # a chip tap moved the counter
                state.atc -= 1
        self.position = (batch.start_position + sent) % len(self.order)


# -- measuring -----------------------------------------------------------------------------------

if TYPE_CHECKING:
    Call = grpc.aio.UnaryUnaryMultiCallable[bytes, bytes]  # no (de)serializers: bytes in, bytes out


def percentile_ms(values: Sequence[float], q: float) -> float | None:
    """Nearest-rank percentile of seconds, in milliseconds."""
    if not values:
        return None
    ordered = sorted(values)
    rank = max(0, min(len(ordered) - 1, math.ceil(q / 100.0 * len(ordered)) - 1))
    return round(ordered[rank] * 1000.0, 3)


def _process_cpu_s(pid: int, tick: int) -> float | None:
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / tick  # utime + stime, all threads


def _cpu_busy_s(cpu: int, tick: int) -> float | None:
    """Seconds CPU `cpu` has spent busy (not idle, not waiting for I/O) since boot."""
    try:
        lines = Path("/proc/stat").read_text().splitlines()
    except OSError:
        return None
    for line in lines:
        if line.startswith(f"cpu{cpu} "):
            ticks = [int(f) for f in line.split()[1:9]]  # user nice system idle iowait irq softirq steal
            return (sum(ticks) - ticks[3] - ticks[4]) / tick
    return None


@dataclass(frozen=True, slots=True)
class Snapshot:
    wall: float
    client: float
    servers: dict[str, float | None]
    server_cpu_busy: float | None


class Meter:
    """CPU of this process, of every server (from /proc, by pid) and of the servers' CPU as a whole."""

    def __init__(self, pids: dict[str, int], server_cpu: int | None) -> None:
        self.pids = pids
        self.server_cpu = server_cpu
        self._tick = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100

    def snapshot(self) -> Snapshot:
        busy = None if self.server_cpu is None else _cpu_busy_s(self.server_cpu, self._tick)
        servers = {name: _process_cpu_s(pid, self._tick) for name, pid in self.pids.items()}
        return Snapshot(time.perf_counter(), time.process_time(), servers, busy)

    @staticmethod
    def usage(loaded: str, began: Snapshot, ended: Snapshot) -> dict[str, Any]:
        """Seconds of CPU over a slice: the loaded server's, this process's, the idle servers' and others'."""
        wall = ended.wall - began.wall
        used: dict[str, float] = {}
        for name, then in began.servers.items():
            now = ended.servers.get(name)
            if then is not None and now is not None:
                used[name] = round(now - then, 3)
        others = None
        if began.server_cpu_busy is not None and ended.server_cpu_busy is not None:
            others = round(max(0.0, ended.server_cpu_busy - began.server_cpu_busy - sum(used.values())), 3)
        return {
            "wall_s": round(wall, 3),
            "server_cpu_s": used.get(loaded),
            "client_cpu_s": round(ended.client - began.client, 3),
            "idle_servers_cpu_s": {name: value for name, value in used.items() if name != loaded},
            "others_on_server_cpu_s": others,
        }


def decode(answers: Sequence[bytes | None], kinds: Sequence[int], errors: Counter[str]) -> dict[str, Any]:
    decisions: Counter[str] = Counter()
    for answer in answers:
        if answer is None:
            continue
        response = auth_pb2.AuthorizeResponse.FromString(answer)
        if response.decision == auth_pb2.DECISION_APPROVED:
            name = "APPROVED"
        elif response.decision == auth_pb2.DECISION_DECLINED:
            name = auth_pb2.DeclineReason.Name(response.decline_reason).removeprefix("DECLINE_REASON_")
        else:
            name = "DECISION_" + auth_pb2.Decision.Name(response.decision).removeprefix("DECISION_")
        decisions[name] += 1
    return {"decisions": dict(decisions.most_common()), "errors": dict(errors.most_common())}


async def closed_loop(
    call: Call,
    batch: Batch,
    *,
    inflight: int,
    warmup: float,
    seconds: float,
    call_timeout: float,
    meter: Meter,
    name: str,
) -> tuple[dict[str, Any], list[bytes | None]]:
    n = len(batch)
    payloads, metadata = batch.payloads, batch.metadata
    answers: list[bytes | None] = [None] * n
    errors: Counter[str] = Counter()
    sent_at = array("d", bytes(8 * n))
    done_at = array("d", bytes(8 * n))
    next_index = 0
    exhausted = False
    start = time.perf_counter()
    measure_from = start + warmup
    measure_to = measure_from + seconds
    began: Snapshot | None = None

    async def worker() -> None:
        nonlocal next_index, exhausted, began
        while True:
            now = time.perf_counter()
            if now >= measure_to:
                return
            if began is None and now >= measure_from:
                began = meter.snapshot()
            i = next_index
            if i >= n:
                exhausted = True
                return
            next_index = i + 1
            sent_at[i] = now
            try:
                answers[i] = await call(payloads[i], metadata=metadata[i], timeout=call_timeout)
            except grpc.aio.AioRpcError as exc:
                errors[exc.code().name] += 1
            done_at[i] = time.perf_counter()

    await asyncio.gather(*(worker() for _ in range(inflight)))
    ended = meter.snapshot()
    sent = next_index
    window_end = measure_to if not exhausted else max(done_at[:sent], default=measure_to)
    completed = sum(1 for i in range(sent) if measure_from <= done_at[i] <= window_end)
    latencies = [done_at[i] - sent_at[i] for i in range(sent) if sent_at[i] >= measure_from and done_at[i]]
    span = max(window_end - measure_from, 1e-9)
    result: dict[str, Any] = {
        "seconds": round(span, 3),
        "prebuilt": n,
        "sent": sent,
        "completed_in_window": completed,
        "rps": completed / span,
        "p50_ms": percentile_ms(latencies, 50),
        "p99_ms": percentile_ms(latencies, 99),
        "exhausted": exhausted,
        **(Meter.usage(name, began, ended) if began is not None else {}),
    }
    result["errors"] = dict(errors)
    return result, answers[:sent]


async def open_loop(
    call: Call, batch: Batch, *, rate: float, call_timeout: float, meter: Meter, name: str
) -> tuple[dict[str, Any], list[bytes | None]]:
    n = len(batch)
    payloads, metadata = batch.payloads, batch.metadata
    answers: list[bytes | None] = [None] * n
    errors: Counter[str] = Counter()
    latency = array("d", bytes(8 * n))
    send_lag = array("d", bytes(8 * n))
    interval = 1.0 / rate
    tasks: set[asyncio.Task[None]] = set()
    loop = asyncio.get_running_loop()

    async def one(i: int, scheduled: float) -> None:
        send_lag[i] = time.perf_counter() - scheduled
        try:
            answers[i] = await call(payloads[i], metadata=metadata[i], timeout=call_timeout)
        except grpc.aio.AioRpcError as exc:
            errors[exc.code().name] += 1
        latency[i] = time.perf_counter() - scheduled

    began = meter.snapshot()
    start = time.perf_counter() + 0.01
    i = 0
    while i < n:
        now = time.perf_counter()
        while i < n and start + i * interval <= now:
            task = loop.create_task(one(i, start + i * interval))
            tasks.add(task)
            task.add_done_callback(tasks.discard)
            i += 1
        if i < n:
            await asyncio.sleep(max(0.0, start + i * interval - time.perf_counter()))
    sending_s = time.perf_counter() - start
    while tasks:
        await asyncio.gather(*list(tasks))
    ended = meter.snapshot()
    values = list(latency)
    lags = list(send_lag)
    result: dict[str, Any] = {
        "rate": rate,
        "calls": n,
        "achieved_rps": n / sending_s if sending_s > 0 else 0.0,
        "p50_ms": percentile_ms(values, 50),
        "p99_ms": percentile_ms(values, 99),
        "max_ms": percentile_ms(values, 100),
        "send_lag_p99_ms": percentile_ms(lags, 99),
        "latencies_ms": [round(v * 1000.0, 2) for v in values],  # pooled over the rounds by bench.py
        **Meter.usage(name, began, ended),
    }
    result["errors"] = dict(errors)
    return result, answers


# -- the run ---------------------------------------------------------------------------------------


@dataclass
class Server:
    """One server of the run: its channel, its clock, its copy of the cards' state, its best rate."""

    name: str
    channel: grpc.aio.Channel
    call: Call
    campus: Campus
    clock: ServerClock
    best_rps: float  # closed loop, so far (0 before its first slice: then --max-rps is built)


def round_orders(names: list[str]) -> list[list[str]]:
    """The orders the rounds cycle through: every rotation of the list, then every rotation of its reverse."""
    rotations = [names[i:] + names[:i] for i in range(len(names))]
    if len(names) < 2:
        return rotations
    backwards = names[::-1]
    return rotations + [backwards[i:] + backwards[:i] for i in range(len(names))]


async def run_round(
    args: argparse.Namespace, servers: dict[str, Server], order: list[str], meter: Meter
) -> dict[str, Any]:
    started = time.perf_counter()
    closed_batches: dict[str, Batch] = {}
    open_batches: dict[str, Batch] = {}
    span = args.warmup_seconds + args.closed_seconds
    for name in order:
        # The open batch first, then the closed one: what the closed slice leaves unsent is then the last
        # thing built, and `rewind` gives those cards back their state exactly. No card is in both.
        server = servers[name]
        open_count = int(args.rate * args.open_seconds)
        open_batches[name] = server.campus.build(open_count, server.clock)
        fastest = max(s.best_rps for s in servers.values())  # others on the machine move rates a lot
        wanted = min(args.max_rps, max(MIN_CLOSED_RPS, HEADROOM * fastest)) if fastest else args.max_rps
        count = min(int(wanted * span) + 4 * args.inflight, len(server.campus.order) - open_count)
        closed_batches[name] = server.campus.build(count, server.clock)
    build_s = time.perf_counter() - started
    gc.collect()
    gc.freeze()
    closed: dict[str, dict[str, Any]] = {}
    opened: dict[str, dict[str, Any]] = {}
    for name in order:
        server, batch = servers[name], closed_batches[name]
        result, answers = await closed_loop(
            server.call, batch, inflight=args.inflight, warmup=args.warmup_seconds,
            seconds=args.closed_seconds, call_timeout=args.call_timeout, meter=meter, name=name,
        )  # fmt: skip
        result.update(decode(answers, batch.kinds, Counter(result.pop("errors"))))
        server.campus.rewind(batch, result["sent"])  # the unsent taps never reached the server
        server.best_rps = max(server.best_rps, result["rps"])
        closed[name] = result
        await asyncio.sleep(PAUSE_S)
    for name in order:
        server, batch = servers[name], open_batches[name]
        result, answers = await open_loop(
            server.call, batch, rate=args.rate, call_timeout=args.call_timeout, meter=meter, name=name
        )
        result.update(decode(answers, batch.kinds, Counter(result.pop("errors"))))
        opened[name] = result
        await asyncio.sleep(PAUSE_S)
    gc.unfreeze()
    return {"order": order, "build_s": round(build_s, 3), "closed": closed, "open": opened}


def _named(pairs: list[str], what: str) -> dict[str, str]:
    named: dict[str, str] = {}
    for pair in pairs:
        name, sep, value = pair.partition("=")
        if not sep or not name or not value:
            raise SystemExit(f"{what} must be NAME=VALUE, not {pair!r}")
        named[name] = value
    return named


async def run(args: argparse.Namespace) -> None:
    creds = CampusCredentials.load(args.keys)
    targets = _named(args.target, "--target")
    pids = {name: int(pid) for name, pid in _named(args.server_pid, "--server-pid").items()}
    meter = Meter(pids, args.server_cpu)
    open_count = int(args.rate * args.open_seconds)
    if len(creds.cards) < open_count + 8 * args.inflight:
        raise SystemExit(
            f"{len(creds.cards)} cards are too few: a round's open slice takes {open_count} of them and "
            f"its closed slice at least {8 * args.inflight} more"
        )
    servers: dict[str, Server] = {}
    try:
        for n, (name, target) in enumerate(targets.items()):
            channel = grpc.aio.insecure_channel(target)
            await asyncio.wait_for(channel.channel_ready(), timeout=30.0)
            call: Call = channel.unary_unary(AUTHORIZE)  # bytes in, bytes out: no (de)serializing
            clock = await read_clock(channel, creds.terminals[0].terminal_id)
            campus = Campus(creds, args.seed * 1000 + n)
            servers[name] = Server(name, channel, call, campus, clock, 0.0)
        orders = round_orders(list(targets))
        for round_no in range(1, args.rounds + 1):
            order = orders[(round_no - 1) % len(orders)]
            result = await run_round(args, servers, order, meter)
            result["round"] = round_no
            print(json.dumps(result, ensure_ascii=False), flush=True)
            log(f"round {round_no}: done (built its requests in {result['build_s']:.2f} s)")
    finally:
        for server in servers.values():
            await server.channel.close()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--target", action="append", required=True, help="NAME=HOST:PORT of a server (repeatable)"
    )
    parser.add_argument(
        "--server-pid", action="append", default=[], help="NAME=PID, to report a server's CPU (repeatable)"
    )
    parser.add_argument("--server-cpu", type=int, default=None, help="the CPU the servers are pinned to")
    parser.add_argument("--keys", required=True, type=Path, help="keys folder written by `onecard-hub seed`")
    parser.add_argument("--rounds", type=int, default=12)
    parser.add_argument("--warmup-seconds", type=float, default=0.5)
    parser.add_argument("--closed-seconds", type=float, default=2.0)
    parser.add_argument("--inflight", type=int, default=64)
    parser.add_argument(
        "--max-rps", type=float, default=8000.0, help="closed loop: most requests built per second"
    )
    parser.add_argument("--open-seconds", type=float, default=3.0)
    parser.add_argument("--rate", type=float, default=1000.0, help="open loop: calls per second")
    parser.add_argument("--call-timeout", type=float, default=10.0, help="deadline of each call, seconds")
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args(argv)
    servers = len(args.target)
    round_s = servers * (args.warmup_seconds + args.closed_seconds + args.open_seconds + 2 * PAUSE_S)
    if round_s > QR_SAFE_AGE_S:
        parser.error(
            f"a round would take {round_s:.0f} s: it must stay under {QR_SAFE_AGE_S:.0f} s, its QR "
            "tokens expire 60 s after minting (fewer servers or shorter slices)"
        )
    if args.inflight < 1 or args.rate <= 0 or args.rounds < 1:
        parser.error("--inflight, --rate and --rounds must be positive")
    try:
        import uvloop
    except ImportError:
        log("uvloop is not installed, using the default event loop")
        asyncio.run(run(args))
    else:
        uvloop.run(run(args))


if __name__ == "__main__":
    main()
