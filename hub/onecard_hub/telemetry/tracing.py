"""Traces of the hub (OpenTelemetry SDK): where spans go, and the hub's own child spans.

Spans go to an OTLP collector over gRPC (`OTEL_TRACES_EXPORTER=otlp`), to a local JSON-lines file
(`--trace-file PATH`: one finished span a line, as the SDK serializes it, `ReadableSpan.to_json`),
or both. The config object (config.py) decides whether and where; the SDK itself reads the rest of
its standard variables when the provider and the exporter are made: OTEL_TRACES_SAMPLER and
OTEL_TRACES_SAMPLER_ARG (the sampler), OTEL_RESOURCE_ATTRIBUTES, OTEL_EXPORTER_OTLP_(TRACES_)HEADERS,
_CERTIFICATE, _COMPRESSION, _TIMEOUT, _INSECURE, OTEL_BSP_* (the batch processor), OTEL_SPAN_*_LIMIT.

Each hub has its own TracerProvider (the global one is left alone: a process may hold several hubs,
as the tests do). Spans, below the RPC's SERVER span (telemetry/rpc.py):

- `decide` (Authorize's decision from memory): `onecard.school`, `onecard.scene`, `onecard.decision`,
  `onecard.decline_reason`;
- `journal commit` (the group commit that made the call's rows durable, one per call in it):
  `onecard.journal.batch_rows`, the commit's rows;
- a CLIENT span per bank call (telemetry/bank.py): `rpc.*`, `onecard.bank`, `onecard.bank.outcome`.

No attribute carries a card number, an ID number, a name or a PIN.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from pathlib import Path
from typing import IO, TYPE_CHECKING

from opentelemetry import trace
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter, SpanExportResult

from onecard_hub.domain.model import Scene

if TYPE_CHECKING:
    from onecard_hub.config import HubConfig
    from onecard_hub.domain.campus import Campus, Tap, TapResult

INSTRUMENTATION = "onecard_hub"


class JsonLinesSpanExporter(SpanExporter):
    """Finished spans, one JSON document a line (the SDK's own serialization), appended to a file."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self._out: IO[str] | None = path.open("a", encoding="utf-8")
        self._lock = threading.Lock()

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        text = "".join(span.to_json(indent=None) + "\n" for span in spans)
        with self._lock:
            if self._out is None:
                return SpanExportResult.FAILURE
            self._out.write(text)
            self._out.flush()
        return SpanExportResult.SUCCESS

    def shutdown(self) -> None:
        with self._lock:
            if self._out is not None:
                self._out.close()
                self._out = None

    def force_flush(self, timeout_millis: int = 30_000) -> bool:
        return True


def tracer_provider(config: HubConfig) -> TracerProvider | None:
    """The hub's provider with its exporters (batched, off the event loop), or None: tracing off."""
    if config.trace_file is None and not config.otlp_traces:
        return None
    provider = TracerProvider(
        resource=Resource.create({"service.name": config.service_name}), shutdown_on_exit=False
    )
    if config.trace_file is not None:
        provider.add_span_processor(BatchSpanProcessor(JsonLinesSpanExporter(config.trace_file)))
    if config.otlp_traces:
        from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter

        exporter = OTLPSpanExporter(endpoint=config.otlp_endpoint or None)
        provider.add_span_processor(BatchSpanProcessor(exporter))
    return provider


def traced_decision(tracer: trace.Tracer, campus: Campus, tap: Tap, now_ms: int) -> TapResult:
    """`campus.authorize(tap, now_ms)` inside a `decide` span (tracing on) when the call's own span
    is recorded; a call sampled out pays one check."""
    parent = trace.get_current_span()
    if not parent.is_recording():
        return campus.authorize(tap, now_ms)
    span = tracer.start_span("decide", context=trace.set_span_in_context(parent))
    try:
        result = campus.authorize(tap, now_ms)
        span.set_attributes(
            {
                "onecard.school": tap.terminal.school_id,
                "onecard.scene": Scene(tap.scene).name.lower(),
                "onecard.decision": "approved" if result.approved else "declined",
                "onecard.decline_reason": "" if result.approved else result.reason.name,
            }
        )
        return result
    finally:
        span.end()
