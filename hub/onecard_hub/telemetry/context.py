"""The current trace, as the hub's logs and error answers quote it (OpenTelemetry's API only).

Cheap and safe without tracing: with no span recording, `current_trace_id` is "" and
`log_fields` adds nothing.
"""

from __future__ import annotations

from opentelemetry import trace


def current_trace_id() -> str:
    """The trace id (32 hex digits) of the span being recorded in this context, or ""."""
    span = trace.get_current_span()
    if not span.is_recording():
        return ""
    return trace.format_trace_id(span.get_span_context().trace_id)


def log_fields() -> dict[str, str]:
    """`trace_id` and `span_id` of the current span for a JSON log line; {} outside a valid span."""
    context = trace.get_current_span().get_span_context()
    if not context.is_valid:
        return {}
    return {
        "trace_id": trace.format_trace_id(context.trace_id),
        "span_id": trace.format_span_id(context.span_id),
    }
