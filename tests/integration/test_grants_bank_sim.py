"""Grants against the real bank simulator (`onecard-sim bank`, accounts opened from the campus
export): paid; not activated → told first, FAILED with the reason, paid after activation and retry;
10% errors, 10% timeouts, 10% dropped replies → every item final, each paid once, the bank's
accounts moved by exactly the hub's bank clearing; a restart while every credit is uncertain."""

from __future__ import annotations

import asyncio
from pathlib import Path

from onecard.grants.v1 import grant_service_pb2 as pb
from onecard_hub.domain.clock import ManualClock
from onecard_hub.domain.ledger import AccountKind
from onecard_hub.server import RunningHub
from onecard_sim.bank.faults import FaultPlan
from onecard_sim.bank.server import RunningBank, running_bank
from tests.integration.grant_fixtures import (
    YEAR,
    grants_client,
    hub_with_bank,
    set_bank_status,
    students_with_cards,
    until_done,
)

GRANT = pb.GRANT_TYPE_NATIONAL_GRANT


def clearing(hub: RunningHub) -> int:
    return sum(
        a.balance_fen for a in hub.hub.campus.ledger.accounts.values() if a.kind == AccountKind.BANK_CLEARING
    )


def bank_of(hub: RunningHub, card_no: str) -> str:
    return hub.hub.campus.cards[card_no].bank_code


async def balances(bank: RunningBank, hub: RunningHub, cards: list[str]) -> dict[str, int]:
    return {c: await bank.control.balance_fen(bank_of(hub, c), card_no=c) for c in cards}


async def test_paid_not_activated_told_then_paid_after_activation(
    campus_dir: Path, clock: ManualClock
) -> None:
    async with running_bank(campus_dir / "bank.db", campus_dir / "hub.keys") as bank:
        async with hub_with_bank(campus_dir, clock, bank.target) as hub:
            school = sorted(hub.hub.campus.schools)[0]
            people = students_with_cards(hub, school, 6)
        cards = [c for _, c in people]
        dormant = cards[:2]
        set_bank_status(campus_dir, dormant, "not_activated")  # as the card system reported it
        async with hub_with_bank(campus_dir, clock, bank.target) as hub, grants_client(hub) as client:
            for card in dormant:
                await bank.control.adjust_account(bank_of(hub, card), card_no=card, state="not_activated")
            before, clearing_before = await balances(bank, hub, cards), clearing(hub)
            answer = await client.submit_grant_batch(
                "s-1", school, "SIM1", GRANT, YEAR, [(s, 150_000) for s, _ in people]
            )
            assert answer.notified == 2
            told = (await client.list_notifications(school, "SIM1")).notifications
            assert {n.student_id for n in told} == {s for s, _ in people[:2]}
            await client.approve_grant_batch("s-2", school, "SIM1")
            batch = await until_done(client, school, "SIM1")
            reasons = {i.student_id: (i.status, i.fail_reason) for i in batch.items}
            for student_id, _ in people[:2]:
                assert reasons[student_id] == (pb.ITEM_STATUS_FAILED, pb.FAIL_REASON_NOT_ACTIVATED)
            for card in dormant:  # activated at the branch
                await bank.control.adjust_account(bank_of(hub, card), card_no=card, state="active")
            assert (await client.retry_failed_items("s-3", school, "SIM1")).retried == 2
            batch = await until_done(client, school, "SIM1")
            assert {i.status for i in batch.items} == {pb.ITEM_STATUS_PAID}
            after = await balances(bank, hub, cards)
            assert {c: after[c] - before[c] for c in cards} == {c: 150_000 for c in cards}
            assert clearing(hub) - clearing_before == 6 * 150_000
            assert hub.hub.campus.ledger.total_fen() == 0


async def test_faults_leave_every_item_final_and_paid_once(campus_dir: Path, clock: ManualClock) -> None:
    async with (
        running_bank(campus_dir / "bank.db", campus_dir / "hub.keys") as bank,
        hub_with_bank(campus_dir, clock, bank.target) as hub,
        grants_client(hub) as client,
    ):
        school = sorted(hub.hub.campus.schools)[0]
        people = students_with_cards(hub, school, 24)
        cards = [c for _, c in people]
        await bank.control.clear_faults()
        before, clearing_before = await balances(bank, hub, cards), clearing(hub)
        await bank.control.set_faults(error_rate=0.1, timeout_rate=0.1, drop_reply_rate=0.1, seed=7)
        await client.submit_grant_batch(
            "f-1", school, "SIM2", pb.GRANT_TYPE_SCHOOL_AWARD, YEAR, [(s, 30_000) for s in dict(people)]
        )
        await client.approve_grant_batch("f-2", school, "SIM2")
        batch = await until_done(client, school, "SIM2", limit_s=120)
        await bank.control.clear_faults()
        assert {i.status for i in batch.items} == {pb.ITEM_STATUS_PAID}
        after = await balances(bank, hub, cards)
        assert {c: after[c] - before[c] for c in cards} == {c: 30_000 for c in cards}  # once each
        assert clearing(hub) - clearing_before == sum(after.values()) - sum(before.values())
        assert hub.hub.campus.ledger.total_fen() == 0


async def test_a_restart_settles_uncertain_credits_without_paying_twice(
    campus_dir: Path, clock: ManualClock
) -> None:
    lost = FaultPlan(drop_reply_rate=1.0)  # every credit applied, every answer and inquiry lost
    async with running_bank(
        campus_dir / "bank.db", campus_dir / "hub.keys", faults=lost, on_inquiries=True
    ) as bank:
        async with hub_with_bank(campus_dir, clock, bank.target) as hub, grants_client(hub) as client:
            school = sorted(hub.hub.campus.schools)[0]
            people = students_with_cards(hub, school, 3)
            cards = [c for _, c in people]
            await bank.control.clear_faults()
            before = await balances(bank, hub, cards)
            await bank.control.set_faults(drop_reply_rate=1.0)
            await client.submit_grant_batch(
                "c-1", school, "SIM3", GRANT, YEAR, [(s, 70_000) for s in dict(people)]
            )
            await client.approve_grant_batch("c-2", school, "SIM3")
            for _ in range(200):
                items = (await client.get_grant_batch(school, "SIM3")).batch.items
                if all(i.status == pb.ITEM_STATUS_UNCERTAIN for i in items):
                    break
                await asyncio.sleep(0.02)
            assert {i.status for i in items} == {pb.ITEM_STATUS_UNCERTAIN}
        await bank.control.clear_faults()  # the bank answers again; the hub restarts
        async with hub_with_bank(campus_dir, clock, bank.target) as hub, grants_client(hub) as client:
            batch = await until_done(client, school, "SIM3")
            # Stopped after the transfer ids were journaled: each credit had or had not reached the
            # bank; either way it is settled by inquiry (and reversal), and paid exactly once.
            assert {i.status for i in batch.items} == {pb.ITEM_STATUS_PAID}
            after = await balances(bank, hub, cards)
            assert {c: after[c] - before[c] for c in cards} == {c: 70_000 for c in cards}
            assert hub.hub.campus.ledger.total_fen() == 0
