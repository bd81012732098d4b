"""Trace context for the hub: every call of the SDK carries the caller's current span to the hub as W3C
`traceparent` (and `tracestate`) gRPC metadata, through OpenTelemetry's propagator, so the hub's span
of that call — and its decision and journal commit — join the caller's trace.

Only `opentelemetry-api` is used: the SDK never needs `opentelemetry-sdk`. Without a span — no
OpenTelemetry SDK set up in the caller's process, or no span current — nothing is added and no
allocation is made. The propagator is the API's global one (W3C trace context and baggage unless
OTEL_PROPAGATORS says otherwise).

    from opentelemetry import trace
    with trace.get_tracer("my-terminal").start_as_current_span("tap"):
        await terminal.authorize(request)   # the hub's span is a child of "tap"

`tap_span(name)` is that span for the simulators and load tests (a CLIENT span; a no-op span without
an SDK).
"""

from __future__ import annotations

from contextlib import AbstractContextManager, nullcontext

from opentelemetry import propagate, trace

from onecard_client._channel import Metadata

__all__ = ["tap_span", "with_trace_context"]

_tracer = trace.get_tracer("onecard_client")


def with_trace_context(metadata: Metadata) -> Metadata:
    """`metadata` plus the current span's trace context; `metadata` itself when no span is current."""
    if not trace.get_current_span().get_span_context().is_valid:
        return metadata
    carrier: dict[str, str] = {}
    propagate.inject(carrier)
    return metadata + tuple(carrier.items())


def tap_span(name: str, attributes: dict[str, str] | None = None) -> AbstractContextManager[trace.Span]:
    """A CLIENT span around one call (made current), for a terminal's tap or a load test's call; with no
    OpenTelemetry SDK set up in this process, a do-nothing stand-in that costs almost nothing."""
    if isinstance(trace.get_tracer_provider(), _NO_PROVIDER):
        return _NO_SPAN
    return _tracer.start_as_current_span(name, kind=trace.SpanKind.CLIENT, attributes=attributes)


_NO_PROVIDER = (trace.ProxyTracerProvider, trace.NoOpTracerProvider)
_NO_SPAN = nullcontext(trace.INVALID_SPAN)
