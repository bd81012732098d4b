"""`onecard card …`: the card office (CardOfficeService).

PINs and ID numbers never go on the command line: they come from ONECARD_PIN, ONECARD_NEW_PIN,
ONECARD_OLD_PIN, ONECARD_HOLDER_ID_NUMBER and ONECARD_GUARDIAN_ID_NUMBER, else a hidden prompt,
else standard input (one per line, in that order). A new card's keys (its personalization, for
the card printer) are never printed: `--keys-out FILE` writes them to an owner-only file.
"""

from __future__ import annotations

import argparse
import json
import os
from typing import Any

from google.protobuf.message import Message

from onecard.cardoffice.v1 import card_office_service_pb2 as office_pb
from onecard_cli.render import show_record
from onecard_cli.session import Session, UsageError, as_dict, mutating, request_id_of, secret
from onecard_client.sync import CardOfficeClient

RELATIONS = ("parent", "grandparent", "sibling", "legal_guardian", "other_relative")
# Commands that take only a card number: command → (client method, help).
SIMPLE = {
    "enable": ("enable_identity", "enable the card's identity function"),
    "report-loss": ("report_loss", "挂失: report the card lost (its next tap is declined)"),
    "freeze": ("freeze_card", "freeze the card (the school's, reversible)"),
    "unfreeze": ("unfreeze_card", "unfreeze the card"),
    "ecard-suspend": ("suspend_ecard", "suspend the e-card (the physical card keeps working)"),
    "ecard-resume": ("resume_ecard", "resume the e-card"),
}


def register(commands: Any) -> None:
    group = commands.add_parser(
        "card", help="the card office: issue, loss, unlock, replace, freeze, PIN, e-card"
    )
    actions = group.add_subparsers(dest="action", metavar="ACTION", required=True)
    issue = mutating(actions.add_parser("issue", help="issue a card to a student (PIN: ONECARD_PIN)"))
    issue.add_argument("student_id")
    issue.add_argument("--bank", required=True, help="co-branded bank code: ICBC, CCB, ABC, BOC, JXB")
    issue.add_argument("--generation", type=int, choices=(2, 3), default=3)
    _guardian_options(issue)
    _keys_out(issue)
    issue.set_defaults(run=_issue)
    for name, (method, text) in SIMPLE.items():
        parser = mutating(actions.add_parser(name, help=text))
        parser.add_argument("card_no")
        parser.set_defaults(run=_simple, method=method)
    unlock = mutating(actions.add_parser("unlock", help="解挂 after an identity check"))
    unlock.add_argument("card_no")
    _proof_options(unlock)
    unlock.set_defaults(run=_unlock)
    replace = mutating(actions.add_parser("replace", help="补换: a new card, the old one dead for good"))
    replace.add_argument("card_no")
    replace.add_argument("--bank", required=True, help="any co-branded bank (the holder's free choice)")
    replace.add_argument("--generation", type=int, choices=(2, 3), default=3)
    _proof_options(replace)
    _keys_out(replace)
    replace.set_defaults(run=_replace)
    reset = mutating(actions.add_parser("pin-reset", help="reset the PIN after an identity check"))
    reset.add_argument("card_no")
    _proof_options(reset)
    reset.set_defaults(run=_pin_reset)
    change = mutating(actions.add_parser("pin-change", help="change the PIN (old PIN required)"))
    change.add_argument("card_no")
    change.set_defaults(run=_pin_change)
    show = actions.add_parser("show", help="a card, or a student's current card")
    show.add_argument("card_no", nargs="?", default="")
    show.add_argument("--student", default="")
    show.set_defaults(run=_show)
    audit = actions.add_parser("audit", help="the audit log, newest first")
    audit.add_argument("--student", default="")
    audit.add_argument("--by", default="", metavar="OPERATOR")
    audit.add_argument("--limit", type=int, default=50)
    audit.add_argument("--page-token", default="")
    audit.set_defaults(run=_audit)


def _guardian_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--guardian-name", default="", help="for a minor (ID number: ONECARD_GUARDIAN_ID_NUMBER)"
    )
    parser.add_argument("--guardian-relation", choices=RELATIONS, default="parent")


def _proof_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--guardian",
        action="store_true",
        help="the holder is a minor: the guardian's ID number too (ONECARD_GUARDIAN_ID_NUMBER)",
    )


def _keys_out(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--keys-out", default="", metavar="FILE", help="write the new card's keys there (0600)"
    )


def _proof(args: argparse.Namespace) -> tuple[str, str]:
    holder = secret(args, "holder's ID number", "ONECARD_HOLDER_ID_NUMBER")
    guardian = secret(args, "guardian's ID number", "ONECARD_GUARDIAN_ID_NUMBER") if args.guardian else ""
    return holder, guardian


def _withhold_keys(args: argparse.Namespace, response: Message) -> None:
    """Takes the personalization out of the answer; writes it to --keys-out when asked."""
    personalization = getattr(response, "personalization")  # noqa: B009
    if args.keys_out:
        doc = as_dict(personalization)
        try:
            fd = os.open(args.keys_out, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(fd, "w", encoding="utf-8") as out:
                json.dump(doc, out, indent=2)
        except OSError as exc:
            raise UsageError(f"--keys-out {args.keys_out}: {exc.strerror}") from None
    response.ClearField("personalization")


def _issue(args: argparse.Namespace, session: Session) -> int:
    pin = secret(args, "initial PIN", "ONECARD_PIN")
    guardian = None
    if args.guardian_name:
        guardian = office_pb.Guardian(
            name=args.guardian_name,
            id_number=secret(args, "guardian's ID number", "ONECARD_GUARDIAN_ID_NUMBER"),
            relation=office_pb.GuardianRelation.Value(f"GUARDIAN_RELATION_{args.guardian_relation.upper()}"),
        )
    request_id = request_id_of(args)
    response = session.client(CardOfficeClient).issue_card(
        request_id, args.student_id, args.bank, pin, generation=args.generation, guardian=guardian
    )
    _withhold_keys(args, response)
    session.emit(response, show_record, request_id=request_id)
    return 0


def _simple(args: argparse.Namespace, session: Session) -> int:
    request_id = request_id_of(args)
    response = getattr(session.client(CardOfficeClient), args.method)(request_id, args.card_no)
    session.emit(response, show_record, request_id=request_id)
    return 0


def _unlock(args: argparse.Namespace, session: Session) -> int:
    holder, guardian = _proof(args)
    request_id = request_id_of(args)
    response = session.client(CardOfficeClient).unlock(request_id, args.card_no, holder, guardian)
    session.emit(response, show_record, request_id=request_id)
    return 0


def _replace(args: argparse.Namespace, session: Session) -> int:
    pin = secret(args, "new card's PIN", "ONECARD_PIN")
    holder, guardian = _proof(args)
    request_id = request_id_of(args)
    response = session.client(CardOfficeClient).replace_card(
        request_id, args.card_no, args.bank, pin, holder, guardian, generation=args.generation
    )
    _withhold_keys(args, response)
    session.emit(response, show_record, request_id=request_id)
    return 0


def _pin_reset(args: argparse.Namespace, session: Session) -> int:
    new_pin = secret(args, "new PIN", "ONECARD_NEW_PIN")
    holder, guardian = _proof(args)
    request_id = request_id_of(args)
    response = session.client(CardOfficeClient).reset_pin(request_id, args.card_no, new_pin, holder, guardian)
    session.emit(response, show_record, request_id=request_id)
    return 0


def _pin_change(args: argparse.Namespace, session: Session) -> int:
    old_pin = secret(args, "old PIN", "ONECARD_OLD_PIN")
    new_pin = secret(args, "new PIN", "ONECARD_NEW_PIN")
    request_id = request_id_of(args)
    response = session.client(CardOfficeClient).change_pin(request_id, args.card_no, old_pin, new_pin)
    session.emit(response, show_record, request_id=request_id)
    return 0


def _show(args: argparse.Namespace, session: Session) -> int:
    if bool(args.card_no) == bool(args.student):
        raise UsageError("card show: give a card number or --student, not both")
    response = session.client(CardOfficeClient).get_card(args.card_no, student_id=args.student)
    session.emit(response, show_record)
    return 0


def _audit(args: argparse.Namespace, session: Session) -> int:
    response = session.client(CardOfficeClient).query_audit_log(
        student_id=args.student, operator_id=args.by, page_size=args.limit, page_token=args.page_token
    )
    session.emit(response, show_record)
    return 0
