"""The load generator of `scripts/bench.py` (DESIGN §7); bench.py starts it, one process per server run.

One grpc.aio channel on uvloop, talking to the hub or to the do-nothing server exactly as terminals do:
`onecard-terminal-id` metadata, request.terminal_id the same, tap_time and QR issue time from the server's
GetClock. Every request of a phase is built and serialized before the phase starts (minting is not what
we measure); the calls send those bytes and keep the answers as bytes, decoded after the phase.

Traffic: 60% canteen purchases (500..2000 fen, below the PIN-free limit), 40% gate taps (each card
alternates entry and exit); half chip taps (ATC moving forward per card), half e-card QR scans (a fresh
token per scan, minted with the server's time just before the phase). Cards are used round-robin in a
shuffled order, so two taps of one card are always thousands of calls apart and never in flight together.

Phases, in one process so that per-card state (ATC, inside/outside) carries over:
  closed  `--inflight` calls always in flight: `--warmup-seconds`, then `--closed-seconds` measured
  open    `--rate` calls per second on a fixed schedule for `--open-seconds`; latency runs from each
          call's scheduled send time, so a stalled sender cannot hide queueing

The result is one JSON document written to `--out`.
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
QR_SAFE_AGE_S = 40.0  # tokens live 60 s; a phase must end well before the first one expires

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


class CpuMeter:
    """CPU used by this process and by the server (from /proc, when its pid is known)."""

    def __init__(self, server_pid: int | None) -> None:
        self.server_pid = server_pid
        self._tick = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100

    def _server_cpu(self) -> float | None:
        if self.server_pid is None:
            return None
        try:
            fields = Path(f"/proc/{self.server_pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            return None
        return (int(fields[11]) + int(fields[12])) / self._tick  # utime + stime, all threads

    def start(self) -> tuple[float, float, float | None]:
        return time.perf_counter(), time.process_time(), self._server_cpu()

    def stop(self, started: tuple[float, float, float | None]) -> dict[str, float | None]:
        wall = time.perf_counter() - started[0]
        client = (time.process_time() - started[1]) / wall
        server_now = self._server_cpu()
        server = None if server_now is None or started[2] is None else (server_now - started[2]) / wall
        return {
            "client_cpu": round(client, 3),
            "server_cpu": None if server is None else round(server, 3),
        }


def decode(answers: Sequence[bytes | None], kinds: Sequence[int], errors: Counter[str]) -> dict[str, Any]:
    decisions: Counter[str] = Counter()
    by_kind: dict[str, Counter[str]] = {}
    for answer, kind in zip(answers, kinds, strict=True):
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
        by_kind.setdefault(KINDS[kind], Counter())[name] += 1
    answered = sum(decisions.values())
    total = answered + sum(errors.values())
    return {
        "answered": answered,
        "approved": decisions["APPROVED"],
        "approval_share": decisions["APPROVED"] / total if total else 0.0,
        "decisions": dict(decisions.most_common()),
        "errors": dict(errors.most_common()),
        "by_kind": {k: dict(v.most_common()) for k, v in sorted(by_kind.items())},
    }


async def closed_loop(
    call: Call,
    batch: Batch,
    *,
    inflight: int,
    warmup: float,
    seconds: float,
    call_timeout: float,
    cpu: CpuMeter,
) -> dict[str, Any]:
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
    meter: tuple[float, float, float | None] | None = None

    async def worker() -> None:
        nonlocal next_index, exhausted, meter
        while True:
            now = time.perf_counter()
            if now >= measure_to:
                return
            if meter is None and now >= measure_from:
                meter = cpu.start()
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
    usage = cpu.stop(meter) if meter is not None else {}
    sent = next_index
    window_end = measure_to if not exhausted else max(done_at[:sent], default=measure_to)
    completed = sum(1 for i in range(sent) if measure_from <= done_at[i] <= window_end)
    latencies = [done_at[i] - sent_at[i] for i in range(sent) if sent_at[i] >= measure_from and done_at[i]]
    span = max(window_end - measure_from, 1e-9)
    result: dict[str, Any] = {
        "inflight": inflight,
        "warmup_s": warmup,
        "seconds": round(span, 3),
        "prebuilt": n,
        "sent": sent,
        "completed_in_window": completed,
        "rps": completed / span,
        "p50_ms": percentile_ms(latencies, 50),
        "p99_ms": percentile_ms(latencies, 99),
        "exhausted": exhausted,
        **usage,
    }
    result.update(decode(answers[:sent], batch.kinds[:sent], errors))
    return result


async def open_loop(
    call: Call, batch: Batch, *, rate: float, call_timeout: float, cpu: CpuMeter
) -> dict[str, Any]:
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

    meter = cpu.start()
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
    usage = cpu.stop(meter)
    done = time.perf_counter() - start
    values = list(latency)
    lags = list(send_lag)
    result: dict[str, Any] = {
        "rate": rate,
        "calls": n,
        "seconds": round(done, 3),
        "achieved_rps": n / sending_s if sending_s > 0 else 0.0,
        "p50_ms": percentile_ms(values, 50),
        "p90_ms": percentile_ms(values, 90),
        "p99_ms": percentile_ms(values, 99),
        "max_ms": percentile_ms(values, 100),
        "send_lag_p50_ms": percentile_ms(lags, 50),
        "send_lag_p99_ms": percentile_ms(lags, 99),
        **usage,
    }
    result.update(decode(answers, batch.kinds, errors))
    return result


# -- the run ---------------------------------------------------------------------------------------


async def run(args: argparse.Namespace) -> dict[str, Any]:
    creds = CampusCredentials.load(args.keys)
    campus = Campus(creds, args.seed)
    if len(campus.order) < 8 * args.inflight:
        log(f"warning: only {len(campus.order)} cards for {args.inflight} calls in flight")
    report: dict[str, Any] = {
        "target": args.target,
        "label": args.label,
        "cards": len(campus.order),
        "terminals": dict(Counter(t.kind for t in creds.terminals)),
    }
    cpu = CpuMeter(args.server_pid)
    async with grpc.aio.insecure_channel(args.target) as channel:
        await asyncio.wait_for(channel.channel_ready(), timeout=30.0)
        call: Call = channel.unary_unary(AUTHORIZE)  # bytes in, bytes out: no (de)serializing in the hot loop
        clock = await read_clock(channel, creds.terminals[0].terminal_id)
        report["server_time_ms"] = clock.now_ms()

        if args.closed_seconds > 0:
            count = int(args.max_rps * (args.warmup_seconds + args.closed_seconds)) + 4 * args.inflight
            started = time.perf_counter()
            batch = campus.build(count, clock)
            build_s = time.perf_counter() - started
            log(f"closed loop: built {count} requests in {build_s:.2f} s")
            gc.collect()
            gc.freeze()
            closed = await closed_loop(
                call,
                batch,
                inflight=args.inflight,
                warmup=args.warmup_seconds,
                seconds=args.closed_seconds,
                call_timeout=args.call_timeout,
                cpu=cpu,
            )
            closed["build_s"] = round(build_s, 3)
            report["closed"] = closed
            log(f"closed loop: {closed['rps']:.0f} rps, p99 {closed['p99_ms']} ms")
            # campus.build walked the round-robin over unsent requests too; those taps never reached the
            # server, so give the cards back their state by rebuilding from where sending stopped.
            campus.rewind(batch, closed["sent"])
            del batch
            gc.unfreeze()
            await asyncio.sleep(args.pause_seconds)

        if args.open_seconds > 0:
            count = int(args.rate * args.open_seconds)
            started = time.perf_counter()
            batch = campus.build(count, clock)
            build_s = time.perf_counter() - started
            log(f"open loop: built {count} requests in {build_s:.2f} s")
            gc.collect()
            gc.freeze()
            opened = await open_loop(call, batch, rate=args.rate, call_timeout=args.call_timeout, cpu=cpu)
            opened["build_s"] = round(build_s, 3)
            report["open"] = opened
            log(f"open loop: {opened['achieved_rps']:.0f}/s sent, p99 {opened['p99_ms']} ms")
            gc.unfreeze()
    return report


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--target", required=True, help="HOST:PORT of the hub or the do-nothing server")
    parser.add_argument("--keys", required=True, type=Path, help="keys folder written by `onecard-hub seed`")
    parser.add_argument("--out", required=True, type=Path, help="where to write the JSON result")
    parser.add_argument("--label", default="", help="a name for the run, copied into the result")
    parser.add_argument("--warmup-seconds", type=float, default=1.0)
    parser.add_argument("--closed-seconds", type=float, default=8.0, help="0 skips the closed loop")
    parser.add_argument("--inflight", type=int, default=64)
    parser.add_argument(
        "--max-rps", type=float, default=8000.0, help="closed loop: requests prebuilt per second"
    )
    parser.add_argument("--open-seconds", type=float, default=10.0, help="0 skips the open loop")
    parser.add_argument("--rate", type=float, default=1000.0, help="open loop: calls per second")
    parser.add_argument("--pause-seconds", type=float, default=0.5, help="rest between the phases")
    parser.add_argument("--call-timeout", type=float, default=10.0, help="deadline of each call, seconds")
    parser.add_argument("--server-pid", type=int, default=None, help="to report the server's CPU use")
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args(argv)
    if args.warmup_seconds + args.closed_seconds > QR_SAFE_AGE_S or args.open_seconds > QR_SAFE_AGE_S:
        parser.error(
            f"a phase must stay under {QR_SAFE_AGE_S:.0f} s: its QR tokens expire 60 s after minting"
        )
    if args.inflight < 1 or args.rate <= 0:
        parser.error("--inflight and --rate must be positive")
    try:
        import uvloop
    except ImportError:
        log("uvloop is not installed, using the default event loop")
        report = asyncio.run(run(args))
    else:
        report = uvloop.run(run(args))
    args.out.write_text(json.dumps(report, indent=2, ensure_ascii=False), encoding="utf-8")


if __name__ == "__main__":
    main()
