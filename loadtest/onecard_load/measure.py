"""The load-test figures of loadtest/README.md, measured again with one command (a benchmark, not a test).

    .venv/bin/python -m onecard_load.measure                # about 4 minutes on the 2-core machine

On this machine's two cores the server runs on CPU 0 and Locust (one process) on CPU 1 (`taskset`, as in
`scripts/bench.py`); every run gets a fresh copy of one seeded campus (20,000 students, `prepare`'s
approvable limits) on a simulated clock at speed 1 inside the lunch window. Phases:

1. ceilings, closed loop (`--user-rate 0`: each user taps again as soon as it has its answer), with
   `--ceiling-users` users, `--step-seconds` measured after a `--warmup-seconds` start (connections,
   first taps) that is left out of every steady run's figures:
   a. Locust against the do-nothing server (`scripts/echo_server.py`): Locust's own ceiling;
   b. Locust against the hub: what the hub takes from one Locust process;
2. steady steps at fixed rates (users tapping `--user-rate` times a second): by default 30% to 100% of
   the closed-loop hub figure in steps of 10%; a step passes when Locust sent at least 95% of the rate and
   the p99 stayed within `--p99-ms`; two failed steps in a row end the series. The figure is the highest
   rate at which that step and every step below it passed (the p99 of a 20 s step moves with the few
   stalls that happen in it, so a single passing step above a failed one is not counted);
3. the meal-rush shape with its peak at that rate over `--rush-seconds`: p50/p99 per scene.

CPU is reported as a share of one CPU for the server and for Locust: a side near 100% is the one that
limits the run; "others" is what the rest of the machine used meanwhile. Results (every Locust CSV, the
logs, `measure.md`, `measure.json`; not the campus copies) go to loadtest/results/<timestamp>-measure/.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from onecard_load.headless import LocustResult, run_locust
from onecard_load.prepare import Campus, PrepareError, prepare
from onecard_load.processes import (
    REPO,
    SERVER_CPU,
    Children,
    StartError,
    hub_command,
    tail,
    wait_listening,
)
from onecard_load.profiles import LUNCH_CLOCK_START, users_for_rate
from onecard_load.run import RESULTS, results_folder
from onecard_load.stats import StatsRow, scene_of

__all__ = ["main"]

ECHO_SERVER = REPO / "scripts" / "echo_server.py"
STEP_FRACTIONS = (0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0)
MIN_SENT_SHARE = 0.95


def say(message: str = "") -> None:
    print(message, flush=True)


@dataclass(frozen=True)
class Measured:
    label: str
    server: str  # "hub" | "echo"
    wanted_rate: float | None  # the steady rate asked for; None for a closed loop or a shape
    wanted_text: str
    result: LocustResult

    @property
    def total(self) -> StatsRow:
        return self.result.total

    def passed(self, p99_limit: float) -> bool:
        total = self.total
        if self.wanted_rate is None or total.failures or total.p99_ms is None:
            return False
        return total.rps >= MIN_SENT_SHARE * self.wanted_rate and total.p99_ms <= p99_limit

    def row(self) -> str:
        total, cpu = self.total, self.result.cpu
        return (
            f"| {self.label} | {self.server} | {self.wanted_text} | {total.rps:.0f} | "
            f"{_ms(total.p50_ms)} | {_ms(total.p99_ms)} | {total.failures} | "
            f"{_pct(cpu.get('server'))} | {_pct(cpu.get('locust'))} | {_pct(cpu.get('others'))} |"
        )

    def as_json(self) -> dict[str, Any]:
        total = self.total
        return {
            "label": self.label,
            "server": self.server,
            "wanted_rate": self.wanted_rate,
            "rps": round(total.rps, 1),
            "requests": total.requests,
            "failures": total.failures,
            "p50_ms": total.p50_ms,
            "p99_ms": total.p99_ms,
            "approved": self.result.approved,
            "declined": self.result.declined,
            "cpu": self.result.cpu,
            "csv": str(self.result.csv_prefix),
        }


def _ms(value: float | None) -> str:
    return "-" if value is None else f"{value:g}"


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{100 * value:.0f}%"


RUN_HEADER = (
    "| run | server | wanted | req/s | p50 ms | p99 ms | failures | server CPU | Locust CPU | others |\n"
    "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|"
)


class Bench:
    def __init__(self, args: argparse.Namespace, children: Children, campus: Campus, out: Path) -> None:
        self.args = args
        self.children = children
        self.campus = campus
        self.out = out
        self.runs = 0

    def _server(self, server: str, folder: Path) -> tuple[str, int]:
        clock = ["--clock-start", LUNCH_CLOCK_START, "--clock-speed", "1"]
        if server == "hub":
            db = folder / "hub.db"
            for suffix in ("", "-wal", "-shm"):
                source = Path(f"{self.campus.db}{suffix}")
                if source.exists():
                    shutil.copyfile(source, f"{db}{suffix}")
            argv = [*hub_command(), "serve", "--db", str(db), "--keys", str(self.campus.keys)]
            argv += ["--listen", "127.0.0.1:0", "--log-level", "WARNING", *clock]
        else:
            argv = [sys.executable, str(ECHO_SERVER), "--listen", "127.0.0.1:0", *clock]
        log = folder / "server.log"
        proc = self.children.start(argv, log=log, cpu=SERVER_CPU)
        try:
            return wait_listening(proc, log, server), proc.pid
        except StartError:
            self.children.stop(proc)
            raise

    def run(
        self,
        label: str,
        server: str,
        shape: str,
        locust_args: list[str],
        wanted: float | None,
        wanted_text: str,
    ) -> Measured:
        self.runs += 1
        folder = self.out / f"{self.runs:02d}-{label.replace(' ', '-').replace('/', '')}"
        folder.mkdir()
        target, pid = self._server(server, folder)
        try:
            result = run_locust(
                self.children,
                shape=shape,
                target=target,
                keys=self.campus.keys,
                csv_prefix=folder / "locust",
                locust_args=["--exit-code-on-error", "1", *locust_args],
                server_pid=pid,
                started_marker="Resetting stats" if "--warmup-seconds" in locust_args else None,
            )
        finally:
            self.children.stop_all()
            for copy in folder.glob("hub.db*"):  # the campus copy (about 10 MB, more with its WAL)
                copy.unlink()
        if result.status != 0 or result.total.failures:
            say(f"  note: Locust exited {result.status} with {result.total.failures} failures:")
            say(tail(result.log, 8))
        measured = Measured(label, server, wanted, wanted_text, result)
        say(measured.row())
        return measured

    def _timing(self) -> list[str]:
        """Run for the warm-up and then the measured seconds; statistics start over after the warm-up."""
        warmup, seconds = self.args.warmup_seconds, self.args.step_seconds
        return ["--warmup-seconds", f"{warmup:g}", "-t", f"{warmup + seconds:g}s"]

    def closed_loop(self, server: str) -> Measured:
        users = str(self.args.ceiling_users)
        locust_args = ["--user-rate", "0", "-u", users, "-r", users, *self._timing()]
        wanted = f"closed loop, {users} users"
        return self.run(f"ceiling {server}", server, "steady", locust_args, None, wanted)

    def steady(self, rate: float) -> Measured:
        users = users_for_rate(rate, self.args.user_rate)
        locust_args = [
            "--user-rate", f"{self.args.user_rate:g}",
            "-u", str(users), "-r", str(users),
            *self._timing(),
        ]  # fmt: skip
        return self.run(
            f"steady {rate:.0f}", "hub", "steady", locust_args, rate, f"{rate:.0f}/s, {users} users"
        )

    def meal_rush(self, peak: float) -> Measured:
        locust_args = [
            "--user-rate", f"{self.args.user_rate:g}",
            "--peak-rate", f"{peak:g}",
            "--shape-seconds", f"{self.args.rush_seconds:g}",
        ]  # fmt: skip
        wanted = f"peak {peak:.0f}/s, {self.args.rush_seconds:g} s"
        return self.run(f"meal-rush {peak:.0f}", "hub", "meal-rush", locust_args, None, wanted)


def code_version() -> str:
    """The commit measured, and whether hub/ had uncommitted changes (read-only git calls)."""

    def git(*argv: str) -> str:
        done = subprocess.run(["git", *argv], cwd=REPO, capture_output=True, text=True, check=False)
        return done.stdout.strip() if done.returncode == 0 else ""

    commit = git("rev-parse", "--short", "HEAD") or "unknown"
    dirty = git("status", "--porcelain", "--", "hub")
    return f"{commit}{' + uncommitted changes in hub/' if dirty else ''}"


def step_rates(args: argparse.Namespace, hub_ceiling: float) -> list[float]:
    if args.rates:
        return [float(r) for r in args.rates.split(",")]
    rates = sorted({max(50.0, round(f * hub_ceiling / 50.0) * 50.0) for f in STEP_FRACTIONS})
    return rates


def per_scene(result: LocustResult) -> str:
    """p50/p99 of each scene's approvals, and how many of its taps were declined (and why)."""
    lines = [
        "| scene | approved | p50 ms | p99 ms | req/s | declined (reason: count) |",
        "|---|---:|---:|---:|---:|---|",
    ]
    scenes = sorted({s for row in result.tap_rows() if (s := scene_of(row.name)) is not None})
    for scene in scenes:
        rows = [row for row in result.tap_rows() if scene_of(row.name) == scene]
        approved = next((row for row in rows if not row.declined), None)
        declines = (
            ", ".join(f"{row.decline_reason}: {row.requests}" for row in rows if row.declined) or "none"
        )
        if approved is None:
            lines.append(f"| {scene} | 0 | - | - | - | {declines} |")
            continue
        lines.append(
            f"| {scene} | {approved.requests - approved.failures} | {_ms(approved.p50_ms)} | "
            f"{_ms(approved.p99_ms)} | {approved.rps:.0f} | {declines} |"
        )
    return "\n".join(lines)


def measure(args: argparse.Namespace, children: Children, out: Path, work: Path) -> dict[str, Any]:
    load = os.getloadavg()[0]
    if load > 0.5:
        say(
            f"warning: load average {load:.2f} before starting: something else is running, "
            "the figures will be off"
        )
    started = time.monotonic()
    campus = prepare(work / "campus", students=args.students)
    say(f"seeded {args.students} students; pinned: {children.pin} (server CPU 0, Locust CPU 1)")
    say(f"hub code: {code_version()}")
    bench = Bench(args, children, campus, out)
    say()
    say(RUN_HEADER)
    echo = None if args.skip_echo else bench.closed_loop("echo")
    hub = bench.closed_loop("hub")
    steps: list[Measured] = []
    best: Measured | None = None  # highest step with every step up to it passing
    misses = 0
    for rate in step_rates(args, hub.total.rps):
        step = bench.steady(rate)
        steps.append(step)
        if step.passed(args.p99_ms):
            misses = 0
            if len(steps) == 1 or best is steps[-2]:
                best = step
        else:
            misses += 1
            if misses == 2:
                break
    peak = args.rush_peak or (best.wanted_rate if best is not None else None)
    rush = bench.meal_rush(peak) if peak else None
    say()
    best_text = (
        f"{best.wanted_rate:.0f} taps/s (achieved {best.total.rps:.0f}/s, p99 {best.total.p99_ms:g} ms)"
        if best is not None and best.wanted_rate is not None
        else "none of the steps"
    )
    passing = [f"{m.wanted_rate:.0f}" for m in steps if m.passed(args.p99_ms)]
    passing_text = ", ".join(passing) or "none"
    say(f"highest steady rate with p99 ≤ {args.p99_ms:g} ms (it and every step below): {best_text}")
    say(f"steps that passed: {passing_text}")
    if rush is not None:
        say(f"meal rush, peak {peak:.0f} taps/s over {args.rush_seconds:g} s, per scene (approved taps):")
        say(per_scene(rush.result))
    say(f"measured in {time.monotonic() - started:.0f} s; results in {out}")
    report: dict[str, Any] = {
        "date": time.strftime("%Y-%m-%d %H:%M:%S %z"),
        "code": code_version(),
        "args": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()},
        "pinned": children.pin,
        "load_average_before": round(load, 2),
        "echo_ceiling": echo.as_json() if echo else None,
        "hub_ceiling": hub.as_json(),
        "steps": [step.as_json() for step in steps],
        "best_steady_rate": best.wanted_rate if best else None,
        "meal_rush": rush.as_json() if rush else None,
    }
    lines = [RUN_HEADER]
    lines += [m.row() for m in (echo, hub, *steps, rush) if m is not None]
    lines += [
        "",
        f"highest steady rate with p99 ≤ {args.p99_ms:g} ms (it and every step below): {best_text}",
        f"steps that passed: {passing_text}",
        f"hub code: {report['code']}",
    ]
    if rush is not None:
        lines += ["", per_scene(rush.result)]
    (out / "measure.md").write_text("\n".join(lines) + "\n", encoding="utf-8")
    (out / "measure.json").write_text(json.dumps(report, indent=2, ensure_ascii=False), encoding="utf-8")
    return report


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--students", type=int, default=20_000, help="students (cards) to seed [20000]")
    parser.add_argument("--step-seconds", type=float, default=20.0, help="measured seconds per run [20]")
    parser.add_argument("--warmup-seconds", type=float, default=4.0, help="unmeasured start of each run [4]")
    parser.add_argument("--ceiling-users", type=int, default=64, help="users of the closed loops [64]")
    parser.add_argument("--user-rate", type=float, default=10.0, help="taps/s of one user in steps [10]")
    parser.add_argument("--p99-ms", type=float, default=50.0, help="p99 a steady step must keep [50]")
    parser.add_argument(
        "--rates", default="", help="steady rates to try, e.g. 500,800,1000 [from the ceiling]"
    )
    parser.add_argument("--rush-seconds", type=float, default=60.0, help="length of the meal rush [60]")
    parser.add_argument("--rush-peak", type=float, default=0.0, help="meal-rush peak [the best steady rate]")
    parser.add_argument("--skip-echo", action="store_true", help="skip Locust's ceiling against echo")
    parser.add_argument(
        "--out", type=Path, default=None, help="results folder [loadtest/results/<time>-measure/]"
    )
    args = parser.parse_args(argv)
    if args.step_seconds <= 0 or args.user_rate <= 0 or args.ceiling_users < 1 or args.rush_seconds <= 0:
        parser.error("--step-seconds, --user-rate, --ceiling-users and --rush-seconds must be positive")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.out is None:
        out = results_folder(RESULTS)
        out = out.rename(out.with_name(out.name + "-measure"))
    else:
        out = args.out
        out.mkdir(parents=True, exist_ok=True)
    children = Children(pin=True)
    work = Path(tempfile.mkdtemp(prefix="onecard-measure-"))
    try:
        measure(args, children, out, work)
    except (StartError, PrepareError) as exc:
        say(f"measure: FAILED: {exc}")
        return 1
    except KeyboardInterrupt:
        say("measure: interrupted")
        return 130
    finally:
        children.stop_all()
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
