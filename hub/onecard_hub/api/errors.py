"""The one place where the hub's errors become gRPC statuses (AIP-193).

A HubError becomes its status code with one google.rpc.ErrorInfo (domain
"onecard.hub", reason, and "field" for a bad argument). Anything else becomes
INTERNAL with only a correlation id: no exception text reaches a client; the
traceback goes to the hub's log under that id. A request that does not decode
reaches the guard as an `Undecodable` (see api/decoding.py) and becomes
INVALID_ARGUMENT before the servicer runs.
"""

from __future__ import annotations

import functools
import inspect
import logging
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Any, TypeVar, cast

import grpc
from google.protobuf import any_pb2
from google.rpc import code_pb2, error_details_pb2, status_pb2
from grpc_status import rpc_status

from onecard_hub.domain import errors
from onecard_hub.telemetry.context import current_trace_id

log = logging.getLogger(__name__)

ERROR_DOMAIN = "onecard.hub"
# Bounds of what an error sends back. Messages quote client input through domain.errors.quoted; these
# catch anything longer still, so that an answer never outgrows gRPC's limit on trailing metadata.
MAX_STATUS_MESSAGE_CHARS = 512
MAX_METADATA_CHARS = 128

STATUS_OF: dict[type[errors.HubError], int] = {
    errors.InvalidArgument: code_pb2.INVALID_ARGUMENT,
    errors.Unauthenticated: code_pb2.UNAUTHENTICATED,
    errors.PermissionDenied: code_pb2.PERMISSION_DENIED,
    errors.NotFound: code_pb2.NOT_FOUND,
    errors.AlreadyExists: code_pb2.ALREADY_EXISTS,
    errors.FailedPrecondition: code_pb2.FAILED_PRECONDITION,
    errors.Overloaded: code_pb2.RESOURCE_EXHAUSTED,
    errors.Unavailable: code_pb2.UNAVAILABLE,
}


def _bounded(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def status_for(code: int, message: str, reason: str, metadata: dict[str, str]) -> grpc.Status:
    message = _bounded(message, MAX_STATUS_MESSAGE_CHARS)
    metadata = {key: _bounded(value, MAX_METADATA_CHARS) for key, value in metadata.items()}
    info = error_details_pb2.ErrorInfo(reason=reason, domain=ERROR_DOMAIN, metadata=metadata)
    detail = any_pb2.Any()
    detail.Pack(info)
    return rpc_status.to_status(status_pb2.Status(code=code, message=message, details=[detail]))


def status_of(exc: BaseException) -> grpc.Status:
    if isinstance(exc, errors.HubError):
        code = STATUS_OF.get(type(exc), code_pb2.INTERNAL)
        metadata = dict(exc.metadata)
        if exc.field:
            metadata["field"] = exc.field
        return status_for(code, exc.message, exc.reason, metadata)
    correlation_id = current_trace_id() or uuid.uuid4().hex  # the call's trace id when it is traced
    log.error("unexpected error, correlation_id=%s", correlation_id, exc_info=exc)
    return status_for(
        code_pb2.INTERNAL,
        f"internal error; quote correlation id {correlation_id}",
        "INTERNAL",
        {"correlation_id": correlation_id},
    )


@dataclass(frozen=True, slots=True)
class Undecodable:
    """What a servicer method is handed in place of a request that does not decode: its guard
    answers INVALID_ARGUMENT / FIELD_INVALID, naming the field where decoding failed when known."""

    message_type: str  # the request message's full name
    field: str | None

    def status(self) -> grpc.Status:
        problem = f"not a valid encoding of {self.message_type}"
        if self.field is None:
            return status_for(code_pb2.INVALID_ARGUMENT, f"the request is {problem}", "FIELD_INVALID", {})
        message = f"{self.field}: the request is {problem} from here on"
        return status_for(code_pb2.INVALID_ARGUMENT, message, "FIELD_INVALID", {"field": self.field})


Behavior = Callable[[Any, grpc.aio.ServicerContext], Awaitable[Any]]


def _guard(behavior: Behavior) -> Behavior:
    @functools.wraps(behavior)
    async def guarded(request: Any, context: grpc.aio.ServicerContext) -> Any:
        if type(request) is Undecodable:
            await context.abort_with_status(request.status())
        try:
            return await behavior(request, context)
        except (errors.HubError, Exception) as exc:
            if isinstance(exc, grpc.aio.AbortError):
                raise
            await context.abort_with_status(status_of(exc))

    return guarded


StreamBehavior = Callable[[Any, grpc.aio.ServicerContext], AsyncIterator[Any]]


def _guard_stream(behavior: StreamBehavior) -> StreamBehavior:
    """The same for a server-streaming handler: the stream ends with the error's status."""

    @functools.wraps(behavior)
    async def guarded(request: Any, context: grpc.aio.ServicerContext) -> AsyncIterator[Any]:
        if type(request) is Undecodable:
            await context.abort_with_status(request.status())
        try:
            async for message in behavior(request, context):
                yield message
        except (errors.HubError, Exception) as exc:
            if isinstance(exc, grpc.aio.AbortError):
                raise
            await context.abort_with_status(status_of(exc))

    return guarded


S = TypeVar("S")
GUARDED = "__onecard_guarded__"  # set on every wrapped handler (tests check that none is left out)
# Telemetry's wrapper (telemetry/rpc.py): (guarded method, generated *Servicer base class, method
# name, server streaming?) → what gRPC calls; metrics and spans are recorded there, once per call.
Observe = Callable[[Any, type, str, bool], Any]


def guard_servicer(servicer: S, observe: Observe | None = None) -> S:
    """Wraps every RPC method of a servicer in the error mapping, once, before it is registered.

    The generated `add_*Servicer_to_server` reads each RPC method from the instance, so an
    instance attribute holding the wrapped method is what gRPC calls. (A server interceptor
    would do the same per call, at a few microseconds of the critical path each time.) The RPC
    methods are the public methods of the generated `*Servicer` base class. With `observe`
    (telemetry on), each guarded method is handed to it and what it returns is registered.
    """
    for base in type(servicer).__mro__:
        if not base.__module__.endswith("_pb2_grpc"):
            continue
        for name, member in vars(base).items():
            if name.startswith("_") or not callable(member):
                continue
            method = getattr(servicer, name)
            if getattr(method, GUARDED, False):
                continue
            if inspect.isasyncgenfunction(method):
                wrapped: Any = _guard_stream(cast(StreamBehavior, method))
            else:
                wrapped = _guard(cast(Behavior, method))
            if observe is not None:
                wrapped = observe(wrapped, base, name, inspect.isasyncgenfunction(method))
            setattr(wrapped, GUARDED, True)
            setattr(servicer, name, wrapped)
    return servicer
