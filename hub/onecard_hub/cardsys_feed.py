"""The hub's feed from the provincial card system (`onecard-hub serve --cardsys HOST:PORT`).

One background task holds one `CardSystemService.WatchChanges` stream, subscribed with the last
version the hub applied (persisted with each change: `cardsys_changes`, read back at start). Each
page of changes is applied and made durable (`cardsys_changes.py`) before the next is read, so
after any failure the feed resumes from what is durable: nothing missed, nothing applied twice.

After any stream error — the system unreachable, the stream dropped, no message for
`idle_timeout_s` (the system sends a heartbeat every few seconds), the hub's journal overloaded —
it reconnects after a backoff that doubles from `initial_s` up to `max_s`, with jitter (half the
delay fixed, half random), and starts again from `initial_s` once a stream delivered something.
Taps never wait for it: applying a page is a few dictionary updates and one group commit.

Health: `health` says whether the stream is connected, the version applied, the system's head
version and the lag between them; connecting, catching up and every reconnect are logged, and
`on_connected` (the server sets the gRPC health status `onecard.hub.CardsysFeed` with it) hears
each change of `connected`.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import grpc
from grpc_health.v1 import health as grpc_health
from grpc_health.v1 import health_pb2

from onecard.cardsys.v1 import card_system_service_pb2 as pb
from onecard.cardsys.v1 import card_system_service_pb2_grpc as pb_grpc
from onecard_hub.cardsys_changes import CardsysChanges
from onecard_hub.domain.cardsys import FeedChange
from onecard_hub.domain.errors import HubError
from onecard_hub.hub import Hub
from onecard_hub.stopping import cancelled

log = logging.getLogger(__name__)

HEALTH_NAME = "onecard.hub.CardsysFeed"


@dataclass(frozen=True)
class FeedTiming:
    initial_s: float = 0.2  # first reconnect delay
    max_s: float = 10.0  # the cap
    idle_timeout_s: float = 30.0  # no message for this long: the stream is dead


@dataclass
class FeedHealth:
    target: str
    connected: bool = False
    applied_version: int = 0
    head_version: int = 0
    connects: int = 0  # streams opened that delivered something
    failures: int = 0  # streams that ended in an error
    last_error: str = ""

    @property
    def lag(self) -> int:
        """Changes the provincial system has that the hub has not applied (as of the last message)."""
        return max(0, self.head_version - self.applied_version)


def feed_change(change: pb.Change) -> FeedChange:
    return FeedChange(
        version=change.version,
        card_no=change.card_no,
        function=pb.CardFunction.Name(change.function).removeprefix("CARD_FUNCTION_").lower(),
        action=pb.ChangeAction.Name(change.action).removeprefix("CHANGE_ACTION_").lower(),
        channel=pb.Channel.Name(change.channel).removeprefix("CHANNEL_").lower(),
        occurred_ms=change.occurred_at.ToMilliseconds(),
    )


class CardsysFeed:
    def __init__(
        self,
        changes: CardsysChanges,
        target: str,
        *,
        timing: FeedTiming = FeedTiming(),
        on_connected: Callable[[bool], Awaitable[None]] | None = None,
        rng: random.Random | None = None,
    ) -> None:
        self.changes = changes
        self.timing = timing
        self.health = FeedHealth(target, applied_version=changes.version)
        self._on_connected = on_connected
        self._rng = rng or random.Random()
        self._channel: grpc.aio.Channel | None = None
        self._stub: Any = None
        self._task: asyncio.Task[None] | None = None
        self._delivered = False  # the current stream delivered a message
        self._catching_up = False  # it connected behind the head and has not caught up yet
        self._advanced = asyncio.Condition()  # notified when applied_version moves

    def start(self) -> None:
        # grpc's own reconnect backoff (1 s growing to 120 s) would sit under ours: keep it short,
        # and keep this channel's connection to itself (no sharing with other channels in-process).
        options = [
            ("grpc.initial_reconnect_backoff_ms", int(self.timing.initial_s * 1000)),
            ("grpc.min_reconnect_backoff_ms", int(self.timing.initial_s * 1000)),
            ("grpc.max_reconnect_backoff_ms", int(self.timing.max_s * 1000)),
            ("grpc.use_local_subchannel_pool", 1),
        ]
        self._channel = grpc.aio.insecure_channel(self.health.target, options=options)
        self._stub = pb_grpc.CardSystemServiceStub(self._channel)
        self._task = asyncio.get_running_loop().create_task(self._run(), name="cardsys-feed")
        log.info("cardsys feed: following %s from version %d", self.health.target, self.changes.version)

    async def stop(self) -> None:
        task, self._task = self._task, None
        await cancelled(task)
        if self._channel is not None:
            await self._channel.close()
            self._channel = None
        await self._set_connected(False)

    async def wait_applied(self, version: int) -> None:
        """Returns once the changes up to `version` are applied and durable (tests, scenarios)."""
        async with self._advanced:
            await self._advanced.wait_for(lambda: self.health.applied_version >= version)

    def delay(self, attempt: int) -> float:
        """The wait before reconnect number `attempt` (0, 1, …): doubling, capped, half of it random."""
        cap = min(self.timing.max_s, self.timing.initial_s * 2 ** min(attempt, 30))
        return cap / 2 + self._rng.uniform(0, cap / 2)

    async def _run(self) -> None:
        attempt = 0
        while True:
            try:
                await self._follow()
                error = "the stream ended"
            except grpc.aio.AioRpcError as exc:
                error = f"{exc.code().name}: {exc.details()}"
            except TimeoutError:
                error = f"no message for {self.timing.idle_timeout_s:.0f} s"
            except HubError as exc:  # the journal is overloaded or failed: try again later
                error = f"the hub could not apply a change: {exc.message}"
            except Exception:
                log.exception("cardsys feed: unexpected error")
                error = "unexpected error (see the log)"
            await self._set_connected(False)
            self.health.failures += 1
            self.health.last_error = error
            if self._delivered:
                attempt = 0
            wait = self.delay(attempt)
            attempt += 1
            log.warning(
                "cardsys feed: %s; reconnecting in %.1f s from version %d (lag %d)",
                error,
                wait,
                self.changes.version,
                self.health.lag,
            )
            await asyncio.sleep(wait)

    async def _follow(self) -> None:
        """Follows one stream until it fails or ends."""
        self._delivered = False
        call = self._stub.WatchChanges(pb.WatchChangesRequest(since_version=self.changes.version))
        try:
            while True:
                message = await asyncio.wait_for(call.read(), self.timing.idle_timeout_s)
                if message is grpc.aio.EOF:
                    return
                await self._receive(message)
        finally:
            call.cancel()

    async def _receive(self, message: pb.WatchChangesResponse) -> None:
        health = self.health
        health.head_version = max(health.head_version, message.head_version)
        if not self._delivered:
            self._delivered = True
            health.connects += 1
            self._catching_up = health.lag > 0
            await self._set_connected(True)
            log.info(
                "cardsys feed: connected to %s at version %d, head %d (lag %d)",
                health.target,
                self.changes.version,
                health.head_version,
                health.lag,
            )
        if message.changes:
            await self.changes.apply([feed_change(c) for c in message.changes])
            health.applied_version = self.changes.version
            async with self._advanced:
                self._advanced.notify_all()
            if self._catching_up and not health.lag:
                self._catching_up = False
                log.info("cardsys feed: caught up at version %d", health.applied_version)
            log.debug("cardsys feed: applied up to version %d (lag %d)", health.applied_version, health.lag)

    async def _set_connected(self, connected: bool) -> None:
        if self.health.connected == connected:
            return
        self.health.connected = connected
        if self._on_connected is not None:
            await self._on_connected(connected)


async def start_cardsys_feed(
    hub: Hub, target: str, health: grpc_health.aio.HealthServicer | None = None
) -> CardsysFeed:
    """Starts following `target`; the gRPC health status HEALTH_NAME says whether it is connected."""

    async def report(connected: bool) -> None:
        if health is not None:
            status = (
                health_pb2.HealthCheckResponse.SERVING
                if connected
                else health_pb2.HealthCheckResponse.NOT_SERVING
            )
            await health.set(HEALTH_NAME, status)

    await report(False)
    feed = CardsysFeed(CardsysChanges(hub), target, on_connected=report)
    feed.start()
    return feed
