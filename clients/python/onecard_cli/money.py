"""`onecard debts` (wallets that offline overspending left below zero) and `onecard ledger` (the
double-entry ledger's trial balance, province administrators)."""

from __future__ import annotations

import argparse
from typing import Any

from rich.console import Console
from rich.table import Table

from onecard.admin.v1 import admin_service_pb2 as admin_pb
from onecard_cli.session import Session, yuan
from onecard_client.sync import AdminClient


def register(commands: Any) -> None:
    debts = commands.add_parser("debts", help="wallets below zero after offline overspending")
    debts.add_argument("--school", default="", help="a clerk: their own school")
    debts.set_defaults(run=_debts)
    ledger = commands.add_parser("ledger", help="the ledger's trial balance (province administrators)")
    ledger.set_defaults(run=_ledger)


def _show_debts(console: Console, r: admin_pb.ListWalletDebtsResponse) -> None:
    table = Table(caption=f"total debt ¥{yuan(r.total_debt_fen)}")
    for heading in ("student", "holder", "card", "debt ¥", "offline transactions"):
        table.add_column(heading, justify="right" if heading == "debt ¥" else "left")
    for d in r.debts:
        table.add_row(
            d.student_id, d.holder_name_masked, d.card_no, yuan(d.debt_fen), ", ".join(d.offline_refs)
        )
    console.print(table)


def _debts(args: argparse.Namespace, session: Session) -> int:
    session.emit(session.client(AdminClient).list_wallet_debts(args.school), _show_debts)
    return 0


def _show_ledger(console: Console, r: admin_pb.GetLedgerSummaryResponse) -> None:
    state = "[green]balanced[/green]" if r.sum_fen == 0 else "[red]NOT BALANCED[/red]"
    table = Table(caption=f"sum ¥{yuan(r.sum_fen)} ({state}), {r.transfer_count} transfers")
    for heading in ("kind", "accounts", "balance ¥"):
        table.add_column(heading, justify="left" if heading == "kind" else "right")
    for t in r.totals:
        table.add_row(t.kind, str(t.accounts), yuan(t.balance_fen))
    console.print(table)


def _ledger(args: argparse.Namespace, session: Session) -> int:
    session.emit(session.client(AdminClient).ledger_summary(), _show_ledger)
    return 0
