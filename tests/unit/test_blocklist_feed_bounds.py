"""The blocklist feed's bounds without a server: one stream per terminal (the replaced one lets its
queue go), per connection, per school, on the hub; a replacement never counts against a bound."""

from __future__ import annotations

import asyncio

import pytest

from onecard_hub.blocklist_feed import MAX_PER_CONNECTION, BlocklistFeed, FeedMessage, Subscription
from onecard_hub.domain.campus import Campus
from onecard_hub.domain.errors import FailedPrecondition, Overloaded
from onecard_hub.domain.ledger import Ledger
from onecard_hub.domain.model import CardStatus
from onecard_hub.server import GRPC_OPTIONS, MAX_CONCURRENT_STREAMS
from onecard_hub.store.records import Batch


def _feed(**bounds: int) -> BlocklistFeed:
    return BlocklistFeed(Campus(Ledger(), lambda card_no, pin: b""), **bounds)


def _commit(feed: BlocklistFeed, school_id: str, card_no: str) -> None:
    change = feed.campus.blocklist(school_id).update(card_no, CardStatus.LOST, 1)
    assert change is not None
    feed.committed(Batch(blocklist=[change]))


async def _read_all(subscription: Subscription) -> list[FeedMessage]:
    return [message async for message in subscription.messages()]


async def test_a_replaced_stream_lets_its_queue_go_and_ends_with_stream_replaced() -> None:
    feed = _feed()
    old = feed.subscribe("sc", "T-1", 0, "peer-1")
    for card_no in ("A", "B", "C"):
        _commit(feed, "sc", card_no)
    assert len(old.pending) == 3
    new = feed.subscribe("sc", "T-1", 0, "peer-2")
    assert old.pending == [] and old.first is None  # its waiting messages let go
    assert (feed.subscribers, feed.on_connection("peer-1"), feed.on_connection("peer-2")) == (1, 0, 1)
    with pytest.raises(FailedPrecondition) as replaced:
        await _read_all(old)
    assert replaced.value.reason == "STREAM_REPLACED"
    assert new.first is not None and new.first.snapshot and new.first.version == 3
    _commit(feed, "sc", "D")
    assert len(new.pending) == 1


async def test_a_cancelled_stream_leaves_the_feed() -> None:
    feed = _feed()
    subscription = feed.subscribe("sc", "T-1", 0, "peer-1")
    both = asyncio.Event()

    async def read() -> None:
        async for message in subscription.messages():
            if message.changes:
                both.set()

    reader = asyncio.create_task(read())
    _commit(feed, "sc", "A")
    await asyncio.wait_for(both.wait(), 10)  # the first message and the change read: it waits
    reader.cancel()
    with pytest.raises(asyncio.CancelledError):
        await reader
    assert (feed.subscribers, feed.of_school("sc"), feed.on_connection("peer-1")) == (0, 0, 0)


@pytest.mark.parametrize(
    ("bounds", "school_id", "connection", "bound"),
    [
        ({"max_per_connection": 2}, "other", "peer-1", "connection"),
        ({"max_per_school": 2}, "sc", "peer-2", "school"),
        ({"max_subscribers": 2}, "other", "peer-2", "hub"),
    ],
)
def test_a_new_stream_over_a_bound_is_refused(
    bounds: dict[str, int], school_id: str, connection: str, bound: str
) -> None:
    feed = _feed(**bounds)
    feed.subscribe("sc", "T-1", 0, "peer-1")
    feed.subscribe("sc", "T-2", 0, "peer-1")
    with pytest.raises(Overloaded) as refused:
        feed.subscribe(school_id, "T-3", 0, connection)
    assert refused.value.metadata == {"bound": bound}
    assert feed.subscribers == 2
    feed.subscribe("sc", "T-2", 0, "peer-1")  # a replacement takes the place it held
    assert feed.subscribers == 2


def test_a_replacement_from_another_connection_needs_room_there() -> None:
    feed = _feed(max_per_connection=1)
    feed.subscribe("sc", "T-1", 0, "peer-1")
    feed.subscribe("sc", "T-2", 0, "peer-2")
    with pytest.raises(Overloaded):
        feed.subscribe("sc", "T-1", 0, "peer-2")  # peer-2 is full; T-1 keeps its stream
    assert (feed.subscribers, feed.on_connection("peer-1")) == (2, 1)


def test_blocklist_streams_take_at_most_half_of_a_connections_streams() -> None:
    assert ("grpc.max_concurrent_streams", MAX_CONCURRENT_STREAMS) in GRPC_OPTIONS
    assert MAX_PER_CONNECTION <= MAX_CONCURRENT_STREAMS // 2
    # What unary calls always keep: the bench's 64 in flight, the simulators' 128, a Locust process's
    # 200 users, several times over.
    assert MAX_CONCURRENT_STREAMS - MAX_PER_CONNECTION >= 1_000
