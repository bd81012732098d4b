"""AdminService ListTerminals and SetTerminalEnabled: scope, validation, idempotency, durability."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import grpc
import pytest
from google.rpc import error_details_pb2, status_pb2

from onecard.admin.v1 import admin_service_pb2 as pb
from onecard.admin.v1 import admin_service_pb2_grpc as pb_grpc
from onecard.auth.v1 import authorization_service_pb2 as auth_pb
from onecard_client.errors import PermissionDeniedError
from onecard_hub.domain.clock import ManualClock
from onecard_hub.domain.model import TerminalKind
from onecard_hub.server import RunningHub, running_hub
from tests.conftest import db_count, hub_config
from tests.helpers import Campus, new_request_id

ADMIN = "province-admin"
ENTRY = auth_pb.SCENE_GATE_ENTRY
DEADLINE_S = 10.0


def _clerk(school_id: str) -> str:
    return f"{school_id}-clerk"


@pytest.fixture
async def admin(hub: RunningHub) -> AsyncIterator[pb_grpc.AdminServiceAsyncStub]:
    async with grpc.aio.insecure_channel(hub.target) as channel:
        yield pb_grpc.AdminServiceStub(channel)


def _as(operator_id: str) -> tuple[tuple[str, str], ...]:
    return (("onecard-operator-id", operator_id),)


def _info(error: grpc.aio.AioRpcError) -> error_details_pb2.ErrorInfo:
    raw = dict(error.trailing_metadata() or ())["grpc-status-details-bin"]
    info = error_details_pb2.ErrorInfo()
    assert status_pb2.Status.FromString(raw).details[0].Unpack(info)
    return info


async def _set(
    admin: pb_grpc.AdminServiceAsyncStub, operator_id: str, request: pb.SetTerminalEnabledRequest
) -> pb.SetTerminalEnabledResponse:
    return await admin.SetTerminalEnabled(request, metadata=_as(operator_id), timeout=DEADLINE_S)


async def test_a_clerk_lists_their_own_schools_terminals(
    admin: pb_grpc.AdminServiceAsyncStub, campus: Campus
) -> None:
    school = campus.school()
    listed = await admin.ListTerminals(
        pb.ListTerminalsRequest(school_id=school), metadata=_as(_clerk(school)), timeout=DEADLINE_S
    )
    expected = sorted(t.terminal_id for t in campus.creds.terminals if t.school_id == school)
    assert [t.terminal_id for t in listed.terminals] == expected
    assert all(t.school_id == school and t.enabled for t in listed.terminals)
    gate = next(t for t in listed.terminals if t.terminal_id == campus.gate().terminal_id)
    assert gate.kind == pb.TERMINAL_KIND_GATE and gate.gate_group == "main"
    pos = next(t for t in listed.terminals if t.terminal_id == campus.pos().terminal_id)
    assert pos.kind == pb.TERMINAL_KIND_CANTEEN_POS and pos.merchant_id


async def test_a_province_admin_lists_every_school(
    admin: pb_grpc.AdminServiceAsyncStub, campus: Campus
) -> None:
    everything = await admin.ListTerminals(pb.ListTerminalsRequest(), metadata=_as(ADMIN), timeout=DEADLINE_S)
    assert sorted(t.terminal_id for t in everything.terminals) == sorted(
        t.terminal_id for t in campus.creds.terminals
    )
    assert {t.school_id for t in everything.terminals} == set(campus.creds.schools)


@pytest.mark.parametrize(
    ("operator", "school", "code", "reason"),
    [
        ("clerk", "", grpc.StatusCode.INVALID_ARGUMENT, "FIELD_INVALID"),
        ("clerk", "other", grpc.StatusCode.PERMISSION_DENIED, "OTHER_SCHOOL"),
        ("admin", "no-such-school", grpc.StatusCode.NOT_FOUND, "NOT_FOUND"),
        ("admin", "x" * 200, grpc.StatusCode.INVALID_ARGUMENT, "FIELD_INVALID"),
    ],
)
async def test_listing_is_scoped_and_checked(
    admin: pb_grpc.AdminServiceAsyncStub,
    campus: Campus,
    operator: str,
    school: str,
    code: grpc.StatusCode,
    reason: str,
) -> None:
    operator_id = _clerk(campus.school()) if operator == "clerk" else ADMIN
    school_id = campus.school(1) if school == "other" else school
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await admin.ListTerminals(
            pb.ListTerminalsRequest(school_id=school_id), metadata=_as(operator_id), timeout=DEADLINE_S
        )
    assert caught.value.code() == code
    assert _info(caught.value).reason == reason


async def test_disabling_refuses_the_terminal_and_is_replayed_idempotently(
    admin: pb_grpc.AdminServiceAsyncStub, campus: Campus
) -> None:
    school, gate, card = campus.school(), campus.gate(), campus.card()
    clerk = _clerk(school)
    disable = pb.SetTerminalEnabledRequest(
        request_id=new_request_id(), terminal_id=gate.terminal_id, enabled=False
    )
    first = await _set(admin, clerk, disable)
    assert first.terminal.terminal_id == gate.terminal_id and not first.terminal.enabled
    with pytest.raises(PermissionDeniedError) as caught:
        await campus.send(campus.chip(card, gate, ENTRY))
    assert caught.value.reason == "TERMINAL_DISABLED"
    shown = await admin.GetTerminal(
        pb.GetTerminalRequest(terminal_id=gate.terminal_id), metadata=_as(clerk), timeout=DEADLINE_S
    )
    assert not shown.terminal.enabled

    enable = pb.SetTerminalEnabledRequest(
        request_id=new_request_id(), terminal_id=gate.terminal_id, enabled=True
    )
    assert (await _set(admin, clerk, enable)).terminal.enabled
    # The same request again: the original answer, and nothing changes.
    assert await _set(admin, clerk, disable) == first
    assert (await campus.send(campus.chip(card, gate, ENTRY))).decision == auth_pb.DECISION_APPROVED

    reused = pb.SetTerminalEnabledRequest(
        request_id=disable.request_id, terminal_id=gate.terminal_id, enabled=True
    )
    with pytest.raises(grpc.aio.AioRpcError) as failed:
        await _set(admin, clerk, reused)
    assert failed.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert _info(failed.value).reason == "IDEMPOTENCY_KEY_REUSED"


@pytest.mark.parametrize(
    ("request_id", "terminal_id", "code", "field"),
    [
        ("", "GATE", grpc.StatusCode.INVALID_ARGUMENT, "request_id"),
        ("has spaces", "GATE", grpc.StatusCode.INVALID_ARGUMENT, "request_id"),
        ("r-1", "", grpc.StatusCode.INVALID_ARGUMENT, "terminal_id"),
        ("r-1", "no-such-terminal", grpc.StatusCode.NOT_FOUND, "terminal_id"),
    ],
)
async def test_bad_requests_name_the_field_and_write_nothing(
    admin: pb_grpc.AdminServiceAsyncStub,
    campus: Campus,
    campus_dir: Path,
    request_id: str,
    terminal_id: str,
    code: grpc.StatusCode,
    field: str,
) -> None:
    gate = campus.gate()
    rows = db_count(campus_dir, "requests")
    request = pb.SetTerminalEnabledRequest(
        request_id=request_id, terminal_id=gate.terminal_id if terminal_id == "GATE" else terminal_id
    )
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await _set(admin, ADMIN, request)
    assert caught.value.code() == code
    assert _info(caught.value).metadata["field"] == field
    assert db_count(campus_dir, "requests") == rows
    assert (await campus.send(campus.chip(campus.card(), gate, ENTRY))).decision == auth_pb.DECISION_APPROVED


async def test_a_clerk_cannot_switch_another_schools_terminal(
    admin: pb_grpc.AdminServiceAsyncStub, campus: Campus, campus_dir: Path
) -> None:
    other_gate = campus.gate(school=1)
    rows = db_count(campus_dir, "requests")
    request = pb.SetTerminalEnabledRequest(request_id=new_request_id(), terminal_id=other_gate.terminal_id)
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await _set(admin, _clerk(campus.school()), request)
    assert caught.value.code() == grpc.StatusCode.PERMISSION_DENIED
    assert db_count(campus_dir, "requests") == rows
    card = campus.card(school=1)
    assert (await campus.send(campus.chip(card, other_gate, ENTRY))).decision == auth_pb.DECISION_APPROVED


async def test_a_disabled_terminal_stays_disabled_after_a_restart(
    campus_dir: Path, clock: ManualClock
) -> None:
    async with (
        running_hub(hub_config(campus_dir), clock) as first,
        grpc.aio.insecure_channel(first.target) as channel,
    ):
        gate_id = next(
            t for t in first.hub.campus.terminals.values() if t.kind is TerminalKind.GATE
        ).terminal_id
        request = pb.SetTerminalEnabledRequest(request_id="off-1", terminal_id=gate_id, enabled=False)
        answer = await _set(pb_grpc.AdminServiceStub(channel), ADMIN, request)
    assert not answer.terminal.enabled
    async with running_hub(hub_config(campus_dir), clock) as second:
        assert not second.hub.campus.terminals[gate_id].enabled
        async with grpc.aio.insecure_channel(second.target) as channel:
            replay = await _set(pb_grpc.AdminServiceStub(channel), ADMIN, request)
    assert replay == answer
