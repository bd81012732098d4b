"""Reconciliation (对账): the hub's bank-side transfers of one business date against a bank's statement.

Pure matching, no I/O. The hub knows each outgoing bank transfer by its `transfer_id` (top-ups, grant
items, wallet refunds, merchant settlements) with the state it holds for it; the bank's daily statement
(GetStatement CSV) lists every transfer it posted, reversed or returned that day. What moved money at the
bank is a POSTED line; REVERSED and RETURNED lines moved nothing in the end.

Each transfer_id on either side ends in one `Finding`:

- MATCHED: both sides agree (posted with the same amount, or nothing moved on either side);
- MISSING_AT_BANK: the hub booked it, the bank moved nothing. Safe to settle when the hub's record is
  still pending/uncertain: void it (`Action.VOID`); a POSTED hub record is unexplained;
- MISSING_IN_HUB: the bank posted it, the hub has no posted record. Safe to settle when the hub holds the
  transfer_id as pending/uncertain with the same amount: post it (`Action.POST`); otherwise unexplained;
- AMOUNT_DIFFERS: both sides know it with different amounts; always unexplained.

Auto-settle only what is safe; report the rest (`unexplained`).
"""

from __future__ import annotations

import csv
import enum
import io
from collections.abc import Iterable
from dataclasses import dataclass

STATEMENT_HEADER = (
    "bank_reference",
    "transfer_id",
    "kind",
    "account_no",
    "card_no",
    "amount_fen",
    "status",
    "posted_at",
)


class HubState(enum.StrEnum):
    """What the hub holds for one of its outgoing bank transfers."""

    PENDING = "pending"  # recorded, call in flight or never answered
    UNCERTAIN = "uncertain"  # timeout, UNAVAILABLE after the bank may have applied it, dropped reply
    POSTED = "posted"  # the bank said POSTED; the ledger has it
    VOIDED = "voided"  # the bank refused, reversed or never saw it; nothing moved
    FAILED = "failed"  # refused by the bank (e.g. not activated); nothing moved
    RETURNED = "returned"  # credited, then sent back by the receiving account

    @property
    def open(self) -> bool:
        return self in (HubState.PENDING, HubState.UNCERTAIN)

    @property
    def moved(self) -> bool:
        return self is HubState.POSTED


class BankLineStatus(enum.StrEnum):
    POSTED = "POSTED"
    REVERSED = "REVERSED"
    RETURNED = "RETURNED"


class Finding(enum.StrEnum):
    MATCHED = "matched"
    MISSING_AT_BANK = "missing_at_bank"
    MISSING_IN_HUB = "missing_in_hub"
    AMOUNT_DIFFERS = "amount_differs"


class Action(enum.StrEnum):
    NONE = "none"  # nothing to do (matched) or nothing safe to do (unexplained)
    VOID = "void"  # settle the hub's open record as voided
    POST = "post"  # settle the hub's open record as posted


@dataclass(frozen=True, slots=True)
class HubTransfer:
    """One outgoing bank transfer as the hub recorded it."""

    transfer_id: str
    bank_code: str
    flow: str  # top_up, grant, wallet_refund, merchant_settlement
    amount_fen: int
    state: HubState


@dataclass(frozen=True, slots=True)
class StatementLine:
    bank_reference: str
    transfer_id: str
    kind: str
    account_no: str
    card_no: str
    amount_fen: int
    status: BankLineStatus
    posted_at: str

    @property
    def moved(self) -> bool:
        return self.status is BankLineStatus.POSTED


@dataclass(frozen=True, slots=True)
class ReconciliationLine:
    transfer_id: str
    flow: str  # the hub's flow, or the statement's kind when the hub does not know it
    finding: Finding
    action: Action
    hub_amount_fen: int  # 0 when the hub has no record
    bank_amount_fen: int  # 0 when the bank has no line
    hub_state: str  # "" when the hub has no record
    bank_status: str  # "" when the bank has no line
    note: str

    @property
    def unexplained(self) -> bool:
        return self.finding is not Finding.MATCHED and self.action is Action.NONE


@dataclass(frozen=True, slots=True)
class Reconciliation:
    bank_code: str
    business_date: str
    lines: tuple[ReconciliationLine, ...]

    def count(self, finding: Finding) -> int:
        return sum(1 for line in self.lines if line.finding is finding)

    @property
    def matched(self) -> int:
        return self.count(Finding.MATCHED)

    @property
    def auto_settled(self) -> int:
        return sum(1 for line in self.lines if line.action is not Action.NONE)

    @property
    def unexplained(self) -> int:
        return sum(1 for line in self.lines if line.unexplained)


class StatementError(ValueError):
    """A statement that cannot be read; the message names the line."""


def parse_statement(text: str) -> list[StatementLine]:
    """The bank's CSV statement: a header line, then one line per posted, reversed or returned transfer."""
    rows = list(csv.reader(io.StringIO(text)))
    rows = [row for row in rows if any(cell.strip() for cell in row)]
    if not rows:
        return []
    header = tuple(cell.strip() for cell in rows[0])
    if header != STATEMENT_HEADER:
        raise StatementError(
            f"statement line 1: header is {','.join(header)!r}, not {','.join(STATEMENT_HEADER)!r}"
        )
    lines: list[StatementLine] = []
    for number, row in enumerate(rows[1:], start=2):
        if len(row) != len(STATEMENT_HEADER):
            raise StatementError(f"statement line {number}: {len(row)} fields, not {len(STATEMENT_HEADER)}")
        fields = dict(zip(STATEMENT_HEADER, (cell.strip() for cell in row), strict=True))
        try:
            amount = int(fields["amount_fen"])
        except ValueError:
            raise StatementError(
                f"statement line {number}: amount_fen {fields['amount_fen']!r} is not fen"
            ) from None
        try:
            status = BankLineStatus(fields["status"].upper().removeprefix("TRANSFER_STATUS_"))
        except ValueError:
            raise StatementError(f"statement line {number}: unknown status {fields['status']!r}") from None
        if not fields["transfer_id"]:
            raise StatementError(f"statement line {number}: transfer_id is empty")
        lines.append(
            StatementLine(
                fields["bank_reference"],
                fields["transfer_id"],
                fields["kind"],
                fields["account_no"],
                fields["card_no"],
                amount,
                status,
                fields["posted_at"],
            )
        )
    return lines


def _net_lines(lines: Iterable[StatementLine]) -> dict[str, StatementLine]:
    """One line per transfer_id; a REVERSED/RETURNED line outranks the POSTED line of the same transfer."""
    net: dict[str, StatementLine] = {}
    for line in lines:
        held = net.get(line.transfer_id)
        if held is None or (held.moved and not line.moved):
            net[line.transfer_id] = line
    return net


def reconcile(
    bank_code: str,
    business_date: str,
    hub: Iterable[HubTransfer],
    statement: Iterable[StatementLine],
) -> Reconciliation:
    """Match the hub's transfers of one bank and date against that bank's statement lines."""
    records = {record.transfer_id: record for record in hub if record.bank_code == bank_code}
    bank = _net_lines(statement)
    lines: list[ReconciliationLine] = []
    for transfer_id in sorted(records.keys() | bank.keys()):
        record = records.get(transfer_id)
        line = bank.get(transfer_id)
        lines.append(_match(transfer_id, record, line))
    return Reconciliation(bank_code, business_date, tuple(lines))


def _match(transfer_id: str, record: HubTransfer | None, line: StatementLine | None) -> ReconciliationLine:
    hub_amount = record.amount_fen if record else 0
    bank_amount = line.amount_fen if line else 0
    flow = record.flow if record else (line.kind if line else "")
    hub_state = record.state.value if record else ""
    bank_status = line.status.value if line else ""

    def result(finding: Finding, action: Action, note: str) -> ReconciliationLine:
        return ReconciliationLine(
            transfer_id, flow, finding, action, hub_amount, bank_amount, hub_state, bank_status, note
        )

    bank_moved = line is not None and line.moved
    if record is None:
        if bank_moved:
            return result(
                Finding.MISSING_IN_HUB, Action.NONE, "the bank posted a transfer the hub never made"
            )
        return result(Finding.MATCHED, Action.NONE, "unknown to the hub; nothing moved at the bank")
    if line is not None and line.amount_fen != record.amount_fen:
        return result(Finding.AMOUNT_DIFFERS, Action.NONE, "the amounts differ")
    if bank_moved:
        if record.state.moved:
            return result(Finding.MATCHED, Action.NONE, "posted on both sides")
        if record.state.open:
            return result(
                Finding.MISSING_IN_HUB, Action.POST, "posted at the bank: the open record settles as posted"
            )
        return result(
            Finding.MISSING_IN_HUB, Action.NONE, f"posted at the bank, {record.state.value} in the hub"
        )
    if record.state.moved:
        return result(Finding.MISSING_AT_BANK, Action.NONE, "posted in the hub, nothing moved at the bank")
    if record.state.open:
        return result(
            Finding.MISSING_AT_BANK, Action.VOID, "nothing moved at the bank: the open record voids"
        )
    return result(Finding.MATCHED, Action.NONE, "nothing moved on either side")
