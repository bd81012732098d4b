"""A small async client of the simulator for testers and scenarios: record a change, read a
card's status, set faults. Function, action and channel by name ("identity", "loss", "hr_window")."""

from __future__ import annotations

import itertools
import os
from typing import Any

import grpc

from onecard.cardsys.v1 import card_system_service_pb2 as pb
from onecard.cardsys.v1 import card_system_service_pb2_grpc as pb_grpc
from onecard_sim.cardsys.rules import HOME_CHANNEL

DEADLINE_S = 5.0


def enum_value(enum: Any, prefix: str, name: str | int) -> int:
    """`enum_value(pb.ChangeAction, "CHANGE_ACTION_", "loss")` → CHANGE_ACTION_LOSS."""
    if isinstance(name, int):
        return name
    try:
        return int(enum.Value(prefix + name.upper().replace("-", "_")))
    except ValueError:
        names = [n.removeprefix(prefix).lower() for n in enum if not n.endswith("UNSPECIFIED")]
        raise ValueError(f"{name!r}: one of {', '.join(names)}") from None


class CardsysClient:
    def __init__(self, target: str) -> None:
        options = [("grpc.use_local_subchannel_pool", 1), ("grpc.max_reconnect_backoff_ms", 1_000)]
        self._channel = grpc.aio.insecure_channel(target, options=options)
        self._stub: Any = pb_grpc.CardSystemServiceStub(self._channel)
        self._ids = itertools.count(1)
        self._prefix = f"sim-{os.getpid()}-{id(self):x}"

    async def close(self) -> None:
        await self._channel.close()

    async def __aenter__(self) -> CardsysClient:
        return self

    async def __aexit__(self, *_: object) -> None:
        await self.close()

    async def record_change(
        self,
        card_no: str,
        function: str | int,
        action: str | int,
        channel: str | int | None = None,
        *,
        request_id: str = "",
        at_ms: int = 0,
    ) -> pb.Change:
        """Records a change; the channel defaults to the function's own counter (HR window, bank branch)."""
        fn = enum_value(pb.CardFunction, "CARD_FUNCTION_", function)
        where = HOME_CHANNEL.get(fn, 0) if channel is None else enum_value(pb.Channel, "CHANNEL_", channel)
        request = pb.RecordChangeRequest(
            request_id=request_id or f"{self._prefix}-{next(self._ids)}",
            card_no=card_no,
            function=fn,  # type: ignore[arg-type]
            action=enum_value(pb.ChangeAction, "CHANGE_ACTION_", action),  # type: ignore[arg-type]
            channel=where,  # type: ignore[arg-type]
        )
        if at_ms:
            request.at.FromMilliseconds(at_ms)
        answer: pb.RecordChangeResponse = await self._stub.RecordChange(request, timeout=DEADLINE_S)
        return answer.change

    async def get_status(self, card_no: str) -> pb.GetStatusResponse:
        answer: pb.GetStatusResponse = await self._stub.GetStatus(
            pb.GetStatusRequest(card_no=card_no), timeout=DEADLINE_S
        )
        return answer

    async def set_faults(
        self, *, drop_now: bool = False, drop_every_s: float = 0.0, refuse_for_s: float = 0.0
    ) -> pb.SetFaultsResponse:
        answer: pb.SetFaultsResponse = await self._stub.SetFaults(
            pb.SetFaultsRequest(drop_now=drop_now, drop_every_s=drop_every_s, refuse_for_s=refuse_for_s),
            timeout=DEADLINE_S,
        )
        return answer
