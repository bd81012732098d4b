"""Reconciliation (对账) over a real hub and an in-process bank with a statement: matched lines, a
dropped reply left uncertain settled as posted from the statement, a credit that never applied
voided (after a reversal) and paid again later, a transfer the hub never made is unexplained."""

from __future__ import annotations

from pathlib import Path

import pytest

from onecard.settlement.v1 import settlement_service_pb2 as pb
from onecard_client import InvalidArgumentError
from onecard_client.campus import CampusCredentials
from onecard_hub.domain.clock import ManualClock
from tests.helpers import Campus
from tests.integration.cli_runner import runner
from tests.integration.settlement_bank import StatementBank
from tests.integration.test_settlement import DAY, buy, rid, settling_hub

BOOKED = "2026-11-25"  # settled the day after the takings: the statement's date


async def test_reconcile_matches_settles_what_is_safe_and_reports_the_rest(
    campus_dir: Path, clock: ManualClock, creds: CampusCredentials
) -> None:
    bank = StatementBank()
    async with settling_hub(campus_dir, clock, bank) as (hub, client):
        campus = Campus(creds, clock, hub.target)
        await buy(campus, 0, 1_000)
        await buy(campus, 1, 700, skip=1)
        await buy(campus, 2, 300, skip=2)
        await campus.close()
        m0, m1, m2 = (campus.pos(index=i).merchant_id for i in range(3))
        clock.advance(minutes=24 * 60)

        # m0 paid; m1: applied, reply dropped; m2: refused without applying; no inquiry answered.
        bank.inquiries_down = True
        bank.drop_once.add(f"acct-{m1}")
        bank.refuse_once.add(f"acct-{m2}")
        answer = await client.run_merchant_settlement(rid(), DAY)
        ran = {s.merchant_id: s.status for s in answer.settlements}
        ran_ids = {s.merchant_id: s.transfer_id for s in answer.settlements}
        assert ran[m0] == pb.PAYMENT_STATUS_PAID
        assert ran[m1] == ran[m2] == pb.PAYMENT_STATUS_UNCERTAIN
        bank.inquiries_down = False
        bank.credit_direct("stranger-1", "acct-x", 4_200, BOOKED)

        result = await client.reconcile(rid(), BOOKED, bank_code="ICBC")
        (report,) = result.reports
        lines = {line.transfer_id: line for line in report.lines}
        assert lines["stranger-1"].finding == pb.FINDING_MISSING_IN_HUB
        assert lines["stranger-1"].unexplained
        assert result.unexplained == 1
        assert report.auto_settled == 2
        assert (lines[ran_ids[m1]].action, lines[ran_ids[m2]].action) == (
            pb.SETTLE_ACTION_POSTED,
            pb.SETTLE_ACTION_VOIDED,
        )

        after = await client.get_settlement_report(DAY)
        status = {s.merchant_id: s for s in after.settlements}
        assert status[m1].status == pb.PAYMENT_STATUS_PAID  # posted from the statement
        assert status[m2].status == pb.PAYMENT_STATUS_FAILED  # voided after a reversal
        assert status[m2].failure == "NOT_APPLIED"

        again = await client.run_merchant_settlement(rid(), DAY)
        final = {s.merchant_id: s for s in again.settlements}
        assert all(
            s.status in (pb.PAYMENT_STATUS_PAID, pb.PAYMENT_STATUS_NOTHING_TO_PAY) for s in final.values()
        )
        assert bank.balances[f"acct-{m0}"] == 1_000
        assert bank.balances[f"acct-{m1}"] == 700
        assert bank.balances[f"acct-{m2}"] == 300
        assert hub.hub.campus.ledger.total_fen() == 0

        second = await client.reconcile(rid(), BOOKED, bank_code="ICBC")
        assert second.unexplained == 1  # only the stranger
        assert all(
            line.finding == pb.FINDING_MATCHED
            for line in second.reports[0].lines
            if line.transfer_id != "stranger-1"
        )
        stored = await client.get_reconciliation_report(BOOKED, bank_code="ICBC")
        assert stored.unexplained == 1


@pytest.mark.parametrize(
    ("field", "date", "bank"), [("business_date", "yesterday", ""), ("bank_code", BOOKED, "XYZ")]
)
async def test_bad_reconcile_input_is_named(
    campus_dir: Path, clock: ManualClock, field: str, date: str, bank: str
) -> None:
    async with settling_hub(campus_dir, clock, StatementBank()) as (_, client):
        with pytest.raises(InvalidArgumentError) as caught:
            await client.reconcile(rid(), date, bank_code=bank)
        assert caught.value.field == field


async def test_the_command_line_reconciles_and_settles(
    campus_dir: Path, clock: ManualClock, creds: CampusCredentials, capsys: pytest.CaptureFixture[str]
) -> None:
    cli = runner(capsys)
    bank = StatementBank()
    async with settling_hub(campus_dir, clock, bank) as (hub, _):
        campus = Campus(creds, clock, hub.target)
        await buy(campus, 0, 900)
        await campus.close()
        clock.advance(minutes=24 * 60)
        bank.credit_direct("stranger-2", "acct-y", 100, BOOKED)
        base = ("--hub", hub.target, "--operator", "province-admin")

        settled = await cli(*base, "settle", "run", "--date", DAY)
        assert settled.code == 0, settled.err
        assert "merchant settlement" in settled.out
        shown = await cli(*base, "--json", "settle", "report", "--date", DAY)
        assert shown.json()["paid_fen"] == "900"

        table = await cli(*base, "reconcile", "--date", BOOKED, "--bank", "ICBC")
        assert table.code == 0, table.err
        assert "unexplained differences: 1" in table.out
        doc = (await cli(*base, "--json", "reconcile", "--date", BOOKED, "--stored")).json()
        assert doc["unexplained"] == 1
        assert (await cli(*base, "reconcile", "--date", "2026-02-30")).code == 1
