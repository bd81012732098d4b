"""Helpers for the telemetry tests: scraping a running hub's /metrics and reading its values (parsed
with prometheus_client's own parser), reading a trace file, waiting for a count, and an OTLP
collector on 127.0.0.1 (OpenTelemetry's generated TraceService) that keeps what it is sent."""

from __future__ import annotations

import asyncio
import json
import urllib.request
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import grpc
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2, trace_service_pb2_grpc
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.samples import Sample

WAIT_S = 10.0


async def scrape(url: str) -> str:
    def get() -> str:
        with urllib.request.urlopen(url, timeout=10) as answer:
            text: str = answer.read().decode("utf-8")
            return text

    return await asyncio.to_thread(get)


def samples(text: str) -> list[Sample]:
    return [sample for family in text_string_to_metric_families(text) for sample in family.samples]


def value(text: str, name: str, **labels: str) -> float:
    """The sum of every sample `name` whose labels include `labels` (0 when there is none)."""
    return sum(
        s.value
        for s in samples(text)
        if s.name == name and all(s.labels.get(k) == v for k, v in labels.items())
    )


def read_spans(path: Path) -> list[dict[str, Any]]:
    """The spans of a JSON-lines trace file, one document a line."""
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def hex_id(value: int, digits: int) -> str:
    """A trace or span id as the SDK's JSON writes it ("0x…")."""
    return f"0x{value:0{digits}x}"


class _Collector(trace_service_pb2_grpc.TraceServiceServicer):
    def __init__(self) -> None:
        self.requests: list[trace_service_pb2.ExportTraceServiceRequest] = []

    async def Export(  # the generated name
        self,
        request: trace_service_pb2.ExportTraceServiceRequest,
        context: grpc.aio.ServicerContext[Any, Any],
    ) -> trace_service_pb2.ExportTraceServiceResponse:
        self.requests.append(request)
        return trace_service_pb2.ExportTraceServiceResponse()

    def span_names(self) -> list[str]:
        return [
            span.name
            for request in self.requests
            for resource in request.resource_spans
            for scope in resource.scope_spans
            for span in scope.spans
        ]


@asynccontextmanager
async def otlp_collector() -> AsyncIterator[tuple[str, _Collector]]:
    """An OTLP/gRPC trace collector on 127.0.0.1:<free port>; yields its endpoint URL and what it got."""
    server = grpc.aio.server()
    collector = _Collector()
    trace_service_pb2_grpc.add_TraceServiceServicer_to_server(collector, server)
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    try:
        yield f"http://127.0.0.1:{port}", collector
    finally:
        await server.stop(0)
