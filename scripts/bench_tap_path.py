"""Where a tap's CPU goes inside the hub, phase by phase: `make bench-tap-path`.

`make bench` compares the whole hub with a do-nothing gRPC server; this script opens up the hub's
share. It seeds a campus as `make bench` does, builds the hub in this process (the real store on a
copy of the database, the real servicer, a clock fixed inside the lunch window, every student and card
built as `serve` has them once its background fill is done), and measures CPU
per tap (process CPU, every thread) without gRPC:

- each phase of the Authorize path alone, over the same prebuilt requests, in the order a call
  runs them: `decode` (the request's bytes to a message: the do-nothing server pays it too),
  `identify` (the calling terminal), `validate` (the request to a domain tap, the QR token
  parsed), `fingerprint` (the keyed digest kept for idempotency), `decide` (the domain
  decision on the in-memory campus: the cryptogram or QR MAC, limits, balances), `render` (the
  answer built and serialized);
- the whole servicer call, journal included, awaited, with 64 calls per group commit (what the
  closed loop of `make bench` gives) and with each call committed alone (what 1,000 calls/s
  gives), each with SQLite's `--synchronous` FULL (an fdatasync before each answer) and NORMAL
  (none): the differences are a commit's cost and an fsync's;
- the whole call at `--rate` calls a second (1,000), arriving at random times (Poisson), each its
  own task as gRPC makes them, FULL, the writer as `serve` runs it: the CPU per tap, the taps per
  commit and the latency that this gives. In this process the hub has no gRPC to pay for, so its
  core is less busy than a server's at the same rate, and the writer paces its commits less.

Each figure is the median of `--repeat` runs (3). Timings on a shared machine are rough; CPU time
is less so. The last line is

  bench-tap-path: decode_us=… identify_us=… validate_us=… fingerprint_us=… decide_us=… render_us=…
  path_us_batched=… path_us_single=… commit_us=… fsync_us=… path_us_at_rate=… taps_per_commit_at_rate=…

where `path_us_batched` is the whole call at 64 per commit, `commit_us` what committing alone adds
(NORMAL, 1 per commit against 64) and `fsync_us` what the fdatasync adds (FULL against NORMAL, 1
per commit), and the last two are the run at `--rate`.

    .venv/bin/python scripts/bench_tap_path.py
    .venv/bin/python scripts/bench_tap_path.py --taps 2000 --repeat 1
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import random
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import uvloop

from onecard.auth.v1 import authorization_service_pb2 as pb
from onecard_client.campus import CampusCredentials
from onecard_hub.api import convert
from onecard_hub.api.authorization import AuthorizationServicer
from onecard_hub.api.identity import Identity
from onecard_hub.domain.clock import ManualClock
from onecard_hub.hub import Hub
from onecard_hub.security.keys import HubKeys
from onecard_hub.security.protect import RequestFingerprint
from onecard_hub.store.sqlite import SqliteStore

if TYPE_CHECKING:
    import scripts._bench_load as load
    from scripts.bench import CLOCK_START, Children, hub_command, seed_campus
else:  # run as a script: scripts/ is on the path
    import _bench_load as load
    from bench import CLOCK_START, Children, hub_command, seed_campus

BATCH = 64  # calls per group commit in the batched runs (make bench's closed loop keeps 64 in flight)
PHASES = ("decode", "identify", "validate", "fingerprint", "decide", "render")


class _Metadatum:
    """What grpc.aio's invocation metadata holds: a key and a value."""

    __slots__ = ("key", "value")

    def __init__(self, key: str, value: str) -> None:
        self.key, self.value = key, value


class _Context:
    """The part of a ServicerContext the Authorize path reads: the caller's metadata."""

    __slots__ = ("_metadata",)

    def __init__(self, metadata: Sequence[tuple[str, str]]) -> None:
        self._metadata = tuple(_Metadatum(k, v) for k, v in metadata)

    def invocation_metadata(self) -> tuple[_Metadatum, ...]:
        return self._metadata


class Requests:
    """Prebuilt Authorize requests (chip taps and QR scans, canteen and gates), as `make bench` sends."""

    def __init__(self, keys: Path, seed: int, count: int, issued_ms: int) -> None:
        campus = load.Campus(CampusCredentials.load(keys), seed)
        batch = campus.build(count, load.ServerClock(issued_ms, 0.0, 0.0))  # a clock standing still
        self.payloads = batch.payloads
        self.contexts = [_Context(m) for m in batch.metadata]


def _cpu_per_item(run: Callable[[], object], items: int) -> float:
    """µs of process CPU per item for `run`, which handles `items` items."""
    gc.collect()
    started = time.process_time()
    run()
    return 1e6 * (time.process_time() - started) / items


async def _hub(seed_db: Path, keys: Path, folder: Path, synchronous: str, now_ms: int) -> Hub:
    db = folder / "hub.db"
    shutil.copyfile(seed_db, db)
    hub = Hub(SqliteStore(db, synchronous=synchronous), HubKeys.load(keys), ManualClock(now_ms))
    await hub.start()
    if hub.campus_loader is not None:  # the campus as `serve` has it once built in the background
        hub.campus_loader.everything()
    return hub


async def phases(seed_db: Path, keys: Path, folder: Path, taps: int, now_ms: int) -> dict[str, float]:
    """CPU per tap of each phase alone, over one set of requests, in the order a call runs them."""
    hub = await _hub(seed_db, keys, folder, "FULL", now_ms)
    try:
        requests = Requests(keys, 1, taps, now_ms - 5_000)
        identity = Identity(hub, tls=False)
        fingerprint = RequestFingerprint(hub.keys)
        out: dict[str, float] = {}
        messages: list[pb.AuthorizeRequest] = []
        out["decode"] = _cpu_per_item(
            lambda: messages.extend(pb.AuthorizeRequest.FromString(p) for p in requests.payloads), taps
        )
        terminals: list[Any] = []
        out["identify"] = _cpu_per_item(
            lambda: terminals.extend(identity.terminal(c) for c in requests.contexts),  # type: ignore[arg-type]
            taps,
        )
        tapped: list[Any] = []
        out["validate"] = _cpu_per_item(
            lambda: tapped.extend(convert.tap(m, t) for m, t in zip(messages, terminals, strict=True)), taps
        )
        out["fingerprint"] = _cpu_per_item(
            lambda: [fingerprint("Authorize", m.SerializeToString(deterministic=True)) for m in messages],
            taps,
        )
        results: list[Any] = []
        out["decide"] = _cpu_per_item(
            lambda: results.extend(hub.campus.authorize(t, now_ms) for t in tapped), taps
        )
        out["render"] = _cpu_per_item(
            lambda: [
                convert.authorize_response(t, r, now_ms, n).SerializeToString()
                for n, (t, r) in enumerate(zip(tapped, results, strict=True))
            ],
            taps,
        )
        approved = sum(r.approved for r in results) / taps
        if approved < 0.95:
            raise SystemExit(f"only {100 * approved:.1f}% of the taps were approved: check the seed")
        return out
    finally:
        await hub.stop()


async def whole_path(
    seed_db: Path, keys: Path, folder: Path, taps: int, now_ms: int, synchronous: str, per_commit: int
) -> float:
    """CPU per tap of the whole servicer call, journal included, `per_commit` calls at a time."""
    hub = await _hub(seed_db, keys, folder, synchronous, now_ms)
    try:
        servicer = AuthorizationServicer(hub, RequestFingerprint(hub.keys), Identity(hub, tls=False))
        requests = Requests(keys, 2, taps, now_ms - 5_000)
        messages = [pb.AuthorizeRequest.FromString(p) for p in requests.payloads]
        contexts = requests.contexts
        gc.collect()
        started = time.process_time()
        for first in range(0, taps, per_commit):
            calls = zip(
                messages[first : first + per_commit], contexts[first : first + per_commit], strict=True
            )
            await asyncio.gather(*(servicer.Authorize(m, c) for m, c in calls))  # type: ignore[arg-type]
        return 1e6 * (time.process_time() - started) / taps
    finally:
        await hub.stop()


async def open_loop(
    seed_db: Path, keys: Path, folder: Path, taps: int, now_ms: int, rate: float
) -> tuple[float, float, float, float]:
    """The whole servicer call at `rate` calls a second, arrivals at random (Poisson), each call a
    task of its own as gRPC makes it: CPU µs per tap, taps per commit, p50 and p99 ms."""
    hub = await _hub(seed_db, keys, folder, "FULL", now_ms)
    try:
        servicer = AuthorizationServicer(hub, RequestFingerprint(hub.keys), Identity(hub, tls=False))
        requests = Requests(keys, 3, taps, now_ms - 5_000)
        messages = [pb.AuthorizeRequest.FromString(p) for p in requests.payloads]
        gaps = random.Random(7)
        loop = asyncio.get_running_loop()
        latencies: list[float] = []
        tasks = []

        async def call(message: pb.AuthorizeRequest, context: _Context, due: float) -> None:
            await servicer.Authorize(message, context)  # type: ignore[arg-type]
            latencies.append(loop.time() - due)

        gc.collect()
        before = hub.writer.stats().batches
        started = time.process_time()
        due = loop.time() + 0.01
        for message, context in zip(messages, requests.contexts, strict=True):
            due += gaps.expovariate(rate)
            wait = due - loop.time()
            if wait > 0:
                await asyncio.sleep(wait)
            tasks.append(asyncio.ensure_future(call(message, context, due)))
        await asyncio.gather(*tasks)
        cpu = 1e6 * (time.process_time() - started) / taps
        commits = hub.writer.stats().batches - before
        latencies.sort()
        return cpu, taps / commits, 1e3 * latencies[taps // 2], 1e3 * latencies[int(taps * 0.99)]
    finally:
        await hub.stop()


async def measure(args: argparse.Namespace, work: Path) -> str:
    seed_db, keys = seed(args, work)
    now_ms = int(datetime.fromisoformat(CLOCK_START).timestamp() * 1000) + 10_000
    runs: dict[str, list[float]] = {}
    for n in range(args.repeat):
        for name, value in (
            await phases(seed_db, keys, _fresh(work, f"phases{n}"), args.taps, now_ms)
        ).items():
            runs.setdefault(name, []).append(value)
        for synchronous in ("FULL", "NORMAL"):
            for per_commit in (BATCH, 1):
                folder = _fresh(work, f"{synchronous}-{per_commit}-{n}")
                value = await whole_path(seed_db, keys, folder, args.taps, now_ms, synchronous, per_commit)
                runs.setdefault(f"{synchronous}/{per_commit}", []).append(value)
        cpu, per_commit_at_rate, p50, p99 = await open_loop(
            seed_db, keys, _fresh(work, f"rate{n}"), args.taps, now_ms, args.rate
        )
        for name, value in (("rate", cpu), ("rate/commit", per_commit_at_rate), ("p50", p50), ("p99", p99)):
            runs.setdefault(name, []).append(value)
    med = {name: statistics.median(values) for name, values in runs.items()}
    say(f"CPU µs per tap, median of {args.repeat} runs of {args.taps} taps (process CPU, every thread):")
    for name in PHASES:
        say(f"  {name:<12} {med[name]:7.1f}")
    say(f"  {'sum':<12} {sum(med[p] for p in PHASES):7.1f}   (the phases alone)")
    for synchronous in ("FULL", "NORMAL"):
        for per_commit in (BATCH, 1):
            key = f"{synchronous}/{per_commit}"
            say(f"  whole call, {per_commit:>2} per commit, synchronous={synchronous:<6} {med[key]:7.1f}")
    commit = med["NORMAL/1"] - med[f"NORMAL/{BATCH}"]
    fsync = med["FULL/1"] - med["NORMAL/1"]
    say(f"  a commit of its own adds {commit:.1f}; its fdatasync (and the thread hand-off) {fsync:.1f}")
    say(
        f"  whole call at {args.rate:g}/s, arrivals at random      {med['rate']:7.1f}"
        f"   ({med['rate/commit']:.2f} taps a commit; p50 {med['p50']:.2f} ms, p99 {med['p99']:.2f} ms)"
    )
    fields = " ".join(f"{p}_us={med[p]:.1f}" for p in PHASES)
    return (
        f"bench-tap-path: {fields} path_us_batched={med[f'FULL/{BATCH}']:.1f} "
        f"path_us_single={med['FULL/1']:.1f} commit_us={commit:.1f} fsync_us={fsync:.1f} "
        f"path_us_at_rate={med['rate']:.1f} taps_per_commit_at_rate={med['rate/commit']:.2f}"
    )


def seed(args: argparse.Namespace, work: Path) -> tuple[Path, Path]:
    folder = work / "seed"
    folder.mkdir()
    return seed_campus(Children(), hub_command(args.python), folder, args.students)


def _fresh(work: Path, name: str) -> Path:
    folder = work / name
    folder.mkdir()
    return folder


def say(message: str) -> None:
    print(message, flush=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--taps", type=int, default=6400, help="taps per run (default 6400)")
    parser.add_argument("--repeat", type=int, default=3, help="runs of each measurement (default 3)")
    parser.add_argument("--rate", type=float, default=1000, help="calls a second of the last run (1000)")
    parser.add_argument("--students", type=int, default=20_000, help="students to seed (default 20000)")
    parser.add_argument("--python", default=sys.executable, help="interpreter for `onecard-hub seed`")
    args = parser.parse_args(argv)
    if args.taps < BATCH or args.repeat < 1 or args.rate <= 0:
        parser.error(f"--taps must be at least {BATCH}, --repeat and --rate positive")
    work = Path(tempfile.mkdtemp(prefix="onecard-tap-path-"))
    try:
        line = uvloop.run(measure(args, work))
    finally:
        shutil.rmtree(work, ignore_errors=True)
    say(line)
    return 0


if __name__ == "__main__":
    sys.exit(main())
