"""Merchant settlement and wallet refund on leaving, over a real hub and an in-process bank
(tests/integration/settlement_bank.py): each merchant's day paid once, a leaving student's wallet
refunded once, refusals visible and retried, bad input named."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import pytest

from onecard.auth.v1 import authorization_service_pb2 as auth_pb
from onecard.settlement.v1 import settlement_service_pb2 as pb
from onecard_client import (
    ClientConfig,
    FailedPreconditionError,
    InvalidArgumentError,
    SettlementClient,
    StudentRecordsClient,
)
from onecard_client.campus import CampusCredentials
from onecard_hub.domain.clock import ManualClock
from onecard_hub.server import RunningHub, running_hub
from tests.conftest import hub_config
from tests.helpers import Campus
from tests.integration.settlement_bank import StatementBank, running_statement_bank

ADMIN = "province-admin"
DAY = "2026-11-24"  # the conftest clock's lunch
BUY = auth_pb.SCENE_CANTEEN_PURCHASE


def rid() -> str:
    return uuid.uuid4().hex


@asynccontextmanager
async def settling_hub(
    campus_dir: Path, clock: ManualClock, bank: StatementBank
) -> AsyncIterator[tuple[RunningHub, SettlementClient]]:
    """A hub paying through `bank`; every canteen window has an ICBC account "acct-<merchant>"."""
    async with (
        running_statement_bank(bank) as target,
        running_hub(hub_config(campus_dir, bank=target), clock) as hub,
    ):
        assert hub.settlement is not None
        merchants = {t.merchant_id for t in hub.hub.campus.terminals.values() if t.merchant_id}
        hub.settlement.merchant_banks = {m: ("ICBC", f"acct-{m}") for m in merchants}
        async with SettlementClient(ADMIN, ClientConfig(target=hub.target)) as client:
            yield hub, client


async def buy(campus: Campus, pos: int, amount_fen: int, skip: int = 0) -> None:
    answer = await campus.send(
        campus.chip(campus.card(skip=skip), campus.pos(index=pos), BUY, amount_fen=amount_fen)
    )
    assert answer.decision == auth_pb.DECISION_APPROVED


async def test_each_merchant_is_paid_its_day_once(
    campus_dir: Path, clock: ManualClock, creds: CampusCredentials
) -> None:
    bank = StatementBank()
    async with settling_hub(campus_dir, clock, bank) as (hub, client):
        campus = Campus(creds, clock, hub.target)
        await buy(campus, 0, 1_250)
        await buy(campus, 0, 800, skip=1)
        await buy(campus, 1, 500, skip=2)
        await campus.close()
        pos0 = campus.pos(index=0).merchant_id
        pos1 = campus.pos(index=1).merchant_id
        clock.advance(minutes=24 * 60)

        first = await client.run_merchant_settlement(rid(), DAY)
        by_merchant = {s.merchant_id: s for s in first.settlements}
        assert by_merchant[pos0].status == pb.PAYMENT_STATUS_PAID
        assert (by_merchant[pos0].takings_fen, by_merchant[pos0].sales_count) == (2_050, 2)
        assert by_merchant[pos1].paid_fen == 500
        others = [s for m, s in by_merchant.items() if m not in (pos0, pos1)]
        assert others and all(s.status == pb.PAYMENT_STATUS_NOTHING_TO_PAY for s in others)
        assert bank.balances == {f"acct-{pos0}": 2_050, f"acct-{pos1}": 500}

        calls = bank.calls
        again = await client.run_merchant_settlement(rid(), DAY)
        assert {s.merchant_id: s.status for s in again.settlements} == {
            s.merchant_id: s.status for s in first.settlements
        }
        assert bank.calls == calls  # nothing paid twice
        assert bank.balances == {f"acct-{pos0}": 2_050, f"acct-{pos1}": 500}
        report = await client.get_settlement_report(DAY)
        assert (report.takings_fen, report.paid_fen) == (2_550, 2_550)
        assert hub.hub.campus.ledger.total_fen() == 0


@pytest.mark.parametrize("business_date", ["2026-13-01", "24/11/2026", "", "2026-11-25"])
async def test_a_bad_or_unfinished_business_date_is_named(
    campus_dir: Path, clock: ManualClock, business_date: str
) -> None:
    clock.advance(minutes=24 * 60)  # today is 2026-11-25: not over yet
    async with settling_hub(campus_dir, clock, StatementBank()) as (_, client):
        with pytest.raises(InvalidArgumentError) as caught:
            await client.run_merchant_settlement(rid(), business_date)
        assert caught.value.field == "business_date"


async def test_a_graduate_is_refunded_once_and_a_refusal_is_retried(
    campus_dir: Path, clock: ManualClock, creds: CampusCredentials
) -> None:
    bank = StatementBank()
    async with settling_hub(campus_dir, clock, bank) as (hub, client):
        campus = Campus(creds, clock, hub.target)
        card = campus.card()
        student_id = hub.hub.campus.cards[card.card_no].student.student_id
        balance = hub.hub.campus.students[student_id].wallet.balance_fen
        assert balance > 0
        with pytest.raises(FailedPreconditionError) as enrolled:
            await client.refund_wallet(rid(), student_id)
        assert enrolled.value.metadata["state"] == "enrolled"
        async with StudentRecordsClient(ADMIN, ClientConfig(target=hub.target)) as records:
            await records.graduate_student(rid(), student_id)

        bank.not_activated.add(card.card_no)
        refused = await client.refund_wallet(rid(), student_id)
        assert refused.refund.status == pb.PAYMENT_STATUS_FAILED
        assert refused.refund.failure == "NOT_ACTIVATED"
        assert hub.hub.campus.students[student_id].wallet.balance_fen == balance

        bank.not_activated.clear()
        paid = await client.refund_wallet(rid(), student_id)
        assert (paid.refund.status, paid.refund.amount_fen) == (pb.PAYMENT_STATUS_PAID, balance)
        assert hub.hub.campus.students[student_id].wallet.balance_fen == 0
        calls = bank.calls
        again = await client.refund_wallet(rid(), student_id)
        assert again.refund.status == pb.PAYMENT_STATUS_PAID
        assert bank.calls == calls
        assert bank.balances == {card.card_no: balance}
        assert hub.hub.campus.ledger.total_fen() == 0
        await campus.close()


async def test_payments_survive_a_restart_and_a_reused_request_id_is_refused(
    campus_dir: Path, clock: ManualClock, creds: CampusCredentials
) -> None:
    bank = StatementBank()
    async with settling_hub(campus_dir, clock, bank) as (hub, client):
        campus = Campus(creds, clock, hub.target)
        await buy(campus, 0, 700)
        await campus.close()
        clock.advance(minutes=24 * 60)
        await client.run_merchant_settlement("settle-1", DAY)
        with pytest.raises(FailedPreconditionError) as reused:
            await client.run_merchant_settlement("settle-1", "2026-11-23")
        assert reused.value.reason == "IDEMPOTENCY_KEY_REUSED"
        replay = await client.run_merchant_settlement("settle-1", DAY)
        assert any(s.paid_fen == 700 for s in replay.settlements)
    calls = bank.calls
    async with settling_hub(campus_dir, clock, bank) as (hub, client):
        report = await client.get_settlement_report(DAY)
        assert (report.takings_fen, report.paid_fen) == (700, 700)
        await client.run_merchant_settlement(rid(), DAY)
        assert bank.calls == calls  # nothing paid twice after the restart
        assert bank.balances == {f"acct-{campus.pos(index=0).merchant_id}": 700}
        assert hub.hub.campus.ledger.total_fen() == 0
