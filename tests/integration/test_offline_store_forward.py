"""A canteen POS that loses the hub keeps selling on local rules, stores, uploads on its return,
and a second upload of every batch books nothing twice."""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from onecard_client import AdminClient, ClientConfig
from onecard_client.campus import CampusCredentials
from onecard_hub.domain.clock import ManualClock
from onecard_hub.server import RunningHub, running_hub
from onecard_sim.events import APPROVED, CANTEEN_PURCHASE, GATE_ENTRY, OFFLINE_APPROVED, OFFLINE_REFUSED
from onecard_sim.gate import GateReader
from onecard_sim.population import ECardApp, Population, SimStudent
from onecard_sim.pos import CanteenPos
from onecard_sim.progress import Tally
from tests.conftest import hub_config, set_policy


@pytest.fixture
def population(campus_dir: Path, creds: CampusCredentials) -> Population:
    return Population.load(campus_dir / "hub.keys", [creds.schools[0]], seed=8, campus=creds)


@pytest.fixture
async def pos(hub: RunningHub, creds: CampusCredentials) -> AsyncIterator[tuple[CanteenPos, Tally]]:
    tally = Tally()
    info = creds.terminals_of(creds.schools[0], "canteen_pos")[1]
    terminal = CanteenPos(info, target=hub.target, sink=tally, ecard=ECardApp(creds), heartbeat=False, seed=6)
    await terminal.start()
    yield terminal, tally
    await terminal.stop()


def students(population: Population, school: str, count: int) -> list[SimStudent]:
    taken = [population.take(school) for _ in range(count)]
    assert all(s is not None for s in taken)
    return [s for s in taken if s is not None]


async def balances(pos: CanteenPos, people: list[SimStudent]) -> list[int]:
    return [(await pos.client.wallet_balance(s.card_no)).balance_fen for s in people]


async def test_offline_sales_are_stored_uploaded_once_and_never_booked_twice(
    pos: tuple[CanteenPos, Tally], population: Population, creds: CampusCredentials
) -> None:
    terminal, tally = pos
    school = creds.schools[0]
    a, b, c = students(population, school, 3)
    start = await balances(terminal, [a, b, c])
    config = terminal.config
    assert config is not None and config.offline.per_payment_fen > 0

    terminal.go_offline()
    sales = [(a, 1_500, False), (b, 1_200, True), (a, 800, True), (c, 600, False), (b, 900, False)]
    for student, amount, qr in sales:
        result = await terminal.purchase(student, amount, qr=qr)
        assert result.outcome == OFFLINE_APPROVED and result.response is None
        assert result.event.offline and result.event.latency_ms == 0.0
    serials = [t.serial for t in terminal.book.stored]
    assert serials == [1, 2, 3, 4, 5]  # the terminal's own serials, increasing
    assert [t.HasField("qr") for t in terminal.book.stored] == [qr for _, _, qr in sales]
    assert terminal.offline_pending() == 5

    # Local rules: a card on the blocklist and an amount above the offline cap are refused.
    lost = next(s for s in population.unusable(school) if s.card.status == "lost")
    assert lost.card_no in config.blocked_card_nos
    assert (await terminal.purchase(lost, 500, qr=False)).outcome == OFFLINE_REFUSED
    assert (await terminal.purchase(lost, 500, qr=True)).outcome == OFFLINE_REFUSED
    over = config.offline.per_payment_fen + 1
    assert (await terminal.purchase(c, over, qr=False)).outcome == OFFLINE_REFUSED
    assert terminal.book.refusals == {"BLOCKLISTED": 2, "OVER_PAYMENT_CAP": 1}
    assert terminal.offline_pending() == 5  # refused taps store nothing

    # Nothing reached the hub while offline.
    assert await balances(terminal, [a, b, c]) == start

    uploads = await terminal.go_online(batch_size=2)
    assert [u.transactions for u in uploads] == [2, 2, 1]
    assert sum(u.booked for u in uploads) == 5
    assert sum(u.duplicates + u.rejected for u in uploads) == 0
    assert terminal.offline_pending() == 0 and not terminal.offline
    booked = await balances(terminal, [a, b, c])
    assert booked == [start[0] - 2_300, start[1] - 2_100, start[2] - 600]

    again = await terminal.reupload_all()
    assert len(again) == 3 and all(u.reupload for u in again)
    assert sum(u.duplicates for u in again) == 5
    assert sum(u.booked + u.rejected for u in again) == 0
    assert await balances(terminal, [a, b, c]) == booked
    assert tally.uploads["booked"] == 5 and tally.uploads["reduplicates"] == 5
    assert tally.taps == {CANTEEN_PURCHASE: 8}

    # Back online, the next sale goes to the hub again.
    assert (await terminal.purchase(a, 700, qr=True)).outcome == APPROVED


async def test_offline_caps_per_card_per_day_and_the_store_size(
    campus_dir: Path, creds: CampusCredentials, clock: ManualClock, population: Population
) -> None:
    set_policy(
        campus_dir, offline_per_payment_fen=1_000, offline_per_card_day_fen=1_500, offline_max_stored=3
    )
    async with running_hub(hub_config(campus_dir), clock) as hub:
        info = creds.terminals_of(creds.schools[0], "canteen_pos")[0]
        terminal = CanteenPos(info, target=hub.target, sink=Tally(), ecard=ECardApp(creds), heartbeat=False)
        await terminal.start()
        try:
            a, b, c = students(population, creds.schools[0], 3)
            terminal.go_offline()
            assert (await terminal.purchase(a, 1_000, qr=False)).outcome == OFFLINE_APPROVED
            assert (
                await terminal.purchase(a, 600, qr=True)
            ).outcome == OFFLINE_REFUSED  # 1,600 > 1,500 a day
            assert (await terminal.purchase(a, 500, qr=True)).outcome == OFFLINE_APPROVED
            assert (await terminal.purchase(b, 900, qr=False)).outcome == OFFLINE_APPROVED
            assert (await terminal.purchase(c, 100, qr=False)).outcome == OFFLINE_REFUSED  # 3 stored: full
            assert terminal.book.refusals == {"OVER_DAY_CAP": 1, "STORE_FULL": 1}
            uploads = await terminal.go_online()
            assert [(u.transactions, u.booked) for u in uploads] == [(3, 3)]
        finally:
            await terminal.stop()


async def test_offline_overspending_is_booked_as_a_debt(
    campus_dir: Path, creds: CampusCredentials, clock: ManualClock, population: Population
) -> None:
    set_policy(campus_dir, offline_per_payment_fen=40_000, offline_per_card_day_fen=100_000)
    async with running_hub(hub_config(campus_dir), clock) as hub:
        info = creds.terminals_of(creds.schools[0], "canteen_pos")[0]
        terminal = CanteenPos(info, target=hub.target, sink=Tally(), ecard=ECardApp(creds), heartbeat=False)
        await terminal.start()
        admin = AdminClient(creds.operators[0], ClientConfig(target=hub.target))
        try:
            (student,) = students(population, creds.schools[0], 1)
            balance = (await terminal.client.wallet_balance(student.card_no)).balance_fen
            terminal.go_offline()
            spend = [30_000, balance - 30_000 + 2_000]  # 2,000 fen more than the wallet holds
            for amount in spend:
                assert (await terminal.purchase(student, amount, qr=False)).outcome == OFFLINE_APPROVED
            uploads = await terminal.go_online()
            assert sum(u.booked for u in uploads) == 2
            debts = await admin.list_wallet_debts(creds.schools[0])
            owed = {d.card_no: d.debt_fen for d in debts.debts}
            assert owed.get(student.card_no, 0) == sum(spend) - balance
        finally:
            await admin.close()
            await terminal.stop()


async def test_an_offline_gate_stores_passes_and_uploads_them(
    hub: RunningHub, creds: CampusCredentials, population: Population
) -> None:
    tally = Tally()
    gate = next(t for t in creds.terminals_of(creds.schools[0], "gate") if t.gate_group == "main")
    reader = GateReader(gate, target=hub.target, sink=tally, ecard=ECardApp(creds), heartbeat=False)
    await reader.start()
    try:
        student = population.take(creds.schools[0], group="day")
        assert student is not None and not student.inside
        reader.go_offline()
        assert (await reader.pass_gate(student)).outcome == OFFLINE_APPROVED and student.inside
        uploads = await reader.go_online()
        assert [(u.transactions, u.booked) for u in uploads] == [(1, 1)]
        # The hub booked the offline entry: the student is inside, so another entry is refused.
        assert (await reader.tap(student, 1, qr=False)).outcome == "ANTI_PASSBACK"
        assert tally.taps == {GATE_ENTRY: 2}
    finally:
        await reader.stop()


async def test_a_pos_that_loses_the_hub_goes_offline_by_itself_and_comes_back(
    campus_dir: Path, creds: CampusCredentials, clock: ManualClock, population: Population
) -> None:
    info = creds.terminals_of(creds.schools[0], "canteen_pos")[2]
    a, b = students(population, creds.schools[0], 2)
    tally = Tally()
    async with running_hub(hub_config(campus_dir), clock) as first:
        port = first.port
        terminal = CanteenPos(
            info, target=first.target, sink=tally, ecard=ECardApp(creds), heartbeat=False, auto_offline=True
        )
        await terminal.start()
        before = (await terminal.client.wallet_balance(a.card_no)).balance_fen
        assert (await terminal.purchase(a, 1_000, qr=False)).outcome == APPROVED
    try:
        # The hub is gone: the sale fails UNAVAILABLE, the POS goes offline and sells on local rules.
        lost = await terminal.purchase(b, 800, qr=False)
        assert lost.outcome == OFFLINE_APPROVED and terminal.offline and terminal.lost_hub
        assert tally.outcomes["ERROR_UNAVAILABLE"] == 1 and len(terminal.lost_requests) == 1
        assert (await terminal.purchase(a, 600, qr=True)).outcome == OFFLINE_APPROVED
        assert await terminal.probe() == []  # still no hub: stays offline
        assert terminal.offline
        again = dataclasses.replace(hub_config(campus_dir), listen=f"127.0.0.1:{port}")
        async with running_hub(again, clock):
            uploads = await terminal.probe()  # the hub answers: online again, stored sales uploaded
            for _ in range(40):  # the channel reconnects with a backoff: probe as the heartbeat would
                if not terminal.offline:
                    break
                await asyncio.sleep(0.25)
                uploads = await terminal.probe()
            assert not terminal.offline and [(u.transactions, u.booked) for u in uploads] == [(2, 2)]
            assert terminal.lost_requests == [] and terminal.counters["reversals"] == 1
            after = (await terminal.client.wallet_balance(a.card_no)).balance_fen
            assert after == before - 1_000 - 600
    finally:
        await terminal.stop()
