"""Reconciliation (对账) matching: the pure rules of hub/onecard_hub/domain/reconciliation.py."""

from __future__ import annotations

import pytest

from onecard_hub.domain.reconciliation import (
    STATEMENT_HEADER,
    Action,
    Finding,
    HubState,
    HubTransfer,
    StatementError,
    parse_statement,
    reconcile,
)

HEADER = ",".join(STATEMENT_HEADER)


def statement(*rows: str) -> str:
    return "\n".join((HEADER, *rows)) + "\n"


def hub(transfer_id: str, amount: int, state: HubState, bank: str = "ICBC") -> HubTransfer:
    return HubTransfer(transfer_id, bank, "top_up", amount, state)


def by_id(result):  # type: ignore[no-untyped-def]
    return {line.transfer_id: line for line in result.lines}


def test_parse_statement_reads_lines_and_status() -> None:
    lines = parse_statement(
        statement(
            "R1,t-1,DEBIT,6222001,C1,500,POSTED,2026-11-24T08:00:00+08:00",
            "R2,t-2,CREDIT,6222002,C2,300,TRANSFER_STATUS_REVERSED,2026-11-24T09:00:00+08:00",
        )
    )
    assert [(line.transfer_id, line.amount_fen, line.status.value) for line in lines] == [
        ("t-1", 500, "POSTED"),
        ("t-2", 300, "REVERSED"),
    ]
    assert parse_statement("") == []


@pytest.mark.parametrize(
    ("text", "named"),
    [
        ("a,b\n", "line 1"),
        (statement("R1,t-1,DEBIT,6222001,C1,5.00,POSTED,x"), "line 2: amount_fen"),
        (statement("R1,t-1,DEBIT,6222001,C1,500,MAYBE,x"), "line 2: unknown status"),
        (statement("R1,t-1,DEBIT"), "line 2: 3 fields"),
        (statement("R1,,DEBIT,6222001,C1,500,POSTED,x"), "line 2: transfer_id"),
    ],
)
def test_a_broken_statement_names_its_line(text: str, named: str) -> None:
    with pytest.raises(StatementError, match=named):
        parse_statement(text)


def test_matched_both_ways() -> None:
    lines = parse_statement(statement("R1,t-1,DEBIT,a,c,500,POSTED,x", "R2,t-2,DEBIT,a,c,700,REVERSED,x"))
    result = reconcile(
        "ICBC", "2026-11-24", [hub("t-1", 500, HubState.POSTED), hub("t-2", 700, HubState.VOIDED)], lines
    )
    assert result.matched == 2
    assert result.unexplained == 0
    assert result.auto_settled == 0


def test_a_reversed_line_outranks_the_posted_line_of_the_same_transfer() -> None:
    lines = parse_statement(statement("R1,t-1,DEBIT,a,c,500,POSTED,x", "R1,t-1,DEBIT,a,c,500,REVERSED,y"))
    result = reconcile("ICBC", "2026-11-24", [hub("t-1", 500, HubState.VOIDED)], lines)
    assert by_id(result)["t-1"].finding is Finding.MATCHED


def test_open_record_absent_at_the_bank_is_voided() -> None:
    result = reconcile("ICBC", "2026-11-24", [hub("t-1", 500, HubState.UNCERTAIN)], [])
    line = by_id(result)["t-1"]
    assert (line.finding, line.action) == (Finding.MISSING_AT_BANK, Action.VOID)
    assert result.unexplained == 0 and result.auto_settled == 1


def test_posted_in_the_hub_absent_at_the_bank_is_unexplained() -> None:
    result = reconcile("ICBC", "2026-11-24", [hub("t-1", 500, HubState.POSTED)], [])
    line = by_id(result)["t-1"]
    assert (line.finding, line.action) == (Finding.MISSING_AT_BANK, Action.NONE)
    assert result.unexplained == 1


def test_open_record_posted_at_the_bank_is_posted() -> None:
    lines = parse_statement(statement("R1,t-1,CREDIT,a,c,500,POSTED,x"))
    result = reconcile("ICBC", "2026-11-24", [hub("t-1", 500, HubState.PENDING)], lines)
    line = by_id(result)["t-1"]
    assert (line.finding, line.action) == (Finding.MISSING_IN_HUB, Action.POST)
    assert result.unexplained == 0


def test_unknown_transfer_at_the_bank_is_unexplained() -> None:
    lines = parse_statement(statement("R9,stranger,CREDIT,a,c,100,POSTED,x"))
    result = reconcile("ICBC", "2026-11-24", [], lines)
    line = by_id(result)["stranger"]
    assert (line.finding, line.action, line.flow) == (Finding.MISSING_IN_HUB, Action.NONE, "CREDIT")
    assert result.unexplained == 1


def test_voided_in_the_hub_but_posted_at_the_bank_is_unexplained() -> None:
    lines = parse_statement(statement("R1,t-1,DEBIT,a,c,500,POSTED,x"))
    result = reconcile("ICBC", "2026-11-24", [hub("t-1", 500, HubState.VOIDED)], lines)
    assert by_id(result)["t-1"].unexplained


def test_amount_differs_is_always_unexplained() -> None:
    lines = parse_statement(statement("R1,t-1,DEBIT,a,c,501,POSTED,x"))
    result = reconcile("ICBC", "2026-11-24", [hub("t-1", 500, HubState.UNCERTAIN)], lines)
    line = by_id(result)["t-1"]
    assert (line.finding, line.action) == (Finding.AMOUNT_DIFFERS, Action.NONE)
    assert result.unexplained == 1


def test_other_banks_records_are_left_out() -> None:
    result = reconcile("ICBC", "2026-11-24", [hub("t-1", 500, HubState.POSTED, bank="CCB")], [])
    assert result.lines == ()
