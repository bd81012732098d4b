"""`make loadtest`: a short headless Locust run against a freshly seeded local hub.

1. seeds a campus (`prepare`, 4,000 students by default) into a temporary folder;
2. starts `onecard-hub serve` on it on a free local port, on a simulated clock at speed 1 inside the
   rush's window (lunch for the meal rush and the steady load, 07:30 for the morning gates), so it works
   at any real hour; plain text, or mutual TLS with `--tls DIR` (the PKI in DIR, made there for the
   campus when DIR has none: `onecard-hub pki init` and `issue-all`), each Locust user then presenting
   the certificate of the terminal it plays;
3. runs Locust headless with the shape's locustfile (`loadtest/meal_rush.py` by default) and writes its
   CSV statistics and HTML report into the results folder, with the hub's and Locust's logs;
4. stops the hub and prints the statistics.

Exit status 0 only when Locust exited 0, made requests, and none failed (gRPC errors and unexpected
answers are failures; declines are not).

    .venv/bin/python -m onecard_load.run                            # loadtest/results/<timestamp>/
    .venv/bin/python -m onecard_load.run --shape morning-gate --rate 400 --seconds 60
    .venv/bin/python -m onecard_load.run --shape steady --rate 300 --seconds 20 --processes 2
    .venv/bin/python -m onecard_load.run --tls /tmp/onecard-pki            # over mutual TLS

`--client-tls DIR2` makes the users present DIR2's terminal certificates instead, still trusting the
hub's CA: another PKI's certificates, which the hub must refuse (the run then fails).
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
from pathlib import Path

from onecard_load.headless import LOCUSTFILES, LocustResult, run_locust
from onecard_load.prepare import PrepareError, make_pki, prepare
from onecard_load.processes import SERVER_CPU, Children, StartError, hub_command, tail, wait_listening
from onecard_load.profiles import LUNCH_CLOCK_START, PROFILES, users_for_rate
from onecard_load.stats import table

__all__ = ["main", "results_folder"]

RESULTS = Path("loadtest/results")


def results_folder(root: Path = RESULTS) -> Path:
    """A new folder `root`/<YYYYmmdd-HHMMSS>/ (with a suffix when that second is taken)."""
    stamp = time.strftime("%Y%m%d-%H%M%S")
    folder = root / stamp
    n = 1
    while folder.exists():
        n += 1
        folder = root / f"{stamp}-{n}"
    folder.mkdir(parents=True)
    return folder


def locust_args(args: argparse.Namespace) -> list[str]:
    """Locust's options for the chosen shape: a shape reads --rate as its peak; steady load is -u/-r/-t."""
    common = ["--user-rate", f"{args.user_rate:g}", "--exit-code-on-error", "1"]
    client_tls = args.client_tls or args.tls
    if client_tls is not None:
        common += ["--tls", str(client_tls)]
    if args.processes:
        common += ["--processes", str(args.processes)]
    if args.shape == "steady":
        users = users_for_rate(args.rate, args.user_rate)
        common += ["-u", str(users), "-r", str(users), "-t", f"{args.seconds:g}s"]
    else:
        common += ["--peak-rate", f"{args.rate:g}", "--shape-seconds", f"{args.seconds:g}"]
    return [*common, *args.locust_arg]


def summarize(result: LocustResult, folder: Path) -> tuple[str, bool]:
    total = result.total
    taps = result.approved + result.declined
    share = result.approved / taps if taps else 0.0
    ok = result.status == 0 and total.requests > 0 and total.failures == 0
    verdict = "ok" if ok else "FAILED"
    line = (
        f"loadtest: {verdict} requests={total.requests} failures={total.failures} "
        f"approved={result.approved} declined={result.declined} ({100 * share:.1f}% approved) "
        f"p50_ms={total.p50_ms} p99_ms={total.p99_ms} results={folder}"
    )
    return line, ok


def run(args: argparse.Namespace, children: Children, folder: Path, work: Path) -> tuple[str, bool]:
    campus = prepare(work, students=args.students, force=True)
    print(f"seeded {args.students} students into {work}", flush=True)
    clock_start = PROFILES[args.shape].clock_start if args.shape in PROFILES else LUNCH_CLOCK_START
    hub_log = folder / "hub.log"
    argv = [*hub_command(), "serve", "--db", str(campus.db), "--listen", "127.0.0.1:0"]
    argv += ["--clock-start", clock_start, "--clock-speed", "1"]
    if args.tls is not None:
        argv += ["--tls", str(make_pki(campus.keys, args.tls))]
    if args.client_tls is not None:
        # The users trust the hub's CA, but present the terminal certificates of the other PKI.
        client = work / "client-pki"
        shutil.copytree(make_pki(campus.keys, args.client_tls) / "terminals", client / "terminals")
        shutil.copyfile(args.tls / "ca.crt", client / "ca.crt")
        args.client_tls = client
    hub = children.start(argv, log=hub_log, cpu=SERVER_CPU)
    target = wait_listening(hub, hub_log, "the hub")
    mode = "plain text" if args.tls is None else f"mutual TLS, PKI {args.tls}"
    print(
        f"hub listening on {target} ({mode}; hub time {clock_start}); running Locust ({args.shape})",
        flush=True,
    )
    result = run_locust(
        children,
        shape=args.shape,
        target=target,
        keys=campus.keys,
        csv_prefix=folder / "locust",
        html=folder / "report.html",
        locust_args=locust_args(args),
        server_pid=hub.pid,
        timeout=args.seconds + 300.0,
    )
    if hub.poll() is not None:
        raise StartError(f"the hub died during the run (status {hub.returncode}):\n{tail(hub_log)}")
    children.stop(hub)
    text = table(result.rows)
    (folder / "summary.md").write_text(text + "\n", encoding="utf-8")
    print(text)
    if result.status != 0:
        print(f"Locust exited with status {result.status}; its log: {result.log}\n{tail(result.log, 15)}")
    return summarize(result, folder)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--shape", choices=sorted(LOCUSTFILES), default="meal-rush", help="[meal-rush]")
    parser.add_argument("--rate", type=float, default=200.0, help="taps/s: peak of a shape, or steady [200]")
    parser.add_argument("--seconds", type=float, default=30.0, help="length of the run [30]")
    parser.add_argument("--user-rate", type=float, default=10.0, help="taps/s of one user [10]")
    parser.add_argument("--students", type=int, default=4_000, help="students (cards) to seed [4000]")
    parser.add_argument("--processes", type=int, default=0, help="Locust --processes (0: one process)")
    parser.add_argument("--out", type=Path, default=None, help="results folder [loadtest/results/<time>/]")
    parser.add_argument("--pin", action="store_true", help="hub on CPU 0, Locust on CPU 1 (taskset)")
    parser.add_argument(
        "--tls",
        type=Path,
        default=None,
        metavar="DIR",
        help="mutual TLS: the hub serves with the PKI in DIR (made there when missing), the users present "
        "their terminals' certificates from it [plain text]",
    )
    parser.add_argument(
        "--client-tls",
        type=Path,
        default=None,
        metavar="DIR",
        help="the users present the terminal certificates of this PKI instead of --tls's (made when "
        "missing): a check that the hub refuses another CA's certificates",
    )
    parser.add_argument(
        "--locust-arg", action="append", default=[], help="one more argument for Locust (repeatable)"
    )
    args = parser.parse_args(argv)
    if args.client_tls is not None and args.tls is None:
        parser.error("--client-tls needs --tls (a hub serving mutual TLS)")
    if args.rate <= 0 or args.seconds <= 0 or args.user_rate <= 0 or args.students < 1:
        parser.error("--rate, --seconds, --user-rate and --students must be positive")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    folder = args.out if args.out is not None else results_folder()
    folder.mkdir(parents=True, exist_ok=True)
    children = Children(pin=args.pin)
    work = Path(tempfile.mkdtemp(prefix="onecard-loadtest-"))
    try:
        line, ok = run(args, children, folder, work)
    except (StartError, PrepareError) as exc:
        print(f"loadtest: FAILED: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("loadtest: interrupted", file=sys.stderr)
        return 130
    finally:
        children.stop_all()
        shutil.rmtree(work, ignore_errors=True)
    print(line)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
