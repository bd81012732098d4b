"""WatchBlocklist's messages encoded once: the bytes decode to exactly the message built field by
field, deltas joined decode as one delta with every change, a stream with several messages waiting
sends them as one, a school's snapshot is made once per version, a large fan-out wakes its streams
a chunk at a time and pauses the automatic garbage collections."""

from __future__ import annotations

import asyncio
import gc
from collections.abc import AsyncGenerator

from onecard.terminal.v1 import terminal_service_pb2 as pb
from onecard_hub.blocklist_feed import LARGE_FANOUT, WAKE_CHUNK, BlocklistFeed, FeedMessage
from onecard_hub.blocklist_wire import encode_delta, encode_snapshot, joined
from onecard_hub.collection_pause import CollectionPause
from onecard_hub.domain.blocklist import BlocklistChange
from onecard_hub.domain.campus import Campus
from onecard_hub.domain.ledger import Ledger
from onecard_hub.domain.model import CardStatus
from onecard_hub.store.records import Batch
from tests.helpers import until

WAIT_S = 10.0  # a guard against hanging, never a timing assertion


def _change(version: int, card_no: str, added: bool = True) -> BlocklistChange:
    return BlocklistChange("sc", version, card_no, added, 1_700_000_000_000 + version)


def _expected(version: int, changes: list[BlocklistChange]) -> pb.WatchBlocklistResponse:
    """The message as the servicer built it before it sent bytes: field by field."""
    message = pb.WatchBlocklistResponse(snapshot=False, version=version)
    for c in changes:
        item = pb.BlocklistChange(
            version=c.version,
            card_no=c.card_no,
            kind=pb.BLOCKLIST_CHANGE_KIND_ADDED if c.added else pb.BLOCKLIST_CHANGE_KIND_REMOVED,
        )
        item.changed_at.FromMilliseconds(c.changed_ms)
        message.changes.append(item)
    return message


def test_a_delta_decodes_to_the_message_built_field_by_field() -> None:
    changes = [_change(7, "A"), _change(8, "B", added=False)]
    wire = encode_delta(8, changes)
    assert pb.WatchBlocklistResponse.FromString(wire) == _expected(8, changes)
    assert wire == _expected(8, changes).SerializeToString()
    assert encode_delta(8, []) == pb.WatchBlocklistResponse(version=8).SerializeToString()  # up to date


def test_a_snapshot_decodes_to_the_whole_list() -> None:
    wire = encode_snapshot(4, ["A", "B"])
    assert pb.WatchBlocklistResponse.FromString(wire) == pb.WatchBlocklistResponse(
        snapshot=True, version=4, blocked_card_nos=["A", "B"]
    )


def test_deltas_joined_decode_as_one_delta_with_every_change_in_order() -> None:
    first, second, third = (
        [_change(3, "A")],
        [_change(4, "B"), _change(5, "A", added=False)],
        [_change(6, "C")],
    )
    wire = joined([encode_delta(3, first), encode_delta(5, second), encode_delta(6, third)])
    assert pb.WatchBlocklistResponse.FromString(wire) == _expected(6, first + second + third)
    assert joined([encode_delta(3, first)]) == encode_delta(3, first)


def _feed() -> BlocklistFeed:
    return BlocklistFeed(Campus(Ledger(), lambda card_no, pin: b""))


def _commit(feed: BlocklistFeed, card_nos: list[str]) -> None:
    blocklist = feed.campus.blocklist("sc")
    changes = [blocklist.update(card_no, CardStatus.LOST, 1) for card_no in card_nos]
    feed.committed(Batch(blocklist=[c for c in changes if c is not None]))


async def test_one_message_per_batch_is_shared_by_every_stream_of_the_school() -> None:
    feed = _feed()
    streams = [feed.subscribe("sc", f"T-{i}", 0, f"peer-{i % 2}") for i in range(5)]
    _commit(feed, ["A", "B"])
    live = {id(s.pending[0]) for s in streams}
    assert len(live) == 1  # one object (and one encoding) for the five streams
    message = streams[0].pending[0]
    assert pb.WatchBlocklistResponse.FromString(message.wire) == _expected(2, message.changes)
    assert [c.card_no for c in message.changes] == ["A", "B"]


async def test_messages_waiting_together_go_out_as_one() -> None:
    feed = _feed()
    subscription = feed.subscribe("sc", "T-1", 0, "peer-1")
    for card_no in ("A", "B", "C"):
        _commit(feed, [card_no])  # three batches before the stream gets any CPU
    stream = subscription.messages()
    first = await asyncio.wait_for(anext(stream), WAIT_S)
    assert first.snapshot and first.version == 0
    live = await asyncio.wait_for(anext(stream), WAIT_S)
    assert (live.snapshot, live.version, [c.card_no for c in live.changes]) == (False, 3, ["A", "B", "C"])
    assert pb.WatchBlocklistResponse.FromString(live.wire) == _expected(3, live.changes)
    assert subscription.pending == []
    _commit(feed, ["D"])  # the next one alone
    alone = await asyncio.wait_for(anext(stream), WAIT_S)
    assert [c.card_no for c in alone.changes] == ["D"] and alone.version == 4
    await stream.aclose()
    assert feed.subscribers == 0


def test_a_schools_snapshot_is_made_once_per_version() -> None:
    feed = _feed()
    _commit(feed, ["A"])
    one, two = (feed.subscribe("sc", f"T-{i}", 0, "") for i in range(2))
    assert one.first is not None and one.first is two.first  # the same message, encoded once
    _commit(feed, ["B"])
    three = feed.subscribe("sc", "T-3", 0, "")
    assert three.first is not None and three.first is not one.first
    assert three.first == FeedMessage(True, 2, card_nos=["A", "B"])
    assert pb.WatchBlocklistResponse.FromString(three.first.wire) == pb.WatchBlocklistResponse(
        snapshot=True, version=2, blocked_card_nos=["A", "B"]
    )


async def test_a_large_fan_out_wakes_every_stream_in_chunks_and_pauses_collections() -> None:
    feed = _feed()
    count = max(2 * WAKE_CHUNK + 3, LARGE_FANOUT)  # three chunks or more; large enough to pause
    streams = [feed.subscribe("sc", f"T-{i}", 0, "") for i in range(count)]
    readers = [s.messages() for s in streams]
    for reader in readers:
        await asyncio.wait_for(anext(reader), WAIT_S)  # the snapshot
    got: list[FeedMessage] = []

    async def read(reader: AsyncGenerator[FeedMessage, None]) -> None:
        got.append(await anext(reader))

    tasks = [asyncio.create_task(read(r)) for r in readers]
    await asyncio.sleep(0)  # every reader now waits for a message
    assert all(s._wake is not None for s in streams)
    _commit(feed, ["A"])
    woken_now = sum(1 for s in streams if s._wake is None)
    assert woken_now == WAKE_CHUNK  # the first chunk at once, the rest as the loop goes on
    await asyncio.wait_for(asyncio.gather(*tasks), WAIT_S)
    assert len(got) == count and all(m is got[0] for m in got)  # one message, shared
    assert [c.card_no for c in got[0].changes] == ["A"]
    assert feed.collections.paused
    feed.close()
    assert not feed.collections.paused
    for reader in readers:
        await reader.aclose()


async def test_a_collection_pause_ends_and_leaves_a_collector_turned_off_by_others_alone() -> None:
    assert gc.isenabled()
    pause = CollectionPause()
    try:
        pause.pause(0.01)
        assert pause.paused and not gc.isenabled()
        pause.pause(0.01)  # extended: still one pause
        await until(lambda: not pause.paused, "the pause ended")
        assert gc.isenabled()
        gc.disable()  # someone else's
        pause.pause(0.01)
        assert not pause.paused and not gc.isenabled()
    finally:
        pause.resume()
        gc.enable()
