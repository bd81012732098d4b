"""`onecard terminal list|show|enable|disable`: the school's devices (AdminService)."""

from __future__ import annotations

import argparse
from typing import Any

from rich.console import Console
from rich.table import Table

from onecard.admin.v1 import admin_service_pb2 as admin_pb
from onecard_cli.session import Session, mutating, request_id_of
from onecard_client.sync import AdminClient


def register(commands: Any) -> None:
    group = commands.add_parser("terminal", help="list, show, enable or disable terminals")
    actions = group.add_subparsers(dest="action", metavar="ACTION", required=True)
    listing = actions.add_parser("list", help="a school's terminals (province: all when no --school)")
    listing.add_argument("--school", default="")
    listing.set_defaults(run=_list)
    show = actions.add_parser("show", help="one terminal")
    show.add_argument("terminal_id")
    show.set_defaults(run=_show)
    for name, enabled in (("enable", True), ("disable", False)):
        parser = mutating(actions.add_parser(name, help=f"{name} a terminal"))
        parser.add_argument("terminal_id")
        parser.set_defaults(run=_set_enabled, enabled=enabled)


def kind_name(kind: int) -> str:
    return admin_pb.TerminalKind.Name(kind).removeprefix("TERMINAL_KIND_").lower()  # type: ignore[arg-type]


def _table(console: Console, terminals: list[admin_pb.Terminal]) -> None:
    table = Table()
    for heading in ("terminal", "school", "kind", "location", "gate group / window", "enabled", "last seen"):
        table.add_column(heading)
    for t in terminals:
        seen = t.last_seen.ToJsonString() if t.HasField("last_seen") else "never"
        table.add_row(
            t.terminal_id,
            t.school_id,
            kind_name(t.kind),
            t.location,
            t.gate_group or t.merchant_id,
            "yes" if t.enabled else "[red]no[/red]",
            seen,
        )
    console.print(table)


def _list(args: argparse.Namespace, session: Session) -> int:
    response = session.client(AdminClient).list_terminals(args.school)
    session.emit(response, lambda console, r: _table(console, list(r.terminals)))
    return 0


def _show(args: argparse.Namespace, session: Session) -> int:
    response = session.client(AdminClient).get_terminal(args.terminal_id)
    session.emit(response, lambda console, r: _table(console, [r.terminal]))
    return 0


def _set_enabled(args: argparse.Namespace, session: Session) -> int:
    request_id = request_id_of(args)
    response = session.client(AdminClient).set_terminal_enabled(request_id, args.terminal_id, args.enabled)
    session.emit(response, lambda console, r: _table(console, [r.terminal]), request_id=request_id)
    return 0
