"""What any gRPC client finds: health, reflection, the clock, the admin surface."""

from __future__ import annotations

from typing import Any

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc

from onecard.admin.v1 import admin_service_pb2 as admin_pb
from onecard.auth.v1 import authorization_service_pb2 as pb
from onecard_client.client import AdminClient, ClientConfig
from onecard_client.errors import (
    AlreadyExistsError,
    InvalidArgumentError,
    NotFoundError,
    PermissionDeniedError,
)
from onecard_hub.server import RunningHub
from tests.conftest import LUNCH_MS
from tests.helpers import Campus, name


async def test_health_and_reflection(hub: RunningHub) -> None:
    async with grpc.aio.insecure_channel(hub.target) as channel:
        health: Any = health_pb2_grpc.HealthStub(channel)
        for service in ("", "onecard.auth.v1.AuthorizationService"):
            answer = await health.Check(health_pb2.HealthCheckRequest(service=service))
            assert answer.status == health_pb2.HealthCheckResponse.SERVING
        stub: Any = reflection_pb2_grpc.ServerReflectionStub(channel)  # type: ignore[arg-type]
        names: list[str] = []
        async for response in stub.ServerReflectionInfo(
            iter([reflection_pb2.ServerReflectionRequest(list_services="")])
        ):
            names += [s.name for s in response.list_services_response.service]
    assert {
        "onecard.auth.v1.AuthorizationService",
        "onecard.admin.v1.AdminService",
        "onecard.terminal.v1.TerminalService",
        "grpc.health.v1.Health",
    } <= set(names)


async def test_the_clock_is_the_hubs(campus: Campus) -> None:
    answer = await campus.client(campus.gate()).clock()
    assert answer.now.ToMilliseconds() == LUNCH_MS
    assert answer.time_zone == "Asia/Shanghai"


async def test_register_a_terminal_and_use_it(campus: Campus, hub: RunningHub) -> None:
    school = campus.school()
    gate = admin_pb.Terminal(
        terminal_id=f"{school}-gate-new",
        school_id=school,
        kind=admin_pb.TERMINAL_KIND_GATE,
        location="东门 9号闸机",
        gate_group="main",
    )
    async with AdminClient("province-admin", ClientConfig(target=hub.target)) as admin:
        made = await admin.register_terminal("reg-1", gate)
        assert made.terminal.enabled
        assert await admin.register_terminal("reg-1", gate) == made
        assert (await admin.get_terminal(gate.terminal_id)).terminal == made.terminal
        changed = admin_pb.Terminal()
        changed.CopyFrom(gate)
        changed.gate_group = "side"
        with pytest.raises(AlreadyExistsError):
            await admin.register_terminal("reg-2", changed)
        bad = admin_pb.Terminal(terminal_id="x-1", school_id=school, kind=admin_pb.TERMINAL_KIND_CANTEEN_POS)
        with pytest.raises(InvalidArgumentError) as caught:
            await admin.register_terminal("reg-3", bad)
        assert caught.value.field == "terminal.merchant_id"
        with pytest.raises(NotFoundError):
            await admin.get_terminal("nope")
    card = campus.card()
    info = next(t for t in campus.creds.terminals if t.school_id == school and t.kind == "gate")
    from dataclasses import replace

    answer = await campus.send(
        campus.chip(card, replace(info, terminal_id=gate.terminal_id), pb.SCENE_GATE_ENTRY)
    )
    assert answer.decision == pb.DECISION_APPROVED, name(answer.decline_reason)


async def test_a_clerk_acts_only_for_their_school(campus: Campus, hub: RunningHub) -> None:
    other = campus.school(1)
    async with AdminClient(f"{campus.school(0)}-clerk", ClientConfig(target=hub.target)) as clerk:
        with pytest.raises(PermissionDeniedError):
            await clerk.register_terminal(
                "reg-x",
                admin_pb.Terminal(
                    terminal_id="g-x", school_id=other, kind=admin_pb.TERMINAL_KIND_GATE, gate_group="main"
                ),
            )
        with pytest.raises(PermissionDeniedError):
            await clerk.ledger_summary()
