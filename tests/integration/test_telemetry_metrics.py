"""/metrics of a real hub (--metrics-listen on 127.0.0.1:0), scraped over HTTP and parsed with
prometheus_client's parser: the gRPC server metrics count every call by method and code, taps by
school, scene, decision and reason, the journal's commits, the live blocklist's subscribers and
publish lag, the process; with telemetry off nothing wraps a call."""

from __future__ import annotations

import socket
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from onecard.auth.v1 import authorization_service_pb2 as pb
from onecard_client import CardOfficeClient, ClientConfig, TerminalClient, UnauthenticatedError
from onecard_client.campus import CampusCredentials
from onecard_hub.domain.clock import ManualClock
from onecard_hub.exit_codes import ExitCode, StartupError
from onecard_hub.server import RunningHub, running_hub
from tests.conftest import hub_config
from tests.helpers import Campus, name, new_request_id, until
from tests.integration.telemetry_helpers import scrape, value

ENTRY = pb.SCENE_GATE_ENTRY
AUTH = {"grpc_service": "onecard.auth.v1.AuthorizationService", "grpc_method": "Authorize"}
WATCH = {"grpc_service": "onecard.terminal.v1.TerminalService", "grpc_method": "WatchBlocklist"}


@pytest.fixture
async def metered(campus_dir: Path, clock: ManualClock) -> AsyncIterator[RunningHub]:
    async with running_hub(hub_config(campus_dir, metrics_listen="127.0.0.1:0"), clock) as running:
        yield running


def _url(hub: RunningHub) -> str:
    assert hub.telemetry is not None and hub.telemetry.metrics_url
    return hub.telemetry.metrics_url


async def test_calls_taps_journal_blocklist_and_process_are_counted(
    metered: RunningHub, creds: CampusCredentials, clock: ManualClock
) -> None:
    campus = Campus(creds, clock, metered.target)
    gate = campus.gate()
    school = campus.school()
    try:
        watcher = campus.client(gate).watch_blocklist(0)
        first = await anext(watcher)
        assert first.snapshot
        for skip in range(3):
            answer = await campus.send(campus.chip(campus.card(skip=skip), gate, ENTRY))
            assert answer.decision == pb.DECISION_APPROVED, name(answer.decline_reason)
        lost = await campus.send(campus.chip(campus.card(status="lost"), gate, ENTRY))
        assert name(lost.decline_reason) == "CARD_REPORTED_LOST"
        async with TerminalClient("no-such-terminal", ClientConfig(target=metered.target)) as stranger:
            with pytest.raises(UnauthenticatedError):
                await stranger.authorize(campus.chip(campus.card(skip=3), gate, ENTRY))
        async with CardOfficeClient("province-admin", ClientConfig(target=metered.target)) as office:
            await office.report_loss(new_request_id(), campus.card(skip=4).card_no)
        change = await anext(watcher)
        assert not change.snapshot and len(change.changes) == 1

        url = _url(metered)

        async def lag_observed() -> bool:
            return value(await scrape(url), "onecard_blocklist_publish_lag_seconds_count") == 1

        await until(lag_observed, "the blocklist change's publish lag is observed")
        text = await scrape(url)
        assert value(text, "grpc_server_started_total", grpc_type="unary", **AUTH) == 5
        assert value(text, "grpc_server_handled_total", grpc_code="OK", **AUTH) == 4
        assert value(text, "grpc_server_handled_total", grpc_code="Unauthenticated", **AUTH) == 1
        assert value(text, "grpc_server_handling_seconds_count", **AUTH) == 5
        assert value(text, "grpc_server_handling_seconds_bucket", le="+Inf", **AUTH) == 5
        assert value(text, "grpc_server_msg_received_total", **AUTH) == 5
        assert value(text, "grpc_server_msg_sent_total", **AUTH) == 4
        assert value(text, "grpc_server_started_total", grpc_type="server_stream", **WATCH) == 1
        assert value(text, "grpc_server_msg_sent_total", **WATCH) == 2

        approved = {"school": school, "scene": "gate_entry", "decision": "approved", "reason": ""}
        assert value(text, "onecard_authorizations_total", **approved) == 3
        declined = {"school": school, "scene": "gate_entry", "decision": "declined"}
        assert value(text, "onecard_authorizations_total", reason="CARD_REPORTED_LOST", **declined) == 1
        assert value(text, "onecard_authorizations_total") == 4  # the refused call decided nothing

        assert value(text, "onecard_journal_commit_seconds_count") >= 1
        assert value(text, "onecard_journal_batch_rows_sum") >= 5  # four taps, the loss report
        assert value(text, "onecard_journal_queue_limit_rows") == 20_000
        assert value(text, "onecard_journal_failed") == 0
        assert value(text, "onecard_blocklist_subscribers", school=school) == 1
        for process_metric in ("process_cpu_seconds_total", "process_resident_memory_bytes"):
            assert value(text, process_metric) > 0
        assert value(text, "process_open_fds") > 0
        assert value(text, "python_gc_collections_total") >= 0
        assert "python_info{" in text
    finally:
        await campus.close()


async def test_without_metrics_or_tracing_nothing_wraps_a_call(hub: RunningHub) -> None:
    telemetry = hub.telemetry
    assert telemetry is not None
    assert (telemetry.rpc, telemetry.metrics, telemetry.tracer, telemetry.metrics_url) == (
        None,
        None,
        None,
        "",
    )
    assert hub.hub.writer.telemetry is None and hub.hub.tracer is None and hub.hub.metrics is None
    assert hub.hub.blocklist_feed.watch is None
    servicer: Any = hub.servicers[0]
    assert servicer.Authorize.__wrapped__ == type(servicer).Authorize.__get__(servicer)  # the guard only


async def test_a_metrics_address_in_use_stops_the_start(campus_dir: Path, clock: ManualClock) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        config = hub_config(campus_dir, metrics_listen=f"127.0.0.1:{port}")
        with pytest.raises(StartupError) as refused:
            async with running_hub(config, clock):
                pass
    assert refused.value.code == ExitCode.CANNOT_LISTEN
    assert f"--metrics-listen 127.0.0.1:{port}" in str(refused.value)
