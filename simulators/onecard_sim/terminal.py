"""What every simulated terminal does: connect through the SDK, fetch its configuration,
heartbeat, stamp taps with the hub's clock, and report each tap as a `TapEvent`.

`GateReader` (gate.py) and `CanteenPos` (pos.py) build on `SimTerminal`. A terminal talks to
the hub only through `onecard_client.TerminalClient`, as a vendor's device would: with mutual
TLS when `pki_dir` is given (its certificate `terminals/<id>.crt` from `onecard-hub pki`),
otherwise in plain text with the identity header.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import secrets
import time
from pathlib import Path

from onecard.auth.v1 import authorization_service_pb2 as auth_pb
from onecard.terminal.v1 import terminal_service_pb2 as term_pb
from onecard_client import ClientConfig, OneCardError, TerminalClient, TLSConfig
from onecard_client.campus import TerminalInfo
from onecard_client.hub_time import HubTime
from onecard_sim.events import APPROVED, EventSink, TapEvent

__all__ = ["SOFTWARE_VERSION", "SimTerminal", "client_config", "outcome_of"]

SOFTWARE_VERSION = "onecard-sim/0.3"
_HEARTBEAT_FLOOR_S = 0.5


def client_config(
    target: str, terminal_id: str, pki_dir: Path | None, deadline_s: float = 2.0
) -> ClientConfig:
    """The SDK configuration of one terminal: mutual TLS with its own certificate when `pki_dir` is set."""
    tls = TLSConfig.for_terminal(pki_dir, terminal_id) if pki_dir is not None else None
    return ClientConfig(target=target, deadline_s=deadline_s, tls=tls)


def outcome_of(response: auth_pb.AuthorizeResponse) -> str:
    """ "APPROVED" or the decline reason's name without its prefix ("INSUFFICIENT_FUNDS")."""
    if response.decision == auth_pb.DECISION_APPROVED:
        return APPROVED
    return auth_pb.DeclineReason.Name(response.decline_reason).removeprefix("DECLINE_REASON_")


def error_outcome(error: OneCardError) -> str:
    return f"ERROR_{error.code.name}"


class SimTerminal:
    """One simulated terminal: an SDK client, its downloaded configuration, a heartbeat."""

    def __init__(
        self,
        info: TerminalInfo,
        *,
        target: str,
        sink: EventSink,
        pki_dir: Path | None = None,
        deadline_s: float = 2.0,
        software_version: str = SOFTWARE_VERSION,
        heartbeat: bool = True,
    ) -> None:
        self.info = info
        self.terminal_id = info.terminal_id
        self.sink = sink
        self.software_version = software_version
        self.client = TerminalClient(
            info.terminal_id, client_config(target, info.terminal_id, pki_dir, deadline_s)
        )
        self.config: term_pb.GetConfigResponse | None = None
        self.hub_time = HubTime.from_clock(int(time.time() * 1000))
        self.heartbeats = 0
        self._heartbeat_enabled = heartbeat
        self._heartbeat_task: asyncio.Task[None] | None = None
        self._run_tag = secrets.token_hex(4)  # request ids of two runs against one hub never collide
        self._ids = itertools.count(1)

    # -- life cycle ------------------------------------------------------------------------------

    async def start(self) -> None:
        """Downloads the configuration (and the hub's clock) and starts heartbeating."""
        await self.refresh_config()
        if self._heartbeat_enabled and self._heartbeat_task is None:
            self._heartbeat_task = asyncio.create_task(
                self._heartbeat_loop(), name=f"heartbeat {self.terminal_id}"
            )

    async def stop(self) -> None:
        if self._heartbeat_task is not None:
            self._heartbeat_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._heartbeat_task
            self._heartbeat_task = None
        await self.client.close()

    async def refresh_config(self) -> term_pb.GetConfigResponse:
        config = await self.client.get_config()
        self.config = config
        self.hub_time = HubTime.from_clock(config.clock.now.ToMilliseconds(), config.clock.speed or 1.0)
        self.on_config(config)
        return config

    def on_config(self, config: term_pb.GetConfigResponse) -> None:
        """Hook for subclasses: a new configuration arrived."""

    def offline_pending(self) -> int:
        """Offline transactions stored and not yet uploaded (the POS overrides it)."""
        return 0

    async def heartbeat(self) -> term_pb.HeartbeatResponse:
        """One heartbeat; fetches the configuration again when the hub says it changed."""
        response = await self.client.heartbeat(self.software_version, self.offline_pending())
        self.heartbeats += 1
        config = self.config
        if config is not None and (
            response.config_version != config.config_version
            or response.blocklist_version != config.blocklist_version
        ):
            await self.refresh_config()
        return response

    async def _heartbeat_loop(self) -> None:
        while True:
            interval = self.config.heartbeat_interval_s if self.config else 0
            await asyncio.sleep(max(_HEARTBEAT_FLOOR_S, float(interval or 30)))
            with contextlib.suppress(OneCardError):
                await self.heartbeat()

    # -- taps ------------------------------------------------------------------------------------

    def new_request_id(self) -> str:
        return f"sim-{self._run_tag}-{next(self._ids)}"

    def now_ms(self) -> int:
        """The hub's time as this terminal knows it (synced at each configuration download)."""
        return self.hub_time.now_ms()

    async def send(
        self, request: auth_pb.AuthorizeRequest, scene: str, card_no: str, scheduled_at: float | None
    ) -> tuple[auth_pb.AuthorizeResponse | None, TapEvent]:
        """Sends one Authorize and emits its TapEvent (latency from `scheduled_at` when given)."""
        sent = time.monotonic() if scheduled_at is None else scheduled_at
        response: auth_pb.AuthorizeResponse | None
        try:
            response = await self.client.authorize(request)
        except OneCardError as error:
            response, outcome = None, error_outcome(error)
        else:
            outcome = outcome_of(response)
        done = time.monotonic()
        event = TapEvent(
            scene=scene,
            outcome=outcome,
            latency_ms=(done - sent) * 1000,
            hub_ms=request.tap_time.ToMilliseconds(),
            real_s=done,
            card_no=card_no,
            terminal_id=self.terminal_id,
            request_id=request.request_id,
        )
        self.sink.tap(event)
        return response, event
