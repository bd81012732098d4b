"""TerminalService: the hub's clock for terminals."""

from __future__ import annotations

import grpc

from onecard.terminal.v1 import terminal_service_pb2 as pb
from onecard.terminal.v1 import terminal_service_pb2_grpc as pb_grpc
from onecard_hub.api import convert
from onecard_hub.api.identity import TERMINAL_HEADER, caller_id
from onecard_hub.domain.clock import TIME_ZONE, Clock, SimulatedClock
from onecard_hub.hub import Hub


class TerminalServicer(pb_grpc.TerminalServiceServicer):
    def __init__(self, hub: Hub, clock: Clock) -> None:
        self._hub = hub
        self._clock = clock

    async def GetClock(
        self, request: pb.GetClockRequest, context: grpc.aio.ServicerContext
    ) -> pb.GetClockResponse:
        terminal = self._hub.terminal(caller_id(context, TERMINAL_HEADER))
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
