"""Money into wallets from the holders' banks, and the bank function (FundsService):

    onecard topup add STUDENT_ID AMOUNT_FEN       圈存 from the holder's bank account
    onecard topup show TOPUP_ID                   one top-up (poll a PENDING one)
    onecard topup auto STUDENT_ID --threshold F --amount F [--off]   auto top-up
    onecard review list [--school S]              top-ups waiting for an operator
    onecard review resolve TOPUP_ID posted|voided --note TEXT   checked against the bank
    onecard bank show STUDENT_ID                  the bank function: status, bank, masked account
    onecard bank change STUDENT_ID NEW_BANK [--guardian]   change of co-branded bank

ID numbers are never arguments: ONECARD_HOLDER_ID_NUMBER / ONECARD_GUARDIAN_ID_NUMBER, a hidden
prompt, or standard input. Exit 1 when a top-up ends VOIDED or waits for review.
"""

from __future__ import annotations

import argparse
from typing import Any

from rich.console import Console

from onecard.funds.v1 import funds_service_pb2 as pb
from onecard_cli.render import show_rows
from onecard_cli.session import Session, mutating, request_id_of, secret, yuan
from onecard_client.sync import FundsClient

RESOLUTIONS = {"posted": pb.RESOLUTION_POSTED, "voided": pb.RESOLUTION_VOIDED}


def register(commands: Any) -> None:
    topup = commands.add_parser("topup", help="圈存: top up a wallet from the holder's bank account")
    actions = topup.add_subparsers(dest="action", metavar="ACTION", required=True)
    add = mutating(actions.add_parser("add", help="top up a student's wallet"))
    add.add_argument("student_id")
    add.add_argument("amount_fen", type=int)
    add.set_defaults(run=_add)
    show = actions.add_parser("show", help="one top-up")
    show.add_argument("topup_id")
    show.set_defaults(run=_show)
    auto = mutating(actions.add_parser("auto", help="set a student's auto top-up"))
    auto.add_argument("student_id")
    auto.add_argument("--threshold", type=int, default=0, help="fen: top up when a purchase leaves less")
    auto.add_argument("--amount", type=int, default=0, help="fen to top up each time")
    auto.add_argument("--off", action="store_true", help="turn auto top-up off")
    auto.set_defaults(run=_auto)

    review = commands.add_parser("review", help="top-ups the bank never made definite (manual review)")
    review_actions = review.add_subparsers(dest="action", metavar="ACTION", required=True)
    listing = review_actions.add_parser("list", help="the manual-review queue")
    listing.add_argument("--school", default="")
    listing.set_defaults(run=_review_list)
    resolve = mutating(review_actions.add_parser("resolve", help="settle one, checked against the bank"))
    resolve.add_argument("topup_id")
    resolve.add_argument("resolution", choices=sorted(RESOLUTIONS))
    resolve.add_argument("--note", required=True, help="what was checked (no personal numbers)")
    resolve.set_defaults(run=_resolve)

    bank = commands.add_parser("bank", help="the bank function and change of co-branded bank")
    bank_actions = bank.add_subparsers(dest="action", metavar="ACTION", required=True)
    bank_show = bank_actions.add_parser("show", help="a student's bank function")
    bank_show.add_argument("student_id")
    bank_show.set_defaults(run=_bank_show)
    change = mutating(bank_actions.add_parser("change", help="change the co-branded bank"))
    change.add_argument("student_id")
    change.add_argument("new_bank_code")
    change.add_argument("--guardian", action="store_true", help="a guardian acts for a minor")
    change.set_defaults(run=_bank_change)


def _name(enum: Any, value: int, prefix: str) -> str:
    return str(enum.Name(value)).removeprefix(prefix).lower()


def _rows(topups: list[pb.TopUp]) -> list[dict[str, str]]:
    return [
        {
            "top-up": t.topup_id,
            "student": t.student_id,
            "card": t.card_no_masked,
            "bank": t.bank_code,
            "amount": yuan(t.amount_fen),
            "state": _name(pb.TopUpState, t.state, "TOP_UP_STATE_"),
            "origin": _name(pb.TopUpOrigin, t.origin, "TOP_UP_ORIGIN_"),
            "reversals": str(t.reversal_attempts),
            "reason": t.reason,
        }
        for t in topups
    ]


def _show_topup(console: Console, topup: pb.TopUp) -> None:
    show_rows(console, "top-up (圈存)", _rows([topup]))


def _add(args: argparse.Namespace, session: Session) -> int:
    request_id = request_id_of(args)
    response = session.client(FundsClient).top_up(request_id, args.amount_fen, student_id=args.student_id)
    session.emit(response, lambda c, r: _show_topup(c, r.topup), request_id=request_id)
    return 0 if response.topup.state in (pb.TOP_UP_STATE_POSTED, pb.TOP_UP_STATE_PENDING) else 1


def _show(args: argparse.Namespace, session: Session) -> int:
    response = session.client(FundsClient).get_top_up(args.topup_id)
    session.emit(response, lambda c, r: _show_topup(c, r.topup))
    return 0


def _auto(args: argparse.Namespace, session: Session) -> int:
    request_id = request_id_of(args)
    response = session.client(FundsClient).set_auto_top_up(
        request_id, args.threshold, args.amount, not args.off, student_id=args.student_id
    )

    def show(console: Console, r: pb.SetAutoTopUpResponse) -> None:
        a = r.auto_topup
        state = f"under {yuan(a.threshold_fen)} top up {yuan(a.amount_fen)}" if a.enabled else "off"
        console.print(f"auto top-up of {args.student_id}: {state}")

    session.emit(response, show, request_id=request_id)
    return 0


def _review_list(args: argparse.Namespace, session: Session) -> int:
    response = session.client(FundsClient).list_manual_review(school_id=args.school)
    session.emit(response, lambda c, r: show_rows(c, "manual review", _rows(list(r.topups))))
    return 0


def _resolve(args: argparse.Namespace, session: Session) -> int:
    request_id = request_id_of(args)
    response = session.client(FundsClient).resolve_manual_review(
        request_id, args.topup_id, RESOLUTIONS[args.resolution], args.note
    )

    def show(console: Console, r: pb.ResolveManualReviewResponse) -> None:
        _show_topup(console, r.topup)
        console.print(f"the bank said: {r.bank_status}")

    session.emit(response, show, request_id=request_id)
    return 0


def _bank_show(args: argparse.Namespace, session: Session) -> int:
    response = session.client(FundsClient).get_bank_function(args.student_id)

    def show(console: Console, r: pb.GetBankFunctionResponse) -> None:
        row = {
            "student": r.student_id,
            "card": r.card_no_masked,
            "bank": f"{r.bank_code} {r.bank_name}",
            "status": _name(pb.BankFunctionStatus, r.status, "BANK_FUNCTION_STATUS_"),
            "account": r.account_no_masked or "(bank not asked)",
            "auto top-up": (
                f"under {yuan(r.auto_topup.threshold_fen)} top up {yuan(r.auto_topup.amount_fen)}"
                if r.auto_topup.enabled
                else f"off {r.auto_topup.last_failure}".strip()
            ),
        }
        if r.HasField("last_change"):
            ch = r.last_change
            row["last change"] = (
                f"{ch.old_bank_code} → {ch.new_bank_code} "
                f"({_name(pb.BankChangeState, ch.state, 'BANK_CHANGE_STATE_')})"
            )
        show_rows(console, "bank function", [row])

    session.emit(response, show)
    return 0


def _bank_change(args: argparse.Namespace, session: Session) -> int:
    holder = secret(args, "holder's ID number", "ONECARD_HOLDER_ID_NUMBER")
    guardian = secret(args, "guardian's ID number", "ONECARD_GUARDIAN_ID_NUMBER") if args.guardian else ""
    request_id = request_id_of(args)
    response = session.client(FundsClient).change_bank(
        request_id, args.student_id, args.new_bank_code, holder, guardian_id_number=guardian
    )

    def show(console: Console, r: pb.ChangeBankResponse) -> None:
        ch = r.change
        state = _name(pb.BankChangeState, ch.state, "BANK_CHANGE_STATE_")
        console.print(
            f"{args.student_id}: {ch.old_bank_code} → {ch.new_bank_code}, new account {r.account_no_masked};"
            f" old account {state}"
        )

    session.emit(response, show, request_id=request_id)
    return 0
