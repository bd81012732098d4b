"""The daily statement (对账单) as a bank sends it: CSV, the header of GetStatementResponse, then
one line per transfer of the business date that moved money, with its status now."""

from __future__ import annotations

import csv
import datetime as dt
import io

from onecard.bank.v1 import bank_service_pb2 as pb
from onecard_sim.bank.store import Transfer

HEADER = (
    "bank_reference",
    "transfer_id",
    "kind",
    "account_no",
    "card_no",
    "amount_fen",
    "status",
    "posted_at",
)


def statement_csv(rows: list[Transfer]) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(HEADER)
    for row in rows:
        posted = dt.datetime.fromtimestamp(row.posted_ms / 1000, dt.UTC).isoformat(timespec="milliseconds")
        status = pb.TransferStatus.Name(row.status).removeprefix("TRANSFER_STATUS_")  # type: ignore[arg-type]
        writer.writerow(
            (
                row.bank_reference,
                row.transfer_id,
                row.kind,
                row.account_no,
                row.card_no,
                row.amount_fen,
                status,
                posted,
            )
        )
    return out.getvalue()
