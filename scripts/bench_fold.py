"""What the journal's folds cost the calls served meanwhile: `make bench-fold`.

Seeds a campus as `make bench` does and runs the hub in this process (the real store on a copy of the
database, the real servicer, a clock fixed inside the lunch window, pinned to one CPU as `make bench`
pins the hub), then serves Authorize calls, without gRPC, on a fixed schedule of `--rate` calls per
second for `--seconds`, once with folds (store/fold.py) and once without (the fold's threshold out of
reach), `--repeat` times each, alternating. Meanwhile it records

- loop lag: a task sleeping 1 ms at a time, how late it wakes (a fold's work on the loop, or a thread
  holding the GIL, shows here);
- call latency: from each call's scheduled start to its answer (journal commit and fdatasync
  included), the open-loop figure `make bench` reports over gRPC;
- commit wait: from a group commit asking for the journal's connection to its transaction starting
  (behind a fold's step or a WAL checkpoint on the journal's thread);
- step: how long each of a fold's transactions held the journal's thread (a commit waits at most that);
- the fold task's CPU on the loop (its longest stretch between two awaits, and in all) and its
  transactions' CPU on the journal's thread;
- CPU µs per call (process CPU, every thread), folds run, the most unfolded rows.

Each figure is the median over the runs of one kind. Wall-clock figures (lag, latency, waits, steps)
move with whatever else runs on the CPU; the CPU figures much less. Last line:

  bench-fold: lag_p99_ms_on=… lag_p99_ms_off=… lag_max_ms_on=… lag_max_ms_off=… p99_ms_on=… p99_ms_off=…
  wait_max_ms_on=… wait_max_ms_off=… wait_behind_step_max_ms=… fold_loop_max_ms=… fold_loop_ms=…
  step_max_ms=… step_cpu_max_ms=… fold_thread_ms=… cpu_us_on=… cpu_us_off=… folds=…

where `wait_behind_step_max_ms` is the longest wait of a commit asked for while a fold's step ran,
`fold_loop_max_ms` is the CPU of the fold task's longest stretch on the loop, `fold_loop_ms` and
`fold_thread_ms` its CPU per fold on the loop and on the journal's thread, `step_max_ms` the longest of its
transactions (wall clock: on one CPU it includes the loop's turns), `step_cpu_max_ms` the most CPU one took.

    .venv/bin/python scripts/bench_fold.py
    .venv/bin/python scripts/bench_fold.py --seconds 10 --repeat 1
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import os
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Coroutine, Generator
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import uvloop

from onecard.auth.v1 import authorization_service_pb2 as pb
from onecard_hub.api.authorization import AuthorizationServicer
from onecard_hub.api.identity import Identity
from onecard_hub.domain.clock import ManualClock
from onecard_hub.hub import Hub
from onecard_hub.security.keys import HubKeys
from onecard_hub.security.protect import RequestFingerprint
from onecard_hub.server import keep_collections_short
from onecard_hub.stopping import cancelled
from onecard_hub.store.sqlite import SqliteStore

if TYPE_CHECKING:
    from scripts.bench import CLOCK_START, Children, hub_command, seed_campus
    from scripts.bench_tap_path import Requests
else:  # run as a script: scripts/ is on the path
    from bench import CLOCK_START, Children, hub_command, seed_campus
    from bench_tap_path import Requests

PROBE_S = 0.001


class _Timed(Coroutine[Any, Any, Any]):
    """A coroutine whose every step on the loop is timed in CPU seconds (the fold task's)."""

    def __init__(self, coro: Coroutine[Any, Any, Any], spans: list[float]) -> None:
        self._coro, self._spans = coro, spans

    def send(self, value: Any) -> Any:
        began = time.thread_time()
        try:
            return self._coro.send(value)
        finally:
            self._spans.append(time.thread_time() - began)

    def throw(self, *args: Any) -> Any:
        return self._coro.throw(*args)

    def close(self) -> None:
        self._coro.close()

    def __await__(self) -> Generator[Any, None, Any]:
        return self

    def __iter__(self) -> _Timed:
        return self

    def __next__(self) -> Any:
        return self.send(None)


def time_folds(spans: list[float]) -> None:
    """Times each step of the fold task on the loop (a task factory wrapping it)."""
    loop = asyncio.get_running_loop()

    def factory(loop: asyncio.AbstractEventLoop, coro: Any, **kwargs: Any) -> asyncio.Task[Any]:
        if getattr(coro, "__qualname__", "") == "Folder._run":
            coro = _Timed(coro, spans)
        return asyncio.Task(coro, loop=loop, **kwargs)

    loop.set_task_factory(factory)


def pct(values: list[float], q: float) -> float:
    if not values:
        return 0.0
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


class Journal:
    """Times the journal's transactions: commits' waits for the connection, off-loop steps' length."""

    def __init__(self, store: SqliteStore) -> None:
        self.waits: list[float] = []
        self.steps: list[float] = []
        self.step_cpu: list[float] = []  # CPU seconds of the journal's thread in each off-loop transaction
        self.behind_step: list[float] = []  # waits of the commits asked for while a fold's step ran
        self.running = False  # a fold's step is running on the journal's thread
        journal = store.journal
        real = journal.transaction

        async def transaction(body: Callable[[Any], Any], *, off_loop: bool = False) -> Any:
            asked, behind = time.perf_counter(), self.running

            def timed(db: Any) -> Any:
                began, cpu = time.perf_counter(), time.thread_time()
                if not off_loop:
                    self.waits.append(began - asked)
                    if behind:
                        self.behind_step.append(began - asked)
                self.running = off_loop
                try:
                    return body(db)
                finally:
                    self.running = False
                    if off_loop:  # on the journal's thread
                        self.steps.append(time.perf_counter() - began)
                        self.step_cpu.append(time.thread_time() - cpu)

            return await real(timed, off_loop=off_loop)

        journal.transaction = transaction  # type: ignore[method-assign]
        self.copies: list[float] = []  # WAL checkpoints on the journal's thread (commits wait for them too)
        copy = journal.checkpoint

        async def checkpoint() -> tuple[int, int, int]:
            began = time.perf_counter()
            try:
                return await copy()
            finally:
                self.copies.append(time.perf_counter() - began)

        journal.checkpoint = checkpoint  # type: ignore[method-assign]


async def one_run(
    seed_db: Path, keys: Path, folder: Path, args: argparse.Namespace, folds: bool
) -> dict[str, float]:
    now_ms = int(datetime.fromisoformat(CLOCK_START).timestamp() * 1000) + 10_000
    db = folder / "hub.db"
    shutil.copyfile(seed_db, db)
    store = SqliteStore(db)
    hub = Hub(store, HubKeys.load(keys), ManualClock(now_ms))
    fold_spans: list[float] = []
    time_folds(fold_spans)
    await hub.start()
    try:
        if not folds:
            store.folder.share = 1e6  # the threshold out of reach
        servicer = AuthorizationServicer(hub, RequestFingerprint(hub.keys), Identity(hub, tls=False))
        calls = int(args.rate * args.seconds)
        requests = Requests(keys, args.seed, args.burst + calls, now_ms - 5_000)
        messages = [pb.AuthorizeRequest.FromString(p) for p in requests.payloads]
        journal = Journal(store)
        lags: list[float] = []
        latencies: list[float] = []
        stop = asyncio.Event()

        async def probe() -> None:
            while not stop.is_set():
                began = time.perf_counter()
                await asyncio.sleep(PROBE_S)
                lags.append(time.perf_counter() - began - PROBE_S)

        async def call(i: int, scheduled: float) -> None:
            await servicer.Authorize(messages[i], requests.contexts[i])  # type: ignore[arg-type]
            latencies.append(time.perf_counter() - scheduled)

        for first in range(calls, calls + args.burst, 64):  # a closed-loop burst: the fold falls behind
            await asyncio.gather(
                *(
                    servicer.Authorize(messages[i], requests.contexts[i])  # type: ignore[arg-type]
                    for i in range(first, min(first + 64, calls + args.burst))
                )
            )
        journal.waits.clear()
        gc.collect()
        gc.freeze()  # as the server does (its full collections would stall the loop, folds or not)
        collector = asyncio.create_task(keep_collections_short())
        prober = asyncio.create_task(probe())
        unfolded = 0
        tasks = set()
        cpu = time.process_time()
        start = time.perf_counter()
        for i in range(calls):
            scheduled = start + i / args.rate
            delay = scheduled - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            task = asyncio.create_task(call(i, scheduled))
            tasks.add(task)
            task.add_done_callback(tasks.discard)
            unfolded = max(unfolded, store.folder.unfolded)
        await asyncio.gather(*tasks)
        cpu = time.process_time() - cpu
        stop.set()
        await prober
        await cancelled(collector)
        ms = 1000.0
        return {
            "lag_p99": ms * pct(lags, 0.99),
            "lag_max": ms * max(lags),
            "p99": ms * pct(latencies, 0.99),
            "max": ms * max(latencies),
            "wait_p99": ms * pct(journal.waits, 0.99),
            "wait_max": ms * max(journal.waits, default=0.0),
            "copy_max": ms * max(journal.copies, default=0.0),
            "behind_max": ms * max(journal.behind_step, default=0.0),
            "behind": len(journal.behind_step),
            "step_p99": ms * pct(journal.steps, 0.99),
            "step_max": ms * max(journal.steps, default=0.0),
            "cpu_us": 1e6 * cpu / calls,
            "folds": store.folder.folds,
            "fold_cpu_ms": 1000 * sum(journal.step_cpu),
            "step_cpu_max": ms * max(journal.step_cpu, default=0.0),
            "fold_loop_max": ms * max(fold_spans, default=0.0),
            "fold_loop_ms": ms * sum(fold_spans),
            "steps": len(journal.steps),
            "unfolded_max": unfolded,
        }
    finally:
        await hub.stop()
        asyncio.get_running_loop().set_task_factory(None)
        gc.unfreeze()


def line(kind: str, r: dict[str, float]) -> str:
    return (
        f"  folds {kind:<3}  lag p99 {r['lag_p99']:6.2f} max {r['lag_max']:6.2f} ms"
        f" | call p99 {r['p99']:6.2f} max {r['max']:6.2f}"
        f" | commit wait p99 {r['wait_p99']:5.2f} max {r['wait_max']:6.2f} (behind a step: {r['behind']:.0f},"
        f" max {r['behind_max']:.2f}; WAL copy max {r['copy_max']:.2f})"
        f" | step p99 {r['step_p99']:5.2f} max {r['step_max']:6.2f} ({r['steps']:.0f}; CPU max"
        f" {r['step_cpu_max']:.2f})"
        f" | {r['cpu_us']:5.0f} CPU µs/call | folds {r['folds']:.0f}: CPU ms on the thread"
        f" {r['fold_cpu_ms']:.0f}, on the loop {r['fold_loop_ms']:.1f} (longest {r['fold_loop_max']:.2f})"
        f" | unfolded ≤ {r['unfolded_max']:.0f}"
    )


async def measure(args: argparse.Namespace, work: Path) -> str:
    seed_dir = work / "seed"
    seed_dir.mkdir()
    seed_db, keys = seed_campus(Children(), hub_command(args.python), seed_dir, args.students)
    runs: dict[str, list[dict[str, float]]] = {"on": [], "off": []}
    for n in range(args.repeat):
        for kind in ("on", "off") if n % 2 == 0 else ("off", "on"):
            folder = work / f"{kind}{n}"
            folder.mkdir()
            result = await one_run(seed_db, keys, folder, args, folds=kind == "on")
            runs[kind].append(result)
            print(line(kind, result), flush=True)
    med = {k: {f: statistics.median(r[f] for r in rs) for f in rs[0]} for k, rs in runs.items()}
    print("medians:")
    for kind in ("on", "off"):
        print(line(kind, med[kind]))
    on, off = med["on"], med["off"]
    per_fold = max(on["folds"], 1.0)
    return (
        f"bench-fold: lag_p99_ms_on={on['lag_p99']:.2f} lag_p99_ms_off={off['lag_p99']:.2f}"
        f" lag_max_ms_on={on['lag_max']:.2f} lag_max_ms_off={off['lag_max']:.2f}"
        f" p99_ms_on={on['p99']:.2f} p99_ms_off={off['p99']:.2f}"
        f" wait_max_ms_on={on['wait_max']:.2f} wait_max_ms_off={off['wait_max']:.2f}"
        f" wait_behind_step_max_ms={on['behind_max']:.2f}"
        f" fold_loop_max_ms={on['fold_loop_max']:.2f} fold_loop_ms={on['fold_loop_ms'] / per_fold:.1f}"
        f" step_max_ms={on['step_max']:.2f} step_cpu_max_ms={on['step_cpu_max']:.2f}"
        f" fold_thread_ms={on['fold_cpu_ms'] / per_fold:.1f}"
        f" cpu_us_on={on['cpu_us']:.0f} cpu_us_off={off['cpu_us']:.0f} folds={on['folds']:.0f}"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rate", type=float, default=1000.0, help="calls per second (default 1000)")
    parser.add_argument("--seconds", type=float, default=20.0, help="seconds per run (default 20)")
    parser.add_argument("--repeat", type=int, default=3, help="runs with folds and without (default 3)")
    parser.add_argument("--students", type=int, default=20_000, help="students to seed (default 20000)")
    parser.add_argument(
        "--burst", type=int, default=8000, help="calls served 64 at a time first (default 8000)"
    )
    parser.add_argument("--seed", type=int, default=1, help="the requests' random seed")
    parser.add_argument("--cpu", type=int, default=0, help="the CPU to run on (default 0; -1: any)")
    parser.add_argument("--python", default=sys.executable, help="interpreter for `onecard-hub seed`")
    args = parser.parse_args(argv)
    if args.cpu >= 0 and hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {args.cpu})
    work = Path(tempfile.mkdtemp(prefix="onecard-fold-"))
    try:
        result = uvloop.run(measure(args, work))
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print(result)
    return 0


if __name__ == "__main__":
    sys.exit(main())
