"""Traces of a real hub: a client span's trace id (sent by the SDK as W3C trace context) is the trace id
of the hub's RPC span and of its decision and journal-commit children in the trace file; the JSON log
lines of a traced call and an INTERNAL error's correlation id carry that trace id; spans reach an OTLP
collector (on 127.0.0.1) configured by the standard OTEL_* variables."""

from __future__ import annotations

import argparse
import io
import json
import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from google.rpc import error_details_pb2, status_pb2
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from onecard.auth.v1 import authorization_service_pb2 as pb
from onecard_client import FailedPreconditionError
from onecard_client.campus import CampusCredentials
from onecard_hub.api.errors import status_of
from onecard_hub.config import add_serve_flags, config_from
from onecard_hub.domain.clock import ManualClock
from onecard_hub.logs import JsonFormatter
from onecard_hub.server import running_hub
from tests.conftest import hub_config
from tests.helpers import Campus, name
from tests.integration.telemetry_helpers import hex_id, otlp_collector, read_spans

BUY = pb.SCENE_CANTEEN_PURCHASE
AUTHORIZE = "onecard.auth.v1.AuthorizationService/Authorize"


@pytest.fixture
def client_tracer() -> Iterator[tuple[trace.Tracer, InMemorySpanExporter]]:
    """The test plays a terminal with OpenTelemetry's SDK: its own provider (the global one is left alone)."""
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    yield provider.get_tracer("test-terminal"), exporter
    provider.shutdown()


@pytest.fixture
def json_log() -> Iterator[io.StringIO]:
    """The hub's log as JSON lines, formatted as each record is written (inside the call's context)."""
    out = io.StringIO()
    handler = logging.StreamHandler(out)
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger()
    level = root.level
    root.addHandler(handler)
    root.setLevel(logging.INFO)
    yield out
    root.removeHandler(handler)
    root.setLevel(level)


async def test_a_tap_is_one_trace_from_the_terminal_to_the_journal_commit(
    campus_dir: Path,
    clock: ManualClock,
    creds: CampusCredentials,
    client_tracer: tuple[trace.Tracer, InMemorySpanExporter],
) -> None:
    tracer, _ = client_tracer
    trace_file = campus_dir / "traces" / "hub.jsonl"
    async with running_hub(hub_config(campus_dir, trace_file=trace_file), clock) as running:
        campus = Campus(creds, clock, running.target)
        try:
            untraced = await campus.send(campus.chip(campus.card(skip=1), campus.pos(), BUY, amount_fen=800))
            assert untraced.decision == pb.DECISION_APPROVED
            with tracer.start_as_current_span("tap") as tap:
                answer = await campus.send(campus.chip(campus.card(), campus.pos(), BUY, amount_fen=800))
            assert answer.decision == pb.DECISION_APPROVED, name(answer.decline_reason)
        finally:
            await campus.close()
    # the hub stopped: its spans are flushed
    spans = read_spans(trace_file)
    tap_context = tap.get_span_context()
    trace_id = hex_id(tap_context.trace_id, 32)
    mine = [s for s in spans if s["context"]["trace_id"] == trace_id]
    rpc = next(s for s in mine if s["name"] == AUTHORIZE)
    assert rpc["kind"] == "SpanKind.SERVER"
    assert rpc["parent_id"] == hex_id(tap_context.span_id, 16)
    assert rpc["attributes"]["rpc.grpc.status_code"] == 0
    children = {s["name"]: s for s in mine if s["parent_id"] == rpc["context"]["span_id"]}
    assert set(children) == {"decide", "journal commit"}
    assert children["journal commit"]["attributes"]["onecard.journal.batch_rows"] >= 1
    assert children["decide"]["attributes"]["onecard.decision"] == "approved"
    assert children["decide"]["attributes"]["onecard.scene"] == "canteen_purchase"
    # the call without trace context started a trace of its own, with the same children
    others = [s for s in spans if s["name"] == AUTHORIZE and s["context"]["trace_id"] != trace_id]
    assert len(others) == 1 and others[0]["parent_id"] is None


async def test_log_lines_of_a_traced_call_carry_its_trace_id(
    campus_dir: Path,
    clock: ManualClock,
    creds: CampusCredentials,
    client_tracer: tuple[trace.Tracer, InMemorySpanExporter],
    json_log: io.StringIO,
) -> None:
    tracer, _ = client_tracer
    config = hub_config(campus_dir, trace_file=campus_dir / "hub-traces.jsonl")
    async with running_hub(config, clock) as running:
        campus = Campus(creds, clock, running.target)
        gate = campus.gate()
        try:
            first = campus.client(gate).watch_blocklist(0)
            await anext(first)
            with tracer.start_as_current_span("reconnect") as span:
                second = campus.client(gate).watch_blocklist(0)
                await anext(second)  # the hub logs that the first stream was replaced
            with pytest.raises(FailedPreconditionError):
                await anext(first)
            await second.aclose()  # type: ignore[attr-defined]
        finally:
            await campus.close()
    trace_id = trace.format_trace_id(span.get_span_context().trace_id)
    lines = [json.loads(line) for line in json_log.getvalue().splitlines()]
    replaced = [line for line in lines if "replaced by a new one" in line["msg"]]
    assert len(replaced) == 1
    assert replaced[0]["trace_id"] == trace_id and len(replaced[0]["span_id"]) == 16
    loaded = next(line for line in lines if line["msg"].startswith("hub state loaded"))
    assert "trace_id" not in loaded  # outside any call


def _correlation_id(status: Any) -> str:
    for key, value in status.trailing_metadata:
        if key == "grpc-status-details-bin":
            details = status_pb2.Status.FromString(value)
            info = error_details_pb2.ErrorInfo()
            assert details.details[0].Unpack(info)
            return str(info.metadata["correlation_id"])
    raise AssertionError("no ErrorInfo")


def test_an_internal_error_quotes_the_trace_id_when_traced(
    client_tracer: tuple[trace.Tracer, InMemorySpanExporter], json_log: io.StringIO
) -> None:
    tracer, _ = client_tracer
    with tracer.start_as_current_span("call") as span:
        traced = _correlation_id(status_of(RuntimeError("a bug")))
    assert traced == trace.format_trace_id(span.get_span_context().trace_id)
    untraced = _correlation_id(status_of(RuntimeError("a bug")))
    assert len(untraced) == 32 and untraced != traced
    logged = [json.loads(line) for line in json_log.getvalue().splitlines()]
    assert [line.get("trace_id") for line in logged] == [traced, None]
    assert [traced in line["msg"] for line in logged] == [True, False]


async def test_spans_go_to_an_otlp_collector_named_by_the_otel_variables(
    campus_dir: Path, clock: ManualClock, creds: CampusCredentials
) -> None:
    parser = argparse.ArgumentParser()
    add_serve_flags(parser)
    args = parser.parse_args(["--db", str(campus_dir / "hub.db"), "--listen", "127.0.0.1:0"])
    async with otlp_collector() as (endpoint, collector):
        env = {
            "OTEL_TRACES_EXPORTER": "otlp",
            "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": endpoint,
            "OTEL_SERVICE_NAME": "hub-under-test",
        }
        config = config_from(args, env)
        assert (config.otlp_traces, config.otlp_endpoint, config.trace_file) == (True, endpoint, None)
        async with running_hub(config, clock) as running:
            campus = Campus(creds, clock, running.target)
            try:
                answer = await campus.send(campus.chip(campus.card(), campus.gate(), pb.SCENE_GATE_ENTRY))
                assert answer.decision == pb.DECISION_APPROVED
            finally:
                await campus.close()
        # stopping the hub flushed its spans to the collector
        assert {AUTHORIZE, "decide", "journal commit"} <= set(collector.span_names())
        resource = collector.requests[0].resource_spans[0].resource
        service = [a.value.string_value for a in resource.attributes if a.key == "service.name"]
        assert service == ["hub-under-test"]
