"""Simulated gate readers and canteen POS against a real hub (plain text and mutual TLS)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from onecard.auth.v1 import authorization_service_pb2 as pb
from onecard_client import ClientConfig, ECardClient, TLSConfig
from onecard_client.campus import CampusCredentials, TerminalInfo
from onecard_hub.domain.clock import ManualClock
from onecard_hub.security.pki import init_pki, issue_all
from onecard_hub.server import RunningHub, running_hub
from onecard_sim import curves
from onecard_sim.driver import Arrival, OpenLoopDriver, Stream
from onecard_sim.events import APPROVED, GATE_ENTRY, GATE_EXIT
from onecard_sim.gate import GateFleet, GateReader
from onecard_sim.population import ECardApp, Population
from onecard_sim.pos import CanteenPos
from onecard_sim.progress import Tally
from tests.conftest import hub_config

ENTRY, EXIT = pb.SCENE_GATE_ENTRY, pb.SCENE_GATE_EXIT


@pytest.fixture
async def app(hub: RunningHub, creds: CampusCredentials) -> AsyncIterator[ECardApp]:
    minter = ECardClient(ClientConfig(target=hub.target))
    yield ECardApp(creds, minter)
    await minter.close()


@pytest.fixture
def population(campus_dir: Path, creds: CampusCredentials) -> Population:
    return Population.load(campus_dir / "hub.keys", [creds.schools[0]], seed=5, campus=creds)


def main_gate(creds: CampusCredentials) -> TerminalInfo:
    return next(t for t in creds.terminals_of(creds.schools[0], "gate") if t.gate_group == "main")


async def test_gate_entry_then_exit_approved_and_a_second_entry_refused(
    hub: RunningHub, creds: CampusCredentials, app: ECardApp, population: Population
) -> None:
    tally = Tally()
    reader = GateReader(main_gate(creds), target=hub.target, sink=tally, ecard=app, heartbeat=False)
    await reader.start()
    try:
        assert reader.config is not None and reader.hard_anti_passback
        student = population.take(creds.schools[0], group="day")
        assert student is not None and not student.inside
        entry = await reader.tap(student, ENTRY, qr=True)  # the e-card app fetches its code from the hub
        assert entry.outcome == APPROVED and student.inside
        assert app.minted_by_hub == 1 and app.minted_locally == 0
        exit_ = await reader.pass_gate(student)  # inside → an exit
        assert exit_.event.scene == GATE_EXIT and exit_.outcome == APPROVED and not student.inside
        again = await reader.tap(student, ENTRY, qr=False)  # chip tap: the counter moves forward
        assert again.outcome == APPROVED and student.inside
        second = await reader.tap(student, ENTRY, qr=False)  # a second entry without an exit
        assert second.outcome == "ANTI_PASSBACK" and student.inside
        assert tally.taps == {GATE_ENTRY: 3, GATE_EXIT: 1}
        assert tally.outcomes == {APPROVED: 3, "ANTI_PASSBACK": 1}
        assert all(e >= 0 for e in tally.latencies_ms[GATE_ENTRY])
        await reader.heartbeat()
        assert reader.heartbeats == 1
    finally:
        await reader.stop()


async def test_gate_mistakes_are_declined_for_their_reason(
    hub: RunningHub, creds: CampusCredentials, app: ECardApp, population: Population
) -> None:
    tally = Tally()
    readers = [
        GateReader(info, target=hub.target, sink=tally, ecard=app, heartbeat=False)
        for info in creds.terminals_of(creds.schools[0], "gate")
    ]
    fleet = GateFleet(readers, population, seed=2)
    await fleet.start()
    try:
        arrival = Arrival(0.0, readers[0].now_ms(), "gate_entry")
        school = creds.schools[0]
        expired = await fleet.mistake(school, arrival, "expired_qr")
        assert expired is not None and expired.outcome == "QR_EXPIRED"
        unusable = await fleet.mistake(school, arrival, "unusable_card")
        assert unusable is not None
        assert unusable.outcome in ("CARD_REPORTED_LOST", "STUDENT_SUSPENDED")
        inside = population.take(school, inside=True)  # get one student inside by an approved entry
        assert inside is not None
        inside.inside = False
        hard = next(r for r in readers if r.hard_anti_passback)
        assert (await hard.tap(inside, ENTRY)).outcome == APPROVED
        population.give_back(inside)
        second = await fleet.mistake(school, arrival, "second_entry")
        assert second is not None and second.outcome == "ANTI_PASSBACK"
    finally:
        await fleet.stop()


async def test_open_loop_gate_traffic_is_all_approved_without_mistakes(
    hub: RunningHub, creds: CampusCredentials, app: ECardApp, population: Population
) -> None:
    tally = Tally()
    readers = [
        GateReader(info, target=hub.target, sink=tally, ecard=app, heartbeat=False, seed=i)
        for i, info in enumerate(creds.terminals_of(creds.schools[0], "gate"))
    ]
    fleet = GateFleet(readers, population, mistake_share=0.0, seed=3)
    await fleet.start()
    try:
        driver = OpenLoopDriver(readers[0].hub_time, max_in_flight=16)
        stats = await driver.run(
            [
                Stream(GATE_ENTRY, curves.constant(40.0), fleet.enter),
                Stream(GATE_EXIT, curves.constant(40.0), fleet.leave),
            ],
            duration_s=1.5,
            seed=9,
        )
    finally:
        await fleet.stop()
    assert stats.errors == 0 and stats.completed == stats.scheduled > 20
    assert tally.total + fleet.no_student == stats.completed
    assert tally.outcomes[APPROVED] == tally.total  # presence and counters kept right
    assert set(tally.taps) == {GATE_ENTRY, GATE_EXIT}


async def test_pos_purchase_pin_flow_and_refund(
    hub: RunningHub, creds: CampusCredentials, app: ECardApp, population: Population
) -> None:
    tally = Tally()
    info = creds.terminals_of(creds.schools[0], "canteen_pos")[0]
    pos = CanteenPos(info, target=hub.target, sink=tally, ecard=app, heartbeat=False, seed=4)
    await pos.start()
    try:
        student = population.take(creds.schools[0])
        assert student is not None
        before = (await pos.client.wallet_balance(student.card_no)).balance_fen
        paid = await pos.purchase(student, 1_200, qr=True)
        assert paid.outcome == APPROVED and paid.response is not None
        assert paid.response.balance_fen == before - 1_200
        # Above the PIN-free limit: a wrong PIN first (PIN_INCORRECT), then the right one.
        big = pos.pin_free_limit_fen() + 800
        table = await pos.purchase(student, big, qr=False, wrong_pin=True)
        assert table.outcome == APPROVED and pos.counters["pin_retries"] == 1
        assert tally.outcomes == {APPROVED: 2, "PIN_INCORRECT": 1}
        refund = await pos.refund(paid.event.request_id, 500)
        assert refund is not None and refund.refunded_fen == 500
        after = (await pos.client.wallet_balance(student.card_no)).balance_fen
        assert after == before - 1_200 - big + 500
        # A menu order: one or two dishes priced from the menu of the meal being served (lunch).
        order = pos.order(pos.now_ms())
        assert pos.meal_of(pos.now_ms()) == "lunch" and 1 <= len(order) <= 2
        assert all(350 <= item.price_fen <= 2_800 for item in order)
    finally:
        await pos.stop()


@pytest.fixture
async def tls_hub(campus_dir: Path, clock: ManualClock) -> AsyncIterator[tuple[RunningHub, Path]]:
    pki = campus_dir / "hub.keys" / "pki"
    init_pki(pki)
    issue_all(pki, campus_dir / "hub.keys" / "credentials.json")
    async with running_hub(hub_config(campus_dir, tls_dir=pki), clock) as running:
        yield running, pki


async def test_devices_over_mutual_tls(
    tls_hub: tuple[RunningHub, Path], creds: CampusCredentials, population: Population
) -> None:
    hub, pki = tls_hub
    minter = ECardClient(ClientConfig(target=hub.target, tls=TLSConfig.for_app(pki, "ecard-app")))
    app = ECardApp(creds, minter)
    tally = Tally()
    reader = GateReader(
        main_gate(creds), target=hub.target, sink=tally, ecard=app, pki_dir=pki, heartbeat=False
    )
    info = creds.terminals_of(creds.schools[0], "canteen_pos")[0]
    pos = CanteenPos(info, target=hub.target, sink=tally, ecard=app, pki_dir=pki, heartbeat=False)
    await reader.start()
    await pos.start()
    try:
        student = population.take(creds.schools[0])
        assert student is not None
        assert (await reader.pass_gate(student)).outcome == APPROVED
        assert (await pos.purchase(student, 900, qr=True)).outcome == APPROVED
        assert (await pos.purchase(student, 700, qr=False)).outcome == APPROVED
        assert app.minted_by_hub >= 1
        await pos.heartbeat()
    finally:
        await reader.stop()
        await pos.stop()
        await minter.close()
