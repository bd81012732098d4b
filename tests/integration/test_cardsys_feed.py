"""The provincial card system's feed: a real simulator (`onecard-sim cardsys`) and a real hub
following it (`--cardsys`). Changes made at an HR window or a bank branch reach the card; the
stream dropping, the hub restarting and the simulator restarting lose nothing and apply nothing
twice."""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack
from pathlib import Path
from typing import Any

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from onecard.auth.v1 import authorization_service_pb2 as pb
from onecard.cardoffice.v1 import card_office_service_pb2 as office_pb
from onecard.cardsys.v1 import card_system_service_pb2 as cs_pb
from onecard_client import CardOfficeClient, ClientConfig
from onecard_client.campus import CampusCredentials
from onecard_hub.cardsys_feed import HEALTH_NAME
from onecard_hub.domain.clock import ManualClock
from onecard_hub.server import RunningHub, running_hub
from onecard_sim.cardsys import CardsysClient, RunningCardsys, running_cardsys
from tests.conftest import hub_config
from tests.helpers import Campus, name

BUY = pb.SCENE_CANTEEN_PURCHASE
WAIT_S = 20.0  # an upper bound for the feed to get somewhere, never a measured time


@pytest.fixture
async def cardsys(tmp_path: Path) -> AsyncIterator[RunningCardsys]:
    async with running_cardsys(tmp_path / "cardsys.db", heartbeat_s=0.2) as running:
        yield running


@pytest.fixture
async def followed(
    campus_dir: Path, clock: ManualClock, cardsys: RunningCardsys
) -> AsyncIterator[RunningHub]:
    async with running_hub(hub_config(campus_dir, cardsys=cardsys.target), clock) as running:
        yield running


@pytest.fixture
async def sim(cardsys: RunningCardsys) -> AsyncIterator[CardsysClient]:
    async with CardsysClient(cardsys.target) as client:
        yield client


async def applied(running: RunningHub, version: int) -> None:
    """Waits until the hub's feed has applied (durably) up to `version`."""
    feed = running.cardsys_feed
    assert feed is not None
    async with asyncio.timeout(WAIT_S):
        await feed.wait_applied(version)


def table(campus_dir: Path, sql: str, *params: object) -> list[tuple[object, ...]]:
    with sqlite3.connect(campus_dir / "hub.db") as db:
        return db.execute(sql, params).fetchall()


async def test_a_loss_at_the_hr_window_declines_the_next_tap_and_unlock_approves_again(
    campus_dir: Path, followed: RunningHub, sim: CardsysClient, creds: CampusCredentials, clock: ManualClock
) -> None:
    campus = Campus(creds, clock, followed.target)
    try:
        card, pos = campus.card(), campus.pos()
        assert (
            await campus.send(campus.chip(card, pos, BUY, amount_fen=500))
        ).decision == pb.DECISION_APPROVED
        loss = await sim.record_change(card.card_no, "identity", "loss")
        await applied(followed, loss.version)
        declined = await campus.send(campus.chip(card, pos, BUY, amount_fen=500))
        assert name(declined.decline_reason) == "CARD_REPORTED_LOST"
        # Terminals hear of it too: the school's blocklist follows, its change journaled.
        assert card.card_no in followed.hub.campus.blocklist(campus.school()).card_nos
        assert table(campus_dir, "SELECT added FROM blocklist_changes WHERE card_no = ?", card.card_no) == [
            (1,)
        ]
        qr = await campus.send(campus.qr(card, pos, BUY, amount_fen=500))
        assert name(qr.decline_reason) == "CARD_REPORTED_LOST"
        unlock = await sim.record_change(card.card_no, "identity", "unlock", "hr_window")
        await applied(followed, unlock.version)
        again = await campus.send(campus.chip(card, pos, BUY, amount_fen=500))
        assert again.decision == pb.DECISION_APPROVED
    finally:
        await campus.close()
    feed = followed.cardsys_feed
    assert feed is not None and feed.health.connected and feed.health.lag == 0
    async with grpc.aio.insecure_channel(followed.target) as channel:
        health: Any = health_pb2_grpc.HealthStub(channel)
        answer = await health.Check(health_pb2.HealthCheckRequest(service=HEALTH_NAME))
        assert answer.status == health_pb2.HealthCheckResponse.SERVING
    rows = table(campus_dir, "SELECT version, outcome FROM cardsys_changes ORDER BY version")
    assert rows == [(loss.version, "applied"), (unlock.version, "applied")]


async def test_bank_changes_show_on_the_card_and_never_stop_a_tap(
    campus_dir: Path,
    clock: ManualClock,
    cardsys: RunningCardsys,
    sim: CardsysClient,
    creds: CampusCredentials,
) -> None:
    campus0 = Campus(creds, clock, "")
    card = campus0.card(skip=1)
    with sqlite3.connect(campus_dir / "hub.db") as db:
        db.execute("UPDATE cards SET bank_status = 'not_activated' WHERE card_no = ?", (card.card_no,))
    async with AsyncExitStack() as stack:
        running = await stack.enter_async_context(
            running_hub(hub_config(campus_dir, cardsys=cardsys.target), clock)
        )
        office = await stack.enter_async_context(
            CardOfficeClient("province-admin", ClientConfig(target=running.target))
        )
        campus = Campus(creds, clock, running.target)
        stack.push_async_callback(campus.close)
        before = await office.get_card(card.card_no)
        assert before.card.bank_status == office_pb.BANK_STATUS_NOT_ACTIVATED
        activation = await sim.record_change(card.card_no, "bank", "activate", "bank_branch")
        await applied(running, activation.version)
        assert (await office.get_card(card.card_no)).card.bank_status == office_pb.BANK_STATUS_ACTIVE
        frozen = await sim.record_change(card.card_no, "bank", "freeze")
        await applied(running, frozen.version)
        assert (await office.get_card(card.card_no)).card.bank_status == office_pb.BANK_STATUS_FROZEN
        # Campus taps follow the identity function only.
        tap = await campus.send(campus.chip(card, campus.pos(), BUY, amount_fen=300))
        assert tap.decision == pb.DECISION_APPROVED
        lost = await sim.record_change(card.card_no, "bank", "loss", "hotline")
        await applied(running, lost.version)
    # Durable: the card row and the audit log (actor: the provincial system, at the channel).
    assert table(campus_dir, "SELECT bank_status FROM cards WHERE card_no = ?", card.card_no) == [("lost",)]
    audit = table(
        campus_dir,
        "SELECT actor_kind, actor_id, action FROM audit_log WHERE card_no = ? ORDER BY audit_id",
        card.card_no,
    )
    assert audit == [
        ("cardsys", "bank_branch", "cardsys.bank.activate"),
        ("cardsys", "bank_branch", "cardsys.bank.freeze"),
        ("cardsys", "hotline", "cardsys.bank.loss"),
    ]


async def test_an_unknown_card_is_skipped_but_its_version_taken(
    campus_dir: Path, followed: RunningHub, sim: CardsysClient, creds: CampusCredentials, clock: ManualClock
) -> None:
    unknown = await sim.record_change("Z00000001", "identity", "loss")
    card = Campus(creds, clock, "").card()
    loss = await sim.record_change(card.card_no, "identity", "loss")
    await applied(followed, loss.version)
    assert followed.hub.campus.cards[card.card_no].status.value == "lost"
    rows = table(campus_dir, "SELECT version, outcome FROM cardsys_changes ORDER BY version")
    assert rows == [(unknown.version, "unknown_card"), (loss.version, "applied")]


async def test_dropped_streams_reconnect_with_no_gap_and_no_double_apply(
    campus_dir: Path, followed: RunningHub, sim: CardsysClient, creds: CampusCredentials, clock: ManualClock
) -> None:
    feed = followed.cardsys_feed
    assert feed is not None
    cards = [c.card_no for c in creds.cards_of(creds.schools[0]) if c.status == "active"][:6]
    expected: dict[str, str] = {}
    versions: list[int] = []
    # Explicit drops between rounds, and the stream refused for a while after each.
    for round_no in range(4):
        await sim.set_faults(drop_now=True, refuse_for_s=0.2)
        for i, card_no in enumerate(cards):
            action = "loss" if (round_no + i) % 2 == 0 else "unlock"
            versions.append((await sim.record_change(card_no, "identity", action)).version)
            expected[card_no] = "lost" if action == "loss" else "active"
        await applied(followed, versions[-1])
    # Then drops every few tenths of a second while changes keep coming, mid-backlog too.
    await sim.set_faults(drop_every_s=0.15, refuse_for_s=0.05)
    for n in range(60):
        card_no = cards[n % len(cards)]
        action = "loss" if (n // len(cards)) % 2 == 0 else "unlock"
        versions.append((await sim.record_change(card_no, "identity", action)).version)
        expected[card_no] = "lost" if action == "loss" else "active"
        if n % 10 == 0:
            await asyncio.sleep(0.1)
    await applied(followed, versions[-1])
    await sim.set_faults()
    assert followed.hub.writer.failed is None  # a change applied twice would have broken the journal
    taken = [r[0] for r in table(campus_dir, "SELECT version FROM cardsys_changes ORDER BY version")]
    assert taken == versions == list(range(1, len(versions) + 1))
    assert feed.health.connects >= 5 and feed.health.failures >= 4
    for card_no, status in expected.items():
        assert followed.hub.campus.cards[card_no].status.value == status
        assert (await sim.get_status(card_no)).identity_status == (
            cs_pb.IDENTITY_STATUS_LOST if status == "lost" else cs_pb.IDENTITY_STATUS_ACTIVE
        )


async def test_a_restarted_hub_resumes_from_its_persisted_version(
    campus_dir: Path,
    clock: ManualClock,
    cardsys: RunningCardsys,
    sim: CardsysClient,
    creds: CampusCredentials,
) -> None:
    cards = [c.card_no for c in creds.cards_of(creds.schools[0]) if c.status == "active"][:3]
    config = hub_config(campus_dir, cardsys=cardsys.target)
    async with running_hub(config, clock) as first:
        for card_no in cards[:2]:
            last = await sim.record_change(card_no, "identity", "loss")
        await applied(first, last.version)
    # While the hub is down, the province goes on.
    unlock = await sim.record_change(cards[0], "identity", "unlock")
    third = await sim.record_change(cards[2], "identity", "loss")
    async with running_hub(config, clock) as second:
        assert second.hub.cardsys_version == last.version  # read back from the journal
        await applied(second, third.version)
        statuses = {c: second.hub.campus.cards[c].status.value for c in cards}
    assert statuses == {cards[0]: "active", cards[1]: "lost", cards[2]: "lost"}
    rows = table(campus_dir, "SELECT version FROM cardsys_changes ORDER BY version")
    assert [r[0] for r in rows] == [1, 2, unlock.version, third.version] == [1, 2, 3, 4]


async def test_a_restarted_simulator_keeps_its_changes_and_the_hub_follows_it_again(
    tmp_path: Path, campus_dir: Path, clock: ManualClock, creds: CampusCredentials
) -> None:
    db = tmp_path / "province.db"
    cards = [c.card_no for c in creds.cards_of(creds.schools[0]) if c.status == "active"][:2]
    async with running_cardsys(db, heartbeat_s=0.2) as first, CardsysClient(first.target) as sim:
        port = first.port
        recorded = await sim.record_change(cards[0], "identity", "loss", request_id="hr-1")
    async with running_hub(hub_config(campus_dir, cardsys=f"127.0.0.1:{port}"), clock) as running:
        # The hub starts while the simulator is down: it keeps retrying.
        await asyncio.sleep(0.3)
        feed = running.cardsys_feed
        assert feed is not None and not feed.health.connected
        async with (
            running_cardsys(db, f"127.0.0.1:{port}", heartbeat_s=0.2) as second,
            CardsysClient(second.target) as sim,
        ):
            status = await sim.get_status(cards[0])
            assert status.identity_status == cs_pb.IDENTITY_STATUS_LOST and status.head_version == 1
            again = await sim.record_change(cards[0], "identity", "loss", request_id="hr-1")
            assert again.version == recorded.version  # idempotent across the restart
            bank = await sim.record_change(cards[1], "bank", "freeze")
            assert bank.version == 2
            await applied(running, bank.version)
        assert running.hub.campus.cards[cards[0]].status.value == "lost"
        assert running.hub.campus.cards[cards[1]].bank_status.value == "frozen"
