"""The provincial card system simulator in-process: its answers, its errors (ErrorInfo domain
"onecard.cardsys"), its stream's pages and faults; and the hub's `--cardsys` setting."""

from __future__ import annotations

import argparse
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import grpc
import pytest
from google.rpc import error_details_pb2
from grpc_status import rpc_status

from onecard.cardsys.v1 import card_system_service_pb2 as pb
from onecard.cardsys.v1 import card_system_service_pb2_grpc as pb_grpc
from onecard_hub.config import add_serve_flags, config_from
from onecard_sim.cardsys import CardsysClient, RunningCardsys, running_cardsys
from onecard_sim.cardsys.server import PAGE


@pytest.fixture
async def sim(tmp_path: Path) -> AsyncIterator[tuple[RunningCardsys, CardsysClient, Any]]:
    async with (
        running_cardsys(tmp_path / "cs.db", heartbeat_s=0.1) as running,
        CardsysClient(running.target) as client,
        grpc.aio.insecure_channel(running.target) as channel,
    ):
        yield running, client, pb_grpc.CardSystemServiceStub(channel)


def error_info(exc: grpc.aio.AioRpcError) -> error_details_pb2.ErrorInfo:
    status = rpc_status.from_call(exc)  # type: ignore[arg-type]
    assert status is not None and len(status.details) == 1
    info = error_details_pb2.ErrorInfo()
    status.details[0].Unpack(info)
    assert info.domain == "onecard.cardsys"
    return info


async def test_record_is_idempotent_and_versions_grow(sim: tuple[RunningCardsys, CardsysClient, Any]) -> None:
    _, client, _ = sim
    first = await client.record_change("A00000001", "identity", "loss", request_id="w-1", at_ms=1_000)
    again = await client.record_change("A00000001", "identity", "loss", request_id="w-1", at_ms=1_000)
    second = await client.record_change("A00000001", "bank", "freeze")
    assert (first.version, again.version, second.version) == (1, 1, 2)
    assert first.occurred_at.ToMilliseconds() == 1_000
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await client.record_change("A00000001", "identity", "unlock", request_id="w-1")
    assert caught.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert error_info(caught.value).reason == "IDEMPOTENCY_KEY_REUSED"
    status = await client.get_status("A00000001")
    assert (status.identity_status, status.bank_status) == (pb.IDENTITY_STATUS_LOST, pb.BANK_STATUS_FROZEN)
    assert (status.last_version, status.head_version) == (2, 2)


async def test_bad_changes_are_refused_and_nothing_follows_a_cancellation(
    sim: tuple[RunningCardsys, CardsysClient, Any],
) -> None:
    _, client, _ = sim
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await client.record_change("A00000002", "identity", "freeze")
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert error_info(caught.value).metadata["field"] == "action"
    await client.record_change("A00000002", "identity", "cancel")
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await client.record_change("A00000002", "bank", "loss")
    assert caught.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    info = error_info(caught.value)
    assert (info.reason, info.metadata["state"]) == ("ILLEGAL_TRANSITION", "cancelled")
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await client.get_status("A00000099")
    assert caught.value.code() == grpc.StatusCode.NOT_FOUND
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await client.set_faults(drop_every_s=-1)
    assert error_info(caught.value).metadata["field"] == "drop_every_s"


async def test_the_stream_sends_the_backlog_in_pages_then_live_changes(
    sim: tuple[RunningCardsys, CardsysClient, Any],
) -> None:
    _, client, stub = sim
    for n in range(PAGE + 30):
        await client.record_change(f"B{n:08d}", "bank", "activate")
    call = stub.WatchChanges(pb.WatchChangesRequest(since_version=10))
    first = await call.read()
    second = await call.read()
    assert [c.version for c in first.changes] == list(range(11, 11 + PAGE))
    assert [c.version for c in second.changes] == list(range(11 + PAGE, PAGE + 31))
    assert first.head_version == PAGE + 30
    live = await client.record_change("C00000001", "identity", "loss", "hotline")
    while True:  # heartbeats may come first
        message = await call.read()
        if message.changes:
            break
    assert [c.version for c in message.changes] == [live.version]
    assert message.changes[0].channel == pb.CHANNEL_HOTLINE
    call.cancel()


async def test_an_up_to_date_subscriber_hears_at_once_and_faults_end_streams(
    sim: tuple[RunningCardsys, CardsysClient, Any],
) -> None:
    running, client, stub = sim
    call = stub.WatchChanges(pb.WatchChangesRequest(since_version=0))
    hello = await call.read()
    assert not hello.changes and hello.head_version == 0
    answer = await client.set_faults(drop_now=True, refuse_for_s=60)
    assert answer.dropped == 1
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await call.read()
    assert caught.value.code() == grpc.StatusCode.UNAVAILABLE
    refused = stub.WatchChanges(pb.WatchChangesRequest(since_version=0))
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await refused.read()
    assert caught.value.code() == grpc.StatusCode.UNAVAILABLE
    await client.set_faults()  # the plan cleared: streams are welcome again
    again = stub.WatchChanges(pb.WatchChangesRequest(since_version=0))
    assert (await again.read()).head_version == 0
    again.cancel()
    bad = stub.WatchChanges(pb.WatchChangesRequest(since_version=-1))
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await bad.read()
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert running.servicer.faults.drops == 1


def test_the_hub_follows_the_system_named_by_flag_or_variable() -> None:
    parser = argparse.ArgumentParser()
    add_serve_flags(parser)
    args = parser.parse_args(["--db", "x.db"])
    assert config_from(args, {}).cardsys == ""
    assert config_from(args, {"ONECARD_CARDSYS": "10.0.0.5:50071"}).cardsys == "10.0.0.5:50071"
    flagged = parser.parse_args(["--db", "x.db", "--cardsys", "127.0.0.1:50071"])
    assert config_from(flagged, {"ONECARD_CARDSYS": "10.0.0.5:50071"}).cardsys == "127.0.0.1:50071"
