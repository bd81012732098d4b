"""Broken calls: status codes with one ErrorInfo naming the field; nothing is written."""

from __future__ import annotations

import importlib
from collections.abc import Callable
from pathlib import Path

import grpc
import pytest
from google.rpc import error_details_pb2, status_pb2

from onecard.auth.v1 import authorization_service_pb2 as pb
from onecard.auth.v1 import authorization_service_pb2_grpc as pb_grpc
from onecard_client.errors import InvalidArgumentError, PermissionDeniedError, UnauthenticatedError
from onecard_hub.api.errors import GUARDED
from onecard_hub.server import SERVICE_NAMES, RunningHub
from tests.conftest import db_count
from tests.helpers import Campus

BUY, ENTRY = pb.SCENE_CANTEEN_PURCHASE, pb.SCENE_GATE_ENTRY
Mutation = Callable[[pb.AuthorizeRequest], None]


def _set(field: str, value: object) -> Mutation:
    def apply(request: pb.AuthorizeRequest) -> None:
        setattr(request, field, value)

    return apply


def _clear(field: str) -> Mutation:
    return lambda request: request.ClearField(field)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("mutate", "field"),
    [
        (_set("request_id", ""), "request_id"),
        (_set("request_id", "x" * 65), "request_id"),
        (_set("request_id", "bad id with spaces"), "request_id"),
        (_set("amount_fen", 0), "amount_fen"),
        (_set("amount_fen", -100), "amount_fen"),
        (_set("amount_fen", 10**12), "amount_fen"),
        (_set("scene", 99), "scene"),
        (_set("scene", 0), "scene"),
        (_set("pin", "12ab"), "pin"),
        (_clear("tap_time"), "tap_time"),
        (_clear("chip"), "credential"),
        (_set("terminal_id", ""), "terminal_id"),
    ],
)
async def test_malformed_requests_name_the_field_and_write_nothing(
    campus: Campus,
    campus_dir: Path,
    mutate: Mutation,
    field: str,
) -> None:
    pos = campus.pos()
    request = campus.chip(campus.card(), pos, BUY, amount_fen=800)
    mutate(request)
    rows = db_count(campus_dir, "requests")
    with pytest.raises(InvalidArgumentError) as caught:
        await campus.client(pos).authorize(request)
    assert caught.value.field == field
    assert caught.value.reason == "FIELD_INVALID"
    assert db_count(campus_dir, "requests") == rows


async def test_chip_fields_are_checked(campus: Campus) -> None:
    request = campus.chip(campus.card(), campus.gate(), ENTRY)
    request.chip.cryptogram = b"short"
    with pytest.raises(InvalidArgumentError) as caught:
        await campus.send(request)
    assert caught.value.field == "chip.cryptogram"
    request = campus.chip(campus.card(), campus.gate(), ENTRY)
    request.chip.card_no = "短"
    with pytest.raises(InvalidArgumentError) as caught:
        await campus.send(request)
    assert caught.value.field == "chip.card_no"


async def test_a_gate_amount_is_refused(campus: Campus) -> None:
    request = campus.chip(campus.card(), campus.gate(), ENTRY)
    request.amount_fen = 5
    with pytest.raises(InvalidArgumentError):
        await campus.send(request)


async def test_the_status_carries_one_error_info(hub: RunningHub, campus: Campus) -> None:
    request = campus.chip(campus.card(), campus.pos(), BUY, amount_fen=-1)
    async with grpc.aio.insecure_channel(hub.target) as channel:
        stub = pb_grpc.AuthorizationServiceStub(channel)
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await stub.Authorize(request, metadata=(("onecard-terminal-id", request.terminal_id),))
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    raw = dict(caught.value.trailing_metadata() or ())["grpc-status-details-bin"]
    status = status_pb2.Status.FromString(raw)
    assert len(status.details) == 1
    info = error_details_pb2.ErrorInfo()
    assert status.details[0].Unpack(info)
    assert (info.domain, info.reason, info.metadata["field"]) == (
        "onecard.hub",
        "FIELD_INVALID",
        "amount_fen",
    )


async def test_callers_must_identify_themselves(hub: RunningHub, campus: Campus) -> None:
    request = campus.chip(campus.card(), campus.gate(), ENTRY)
    async with grpc.aio.insecure_channel(hub.target) as channel:
        stub = pb_grpc.AuthorizationServiceStub(channel)
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await stub.Authorize(request)
        assert caught.value.code() == grpc.StatusCode.UNAUTHENTICATED
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await stub.Authorize(request, metadata=(("onecard-terminal-id", "no-such-terminal"),))
        assert caught.value.code() == grpc.StatusCode.UNAUTHENTICATED


async def test_a_terminal_cannot_act_for_another_or_outside_its_kind(campus: Campus) -> None:
    gate, pos = campus.gate(), campus.pos()
    request = campus.chip(campus.card(), gate, ENTRY)
    with pytest.raises(PermissionDeniedError) as caught:
        await campus.client(pos).authorize(request)  # the POS names the gate
    assert caught.value.reason == "TERMINAL_MISMATCH"
    pos_at_gate = campus.chip(campus.card(), pos, ENTRY)
    with pytest.raises(PermissionDeniedError) as caught:
        await campus.send(pos_at_gate)
    assert caught.value.reason == "SCENE_NOT_ALLOWED"
    gate_selling = campus.chip(campus.card(), gate, BUY, amount_fen=100)
    with pytest.raises(PermissionDeniedError):
        await campus.send(gate_selling)


async def test_unknown_terminal_through_the_sdk(campus: Campus) -> None:
    request = campus.chip(campus.card(), campus.gate(), ENTRY)
    with pytest.raises(UnauthenticatedError):
        await campus.client("ghost-terminal").authorize(request)


def _service_of(servicer: object) -> tuple[str, list[str]]:
    """The full name and the RPC method names of the service a servicer implements."""
    base = next(c for c in type(servicer).__mro__ if c.__module__.endswith("_pb2_grpc"))
    messages = importlib.import_module(base.__module__.removesuffix("_grpc"))
    service = messages.DESCRIPTOR.services_by_name[base.__name__.removesuffix("Servicer")]
    return service.full_name, [method.name for method in service.methods]


async def test_every_method_of_every_hub_service_is_guarded(hub: RunningHub) -> None:
    """No interceptor maps errors: each servicer is wrapped when registered, so a method left out
    would let exception text through. Every service the hub names is registered, every method guarded."""
    services = dict(_service_of(servicer) for servicer in hub.servicers)
    assert set(services) == set(SERVICE_NAMES)
    for servicer in hub.servicers:
        name, methods = _service_of(servicer)
        unguarded = [m for m in methods if not getattr(getattr(servicer, m), GUARDED, False)]
        assert unguarded == [], f"{name}: {unguarded}"


async def test_an_unexpected_failure_reaches_the_client_as_internal_with_only_an_id(
    hub: RunningHub, campus: Campus, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(*args: object) -> None:
        raise RuntimeError("secret 360102200801011234 in the message")

    monkeypatch.setattr(hub.hub, "wallet_of", broken)
    pos = campus.pos()
    request = pb.GetWalletBalanceRequest(terminal_id=pos.terminal_id, card_no=campus.card().card_no)
    async with grpc.aio.insecure_channel(hub.target) as channel:
        stub = pb_grpc.AuthorizationServiceStub(channel)
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await stub.GetWalletBalance(request, metadata=(("onecard-terminal-id", pos.terminal_id),))
    assert caught.value.code() == grpc.StatusCode.INTERNAL
    assert "secret" not in (caught.value.details() or "")
    raw = dict(caught.value.trailing_metadata() or ())["grpc-status-details-bin"]
    info = error_details_pb2.ErrorInfo()
    assert status_pb2.Status.FromString(raw).details[0].Unpack(info)
    assert info.reason == "INTERNAL"
    assert info.metadata["correlation_id"] in (caught.value.details() or "")
    assert "secret" not in str(status_pb2.Status.FromString(raw))
