"""`onecard-hub`: seed a campus, serve the hub, run its PKI."""

from __future__ import annotations

import argparse
import asyncio
import sys
import traceback
from pathlib import Path

import uvloop

from onecard_client.campus import keys_dir_for
from onecard_hub.config import add_serve_flags, config_from
from onecard_hub.exit_codes import EPILOG, ExitCode, StartupError
from onecard_hub.logs import setup_logging
from onecard_hub.store.checks import (
    DatabaseCorrupt,
    DatabaseMissing,
    DatabaseRefused,
    NotAHubDatabase,
    NotWritable,
    SchemaTooNew,
    SchemaTooOld,
)

REFUSALS: dict[type[DatabaseRefused], ExitCode] = {
    DatabaseMissing: ExitCode.USAGE,
    NotAHubDatabase: ExitCode.NOT_A_HUB_DATABASE,
    DatabaseCorrupt: ExitCode.CORRUPT,
    SchemaTooNew: ExitCode.SCHEMA_TOO_NEW,
    SchemaTooOld: ExitCode.SCHEMA_TOO_OLD,
    NotWritable: ExitCode.NOT_WRITABLE,
}


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
    p.add_argument("--library-desks-per-school", type=int, default=d.library_desks_per_school)
    p.add_argument(
        "--exam-tablets-per-school",
        type=int,
        default=d.exam_tablets_per_school,
        help="one per room: A101, A102, …",
    )
    p.add_argument("--initial-balance-fen", type=int, default=d.initial_balance_fen)
    p.add_argument("--daily-limit-fen", type=int, default=d.daily_limit_fen)
    p.add_argument("--meal-count-limit", type=int, default=d.meal_count_limit)
    p.add_argument("--pin-free-limit-fen", type=int, default=d.pin_free_limit_fen)
    p.add_argument(
        "--anomalies", type=float, default=d.anomalies, help="share of suspended students and lost cards"
    )
    p.add_argument(
        "--bank-not-activated-share",
        type=float,
        default=d.bank_not_activated_share,
        help="share of cards whose bank function was never activated (未激活)",
    )
    p.add_argument("--seed", type=int, default=d.seed, help="random seed (same seed, same campus)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.add_argument("--debug", action="store_true", help="a failure prints its traceback too")


def _run_seed(args: argparse.Namespace) -> int:
    from onecard_hub.seed import SeedError, SeedOptions, seed_campus

    options = SeedOptions(
        schools=args.schools,
        students=args.students,
        gates_per_school=args.gates_per_school,
        pos_per_school=args.pos_per_school,
        library_desks_per_school=args.library_desks_per_school,
        exam_tablets_per_school=args.exam_tablets_per_school,
        initial_balance_fen=args.initial_balance_fen,
        daily_limit_fen=args.daily_limit_fen,
        meal_count_limit=args.meal_count_limit,
        pin_free_limit_fen=args.pin_free_limit_fen,
        anomalies=args.anomalies,
        bank_not_activated_share=args.bank_not_activated_share,
        seed=args.seed,
    )
    db = Path(args.db)
    keys = Path(args.keys) if args.keys else keys_dir_for(db)
    try:
        report = asyncio.run(seed_campus(db, keys, options, progress=not args.quiet))
    except SeedError as exc:
        return _failed(str(exc), ExitCode.USAGE, exc if args.debug else None)
    print(
        f"seeded {db}: {report.schools} schools, {report.students} students ({report.minors} minors, "
        f"{report.boarders} boarders), {report.cards} cards, {report.terminals} terminals, "
        f"{report.merchants} canteen windows, wallets ¥{report.total_balance_fen / 100:,.2f}; keys in {keys}"
    )
    return 0


def _pki_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("pki", help="the hub's CA, server certificate and client certificates (mutual TLS)")
    actions = p.add_subparsers(dest="pki_command", required=True)
    where = argparse.ArgumentParser(add_help=False)
    where.add_argument("--dir", help="PKI folder (default: <keys dir>/pki, from --keys or --db)")
    where.add_argument("--db", help="database file; the keys folder is beside it (hub.db → hub.keys/)")
    where.add_argument("--keys", help="keys folder (default: beside --db)")
    init = actions.add_parser("init", parents=[where], help="create the CA and the server certificate")
    init.add_argument(
        "--host", action="append", default=[], help="another DNS name or IP of the hub (repeatable)"
    )
    init.add_argument("--force", action="store_true", help="replace an existing CA (its certificates die)")
    issue = actions.add_parser("issue", parents=[where], help="issue one client certificate")
    who = issue.add_mutually_exclusive_group(required=True)
    who.add_argument("--terminal", metavar="ID")
    who.add_argument("--operator", metavar="ID")
    who.add_argument("--app", metavar="NAME")
    actions.add_parser(
        "issue-all",
        parents=[where],
        help="a certificate for every terminal and operator in KEYS/credentials.json, plus app ecard-app",
    )


def _run_pki(args: argparse.Namespace) -> int:
    from onecard_hub.security import pki

    keys = Path(args.keys) if args.keys else keys_dir_for(args.db) if args.db else None
    folder = Path(args.dir) if args.dir else keys / "pki" if keys is not None else None
    if folder is None:
        print("error: give --dir (or --keys or --db to use <keys dir>/pki)", file=sys.stderr)
        return 2
    try:
        if args.pki_command == "init":
            server = pki.init_pki(folder, args.host, force=args.force)
            print(f"CA {folder / pki.CA_CERT}; server certificate {server.cert}")
        elif args.pki_command == "issue":
            kind, name = next((k, getattr(args, k)) for k in pki.KINDS if getattr(args, k))
            issued = pki.issue(folder, kind, name)
            print(f"{kind} {name}: {issued.cert} and {issued.key}")
        else:
            if keys is None:
                print("error: issue-all needs --keys (or --db): the credentials export", file=sys.stderr)
                return 2
            certs = pki.issue_all(folder, keys)
            counts = {k: sum(1 for c in certs if c.kind == k) for k in pki.KINDS}
            print(
                f"{counts['terminal']} terminal, {counts['operator']} operator and {counts['app']} app"
                f" certificates in {folder}"
            )
    except pki.PkiError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0


def _run_serve(args: argparse.Namespace) -> int:
    """One line on stderr and the exit code of its class (exit_codes.py) for a hub that cannot start;
    --debug adds the traceback."""
    try:
        config = config_from(args)
        setup_logging(config.log_level, json_lines=config.log_json)
    except ValueError as exc:  # config.ConfigError, a number that is not one, an unknown log level
        return _failed(str(exc), ExitCode.USAGE, None)
    debug = config.debug
    if not config.db.exists():
        return _failed(
            f"{config.db} does not exist; run `onecard-hub seed --db {config.db}` first", ExitCode.USAGE, None
        )
    if not config.keys.is_dir():
        return _failed(f"keys folder {config.keys} not found (give --keys)", ExitCode.KEYS, None)
    if config.tls_dir is not None:
        from onecard_hub.security.pki import PkiError, load_server_tls

        try:
            load_server_tls(config.tls_dir)
        except PkiError as exc:
            return _failed(f"--tls: {exc}", ExitCode.KEYS, exc if debug else None)
    from onecard_hub.server import serve

    try:
        return uvloop.run(serve(config))
    except DatabaseRefused as exc:
        code = next(c for kind, c in REFUSALS.items() if isinstance(exc, kind))
        return _failed(str(exc), code, exc if debug else None)
    except StartupError as exc:
        return _failed(str(exc), exc.code, exc if debug else None)
    except Exception as exc:
        hint = "" if debug else " (--debug shows the traceback)"
        message = f"the hub failed: {type(exc).__name__}: {exc}{hint}"
        return _failed(message, ExitCode.FAILED, exc if debug else None)


def _failed(message: str, code: int, shown: BaseException | None) -> int:
    """Prints `shown`'s traceback (with --debug), then `error: message`; returns `code`."""
    if shown is not None:
        traceback.print_exception(shown)
    print(f"error: {message}", file=sys.stderr, flush=True)
    return code


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="onecard-hub", description="OneCard Hub: campus card authorization")
    sub = parser.add_subparsers(dest="command", required=True)
    _seed_parser(sub)
    _pki_parser(sub)
    serve = sub.add_parser(
        "serve",
        help="serve the hub over gRPC",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_serve_flags(serve)
    args = parser.parse_args(argv)
    if args.command == "seed":
        return _run_seed(args)
    if args.command == "pki":
        return _run_pki(args)
    return _run_serve(args)


if __name__ == "__main__":
    sys.exit(main())
