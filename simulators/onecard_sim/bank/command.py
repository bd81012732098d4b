"""`onecard-sim bank`: serve the co-branded banks; `onecard-sim bank-statement`: write one bank's
statement (对账单) of a business date as a file, as the bank would send it.

    onecard-sim bank --listen 127.0.0.1:50081 --db bank.db --keys hub.keys [--opening-balance-fen 200000]
        [--latency-ms 5-50] [--error-rate 0.1] [--timeout-rate 0.1] [--drop-reply-rate 0.1]
        [--outage-at 60 --outage-for 30] [--faults-on-inquiries] [--seed 7]
    onecard-sim bank-statement --db bank.db --bank ICBC --date 2026-11-24 --out icbc-2026-11-24.csv

The hub uses it with `onecard-hub serve --bank 127.0.0.1:50081`.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import signal
from pathlib import Path
from typing import Any

__all__ = ["add_bank_parser", "add_bank_statement_parser"]


def add_bank_parser(subparsers: Any) -> argparse.ArgumentParser:
    from onecard_sim.bank.server import DEFAULT_LISTEN

    parser: argparse.ArgumentParser = subparsers.add_parser(
        "bank",
        help="the co-branded banks: accounts, debits (top-up), credits, reversals, statements, faults",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--listen", default=DEFAULT_LISTEN, help="HOST:PORT (default %(default)s; port 0 picks one)"
    )
    parser.add_argument(
        "--db", type=Path, default=Path("bank.db"), help="its SQLite file (default %(default)s)"
    )
    parser.add_argument(
        "--keys",
        type=Path,
        help="a seeded campus's keys folder: open an account per card and canteen merchant",
    )
    parser.add_argument(
        "--opening-balance-fen",
        type=int,
        default=200_000,
        help="each card account's opening balance (¥2,000)",
    )
    parser.add_argument(
        "--latency-ms", default="", metavar="A-B", help="fault: added latency, uniform in A-B ms"
    )
    parser.add_argument(
        "--error-rate", type=float, default=0.0, help="fault: share answered UNAVAILABLE, unapplied"
    )
    parser.add_argument(
        "--timeout-rate", type=float, default=0.0, help="fault: share never answered, unapplied"
    )
    parser.add_argument(
        "--drop-reply-rate", type=float, default=0.0, help="fault: share applied, then answered UNAVAILABLE"
    )
    parser.add_argument(
        "--outage-at", type=float, default=0.0, metavar="S", help="fault: down S seconds from start"
    )
    parser.add_argument("--outage-for", type=float, default=0.0, metavar="S", help="fault: ... for S seconds")
    parser.add_argument(
        "--faults-on-inquiries",
        action="store_true",
        help="faults hit reads too (GetTransfer, GetAccount, ...)",
    )
    parser.add_argument(
        "--return-frozen-credits-after",
        type=float,
        default=0.0,
        metavar="S",
        help="a credit to a frozen account is posted, then sent back (退回, RETURNED) S seconds later"
        " (default 0: refused, ACCOUNT_FROZEN)",
    )
    parser.add_argument("--seed", type=int, default=0, help="seed of the fault draws (0: random)")
    parser.set_defaults(run=run_bank)
    return parser


def add_bank_statement_parser(subparsers: Any) -> argparse.ArgumentParser:
    parser: argparse.ArgumentParser = subparsers.add_parser(
        "bank-statement",
        help="write a bank's daily statement (对账单) CSV from the simulator's db",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--db", type=Path, required=True, help="the bank simulator's SQLite file")
    parser.add_argument("--bank", required=True, help="bank code: ICBC, CCB, ABC, BOC, JXB")
    parser.add_argument("--date", required=True, help="business date YYYY-MM-DD")
    parser.add_argument("--out", type=Path, required=True, help="the CSV file to write")
    parser.set_defaults(run=run_bank_statement)
    return parser


def _latency(text: str) -> tuple[int, int]:
    if not text:
        return 0, 0
    low, _, high = text.partition("-")
    return int(low), int(high or low)


def run_bank(args: argparse.Namespace) -> int:
    from onecard_sim.bank.faults import FaultPlan, PlanError, check_plan

    try:
        plan = check_plan(
            FaultPlan(*_latency(args.latency_ms), args.error_rate, args.timeout_rate, args.drop_reply_rate)
        )
    except (ValueError, PlanError) as exc:
        print(f"error: {exc}")
        return 2
    if min(args.outage_at, args.outage_for, args.opening_balance_fen, args.return_frozen_credits_after) < 0:
        print(
            "error: --outage-at, --outage-for, --opening-balance-fen and --return-frozen-credits-after"
            " must not be negative"
        )
        return 2
    return _run(_serve(args, plan))


async def _serve(args: argparse.Namespace, plan: Any) -> int:
    from onecard_sim.bank.server import running_bank

    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    async with running_bank(
        args.db,
        args.keys,
        args.listen,
        faults=plan,
        seed=args.seed,
        on_inquiries=args.faults_on_inquiries,
        opening_balance_fen=args.opening_balance_fen,
        outage_at_s=args.outage_at,
        outage_for_s=args.outage_for,
        return_frozen_after_s=args.return_frozen_credits_after,
    ) as running:
        host = args.listen.rsplit(":", 1)[0]
        print(f"onecard-sim bank listening on {host}:{running.port} (db {args.db})", flush=True)
        await stop.wait()
    print("onecard-sim bank stopped", flush=True)
    return 0


def run_bank_statement(args: argparse.Namespace) -> int:
    return _run(_statement(args))


async def _statement(args: argparse.Namespace) -> int:
    from onecard_sim.bank.statement import statement_csv
    from onecard_sim.bank.store import BankStore

    if not args.db.exists():
        print(f"error: {args.db}: no such file")
        return 2
    store = BankStore(args.db)
    await store.open()
    try:
        rows = await store.statement(args.bank, args.date)
    finally:
        await store.close()
    await asyncio.to_thread(args.out.write_text, statement_csv(rows), encoding="utf-8")
    print(f"{args.out}: {args.bank} {args.date}, {len(rows)} lines")
    return 0


def _run(main: Any) -> int:
    try:
        import uvloop
    except ImportError:
        return int(asyncio.run(main))
    with contextlib.suppress(KeyboardInterrupt):
        return int(uvloop.run(main))
    return 130
