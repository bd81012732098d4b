"""A loss report fanned out over a real server: every terminal of both schools subscribed over two
connections, changes reported one after the other and at once; each stream receives its own
school's changes only, in version order, no gap and no duplicate, as the very bytes every other
stream of its school received, which decode to the message built field by field."""

from __future__ import annotations

import asyncio

import grpc

from onecard.terminal.v1 import terminal_service_pb2 as pb
from onecard_client import CardOfficeClient, ClientConfig
from onecard_hub.server import RunningHub
from tests.helpers import Campus, new_request_id

WAIT_S = 10.0  # a guard against hanging, never a timing assertion
WATCH = "/onecard.terminal.v1.TerminalService/WatchBlocklist"
TERMINAL_HEADER = "onecard-terminal-id"
CONNECTIONS = 2


class RawStream:
    """A terminal's stream read as the bytes on the wire (no response deserializer)."""

    def __init__(self, channel: grpc.aio.Channel, terminal_id: str, school_id: str) -> None:
        self.school_id = school_id
        watch: grpc.aio.UnaryStreamMultiCallable[pb.WatchBlocklistRequest, bytes] = channel.unary_stream(
            WATCH, request_serializer=pb.WatchBlocklistRequest.SerializeToString, response_deserializer=None
        )
        self.call = watch(
            pb.WatchBlocklistRequest(terminal_id=terminal_id), metadata=((TERMINAL_HEADER, terminal_id),)
        )
        self.received: list[bytes] = []

    async def read(self) -> bytes:
        data = await asyncio.wait_for(self.call.read(), WAIT_S)
        assert isinstance(data, bytes)
        self.received.append(data)
        return data

    def changes(self) -> list[pb.BlocklistChange]:
        return [c for data in self.received[1:] for c in pb.WatchBlocklistResponse.FromString(data).changes]

    async def read_until(self, version: int) -> None:
        while pb.WatchBlocklistResponse.FromString(self.received[-1]).version < version:
            await self.read()


async def test_every_terminal_of_a_school_receives_the_same_bytes_in_order(
    campus: Campus, hub: RunningHub
) -> None:
    options = [("grpc.use_local_subchannel_pool", 1)]  # each channel a connection of its own
    channels = [grpc.aio.insecure_channel(hub.target, options=options) for _ in range(CONNECTIONS)]
    terminals = campus.creds.terminals
    streams = [
        RawStream(channels[i % CONNECTIONS], t.terminal_id, t.school_id) for i, t in enumerate(terminals)
    ]
    firsts = [pb.WatchBlocklistResponse.FromString(await s.read()) for s in streams]
    assert all(first.snapshot for first in firsts)
    assert hub.hub.blocklist_feed.subscribers == len(terminals)
    assert len({peer for peer in hub.hub.blocklist_feed._by_connection}) == CONNECTIONS
    versions = {s.school_id: f.version for s, f in zip(streams, firsts, strict=True)}

    one, two, three = (campus.card(school=0, skip=i).card_no for i in range(3))
    other = campus.card(school=1).card_no
    async with CardOfficeClient("province-admin", ClientConfig(target=hub.target)) as office:
        await office.report_loss(new_request_id(), one)
        await asyncio.gather(  # at once: may share a batch, or not
            office.report_loss(new_request_id(), two),
            office.report_loss(new_request_id(), three),
            office.report_loss(new_request_id(), other),
        )
    reported = {campus.school(0): [one, two, three], campus.school(1): [other]}
    durable = {school: hub.hub.campus.blocklist(school).durable_version for school in reported}
    await asyncio.gather(*(s.read_until(durable[s.school_id]) for s in streams))

    for school_id, card_nos in reported.items():
        own = [s for s in streams if s.school_id == school_id]
        assert len(own) > 1
        for s in own:
            changes = s.changes()
            assert [c.card_no for c in changes] == card_nos  # its school's only, in the order decided
            assert [c.version for c in changes] == list(
                range(versions[school_id] + 1, durable[school_id] + 1)
            )
            assert all(c.kind == pb.BLOCKLIST_CHANGE_KIND_ADDED for c in changes)
            # The very same bytes on every stream (a stream that had two messages waiting got them
            # as one, their bytes joined: the concatenation is the same).
            assert b"".join(s.received[1:]) == b"".join(own[0].received[1:])
        for data in own[0].received[1:]:  # ... and they are the message built field by field
            message = pb.WatchBlocklistResponse.FromString(data)
            expected = pb.WatchBlocklistResponse(version=message.changes[-1].version)
            for c in message.changes:
                item = expected.changes.add(version=c.version, card_no=c.card_no, kind=c.kind)
                item.changed_at.FromMilliseconds(campus.clock.now_ms())
            assert message == expected

    for s in streams:
        s.call.cancel()
    for channel in channels:
        await channel.close()
