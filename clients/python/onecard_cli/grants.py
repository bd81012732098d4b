"""`onecard grants …`: 奖助学金 (GrantService) — submit a batch from CSV, notify, list notices,
approve, retry failed items, show a batch, the coverage report."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from rich.console import Console

from onecard.grants.v1 import grant_service_pb2 as pb
from onecard_cli.render import show_record, show_rows
from onecard_cli.session import Session, UsageError, as_dict, mutating, request_id_of, yuan
from onecard_client.sync import GrantsClient

TYPES = {
    "national-grant": pb.GRANT_TYPE_NATIONAL_GRANT,  # 国家助学金
    "national-scholarship": pb.GRANT_TYPE_NATIONAL_SCHOLARSHIP,  # 国家奖学金
    "provincial-scholarship": pb.GRANT_TYPE_PROVINCIAL_SCHOLARSHIP,  # 省政府奖学金
    "school-award": pb.GRANT_TYPE_SCHOOL_AWARD,  # 校级奖励
}


def register(commands: Any) -> None:
    group = commands.add_parser("grants", help="奖助学金: batches from CSV, notices, approval, reports")
    actions = group.add_subparsers(dest="action", metavar="ACTION", required=True)
    submit = mutating(
        actions.add_parser("submit", help="a batch from CSV (student_id,amount_fen); bad lines are listed")
    )
    submit.add_argument("file", metavar="FILE.csv")
    submit.add_argument("--school", required=True)
    submit.add_argument("--batch", required=True, metavar="BATCH_ID")
    submit.add_argument("--type", required=True, choices=sorted(TYPES), dest="grant_type")
    submit.add_argument("--year", required=True, metavar="YYYY-YYYY[-T]")
    submit.add_argument("--accept-valid-lines", action="store_true", help="make the batch of the good lines")
    submit.set_defaults(run=_submit)
    for name, run, text in (
        ("notify", _notify, "tell the batch's students without an activated bank function"),
        ("approve", _approve, "approve the batch: it starts paying"),
        ("retry", _retry, "pay the FAILED items again"),
    ):
        parser = mutating(actions.add_parser(name, help=text))
        parser.add_argument("batch_id")
        parser.add_argument("--school", required=True)
        parser.set_defaults(run=run)
    for name, run, text in (
        ("show", _show, "the batch report: totals per status and every item"),
        ("notices", _notices, "the advance notices of a batch"),
    ):
        parser = actions.add_parser(name, help=text)
        parser.add_argument("batch_id")
        parser.add_argument("--school", required=True)
        parser.set_defaults(run=run)
    coverage = actions.add_parser("coverage", help="coverage by grant type and student group")
    coverage.add_argument("--school", default="", help="empty: the province (province administrators)")
    coverage.add_argument("--year", default="", metavar="YYYY-YYYY[-T]")
    coverage.set_defaults(run=_coverage)


def _show_batch(console: Console, batch: pb.GrantBatch) -> None:
    console.print(f"batch {batch.school_id}/{batch.batch_id}: total {yuan(batch.total_fen)}")
    doc = as_dict(batch)
    show_rows(console, "totals", doc.get("totals", []))
    show_rows(console, "items", doc.get("items", []))


def _show_submitted(
    console: Console, r: pb.SubmitGrantBatchResponse | pb.ImportGrantBatchCsvResponse
) -> None:
    if r.accepted:
        console.print(f"accepted; {r.notified} students told to activate their bank function first")
        _show_batch(console, r.batch)
    else:
        console.print("refused: nothing written; fix these lines and submit again")
    if r.errors:
        show_rows(console, "line errors", as_dict(r).get("errors", []))


def _submit(args: argparse.Namespace, session: Session) -> int:
    try:
        text = Path(args.file).read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        raise UsageError(f"{args.file}: {exc}") from None
    request_id = request_id_of(args)
    response = session.client(GrantsClient).import_grant_batch_csv(
        request_id,
        args.school,
        args.batch,
        TYPES[args.grant_type],
        args.year,
        text,
        accept_valid_lines=args.accept_valid_lines,
    )
    session.emit(response, _show_submitted, request_id=request_id)
    return 0 if response.accepted and not response.errors else 1


def _notify(args: argparse.Namespace, session: Session) -> int:
    request_id = request_id_of(args)
    response = session.client(GrantsClient).notify_batch(request_id, args.school, args.batch_id)
    session.emit(response, show_record, request_id=request_id)
    return 0


def _approve(args: argparse.Namespace, session: Session) -> int:
    request_id = request_id_of(args)
    response = session.client(GrantsClient).approve_grant_batch(request_id, args.school, args.batch_id)
    session.emit(response, lambda c, r: _show_batch(c, r.batch), request_id=request_id)
    return 0


def _retry(args: argparse.Namespace, session: Session) -> int:
    request_id = request_id_of(args)
    response = session.client(GrantsClient).retry_failed_items(request_id, args.school, args.batch_id)
    session.emit(response, lambda c, r: _show_batch(c, r.batch), request_id=request_id)
    return 0


def _show(args: argparse.Namespace, session: Session) -> int:
    response = session.client(GrantsClient).get_grant_batch(args.school, args.batch_id)
    session.emit(response, lambda c, r: _show_batch(c, r.batch))
    return 0


def _notices(args: argparse.Namespace, session: Session) -> int:
    response = session.client(GrantsClient).list_notifications(args.school, args.batch_id)
    session.emit(response, lambda c, r: show_rows(c, "notifications", as_dict(r).get("notifications", [])))
    return 0


def _show_coverage(console: Console, r: pb.GetGrantCoverageResponse) -> None:
    doc = as_dict(r)
    show_rows(console, "coverage", doc.get("cells", []))
    show_rows(console, "eligible groups with nothing paid", doc.get("gaps", []))


def _coverage(args: argparse.Namespace, session: Session) -> int:
    response = session.client(GrantsClient).get_grant_coverage(args.school, args.year)
    session.emit(response, _show_coverage)
    return 0
