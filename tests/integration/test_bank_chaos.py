"""Issue 5 §Tests against the real bank simulator (`onecard_sim.bank.running_bank`) and a real hub
started with `--bank` (real SQLite files in tmp_path):

- with the bank fully down (an outage), gate and canteen authorizations keep being approved from
  wallets — a payment never waits on a bank;
- top-ups, a grant batch and wallet refunds (of graduates) against a bank with 10% errors, 10%
  timeouts and 10% dropped replies (a fixed seed): afterwards every operation is final, the hub's
  ledger sums to zero, the bank simulator's accounts changed by exactly the hub's bank clearing flows
  (DESIGN §10), and reconciliation (对账) leaves no difference unexplained;
- bad input end to end: a grant CSV with an unknown student, a negative amount, a duplicate line,
  another school's student and broken rows — each line named; the good lines paid once.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import grpc
import pytest

from onecard.auth.v1 import authorization_service_pb2 as auth_pb
from onecard.bank.v1 import bank_service_pb2 as bank_pb
from onecard.bank.v1 import bank_service_pb2_grpc as bank_grpc
from onecard.funds.v1 import funds_service_pb2 as funds_pb
from onecard.grants.v1 import grant_service_pb2 as grants_pb
from onecard.settlement.v1 import settlement_service_pb2 as settlement_pb
from onecard_client import (
    AdminClient,
    ClientConfig,
    FundsClient,
    GrantsClient,
    SettlementClient,
    StudentRecordsClient,
)
from onecard_client.campus import CampusCredentials, CardCredential
from onecard_hub.domain.clock import ManualClock
from onecard_hub.server import RunningHub, running_hub
from tests.conftest import hub_config
from tests.helpers import Campus, name

bank_sim = pytest.importorskip("onecard_sim.bank", reason="the bank simulator (K1) is not built yet")

ENTRY, BUY = auth_pb.SCENE_GATE_ENTRY, auth_pb.SCENE_CANTEEN_PURCHASE
OUTAGE_S = 600.0
ADMIN = "province-admin"
YEAR = "2026-2027-1"
NATIONAL = grants_pb.GRANT_TYPE_NATIONAL_GRANT
FINAL_ITEM = {grants_pb.ITEM_STATUS_PAID, grants_pb.ITEM_STATUS_FAILED, grants_pb.ITEM_STATUS_RETURNED}


async def set_faults(target: str, **faults: Any) -> bank_pb.GetFaultsResponse:
    """BankControlService.SetFaults over a channel of its own (the tester's view of the simulator)."""
    async with grpc.aio.insecure_channel(target) as channel:
        control = bank_grpc.BankControlServiceStub(channel)
        answer = await control.SetFaults(bank_pb.SetFaultsRequest(**faults), timeout=5.0)
    return answer.faults


@pytest.fixture
async def bank(campus_dir: Path) -> AsyncIterator[object]:
    async with bank_sim.running_bank(campus_dir / "bank.db", campus_dir / "hub.keys") as running:
        yield running


@pytest.fixture
async def banked_hub(campus_dir: Path, clock: ManualClock, bank: object) -> AsyncIterator[RunningHub]:
    config = hub_config(campus_dir, bank=bank.target)  # type: ignore[attr-defined]
    async with running_hub(config, clock) as running:
        yield running


@pytest.fixture
async def banked_campus(
    banked_hub: RunningHub, creds: CampusCredentials, clock: ManualClock
) -> AsyncIterator[Campus]:
    campus = Campus(creds, clock, banked_hub.target)
    try:
        yield campus
    finally:
        await campus.close()


async def test_with_the_bank_down_gates_and_canteens_keep_approving_from_wallets(
    banked_campus: Campus, bank: object
) -> None:
    campus = banked_campus
    cards = [campus.card(school, skip=skip) for school in (0, 1) for skip in range(3)]
    async with FundsClient(ADMIN, ClientConfig(target=campus.target)) as funds:
        for card in cards:  # every purchase leaves the wallet under the threshold: an auto top-up each
            await funds.set_auto_top_up(f"auto-{card.card_no}", 100_000, 5_000, True, card_no=card.card_no)
    faults = await set_faults(bank.target, outage_s=OUTAGE_S)  # type: ignore[attr-defined]
    assert faults.outage_left_s > 0
    for school in (0, 1):
        for skip in range(3):
            card = campus.card(school, skip=skip)
            gate, pos = campus.gate(school), campus.pos(school)
            entry = await campus.send(campus.chip(card, gate, ENTRY))
            assert entry.decision == auth_pb.DECISION_APPROVED, name(entry.decline_reason)
            before = (await campus.client(pos).wallet_balance(card.card_no)).balance_fen
            meal = await campus.send(campus.qr(card, pos, BUY, amount_fen=650))
            assert meal.decision == auth_pb.DECISION_APPROVED, name(meal.decline_reason)
            assert meal.balance_fen == before - 650
    still_down = await set_faults(bank.target, outage_s=OUTAGE_S)  # type: ignore[attr-defined]
    assert still_down.outage_left_s > 0  # the bank was down all along
    # The auto top-ups those purchases asked for waited for the bank off the purchase path; once it
    # is back each ends final (posted, or voided after its reversal).
    await set_faults(bank.target, outage_s=0)  # type: ignore[attr-defined]
    async with FundsClient(ADMIN, ClientConfig(target=campus.target)) as funds:

        async def auto_top_ups_final() -> bool:
            for card in cards:
                last = (await funds.get_bank_function(card.student_id)).auto_topup.last_topup_id
                if last and (await funds.get_top_up(last)).topup.state == funds_pb.TOP_UP_STATE_PENDING:
                    return False
            return True

        await _until("auto top-ups", auto_top_ups_final)
        fired = [(await funds.get_bank_function(c.student_id)).auto_topup.last_topup_id for c in cards]
        assert all(fired)  # each purchase did ask for one


# -- 10% errors, 10% timeouts, 10% dropped replies --------------------------------------------------

CHAOS = {"error_rate": 0.1, "timeout_rate": 0.1, "drop_reply_rate": 0.1, "seed": 5}
BUSINESS_DATE = "2026-11-24"
GRANT_FEN = 120_000
TOP_UP_FEN = 3_000
FINAL_PAYMENT = {
    settlement_pb.PAYMENT_STATUS_PAID,
    settlement_pb.PAYMENT_STATUS_FAILED,
    settlement_pb.PAYMENT_STATUS_NOTHING_TO_PAY,
}
FINAL_LIMIT_S = 90.0


async def _clearing_and_sum(admin: AdminClient) -> tuple[int, int]:
    summary = await admin.ledger_summary()
    clearing = sum(t.balance_fen for t in summary.totals if t.kind == "bank_clearing")
    return clearing, summary.sum_fen


async def _until(what: str, check: Callable[[], Awaitable[bool]], limit_s: float = FINAL_LIMIT_S) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + limit_s
    while not await check():
        assert loop.time() < deadline, f"{what}: not final within {limit_s:.0f} s"
        await asyncio.sleep(0.1)


@pytest.mark.slow
async def test_top_ups_grants_and_refunds_against_a_faulty_bank_end_final_and_conserve_money(
    banked_hub: RunningHub, bank: object, creds: CampusCredentials
) -> None:
    running: Any = bank
    school = creds.schools[0]
    cards = [c for c in creds.cards_of(school) if c.usable and c.bank_status == "active"]
    topping, granted, leaving = cards[:12], cards[12:24], cards[24:28]
    config = ClientConfig(target=banked_hub.target)
    async with (
        AdminClient(ADMIN, config) as admin,
        FundsClient(ADMIN, config) as funds,
        GrantsClient(ADMIN, config) as grants,
        SettlementClient(ADMIN, config) as settlement,
        StudentRecordsClient(ADMIN, config) as records,
    ):
        for card in leaving:
            await records.graduate_student(f"chaos-grad-{card.card_no}", card.student_id)
        clearing_before, _ = await _clearing_and_sum(admin)
        bank_before = await running.store.total_fen()
        await running.control.set_faults(**CHAOS)

        async def top_up(card: CardCredential) -> str:
            answer = await funds.top_up(
                f"chaos-t-{card.card_no}", TOP_UP_FEN, card_no=card.card_no, deadline_s=30
            )
            return answer.topup.topup_id

        topup_ids = await asyncio.gather(*(top_up(card) for card in topping))
        items = [(card.student_id, GRANT_FEN) for card in granted]
        await grants.submit_grant_batch(
            "chaos-g1", school, "CHAOS-1", grants_pb.GRANT_TYPE_NATIONAL_GRANT, YEAR, items
        )
        await grants.approve_grant_batch("chaos-g2", school, "CHAOS-1")
        for card in leaving:
            await settlement.refund_wallet(f"chaos-r-{card.card_no}", card.student_id, deadline_s=30)

        async def top_ups_final() -> bool:
            states = [(await funds.get_top_up(t)).topup.state for t in topup_ids]
            return funds_pb.TOP_UP_STATE_PENDING not in states

        async def batch_done() -> bool:
            batch = (await grants.get_grant_batch(school, "CHAOS-1")).batch
            return batch.status == grants_pb.BATCH_STATUS_DONE

        async def refunds_answered() -> bool:  # UNCERTAIN ones are settled by reconciliation below
            for c in leaving:
                refund = (await settlement.refund_wallet(f"chaos-r2-{c.card_no}", c.student_id)).refund
                if refund.status == settlement_pb.PAYMENT_STATUS_PENDING:
                    return False
            return True

        await _until("top-ups", top_ups_final)
        await _until("grant batch", batch_done)
        await _until("refunds", refunds_answered)
        faults = await running.control.clear_faults()
        assert faults.counts  # faults were injected

        reconciled = await settlement.reconcile("chaos-recon", BUSINESS_DATE)
        assert reconciled.unexplained == 0, reconciled

        topups = [(await funds.get_top_up(t)).topup for t in topup_ids]
        assert {t.state for t in topups} <= {funds_pb.TOP_UP_STATE_POSTED, funds_pb.TOP_UP_STATE_VOIDED}
        assert not (await funds.list_manual_review(school_id=school)).topups
        batch = (await grants.get_grant_batch(school, "CHAOS-1")).batch
        assert {i.status for i in batch.items} <= FINAL_ITEM
        refunds = [
            (await settlement.refund_wallet(f"chaos-r3-{c.card_no}", c.student_id)).refund for c in leaving
        ]
        assert {r.status for r in refunds} <= FINAL_PAYMENT
        clearing_after, ledger_sum = await _clearing_and_sum(admin)
        bank_after = await running.store.total_fen()
    assert ledger_sum == 0
    # DESIGN §10: the bank simulator's accounts changed by exactly the hub's bank clearing flows.
    assert bank_after - bank_before == clearing_after - clearing_before
    posted = sum(t.amount_fen for t in topups if t.state == funds_pb.TOP_UP_STATE_POSTED)
    paid = sum(i.amount_fen for i in batch.items if i.status == grants_pb.ITEM_STATUS_PAID)
    refunded = sum(r.amount_fen for r in refunds if r.status == settlement_pb.PAYMENT_STATUS_PAID)
    assert bank_after - bank_before == paid + refunded - posted  # each moved once, nothing twice


# -- bad input, end to end -------------------------------------------------------------------------


@pytest.mark.slow
async def test_a_csv_batch_with_bad_lines_names_each_line_and_pays_the_good_ones_once(
    banked_hub: RunningHub, bank: object, creds: CampusCredentials
) -> None:
    running: Any = bank
    school = creds.schools[0]
    cards = [c for c in creds.cards_of(school) if c.usable and c.bank_status == "active"]
    good = cards[:3]
    other_school = next(c for c in creds.cards_of(creds.schools[1]) if c.usable)
    csv = "\n".join(
        [
            "student_id,amount_fen",
            f"{good[0].student_id},50000",  # line 2
            f"{good[1].student_id},50000",
            "S-NOBODY,50000",  # line 4: unknown student
            f"{good[2].student_id},-100",  # line 5: negative
            f"{good[0].student_id},50000",  # line 6: duplicate of line 2
            f"{other_school.student_id},50000",  # line 7: another school's student
            f"{good[2].student_id}",  # line 8: broken row
            f"{good[2].student_id},fifty",  # line 9: not an amount
        ]
    )
    config = ClientConfig(target=banked_hub.target)
    async with GrantsClient(ADMIN, config) as grants:
        bank_before = await running.store.total_fen()
        refused = await grants.import_grant_batch_csv("bad-1", school, "BAD-1", NATIONAL, YEAR, csv)
        assert not refused.accepted  # a bad line refuses the whole batch: nothing written
        problems = {e.line: e.problem for e in refused.errors}
        assert problems == {
            4: grants_pb.LINE_PROBLEM_UNKNOWN_STUDENT,
            5: grants_pb.LINE_PROBLEM_AMOUNT_NOT_POSITIVE,
            6: grants_pb.LINE_PROBLEM_DUPLICATE_STUDENT,
            7: grants_pb.LINE_PROBLEM_OTHER_SCHOOL,
            8: grants_pb.LINE_PROBLEM_MALFORMED_ROW,
            9: grants_pb.LINE_PROBLEM_MALFORMED_ROW,
        }
        assert all(e.message for e in refused.errors)

        taken = await grants.import_grant_batch_csv(
            "bad-2", school, "BAD-2", NATIONAL, YEAR, csv, accept_valid_lines=True
        )
        assert taken.accepted and len(taken.batch.items) == 2  # lines 2 and 3
        again = await grants.import_grant_batch_csv(
            "bad-2", school, "BAD-2", NATIONAL, YEAR, csv, accept_valid_lines=True
        )
        assert again.batch.batch_id == "BAD-2" and len(again.batch.items) == 2  # the same answer
        await grants.approve_grant_batch("bad-3", school, "BAD-2")
        await grants.approve_grant_batch("bad-3", school, "BAD-2")  # a repeated approval pays nothing more

        async def batch_done() -> bool:
            batch = (await grants.get_grant_batch(school, "BAD-2")).batch
            return batch.status == grants_pb.BATCH_STATUS_DONE

        await _until("grant batch", batch_done)
        batch = (await grants.get_grant_batch(school, "BAD-2")).batch
    assert {i.status for i in batch.items} == {grants_pb.ITEM_STATUS_PAID}
    assert await running.store.total_fen() - bank_before == 2 * 50_000  # each good line paid once
