"""TerminalService: the hub's clock for terminals."""

from __future__ import annotations

import grpc

from onecard.terminal.v1 import terminal_service_pb2 as pb
from onecard.terminal.v1 import terminal_service_pb2_grpc as pb_grpc
from onecard_hub.api import convert
from onecard_hub.api.identity import Identity
from onecard_hub.domain.clock import TIME_ZONE, Clock, SimulatedClock
from onecard_hub.hub import Hub


class TerminalServicer(pb_grpc.TerminalServiceServicer):
    def __init__(self, hub: Hub, clock: Clock, identity: Identity) -> None:
        self._hub = hub
        self._clock = clock
        self._identity = identity

    async def GetClock(
        self, request: pb.GetClockRequest, context: grpc.aio.ServicerContext
    ) -> pb.GetClockResponse:
        terminal = self._identity.terminal(context)
        convert.same_terminal(request.terminal_id, terminal)
        response = pb.GetClockResponse(time_zone=TIME_ZONE, speed=1.0)
        response.now.FromMilliseconds(self._clock.now_ms())
        clock = self._clock
        if isinstance(clock, SimulatedClock):
            response.simulated = True
            response.speed = clock.speed
            response.simulated_start.FromMilliseconds(clock.start_ms)
            response.real_start.FromMilliseconds(clock.real_start_ms)
        return response
