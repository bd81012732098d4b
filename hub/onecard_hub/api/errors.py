"""The one place where the hub's errors become gRPC statuses (AIP-193).

A HubError becomes its status code with one google.rpc.ErrorInfo (domain
"onecard.hub", reason, and "field" for a bad argument). Anything else becomes
INTERNAL with only a correlation id: no exception text reaches a client; the
traceback goes to the hub's log under that id.
"""

from __future__ import annotations

import inspect
import logging
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any, cast

import grpc
from google.protobuf import any_pb2
from google.rpc import code_pb2, error_details_pb2, status_pb2
from grpc_status import rpc_status

from onecard_hub.domain import errors

log = logging.getLogger(__name__)

ERROR_DOMAIN = "onecard.hub"

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


def status_for(code: int, message: str, reason: str, metadata: dict[str, str]) -> grpc.Status:
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
    correlation_id = uuid.uuid4().hex
    log.error("unexpected error, correlation_id=%s", correlation_id, exc_info=exc)
    return status_for(
        code_pb2.INTERNAL,
        f"internal error; quote correlation id {correlation_id}",
        "INTERNAL",
        {"correlation_id": correlation_id},
    )


Behavior = Callable[[Any, grpc.aio.ServicerContext], Awaitable[Any]]


def _guard(behavior: Behavior) -> Behavior:
    async def guarded(request: Any, context: grpc.aio.ServicerContext) -> Any:
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

    async def guarded(request: Any, context: grpc.aio.ServicerContext) -> AsyncIterator[Any]:
        try:
            async for message in behavior(request, context):
                yield message
        except (errors.HubError, Exception) as exc:
            if isinstance(exc, grpc.aio.AbortError):
                raise
            await context.abort_with_status(status_of(exc))

    return guarded


class ErrorInterceptor(grpc.aio.ServerInterceptor):
    """Wraps every unary-unary and unary-stream handler once; later calls reuse the wrapped handler."""

    def __init__(self) -> None:
        self._wrapped: dict[str, grpc.RpcMethodHandler[Any, Any]] = {}

    async def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], Awaitable[grpc.RpcMethodHandler[Any, Any] | None]],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler[Any, Any] | None:
        method: str = handler_call_details.method
        cached = self._wrapped.get(method)
        if cached is not None:
            return cached
        handler = await continuation(handler_call_details)
        if handler is not None and inspect.isasyncgenfunction(handler.unary_stream):
            streaming = grpc.unary_stream_rpc_method_handler(
                _guard_stream(cast(StreamBehavior, handler.unary_stream)),
                request_deserializer=handler.request_deserializer,
                response_serializer=handler.response_serializer,
            )
            self._wrapped[method] = streaming
            return streaming
        if handler is None or handler.unary_unary is None:
            return handler
        wrapped = grpc.unary_unary_rpc_method_handler(
            _guard(cast(Behavior, handler.unary_unary)),
            request_deserializer=handler.request_deserializer,
            response_serializer=handler.response_serializer,
        )
        self._wrapped[method] = wrapped
        return wrapped
