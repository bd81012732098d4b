"""The performance benchmark of OneCard Hub: `make bench`.

Measures the hub's authorization throughput against a do-nothing grpc.aio server answering the same
messages to the same client, on this machine, in one run, and measures in the same run how far such a
comparison can be believed here:

1. seeds a campus once (`onecard-hub seed`, 20,000 students, balances and limits sized so that the
   traffic is approved) into a temporary folder;
2. starts every server once, each pinned to CPU 0: the hub (simulated clock at speed 1 starting inside
   the lunch window), the do-nothing server (`scripts/echo_server.py`, "echo") and its twin ("echo2"),
   and with `--metrics`/`--tracing` the hub with telemetry on; then one load generator pinned to CPU 1
   (`scripts/_bench_load.py`, a grpc.aio channel per server on uvloop). A server not being loaded is idle
   (the bench prints what the idle ones used: about nothing);
3. per round, the load generator gives each server in turn a short closed loop (`--inflight` calls in
   flight: throughput), then each in turn a short open loop (`--rate` calls per second, latency from each
   call's scheduled send time), the order changing from round to round so that every server comes before
   and after every other one equally often; 60% canteen purchases and 40% gate taps, half chip taps and
   half e-card QR scans, every request prebuilt before its round;
4. prints a table per round, then the summary: the throughput ratio is the median of the per-round
   paired ratios hub/echo, printed with their interquartile range and their min..max; the calibration is
   the same for echo2/echo, two identical servers: its median says whether the bench favours a slot
   (it should be 1.00) and its spread how far any ratio of this run can be believed. p99 at the fixed
   rate is over every open-loop call of a server, pooled. Server CPU per call (µs) is printed for both
   phases: the closed loop at saturation and the open loop at the fixed rate. CPU per call hardly moves
   when others use the machine (throughput does), so `cpu_ratio` (echo's CPU per call over the hub's,
   closed loop) is the ratio the hub would get with both servers owning a core. Its last line is

     bench: hub_rps=<n> echo_rps=<n> ratio=<hub/echo> p99_ms_at_1000=<ms> echo_p99_ms_at_1000=<ms>
            ratio_iqr=<q1..q3> calibration=<echo2/echo> calibration_spread=<q1..q3>
            hub_cpu_us_closed=<µs> echo_cpu_us_closed=<µs> hub_cpu_us_open=<µs> echo_cpu_us_open=<µs>
            cpu_ratio=<echo/hub CPU per call, closed loop>

   (one line). With `--metrics` the hub with `--metrics-listen` ("hub+metrics"), and with `--tracing` the
   hub with `--trace-file` ("hub+tracing"), are loaded in every round too; each round prints their ratio
   to echo and every hub's CPU per call, and the line gains `hub_cpu_us=… metrics_ratio=…
   metrics_cpu_us=…` (and `tracing_…`; CPU per call of the open loop) between `echo_p99_ms_at_1000` and
   `ratio_iqr`. Telemetry's cost is the difference in CPU per call between hub and hub+metrics.

With `--baseline DIR` a hub run from another checkout of this repository (`git worktree add DIR <commit>`;
its code on PYTHONPATH ahead of this one's, the same seeded database, so the schema must be one it reads)
is loaded in every round too, as "hub@base": a change is measured against the code before it in the same
rounds, seconds apart, which the machine's drift cannot tell apart. The summary prints its ratio to echo,
its p99 and CPU per call, and the paired ratio hub/hub@base; the line gains `base_ratio=…
base_p99_ms_at_1000=… base_cpu_us_closed=… base_cpu_us_open=… hub_over_base=…` before `ratio_iqr`.

Every slice also shows how busy CPU 0 was with processes other than the servers ("others"): when other
work shares the machine, throughput drops and spreads, and the calibration shows by how much.

The hub's approval share is printed per round; below 95% the output says so loudly and the exit status
is 3 (cheap declines would flatter the ratio). The seed keeps its default anomalies (1% lost cards, 1%
suspended students), so about 2% of the taps are declined on purpose, as in a real rush. `--echo-only`
runs the do-nothing server in the hub's place too (with a synthetic campus, no hub needed): a check of
the bench itself and of the machine's noise.

    .venv/bin/python scripts/bench.py                 # 12 rounds, about 5 minutes
    .venv/bin/python scripts/bench.py --rounds 3 --keep
    .venv/bin/python scripts/bench.py --echo-only     # the bench's own noise; every ratio should be 1
    .venv/bin/python scripts/bench.py --metrics --tracing   # telemetry's cost, measured in the same run
    .venv/bin/python scripts/bench.py --baseline /tmp/base  # this checkout against the one in /tmp/base
"""

from __future__ import annotations

import argparse
import ctypes
import json
import os
import selectors
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
PAUSE_S = 0.2  # the load generator's rest between two slices
# The hub with telemetry on (--metrics, --tracing): its flags besides those of the plain hub.
VARIANTS = {"hub+metrics": ("--metrics-listen", "127.0.0.1:0"), "hub+tracing": ("--trace-file",)}
BASELINE = "hub@base"  # --baseline: the hub of another checkout
SOURCE_DIRS = (
    "hub",
    "protos",
    "clients/python",
    "simulators",
    "loadtest",
)  # what `make venv` puts on the path
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

    def start(
        self,
        argv: list[str],
        *,
        log: Path,
        cpu: int | None,
        pipe: bool = False,
        env: dict[str, str] | None = None,
    ) -> subprocess.Popen[bytes]:
        """Starts `argv` with its output in `log`; with `pipe`, its stdout is a pipe to read instead;
        `env` is added to this process's environment."""
        if cpu is not None and self.pin:
            argv = ["taskset", "-c", str(cpu), *argv]
        env = {**os.environ, "PYTHONUNBUFFERED": "1", **(env or {})}
        with log.open("ab") as out:
            out.write(f"$ {shlex.join(argv)}\n".encode())
            out.flush()
            proc = subprocess.Popen(
                argv,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE if pipe else out,
                stderr=out if pipe else subprocess.STDOUT,
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
    baseline: Path | None = None  # --baseline: the checkout "hub@base" runs from


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


# -- the servers and the load ----------------------------------------------------------------------


@dataclass(frozen=True)
class Started:
    name: str
    proc: subprocess.Popen[bytes]
    target: str
    log: Path
    start_s: float  # from spawning it to its "listening" line


def start_server(args: argparse.Namespace, setup: Setup, children: Children, name: str) -> Started:
    folder = setup.work / name.replace("+", "-")
    folder.mkdir()
    listen = f"127.0.0.1:{_free_port()}"
    clock = ["--clock-start", CLOCK_START, "--clock-speed", "1"]
    if name.startswith("hub") and setup.hub is not None:
        db = folder / "hub.db"
        for suffix in ("", "-wal", "-shm"):
            source = Path(f"{setup.seed_db}{suffix}")
            if source.exists():
                shutil.copyfile(source, f"{db}{suffix}")
        argv = [*setup.hub, "serve", "--db", str(db), "--keys", str(setup.keys), "--listen", listen, *clock]
        argv += VARIANTS.get(name, ())
        if name == "hub+tracing":
            argv.append(str(folder / "traces.jsonl"))
    else:
        argv = [setup.python, str(SCRIPTS / "echo_server.py"), "--listen", listen, *clock]
    env = None
    if name == BASELINE and setup.baseline is not None:
        env = {"PYTHONPATH": os.pathsep.join(str(setup.baseline / d) for d in SOURCE_DIRS)}
    log = folder / "server.log"
    started = time.monotonic()
    proc = children.start(argv, log=log, cpu=SERVER_CPU, env=env)
    _wait_listening(proc, log, name, timeout=args.start_timeout)
    return Started(name, proc, listen, log, time.monotonic() - started)


def round_seconds(args: argparse.Namespace, servers: int) -> float:
    return servers * (args.warmup_seconds + args.closed_seconds + args.open_seconds + 2 * PAUSE_S)


def run_load(
    args: argparse.Namespace, setup: Setup, children: Children, servers: list[Started]
) -> list[dict[str, Any]]:
    """Runs the load generator over every server; prints each round as it ends; returns the rounds."""
    argv = [
        setup.python, str(SCRIPTS / "_bench_load.py"),
        "--keys", str(setup.keys),
        "--rounds", str(args.rounds),
        "--closed-seconds", str(args.closed_seconds),
        "--warmup-seconds", str(args.warmup_seconds),
        "--inflight", str(args.inflight),
        "--max-rps", str(args.max_rps),
        "--open-seconds", str(args.open_seconds),
        "--rate", str(args.rate),
    ]  # fmt: skip
    for server in servers:
        argv += [
            "--target",
            f"{server.name}={server.target}",
            "--server-pid",
            f"{server.name}={server.proc.pid}",
        ]
    if children.pin:
        argv += ["--server-cpu", str(SERVER_CPU)]
    log = setup.work / "load.log"
    load = children.start(argv, log=log, cpu=CLIENT_CPU, pipe=True)
    assert load.stdout is not None
    budget = 120.0 + 3 * round_seconds(args, len(servers))  # the first round also connects
    rounds: list[dict[str, Any]] = []
    pending = b""
    with selectors.DefaultSelector() as selector:
        selector.register(load.stdout, selectors.EVENT_READ)
        deadline = time.monotonic() + budget
        while True:
            if not selector.select(timeout=max(0.0, deadline - time.monotonic())):
                raise BenchError(f"the load generator gave no round within {budget:.0f} s:\n{_tail(log)}")
            chunk = os.read(load.stdout.fileno(), 1 << 20)
            if not chunk:
                break
            pending += chunk
            while b"\n" in pending:
                line, pending = pending.split(b"\n", 1)
                rounds.append(json.loads(line))
                print_round(rounds[-1], args.rounds, args.echo_only)
                deadline = time.monotonic() + budget
            for server in servers:
                if server.proc.poll() is not None:
                    raise BenchError(
                        f"{server.name} died during the run (status {server.proc.returncode}):\n"
                        f"{_tail(server.log)}"
                    )
    status = children.stop(load)
    if status != 0 or len(rounds) != args.rounds:
        raise BenchError(f"the load generator failed with status {status}:\n{_tail(log)}")
    return rounds


# -- figures ---------------------------------------------------------------------------------------


def _calls(phase: str, part: dict[str, Any]) -> float:
    return float(part.get("completed_in_window", 0) if phase == "closed" else part.get("calls", 0))


def cpu_us(phase: str, part: dict[str, Any]) -> float | None:
    """Server CPU per call of one slice, in µs."""
    cpu, calls = part.get("server_cpu_s"), _calls(phase, part)
    return None if cpu is None or not calls else 1e6 * float(cpu) / calls


def pooled_cpu_us(rounds: list[dict[str, Any]], phase: str, name: str) -> float | None:
    """Server CPU per call over every slice of a phase, in µs: total CPU over total calls."""
    parts = [r[phase][name] for r in rounds if r[phase][name].get("server_cpu_s") is not None]
    calls = sum(_calls(phase, part) for part in parts)
    return 1e6 * sum(float(part["server_cpu_s"]) for part in parts) / calls if calls else None


def quartiles(values: list[float]) -> tuple[float, float, float]:
    """First quartile, median, third quartile (inclusive method; a single value is all three)."""
    if len(values) == 1:
        return values[0], values[0], values[0]
    q1, q2, q3 = statistics.quantiles(values, n=4, method="inclusive")
    return q1, q2, q3


def paired(rounds: list[dict[str, Any]], name: str, base: str = "echo") -> list[float]:
    """closed-loop rps of `name` over `base`'s, one per round."""
    return [
        r["closed"][name]["rps"] / r["closed"][base]["rps"] for r in rounds if r["closed"][base]["rps"] > 0
    ]


def pooled_p99(rounds: list[dict[str, Any]], name: str) -> float | None:
    values = sorted(v for r in rounds for v in r["open"][name]["latencies_ms"])
    if not values:
        return None
    return values[max(0, -(-99 * len(values) // 100) - 1)]  # nearest rank


def outcomes(rounds: list[dict[str, Any]], name: str) -> Counter[str]:
    """How the calls to `name` ended over the run: APPROVED, decline reasons, grpc:<code>."""
    counted: Counter[str] = Counter()
    for r in rounds:
        for phase in ("closed", "open"):
            part = r[phase][name]
            counted.update(part.get("decisions", {}))
            counted.update({f"grpc:{k}": v for k, v in part.get("errors", {}).items()})
    return counted


def approval_share(counted: Counter[str]) -> float:
    total = sum(counted.values())
    return counted["APPROVED"] / total if total else 0.0


def _ms(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}"


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{100 * value:.0f}%"


def _us(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f} µs"


def _num(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f}"


def _share(part: dict[str, Any], key: str) -> float | None:
    value, wall = part.get(key), part.get("wall_s")
    return None if value is None or not wall else float(value) / float(wall)


HEADER = (
    f"  {'server':<11} {'rps':>6} {'p50':>6} {'p99':>7} {'cpu s/c':>8} {'µs/call':>7} │ {'sent/s':>6} "
    f"{'p50':>6} {'p99':>7} {'max':>7} {'lag99':>6} {'µs/call':>7} │ {'others':>6} │ approved"
)


def _row(r: dict[str, Any], name: str, label: str) -> str:
    c, o = r["closed"][name], r["open"][name]
    closed_cpu = f"{_pct(_share(c, 'server_cpu_s'))}/{_pct(_share(c, 'client_cpu_s'))}"
    others = max((v for p in (c, o) if (v := _share(p, "others_on_server_cpu_s")) is not None), default=None)
    counted = Counter(c.get("decisions", {})) + Counter(o.get("decisions", {}))
    counted.update({f"grpc:{k}": v for p in (c, o) for k, v in p.get("errors", {}).items()})
    line = (
        f"  {label:<11} {c['rps']:>6.0f} {_ms(c.get('p50_ms')):>6} {_ms(c.get('p99_ms')):>7} "
        f"{closed_cpu:>8} {_num(cpu_us('closed', c)):>7} │ {o.get('achieved_rps', 0):>6.0f} "
        f"{_ms(o.get('p50_ms')):>6} {_ms(o.get('p99_ms')):>7} {_ms(o.get('max_ms')):>7} "
        f"{_ms(o.get('send_lag_p99_ms')):>6} {_num(cpu_us('open', o)):>7} │ {_pct(others):>6} │ "
        f"{100 * approval_share(counted):.2f}%"
    )
    if c.get("exhausted"):
        line += f"\n  !!! {label}: the closed slice used up its {c.get('prebuilt')} prebuilt requests early"
    return line


def _label(name: str, echo_only: bool) -> str:
    return "echo(hub)" if echo_only and name == "hub" else name


def print_round(r: dict[str, Any], rounds: int, echo_only: bool) -> None:
    say(f"round {r['round']}/{rounds}   closed loop (ms) │ open loop (ms, from scheduled send) │ CPU 0")
    say(HEADER)
    for name in r["order"]:
        say(_row(r, name, _label(name, echo_only)))
    closed = r["closed"]
    base = closed["echo"]["rps"]
    if base > 0:
        say("  ratios: " + ", ".join(
            f"{_label(n, echo_only)}/echo {closed[n]['rps'] / base:.3f}" for n in r["order"] if n != "echo"
        ))  # fmt: skip
    else:
        say("  ratios: - (echo made no call)")
    counted = outcomes([r], "hub")
    hub_share = approval_share(counted)
    if hub_share < MIN_APPROVAL_SHARE:
        failed = sum(v for k, v in counted.items() if k.startswith("grpc:"))
        declined = sum(counted.values()) - counted["APPROVED"] - failed
        why = (
            "declines are cheap and flatter the hub's figures; check the seed and the traffic"
            if declined >= failed
            else f"{failed} calls failed (gRPC errors): the hub was overloaded, or broken"
        )
        say(f"  !!! APPROVAL SHARE {100 * hub_share:.2f}% IS BELOW {100 * MIN_APPROVAL_SHARE:.0f}%: {why}")
    say()


def _spread(values: list[float]) -> str:
    q1, q2, q3 = quartiles(values)
    return f"median {q2:.3f}, interquartile {q1:.3f}..{q3:.3f}, min..max {min(values):.3f}..{max(values):.3f}"


def _idle_report(rounds: list[dict[str, Any]]) -> str:
    """The most CPU any idle server used in a slice of another one, and the median, as shares of a CPU."""
    shares = [
        float(used) / float(part["wall_s"])
        for r in rounds
        for phase in ("closed", "open")
        for part in r[phase].values()
        if part.get("wall_s")
        for used in part.get("idle_servers_cpu_s", {}).values()
    ]
    if not shares:
        return "  idle servers: not measured"
    return (
        f"  idle servers (each, while another one was loaded): "
        f"median {100 * statistics.median(shares):.1f}%, "
        f"max {100 * max(shares):.1f}% of a CPU"
    )


def _variants(rounds: list[dict[str, Any]], names: list[str]) -> str:
    """The telemetry variants (--metrics, --tracing), printed; their `bench:` fields."""
    hub_cpu = pooled_cpu_us(rounds, "open", "hub")
    fields = []
    for variant in (v for v in VARIANTS if v in names):
        key = variant.removeprefix("hub+")
        ratios = paired(rounds, variant)
        ratio = statistics.median(ratios) if ratios else 0.0
        cpu = pooled_cpu_us(rounds, "open", variant)
        added = None if cpu is None or hub_cpu is None else cpu - hub_cpu
        say(
            f"  {variant}: ratio {ratio:.3f}, CPU per call {_us(cpu)} against the hub's {_us(hub_cpu)}"
            f" (+{_us(added)}, open loop)"
        )
        fields.append(f"{key}_ratio={ratio:.2f} {key}_cpu_us={_num(cpu)}")
    return f" hub_cpu_us={_num(hub_cpu)} " + " ".join(fields) if fields else ""


def _baseline(rounds: list[dict[str, Any]], names: list[str]) -> str:
    """--baseline: hub@base against echo and against the hub, printed; its `bench:` fields."""
    if BASELINE not in names:
        return ""
    ratios, over = paired(rounds, BASELINE), paired(rounds, "hub", BASELINE)
    ratio = statistics.median(ratios) if ratios else 0.0
    hub_over = statistics.median(over) if over else 0.0
    p99 = pooled_p99(rounds, BASELINE)
    closed, opened = pooled_cpu_us(rounds, "closed", BASELINE), pooled_cpu_us(rounds, "open", BASELINE)
    say(f"  {BASELINE}: ratio {ratio:.3f} to echo; p99 at the fixed rate {_ms(p99)} ms; CPU per call "
        f"{_num(closed)} / {_num(opened)} µs (closed / open)")  # fmt: skip
    if over:
        say(f"  hub/{BASELINE}, paired per round: {_spread(over)}")
    return (
        f" base_ratio={ratio:.2f} base_p99_ms_at_1000={_ms(p99)} base_cpu_us_closed={_num(closed)}"
        f" base_cpu_us_open={_num(opened)} hub_over_base={hub_over:.2f}"
    )


QUIET = 0.10  # others' share of CPU 0 under which a slice counts as quiet


def _quiet_ratio(r: dict[str, Any], name: str, base: str = "echo") -> float | None:
    """closed-loop rps of `name` over `base`'s in round `r`, when both slices were quiet; else None."""
    slices = (r["closed"][name], r["closed"][base])
    shares = [_share(part, "others_on_server_cpu_s") for part in slices]
    if any(share is None or share >= QUIET for share in shares) or not slices[1]["rps"]:
        return None
    return float(slices[0]["rps"]) / float(slices[1]["rps"])


def summarize(rounds: list[dict[str, Any]], names: list[str], echo_only: bool) -> tuple[str, bool]:
    """Prints the summary; returns the final `bench:` line and whether the approval share was low."""
    name = _label("hub", echo_only)
    ratios, calibration = paired(rounds, "hub"), paired(rounds, "echo2")
    hub_rps = statistics.median(r["closed"]["hub"]["rps"] for r in rounds)
    echo_rps = statistics.median(r["closed"]["echo"]["rps"] for r in rounds)
    ratio = statistics.median(ratios) if ratios else 0.0
    r_q1, _, r_q3 = quartiles(ratios) if ratios else (0.0, 0.0, 0.0)
    c_q1, cal, c_q3 = quartiles(calibration) if calibration else (0.0, 0.0, 0.0)
    hub_p99, echo_p99 = pooled_p99(rounds, "hub"), pooled_p99(rounds, "echo")
    cpu = {(s, p): pooled_cpu_us(rounds, p, s) for s in ("hub", "echo", "echo2") for p in ("closed", "open")}
    hub_closed, echo_closed = cpu["hub", "closed"], cpu["echo", "closed"]
    cpu_ratio = echo_closed / hub_closed if hub_closed and echo_closed else None
    counted = outcomes(rounds, "hub")
    share = approval_share(counted)
    low = share < MIN_APPROVAL_SHARE or any(approval_share(outcomes([r], "hub")) < MIN_APPROVAL_SHARE
                                            for r in rounds)  # fmt: skip
    say(
        f"summary of {len(rounds)} rounds (closed loop: {name} median {hub_rps:.0f} rps, echo {echo_rps:.0f})"
    )
    if ratios:
        say(f"  ratio {name}/echo, paired per round: {_spread(ratios)}")
        say("    " + " ".join(f"{x:.3f}" for x in ratios))
    quiet = [x for r in rounds if (x := _quiet_ratio(r, "hub")) is not None]
    if ratios:
        say(
            f"  the same over the {len(quiet)} rounds where others used under {100 * QUIET:.0f}% of CPU "
            f"{SERVER_CPU} in both closed slices: "
            + (f"median {statistics.median(quiet):.3f}" if quiet else "-")
        )
    if calibration:
        say(f"  calibration echo2/echo (two identical servers): {_spread(calibration)}")
        say("    " + " ".join(f"{x:.3f}" for x in calibration))
        half = (c_q3 - c_q1) / 2 / cal if cal else 0.0
        say(
            f"  → on this machine now, a ratio is believable to about ±{100 * half:.0f}% (half the "
            "calibration's interquartile range); the calibration's median should be 1.00, and one further "
            "off than that means the bench favours a slot"
        )
    say(
        "  server CPU per call, µs (closed loop at saturation / open loop at "
        f"{rounds[0]['open']['hub']['rate']:.0f}/s):"
    )
    for s in ("hub", "echo", "echo2"):
        say(f"    {_label(s, echo_only):<10} {_num(cpu[s, 'closed']):>7} / {_num(cpu[s, 'open'])}")
    if cpu_ratio is not None:
        say(
            f"  cpu_ratio (echo's CPU per call over {name}'s, closed loop) = {cpu_ratio:.3f}: the throughput "
            "ratio with each server owning a core, which others on the machine hardly move"
        )
    others = [
        v for r in rounds for p in ("closed", "open") for part in r[p].values()
        if (v := _share(part, "others_on_server_cpu_s")) is not None
    ]  # fmt: skip
    if others:
        say(
            f"  others on CPU {SERVER_CPU} (not the servers) during the slices: median "
            f"{100 * statistics.median(others):.0f}%, max {100 * max(others):.0f}% of it"
        )
    say(_idle_report(rounds))
    rate = rounds[0]["open"]["hub"]["rate"]
    say(f"  p99 at {rate:.0f}/s over every open-loop call: {name} {_ms(hub_p99)} ms, echo {_ms(echo_p99)} ms")
    others_text = ", ".join(f"{k}={v}" for k, v in counted.most_common() if k != "APPROVED") or "none"
    say(f"  {name} approval share {100 * share:.2f}% (not approved: {others_text})")
    if echo_only:
        say(
            "  (--echo-only: the do-nothing server plays the hub too; "
            "every ratio shows the bench's own noise)"
        )
    if low:
        say(
            f"!!! THE HUB APPROVED LESS THAN {100 * MIN_APPROVAL_SHARE:.0f}% OF THE CALLS IN SOME ROUND: "
            "THE FIGURES BELOW ARE NOT VALID (exit status 3)"
        )
    line = (
        f"bench: hub_rps={hub_rps:.0f} echo_rps={echo_rps:.0f} ratio={ratio:.2f} "
        f"p99_ms_at_1000={_ms(hub_p99)} echo_p99_ms_at_1000={_ms(echo_p99)}"
    )
    line += _variants(rounds, names) + _baseline(rounds, names)
    line += (
        f" ratio_iqr={r_q1:.2f}..{r_q3:.2f} calibration={cal:.2f} calibration_spread={c_q1:.2f}..{c_q3:.2f}"
        f" hub_cpu_us_closed={_num(hub_closed)} echo_cpu_us_closed={_num(echo_closed)}"
        f" hub_cpu_us_open={_num(cpu['hub', 'open'])} echo_cpu_us_open={_num(cpu['echo', 'open'])}"
        f" cpu_ratio={'-' if cpu_ratio is None else f'{cpu_ratio:.2f}'}"
    )
    return line, low


# -- main ------------------------------------------------------------------------------------------


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--rounds", type=int, default=12, help="rounds, each server loaded once in each (default 12)"
    )
    parser.add_argument("--students", type=int, default=20_000, help="students to seed (default 20000)")
    parser.add_argument(
        "--closed-seconds", type=float, default=2.0, help="measured closed loop per slice (default 2)"
    )
    parser.add_argument(
        "--warmup-seconds", type=float, default=0.5, help="closed-loop warm-up per slice (default 0.5)"
    )
    parser.add_argument("--open-seconds", type=float, default=3.0, help="open loop per slice (default 3)")
    parser.add_argument(
        "--rate", type=float, default=1000.0, help="open-loop calls per second (default 1000)"
    )
    parser.add_argument("--inflight", type=int, default=64, help="closed-loop calls in flight (default 64)")
    parser.add_argument(
        "--max-rps",
        type=float,
        default=8000.0,
        help="closed loop: most requests prebuilt per second of a slice (default 8000)",
    )
    parser.add_argument("--python", default=sys.executable, help="interpreter for the subprocesses")
    parser.add_argument(
        "--keep", action="store_true", help="keep the temporary folder (logs, rounds.json, databases)"
    )
    parser.add_argument(
        "--echo-only",
        action="store_true",
        help="the do-nothing server plays the hub too (no hub needed): checks the bench and the noise",
    )
    parser.add_argument("--start-timeout", type=float, default=120.0, help="seconds for a server to listen")
    parser.add_argument(
        "--metrics",
        action="store_true",
        help="also load the hub with --metrics-listen each round (hub+metrics): the cost of metrics",
    )
    parser.add_argument(
        "--tracing",
        action="store_true",
        help="also load the hub with --trace-file each round (hub+tracing): the cost of tracing every call",
    )
    parser.add_argument(
        "--baseline",
        type=Path,
        metavar="DIR",
        help="also load a hub run from the checkout in DIR each round (hub@base): a change measured"
        " against the code before it",
    )
    args = parser.parse_args(argv)
    if args.echo_only and (args.metrics or args.tracing):
        parser.error("--metrics and --tracing measure the hub: not with --echo-only")
    if args.rounds < 1 or args.inflight < 1 or args.rate <= 0 or args.students < 1:
        parser.error("--rounds, --inflight, --rate and --students must be positive")
    if args.closed_seconds <= 0 or args.open_seconds <= 0 or args.warmup_seconds < 0:
        parser.error("--closed-seconds and --open-seconds must be positive, --warmup-seconds not negative")
    if args.baseline is not None and not (args.baseline / "hub" / "onecard_hub").is_dir():
        parser.error(f"--baseline {args.baseline}: not a checkout of this repository (no hub/onecard_hub)")
    if args.baseline is not None and args.echo_only:
        parser.error("--baseline measures a hub: not with --echo-only")
    servers = 3 + args.metrics + args.tracing + (args.baseline is not None)
    if round_seconds(args, servers) > 40:
        parser.error(
            f"a round of {servers} servers would take {round_seconds(args, servers):.0f} s: it must stay "
            "under 40 s, its QR tokens expire 60 s after minting (shorter slices)"
        )
    if args.students < args.rate * args.open_seconds + 8 * args.inflight:
        parser.error("--students must exceed the calls of an open slice (--rate × --open-seconds) and more")
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
    setup = Setup(work, args.python, hub, seed_db, keys, args.baseline)
    names = ["hub", "echo", "echo2"]
    names += [v for v, on in (("hub+metrics", args.metrics), ("hub+tracing", args.tracing)) if on]
    names += [BASELINE] if args.baseline is not None else []
    servers = [start_server(args, setup, children, name) for name in names]
    say("servers started (spawn to listening): " + ", ".join(
        f"{_label(s.name, args.echo_only)} {s.start_s:.1f} s" for s in servers))  # fmt: skip
    pinned = f"servers on CPU {SERVER_CPU}, load on CPU {CLIENT_CPU}" if children.pin else "not pinned"
    say(
        f"{args.rounds} rounds of {len(servers)} servers; per server and round a closed loop of "
        f"{args.inflight} in flight for {args.closed_seconds:g} s (+{args.warmup_seconds:g} s warm-up), "
        f"then an open loop at {args.rate:g}/s for {args.open_seconds:g} s; {pinned}"
    )
    say("columns: closed loop rps, p50, p99 (ms), CPU server/client, server CPU µs per call │ open loop")
    say("         sent/s, p50, p99, max, send lag p99 (ms), server CPU µs per call │ others' share of")
    say(f"         CPU {SERVER_CPU} (the most of the two slices) │ approval share over both slices")
    say()
    rounds = run_load(args, setup, children, servers)
    (work / "rounds.json").write_text(json.dumps(rounds), encoding="utf-8")
    return summarize(rounds, names, args.echo_only)


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
