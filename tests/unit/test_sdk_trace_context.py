"""The SDK carries the caller's trace context (W3C traceparent in gRPC metadata) and needs only
opentelemetry-api: nothing of opentelemetry-sdk is imported by onecard_client."""

from __future__ import annotations

import subprocess
import sys

from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider

from onecard_client.tracing import tap_span, with_trace_context

IDENTITY = (("onecard-terminal-id", "T-1"),)


def test_no_span_no_metadata_added() -> None:
    assert with_trace_context(IDENTITY) is IDENTITY
    with tap_span("tap") as span:  # no SDK set up globally: a stand-in
        assert not span.is_recording()
        assert with_trace_context(IDENTITY) is IDENTITY


def test_the_current_span_goes_as_traceparent() -> None:
    provider = TracerProvider()
    with provider.get_tracer("test").start_as_current_span("tap") as span:
        metadata = dict(with_trace_context(IDENTITY))
    context = span.get_span_context()
    trace_id, span_id = trace.format_trace_id(context.trace_id), trace.format_span_id(context.span_id)
    assert metadata["onecard-terminal-id"] == "T-1"
    assert metadata["traceparent"].startswith(f"00-{trace_id}-{span_id}-")  # then the flags
    provider.shutdown()


def test_the_sdk_imports_no_opentelemetry_sdk() -> None:
    code = (
        "import sys, onecard_client, onecard_client.sync, onecard_client.tracing\n"
        "from onecard_client import TerminalClient, CardOfficeClient, FundsClient\n"
        "loaded = sorted(m for m in sys.modules if m.startswith('opentelemetry.sdk') or m == 'onecard_hub')\n"
        "print(loaded)\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "[]", done.stdout
