"""`onecard-sim`: simulated devices and the scenario runner.

    onecard-sim scenario NAME [--duration S] [--seed N] [--out DIR]
                              [--schools N --students N --gates N --pos N]
                              [--hub HOST:PORT --keys DIR] [--tls | --plaintext] [--no-live] [--trace]
    onecard-sim readers ...      simulated gate readers against a running hub (commands.py)
    onecard-sim pos ...          simulated canteen POS against a running hub (commands.py)
    onecard-sim cardsys ...      the provincial card system: HR-window and bank changes as a feed (cardsys/)
    onecard-sim cardsys-change   record one change in a running cardsys simulator
    onecard-sim bank ...         the co-branded banks: debits, credits, reversals, statements, faults (bank/)
    onecard-sim bank-statement   write one bank's daily statement (对账单) CSV from its db

`scenario` exits 0 when every invariant held, 1 when `violations` is not empty, 2 on a usage error
(an unknown scenario, one whose parts are not built yet, bad options) and 3 when the run could not
be carried out (the hub did not start, or could not be reached).
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Coroutine
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

from rich.console import Console

from onecard_sim.scenarios.catalog import NOT_BUILT, SCENARIOS, UnknownScenario, lookup
from onecard_sim.scenarios.local_hub import CampusSize

__all__ = ["main"]

EXIT_OK, EXIT_VIOLATIONS, EXIT_USAGE, EXIT_NOT_RUN = 0, 1, 2, 3
RESULTS_DIR = Path("scenario-results")
T = TypeVar("T")


def _scenario_parser(sub: Any) -> None:
    d = CampusSize()
    names = ", ".join(SCENARIOS)
    later = ", ".join(NOT_BUILT)
    p: argparse.ArgumentParser = sub.add_parser(
        "scenario",
        help=f"play a scenario against a simulated campus ({names})",
        description=(
            f"Plays a scenario (DESIGN §10): {names}. Not built yet: {later}. Writes report.json and"
            " chart.png into --out and exits non-zero when an invariant broke."
        ),
    )
    p.add_argument("name", metavar="NAME", help=f"one of: {names}")
    p.add_argument(
        "--duration",
        type=float,
        help="real seconds the scenario's stretch of the day is compressed into"
        " (default: the scenario's, 60)",
    )
    p.add_argument("--seed", type=int, default=7, help="random seed: same seed, same campus and traffic (7)")
    p.add_argument(
        "--out", type=Path, help="output folder (default: scenario-results/<name>-<UTC timestamp>/)"
    )
    p.add_argument("--schools", type=int, default=d.schools, help=f"schools to seed ({d.schools})")
    p.add_argument("--students", type=int, default=d.students, help=f"students in all ({d.students})")
    p.add_argument(
        "--gates", type=int, default=d.gates_per_school, help=f"gates per school ({d.gates_per_school})"
    )
    p.add_argument(
        "--pos", type=int, default=d.pos_per_school, help=f"canteen POS per school ({d.pos_per_school})"
    )
    p.add_argument(
        "--hub", default="", metavar="HOST:PORT", help="use this running hub instead of starting one"
    )
    p.add_argument(
        "--keys", type=Path, help="with --hub: the keys folder of its campus (credentials.json, pki/)"
    )
    transport = p.add_mutually_exclusive_group()
    transport.add_argument(
        "--tls",
        dest="plaintext",
        action="store_false",
        default=False,
        help="mutual TLS, the default (own hub: a fresh PKI; with --hub: the PKI in KEYS/pki)",
    )
    transport.add_argument(
        "--plaintext",
        action="store_true",
        help="PLAIN TEXT: no TLS, devices name themselves in metadata — for local demos only",
    )
    p.add_argument("--no-live", action="store_true", help="no live progress, only the summary")
    p.add_argument(
        "--trace",
        action="store_true",
        help="a span per tap in OUT/traces-sim.jsonl, and its own hub's spans in OUT/traces-hub.jsonl"
        " (one trace per tap, from the terminal to the journal commit)",
    )
    p.set_defaults(run=_run_scenario)


def _run_scenario(args: argparse.Namespace) -> int:
    from onecard_client import OneCardError
    from onecard_hub.seed import SeedError
    from onecard_sim.scenarios.local_hub import HubStartError
    from onecard_sim.scenarios.runner import RunOptions, ScenarioError, run_scenario
    from onecard_sim.tracing import traced_to

    console = Console()
    err = Console(stderr=True)
    if args.name in NOT_BUILT:
        err.print(f"scenario {args.name}: its parts are not built yet — {NOT_BUILT[args.name]}")
        return EXIT_USAGE
    try:
        spec = lookup(args.name)
    except UnknownScenario as exc:
        err.print(f"error: {exc}", highlight=False)
        return EXIT_USAGE
    duration = args.duration if args.duration is not None else spec.default_duration_s
    problem = _check(args, duration)
    if problem:
        err.print(f"error: {problem}", highlight=False)
        return EXIT_USAGE
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    options = RunOptions(
        spec=spec,
        duration_s=duration,
        seed=args.seed,
        out=args.out or RESULTS_DIR / f"{spec.name}-{stamp}",
        size=CampusSize(args.schools, args.students, args.gates, args.pos),
        hub=args.hub,
        keys=args.keys,
        tls=not args.plaintext,
        live=not args.no_live,
        trace=args.trace,
    )
    try:
        with traced_to(options.out / "traces-sim.jsonl" if args.trace else None):
            report = _run(run_scenario(options, console))
    except (HubStartError, SeedError, ScenarioError, OneCardError) as exc:
        err.print(f"error: the scenario could not run: {exc}", highlight=False)
        return EXIT_NOT_RUN
    except KeyboardInterrupt:
        err.print("interrupted")
        return 130
    return EXIT_OK if report.ok else EXIT_VIOLATIONS


def _check(args: argparse.Namespace, duration: float) -> str:
    if duration <= 0:
        return "--duration must be positive"
    if args.hub and args.keys is None:
        return "--hub needs --keys (the keys folder of that hub's campus)"
    if args.keys is not None and not (args.keys / "credentials.json").is_file():
        return f"{args.keys} holds no credentials.json (the keys folder `onecard-hub seed` wrote)"
    if not args.plaintext and args.hub and not (args.keys / "pki" / "ca.crt").is_file():
        pki = args.keys / "pki"
        return f"mutual TLS with --hub needs the PKI in {pki} (onecard-hub pki issue-all), or --plaintext"
    if not args.hub and (args.schools < 1 or args.students < 1 or args.gates < 0 or args.pos < 0):
        return "--schools and --students must be at least 1, --gates and --pos not negative"
    return ""


def _run(main: Coroutine[Any, Any, T]) -> T:
    try:
        import uvloop
    except ImportError:  # no uvloop on this platform
        return asyncio.run(main)
    return uvloop.run(main)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="onecard-sim", description="OneCard simulators and scenarios")
    sub = parser.add_subparsers(dest="command", required=True)
    _scenario_parser(sub)
    _device_parsers(sub)
    args = parser.parse_args(argv)
    code: int = args.run(args)
    return code


def _device_parsers(sub: Any) -> None:
    from onecard_sim.bank.command import add_bank_parser, add_bank_statement_parser
    from onecard_sim.cardsys.command import add_cardsys_change_parser, add_cardsys_parser
    from onecard_sim.commands import add_pos_parser, add_readers_parser

    add_readers_parser(sub)
    add_pos_parser(sub)
    add_cardsys_parser(sub)
    add_cardsys_change_parser(sub)
    add_bank_parser(sub)
    add_bank_statement_parser(sub)


if __name__ == "__main__":
    sys.exit(main())
