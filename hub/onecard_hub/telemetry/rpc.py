"""Metrics and spans of every RPC the hub serves, recorded where each servicer method is wrapped anyway.

The hub has no server interceptor on its hot path: `api/errors.guard_servicer` wraps every RPC method
of the hub's servicers once, when they are registered. With metrics or tracing on, it hands each
guarded method to `RpcTelemetry.observe`, which wraps it once more (one coroutine frame, about 0.1 µs);
with both off nothing is wrapped and nothing runs per call.

Metrics are the names and labels of the common gRPC Prometheus interceptors (go-grpc-prometheus,
py-grpc-prometheus), so existing dashboards work: `grpc_server_started_total`,
`grpc_server_handled_total` (with `grpc_code`), `grpc_server_handling_seconds` (a histogram),
`grpc_server_msg_received_total`, `grpc_server_msg_sent_total`, each by `grpc_type`, `grpc_service`,
`grpc_method`. `grpc_code` takes Go's names for the codes (`OK`, `NotFound`, `Unavailable`, …), as
those dashboards and alert rules expect.

A call adds to plain integers on the event loop (no lock, no label lookup, no object made but the
integers themselves); `GrpcCollector` turns them into metric families when /metrics is scraped, on
the metrics server's thread. It reads only ints, floats and copies made in one C call, so what the
loop changes meanwhile can at worst be a call early or late.

With tracing on, each call is a SERVER span named `<service>/<method>` with the OpenTelemetry RPC
attributes (`rpc.system`, `rpc.service`, `rpc.method`, `rpc.grpc.status_code`), the child of the
caller's span when the call carries W3C trace context (`traceparent` metadata); the span is current
while the servicer runs, so the decision, the journal commit, bank calls and log lines hang under it.
"""

from __future__ import annotations

import asyncio
import functools
import sys
from bisect import bisect_left
from collections.abc import AsyncGenerator, Awaitable, Callable, Iterable, Sequence
from time import perf_counter
from typing import Any, cast

import grpc
from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.propagators.textmap import Getter
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator
from prometheus_client.metrics_core import CounterMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.registry import Collector
from prometheus_client.utils import floatToGoString

# Upper bounds of grpc_server_handling_seconds: from half a millisecond (a decision from memory)
# to 10 s; a WatchBlocklist stream, open for hours, lands in +Inf.
BOUNDS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
_LE = (*(floatToGoString(b) for b in BOUNDS), "+Inf")
LABELS = ("grpc_type", "grpc_service", "grpc_method")
UNARY = "unary"
SERVER_STREAM = "server_stream"

S = grpc.StatusCode
# The values go-grpc-prometheus gives grpc_code: Go's codes.Code.String().
GRPC_CODES: dict[grpc.StatusCode, str] = {
    S.OK: "OK",
    S.CANCELLED: "Canceled",
    S.UNKNOWN: "Unknown",
    S.INVALID_ARGUMENT: "InvalidArgument",
    S.DEADLINE_EXCEEDED: "DeadlineExceeded",
    S.NOT_FOUND: "NotFound",
    S.ALREADY_EXISTS: "AlreadyExists",
    S.PERMISSION_DENIED: "PermissionDenied",
    S.RESOURCE_EXHAUSTED: "ResourceExhausted",
    S.FAILED_PRECONDITION: "FailedPrecondition",
    S.ABORTED: "Aborted",
    S.OUT_OF_RANGE: "OutOfRange",
    S.UNIMPLEMENTED: "Unimplemented",
    S.INTERNAL: "Internal",
    S.UNAVAILABLE: "Unavailable",
    S.DATA_LOSS: "DataLoss",
    S.UNAUTHENTICATED: "Unauthenticated",
}
# A server span's status is ERROR for these codes only (OpenTelemetry's RPC conventions): the others
# are the caller's doing, and a decline is not even an error.
SERVER_ERRORS = frozenset(
    {S.UNKNOWN, S.DEADLINE_EXCEEDED, S.UNIMPLEMENTED, S.INTERNAL, S.UNAVAILABLE, S.DATA_LOSS}
)

Behavior = Callable[[Any, grpc.aio.ServicerContext], Awaitable[Any]]
StreamBehavior = Callable[[Any, grpc.aio.ServicerContext], AsyncGenerator[Any, None]]


class MethodStats:
    """One RPC method's counts, kept by its wrapper on the event loop."""

    __slots__ = ("buckets", "failed", "labels", "ok", "seconds", "sent", "started", "streaming")

    def __init__(self, service: str, method: str, streaming: bool) -> None:
        self.streaming = streaming
        self.labels = (SERVER_STREAM if streaming else UNARY, service, method)
        self.started = 0
        self.ok = 0
        self.failed: dict[grpc.StatusCode, int] = {}
        self.buckets = [0] * (len(BOUNDS) + 1)  # per bucket, not cumulative: the last is +Inf
        self.seconds = 0.0
        self.sent = 0  # messages a stream sent (a unary call sends one when it ends OK)

    def ended(self, code: grpc.StatusCode, elapsed: float) -> None:
        self.buckets[bisect_left(BOUNDS, elapsed)] += 1
        self.seconds += elapsed
        if code is S.OK:
            self.ok += 1
        else:
            self.failed[code] = self.failed.get(code, 0) + 1


def service_name(servicer_base: type) -> str:
    """The full gRPC service name of a generated `*Servicer` class, from its module's descriptor."""
    pb2 = sys.modules[servicer_base.__module__.removesuffix("_grpc")]
    name = servicer_base.__name__.removesuffix("Servicer")
    full_name: str = pb2.DESCRIPTOR.services_by_name[name].full_name
    return full_name


def code_of(exc: BaseException, context: grpc.aio.ServicerContext) -> grpc.StatusCode:
    """The status a call ended with when its handler raised."""
    if isinstance(exc, asyncio.CancelledError | GeneratorExit):  # GeneratorExit: a stream closed early
        return S.CANCELLED
    if isinstance(exc, grpc.aio.AbortError):  # the guard (or the servicer) set the status
        code = context.code()
        return code if isinstance(code, grpc.StatusCode) else S.UNKNOWN
    return S.UNKNOWN


class _MetadataGetter(Getter[Sequence[tuple[str, Any]] | None]):
    """W3C trace context out of gRPC's invocation metadata (a sequence of (key, value))."""

    def get(self, carrier: Sequence[tuple[str, Any]] | None, key: str) -> list[str] | None:
        if not carrier:
            return None
        found = [value for name, value in carrier if name == key and isinstance(value, str)]
        return found or None

    def keys(self, carrier: Sequence[tuple[str, Any]] | None) -> list[str]:
        return [name for name, _ in carrier] if carrier else []


_GETTER = _MetadataGetter()
# Only W3C trace context is taken from a caller: no baggage from a terminal enters the hub.
_PROPAGATOR = TraceContextTextMapPropagator()


def caller_context(context: grpc.aio.ServicerContext) -> otel_context.Context:
    """The caller's trace context from the call's metadata; an empty one (a new trace) without it."""
    metadata = cast(Sequence[tuple[str, Any]] | None, context.invocation_metadata())
    return _PROPAGATOR.extract(metadata, getter=_GETTER)


def end_span(span: trace.Span, code: grpc.StatusCode) -> None:
    span.set_attribute("rpc.grpc.status_code", code.value[0])
    if code in SERVER_ERRORS:
        span.set_status(trace.Status(trace.StatusCode.ERROR, GRPC_CODES.get(code, code.name)))
    span.end()


class RpcTelemetry:
    """Wraps guarded servicer methods: counts (when `methods` is a list) and spans (with a tracer)."""

    def __init__(self, methods: list[MethodStats] | None, tracer: trace.Tracer | None) -> None:
        self.methods = methods
        self.tracer = tracer

    def observe(self, guarded: Any, servicer_base: type, name: str, streaming: bool) -> Any:
        """api/errors.guard_servicer's `observe`: what gRPC calls instead of `guarded`."""
        service = service_name(servicer_base)
        stats = None
        if self.methods is not None:
            stats = MethodStats(service, name, streaming)
            self.methods.append(stats)
        if self.tracer is not None:
            span_name = f"{service}/{name}"
            attributes = {"rpc.system": "grpc", "rpc.service": service, "rpc.method": name}
            if streaming:
                return _traced_stream(guarded, stats, self.tracer, span_name, attributes)
            return _traced_unary(guarded, stats, self.tracer, span_name, attributes)
        assert stats is not None  # neither metrics nor tracing: guard_servicer gets no observe at all
        return _counted_stream(guarded, stats) if streaming else _counted_unary(guarded, stats)


def _counted_unary(behavior: Behavior, stats: MethodStats) -> Behavior:
    buckets = stats.buckets

    @functools.wraps(behavior)
    async def counted(request: Any, context: grpc.aio.ServicerContext) -> Any:
        stats.started += 1
        start = perf_counter()
        try:
            response = await behavior(request, context)
        except BaseException as exc:
            stats.ended(code_of(exc, context), perf_counter() - start)
            raise
        elapsed = perf_counter() - start
        buckets[bisect_left(BOUNDS, elapsed)] += 1
        stats.seconds += elapsed
        stats.ok += 1
        return response

    return counted


def _counted_stream(behavior: StreamBehavior, stats: MethodStats) -> StreamBehavior:
    @functools.wraps(behavior)
    async def counted(request: Any, context: grpc.aio.ServicerContext) -> AsyncGenerator[Any, None]:
        stats.started += 1
        start = perf_counter()
        code = S.OK
        stream = behavior(request, context)
        try:
            async for message in stream:
                stats.sent += 1
                yield message
        except BaseException as exc:
            code = code_of(exc, context)
            raise
        finally:
            await stream.aclose()  # at once, not when collected: a blocklist stream leaves its feed now
            stats.ended(code, perf_counter() - start)

    return counted


def _traced_unary(
    behavior: Behavior,
    stats: MethodStats | None,
    tracer: trace.Tracer,
    name: str,
    attributes: dict[str, str],
) -> Behavior:
    server = trace.SpanKind.SERVER

    @functools.wraps(behavior)
    async def traced(request: Any, context: grpc.aio.ServicerContext) -> Any:
        if stats is not None:
            stats.started += 1
        span = tracer.start_span(name, context=caller_context(context), kind=server, attributes=attributes)
        token = otel_context.attach(trace.set_span_in_context(span))
        start = perf_counter()
        code = S.OK
        try:
            return await behavior(request, context)
        except BaseException as exc:
            code = code_of(exc, context)
            raise
        finally:
            elapsed = perf_counter() - start
            otel_context.detach(token)
            end_span(span, code)
            if stats is not None:
                stats.ended(code, elapsed)

    return traced


def _traced_stream(
    behavior: StreamBehavior,
    stats: MethodStats | None,
    tracer: trace.Tracer,
    name: str,
    attributes: dict[str, str],
) -> StreamBehavior:
    server = trace.SpanKind.SERVER

    @functools.wraps(behavior)
    async def traced(request: Any, context: grpc.aio.ServicerContext) -> AsyncGenerator[Any, None]:
        if stats is not None:
            stats.started += 1
        span = tracer.start_span(name, context=caller_context(context), kind=server, attributes=attributes)
        start = perf_counter()
        code = S.OK
        sent = 0
        stream = behavior(request, context)
        try:
            # Current only while the handler runs, never across a yield: the caller of the generator
            # (gRPC) may resume it in another context.
            while True:
                token = otel_context.attach(trace.set_span_in_context(span))
                try:
                    message = await anext(stream)
                except StopAsyncIteration:
                    break
                finally:
                    otel_context.detach(token)
                sent += 1
                if stats is not None:
                    stats.sent += 1
                yield message
        except BaseException as exc:
            code = code_of(exc, context)
            raise
        finally:
            await stream.aclose()
            span.set_attribute("onecard.messages_sent", sent)
            end_span(span, code)
            if stats is not None:
                stats.ended(code, perf_counter() - start)

    return traced


class GrpcCollector(Collector):
    """The gRPC server metric families, made from every observed method's counts at scrape time.
    A method appears once it was called."""

    def __init__(self, methods: list[MethodStats]) -> None:
        self._methods = methods

    def collect(self) -> Iterable[Metric]:
        started = CounterMetricFamily("grpc_server_started", "RPCs started on the server.", labels=LABELS)
        handled = CounterMetricFamily(
            "grpc_server_handled",
            "RPCs completed on the server, whatever their status.",
            labels=(*LABELS, "grpc_code"),
        )
        seconds = HistogramMetricFamily(
            "grpc_server_handling_seconds",
            "Time from the start of an RPC to its end on the server (a stream: its whole life).",
            labels=LABELS,
        )
        received = CounterMetricFamily(
            "grpc_server_msg_received", "Request messages received on the server.", labels=LABELS
        )
        sent = CounterMetricFamily(
            "grpc_server_msg_sent", "Response messages sent by the server.", labels=LABELS
        )
        for stats in list(self._methods):
            count = stats.started
            if not count:
                continue
            labels = list(stats.labels)
            ok, failed, buckets = stats.ok, dict(stats.failed), list(stats.buckets)
            started.add_metric(labels, count)
            received.add_metric(labels, count)
            sent.add_metric(labels, stats.sent if stats.streaming else ok)
            handled.add_metric([*labels, "OK"], ok)
            for code, n in failed.items():
                handled.add_metric([*labels, GRPC_CODES.get(code, code.name)], n)
            cumulative, total = [], 0
            for le, n in zip(_LE, buckets, strict=True):
                total += n
                cumulative.append((le, float(total)))
            seconds.add_metric(labels, cumulative, sum_value=stats.seconds)
        return [started, handled, seconds, received, sent]
