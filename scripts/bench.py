"""The performance benchmark of OneCard Hub: `make bench`.

Measures the hub's authorization throughput against a do-nothing grpc.aio server answering the same
messages to the same client, on this machine, in one run:

1. seeds a campus once (`onecard-hub seed`, 20,000 students, balances and limits sized so that the
   traffic is approved) into a temporary folder;
2. per round, runs the hub (on a fresh copy of the seeded database, simulated clock at speed 1 starting
   inside the lunch window) and the do-nothing server (`scripts/echo_server.py`), one after the other,
   the order alternating from round to round; the server is pinned to CPU 0, the load generator
   (`scripts/_bench_load.py`, one grpc.aio channel on uvloop) to CPU 1;
3. the load generator runs a closed loop (`--inflight` calls in flight, throughput) and an open loop
   (`--rate` calls per second, latency from each call's scheduled send time), with 60% canteen purchases
   and 40% gate taps, half chip taps and half e-card QR scans, every request prebuilt before its phase;
4. prints a table per round, then the medians: throughput ratio = median of the per-round ratios
   hub/echo, p99 at the fixed rate = median over rounds. When the bench completes, its last line is

     bench: hub_rps=<n> echo_rps=<n> ratio=<hub/echo> p99_ms_at_1000=<ms> echo_p99_ms_at_1000=<ms>

With `--metrics` each round also runs the hub with `--metrics-listen` ("hub+metrics"), and with `--tracing`
the hub with `--trace-file` ("hub+tracing"), alternated with the others in the same run; the rounds print
their ratio to echo and every hub's CPU per call (µs, from the open loop: the same rate for every server),
and the final line gains `metrics_ratio=… hub_cpu_us=… metrics_cpu_us=…` (and `tracing_…`) after its
usual fields. Telemetry's cost is the difference in CPU per call between hub and hub+metrics.

The hub's approval share is printed per run; below 95% the output says so loudly and the exit status is 3
(cheap declines would flatter the ratio). The seed keeps its default anomalies (1% lost cards, 1% suspended
students), so about 2% of the taps are declined on purpose, as in a real rush. `--echo-only` runs the
do-nothing server on both sides (with a synthetic campus, no hub needed): a check of the bench itself and
of the machine's noise.

    .venv/bin/python scripts/bench.py                 # 5 rounds, about 5 minutes
    .venv/bin/python scripts/bench.py --rounds 2 --keep
    .venv/bin/python scripts/bench.py --metrics --tracing   # telemetry's cost, measured in the same run
"""

from __future__ import annotations

import argparse
import ctypes
import json
import os
import shlex
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from types import FrameType
from typing import Any

SCRIPTS = Path(__file__).resolve().parent
CLOCK_START = "2026-11-24T12:00:00+08:00"  # a Tuesday, inside the lunch window (10:45-13:30)
SERVER_CPU = 0
CLIENT_CPU = 1
MIN_APPROVAL_SHARE = 0.95
EXIT_LOW_APPROVAL = 3
# The hub with telemetry on (--metrics, --tracing): its flags besides those of the plain hub.
VARIANTS = {"hub+metrics": ("--metrics-listen", "127.0.0.1:0"), "hub+tracing": ("--trace-file",)}
SEED_ARGS = (
    "--schools", "2",
    "--initial-balance-fen", "1000000",
    "--daily-limit-fen", "1000000",
    "--meal-count-limit", "1000",
)  # fmt: skip


def say(message: str = "") -> None:
    print(message, flush=True)


# -- child processes: pinned, logged, never left behind ------------------------------------------


def _die_with_parent() -> None:
    """Runs in the child before exec: SIGTERM it when the bench process dies, even by kill -9."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


class Children:
    """Every process the bench starts; `stop_all` ends them (SIGTERM, then SIGKILL)."""

    def __init__(self) -> None:
        self._procs: list[subprocess.Popen[bytes]] = []
        self.pin = self._can_pin()

    @staticmethod
    def _can_pin() -> bool:
        if shutil.which("taskset") is None:
            say("note: taskset not found: server and load generator are not pinned to separate CPUs")
            return False
        cpus = os.sched_getaffinity(0) if hasattr(os, "sched_getaffinity") else set()
        if not {SERVER_CPU, CLIENT_CPU} <= cpus:
            say(f"note: CPUs {SERVER_CPU} and {CLIENT_CPU} are not both available: no pinning")
            return False
        return True

    def start(self, argv: list[str], *, log: Path, cpu: int | None) -> subprocess.Popen[bytes]:
        if cpu is not None and self.pin:
            argv = ["taskset", "-c", str(cpu), *argv]
        env = {**os.environ, "PYTHONUNBUFFERED": "1"}
        with log.open("ab") as out:
            out.write(f"$ {shlex.join(argv)}\n".encode())
            out.flush()
            proc = subprocess.Popen(
                argv,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                env=env,
                start_new_session=True,  # Ctrl-C reaches the bench only; the bench stops its children
                preexec_fn=_die_with_parent,  # the bench starts no threads
            )
        self._procs.append(proc)
        return proc

    def stop(self, proc: subprocess.Popen[bytes], grace: float = 15.0) -> int | None:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=grace)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        if proc in self._procs:
            self._procs.remove(proc)
        return proc.returncode

    def stop_all(self) -> None:
        for proc in list(self._procs):
            self.stop(proc, grace=5.0)


def _tail(log: Path, lines: int = 25) -> str:
    try:
        text = log.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return ""
    return "\n".join("    " + line for line in text.splitlines()[-lines:])


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _wait_listening(proc: subprocess.Popen[bytes], log: Path, what: str, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        output = log.read_text(encoding="utf-8", errors="replace").partition("\n")[2]  # after "$ argv"
        if "listening" in output:
            return
        if proc.poll() is not None:
            raise BenchError(f"{what} exited with status {proc.returncode} before listening:\n{_tail(log)}")
        time.sleep(0.05)
    raise BenchError(f"{what} did not say 'listening' within {timeout:.0f} s:\n{_tail(log)}")


class BenchError(RuntimeError):
    """Something the bench needs did not work; the message says what and shows the log."""


# -- the campus ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Setup:
    work: Path
    python: str
    hub: list[str] | None  # the hub's command line before its subcommand; None with --echo-only
    seed_db: Path
    keys: Path


def hub_command(python: str) -> list[str]:
    """`onecard-hub` as installed beside the interpreter, run by that interpreter."""
    script = Path(python).parent / "onecard-hub"
    if script.is_file():
        return [python, str(script)]
    found = shutil.which("onecard-hub")
    if found:
        return [found]
    raise BenchError(
        f"onecard-hub is not installed beside {python} (run `make venv`); "
        "--echo-only checks the bench without a hub"
    )


def seed_campus(children: Children, hub: list[str], folder: Path, students: int) -> tuple[Path, Path]:
    db = folder / "hub.db"
    log = folder / "seed.log"
    argv = [*hub, "seed", "--db", str(db), "--students", str(students), *SEED_ARGS, "--quiet"]
    started = time.monotonic()
    proc = children.start(argv, log=log, cpu=None)
    status = proc.wait()
    children.stop(proc)
    if status != 0:
        raise BenchError(f"seeding failed with status {status}:\n{_tail(log)}")
    keys = db.with_name(db.stem + ".keys")
    if not (keys / "credentials.json").is_file():
        raise BenchError(f"seeding wrote no {keys}/credentials.json:\n{_tail(log)}")
    say(f"seeded {students} students in {time.monotonic() - started:.1f} s")
    return db, keys


def synthetic_campus(keys: Path, students: int, schools: int = 2) -> None:
    """A credentials export for --echo-only runs, in the layout `onecard-hub seed` writes."""
    import secrets

    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    keys.mkdir(parents=True)
    signing = Ed25519PrivateKey.generate()
    (keys / "ecard_signing_key.pem").write_bytes(
        signing.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    (keys / "ecard_public_key.pem").write_bytes(
        signing.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    )
    school_ids = [f"36070{i + 1}" for i in range(schools)]
    terminals = []
    for school in school_ids:
        for n in range(4):
            group = "main" if n < 2 else "side"
            terminals.append(
                {
                    "terminal_id": f"G{school}{n:02d}",
                    "school_id": school,
                    "kind": "gate",
                    "gate_group": group,
                    "merchant_id": "",
                }
            )
        for n in range(16):
            terminals.append(
                {
                    "terminal_id": f"P{school}{n:02d}",
                    "school_id": school,
                    "kind": "canteen_pos",
                    "gate_group": "",
                    "merchant_id": f"M{school}{n % 4}",
                }
            )
    cards = [
        {
            "card_no": f"{school_ids[i % schools]}{i:010d}",
            "school_id": school_ids[i % schools],
            "student_group": "boarder" if i % 3 else "day",
            "card_key": secrets.token_hex(32),
            "ecard_key": secrets.token_hex(32),
            "pin": f"{i % 1_000_000:06d}",
            "atc": i % 50,
        }
        for i in range(students)
    ]
    schools_doc = [{"school_id": s} for s in school_ids]
    doc = {"schools": schools_doc, "terminals": terminals, "operators": [], "cards": cards}
    (keys / "credentials.json").write_text(json.dumps(doc), encoding="utf-8")


# -- one server run --------------------------------------------------------------------------------


@dataclass(frozen=True)
class RunResult:
    server: str  # "hub" | "echo"
    round: int
    report: dict[str, Any]

    @property
    def closed(self) -> dict[str, Any]:
        closed: dict[str, Any] = self.report.get("closed", {})
        return closed

    @property
    def open(self) -> dict[str, Any]:
        opened: dict[str, Any] = self.report.get("open", {})
        return opened

    @property
    def rps(self) -> float:
        return float(self.closed.get("rps", 0.0))

    @property
    def p99_ms(self) -> float | None:
        value = self.open.get("p99_ms")
        return None if value is None else float(value)

    def decisions(self) -> tuple[int, Counter[str]]:
        """Calls made over both phases, and how they ended (APPROVED, decline reasons, gRPC codes)."""
        outcomes: Counter[str] = Counter()
        for phase in (self.closed, self.open):
            outcomes.update(phase.get("decisions", {}))
            outcomes.update({f"grpc:{k}": v for k, v in phase.get("errors", {}).items()})
        return sum(outcomes.values()), outcomes

    @property
    def approval_share(self) -> float:
        total, outcomes = self.decisions()
        return outcomes["APPROVED"] / total if total else 0.0

    @property
    def cpu_us_per_call(self) -> float | None:
        """The server's CPU per call in the open loop (the same rate for every server), in µs."""
        share, rps = self.open.get("server_cpu"), self.open.get("achieved_rps")
        return None if share is None or not rps else 1e6 * float(share) / float(rps)


def run_server(
    args: argparse.Namespace, setup: Setup, children: Children, server: str, round_no: int
) -> RunResult:
    folder = setup.work / f"round{round_no}-{server}"
    folder.mkdir()
    port = _free_port()
    listen = f"127.0.0.1:{port}"
    clock = ["--clock-start", CLOCK_START, "--clock-speed", "1"]
    if server.startswith("hub") and setup.hub is not None:
        db = folder / "hub.db"
        for suffix in ("", "-wal", "-shm"):
            source = Path(f"{setup.seed_db}{suffix}")
            if source.exists():
                shutil.copyfile(source, f"{db}{suffix}")
        argv = [*setup.hub, "serve", "--db", str(db), "--keys", str(setup.keys), "--listen", listen, *clock]
        argv += VARIANTS.get(server, ())
        if server == "hub+tracing":
            argv.append(str(folder / "traces.jsonl"))
        what = f"the hub ({server})" if server != "hub" else "the hub"
    else:
        argv = [setup.python, str(SCRIPTS / "echo_server.py"), "--listen", listen, *clock]
        what = "the do-nothing server"
    server_log = folder / "server.log"
    proc = children.start(argv, log=server_log, cpu=SERVER_CPU)
    try:
        _wait_listening(proc, server_log, what, timeout=args.start_timeout)
        out = folder / "load.json"
        load_log = folder / "load.log"
        load_argv = [
            setup.python, str(SCRIPTS / "_bench_load.py"),
            "--target", listen,
            "--keys", str(setup.keys),
            "--out", str(out),
            "--label", f"round {round_no} {server}",
            "--closed-seconds", str(args.closed_seconds),
            "--warmup-seconds", str(args.warmup_seconds),
            "--inflight", str(args.inflight),
            "--max-rps", str(args.max_rps),
            "--open-seconds", str(args.open_seconds),
            "--rate", str(args.rate),
            "--server-pid", str(proc.pid),
            "--seed", str(round_no),
        ]  # fmt: skip
        budget = 120.0 + 3 * (args.warmup_seconds + args.closed_seconds + args.open_seconds)
        load = children.start(load_argv, log=load_log, cpu=CLIENT_CPU)
        try:
            status = load.wait(timeout=budget)
        except subprocess.TimeoutExpired:
            raise BenchError(f"the load generator took over {budget:.0f} s:\n{_tail(load_log)}") from None
        finally:
            children.stop(load)
        if status != 0 or not out.is_file():
            raise BenchError(f"the load generator failed with status {status}:\n{_tail(load_log)}")
        if proc.poll() is not None:
            raise BenchError(f"{what} died during the run (status {proc.returncode}):\n{_tail(server_log)}")
        report: dict[str, Any] = json.loads(out.read_text(encoding="utf-8"))
    finally:
        children.stop(proc)
    return RunResult(server, round_no, report)


# -- printing --------------------------------------------------------------------------------------


def _ms(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}"


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{100 * value:.0f}%"


HEADER = (
    f"  {'server':<6} {'rps':>7} {'p50':>7} {'p99':>7} {'cpu s/c':>9} │ {'sent/s':>7} {'p50':>6} "
    f"{'p99':>6} {'max':>7} {'lag99':>6} {'cpu s/c':>9} │ {'approved':>8}  not approved"
)


def _row(run: RunResult) -> str:
    c, o = run.closed, run.open
    _, outcomes = run.decisions()
    others = ", ".join(f"{k}={v}" for k, v in outcomes.most_common() if k != "APPROVED") or "none"
    closed_cpu = f"{_pct(c.get('server_cpu'))}/{_pct(c.get('client_cpu'))}"
    open_cpu = f"{_pct(o.get('server_cpu'))}/{_pct(o.get('client_cpu'))}"
    line = (
        f"  {run.server:<6} {run.rps:>7.0f} {_ms(c.get('p50_ms')):>7} {_ms(c.get('p99_ms')):>7} "
        f"{closed_cpu:>9} │ {o.get('achieved_rps', 0):>7.0f} {_ms(o.get('p50_ms')):>6} "
        f"{_ms(o.get('p99_ms')):>6} {_ms(o.get('max_ms')):>7} {_ms(o.get('send_lag_p99_ms')):>6} "
        f"{open_cpu:>9} │ {100 * run.approval_share:>7.2f}%  {others}"
    )
    if c.get("exhausted"):
        line += (
            f"\n  !!! {run.server}: the closed loop used up its {c.get('prebuilt')} prebuilt requests "
            "before its time was up: raise --max-rps"
        )
    return line


def print_round(runs: list[RunResult], rounds: int) -> None:
    round_no = runs[0].round
    hub = next(r for r in runs if r.server == "hub")
    echo = next(r for r in runs if r.server == "echo")
    say(f"round {round_no}/{rounds}   closed loop (ms) │ open loop (ms, from scheduled send) │ decisions")
    say(HEADER)
    for run in runs:
        say(_row(run))
    say(f"  ratio hub/echo = {hub.rps / echo.rps:.3f}" if echo.rps else "  ratio hub/echo = -")
    for run in runs:
        if run.server in VARIANTS:
            say(f"  ratio {run.server}/echo = {run.rps / echo.rps:.3f}" if echo.rps else f"  {run.server}: -")
    if len(runs) > 2:
        cpu = ", ".join(f"{r.server} {_us(r.cpu_us_per_call)}" for r in runs if r.server.startswith("hub"))
        say(f"  server CPU per call (open loop): {cpu}")
    if hub.approval_share < MIN_APPROVAL_SHARE:
        say(
            f"  !!! APPROVAL SHARE {100 * hub.approval_share:.2f}% IS BELOW {100 * MIN_APPROVAL_SHARE:.0f}%: "
            "declines are cheap and flatter the hub's figures; check the seed and the traffic"
        )
    say()


def _median(values: list[float]) -> float | None:
    return statistics.median(values) if values else None


def _us(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f} µs"


def _variants(results: list[RunResult], rounds: list[int], echo: dict[int, RunResult]) -> str:
    """The medians of the telemetry variants (--metrics, --tracing), printed; their `bench:` fields."""
    hub_cpu = _median([c for n in rounds for r in results if r.round == n and r.server == "hub"
                       if (c := r.cpu_us_per_call) is not None])  # fmt: skip
    fields = []
    for variant in VARIANTS:
        runs = {r.round: r for r in results if r.server == variant}
        if not runs:
            continue
        key = variant.removeprefix("hub+")
        ratio = _median([runs[n].rps / echo[n].rps for n in rounds if echo[n].rps > 0]) or 0.0
        cpu = _median([c for n in rounds if (c := runs[n].cpu_us_per_call) is not None])
        added = None if cpu is None or hub_cpu is None else cpu - hub_cpu
        say(
            f"  {variant}: ratio {ratio:.3f}, CPU per call {_us(cpu)} against the hub's {_us(hub_cpu)}"
            f" (+{_us(added)})"
        )
        fields.append(f"{key}_ratio={ratio:.2f} {key}_cpu_us={'-' if cpu is None else f'{cpu:.1f}'}")
    if not fields:
        return ""
    return f" hub_cpu_us={'-' if hub_cpu is None else f'{hub_cpu:.1f}'} " + " ".join(fields)


def summarize(results: list[RunResult], echo_only: bool) -> tuple[str, bool]:
    """Prints the medians; returns the final `bench:` line and whether the approval share was low."""
    rounds = sorted({r.round for r in results})
    hub = {r.round: r for r in results if r.server == "hub"}
    echo = {r.round: r for r in results if r.server == "echo"}
    ratios = [hub[n].rps / echo[n].rps for n in rounds if echo[n].rps > 0]
    hub_rps = _median([hub[n].rps for n in rounds]) or 0.0
    echo_rps = _median([echo[n].rps for n in rounds]) or 0.0
    ratio = _median(ratios) or 0.0
    hub_p99 = _median([p for n in rounds if (p := hub[n].p99_ms) is not None])
    echo_p99 = _median([p for n in rounds if (p := echo[n].p99_ms) is not None])
    shares = [hub[n].approval_share for n in rounds]
    low = min(shares) < MIN_APPROVAL_SHARE
    name = "echo(as hub)" if echo_only else "hub"
    say(f"medians over {len(rounds)} rounds:")
    say(
        f"  {name} {hub_rps:.0f} rps, echo {echo_rps:.0f} rps; paired ratios: "
        + " ".join(f"{x:.3f}" for x in ratios)
    )
    spread = f"{min(ratios):.3f}..{max(ratios):.3f}" if ratios else "-"
    say(f"  ratio (median of paired ratios) = {ratio:.3f}   spread {spread}")
    rate = hub[rounds[0]].open.get("rate", 0)
    say(f"  p99 at {rate:.0f}/s: {name} {_ms(hub_p99)} ms, echo {_ms(echo_p99)} ms")
    say(f"  {name} approval share: " + " ".join(f"{100 * s:.2f}%" for s in shares))
    if echo_only:
        say("  (--echo-only: both sides are the do-nothing server; the ratio shows the bench's own noise)")
    if low:
        say(
            f"!!! THE HUB APPROVED LESS THAN {100 * MIN_APPROVAL_SHARE:.0f}% OF THE CALLS IN SOME RUN: "
            "THE FIGURES BELOW ARE NOT VALID (exit status 3)"
        )
    line = (
        f"bench: hub_rps={hub_rps:.0f} echo_rps={echo_rps:.0f} ratio={ratio:.2f} "
        f"p99_ms_at_1000={_ms(hub_p99)} echo_p99_ms_at_1000={_ms(echo_p99)}"
    )
    return line + _variants(results, rounds, echo), low


# -- main ------------------------------------------------------------------------------------------


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rounds", type=int, default=5, help="hub/echo pairs (default 5)")
    parser.add_argument("--students", type=int, default=20_000, help="students to seed (default 20000)")
    parser.add_argument("--closed-seconds", type=float, default=8.0, help="measured closed loop (default 8)")
    parser.add_argument("--warmup-seconds", type=float, default=1.0, help="closed-loop warm-up (default 1)")
    parser.add_argument("--open-seconds", type=float, default=10.0, help="open loop (default 10)")
    parser.add_argument(
        "--rate", type=float, default=1000.0, help="open-loop calls per second (default 1000)"
    )
    parser.add_argument("--inflight", type=int, default=64, help="closed-loop calls in flight (default 64)")
    parser.add_argument(
        "--max-rps",
        type=float,
        default=8000.0,
        help="closed loop: requests prebuilt per second of the phase (default 8000)",
    )
    parser.add_argument("--python", default=sys.executable, help="interpreter for the subprocesses")
    parser.add_argument(
        "--keep", action="store_true", help="keep the temporary folder (logs, JSON, databases)"
    )
    parser.add_argument(
        "--echo-only",
        action="store_true",
        help="run the do-nothing server on both sides (no hub needed): checks the bench",
    )
    parser.add_argument("--start-timeout", type=float, default=120.0, help="seconds for a server to listen")
    parser.add_argument(
        "--metrics",
        action="store_true",
        help="also run the hub with --metrics-listen each round (hub+metrics): the cost of metrics",
    )
    parser.add_argument(
        "--tracing",
        action="store_true",
        help="also run the hub with --trace-file each round (hub+tracing): the cost of tracing every call",
    )
    args = parser.parse_args(argv)
    if args.echo_only and (args.metrics or args.tracing):
        parser.error("--metrics and --tracing measure the hub: not with --echo-only")
    if args.rounds < 1 or args.inflight < 1 or args.rate <= 0 or args.students < 1:
        parser.error("--rounds, --inflight, --rate and --students must be positive")
    if args.closed_seconds <= 0 or args.open_seconds <= 0:
        parser.error("--closed-seconds and --open-seconds must be positive")
    if args.warmup_seconds + args.closed_seconds > 40 or args.open_seconds > 40:
        parser.error("a phase must stay under 40 s: its QR tokens expire 60 s after minting")
    return args


class Signalled(BaseException):
    """SIGINT, SIGTERM or SIGHUP reached the bench: stop the children, clean up, exit 128 + signum."""

    def __init__(self, signum: int) -> None:
        super().__init__(signum)
        self.signum = signum


def _raise_on_signal(signum: int, frame: FrameType | None) -> None:
    raise Signalled(signum)


def bench(args: argparse.Namespace, children: Children, work: Path) -> tuple[str, bool]:
    seed_folder = work / "seed"
    seed_folder.mkdir()
    hub: list[str] | None
    if args.echo_only:
        hub = None
        seed_db, keys = seed_folder / "hub.db", seed_folder / "hub.keys"
        synthetic_campus(keys, args.students)
        say(f"--echo-only: synthetic campus of {args.students} cards; the do-nothing server plays the hub")
    else:
        hub = hub_command(args.python)
        seed_db, keys = seed_campus(children, hub, seed_folder, args.students)
    setup = Setup(work, args.python, hub, seed_db, keys)
    pinned = f"server on CPU {SERVER_CPU}, load on CPU {CLIENT_CPU}" if children.pin else "not pinned"
    say(
        f"{args.rounds} rounds; closed loop {args.inflight} in flight for {args.closed_seconds:g} s "
        f"(+{args.warmup_seconds:g} s warm-up); open loop {args.rate:g}/s for {args.open_seconds:g} s; "
        f"{pinned}"
    )
    say("columns: closed-loop rps, p50, p99 (ms), CPU server/client │ open loop sent/s, p50, p99, max,")
    say("         send lag p99 (ms), CPU server/client │ approval share over both phases, other outcomes")
    say()
    results: list[RunResult] = []
    servers = ["hub", "echo"]
    servers += [v for v, on in (("hub+metrics", args.metrics), ("hub+tracing", args.tracing)) if on]
    for round_no in range(1, args.rounds + 1):
        if len(servers) == 2:
            order = servers if round_no % 2 else servers[::-1]
        else:  # each server in each place in turn
            shift = (round_no - 1) % len(servers)
            order = servers[shift:] + servers[:shift]
        runs = [run_server(args, setup, children, server, round_no) for server in order]
        results.extend(runs)
        print_round(runs, args.rounds)
    return summarize(results, args.echo_only)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(signum, _raise_on_signal)
    children = Children()
    work = Path(tempfile.mkdtemp(prefix="onecard-bench-"))
    line: str | None = None
    low = False
    status = 1
    try:
        line, low = bench(args, children, work)
    except BenchError as exc:
        say(f"bench failed: {exc}")
    except Signalled as exc:
        say(f"bench stopped by {signal.Signals(exc.signum).name}")
        status = 128 + exc.signum
    finally:
        children.stop_all()
        if args.keep:
            say(f"kept {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)
    if line is None:
        return status
    say(line)
    return EXIT_LOW_APPROVAL if low else 0


if __name__ == "__main__":
    sys.exit(main())
