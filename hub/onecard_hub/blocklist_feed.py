"""The live blocklist feed behind TerminalService.WatchBlocklist.

A terminal subscribes with the blocklist version it holds. It first gets one message: a full
snapshot (version 0, too far behind, or a version this hub never issued) or the delta since its
version (possibly empty: it is up to date). Then every change of its school, live, as the
writer commits it — the feed is a listener of the journal writer (`JournalWriter.listeners`), so
nothing reaches a terminal before it is durable. Subscribing reads the durable state and
registers the subscriber in one step with no await between, so no change falls between the
first message and the live ones, and none comes twice.

Fan-out is cheap because most of it is shared: a committed batch makes one message per school it
changed, encoded once (`FeedMessage.wire`, blocklist_wire.py), and every stream of the school sends
those same bytes; a subscriber is a list of waiting messages and a future its stream waits on when
the list is empty, so a change costs a list append and one wake-up per stream. Messages that wait
for one stream together go out as one (their bytes joined; a terminal applies the same changes).
A school's snapshot is made and encoded once per version, whatever the number of terminals that
subscribe from scratch. The streams are woken WAKE_CHUNK at a time, the event loop polling between
chunks (`_wake_in_chunks`), and a change going to LARGE_FANOUT streams or more pauses the garbage
collector's automatic collections for a second (collection_pause.py): the writes in flight are
not walked over and over, and other calls are served during a fan-out.

Each subscriber holds at most `max_queue` waiting messages (one per committed batch that changed
its school's list). A subscriber that falls that far behind is dropped with RESOURCE_EXHAUSTED
(it reconnects with the version it holds and gets a delta or a snapshot); memory never grows
without bound. `close()` (the server stopping) ends every stream with UNAVAILABLE, at once.

How many streams (a terminal needs one; one terminal, connection or school must not take every
other school's lost-card updates away):

    per terminal     one: a new stream replaces the terminal's old one, which ends with
                     FAILED_PRECONDITION / STREAM_REPLACED (see `replaced`)
    per connection   `max_per_connection` (the HTTP/2 peer), well under the server's
                     `grpc.max_concurrent_streams`, so watches never take every stream of a connection
    per school       `max_per_school`
    on the hub       `max_subscribers`, the last line

Over a bound the new stream is refused with RESOURCE_EXHAUSTED / OVERLOADED, ErrorInfo metadata
"bound" naming it ("connection", "school", "hub"); the streams already open keep running.
Replacing never counts against a bound the old stream held. A stream that ends for any reason
(replaced, dropped, cancelled by the client, the connection lost) leaves the feed at once and its
waiting messages are let go.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncGenerator
from dataclasses import dataclass, field
from time import perf_counter
from typing import Protocol

from onecard_hub.blocklist_wire import encode_delta, encode_snapshot, joined
from onecard_hub.collection_pause import CollectionPause
from onecard_hub.domain.blocklist import BlocklistChange, BlocklistSnapshot
from onecard_hub.domain.campus import Campus
from onecard_hub.domain.errors import FailedPrecondition, HubError, Overloaded, Unavailable
from onecard_hub.store.records import Batch

log = logging.getLogger(__name__)

MAX_QUEUE = 256  # messages per subscriber
MAX_SUBSCRIBERS = 20_000  # on the hub: the last line
# A school: its gates, POS, library desks and exam tablets, one stream each (`make bench-blocklist`
# seeds up to 2,000 in a school); 2,000 leaves room and still keeps one school to a tenth of the hub.
MAX_PER_SCHOOL = 2_000
# One connection (HTTP/2 peer). With mutual TLS a terminal has its own connection, so one stream;
# in plain text every client of a process shares one connection (gRPC's global subchannel pool):
# `make bench-blocklist` puts up to 500 terminals' streams on each of its connections. Half of
# server.MAX_CONCURRENT_STREAMS, so the unary calls of that connection always find a free stream.
MAX_PER_CONNECTION = 1_000
# A change going to this many streams or more pauses the automatic garbage collections for
# FANOUT_PAUSE_S (collection_pause.py): the writes in flight would otherwise be walked again and again.
LARGE_FANOUT = 1_000
FANOUT_PAUSE_S = 1.0
WAKE_CHUNK = 256  # streams woken at once by a change; see _wake_in_chunks
STREAM_REPLACED = "STREAM_REPLACED"


def replaced() -> HubError:
    """How a replaced stream ends: the terminal opened another one, which now gets the changes.

    FAILED_PRECONDITION (the state, one stream per terminal, must change before a retry can help)
    rather than UNAVAILABLE or ABORTED, which clients retry: a client that sees it does not
    reconnect, so two clients of one terminal settle on the newer one instead of taking the
    stream from each other forever. A terminal that reconnected over a new connection never sees
    it: its old stream was on the dead connection.
    """
    return FailedPrecondition(
        "another WatchBlocklist stream of this terminal replaced this one; do not reconnect this one",
        reason=STREAM_REPLACED,
    )


class FeedWatch(Protocol):
    """Telemetry of the feed (telemetry/metrics.py), when metrics are on."""

    def feed_delivered(self, lag_s: float) -> None:
        """A live message was written to a stream `lag_s` seconds after its changes were durable."""

    def feed_dropped(self) -> None:
        """A subscriber fell behind and was dropped."""


@dataclass(frozen=True, slots=True)
class FeedMessage:
    """What a terminal applies: a snapshot (replace the whole list) or changes (in version order).

    `wire` is the message as it goes on the stream, encoded once (blocklist_wire.py): a live message
    is one object per school and committed batch, shared by every stream of the school."""

    snapshot: bool
    version: int  # the version the terminal holds once it applied this message
    card_nos: list[str] = field(default_factory=list)  # snapshot only
    changes: list[BlocklistChange] = field(default_factory=list)
    wire: bytes = field(default=b"", repr=False, compare=False)
    durable_at: float = field(default=0.0, repr=False, compare=False)  # perf_counter(); live ones

    @staticmethod
    def of_snapshot(snapshot: BlocklistSnapshot) -> FeedMessage:
        wire = encode_snapshot(snapshot.version, snapshot.card_nos)
        return FeedMessage(True, snapshot.version, card_nos=snapshot.card_nos, wire=wire)

    @staticmethod
    def of_changes(version: int, changes: list[BlocklistChange], durable_at: float = 0.0) -> FeedMessage:
        return FeedMessage(
            False, version, changes=changes, wire=encode_delta(version, changes), durable_at=durable_at
        )

    @staticmethod
    def merged(messages: list[FeedMessage]) -> FeedMessage:
        """Live messages waiting for one stream, oldest first, as one (their bytes concatenated)."""
        if len(messages) == 1:
            return messages[0]
        return FeedMessage(
            False,
            messages[-1].version,
            changes=[change for message in messages for change in message.changes],
            wire=joined([message.wire for message in messages]),
            durable_at=messages[0].durable_at,
        )


class Subscription:
    """One terminal's stream: its first message, then the live messages waiting for it (at most
    `max_queue`), sent as one message when several wait."""

    def __init__(
        self, feed: BlocklistFeed, school_id: str, terminal_id: str, connection: str, first: FeedMessage
    ) -> None:
        self._feed = feed
        self.school_id = school_id
        self.terminal_id = terminal_id
        self.connection = connection
        self.first: FeedMessage | None = first  # None once sent (a snapshot can be large)
        self.pending: list[FeedMessage] = []  # live messages not yet sent, oldest first
        self._wake: asyncio.Future[None] | None = None  # set while the consumer waits for one
        self.ended: HubError | None = None

    def offer(self, message: FeedMessage, *, wake: bool = True) -> bool:
        """Adds a live message; wakes the consumer unless `wake` is False. True when the consumer
        waits for a message (and was not woken)."""
        if self.ended is not None:
            return False
        if len(self.pending) >= self._feed.max_queue:
            log.warning("blocklist stream of %s dropped: it fell behind", self.terminal_id)
            if self._feed.watch is not None:
                self._feed.watch.feed_dropped()
            self.end(
                Overloaded(
                    "the terminal fell behind the blocklist stream; reconnect with the version it holds"
                )
            )
            return False
        self.pending.append(message)
        if not wake:
            return self._wake is not None
        self._wake_up()
        return False

    def _wake_up(self) -> None:
        wake, self._wake = self._wake, None
        if wake is not None and not wake.done():
            wake.set_result(None)

    def end(self, error: HubError) -> None:
        """Ends the stream with `error`; the consumer sees it at its next message.

        The waiting messages are let go now: the consumer may be stuck sending to a peer that
        stopped reading, and must not hold up to `max_queue` messages until its connection dies.
        """
        if self.ended is None:
            self.ended = error
            self._feed.unsubscribe(self)
        self.first = None
        self.pending.clear()
        self._wake_up()

    async def messages(self) -> AsyncGenerator[FeedMessage, None]:
        """The first message, then live ones until the stream ends (the error is raised)."""
        try:
            first, self.first = self.first, None
            if first is not None:  # None: ended before it was sent
                yield first
            while True:
                if self.ended is not None:
                    raise self.ended
                pending = self.pending
                if not pending:
                    self._wake = asyncio.get_running_loop().create_future()
                    await self._wake
                    continue
                message = FeedMessage.merged(pending)
                pending.clear()  # the same list again: nothing new per message
                yield message
                watch = self._feed.watch  # resumed once gRPC wrote the message
                if watch is not None:
                    watch.feed_delivered(perf_counter() - message.durable_at)
        finally:
            self._wake = None
            self._feed.unsubscribe(self)


def _wake_in_chunks(waiting: list[Subscription], start: int) -> None:
    """Wakes WAKE_CHUNK streams, and the next ones once the event loop has run those: the loop
    polls between chunks, so gRPC's completed writes are let go as the fan-out goes (not thousands
    of writes in flight at once) and other calls are served in between."""
    for subscription in waiting[start : start + WAKE_CHUNK]:
        subscription._wake_up()
    if start + WAKE_CHUNK < len(waiting):
        asyncio.get_running_loop().call_soon(_wake_in_chunks, waiting, start + WAKE_CHUNK)


class BlocklistFeed:
    """Subscribers per school, one per terminal; a listener of the journal writer."""

    def __init__(
        self,
        campus: Campus,
        *,
        max_queue: int = MAX_QUEUE,
        max_subscribers: int = MAX_SUBSCRIBERS,
        max_per_school: int = MAX_PER_SCHOOL,
        max_per_connection: int = MAX_PER_CONNECTION,
    ) -> None:
        self.campus = campus
        self.max_queue = max_queue
        self.max_subscribers = max_subscribers
        self.max_per_school = max_per_school
        self.max_per_connection = max_per_connection
        self._by_terminal: dict[str, Subscription] = {}
        self._by_school: dict[str, dict[str, Subscription]] = {}  # school → terminal → its stream
        self._by_connection: dict[str, int] = {}  # peer → streams open on it
        # The last snapshot of each school: the terminals of a school that (re)connect together
        # (after a restart of the hub) get the same one, made and encoded once.
        self._snapshots: dict[str, FeedMessage] = {}
        self._closed = False
        self.collections = CollectionPause()
        self.watch: FeedWatch | None = None  # publish lag and drops (telemetry/); None when off

    @property
    def subscribers(self) -> int:
        return len(self._by_terminal)

    def of_school(self, school_id: str) -> int:
        return len(self._by_school.get(school_id, ()))

    def on_connection(self, connection: str) -> int:
        return self._by_connection.get(connection, 0)

    def subscribers_by_school(self) -> dict[str, int]:
        """Streams per school; safe from another thread (the metrics server's): the schools are
        copied in one step first."""
        return {school: len(streams) for school, streams in list(self._by_school.items())}

    def subscribe(
        self, school_id: str, terminal_id: str, since_version: int, connection: str = ""
    ) -> Subscription:
        """A new stream for a terminal of `school_id` holding `since_version` (0: none), over
        `connection` (the peer; "" counts against no connection bound). Replaces the terminal's
        stream if it has one."""
        if self._closed:
            raise Unavailable("the hub is stopping")
        old = self._by_terminal.get(terminal_id)
        self._check_bounds(school_id, connection, old)
        blocklist = self.campus.blocklist(school_id)
        delta = blocklist.delta_since(since_version)
        if delta is None:
            first = self._snapshots.get(school_id)
            if first is None or first.version != blocklist.durable_version:
                first = self._snapshots[school_id] = FeedMessage.of_snapshot(blocklist.snapshot())
        else:
            first = FeedMessage.of_changes(blocklist.durable_version, delta)
        if old is not None:
            log.info("blocklist stream of %s replaced by a new one", terminal_id)
            old.end(replaced())
        subscription = Subscription(self, school_id, terminal_id, connection, first)
        self._by_terminal[terminal_id] = subscription
        self._by_school.setdefault(school_id, {})[terminal_id] = subscription
        if connection:
            self._by_connection[connection] = self._by_connection.get(connection, 0) + 1
        return subscription

    def _check_bounds(self, school_id: str, connection: str, old: Subscription | None) -> None:
        """Refuses a new stream over a bound; the place of `old`, the stream it replaces, is its own."""
        on_hub = self.subscribers - (old is not None)
        in_school = self.of_school(school_id) - (old is not None and old.school_id == school_id)
        on_connection = self.on_connection(connection) - (old is not None and old.connection == connection)
        if on_hub >= self.max_subscribers:
            raise Overloaded("too many blocklist subscribers on the hub", metadata={"bound": "hub"})
        if in_school >= self.max_per_school:
            raise Overloaded("too many blocklist streams for this school", metadata={"bound": "school"})
        if connection and on_connection >= self.max_per_connection:
            raise Overloaded(
                "too many blocklist streams on this connection", metadata={"bound": "connection"}
            )

    def unsubscribe(self, subscription: Subscription) -> None:
        terminal_id = subscription.terminal_id
        if self._by_terminal.get(terminal_id) is not subscription:
            return  # gone already, or replaced
        del self._by_terminal[terminal_id]
        school = self._by_school[subscription.school_id]
        del school[terminal_id]
        if not school:
            del self._by_school[subscription.school_id]
        connection = subscription.connection
        if connection:
            left = self._by_connection[connection] - 1
            if left:
                self._by_connection[connection] = left
            else:
                del self._by_connection[connection]

    def committed(self, batch: Batch) -> None:
        """The writer made `batch` durable: its blocklist changes are now the terminals' to see."""
        if not batch.blocklist:
            return
        durable_at = perf_counter()
        by_school: dict[str, list[BlocklistChange]] = {}
        for change in batch.blocklist:
            self.campus.blocklist(change.school_id).mark_durable(change.version)
            by_school.setdefault(change.school_id, []).append(change)
        if sum(len(self._by_school.get(school_id, ())) for school_id in by_school) >= LARGE_FANOUT:
            self.collections.pause(FANOUT_PAUSE_S)
        for school_id, changes in by_school.items():
            changes.sort(key=lambda c: c.version)
            streams = self._by_school.get(school_id)
            if streams:  # encoded once; every stream of the school sends the same bytes
                message = FeedMessage.of_changes(changes[-1].version, changes, durable_at)
                waiting = [s for s in list(streams.values()) if s.offer(message, wake=False)]
                _wake_in_chunks(waiting, 0)

    def close(self) -> None:
        """Ends every stream with UNAVAILABLE (the hub is stopping); refuses new ones."""
        self._closed = True
        self.collections.resume()
        for subscription in list(self._by_terminal.values()):
            subscription.end(Unavailable("the hub is stopping; reconnect with the version you hold"))
