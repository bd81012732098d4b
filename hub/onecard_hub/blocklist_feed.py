"""The live blocklist feed behind TerminalService.WatchBlocklist.

A terminal subscribes with the blocklist version it holds. It first gets one message: a full
snapshot (version 0, too far behind, or a version this hub never issued) or the delta since its
version (possibly empty: it is up to date). Then every change of its school, live, as the
writer commits it — the feed is a listener of the journal writer (`JournalWriter.listeners`), so
nothing reaches a terminal before it is durable. Subscribing reads the durable state and
registers the subscriber in one step with no await between, so no change falls between the
first message and the live ones, and none comes twice.

Each subscriber has a bounded queue (`max_queue` messages, one per committed batch that changed
its school's list). A subscriber that falls that far behind is dropped with RESOURCE_EXHAUSTED
(it reconnects with the version it holds and gets a delta or a snapshot); memory never grows
without bound. `close()` (the server stopping) ends every stream with UNAVAILABLE, at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

from onecard_hub.domain.blocklist import BlocklistChange
from onecard_hub.domain.campus import Campus
from onecard_hub.domain.errors import HubError, Overloaded, Unavailable
from onecard_hub.store.records import Batch

log = logging.getLogger(__name__)

MAX_QUEUE = 256  # messages per subscriber
MAX_SUBSCRIBERS = 20_000


@dataclass(frozen=True, slots=True)
class FeedMessage:
    """What a terminal applies: a snapshot (replace the whole list) or changes (in version order)."""

    snapshot: bool
    version: int  # the version the terminal holds once it applied this message
    card_nos: list[str] = field(default_factory=list)  # snapshot only
    changes: list[BlocklistChange] = field(default_factory=list)


class Subscription:
    """One terminal's stream: its first message, then a bounded queue of live changes."""

    def __init__(self, feed: BlocklistFeed, school_id: str, terminal_id: str, first: FeedMessage) -> None:
        self._feed = feed
        self.school_id = school_id
        self.terminal_id = terminal_id
        self.first = first
        self.queue: asyncio.Queue[list[BlocklistChange] | None] = asyncio.Queue(feed.max_queue)
        self.ended: HubError | None = None

    def offer(self, changes: list[BlocklistChange]) -> None:
        if self.ended is not None:
            return
        try:
            self.queue.put_nowait(changes)
        except asyncio.QueueFull:
            log.warning("blocklist stream of %s dropped: it fell behind", self.terminal_id)
            self.end(
                Overloaded(
                    "the terminal fell behind the blocklist stream; reconnect with the version it holds"
                )
            )

    def end(self, error: HubError) -> None:
        """Ends the stream with `error`; the consumer sees it at its next message."""
        if self.ended is None:
            self.ended = error
            self._feed.unsubscribe(self)
        # Wakes a consumer waiting on an empty queue; one with a full queue is not waiting, and
        # reads `ended` before its next message.
        with contextlib.suppress(asyncio.QueueFull):
            self.queue.put_nowait(None)

    async def messages(self) -> AsyncIterator[FeedMessage]:
        """The first message, then live ones until the stream ends (the error is raised)."""
        try:
            yield self.first
            while True:
                changes = await self.queue.get()
                if self.ended is not None:
                    raise self.ended
                if changes is None:
                    continue
                yield FeedMessage(False, changes[-1].version, changes=changes)
        finally:
            self._feed.unsubscribe(self)


class BlocklistFeed:
    """Subscribers per school; a listener of the journal writer."""

    def __init__(self, campus: Campus, *, max_queue: int = MAX_QUEUE, max_subscribers: int = MAX_SUBSCRIBERS):
        self.campus = campus
        self.max_queue = max_queue
        self.max_subscribers = max_subscribers
        self._subscribers: dict[str, set[Subscription]] = {}
        self._count = 0
        self._closed = False

    @property
    def subscribers(self) -> int:
        return self._count

    def subscribe(self, school_id: str, terminal_id: str, since_version: int) -> Subscription:
        """A new stream for a terminal of `school_id` holding `since_version` (0: none)."""
        if self._closed:
            raise Unavailable("the hub is stopping")
        if self._count >= self.max_subscribers:
            raise Overloaded("too many blocklist subscribers")
        blocklist = self.campus.blocklist(school_id)
        delta = blocklist.delta_since(since_version)
        if delta is None:
            snap = blocklist.snapshot()
            first = FeedMessage(True, snap.version, card_nos=snap.card_nos)
        else:
            first = FeedMessage(False, blocklist.durable_version, changes=delta)
        subscription = Subscription(self, school_id, terminal_id, first)
        self._subscribers.setdefault(school_id, set()).add(subscription)
        self._count += 1
        return subscription

    def unsubscribe(self, subscription: Subscription) -> None:
        found = self._subscribers.get(subscription.school_id)
        if found is not None and subscription in found:
            found.discard(subscription)
            self._count -= 1

    def committed(self, batch: Batch) -> None:
        """The writer made `batch` durable: its blocklist changes are now the terminals' to see."""
        if not batch.blocklist:
            return
        by_school: dict[str, list[BlocklistChange]] = {}
        for change in batch.blocklist:
            self.campus.blocklist(change.school_id).mark_durable(change.version)
            by_school.setdefault(change.school_id, []).append(change)
        for school_id, changes in by_school.items():
            changes.sort(key=lambda c: c.version)
            for subscription in list(self._subscribers.get(school_id, ())):
                subscription.offer(changes)

    def close(self) -> None:
        """Ends every stream with UNAVAILABLE (the hub is stopping); refuses new ones."""
        self._closed = True
        for subscriptions in list(self._subscribers.values()):
            for subscription in list(subscriptions):
                subscription.end(Unavailable("the hub is stopping; reconnect with the version you hold"))
