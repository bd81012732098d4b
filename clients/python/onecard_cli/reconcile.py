"""Money paid out to the banks, and the check against them (SettlementService):

    onecard reconcile --date D [--bank CODE] [--stored] [--all]   对账: statements vs the hub
    onecard settle run --date D [--school S]                       pay each canteen window its day
    onecard settle report --date D [--school S]                    the settlement per merchant
    onecard settle refund STUDENT_ID                               a leaver's wallet to their bank

`reconcile` prints per bank what matched, what it settled safely and what is unexplained; `--json`
prints the whole report (its `unexplained` is what the bank-outage scenario reports).
"""

from __future__ import annotations

import argparse
from typing import Any

from rich.console import Console

from onecard.settlement.v1 import settlement_service_pb2 as pb
from onecard_cli.render import show_rows
from onecard_cli.session import Session, as_dict, mutating, request_id_of, yuan
from onecard_client.sync import SettlementClient


def register(commands: Any) -> None:
    parser = mutating(commands.add_parser("reconcile", help="对账: the banks' statements against the hub"))
    parser.add_argument("--date", required=True, help="business date, YYYY-MM-DD")
    parser.add_argument("--bank", default="", help="one co-branded bank code (default: every bank)")
    parser.add_argument("--stored", action="store_true", help="show the stored report; fetch nothing")
    parser.add_argument("--all", action="store_true", help="list the matched lines too")
    parser.set_defaults(run=_reconcile)

    group = commands.add_parser("settle", help="merchant settlement and wallet refunds to bank accounts")
    actions = group.add_subparsers(dest="action", metavar="ACTION", required=True)
    run = mutating(actions.add_parser("run", help="pay each canteen window its takings of a day"))
    run.add_argument("--date", required=True, help="business date, YYYY-MM-DD (a day that is over)")
    run.add_argument("--school", default="", help="one school (default: the clerk's, or every school)")
    run.set_defaults(run=_settle)
    report = actions.add_parser("report", help="the settlement of a day per merchant")
    report.add_argument("--date", required=True, help="business date, YYYY-MM-DD")
    report.add_argument("--school", default="")
    report.set_defaults(run=_report)
    refund = mutating(actions.add_parser("refund", help="pay a graduate's or leaver's wallet to their bank"))
    refund.add_argument("student_id")
    refund.set_defaults(run=_refund)


def _show_reports(
    console: Console, reports: list[pb.ReconciliationReport], unexplained: int, every: bool
) -> None:
    show_rows(
        console,
        "reconciliation (对账)",
        [
            {
                "bank": r.bank_code,
                "date": r.business_date,
                "matched": str(r.matched),
                "missing at bank": str(r.missing_at_bank),
                "missing in hub": str(r.missing_in_hub),
                "amount differs": str(r.amount_differs),
                "auto-settled": str(r.auto_settled),
                "unexplained": str(r.unexplained),
                "statement": r.statement_error or "ok",
            }
            for r in reports
        ],
    )
    lines = [
        {"bank": r.bank_code, **as_dict(line)}
        for r in reports
        for line in r.lines
        if every or line.finding != pb.FINDING_MATCHED
    ]
    if lines:
        show_rows(console, "lines", lines)
    console.print(f"unexplained differences: {unexplained}")


def _reconcile(args: argparse.Namespace, session: Session) -> int:
    client = session.client(SettlementClient)
    if args.stored:
        stored = client.get_reconciliation_report(args.date, bank_code=args.bank)
        session.emit(stored, lambda c, r: _show_reports(c, list(r.reports), r.unexplained, args.all))
        return 0
    request_id = request_id_of(args)
    response = client.reconcile(request_id, args.date, bank_code=args.bank)
    session.emit(
        response,
        lambda c, r: _show_reports(c, list(r.reports), r.unexplained, args.all),
        request_id=request_id,
    )
    return 0


def _show_settlements(console: Console, settlements: list[pb.MerchantSettlement]) -> None:
    show_rows(
        console,
        "merchant settlement",
        [
            {
                "merchant": s.merchant_id,
                "school": s.school_id,
                "date": s.business_date,
                "sales": f"{yuan(s.sales_fen)} ({s.sales_count})",
                "refunds": f"{yuan(s.given_back_fen)} ({s.given_back_count})",
                "takings": yuan(s.takings_fen),
                "paid": yuan(s.paid_fen),
                "status": pb.PaymentStatus.Name(s.status).removeprefix("PAYMENT_STATUS_").lower(),
                "bank": s.bank_code,
                "failure": s.failure,
            }
            for s in settlements
        ],
    )


def _settle(args: argparse.Namespace, session: Session) -> int:
    request_id = request_id_of(args)
    response = session.client(SettlementClient).run_merchant_settlement(
        request_id, args.date, school_id=args.school
    )
    session.emit(response, lambda c, r: _show_settlements(c, list(r.settlements)), request_id=request_id)
    open_ = [
        s
        for s in response.settlements
        if s.status not in (pb.PAYMENT_STATUS_PAID, pb.PAYMENT_STATUS_NOTHING_TO_PAY)
    ]
    return 1 if open_ else 0


def _report(args: argparse.Namespace, session: Session) -> int:
    response = session.client(SettlementClient).get_settlement_report(args.date, school_id=args.school)

    def show(console: Console, r: pb.GetSettlementReportResponse) -> None:
        _show_settlements(console, list(r.settlements))
        console.print(f"takings {yuan(r.takings_fen)}, paid {yuan(r.paid_fen)}")

    session.emit(response, show)
    return 0


def _refund(args: argparse.Namespace, session: Session) -> int:
    request_id = request_id_of(args)
    response = session.client(SettlementClient).refund_wallet(request_id, args.student_id)

    def show(console: Console, r: pb.RefundWalletResponse) -> None:
        f = r.refund
        status = pb.PaymentStatus.Name(f.status).removeprefix("PAYMENT_STATUS_").lower()
        console.print(
            f"{f.student_id}: {yuan(f.amount_fen)} to {f.bank_code or '(no bank)'}: {status} {f.failure}"
        )

    session.emit(response, show, request_id=request_id)
    return 0 if response.refund.status in (pb.PAYMENT_STATUS_PAID, pb.PAYMENT_STATUS_NOTHING_TO_PAY) else 1
