"""`onecard-hub`: seed a campus, serve the hub."""

from __future__ import annotations

import argparse
import asyncio
import sys
from pathlib import Path

import uvloop

from onecard_client.campus import keys_dir_for
from onecard_hub.config import add_serve_flags, config_from
from onecard_hub.logs import setup_logging


def _seed_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    from onecard_hub.seed import SeedOptions

    d = SeedOptions()
    p = sub.add_parser(
        "seed", help="seed schools, students, cards, terminals and wallets into a new database"
    )
    p.add_argument("--db", required=True, help="SQLite database file to create")
    p.add_argument("--keys", help="keys folder (default: beside the db, hub.db → hub.keys/)")
    p.add_argument("--schools", type=int, default=d.schools)
    p.add_argument("--students", type=int, default=d.students, help="students in all (spread over schools)")
    p.add_argument("--gates-per-school", type=int, default=d.gates_per_school)
    p.add_argument("--pos-per-school", type=int, default=d.pos_per_school)
    p.add_argument("--initial-balance-fen", type=int, default=d.initial_balance_fen)
    p.add_argument("--daily-limit-fen", type=int, default=d.daily_limit_fen)
    p.add_argument("--meal-count-limit", type=int, default=d.meal_count_limit)
    p.add_argument("--pin-free-limit-fen", type=int, default=d.pin_free_limit_fen)
    p.add_argument(
        "--anomalies", type=float, default=d.anomalies, help="share of suspended students and lost cards"
    )
    p.add_argument("--seed", type=int, default=d.seed, help="random seed (same seed, same campus)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")


def _run_seed(args: argparse.Namespace) -> int:
    from onecard_hub.seed import SeedError, SeedOptions, seed_campus

    options = SeedOptions(
        schools=args.schools,
        students=args.students,
        gates_per_school=args.gates_per_school,
        pos_per_school=args.pos_per_school,
        initial_balance_fen=args.initial_balance_fen,
        daily_limit_fen=args.daily_limit_fen,
        meal_count_limit=args.meal_count_limit,
        pin_free_limit_fen=args.pin_free_limit_fen,
        anomalies=args.anomalies,
        seed=args.seed,
    )
    db = Path(args.db)
    keys = Path(args.keys) if args.keys else keys_dir_for(db)
    try:
        report = asyncio.run(seed_campus(db, keys, options, progress=not args.quiet))
    except SeedError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(
        f"seeded {db}: {report.schools} schools, {report.students} students ({report.minors} minors, "
        f"{report.boarders} boarders), {report.cards} cards, {report.terminals} terminals, "
        f"{report.merchants} canteen windows, wallets ¥{report.total_balance_fen / 100:,.2f}; keys in {keys}"
    )
    return 0


def _run_serve(args: argparse.Namespace) -> int:
    from onecard_hub.server import serve

    config = config_from(args)
    setup_logging(config.log_level, json_lines=config.log_json)
    if not config.db.exists():
        print(
            f"error: {config.db} does not exist; run `onecard-hub seed --db {config.db}` first",
            file=sys.stderr,
        )
        return 2
    if not config.keys.is_dir():
        print(f"error: keys folder {config.keys} not found (give --keys)", file=sys.stderr)
        return 2
    return uvloop.run(serve(config))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="onecard-hub", description="OneCard Hub: campus card authorization")
    sub = parser.add_subparsers(dest="command", required=True)
    _seed_parser(sub)
    serve = sub.add_parser("serve", help="serve the hub over gRPC")
    add_serve_flags(serve)
    args = parser.parse_args(argv)
    if args.command == "seed":
        return _run_seed(args)
    return _run_serve(args)


if __name__ == "__main__":
    sys.exit(main())
