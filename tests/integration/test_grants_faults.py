"""Grants against a faulty bank and a restart: every item final, nothing paid twice, ledger zero."""

from __future__ import annotations

import asyncio
from pathlib import Path

import grpc

from onecard.bank.v1 import bank_service_pb2 as bank_pb
from onecard.grants.v1 import grant_service_pb2 as pb
from onecard_hub.domain.clock import ManualClock
from onecard_hub.domain.ledger import AccountKind
from onecard_hub.server import RunningHub
from tests.integration.grant_bank import FakeBank, running_fake_bank
from tests.integration.grant_fixtures import (
    YEAR,
    grants_client,
    hub_with_bank,
    students_with_cards,
    until_done,
)


async def test_errors_timeouts_and_dropped_replies_end_final_and_pay_once(
    campus_dir: Path, clock: ManualClock
) -> None:
    bank = FakeBank(error_rate=0.1, timeout_rate=0.1, drop_reply_rate=0.1)
    async with running_fake_bank(bank) as target, hub_with_bank(campus_dir, clock, target) as hub:
        school = sorted(hub.hub.campus.schools)[0]
        people = students_with_cards(hub, school, 40)
        clearing_before = _clearing(hub)
        async with grants_client(hub) as client:
            items = [(s, 50_000) for s, _ in people]
            await client.submit_grant_batch("f-1", school, "F1", pb.GRANT_TYPE_SCHOOL_AWARD, YEAR, items)
            await client.approve_grant_batch("f-2", school, "F1")
            batch = await until_done(client, school, "F1")
        paid = [i for i in batch.items if i.status == pb.ITEM_STATUS_PAID]
        assert len(paid) == len(people)  # a void attempt is tried again under a new id
        by_card = dict(bank.balances)
        assert by_card == {card: 50_000 for _, card in people}  # the bank moved each item once
        assert sum(bank.credits_applied.values()) == len(people)
        assert hub.hub.campus.ledger.total_fen() == 0
        # DESIGN §10: the bank's accounts changed by exactly the flows of the hub's bank clearing.
        assert _clearing(hub) - clearing_before == sum(bank.balances.values())


def _clearing(hub: RunningHub) -> int:
    return sum(
        a.balance_fen for a in hub.hub.campus.ledger.accounts.values() if a.kind == AccountKind.BANK_CLEARING
    )


class HangingBank(FakeBank):
    """Applies a credit, then answers nothing (credit or inquiry) until released: the hub stops
    while every credit is applied and unanswered."""

    release: asyncio.Event

    async def Credit(
        self, request: bank_pb.CreditRequest, context: grpc.aio.ServicerContext
    ) -> bank_pb.CreditResponse:
        response = await super().Credit(request, context)
        await self.release.wait()
        return response

    async def GetTransfer(
        self, request: bank_pb.GetTransferRequest, context: grpc.aio.ServicerContext
    ) -> bank_pb.GetTransferResponse:
        await self.release.wait()
        return await super().GetTransfer(request, context)


async def test_a_restart_settles_uncertain_items_without_paying_twice(
    campus_dir: Path, clock: ManualClock
) -> None:
    bank = HangingBank()
    bank.release = asyncio.Event()
    async with running_fake_bank(bank) as target:
        async with hub_with_bank(campus_dir, clock, target) as hub:
            school = sorted(hub.hub.campus.schools)[0]
            people = students_with_cards(hub, school, 3)
            async with grants_client(hub) as client:
                items = [(s, 70_000) for s, _ in people]
                await client.submit_grant_batch(
                    "c-1", school, "C1", pb.GRANT_TYPE_NATIONAL_GRANT, YEAR, items
                )
                await client.approve_grant_batch("c-2", school, "C1")
                for _ in range(400):
                    if len(bank.credits_applied) == len(people):
                        break
                    await asyncio.sleep(0.02)
                assert len(bank.credits_applied) == len(people)
                uncertain = (await client.get_grant_batch(school, "C1")).batch
                assert {i.status for i in uncertain.items} == {pb.ITEM_STATUS_UNCERTAIN}
        bank.release.set()  # the hub stopped while every credit was applied but unanswered
        async with hub_with_bank(campus_dir, clock, target) as hub, grants_client(hub) as client:
            batch = await until_done(client, school, "C1")
            assert {i.status for i in batch.items} == {pb.ITEM_STATUS_PAID}
            assert {i.attempts for i in batch.items} == {1}
            assert sum(bank.credits_applied.values()) == len(people)
            assert hub.hub.campus.ledger.total_fen() == 0
