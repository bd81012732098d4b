"""TerminalService: the hub's clock, a terminal's configuration, its heartbeat and its live blocklist."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from typing import Any, cast

import grpc

from onecard.terminal.v1 import terminal_service_pb2 as pb
from onecard.terminal.v1 import terminal_service_pb2_grpc as pb_grpc
from onecard_hub import fleet
from onecard_hub.api import convert
from onecard_hub.api.identity import Identity
from onecard_hub.domain.clock import TIME_ZONE, Clock, SimulatedClock
from onecard_hub.domain.errors import InvalidArgument
from onecard_hub.domain.terminal_config import TerminalConfig
from onecard_hub.hub import Hub

MAX_SOFTWARE_VERSION = 64
MAX_OFFLINE_PENDING = 1_000_000


def _window(start_min: int, end_min: int) -> pb.TimeWindow:
    return pb.TimeWindow(start_minute=start_min, end_minute=end_min)


def config_message(config: TerminalConfig, clock: pb.GetClockResponse) -> pb.GetConfigResponse:
    terminal, policy = config.terminal, config.policy
    response = pb.GetConfigResponse(
        terminal_id=terminal.terminal_id,
        school_id=terminal.school_id,
        kind=int(terminal.kind),
        location=terminal.location,
        gate_group=terminal.gate_group,
        merchant_id=terminal.merchant_id,
        clock=clock,
        pin_free_limit_fen=policy.pin_free_limit_fen,
        daily_limit_fen=policy.daily_limit_fen,
        pin_max_failures=policy.pin_max_failures,
        meal_windows=[
            pb.MealWindow(
                name=m.name, window=_window(m.window.start_min, m.window.end_min), max_payments=m.max_payments
            )
            for m in policy.meal_windows
        ],
        offline=pb.OfflineLimits(
            per_payment_fen=policy.offline_per_payment_fen,
            per_card_day_fen=policy.offline_per_card_day_fen,
            max_stored=policy.offline_max_stored,
        ),
        blocklist_version=config.blocklist_version,
        blocked_card_nos=config.blocked_card_nos,
        ecard_public_key=config.ecard_public_key,
        config_version=config.config_version,
        heartbeat_interval_s=config.heartbeat_interval_s,
    )
    group = config.gate_group
    if group is not None:
        response.anti_passback = pb.AntiPassbackMode.Value(f"ANTI_PASSBACK_MODE_{group.anti_passback.name}")
        response.gate_windows.extend(
            pb.GateWindows(
                student_group=student_group.value,
                windows=[_window(w.start_min, w.end_min) for w in windows],
            )
            for student_group, windows in sorted(group.windows.items())
        )
    return response


class TerminalServicer(pb_grpc.TerminalServiceServicer):
    def __init__(self, hub: Hub, clock: Clock, identity: Identity) -> None:
        self._hub = hub
        self._clock = clock
        self._identity = identity

    def _clock_message(self) -> pb.GetClockResponse:
        response = pb.GetClockResponse(time_zone=TIME_ZONE, speed=1.0)
        response.now.FromMilliseconds(self._clock.now_ms())
        clock = self._clock
        if isinstance(clock, SimulatedClock):
            response.simulated = True
            response.speed = clock.speed
            response.simulated_start.FromMilliseconds(clock.start_ms)
            response.real_start.FromMilliseconds(clock.real_start_ms)
        return response

    async def GetClock(
        self, request: pb.GetClockRequest, context: grpc.aio.ServicerContext
    ) -> pb.GetClockResponse:
        terminal = self._identity.terminal(context)
        convert.same_terminal(request.terminal_id, terminal)
        return self._clock_message()

    async def GetConfig(
        self, request: pb.GetConfigRequest, context: grpc.aio.ServicerContext
    ) -> pb.GetConfigResponse:
        terminal = self._identity.terminal(context)
        convert.same_terminal(request.terminal_id, terminal)
        return config_message(fleet.config_of(self._hub, terminal), self._clock_message())

    async def Heartbeat(
        self, request: pb.HeartbeatRequest, context: grpc.aio.ServicerContext
    ) -> pb.HeartbeatResponse:
        terminal = self._identity.terminal(context)
        convert.same_terminal(request.terminal_id, terminal)
        version = request.software_version
        if len(version) > MAX_SOFTWARE_VERSION:
            raise InvalidArgument("software_version", f"at most {MAX_SOFTWARE_VERSION} characters")
        if not version.isprintable():
            raise InvalidArgument("software_version", "printable characters only")
        if not 0 <= request.offline_pending <= MAX_OFFLINE_PENDING:
            raise InvalidArgument("offline_pending", f"must be within [0, {MAX_OFFLINE_PENDING}]")
        answer = await fleet.heartbeat(self._hub, terminal, version, request.offline_pending)
        response = pb.HeartbeatResponse(
            config_version=answer.config_version, blocklist_version=answer.blocklist_version
        )
        response.now.FromMilliseconds(answer.now_ms)
        return response

    async def WatchBlocklist(  # type: ignore[override]  # bytes: see add_terminal_service
        self, request: pb.WatchBlocklistRequest, context: grpc.aio.ServicerContext
    ) -> AsyncIterator[bytes]:
        """Each message as the feed encoded it, once for every stream of the school."""
        terminal = self._identity.terminal(context)
        convert.same_terminal(request.terminal_id, terminal)
        if request.since_version < 0:
            raise InvalidArgument("since_version", "must be 0 or more")
        subscription = self._hub.blocklist_feed.subscribe(
            terminal.school_id, terminal.terminal_id, request.since_version, context.peer()
        )
        async for message in subscription.messages():
            yield message.wire


WATCH_BLOCKLIST = "WatchBlocklist"
_SERVICE = pb.DESCRIPTOR.services_by_name["TerminalService"]


def add_terminal_service(servicer: TerminalServicer, server: grpc.aio.Server) -> None:
    """Registers the servicer as the generated `add_TerminalServiceServicer_to_server` does, but
    WatchBlocklist sends bytes: the feed encodes a change once for every stream of its school
    (blocklist_wire.py), so its response serializer passes them through as they are. The wire is
    the same WatchBlocklistResponse."""
    pb_grpc.add_TerminalServiceServicer_to_server(servicer, cast(grpc.aio.Server, _BytesForWatch(server)))


class _Call(grpc.HandlerCallDetails):
    def __init__(self, method: str) -> None:
        self.method = method
        self.invocation_metadata = ()


def _bytes_out(handler: grpc.RpcMethodHandler) -> grpc.RpcMethodHandler:
    behavior = handler.unary_stream
    assert behavior is not None  # WatchBlocklist streams its answer
    # No serializer: gRPC writes what the handler yields, which must be bytes.
    return grpc.unary_stream_rpc_method_handler(behavior, handler.request_deserializer, None)


class _BytesForWatch:
    """The server as the generated registration sees it: WatchBlocklist's handler, looked up by
    name, gets a response serializer that passes bytes through; every other handler is left as is."""

    def __init__(self, server: grpc.aio.Server) -> None:
        self._server = server

    def add_generic_rpc_handlers(self, handlers: Sequence[grpc.GenericRpcHandler]) -> None:
        out: list[grpc.GenericRpcHandler] = []
        for handler in handlers:
            methods = {}
            for method in _SERVICE.methods:
                found = handler.service(_Call(f"/{_SERVICE.full_name}/{method.name}"))
                if found is not None:
                    methods[method.name] = _bytes_out(found) if method.name == WATCH_BLOCKLIST else found
            out.append(grpc.method_handlers_generic_handler(_SERVICE.full_name, methods))
        self._server.add_generic_rpc_handlers(out)

    def add_registered_method_handlers(self, service_name: str, handlers: dict[str, Any]) -> None:
        changed = {n: _bytes_out(h) if n == WATCH_BLOCKLIST else h for n, h in handlers.items()}
        self._server.add_registered_method_handlers(service_name, changed)
