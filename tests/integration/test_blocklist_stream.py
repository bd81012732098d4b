"""TerminalService.WatchBlocklist over a real server: a loss report reaches a subscribed terminal,
reconnecting resumes with no gap and no duplicate, a terminal too far behind gets a snapshot, a
slow reader is dropped, another school's changes are not sent, versions survive a restart."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from onecard.terminal.v1 import terminal_service_pb2 as pb
from onecard_client import CardOfficeClient, ClientConfig, TerminalClient
from onecard_client.blocklist import BlocklistCopy
from onecard_client.errors import (
    InvalidArgumentError,
    ResourceExhaustedError,
    UnauthenticatedError,
    UnavailableError,
)
from onecard_hub.domain.clock import ManualClock
from onecard_hub.domain.model import CardStatus
from onecard_hub.server import RunningHub, running_hub
from onecard_hub.store.records import Batch
from onecard_sim.progress import Tally
from onecard_sim.terminal import SimTerminal
from tests.conftest import hub_config
from tests.helpers import Campus, new_request_id

WAIT_S = 10.0  # a guard against hanging, never a timing assertion


def office(hub: RunningHub) -> CardOfficeClient:
    return CardOfficeClient("province-admin", ClientConfig(target=hub.target))


class Watcher:
    """A terminal's open stream, read one message at a time."""

    def __init__(self, client: TerminalClient, since_version: int) -> None:
        self._stream: AsyncIterator[pb.WatchBlocklistResponse] = client.watch_blocklist(since_version)

    async def next(self) -> pb.WatchBlocklistResponse:
        return await asyncio.wait_for(anext(self._stream), WAIT_S)

    async def close(self) -> None:
        await self._stream.aclose()  # type: ignore[attr-defined]


async def _watch(client: TerminalClient, copy: BlocklistCopy) -> Watcher:
    watcher = Watcher(client, copy.version)
    copy.apply(await watcher.next())
    return watcher


async def test_a_subscribed_terminal_sees_a_loss_report(campus: Campus, hub: RunningHub) -> None:
    gate = campus.gate()
    client = campus.client(gate)
    config = await client.get_config()
    copy = BlocklistCopy()
    watcher = await _watch(client, copy)
    assert copy.snapshots == 1  # version 0: a snapshot first
    assert (copy.version, sorted(copy.card_nos)) == (config.blocklist_version, list(config.blocked_card_nos))

    card = campus.card()
    async with office(hub) as admin:
        await admin.report_loss(new_request_id(), card.card_no)
    message = await watcher.next()
    assert not message.snapshot
    assert [(c.version, c.card_no, c.kind) for c in message.changes] == [
        (config.blocklist_version + 1, card.card_no, pb.BLOCKLIST_CHANGE_KIND_ADDED)
    ]
    assert message.changes[0].changed_at.ToMilliseconds() == campus.clock.now_ms()
    copy.apply(message)
    assert copy.blocks(card.card_no)
    after = await client.get_config()  # GetConfig and the stream agree
    assert (after.blocklist_version, list(after.blocked_card_nos)) == (copy.version, sorted(copy.card_nos))
    await watcher.close()


async def test_reconnecting_resumes_without_gap_or_duplicate(campus: Campus, hub: RunningHub) -> None:
    client = campus.client(campus.pos())
    copy = BlocklistCopy()
    watcher = await _watch(client, copy)
    first, second, third = (campus.card(skip=i) for i in range(3))
    async with office(hub) as admin:
        await admin.report_loss(new_request_id(), first.card_no)
        copy.apply(await watcher.next())
        await watcher.close()  # the terminal goes away...
        await admin.freeze_card(new_request_id(), second.card_no)
        await admin.report_loss(new_request_id(), third.card_no)
        await admin.unfreeze_card(new_request_id(), second.card_no)
    held = copy.version
    watcher = await _watch(client, copy)  # ...and comes back with the version it holds
    assert copy.snapshots == 1  # a delta, not a snapshot
    assert copy.version == held + 3 and copy.changes_applied == 4
    assert copy.blocks(first.card_no) and copy.blocks(third.card_no) and not copy.blocks(second.card_no)
    config = await client.get_config()
    assert (config.blocklist_version, list(config.blocked_card_nos)) == (copy.version, sorted(copy.card_nos))
    again = await _watch(client, copy)  # up to date: an empty delta
    assert copy.version == config.blocklist_version and copy.snapshots == 1
    await watcher.close()
    await again.close()


async def test_a_terminal_too_far_behind_gets_a_snapshot(campus: Campus, hub: RunningHub) -> None:
    client = campus.client(campus.gate())
    school_id = campus.school()
    hub.hub.campus.blocklist(school_id).keep = 2  # the hub keeps only the last two changes
    copy = BlocklistCopy()
    await (await _watch(client, copy)).close()
    old = copy.version
    async with office(hub) as admin:
        for i in range(3):
            await admin.report_loss(new_request_id(), campus.card(skip=i).card_no)
    behind = BlocklistCopy(version=old, card_nos=set(copy.card_nos))
    watcher = await _watch(client, behind)
    assert behind.snapshots == 1 and behind.version == old + 3
    assert all(behind.blocks(campus.card(skip=i).card_no) for i in range(3))
    await watcher.close()
    one_behind = BlocklistCopy(version=old + 2)
    watcher = await _watch(client, one_behind)  # still within what the hub keeps: a delta
    assert one_behind.snapshots == 0 and one_behind.version == old + 3
    await watcher.close()
    future = Watcher(client, old + 100)  # a version this hub never issued (another database)
    message = await future.next()
    assert message.snapshot and message.version == old + 3
    await future.close()


async def test_only_the_terminals_own_school_is_sent(campus: Campus, hub: RunningHub) -> None:
    client = campus.client(campus.gate(school=0))
    copy = BlocklistCopy()
    watcher = await _watch(client, copy)
    foreign, own = campus.card(school=1), campus.card(school=0)
    async with office(hub) as admin:
        await admin.report_loss(new_request_id(), foreign.card_no)
        await admin.report_loss(new_request_id(), own.card_no)
    message = await watcher.next()  # the first change it sees is its own school's
    assert [c.card_no for c in message.changes] == [own.card_no]
    assert message.version == copy.version + 1  # the other school's change took no version here
    await watcher.close()


async def test_a_slow_reader_is_dropped_with_resource_exhausted(campus: Campus, hub: RunningHub) -> None:
    feed = hub.hub.blocklist_feed
    feed.max_queue = 1
    client = campus.client(campus.gate())
    watcher = await _watch(client, BlocklistCopy())
    school_id = campus.school()
    # Two commits before the reader gets any CPU: the second finds its queue full.
    for i in range(2):
        changes = hub.hub.campus.set_card_status(campus.card(skip=i).card_no, CardStatus.FROZEN, at_ms=1)
        feed.committed(Batch(blocklist=changes))
    assert feed.subscribers == 0  # dropped at once, its queue freed
    with pytest.raises(ResourceExhaustedError) as caught:
        while True:
            await watcher.next()
    assert caught.value.reason == "OVERLOADED"
    assert hub.hub.campus.blocklist(school_id).durable_version > 0


async def test_bad_requests(campus: Campus, hub: RunningHub) -> None:
    with pytest.raises(InvalidArgumentError) as bad:
        await Watcher(campus.client(campus.gate()), -1).next()
    assert bad.value.field == "since_version"
    async with TerminalClient("no-such-terminal", ClientConfig(target=hub.target)) as stranger:
        with pytest.raises(UnauthenticatedError):
            await Watcher(stranger, 0).next()


async def test_versions_survive_a_restart_and_stop_ends_streams(
    campus_dir: Path, clock: ManualClock, campus_creds_gate: tuple[str, list[str]]
) -> None:
    gate_id, cards = campus_creds_gate
    config = hub_config(campus_dir)
    async with running_hub(config, clock) as running:
        client = TerminalClient(gate_id, ClientConfig(target=running.target))
        copy = BlocklistCopy()
        watcher = await _watch(client, copy)
        async with office(running) as admin:
            await admin.report_loss(new_request_id(), cards[0])
        copy.apply(await watcher.next())
        held = copy.version
        async with office(running) as admin:
            await admin.report_loss(new_request_id(), cards[1])  # the terminal is about to lose it
        copy.apply(await watcher.next())
        copy.version, copy.card_nos = held, copy.card_nos - {cards[1]}  # pretend it never applied it
    with pytest.raises(UnavailableError) as stopped:  # the stop ended the stream with a status
        await watcher.next()
    assert stopped.value.reason == "UNAVAILABLE"
    await client.close()

    async with running_hub(config, clock) as running:
        client = TerminalClient(gate_id, ClientConfig(target=running.target))
        watcher = await _watch(client, copy)  # the change log survived: a delta, no gap
        assert copy.snapshots == 1 and copy.version == held + 1 and copy.blocks(cards[1])
        async with office(running) as admin:
            await admin.report_loss(new_request_id(), cards[2])
        message = await watcher.next()
        assert [c.version for c in message.changes] == [held + 2]  # versions only grow
        await watcher.close()
        await client.close()


@pytest.fixture
def campus_creds_gate(creds: object) -> tuple[str, list[str]]:
    from onecard_client.campus import CampusCredentials

    assert isinstance(creds, CampusCredentials)
    school_id = creds.schools[0]
    gate = next(t for t in creds.terminals_of(school_id, "gate"))
    cards = [
        c.card_no for c in creds.cards_of(school_id) if c.status == "active" and c.enrollment == "enrolled"
    ]
    return gate.terminal_id, cards[:3]


async def test_a_simulated_terminal_keeps_its_copy_live(campus: Campus, hub: RunningHub) -> None:
    terminal = SimTerminal(campus.pos(), target=hub.target, sink=Tally(), heartbeat=False)
    await terminal.start()
    assert terminal.watch is not None
    card = campus.card()
    try:
        async with office(hub) as admin:
            await admin.report_loss(new_request_id(), card.card_no)
        for _ in range(int(WAIT_S / 0.01)):  # until the stream delivered it (bounded)
            if terminal.watch.copy.blocks(card.card_no):
                break
            await asyncio.sleep(0.01)
        assert terminal.watch.copy.blocks(card.card_no)
        assert terminal.book.rules is not None and card.card_no in terminal.book.rules.blocked
        assert terminal.book.check(card.card_no, 500, campus.clock.now_ms()) is not None  # refused offline
    finally:
        await terminal.stop()
