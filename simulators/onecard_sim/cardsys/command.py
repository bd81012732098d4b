"""`onecard-sim cardsys`: serve the provincial card system; `onecard-sim cardsys-change`: record a
change in a running one, as an HR window or a bank branch would.

    onecard-sim cardsys --listen 127.0.0.1:50071 --db cardsys.db [--drop-every S] [--refuse-for S]
    onecard-sim cardsys-change --cardsys 127.0.0.1:50071 CARD_NO identity loss [--channel hotline]

The hub follows it with `onecard-hub serve --cardsys 127.0.0.1:50071`.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import signal
from pathlib import Path
from typing import Any

__all__ = ["add_cardsys_change_parser", "add_cardsys_parser"]


def add_cardsys_parser(subparsers: Any) -> argparse.ArgumentParser:
    from onecard_sim.cardsys.server import DEFAULT_LISTEN

    parser: argparse.ArgumentParser = subparsers.add_parser(
        "cardsys",
        help="the provincial card system: status changes made at HR windows and bank branches, as a feed",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--listen", default=DEFAULT_LISTEN, help="HOST:PORT (default %(default)s; port 0 picks one)"
    )
    parser.add_argument(
        "--db", type=Path, default=Path("cardsys.db"), help="its SQLite file (default %(default)s)"
    )
    parser.add_argument(
        "--drop-every",
        type=float,
        default=0.0,
        metavar="S",
        help="fault: end every open stream every S seconds",
    )
    parser.add_argument(
        "--refuse-for",
        type=float,
        default=0.0,
        metavar="S",
        help="fault: after each drop, refuse new streams for S seconds",
    )
    parser.add_argument(
        "--heartbeat",
        type=float,
        default=5.0,
        metavar="S",
        help="an empty message on idle streams every S seconds (5)",
    )
    parser.set_defaults(run=run_cardsys)
    return parser


def add_cardsys_change_parser(subparsers: Any) -> argparse.ArgumentParser:
    parser: argparse.ArgumentParser = subparsers.add_parser(
        "cardsys-change",
        help="record a card status change in a running `onecard-sim cardsys`",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--cardsys", default="127.0.0.1:50071", help="its HOST:PORT (default %(default)s)")
    parser.add_argument("card_no")
    parser.add_argument("function", choices=("identity", "bank"))
    parser.add_argument("action", choices=("activate", "loss", "unlock", "freeze", "unfreeze", "cancel"))
    parser.add_argument(
        "--channel",
        choices=("hr_window", "bank_branch", "hotline"),
        help="where (default: the function's own counter)",
    )
    parser.add_argument("--request-id", default="", help="idempotency key (default: a fresh one)")
    parser.set_defaults(run=run_cardsys_change)
    return parser


def run_cardsys(args: argparse.Namespace) -> int:
    if args.drop_every < 0 or args.refuse_for < 0 or args.heartbeat <= 0:
        print("error: --drop-every and --refuse-for must not be negative, --heartbeat must be positive")
        return 2
    return _run(_serve(args))


async def _serve(args: argparse.Namespace) -> int:
    from onecard_sim.cardsys.server import running_cardsys

    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    async with running_cardsys(
        args.db,
        args.listen,
        drop_every_s=args.drop_every,
        refuse_for_s=args.refuse_for,
        heartbeat_s=args.heartbeat,
    ) as running:
        host = args.listen.rsplit(":", 1)[0]
        head = running.servicer.store.head
        print(
            f"onecard-sim cardsys listening on {host}:{running.port} (db {args.db}, head version {head})",
            flush=True,
        )
        await stop.wait()
    print("onecard-sim cardsys stopped", flush=True)
    return 0


def run_cardsys_change(args: argparse.Namespace) -> int:
    return _run(_change(args))


async def _change(args: argparse.Namespace) -> int:
    import grpc

    from onecard.cardsys.v1 import card_system_service_pb2 as pb
    from onecard_sim.cardsys.client import CardsysClient

    async with CardsysClient(args.cardsys) as client:
        try:
            change = await client.record_change(
                args.card_no, args.function, args.action, args.channel, request_id=args.request_id
            )
        except grpc.aio.AioRpcError as exc:
            print(f"error: {exc.code().name}: {exc.details()}")
            return 1
    print(
        f"version {change.version}: {change.card_no} {pb.CardFunction.Name(change.function)}"
        f" {pb.ChangeAction.Name(change.action)} at {pb.Channel.Name(change.channel)}"
    )
    return 0


def _run(main: Any) -> int:
    try:
        import uvloop
    except ImportError:  # no uvloop on this platform
        return int(asyncio.run(main))
    with contextlib.suppress(KeyboardInterrupt):
        return int(uvloop.run(main))
    return 130
