"""The load-test figures of loadtest/README.md, measured again with one command (a benchmark, not a test).

    .venv/bin/python -m onecard_load.measure                # about 4 minutes on the 2-core machine
    .venv/bin/python -m onecard_load.measure --tls          # plain and mutual TLS side by side, twice as long

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
   The first failed step is then run again against the do-nothing server at the same rate: when Locust
   cannot keep that rate within the p99 even there, the client is what limits the figure, not the hub;
3. the meal-rush shape with its peak at that rate over `--rush-seconds`: p50/p99 per scene.

With `--tls` every run is made twice, plain text then mutual TLS (the hub and the do-nothing server
serving `--tls` with a PKI made for the campus, each user presenting its terminal's certificate), the
steps at the same rates, and the figures are printed side by side.

CPU is reported as a share of one CPU for the server and for Locust, and as µs per call; the `limits`
column names the side at 90% of its CPU or more (`Locust`, `server`), or `others` when the rest of the
machine used 30% of a CPU or more, or `neither` (no side saturated: the latency comes from stalls). The
closing lines say what that means: the hub's ceiling against its CPU per call (the rate it would take
with a whole core), Locust's own cost per call, the steady figure as a share of both. Results (every
Locust CSV, the logs, `measure.md`, `measure.json`; not the campus copies) go to
loadtest/results/<timestamp>-measure/.
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
from pathlib import Path
from typing import Any

from onecard_load.figures import RUN_HEADER, Measured, Series, per_scene, verdicts
from onecard_load.headless import run_locust
from onecard_load.prepare import Campus, PrepareError, make_pki, prepare
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

__all__ = ["main"]

ECHO_SERVER = REPO / "scripts" / "echo_server.py"
STEP_FRACTIONS = (0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0)


def say(message: str = "") -> None:
    print(message, flush=True)


class Bench:
    def __init__(
        self, args: argparse.Namespace, children: Children, campus: Campus, out: Path, pki: Path | None
    ) -> None:
        self.args = args
        self.children = children
        self.campus = campus
        self.out = out
        self.pki = pki  # the PKI of the TLS runs
        self.runs = 0

    def _server(self, server: str, folder: Path, mode: str) -> tuple[str, int]:
        clock = ["--clock-start", LUNCH_CLOCK_START, "--clock-speed", "1"]
        tls = ["--tls", str(self.pki)] if mode == "tls" and self.pki is not None else []
        if server == "hub":
            db = folder / "hub.db"
            for suffix in ("", "-wal", "-shm"):
                source = Path(f"{self.campus.db}{suffix}")
                if source.exists():
                    shutil.copyfile(source, f"{db}{suffix}")
            argv = [*hub_command(), "serve", "--db", str(db), "--keys", str(self.campus.keys)]
            argv += ["--listen", "127.0.0.1:0", "--log-level", "WARNING", *clock, *tls]
        else:
            argv = [sys.executable, str(ECHO_SERVER), "--listen", "127.0.0.1:0", *clock, *tls]
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
        mode: str = "plain",
    ) -> Measured:
        self.runs += 1
        name = f"{label} {mode}".replace(" ", "-").replace("/", "")
        folder = self.out / f"{self.runs:02d}-{name}"
        folder.mkdir()
        target, pid = self._server(server, folder, mode)
        if mode == "tls" and self.pki is not None:
            locust_args = [*locust_args, "--tls", str(self.pki)]
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
        measured = Measured(label, server, wanted, wanted_text, result, mode)
        say(measured.row())
        return measured

    def _timing(self) -> list[str]:
        """Run for the warm-up and then the measured seconds; statistics start over after the warm-up."""
        warmup, seconds = self.args.warmup_seconds, self.args.step_seconds
        return ["--warmup-seconds", f"{warmup:g}", "-t", f"{warmup + seconds:g}s"]

    def closed_loop(self, server: str, mode: str) -> Measured:
        users = str(self.args.ceiling_users)
        locust_args = ["--user-rate", "0", "-u", users, "-r", users, *self._timing()]
        wanted = f"closed loop, {users} users"
        return self.run(f"ceiling {server}", server, "steady", locust_args, None, wanted, mode)

    def steady(self, rate: float, mode: str, server: str = "hub") -> Measured:
        users = users_for_rate(rate, self.args.user_rate)
        locust_args = [
            "--user-rate", f"{self.args.user_rate:g}",
            "-u", str(users), "-r", str(users),
            *self._timing(),
        ]  # fmt: skip
        label = f"steady {rate:.0f}" if server == "hub" else f"steady {rate:.0f} vs echo"
        return self.run(label, server, "steady", locust_args, rate, f"{rate:.0f}/s, {users} users", mode)

    def meal_rush(self, peak: float, mode: str) -> Measured:
        locust_args = [
            "--user-rate", f"{self.args.user_rate:g}",
            "--peak-rate", f"{peak:g}",
            "--shape-seconds", f"{self.args.rush_seconds:g}",
        ]  # fmt: skip
        wanted = f"peak {peak:.0f}/s, {self.args.rush_seconds:g} s"
        return self.run(f"meal-rush {peak:.0f}", "hub", "meal-rush", locust_args, None, wanted, mode)


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


def measure(args: argparse.Namespace, children: Children, out: Path, work: Path) -> dict[str, Any]:
    load = os.getloadavg()[0]
    if load > 0.5:
        say(
            f"warning: load average {load:.2f} before starting: something else is running, "
            "the figures will be off"
        )
    started = time.monotonic()
    campus = prepare(work / "campus", students=args.students)
    pki = make_pki(campus.keys, work / "pki") if args.tls else None
    modes = ["plain", "tls"] if args.tls else ["plain"]
    say(
        f"seeded {args.students} students; pinned: {children.pin} (server CPU 0, Locust CPU 1); "
        f"modes: {', '.join(modes)}"
    )
    say(f"hub code: {code_version()}")
    bench = Bench(args, children, campus, out, pki)
    say()
    say(RUN_HEADER)
    echo = {} if args.skip_echo else {mode: bench.closed_loop("echo", mode) for mode in modes}
    hub = {mode: bench.closed_loop("hub", mode) for mode in modes}
    if hub["plain"].limits == "others" and not args.rates:
        say(
            f"!!! the hub's ceiling was measured while the rest of the machine used "
            f"{100 * hub['plain'].result.cpu.get('others', 0.0):.0f}% of a CPU: the steps made from it are "
            "off (re-run on a quiet machine, or give the rates with --rates)"
        )
    series = {mode: Series(mode, []) for mode in modes}
    for rate in step_rates(args, hub["plain"].total.rps):  # the same rates for both modes, side by side
        for mode in modes:
            if not series[mode].done:
                series[mode].add(bench.steady(rate, mode), args.p99_ms)
        if all(run.done for run in series.values()):
            break
    for run in series.values():
        failed = run.first_failure(args.p99_ms)
        if failed is not None and failed.wanted_rate and not args.skip_echo:
            run.echo_check = bench.steady(failed.wanted_rate, run.mode, server="echo")
    rushes: dict[str, Measured] = {}
    for mode, run in series.items():
        peak = args.rush_peak or (run.best.wanted_rate if run.best is not None else None)
        if peak:
            rushes[mode] = bench.meal_rush(peak, mode)
    say()
    said = verdicts(args, echo, hub, series)
    for line in said:
        say(line)
    for mode, run in series.items():
        say(
            f"[{mode}] steps that passed: "
            + (", ".join(f"{m.wanted_rate:.0f}" for m in run.steps if m.passed(args.p99_ms)) or "none")
        )
    for mode, rush in rushes.items():
        say(f"[{mode}] meal rush, {rush.wanted_text}, per scene (approved taps):")
        say(per_scene(rush.result))
    say(f"measured in {time.monotonic() - started:.0f} s; results in {out}")
    runs = [*echo.values(), *hub.values(), *(m for run in series.values() for m in run.steps)]
    runs += [run.echo_check for run in series.values() if run.echo_check is not None]
    runs += list(rushes.values())
    report: dict[str, Any] = {
        "date": time.strftime("%Y-%m-%d %H:%M:%S %z"),
        "code": code_version(),
        "args": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()},
        "pinned": children.pin,
        "load_average_before": round(load, 2),
        "modes": {
            mode: {
                "echo_ceiling": echo[mode].as_json() if mode in echo else None,
                "hub_ceiling": hub[mode].as_json(),
                "steps": [step.as_json() for step in series[mode].steps],
                "best_steady_rate": best.wanted_rate if (best := series[mode].best) else None,
                "echo_check": check.as_json() if (check := series[mode].echo_check) else None,
                "meal_rush": rushes[mode].as_json() if mode in rushes else None,
            }
            for mode in modes
        },
        "verdicts": said,
    }
    lines = [RUN_HEADER, *(m.row() for m in runs), "", *said, f"hub code: {report['code']}"]
    for mode, rush in rushes.items():
        lines += ["", f"meal rush ({mode}), {rush.wanted_text}:", "", per_scene(rush.result)]
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
    parser.add_argument(
        "--skip-echo",
        action="store_true",
        help="skip Locust's runs against the do-nothing server (its ceiling, the check of the first "
        "failed step)",
    )
    parser.add_argument(
        "--tls",
        action="store_true",
        help="measure over mutual TLS too (a PKI made for the campus): every run plain, then TLS, "
        "side by side",
    )
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
