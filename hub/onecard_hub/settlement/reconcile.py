"""Reconciliation (对账) of one business date: each bank's statement against the hub's bank-side
transfers booked on that date, matched by domain/reconciliation.py; what is safe is settled here, the
report is stored per (bank, date) and returned.

The hub's records come from `BankFlow`s: settlement's own payments (merchant settlements, wallet
refunds) and whatever other flow registers (top-ups, grants), each able to settle its own open
records: POST when the bank posted it, VOID when the bank has nothing — only after a reversal (冲正)
that the bank answered, so the original can never post later.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import asdict, replace
from typing import Protocol

from onecard_hub.domain.bank import BankOutcome, reversal_id_of
from onecard_hub.domain.errors import InvalidArgument, quoted
from onecard_hub.domain.model import CO_BRANDED_BANKS
from onecard_hub.domain.reconciliation import (
    Action,
    HubState,
    HubTransfer,
    Reconciliation,
    ReconciliationLine,
    StatementError,
    StatementLine,
    parse_statement,
    reconcile,
)
from onecard_hub.domain.settlement import PaymentStatus, parse_business_date
from onecard_hub.hub import Hub
from onecard_hub.settlement.bank_port import SettlementBank
from onecard_hub.settlement.book import SettlementBook
from onecard_hub.settlement.payments import Payer
from onecard_hub.store.records import Batch, ReconciliationRow


class BankFlow(Protocol):
    """One kind of bank-side transfer the hub records (top-ups, grants, settlement's payments)."""

    def records(self, bank_code: str, business_date: str) -> Iterable[HubTransfer]: ...

    async def settle(self, transfer_id: str, action: Action) -> bool:
        """Settles an open record as the statement decided; False when it could not be done safely."""
        ...


STATES = {
    PaymentStatus.PENDING: HubState.PENDING,
    PaymentStatus.UNCERTAIN: HubState.UNCERTAIN,
    PaymentStatus.PAID: HubState.POSTED,
    PaymentStatus.FAILED: HubState.VOIDED,
}


class PaymentFlow:
    """Settlement's own payments as a BankFlow."""

    def __init__(self, book: SettlementBook, payer: Payer, bank: SettlementBank) -> None:
        self._book = book
        self._payer = payer
        self._bank = bank

    def records(self, bank_code: str, business_date: str) -> Iterable[HubTransfer]:
        for payment in self._book.booked_on(bank_code, business_date):
            state = STATES.get(payment.status)
            if state is not None and payment.transfer_id:
                yield HubTransfer(payment.transfer_id, bank_code, payment.purpose, payment.amount_fen, state)

    async def settle(self, transfer_id: str, action: Action) -> bool:
        payment = self._book.by_transfer.get(transfer_id)
        if payment is None or payment.transfer_id != transfer_id or not payment.status.open:
            return False
        if action is Action.POST:
            await self._payer.post(payment)
            return True
        outcome = await self._bank.reverse(
            reversal_id_of(transfer_id), payment.bank_code, transfer_id, payment.booked_date
        )
        if outcome.outcome in (BankOutcome.REVERSED, BankOutcome.REJECTED):
            await self._payer.void(payment)
            return True
        return False


def banks_to_check(bank_code: str) -> list[str]:
    if not bank_code:
        return sorted(CO_BRANDED_BANKS)
    if bank_code not in CO_BRANDED_BANKS:
        raise InvalidArgument(
            "bank_code", f"{quoted(bank_code)} is not a co-branded bank ({', '.join(CO_BRANDED_BANKS)})"
        )
    return [bank_code]


async def reconcile_date(
    hub: Hub,
    book: SettlementBook,
    bank: SettlementBank,
    flows: Sequence[BankFlow],
    business_date: str,
    bank_code: str = "",
) -> list[ReconciliationRow]:
    try:
        day = parse_business_date(business_date).isoformat()
    except ValueError as bad_date:
        raise InvalidArgument("business_date", str(bad_date)) from None
    rows: list[ReconciliationRow] = []
    for code in banks_to_check(bank_code):
        statement = await bank.statement(code, day)
        problem = (
            "" if statement.outcome is BankOutcome.OK else f"no statement: {statement.error or 'refused'}"
        )
        lines: list[StatementLine] = []
        if not problem:
            try:
                lines = parse_statement(statement.csv)
            except StatementError as bad:
                problem = str(bad)
        owners: dict[str, BankFlow] = {}
        records: list[HubTransfer] = []
        for flow in flows:
            for record in flow.records(code, day):
                owners[record.transfer_id] = flow
                records.append(record)
        if problem:
            result = Reconciliation(code, day, ())
        else:
            result = await _settle(reconcile(code, day, records, lines), owners)
        unexplained = result.unexplained + (1 if problem else 0)  # no statement: nothing is explained
        row = ReconciliationRow(code, day, unexplained, _report_json(result, problem), hub.clock.now_ms())
        book.reports[(code, day)] = row
        rows.append(row)
    await hub.writer.submit(Batch(reconciliations=rows))
    return rows


async def _settle(result: Reconciliation, owners: dict[str, BankFlow]) -> Reconciliation:
    """Carries out the safe actions; one that could not be done becomes unexplained (NONE)."""
    lines: list[ReconciliationLine] = []
    for line in result.lines:
        if line.action is not Action.NONE:
            flow = owners.get(line.transfer_id)
            if flow is None or not await flow.settle(line.transfer_id, line.action):
                line = replace(
                    line,
                    action=Action.NONE,
                    note=f"{line.note}; could not be settled now (the bank did not answer the reversal)",
                )
        lines.append(line)
    return Reconciliation(result.bank_code, result.business_date, tuple(lines))


def _report_json(result: Reconciliation, statement_error: str) -> bytes:
    body = {
        "bank_code": result.bank_code,
        "business_date": result.business_date,
        "statement_error": statement_error,
        "unexplained": result.unexplained + (1 if statement_error else 0),
        "lines": [asdict(line) | {"unexplained": line.unexplained} for line in result.lines],
    }
    return json.dumps(body, ensure_ascii=False).encode()
