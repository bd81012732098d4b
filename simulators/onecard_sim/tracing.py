"""Traces of the simulated devices: `--trace-file PATH` (readers, pos) and `scenario --trace` set up
OpenTelemetry's SDK in this process, so each tap is a span (`tap <scene>`, in `SimTerminal.call`)
whose W3C trace context the SDK sends to the hub; the hub's spans of that call (with `--trace-file`
or OTLP) join the same trace, down to its journal commit.

Spans are appended to PATH, one JSON document a line, as the hub writes its own
(`onecard_hub.telemetry.tracing.JsonLinesSpanExporter`); the SDK reads its own OTEL_* variables (the
sampler, OTEL_RESOURCE_ATTRIBUTES, OTEL_BSP_*). Without it no span is made.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from opentelemetry import trace
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor

from onecard_hub.telemetry.tracing import JsonLinesSpanExporter

__all__ = ["traced_to"]


@contextmanager
def traced_to(path: Path | None, service_name: str = "onecard-sim") -> Iterator[None]:
    """Spans of this process go to `path` while inside (nothing happens for None); flushed at the end."""
    if path is None:
        yield
        return
    provider = TracerProvider(
        resource=Resource.create({"service.name": service_name}), shutdown_on_exit=False
    )
    provider.add_span_processor(BatchSpanProcessor(JsonLinesSpanExporter(path)))
    trace.set_tracer_provider(provider)
    try:
        yield
    finally:
        provider.shutdown()
