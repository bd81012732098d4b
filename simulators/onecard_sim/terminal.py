"""What every simulated terminal does: connect through the SDK, fetch its configuration,
heartbeat, keep its blocklist live (`blocklist_watch.py`), stamp taps with the hub's clock, and
report each tap as a `TapEvent`.

`GateReader` (gate.py), `CanteenPos` (pos.py), `LibraryDesk` (library_desk.py) and `ExamTablet`
(exam_tablet.py) build on `SimTerminal`. A terminal talks to the hub only through
`onecard_client.TerminalClient`, as a vendor's device would: with mutual TLS when `pki_dir` is
given (its certificate `terminals/<id>.crt` from `onecard-hub pki`), otherwise in plain text with
the identity header.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import itertools
import secrets
import time
from collections.abc import Awaitable
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol, TypeVar

import grpc

from onecard.auth.v1 import authorization_service_pb2 as auth_pb
from onecard.terminal.v1 import terminal_service_pb2 as term_pb
from onecard_client import ClientConfig, OneCardError, TerminalClient, TLSConfig
from onecard_client.blocklist import BlocklistCopy
from onecard_client.campus import TerminalInfo
from onecard_client.hub_time import HubTime
from onecard_client.taps import chip_tap
from onecard_client.tracing import tap_span
from onecard_sim.blocklist_watch import BlocklistWatch
from onecard_sim.events import APPROVED, EventSink, TapEvent, UploadEvent
from onecard_sim.offline import MAX_BATCH, OfflineBook, OfflineRules
from onecard_sim.population import ECardApp, SimStudent

__all__ = ["SOFTWARE_VERSION", "SimTerminal", "TapResult", "client_config", "outcome_of"]

SOFTWARE_VERSION = "onecard-sim/0.3"
_HEARTBEAT_FLOOR_S = 0.5
_PROBE_INTERVAL_S = 2.0  # how often a terminal that lost the hub looks for it


@dataclass(frozen=True, slots=True)
class TapResult:
    """What a device reported for one tap, and the hub's answer (None offline or on an error)."""

    event: TapEvent
    response: auth_pb.AuthorizeResponse | None

    @property
    def outcome(self) -> str:
        return self.event.outcome


def client_config(
    target: str, terminal_id: str, pki_dir: Path | None, deadline_s: float = 2.0
) -> ClientConfig:
    """The SDK configuration of one terminal: mutual TLS with its own certificate when `pki_dir` is set."""
    tls = TLSConfig.for_terminal(pki_dir, terminal_id) if pki_dir is not None else None
    return ClientConfig(target=target, deadline_s=deadline_s, tls=tls)


class Decided(Protocol):
    """An answer to a tap: Authorize's, or a library or exam call's (same Decision, DeclineReason)."""

    @property
    def decision(self) -> int: ...

    @property
    def decline_reason(self) -> int: ...


R = TypeVar("R", bound=Decided)


def outcome_of(response: Decided) -> str:
    """ "APPROVED" or the decline reason's name without its prefix ("INSUFFICIENT_FUNDS")."""
    if response.decision == auth_pb.DECISION_APPROVED:
        return APPROVED
    reason = auth_pb.DeclineReason.Name(response.decline_reason)  # type: ignore[arg-type]
    return reason.removeprefix("DECLINE_REASON_")


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
        first_serial: int = 1,
        auto_offline: bool = False,
        watch_blocklist: bool = True,
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
        self.offline = False  # True: decides on local rules and stores (go_offline / go_online)
        self.auto_offline = auto_offline  # go offline by itself when the hub cannot be reached
        self.lost_hub = False  # offline because the hub was unreachable (heartbeats probe for it)
        self.book = OfflineBook(first_serial)
        self.upload_errors = 0
        self._upload_lock = asyncio.Lock()
        # The school's blocklist, kept live by TerminalService.WatchBlocklist (the offline rules use
        # it); without the stream, the heartbeat's blocklist_version triggers a configuration fetch.
        self.watch = BlocklistWatch(self.client, self._blocklist_changed) if watch_blocklist else None

    # -- life cycle ------------------------------------------------------------------------------

    async def start(self) -> None:
        """Downloads the configuration (and the hub's clock) and starts heartbeating.

        A hub that does not offer GetConfig (UNIMPLEMENTED: older than issue 3) still gives its
        clock; such a terminal has no local rules, so offline it refuses everything.
        """
        try:
            await self.refresh_config()
        except OneCardError as error:
            if error.code != grpc.StatusCode.UNIMPLEMENTED:
                raise
            self.hub_time = await self.client.hub_time()
        if self._heartbeat_enabled and self._heartbeat_task is None:
            self._heartbeat_task = asyncio.create_task(
                self._heartbeat_loop(), name=f"heartbeat {self.terminal_id}"
            )
        if self.watch is not None:
            self.watch.start(f"blocklist {self.terminal_id}")

    async def stop(self) -> None:
        if self.watch is not None:
            await self.watch.stop()
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
        self.book.rules = OfflineRules.from_config(config)
        if self.watch is not None and self.watch.copy.version >= config.blocklist_version:
            self._blocklist_changed(self.watch.copy)  # the stream is as new or newer
        return config

    def _blocklist_version_held(self, config: term_pb.GetConfigResponse) -> int:
        """The stream's version while it runs (a new version needs no configuration fetch), else the
        configuration's."""
        return (
            self.watch.copy.version
            if self.watch is not None and self.watch.running
            else config.blocklist_version
        )

    def _blocklist_changed(self, copy: BlocklistCopy) -> None:
        """The offline rules refuse what the live copy blocks."""
        rules = self.book.rules
        if rules is not None and copy.version != rules.blocklist_version:
            self.book.rules = dataclasses.replace(
                rules, blocked=frozenset(copy.card_nos), blocklist_version=copy.version
            )

    def offline_pending(self) -> int:
        """Offline transactions stored and not yet uploaded."""
        return len(self.book.stored)

    async def heartbeat(self) -> term_pb.HeartbeatResponse:
        """One heartbeat; fetches the configuration again when the hub says it changed."""
        response = await self.client.heartbeat(self.software_version, self.offline_pending())
        self.heartbeats += 1
        config = self.config
        if config is not None and (
            response.config_version != config.config_version
            or response.blocklist_version != self._blocklist_version_held(config)
        ):
            await self.refresh_config()
        return response

    async def _heartbeat_loop(self) -> None:
        while True:
            interval = float(self.config.heartbeat_interval_s if self.config else 0) or 30.0
            if self.lost_hub:
                interval = min(interval, _PROBE_INTERVAL_S)
            await asyncio.sleep(max(_HEARTBEAT_FLOOR_S, interval))
            if self.offline:
                if self.lost_hub:  # went offline on its own: see whether the hub is back
                    await self.probe()
                continue  # sent offline on purpose: stays so until go_online()
            with contextlib.suppress(OneCardError):
                await self.heartbeat()
                if self.book.stored:  # an earlier upload failed: try again
                    await self.upload_stored()

    # -- offline mode ----------------------------------------------------------------------------

    def go_offline(self) -> None:
        """From now on taps are decided on local rules and stored (see offline.py)."""
        self.offline = True
        self.lost_hub = False

    def hub_unreachable(self) -> bool:
        """Called when a call found no hub (UNAVAILABLE after the SDK's retries). With
        `auto_offline` the terminal goes offline on its own; True when it did."""
        if not self.auto_offline or self.offline:
            return False
        self.offline = True
        self.lost_hub = True
        return True

    async def probe(self) -> list[UploadEvent]:
        """A terminal that went offline on its own tries a heartbeat; if the hub answers, it goes
        back online and uploads what it stored."""
        try:
            await self.heartbeat()
        except OneCardError:
            return []
        return await self.go_online()

    async def go_online(self, batch_size: int = MAX_BATCH) -> list[UploadEvent]:
        """Back to the hub: fetch the configuration again, then upload what was stored.

        A batch the hub does not answer stays stored (counted in `upload_errors`) and is tried
        again at the next heartbeat or `go_online`.
        """
        self.offline = False
        self.lost_hub = False
        with contextlib.suppress(OneCardError):
            await self.refresh_config()
        return await self.upload_stored(batch_size)

    async def upload_stored(self, batch_size: int = MAX_BATCH) -> list[UploadEvent]:
        """Uploads the stored transactions in batches of at most `batch_size`, oldest first."""
        events: list[UploadEvent] = []
        async with self._upload_lock:
            for batch in self.book.pending_batches(batch_size):
                try:
                    response = await self.client.upload_offline_batch(self.new_request_id(), batch)
                except OneCardError:
                    self.upload_errors += 1
                    break
                self.book.mark_uploaded(batch)
                events.append(self._upload_event(batch, response, reupload=False))
        return events

    async def reupload_all(self) -> list[UploadEvent]:
        """Sends every batch already uploaded once more, each with a NEW request_id.

        The hub deduplicates by (terminal, serial), so each answer should count every
        transaction as a duplicate and move no money (DESIGN §9).
        """
        events: list[UploadEvent] = []
        async with self._upload_lock:
            for batch in list(self.book.uploaded):
                try:
                    response = await self.client.upload_offline_batch(self.new_request_id(), batch)
                except OneCardError:
                    self.upload_errors += 1
                    continue
                events.append(self._upload_event(batch, response, reupload=True))
        return events

    def _upload_event(
        self,
        batch: list[auth_pb.OfflineTransaction],
        response: auth_pb.UploadOfflineBatchResponse,
        *,
        reupload: bool,
    ) -> UploadEvent:
        event = UploadEvent(
            terminal_id=self.terminal_id,
            transactions=len(batch),
            booked=response.booked,
            duplicates=response.duplicates,
            rejected=response.rejected,
            reupload=reupload,
        )
        self.sink.upload(event)
        return event

    def emit_offline(self, scene: str, outcome: str, card_no: str, hub_ms: int) -> TapEvent:
        """Reports a tap decided on local rules (OFFLINE_APPROVED / OFFLINE_REFUSED)."""
        event = TapEvent(
            scene=scene,
            outcome=outcome,
            latency_ms=0.0,
            hub_ms=hub_ms,
            real_s=time.monotonic(),
            card_no=card_no,
            terminal_id=self.terminal_id,
            offline=True,
        )
        self.sink.tap(event)
        return event

    # -- taps ------------------------------------------------------------------------------------

    def new_request_id(self) -> str:
        return f"sim-{self._run_tag}-{next(self._ids)}"

    def now_ms(self) -> int:
        """The hub's time as this terminal knows it (synced at each configuration download)."""
        return self.hub_time.now_ms()

    async def show_code(
        self, ecard: ECardApp, student: SimStudent, scheduled_at: float | None
    ) -> tuple[str, float | None]:
        """The student's app fetches a QR code. That call is the phone's, not the terminal's, so
        its time is left out of the tap's latency: the returned schedule moves by as long as it took."""
        started = time.monotonic()
        text = await ecard.qr_code(student, self.now_ms())
        return text, None if scheduled_at is None else scheduled_at + (time.monotonic() - started)

    async def present(
        self,
        student: SimStudent,
        scene: int,
        *,
        qr_text: str | None,
        tap_time_ms: int,
        amount_fen: int = 0,
        pin: str = "",
    ) -> auth_pb.AuthorizeRequest:
        """The Authorize request for a QR code shown (`qr_text`) or, when None, a chip tap."""
        if qr_text is None:
            return chip_tap(
                student.card,
                request_id=self.new_request_id(),
                terminal_id=self.terminal_id,
                scene=scene,
                atc=student.next_atc(),
                tap_time_ms=tap_time_ms,
                amount_fen=amount_fen,
                pin=pin,
            )
        request = auth_pb.AuthorizeRequest(
            request_id=self.new_request_id(),
            terminal_id=self.terminal_id,
            scene=scene,  # type: ignore[arg-type]
            amount_fen=amount_fen,
            pin=pin,
            qr=auth_pb.QrScan(token=qr_text),
        )
        request.tap_time.FromMilliseconds(tap_time_ms)
        return request

    def store_offline(
        self, student: SimStudent, scene: int, *, qr_text: str | None, occurred_ms: int, amount_fen: int = 0
    ) -> bool:
        """Decides a tap on local rules; an approved one is stored under the next serial."""
        if self.book.check(student.card_no, amount_fen, occurred_ms, qr_text) is not None:
            return False
        chip = None
        if qr_text is None:  # the chip signs the transaction with tap_time = occurred_at
            chip = chip_tap(
                student.card,
                request_id="offline",
                terminal_id=self.terminal_id,
                scene=scene,
                atc=student.next_atc(),
                tap_time_ms=occurred_ms,
                amount_fen=amount_fen,
            ).chip
        self.book.record(
            scene=scene,
            card_no=student.card_no,
            amount_fen=amount_fen,
            occurred_ms=occurred_ms,
            chip=chip,
            qr_text=qr_text,
        )
        return True

    async def send(
        self, request: auth_pb.AuthorizeRequest, scene: str, card_no: str, scheduled_at: float | None
    ) -> tuple[auth_pb.AuthorizeResponse | None, TapEvent]:
        """Sends one Authorize and emits its TapEvent.

        Latency runs from `scheduled_at` when given (open loop, DESIGN §7: the time an arrival
        waited for a free slot counts), otherwise from now.
        """
        return await self.call(
            self.client.authorize(request),
            scene=scene,
            card_no=card_no,
            request_id=request.request_id,
            tap_time_ms=request.tap_time.ToMilliseconds(),
            scheduled_at=scheduled_at,
        )

    async def call(
        self,
        answer: Awaitable[R],
        *,
        scene: str,
        card_no: str,
        request_id: str,
        tap_time_ms: int,
        scheduled_at: float | None,
    ) -> tuple[R | None, TapEvent]:
        """Awaits one tap's call (Authorize, a library Borrow/Return, an exam CheckIn: any answer
        with `decision` and `decline_reason`) and emits its TapEvent; see `send` for the latency."""
        started = time.monotonic()
        sent = started if scheduled_at is None else scheduled_at
        response: R | None
        # The tap's span (a no-op without an OpenTelemetry SDK set up: `onecard-sim … --trace-file`);
        # the SDK carries it to the hub, whose spans of the call join this trace.
        with tap_span(f"tap {scene}", {"onecard.scene": scene}) as span:
            try:
                response = await answer
            except OneCardError as error:
                response, outcome = None, error_outcome(error)
            else:
                outcome = outcome_of(response)
            span.set_attribute("onecard.outcome", outcome)
        done = time.monotonic()
        event = TapEvent(
            scene=scene,
            outcome=outcome,
            latency_ms=(done - sent) * 1000,
            hub_ms=tap_time_ms,
            real_s=done,
            card_no=card_no,
            terminal_id=self.terminal_id,
            request_id=request_id,
            sent_s=started,
        )
        self.sink.tap(event)
        return response, event
