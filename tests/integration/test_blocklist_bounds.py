"""How many WatchBlocklist streams there may be, over a real server: a terminal has one (a new one
replaces the old, which ends with FAILED_PRECONDITION / STREAM_REPLACED), a connection and a school
are bounded (RESOURCE_EXHAUSTED / OVERLOADED, metadata "bound"), so one terminal, connection or
school never takes the live blocklist away from the others; every stream that ends leaves the feed.

In plain text every SDK client of this process shares one HTTP/2 connection (gRPC's global
subchannel pool); a channel with a local subchannel pool gets a connection of its own.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import grpc
import pytest

from onecard.terminal.v1 import terminal_service_pb2 as pb
from onecard.terminal.v1 import terminal_service_pb2_grpc as pb_grpc
from onecard_client import CardOfficeClient, ClientConfig, TerminalClient
from onecard_client.blocklist import BlocklistCopy
from onecard_client.campus import TerminalInfo
from onecard_client.errors import FailedPreconditionError, ResourceExhaustedError, from_rpc_error
from onecard_hub.server import RunningHub
from onecard_sim.progress import Tally
from onecard_sim.terminal import SimTerminal
from tests.helpers import Campus, new_request_id, until

WAIT_S = 10.0  # a guard against hanging, never a timing assertion
TERMINAL_HEADER = "onecard-terminal-id"


class Watcher:
    """A terminal's open stream, read one message at a time."""

    def __init__(self, client: TerminalClient, since_version: int = 0) -> None:
        self._stream: AsyncIterator[pb.WatchBlocklistResponse] = client.watch_blocklist(since_version)

    async def next(self) -> pb.WatchBlocklistResponse:
        return await asyncio.wait_for(anext(self._stream), WAIT_S)

    async def close(self) -> None:
        await self._stream.aclose()  # type: ignore[attr-defined]


async def _watch(client: TerminalClient, copy: BlocklistCopy | None = None) -> Watcher:
    """A stream whose first message arrived: the hub has registered it."""
    watcher = Watcher(client, copy.version if copy is not None else 0)
    first = await watcher.next()
    if copy is not None:
        copy.apply(first)
    return watcher


async def _report_loss(hub: RunningHub, card_no: str) -> None:
    async with CardOfficeClient("province-admin", ClientConfig(target=hub.target)) as office:
        await office.report_loss(new_request_id(), card_no)


async def _sees(watcher: Watcher, card_no: str) -> None:
    """The stream's next messages bring the loss of `card_no`."""
    while True:
        message = await watcher.next()
        if card_no in [c.card_no for c in message.changes]:
            return


def _terminals(campus: Campus, school: int) -> list[TerminalInfo]:
    school_id = campus.school(school)
    return [
        *campus.creds.terminals_of(school_id, "gate"),
        *campus.creds.terminals_of(school_id, "canteen_pos"),
    ]


async def test_one_terminal_opening_many_streams_leaves_the_others_their_streams(
    campus: Campus, hub: RunningHub
) -> None:
    feed = hub.hub.blocklist_feed
    gate, pos, other_pos = campus.gate(), campus.pos(index=0), campus.pos(index=1)
    before = feed.subscribers
    feed.max_subscribers = before + 4  # the hub-wide cap, made small: the probe filled 20,000
    watcher = await _watch(campus.client(pos))  # subscribed before the flood

    flooder = campus.client(gate)
    flood = [Watcher(flooder) for _ in range(20)]
    for stream in flood:
        await stream.next()  # each one subscribed, replacing the one before
    assert feed.subscribers == before + 2  # the gate holds one stream, whatever it opens

    late = await _watch(campus.client(other_pos))  # a terminal arriving after the flood subscribes
    card = campus.card()
    await _report_loss(hub, card.card_no)
    await _sees(watcher, card.card_no)
    await _sees(late, card.card_no)
    await _sees(flood[-1], card.card_no)  # the newest of the gate's streams is the live one
    for stream in (*flood, watcher, late):
        await stream.close()


async def test_a_second_stream_of_a_terminal_replaces_the_first(campus: Campus, hub: RunningHub) -> None:
    feed = hub.hub.blocklist_feed
    before = feed.subscribers
    client = campus.client(campus.gate())
    first = await _watch(client)
    copy = BlocklistCopy()
    second = await _watch(client, copy)
    assert feed.subscribers == before + 1

    with pytest.raises(FailedPreconditionError) as replaced:  # the first ends, with a status
        await first.next()
    assert replaced.value.reason == "STREAM_REPLACED"

    card = campus.card()
    await _report_loss(hub, card.card_no)
    message = await second.next()
    assert [c.card_no for c in message.changes] == [card.card_no]
    copy.apply(message)
    assert copy.blocks(card.card_no)
    await second.close()
    await until(lambda: feed.subscribers == before)


async def test_the_school_bound_refuses_while_another_school_subscribes(
    campus: Campus, hub: RunningHub
) -> None:
    feed = hub.hub.blocklist_feed
    feed.max_per_school = 2
    first, second, third = _terminals(campus, 0)[:3]
    open_ = [await _watch(campus.client(first)), await _watch(campus.client(second))]

    with pytest.raises(ResourceExhaustedError) as refused:
        await Watcher(campus.client(third)).next()
    assert refused.value.reason == "OVERLOADED"
    assert refused.value.metadata["bound"] == "school"
    assert feed.of_school(campus.school(0)) == 2

    open_.append(await _watch(campus.client(first)))  # replacing its own stream is no new one
    elsewhere = await _watch(campus.client(campus.gate(school=1)))
    own, foreign = campus.card(school=0), campus.card(school=1)
    await _report_loss(hub, foreign.card_no)
    await _sees(elsewhere, foreign.card_no)
    await _report_loss(hub, own.card_no)
    await _sees(open_[1], own.card_no)  # the streams already open keep running
    await _sees(open_[2], own.card_no)
    for stream in (*open_, elsewhere):
        await stream.close()


async def test_the_connection_bound_refuses_while_another_connection_subscribes(
    campus: Campus, hub: RunningHub
) -> None:
    feed = hub.hub.blocklist_feed
    feed.max_per_connection = 2
    first, second, third = _terminals(campus, 0)[:3]
    open_ = [await _watch(campus.client(first)), await _watch(campus.client(second))]

    with pytest.raises(ResourceExhaustedError) as refused:  # the same (shared) connection
        await Watcher(campus.client(third)).next()
    assert refused.value.metadata["bound"] == "connection"

    options = [("grpc.use_local_subchannel_pool", 1)]  # a connection of its own
    async with grpc.aio.insecure_channel(hub.target, options=options) as channel:
        stub = pb_grpc.TerminalServiceStub(channel)
        call = stub.WatchBlocklist(
            pb.WatchBlocklistRequest(terminal_id=third.terminal_id),
            metadata=((TERMINAL_HEADER, third.terminal_id),),
        )
        try:
            first_message = await asyncio.wait_for(call.read(), WAIT_S)
        except grpc.aio.AioRpcError as exc:
            raise AssertionError(f"refused on its own connection: {from_rpc_error(exc)}") from None
        assert isinstance(first_message, pb.WatchBlocklistResponse) and first_message.snapshot
        call.cancel()
    for stream in open_:
        await stream.close()


async def test_streams_that_end_leave_the_feed(campus: Campus, hub: RunningHub) -> None:
    feed = hub.hub.blocklist_feed
    before = feed.subscribers
    gate, pos, foreign = campus.gate(), campus.pos(), campus.gate(school=1)

    replaced = await _watch(campus.client(gate))
    streams = [await _watch(campus.client(gate)), await _watch(campus.client(pos))]
    streams.append(await _watch(campus.client(foreign)))
    assert feed.subscribers == before + 3  # the replaced one left at once
    with pytest.raises(FailedPreconditionError):
        await replaced.next()

    gone = TerminalClient(pos.terminal_id, ClientConfig(target=hub.target))
    streams.append(await _watch(gone))  # replaces the POS's stream, then its client goes away
    await gone.close()
    for stream in streams:
        await stream.close()  # cancelled by the client
    await until(lambda: feed.subscribers == before)
    assert feed.of_school(campus.school(0)) == feed.of_school(campus.school(1)) == 0


async def test_two_simulated_terminals_of_one_id_do_not_take_the_stream_from_each_other(
    campus: Campus, hub: RunningHub
) -> None:
    feed = hub.hub.blocklist_feed
    before = feed.subscribers
    older = SimTerminal(campus.pos(), target=hub.target, sink=Tally(), heartbeat=False)
    newer = SimTerminal(campus.pos(), target=hub.target, sink=Tally(), heartbeat=False)
    await older.start()
    try:
        assert older.watch is not None
        await until(lambda: feed.subscribers == before + 1)
        await newer.start()
        assert newer.watch is not None
        await until(lambda: older.watch is not None and not older.watch.running)
        assert older.watch.replaced and not newer.watch.replaced  # the older one gave up its stream
        card = campus.card()
        await _report_loss(hub, card.card_no)
        await until(lambda: newer.watch is not None and newer.watch.copy.blocks(card.card_no))
        assert newer.watch.running and newer.watch.reconnects == 0
        assert feed.subscribers == before + 1
    finally:
        await older.stop()
        await newer.stop()
