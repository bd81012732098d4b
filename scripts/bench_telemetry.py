"""What telemetry adds to one call, in CPU microseconds: a micro-benchmark of the recording path alone.

The same do-nothing servicer method, guarded as the hub guards it (`api/errors._guard`), is called
`--calls` times (default 200,000) each way, its coroutine driven without an event loop so that only
the wrappers are measured:

- `guard`: telemetry off (what the hub runs without --metrics-listen and without tracing);
- `metrics`: + telemetry/rpc.py's counting wrapper (grpc_server_* metrics);
- `tap count`: + a durable tap counted for onecard_authorizations_total (the journal listener, per row);
- `tracing, 1% sampled`: tracing on with OTEL_TRACES_SAMPLER=traceidratio and 0.01, a caller that
  sends no trace context: what 99 calls in 100 cost;
- `tracing`: + the SERVER span of every call (the caller's trace context read from metadata);
- `tracing + JSON export`: the same, each span also serialized to JSON lines (to /dev/null) in the
  call, which with --trace-file happens on the batch processor's thread (the same core) instead;
- `a child span`: one more span under a recorded one (Authorize has two: decide, journal commit).

Prints µs per call, best of `--repeat` (5) runs; the differences to `guard` are telemetry's cost.
`make bench` measures the whole hub with metrics on and off (`--metrics`, `--tracing`).

    .venv/bin/python scripts/bench_telemetry.py
"""

from __future__ import annotations

import argparse
import gc
import time
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any

import grpc
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.sampling import TraceIdRatioBased

from onecard.auth.v1 import authorization_service_pb2_grpc
from onecard_hub.api.errors import _guard
from onecard_hub.domain.campus import Campus
from onecard_hub.domain.ledger import Ledger
from onecard_hub.domain.model import Terminal, TerminalKind
from onecard_hub.store.records import Batch, RequestRow
from onecard_hub.telemetry.metrics import HubMetrics, JournalCounts
from onecard_hub.telemetry.rpc import RpcTelemetry
from onecard_hub.telemetry.tracing import JsonLinesSpanExporter

BASE = authorization_service_pb2_grpc.AuthorizationServiceServicer
TRACEPARENT = ("traceparent", "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01")


class _Context:
    """What a wrapper asks of grpc's ServicerContext on the path measured: the call's metadata."""

    def __init__(self, traced: bool = True) -> None:
        self._metadata = (
            (("onecard-terminal-id", "T-1"), TRACEPARENT) if traced else (("onecard-terminal-id", "T-1"),)
        )

    def invocation_metadata(self) -> tuple[tuple[str, str], ...]:
        return self._metadata

    def code(self) -> grpc.StatusCode:
        return grpc.StatusCode.OK


async def _servicer_method(request: object, context: object) -> object:
    return request


def _drive(method: Callable[[object, Any], Any], context: _Context) -> None:
    coroutine: Coroutine[Any, Any, object] = method(b"", context)
    try:
        coroutine.send(None)
    except StopIteration:
        return
    raise RuntimeError("the method awaited something")


def _per_call_us(call: Callable[[], None], calls: int, repeat: int) -> float:
    best = float("inf")
    for _ in range(repeat):
        gc.collect()
        started = time.process_time()
        for _ in range(calls):
            call()
        best = min(best, time.process_time() - started)
    return best / calls * 1e6


def _tap_counter() -> Callable[[], None]:
    """The journal listener's work for one durable tap (one request row in a batch)."""
    campus = Campus(Ledger(), lambda card_no, pin: b"")
    campus.terminals["T-1"] = Terminal("T-1", "school-1", TerminalKind.CANTEEN_POS, "", "", "M-1")
    hub: Any = type("HubLike", (), {"campus": campus})()
    counts = JournalCounts(hub, HubMetrics())
    row = RequestRow("T-1", "r-1", "Authorize", b"", b"", 0, scene=3, reason=0)
    batch = Batch(requests=[row])
    return lambda: counts(batch)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--calls", type=int, default=200_000)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args(argv)

    context = _Context()
    guarded = _guard(_servicer_method)
    metrics = HubMetrics()
    counted = RpcTelemetry(metrics.rpc_methods, None).observe(guarded, BASE, "Authorize", False)
    provider = TracerProvider(shutdown_on_exit=False)
    traced = RpcTelemetry(None, provider.get_tracer("bench")).observe(guarded, BASE, "Authorize", False)
    exporting = TracerProvider(shutdown_on_exit=False)
    exporting.add_span_processor(SimpleSpanProcessor(JsonLinesSpanExporter(Path("/dev/null"))))
    exported = RpcTelemetry(None, exporting.get_tracer("bench")).observe(guarded, BASE, "Authorize", False)
    sampling = TracerProvider(sampler=TraceIdRatioBased(0.01), shutdown_on_exit=False)
    sampled = RpcTelemetry(None, sampling.get_tracer("bench")).observe(guarded, BASE, "Authorize", False)
    untraced = _Context(traced=False)
    count_tap = _tap_counter()
    tracer = provider.get_tracer("bench")
    parent = tracer.start_span("rpc")
    under_parent = trace.set_span_in_context(parent)

    def child_span() -> None:
        tracer.start_span("decide", context=under_parent).end()

    def metrics_and_tap() -> None:
        _drive(counted, context)
        count_tap()

    cases: list[tuple[str, Callable[[], None]]] = [
        ("guard (telemetry off)", lambda: _drive(guarded, context)),
        ("guard + metrics", lambda: _drive(counted, context)),
        ("guard + metrics + tap count", metrics_and_tap),
        ("guard + tracing, 1% sampled", lambda: _drive(sampled, untraced)),
        ("guard + tracing (span made)", lambda: _drive(traced, context)),
        ("guard + tracing + JSON export", lambda: _drive(exported, context)),
        ("a child span", child_span),
    ]
    results = [(name, _per_call_us(call, args.calls, args.repeat)) for name, call in cases]
    base = results[0][1]
    print(f"{args.calls:,} calls, best of {args.repeat}; CPU µs per call")
    for name, us in results:
        print(f"  {name:<32} {us:7.2f} µs   (+{us - base:.2f})")
    parent.end()
    for made in (provider, exporting, sampling):
        made.shutdown()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
