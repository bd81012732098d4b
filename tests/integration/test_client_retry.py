"""The SDK's retry rules and error mapping, over a real transport.

A tiny grpc.aio server plays the hub's AuthorizationService: it answers UNAVAILABLE a set
number of times, or any other status, and records every request it receives. The async and
the sync clients are run against it alike (the sync one in a worker thread).
"""

from __future__ import annotations

import asyncio
import logging
import socket
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any

import grpc
import pytest
from google.protobuf import any_pb2
from google.rpc import error_details_pb2, status_pb2
from grpc_status import rpc_status

from onecard.auth.v1 import authorization_service_pb2 as auth_pb
from onecard.ecard.v1 import ecard_service_pb2 as ecard_pb
from onecard_client import (
    ClientConfig,
    DeadlineExceededError,
    ECardClient,
    FailedPreconditionError,
    InvalidArgumentError,
    OneCardError,
    PermissionDeniedError,
    ResourceExhaustedError,
    RetryConfig,
    TerminalClient,
    UnavailableError,
)
from onecard_client import sync as sync_client
from onecard_client.credentials import mint_proof

FAST_RETRY = RetryConfig(attempts=4, initial_backoff_s=0.001, max_backoff_s=0.005)


@dataclass
class Script:
    """What the fake hub answers: `failures` times `code` (with an ErrorInfo), then OK."""

    failures: int = 0
    code: grpc.StatusCode = grpc.StatusCode.UNAVAILABLE
    reason: str = ""
    metadata: dict[str, str] = field(default_factory=dict)
    hang: bool = False  # never answer (the client's deadline ends the call)
    seen: list[auth_pb.AuthorizeRequest] = field(default_factory=list)
    headers: list[dict[str, str]] = field(default_factory=list)


def _status(code: grpc.StatusCode, message: str, reason: str, metadata: dict[str, str]) -> grpc.Status:
    detail = any_pb2.Any()
    detail.Pack(error_details_pb2.ErrorInfo(reason=reason, domain="onecard.hub", metadata=metadata))
    return rpc_status.to_status(status_pb2.Status(code=code.value[0], message=message, details=[detail]))


class ScriptedAuthorization:
    def __init__(self, script: Script) -> None:
        self.script = script

    async def Authorize(
        self, request: auth_pb.AuthorizeRequest, context: grpc.aio.ServicerContext[Any, Any]
    ) -> auth_pb.AuthorizeResponse:
        script = self.script
        script.seen.append(request)
        script.headers.append({k: v for k, v in context.invocation_metadata() or () if isinstance(v, str)})
        if script.hang:
            await asyncio.Event().wait()
        if len(script.seen) <= script.failures:
            status = _status(script.code, f"scripted {script.code.name}", script.reason, script.metadata)
            await context.abort_with_status(status)
        return auth_pb.AuthorizeResponse(request_id=request.request_id, decision=auth_pb.DECISION_APPROVED)


class ProofCheckingECard:
    """Mints a token only when the proof is HMAC(e-card key, "mint|card|ms")."""

    def __init__(self, ecard_key: bytes) -> None:
        self.ecard_key = ecard_key

    async def MintQrCode(
        self, request: ecard_pb.MintQrCodeRequest, context: grpc.aio.ServicerContext[Any, Any]
    ) -> ecard_pb.MintQrCodeResponse:
        requested_ms = request.requested_at.ToMilliseconds()
        if request.proof != mint_proof(self.ecard_key, request.card_no, requested_ms):
            await context.abort_with_status(
                _status(grpc.StatusCode.PERMISSION_DENIED, "bad proof", "HOLDER_PROOF_INVALID", {})
            )
        return ecard_pb.MintQrCodeResponse(token=f"token-for-{request.card_no}-{requested_ms}")


ECARD_KEY = bytes(range(32))


def _service(module: Any, service: str, method: str, behavior: Any) -> grpc.GenericRpcHandler:
    """One method of a service: the rest answer UNIMPLEMENTED, as on a hub that lacks them."""
    descriptor = module.DESCRIPTOR.services_by_name[service].methods_by_name[method]
    request = getattr(module, descriptor.input_type.name)
    response = getattr(module, descriptor.output_type.name)
    handler = grpc.unary_unary_rpc_method_handler(
        behavior, request_deserializer=request.FromString, response_serializer=response.SerializeToString
    )
    return grpc.method_handlers_generic_handler(f"{module.DESCRIPTOR.package}.{service}", {method: handler})


@pytest.fixture
def script() -> Script:
    return Script()


@pytest.fixture
async def fake_hub(script: Script) -> AsyncIterator[str]:
    server = grpc.aio.server()
    server.add_generic_rpc_handlers(
        (
            _service(auth_pb, "AuthorizationService", "Authorize", ScriptedAuthorization(script).Authorize),
            _service(ecard_pb, "ECardService", "MintQrCode", ProofCheckingECard(ECARD_KEY).MintQrCode),
        )
    )
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    yield f"127.0.0.1:{port}"
    await server.stop(0)


def _tap(request_id: str = "r-1") -> auth_pb.AuthorizeRequest:
    return auth_pb.AuthorizeRequest(
        request_id=request_id,
        terminal_id="T-1",
        scene=auth_pb.SCENE_CANTEEN_PURCHASE,
        amount_fen=850,
        chip=auth_pb.ChipTap(card_no="JX1", atc=7, cryptogram=b"\x01" * 8),
    )


Authorize = Callable[[ClientConfig, auth_pb.AuthorizeRequest], Any]


async def _authorize_async(config: ClientConfig, request: auth_pb.AuthorizeRequest) -> Any:
    async with TerminalClient("T-1", config) as client:
        return await client.authorize(request)


async def _authorize_sync(config: ClientConfig, request: auth_pb.AuthorizeRequest) -> Any:
    def run() -> Any:
        with sync_client.TerminalClient("T-1", config) as client:
            return client.authorize(request)

    return await asyncio.to_thread(run)


CLIENTS = pytest.mark.parametrize("authorize", [_authorize_async, _authorize_sync], ids=["async", "sync"])


@CLIENTS
async def test_unavailable_is_retried_with_the_same_request(
    authorize: Authorize, script: Script, fake_hub: str
) -> None:
    script.failures = 2
    response = await authorize(ClientConfig(target=fake_hub, retry=FAST_RETRY), _tap("keep-me"))
    assert response.decision == auth_pb.DECISION_APPROVED
    assert [r.request_id for r in script.seen] == ["keep-me"] * 3
    assert all(r == script.seen[0] for r in script.seen)  # byte for byte the same message
    assert all(h.get("onecard-terminal-id") == "T-1" for h in script.headers)


@CLIENTS
async def test_retries_stop_at_the_limit(authorize: Authorize, script: Script, fake_hub: str) -> None:
    script.failures = 100
    retry = RetryConfig(attempts=3, initial_backoff_s=0.001, max_backoff_s=0.005)
    with pytest.raises(UnavailableError):
        await authorize(ClientConfig(target=fake_hub, retry=retry), _tap("r-limit"))
    assert [r.request_id for r in script.seen] == ["r-limit"] * 3


@CLIENTS
@pytest.mark.parametrize(
    ("code", "error"),
    [
        (grpc.StatusCode.INVALID_ARGUMENT, InvalidArgumentError),
        (grpc.StatusCode.FAILED_PRECONDITION, FailedPreconditionError),
        (grpc.StatusCode.DEADLINE_EXCEEDED, DeadlineExceededError),
        (grpc.StatusCode.PERMISSION_DENIED, PermissionDeniedError),
        (grpc.StatusCode.RESOURCE_EXHAUSTED, ResourceExhaustedError),
    ],
)
async def test_other_codes_are_tried_exactly_once(
    authorize: Authorize,
    code: grpc.StatusCode,
    error: type[OneCardError],
    script: Script,
    fake_hub: str,
) -> None:
    script.failures, script.code = 100, code
    with pytest.raises(error) as raised:
        await authorize(ClientConfig(target=fake_hub, retry=FAST_RETRY), _tap())
    assert len(script.seen) == 1
    assert raised.value.code == code


@CLIENTS
async def test_errors_carry_reason_and_field(authorize: Authorize, script: Script, fake_hub: str) -> None:
    script.failures, script.code = 1, grpc.StatusCode.INVALID_ARGUMENT
    script.reason, script.metadata = "FIELD_INVALID", {"field": "amount_fen"}
    with pytest.raises(InvalidArgumentError) as raised:
        await authorize(ClientConfig(target=fake_hub, retry=FAST_RETRY), _tap())
    assert (raised.value.reason, raised.value.field) == ("FIELD_INVALID", "amount_fen")
    assert raised.value.message == "scripted INVALID_ARGUMENT"
    assert not isinstance(raised.value, grpc.RpcError)


@CLIENTS
async def test_a_passed_deadline_is_not_retried(authorize: Authorize, script: Script, fake_hub: str) -> None:
    script.hang = True
    config = ClientConfig(target=fake_hub, deadline_s=0.2, retry=FAST_RETRY)
    with pytest.raises(DeadlineExceededError):
        await authorize(config, _tap("slow"))
    assert [r.request_id for r in script.seen] == ["slow"]


async def test_a_call_can_override_the_default_deadline(script: Script, fake_hub: str) -> None:
    script.hang = True
    config = ClientConfig(target=fake_hub, deadline_s=60.0, retry=FAST_RETRY)
    async with TerminalClient("T-1", config) as client:
        with pytest.raises(DeadlineExceededError):
            await client.authorize(_tap(), deadline_s=0.2)
    assert len(script.seen) == 1


@CLIENTS
async def test_no_hub_listening_is_unavailable_after_the_retries(
    authorize: Authorize, caplog: pytest.LogCaptureFixture
) -> None:
    with socket.socket() as probe:  # a port that was free a moment ago: nobody listens there
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    retry = RetryConfig(attempts=2, initial_backoff_s=0.001, max_backoff_s=0.005)
    with caplog.at_level(logging.INFO, logger="onecard_client"), pytest.raises(UnavailableError):
        await authorize(ClientConfig(target=f"127.0.0.1:{port}", retry=retry), _tap())
    assert sum("sending the same request again" in r.getMessage() for r in caplog.records) == 1


async def test_mint_qr_code_sends_the_holders_proof(fake_hub: str) -> None:
    hub_ms = 1_795_000_000_000
    async with ECardClient(ClientConfig(target=fake_hub)) as app:
        response = await app.mint_qr_code("JX42", ECARD_KEY, hub_ms)
        assert response.token == f"token-for-JX42-{hub_ms}"
        with pytest.raises(PermissionDeniedError) as raised:
            await app.mint_qr_code("JX42", b"\x00" * 32, hub_ms)
    assert raised.value.reason == "HOLDER_PROOF_INVALID"


async def test_sync_mint_qr_code(fake_hub: str) -> None:
    def run() -> str:
        with sync_client.ECardClient(ClientConfig(target=fake_hub)) as app:
            return app.mint_qr_code("JX7", ECARD_KEY, 5).token

    assert await asyncio.to_thread(run) == "token-for-JX7-5"


async def test_closing_twice_raises_nothing(fake_hub: str) -> None:
    client = TerminalClient("T-1", ClientConfig(target=fake_hub))
    await client.close()
    await client.close()
    blocking = sync_client.TerminalClient("T-1", ClientConfig(target=fake_hub))
    blocking.close()
    blocking.close()
