"""`onecard-sim readers` and `onecard-sim pos`: run simulated gate readers or canteen POS
against a running hub.

    onecard-sim readers --hub 127.0.0.1:50051 --keys hub.keys [--tls hub.keys/pki] [--school S]
                        [--gates N] --duration 60 --rate 40 [--curve constant|day]
    onecard-sim pos     --hub 127.0.0.1:50051 --keys hub.keys [--tls DIR] [--school S] [--windows N]
                        --duration 60 --rate 80 [--curve constant|meal-rush]
                        [--offline-at 20 --offline-for 15] [--reupload]

Offline control at run time: `kill -USR1 <pid>` sends every terminal of the simulator offline
(it decides on local rules and stores), `kill -USR2 <pid>` brings them back (they upload what they
stored). `--offline-at S --offline-for S` does the same on a schedule; a simulator still offline
when the run ends goes online and uploads before it exits; `--reupload` then sends every uploaded
batch a second time (the hub must book nothing twice). Ctrl-C ends the run early.

The scenario runner's `cli.py` wires these in: `add_readers_parser(subparsers)` and
`add_pos_parser(subparsers)` each add their sub-command and set `run` (args → exit code).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import signal
import sys
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.live import Live

from onecard_client import ClientConfig, ECardClient, OneCardError, TLSConfig
from onecard_client.campus import CampusCredentials
from onecard_sim import curves
from onecard_sim.driver import OpenLoopDriver, Stream
from onecard_sim.fleet import Fleet
from onecard_sim.gate import GateFleet, GateReader
from onecard_sim.population import ECardApp, Population, wallclock_floor
from onecard_sim.pos import CanteenFleet, CanteenPos
from onecard_sim.progress import Tally
from onecard_sim.terminal import SimTerminal
from onecard_sim.tracing import traced_to

__all__ = ["add_pos_parser", "add_readers_parser", "run_pos", "run_readers"]

APP_NAME = "ecard-app"  # the e-card app's certificate: `apps/ecard-app.crt` in the PKI folder


def _common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--hub", default="127.0.0.1:50051", help="the hub's HOST:PORT (default %(default)s)")
    parser.add_argument("--keys", type=Path, required=True, help="the keys folder `onecard-hub seed` wrote")
    parser.add_argument(
        "--tls",
        type=Path,
        metavar="DIR",
        help="PKI folder (`onecard-hub pki`): mutual TLS, one certificate per terminal",
    )
    parser.add_argument("--school", action="append", help="a school id (repeatable; default: every school)")
    parser.add_argument("--duration", type=float, required=True, help="real seconds to run")
    parser.add_argument(
        "--rate", type=float, default=20.0, help="peak arrivals per real second (default %(default)s)"
    )
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument(
        "--qr-share", type=float, default=0.7, help="share of e-card QR scans (default %(default)s)"
    )
    parser.add_argument("--mistakes", type=float, default=None, help="share of arrivals that are mistakes")
    parser.add_argument(
        "--max-in-flight", type=int, default=128, help="concurrent taps at most (default %(default)s)"
    )
    parser.add_argument("--offline-at", type=float, metavar="S", help="go offline S seconds into the run")
    parser.add_argument("--offline-for", type=float, metavar="S", default=10.0, help="stay offline S seconds")
    parser.add_argument("--reupload", action="store_true", help="at the end, send every uploaded batch again")
    parser.add_argument(
        "--auto-offline",
        action="store_true",
        help="a terminal that finds no hub goes offline by itself, back online when the hub answers",
    )
    parser.add_argument("--no-live", action="store_true", help="no live table, only the summary")
    parser.add_argument(
        "--trace-file",
        type=Path,
        metavar="PATH",
        help="a span per tap, appended to PATH (JSON lines); its trace context goes to the hub",
    )


def add_readers_parser(subparsers: Any) -> argparse.ArgumentParser:
    parser: argparse.ArgumentParser = subparsers.add_parser(
        "readers",
        help="simulated gate readers: students enter and leave (SIGUSR1 offline, SIGUSR2 online)",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    _common(parser)
    parser.add_argument("--gates", type=int, default=0, help="gates per school (default: all seeded gates)")
    parser.add_argument(
        "--curve",
        choices=("constant", "day"),
        default="constant",
        help="constant: half entries, half exits; day: the school day's gate curves at the hub's time",
    )
    parser.set_defaults(run=run_readers)
    return parser


def add_pos_parser(subparsers: Any) -> argparse.ArgumentParser:
    parser: argparse.ArgumentParser = subparsers.add_parser(
        "pos",
        help="simulated canteen POS: students pay for meals (SIGUSR1 offline, SIGUSR2 online)",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    _common(parser)
    parser.add_argument("--windows", type=int, default=0, help="POS per school (default: all seeded POS)")
    parser.add_argument(
        "--curve",
        choices=("constant", "meal-rush"),
        default="constant",
        help="constant rate, or the meal-rush curve read at the hub's time",
    )
    parser.set_defaults(run=run_pos)
    return parser


def run_readers(args: argparse.Namespace) -> int:
    with traced_to(args.trace_file):
        return asyncio.run(_simulate(args, "gate"))


def run_pos(args: argparse.Namespace) -> int:
    with traced_to(args.trace_file):
        return asyncio.run(_simulate(args, "canteen_pos"))


def _terminals(
    args: argparse.Namespace,
    campus: CampusCredentials,
    kind: str,
    per_school: int,
    build: Callable[..., SimTerminal],
) -> list[Any]:
    terminals: list[SimTerminal] = []
    for school in args.school or campus.schools:
        infos = campus.terminals_of(school, kind)
        if not infos:
            raise SystemExit(f"school {school} has no {kind} terminal in {args.keys}")
        for i, info in enumerate(infos[: per_school or None]):
            terminals.append(build(info, seed=args.seed * 1_000 + len(terminals) + i))
    return terminals


async def _simulate(args: argparse.Namespace, kind: str) -> int:
    console = Console()
    campus = CampusCredentials.load(args.keys)
    try:
        population = Population.load(
            args.keys, args.school, args.seed, atc_floor=wallclock_floor(), campus=campus
        )
    except ValueError as exc:
        console.print(f"[red]{exc}[/red]")
        return 2
    app_tls = TLSConfig.for_app(args.tls, APP_NAME) if args.tls else None
    minter = ECardClient(ClientConfig(target=args.hub, tls=app_tls))
    ecard = ECardApp(campus, minter)
    tally = Tally()
    common: dict[str, Any] = {
        "target": args.hub,
        "sink": tally,
        "ecard": ecard,
        "pki_dir": args.tls,
        "qr_share": args.qr_share,
        "first_serial": wallclock_floor() * 1_000,  # never reuses a serial an earlier run uploaded
        "auto_offline": args.auto_offline,
    }
    fleet: Fleet[Any]
    if kind == "gate":
        readers = _terminals(
            args, campus, kind, args.gates, lambda info, seed: GateReader(info, seed=seed, **common)
        )
        gates = GateFleet(readers, population, mistake_share=_share(args.mistakes, 0.02), seed=args.seed)
        if args.curve == "day":
            streams = [
                Stream("gate_entry", curves.gate_entries(args.rate), gates.enter),
                Stream("gate_exit", curves.gate_exits(args.rate), gates.leave),
            ]
        else:
            streams = [
                Stream("gate_entry", curves.constant(args.rate / 2), gates.enter),
                Stream("gate_exit", curves.constant(args.rate / 2), gates.leave),
            ]
        fleet, title = gates, "gate readers"
    else:
        tills = _terminals(
            args, campus, kind, args.windows, lambda info, seed: CanteenPos(info, seed=seed, **common)
        )
        canteens = CanteenFleet(tills, population, mistake_share=_share(args.mistakes, 0.01), seed=args.seed)
        curve = curves.meal_rush(args.rate) if args.curve == "meal-rush" else curves.constant(args.rate)
        streams = [Stream("canteen_purchase", curve, canteens.buy)]
        fleet, title = canteens, "canteen POS"
    try:
        await fleet.start()
    except OneCardError as exc:
        console.print(f"[red]cannot start the terminals: {exc}[/red]")
        await fleet.stop()
        await minter.close()
        return 2
    title = f"{len(fleet.terminals)} {title} → {args.hub}" + (" (mTLS)" if args.tls else " (plain text)")
    driver = OpenLoopDriver(fleet.terminals[0].hub_time, max_in_flight=args.max_in_flight)
    background = _controls(fleet, driver, args)
    live_on = not args.no_live and console.is_terminal
    try:
        with (
            Live(tally.table(title), console=console, refresh_per_second=4, transient=False)
            if live_on
            else (contextlib.nullcontext()) as live
        ):
            refresher = asyncio.create_task(_refresh(live, tally, title, fleet)) if live else None
            stats = await driver.run(streams, args.duration, args.seed)
            if refresher is not None:
                refresher.cancel()
        await _settle(background)
        if fleet.offline or fleet.offline_pending():
            await fleet.go_online()
        if args.reupload:
            await fleet.reupload_all()
    finally:
        _remove_signal_handlers()
        await fleet.stop()
        await minter.close()
    console.print(tally.table(title, _status(fleet), _extra(fleet)))
    console.print(
        f"scheduled {stats.scheduled}, completed {stats.completed}, dropped {stats.dropped}, "
        f"late starts {stats.late_starts}, action errors {stats.errors}; "
        f"QR codes from the hub {ecard.minted_by_hub}, minted locally {ecard.minted_locally}"
    )
    if stats.scheduled == 0:
        minute = int(curves.local_minute(driver.hub_time.now_ms()))
        console.print(
            f"[yellow]no arrivals: the {args.curve} curve is zero around the hub's time "
            f"{minute // 60:02d}:{minute % 60:02d} (China Standard Time); try --curve constant[/yellow]"
        )
    return 1 if stats.errors else 0


async def _settle(controls: tuple[list[asyncio.Task[Any]], list[asyncio.Task[Any]]]) -> None:
    """Drops the schedule (it only sleeps and flips the offline switch) and lets uploads finish."""
    schedule, uploads = controls
    for task in schedule:
        task.cancel()
    await asyncio.gather(*schedule, *uploads, return_exceptions=True)


def _share(value: float | None, default: float) -> float:
    share = default if value is None else value
    if not 0.0 <= share <= 1.0:
        raise SystemExit("--mistakes must be within [0, 1]")
    return share


def _extra(fleet: Fleet[Any]) -> dict[str, Counter[str]]:
    """Offline refusals by local rule, mistakes made at the gates, refunds and reversals at the POS."""
    refusals: Counter[str] = Counter()
    for terminal in fleet.terminals:
        refusals.update(terminal.book.refusals)
    extra = {"offline refused": refusals}
    if isinstance(fleet, GateFleet):
        extra["mistakes"] = fleet.mistakes
    if isinstance(fleet, CanteenFleet):
        extra["POS"] = fleet.counters()
    return extra


def _status(fleet: Fleet[Any]) -> str:
    state = "OFFLINE" if fleet.offline else "online"
    return f"{state} · stored offline, not yet uploaded: {fleet.offline_pending()}"


async def _refresh(live: Any, tally: Tally, title: str, fleet: Fleet[Any]) -> None:
    while True:
        live.update(tally.table(title, _status(fleet), _extra(fleet)))
        await asyncio.sleep(0.25)


def _controls(
    fleet: Fleet[Any], driver: OpenLoopDriver, args: argparse.Namespace
) -> tuple[list[asyncio.Task[Any]], list[asyncio.Task[Any]]]:
    """SIGUSR1 → offline, SIGUSR2 → online, SIGINT/SIGTERM → stop; and the --offline-at schedule.

    Returns (schedule tasks, upload tasks); an upload is never cancelled half-way.
    """
    loop = asyncio.get_running_loop()
    schedule: list[asyncio.Task[Any]] = []
    uploads: list[asyncio.Task[Any]] = []

    def online() -> None:
        uploads.append(loop.create_task(fleet.go_online()))

    if sys.platform != "win32":
        loop.add_signal_handler(signal.SIGUSR1, fleet.go_offline)
        loop.add_signal_handler(signal.SIGUSR2, online)
        loop.add_signal_handler(signal.SIGINT, driver.stop)
        loop.add_signal_handler(signal.SIGTERM, driver.stop)
    if args.offline_at is not None:

        async def scheduled() -> None:
            await asyncio.sleep(args.offline_at)
            fleet.go_offline()
            await asyncio.sleep(args.offline_for)
            online()

        schedule.append(loop.create_task(scheduled()))
    return schedule, uploads


def _remove_signal_handlers() -> None:
    if sys.platform == "win32":
        return
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGUSR1, signal.SIGUSR2, signal.SIGINT, signal.SIGTERM):
        loop.remove_signal_handler(sig)
