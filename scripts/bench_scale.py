"""How the hub starts and serves with a large campus: `make bench-scale`.

For a campus of 20,000 cards and a large one (`--cards-large`, default 1,000,000):

1. seeds it (`onecard-hub seed`, with the balances and limits of `make bench` so that the traffic is
   approved), once: the database and keys are kept in `.bench/scale/<cards>-<key>/`, the key naming the
   seed's arguments and the schema (its version and migrations), so a later run skips seeding (a
   million students take minutes). Beside them, `load.keys/` holds the credentials of 20,000 cards
   drawn from the campus (all of a small one): the load generator reads those rather than the export of
   every card;
2. starts `onecard-hub serve` on a copy of the database, pinned to CPU 0, and measures the time from
   starting the process to the health service answering SERVING, and the process's peak resident memory
   by then (VmHWM); then waits for the hub to log that it has built the whole campus in the background
   (students and cards are built on first use, and by `serve` in the background once serving: until
   then a call may pay a first lookup, and the building takes a fifth of the core);
3. drives Authorize calls at it with the load generator of `make bench` (`_bench_load.py`, pinned to
   CPU 1, `--inflight` calls in flight) for about `--load-seconds`: throughput, the hub's CPU per call,
   and the bytes the hub wrote to disk per call (/proc/PID/io write_bytes over the load phase);
4. reads the hub's resident memory once the load is over (VmRSS) and its peak since start (VmHWM).

Timings on a shared machine are rough; nothing here is asserted. The last line is

  bench-scale: start_s_1m=… rss_mb_1m=… peak_rss_mb_1m=… bytes_per_call_1m=… rps_ratio_1m_vs_20k=…
  rps_1m=… cpu_us_1m=… start_s_20k=… rss_mb_20k=… peak_rss_mb_20k=… bytes_per_call_20k=… rps_20k=…
  cpu_us_20k=… complete_s_1m=… complete_s_20k=…

(`complete_s`: from starting the process to the campus built in the background.)

(`_1m` is the large campus, whatever `--cards-large` says).

    .venv/bin/python scripts/bench_scale.py                      # seeds 1M cards the first time (minutes)
    .venv/bin/python scripts/bench_scale.py --cards-large 100000 --keep
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from onecard_hub.store.schema import MIGRATIONS, SCHEMA_VERSION

if TYPE_CHECKING:
    from scripts.bench import (
        CLIENT_CPU,
        CLOCK_START,
        SEED_ARGS,
        SERVER_CPU,
        BenchError,
        Children,
        _free_port,
        _tail,
        hub_command,
        say,
        seed_campus,
    )
else:  # run as a script: scripts/ is on the path
    from bench import (
        CLIENT_CPU,
        CLOCK_START,
        SEED_ARGS,
        SERVER_CPU,
        BenchError,
        Children,
        _free_port,
        _tail,
        hub_command,
        say,
        seed_campus,
    )

SCRIPTS = Path(__file__).resolve().parent
CACHE = SCRIPTS.parent / ".bench" / "scale"
SMALL_CARDS = 20_000
LOAD_CARDS = 20_000  # cards the load generator taps, drawn from the whole campus
KEY_FILES = ("ecard_signing_key.pem", "ecard_public_key.pem")


@dataclass(frozen=True)
class Campus:
    cards: int
    db: Path
    keys: Path
    load_keys: Path


@dataclass
class Result:
    cards: int
    start_s: float
    start_peak_mb: float
    complete_s: float  # from starting the process to the campus built in the background
    rss_mb: float
    peak_mb: float
    rps: float
    cpu_us: float | None
    bytes_per_call: float
    calls: int
    approved: float | None


# -- the campus, seeded once ------------------------------------------------------------------------


def campus_folder(cards: int) -> Path:
    schema = hashlib.sha256("".join(MIGRATIONS).encode()).hexdigest()  # a migration edited in place too
    key = hashlib.sha256(json.dumps([cards, SEED_ARGS, SCHEMA_VERSION, schema]).encode()).hexdigest()[:12]
    return CACHE / f"{cards}-{key}"


def seeded_campus(children: Children, hub: list[str], cards: int) -> Campus:
    folder = campus_folder(cards)
    campus = Campus(cards, folder / "hub.db", folder / "hub.keys", folder / "load.keys")
    if (folder / "done").is_file():
        say(f"{cards} cards: seeded before, in {folder}")
        return campus
    shutil.rmtree(folder, ignore_errors=True)
    work = folder.with_name(folder.name + ".partial")
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    say(f"{cards} cards: seeding into {folder} (once; a million takes minutes)")
    started = time.monotonic()
    seed_campus(children, hub, work, cards)
    _load_keys(work / "hub.keys", work / "load.keys")
    (work / "done").write_text(f"seeded in {time.monotonic() - started:.0f} s\n", encoding="utf-8")
    work.rename(folder)
    return campus


def _load_keys(keys: Path, into: Path) -> None:
    """The credentials the load generator needs: every terminal, and LOAD_CARDS cards drawn at random."""
    doc = json.loads((keys / "credentials.json").read_text(encoding="utf-8"))
    cards = doc["cards"]
    if len(cards) > LOAD_CARDS:
        doc["cards"] = random.Random(7).sample(cards, LOAD_CARDS)
    into.mkdir()
    (into / "credentials.json").write_text(json.dumps(doc, ensure_ascii=False), encoding="utf-8")
    for name in KEY_FILES:
        shutil.copyfile(keys / name, into / name)


# -- one hub: start, load, memory -------------------------------------------------------------------


def _proc_status(pid: int) -> dict[str, float]:
    """VmRSS and VmHWM in MB."""
    found: dict[str, float] = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        name, _, value = line.partition(":")
        if name in ("VmRSS", "VmHWM"):
            found[name] = int(value.split()[0]) / 1024
    return found


def _written_bytes(pid: int) -> int:
    for line in Path(f"/proc/{pid}/io").read_text().splitlines():
        if line.startswith("write_bytes:"):
            return int(line.split()[1])
    return 0


def _wait_serving(proc: subprocess.Popen[bytes], target: str, log: Path, timeout: float) -> None:
    """Until the hub's health service says SERVING (the gRPC server is up and the hub loaded)."""
    deadline = time.monotonic() + timeout
    with grpc.insecure_channel(target) as channel:
        stub: Any = health_pb2_grpc.HealthStub(channel)
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                raise BenchError(
                    f"the hub exited with status {proc.returncode} while starting:\n{_tail(log)}"
                )
            try:
                answer = stub.Check(health_pb2.HealthCheckRequest(service=""), timeout=0.5)
            except grpc.RpcError:
                time.sleep(0.02)
                continue
            if answer.status == health_pb2.HealthCheckResponse.SERVING:
                return
            time.sleep(0.02)
    raise BenchError(f"the hub was not SERVING within {timeout:.0f} s:\n{_tail(log)}")


CAMPUS_BUILT = b"campus built in the background"  # the hub's log, once every student is in memory


def _wait_logged(proc: subprocess.Popen[bytes], log: Path, line: bytes, timeout: float) -> None:
    """Until the hub's log holds `line`."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise BenchError(f"the hub exited with status {proc.returncode}:\n{_tail(log)}")
        if line in log.read_bytes():
            return
        time.sleep(0.2)
    raise BenchError(f"the hub did not log {line.decode()!r} within {timeout:.0f} s:\n{_tail(log)}")


def run_hub(
    args: argparse.Namespace, children: Children, hub: list[str], campus: Campus, work: Path
) -> Result:
    folder = work / f"hub-{campus.cards}"
    folder.mkdir()
    db = folder / "hub.db"
    for suffix in ("", "-wal", "-shm"):
        source = Path(f"{campus.db}{suffix}")
        if source.exists():
            shutil.copyfile(source, f"{db}{suffix}")
    os.sync()  # the copy's dirty pages written out now, not by the kernel while the hub is measured
    listen = f"127.0.0.1:{_free_port()}"
    argv = [*hub, "serve", "--db", str(db), "--keys", str(campus.keys), "--listen", listen]
    argv += ["--clock-start", CLOCK_START, "--clock-speed", "1"]
    log = folder / "server.log"
    started = time.monotonic()
    proc = children.start(argv, log=log, cpu=SERVER_CPU)
    try:
        _wait_serving(proc, listen, log, args.start_timeout)
        start_s = time.monotonic() - started
        start_peak = _proc_status(proc.pid)["VmHWM"]
        say(f"{campus.cards} cards: SERVING {start_s:.1f} s after start, peak {start_peak:.0f} MB")
        _wait_logged(proc, log, CAMPUS_BUILT, args.start_timeout + 600)
        complete_s = time.monotonic() - started
        say(f"{campus.cards} cards: campus built in the background {complete_s:.1f} s after start")
        time.sleep(1.0)  # the hub collects its start-up garbage once serving
        written = _written_bytes(proc.pid)
        load = run_load(args, children, campus, listen, proc.pid, folder)
        written = _written_bytes(proc.pid) - written
        if proc.poll() is not None:
            raise BenchError(f"the hub died during the load (status {proc.returncode}):\n{_tail(log)}")
        memory = _proc_status(proc.pid)
    finally:
        children.stop(proc)
    return Result(
        campus.cards,
        start_s,
        start_peak,
        complete_s,
        memory["VmRSS"],
        memory["VmHWM"],
        load["rps"],
        load["cpu_us"],
        written / max(load["calls"], 1),
        load["calls"],
        load["approved"],
    )


def run_load(
    args: argparse.Namespace, children: Children, campus: Campus, listen: str, pid: int, folder: Path
) -> dict[str, Any]:
    """`_bench_load.py` against one hub, in rounds of a closed slice (throughput) and a short open one:
    the median throughput and CPU per call over the rounds, and every call made."""
    script = SCRIPTS / "_bench_load.py"
    log, out = folder / "load.log", folder / "load.jsonl"
    rounds = max(1, round(args.load_seconds / 3))
    argv = [
        sys.executable, str(script), "--target", f"hub={listen}", "--server-pid", f"hub={pid}",
        "--server-cpu", str(SERVER_CPU), "--keys", str(campus.load_keys), "--rounds", str(rounds),
        "--warmup-seconds", "0.5", "--closed-seconds", "2", "--open-seconds", "1", "--rate", "200",
        "--inflight", str(args.inflight), "--seed", "1",
    ]  # fmt: skip
    if children.pin:
        argv = ["taskset", "-c", str(CLIENT_CPU), *argv]
    with out.open("wb") as stdout, log.open("wb") as stderr:
        proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=stdout, stderr=stderr)
        try:
            status = proc.wait(timeout=300 + 10 * rounds)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
            raise BenchError(f"the load generator took too long:\n{_tail(log)}") from None
    if status != 0:
        raise BenchError(f"the load generator failed with status {status}:\n{_tail(log)}")
    results = [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines() if line.strip()]
    closed = [r["closed"]["hub"] for r in results]
    opened = [r["open"]["hub"] for r in results]
    cpu = [1e6 * c["server_cpu_s"] / c["completed_in_window"] for c in closed if c.get("server_cpu_s")]
    return {
        "rps": statistics.median(c["rps"] for c in closed),
        "cpu_us": statistics.median(cpu) if cpu else None,
        "calls": sum(c["sent"] for c in closed) + sum(o["calls"] for o in opened),
        "approved": _approved([*closed, *opened]),
    }


def _approved(phases: list[dict[str, Any]]) -> float | None:
    decisions: dict[str, int] = {}
    for phase in phases:
        for name, count in phase.get("decisions", {}).items():
            decisions[name] = decisions.get(name, 0) + count
    total = sum(decisions.values())
    return decisions.get("APPROVED", 0) / total if total else None


# -- the report -------------------------------------------------------------------------------------


def print_table(results: list[Result]) -> None:
    say()
    say(
        f"  {'cards':>9} {'start s':>8} {'start peak MB':>14} {'built s':>8} {'RSS MB':>7} {'peak MB':>8} "
        f"{'rps':>7} {'CPU µs/call':>12} {'bytes/call':>11} {'calls':>7} {'approved':>9}"
    )
    for r in results:
        cpu = "-" if r.cpu_us is None else f"{r.cpu_us:.0f}"
        approved = "-" if r.approved is None else f"{100 * r.approved:.1f}%"
        say(
            f"  {r.cards:>9} {r.start_s:>8.1f} {r.start_peak_mb:>14.0f} {r.complete_s:>8.1f} "
            f"{r.rss_mb:>7.0f} {r.peak_mb:>8.0f} {r.rps:>7.0f} {cpu:>12} {r.bytes_per_call:>11.0f} "
            f"{r.calls:>7} {approved:>9}"
        )
    say()


def summary(small: Result, large: Result) -> str:
    def fields(r: Result, tag: str) -> list[str]:
        cpu = "-" if r.cpu_us is None else f"{r.cpu_us:.0f}"
        return [
            f"start_s_{tag}={r.start_s:.2f}",
            f"rss_mb_{tag}={r.rss_mb:.0f}",
            f"peak_rss_mb_{tag}={r.peak_mb:.0f}",
            f"bytes_per_call_{tag}={r.bytes_per_call:.0f}",
            f"rps_{tag}={r.rps:.0f}",
            f"cpu_us_{tag}={cpu}",
        ]

    ratio = large.rps / small.rps if small.rps else 0.0
    large_fields = fields(large, "1m")
    return " ".join(
        [
            "bench-scale:",
            *large_fields[:4],
            f"rps_ratio_1m_vs_20k={ratio:.3f}",
            *large_fields[4:],
            *fields(small, "20k"),
            f"complete_s_1m={large.complete_s:.1f}",
            f"complete_s_20k={small.complete_s:.1f}",
        ]
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--cards-large", type=int, default=1_000_000, help="cards of the large campus")
    parser.add_argument("--load-seconds", type=float, default=8.0, help="Authorize load per hub, about")
    parser.add_argument("--inflight", type=int, default=64, help="calls in flight (closed loop)")
    parser.add_argument("--start-timeout", type=float, default=600.0, help="seconds a hub may take to serve")
    parser.add_argument("--keep", action="store_true", help="keep the run folder (databases, logs)")
    args = parser.parse_args(argv)
    if args.cards_large < 1_000:
        parser.error("--cards-large must be at least 1,000")
    children = Children()
    work = Path(tempfile.mkdtemp(prefix="onecard-bench-scale-"))
    try:
        hub = hub_command(sys.executable)
        campuses = [seeded_campus(children, hub, n) for n in (SMALL_CARDS, args.cards_large)]
        results = [run_hub(args, children, hub, campus, work) for campus in campuses]
    except BenchError as exc:
        say(f"bench-scale failed: {exc}")
        return 1
    finally:
        children.stop_all()
        if args.keep:
            say(f"kept {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)
    print_table(results)
    say(summary(results[0], results[1]))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
