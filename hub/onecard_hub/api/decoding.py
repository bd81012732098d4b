"""Requests that do not decode: an INVALID_ARGUMENT answer and one short log line, not a traceback.

gRPC decodes a request before any servicer code runs, and a decoding error became UNKNOWN with the
exception's text and a logged traceback per call. So each request deserializer of the hub's own
services is wrapped once, when the services are added to the server (`tolerant_handlers`): bytes
protobuf refuses become an `api.errors.Undecodable`, which the servicer's guard answers with
INVALID_ARGUMENT / FIELD_INVALID (the field named when `api.wire` can tell) before the servicer runs.
On the hot path this costs one function call around the deserializer and one type check in the guard.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Collection, Sequence
from typing import Any

import grpc
from google.protobuf import descriptor_pool
from google.protobuf.descriptor import Descriptor

from onecard_hub.api.errors import Undecodable
from onecard_hub.api.wire import undecodable_field

log = logging.getLogger(__name__)

Deserializer = Callable[[bytes], Any]


class MalformedLog:
    """Logs requests that do not decode: at most one short warning line (no traceback) per `every_s`
    seconds, the next line counting those left out, so garbage traffic cannot flood the log.
    `clock` gives monotonic seconds."""

    def __init__(self, every_s: float = 10.0, clock: Callable[[], float] = time.monotonic) -> None:
        self._every_s = every_s
        self._clock = clock
        self._next = float("-inf")
        self._left_out = 0

    def __call__(self, method: str, size: int, field: str | None) -> None:
        now = self._clock()
        if now < self._next:
            self._left_out += 1
            return
        self._next = now + self._every_s
        left_out, self._left_out = self._left_out, 0
        log.warning(
            "undecodable request to %s (%d bytes%s)%s",
            method,
            size,
            f", at {field}" if field else "",
            f"; {left_out} more since the last such line" if left_out else "",
        )


def tolerant(
    deserialize: Deserializer, method: str, request: Descriptor, malformed: MalformedLog
) -> Deserializer:
    """`deserialize`, answering an `Undecodable` instead of raising."""
    message_type = request.full_name

    def deserializer(data: bytes) -> Any:
        try:
            return deserialize(data)
        except Exception:  # protobuf's DecodeError: whatever is wrong, the bytes are not this message
            field = undecodable_field(request, data)
            malformed(method, len(data), field)
            return Undecodable(message_type, field)

    return deserializer


class _Call(grpc.HandlerCallDetails):
    def __init__(self, method: str) -> None:
        self.method = method
        self.invocation_metadata = ()


def tolerant_handlers(
    handlers: Sequence[grpc.GenericRpcHandler], services: Collection[str], malformed: MalformedLog
) -> list[grpc.GenericRpcHandler]:
    """The handlers, those of `services` (whose servicers are guarded) with tolerant deserializers.

    Built once from each method's handler, looked up by the names the service descriptor gives, so
    the lookup per call is the same dictionary as before. Requests that stream in are left as they are:
    the guard sees only the first argument (the hub serves none).
    """
    pool = descriptor_pool.Default()
    out: list[grpc.GenericRpcHandler] = []
    for handler in handlers:
        name = handler.service_name() if isinstance(handler, grpc.ServiceRpcHandler) else None
        if name is None or name not in services:
            out.append(handler)
            continue
        service = pool.FindServiceByName(name)
        methods = {}
        for method in service.methods:
            path = f"/{service.full_name}/{method.name}"
            found = handler.service(_Call(path))
            if found is not None:
                methods[method.name] = _tolerant_method(found, path, method.input_type, malformed)
        out.append(grpc.method_handlers_generic_handler(service.full_name, methods))
    return out


def _tolerant_method(
    found: grpc.RpcMethodHandler, path: str, request: Descriptor, malformed: MalformedLog
) -> grpc.RpcMethodHandler:
    if found.request_streaming or found.request_deserializer is None:
        return found
    deserializer = tolerant(found.request_deserializer, path, request, malformed)
    if found.response_streaming and found.unary_stream is not None:
        return grpc.unary_stream_rpc_method_handler(
            found.unary_stream, deserializer, found.response_serializer
        )
    if found.unary_unary is not None:
        return grpc.unary_unary_rpc_method_handler(found.unary_unary, deserializer, found.response_serializer)
    return found
