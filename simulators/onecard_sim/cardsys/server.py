"""`CardSystemService` served by the simulator: record changes, stream them, report status, faults.

Errors carry one google.rpc.ErrorInfo with domain "onecard.cardsys" (AIP-193), like the hub's.
A stream reads the store (the truth) from the version it last sent, page by page, so it can
neither skip nor repeat a change; a new change or a drop wakes it.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import NoReturn

import grpc
from google.protobuf import any_pb2, timestamp_pb2
from google.rpc import code_pb2, error_details_pb2, status_pb2
from grpc_status import rpc_status

from onecard.cardsys.v1 import card_system_service_pb2 as pb
from onecard.cardsys.v1 import card_system_service_pb2_grpc as pb_grpc
from onecard_sim.cardsys.faults import MAX_SECONDS, Faults, Subscriber
from onecard_sim.cardsys.rules import ChangeRequest, RuleError, check_card_no, check_change
from onecard_sim.cardsys.store import ChangeRow, ChangeStore, KeyReused

log = logging.getLogger(__name__)

ERROR_DOMAIN = "onecard.cardsys"
DEFAULT_LISTEN = "127.0.0.1:50071"
PAGE = 100  # changes per stream message


def _wall_ms() -> int:
    return time.time_ns() // 1_000_000


def _ts(ms: int) -> timestamp_pb2.Timestamp:
    ts = timestamp_pb2.Timestamp()
    ts.FromMilliseconds(ms)
    return ts


def change_message(row: ChangeRow) -> pb.Change:
    return pb.Change(
        version=row.version,
        card_no=row.card_no,
        function=row.function,  # type: ignore[arg-type]
        action=row.action,  # type: ignore[arg-type]
        channel=row.channel,  # type: ignore[arg-type]
        occurred_at=_ts(row.occurred_ms),
        recorded_at=_ts(row.recorded_ms),
    )


async def _abort(
    context: grpc.aio.ServicerContext, code: int, message: str, reason: str, **metadata: str
) -> NoReturn:
    info = error_details_pb2.ErrorInfo(reason=reason, domain=ERROR_DOMAIN, metadata=metadata)
    detail = any_pb2.Any()
    detail.Pack(info)
    status = rpc_status.to_status(status_pb2.Status(code=code, message=message, details=[detail]))
    await context.abort_with_status(status)
    raise AssertionError("unreachable")  # abort_with_status raises


async def _refuse(context: grpc.aio.ServicerContext, exc: RuleError) -> NoReturn:
    if exc.field:
        await _abort(context, code_pb2.INVALID_ARGUMENT, exc.message, exc.reason, field=exc.field)
    await _abort(context, code_pb2.FAILED_PRECONDITION, exc.message, exc.reason, state=exc.state)


class CardSystemServicer(pb_grpc.CardSystemServiceServicer):
    def __init__(
        self,
        store: ChangeStore,
        faults: Faults,
        *,
        heartbeat_s: float = 5.0,
        now_ms: Callable[[], int] = _wall_ms,
    ) -> None:
        self.store = store
        self.faults = faults
        self.heartbeat_s = heartbeat_s
        self.now_ms = now_ms

    async def WatchChanges(
        self, request: pb.WatchChangesRequest, context: grpc.aio.ServicerContext
    ) -> AsyncIterator[pb.WatchChangesResponse]:
        if request.since_version < 0:
            await _abort(
                context,
                code_pb2.INVALID_ARGUMENT,
                "since_version: negative",
                "FIELD_INVALID",
                field="since_version",
            )
        if self.faults.refusing():
            await _abort(
                context, code_pb2.UNAVAILABLE, "refused by fault injection; retry later", "UNAVAILABLE"
            )
        sub = Subscriber()
        self.faults.subscribers.add(sub)
        sent = request.since_version
        first = True
        try:
            while True:
                if sub.dropped:
                    await _abort(
                        context, code_pb2.UNAVAILABLE, "dropped by fault injection; reconnect", "UNAVAILABLE"
                    )
                sub.wake.clear()
                rows = await self.store.since(sent, PAGE)
                if rows or first:
                    first = False
                    sent = rows[-1].version if rows else sent
                    yield pb.WatchChangesResponse(
                        changes=[change_message(r) for r in rows], head_version=self.store.head
                    )
                    continue
                try:
                    await asyncio.wait_for(sub.wake.wait(), self.heartbeat_s)
                except TimeoutError:
                    yield pb.WatchChangesResponse(head_version=self.store.head)
        finally:
            self.faults.subscribers.discard(sub)

    async def RecordChange(
        self, request: pb.RecordChangeRequest, context: grpc.aio.ServicerContext
    ) -> pb.RecordChangeResponse:
        req = ChangeRequest(
            request.request_id,
            request.card_no,
            int(request.function),
            int(request.action),
            int(request.channel),
            request.at.ToMilliseconds() if request.HasField("at") else 0,
        )
        fingerprint = hashlib.sha256(request.SerializeToString(deterministic=True)).digest()[:16]
        try:
            check_change(req)
            row, new = await self.store.record(req, fingerprint, self.now_ms())
        except RuleError as exc:
            await _refuse(context, exc)
        except KeyReused:
            await _abort(
                context,
                code_pb2.FAILED_PRECONDITION,
                "request_id: used before with another body",
                "IDEMPOTENCY_KEY_REUSED",
            )
        if new:
            log.info(
                "change v%d: %s %s %s",
                row.version,
                pb.CardFunction.Name(row.function),  # type: ignore[arg-type]
                pb.ChangeAction.Name(row.action),  # type: ignore[arg-type]
                pb.Channel.Name(row.channel),  # type: ignore[arg-type]
            )
            self.faults.notify()
        return pb.RecordChangeResponse(change=change_message(row))

    async def GetStatus(
        self, request: pb.GetStatusRequest, context: grpc.aio.ServicerContext
    ) -> pb.GetStatusResponse:
        try:
            check_card_no(request.card_no)
        except RuleError as exc:
            await _refuse(context, exc)
        status = await self.store.status(request.card_no)
        if status is None:
            await _abort(
                context, code_pb2.NOT_FOUND, "card_no: no change recorded for this card", "NOT_FOUND"
            )
        return pb.GetStatusResponse(
            card_no=status.card_no,
            identity_status=status.identity_status,  # type: ignore[arg-type]
            bank_status=status.bank_status,  # type: ignore[arg-type]
            last_version=status.last_version,
            head_version=self.store.head,
        )

    async def SetFaults(
        self, request: pb.SetFaultsRequest, context: grpc.aio.ServicerContext
    ) -> pb.SetFaultsResponse:
        for name in ("drop_every_s", "refuse_for_s"):
            value = getattr(request, name)
            if not 0 <= value <= MAX_SECONDS:
                await _abort(
                    context,
                    code_pb2.INVALID_ARGUMENT,
                    f"{name}: 0 to {MAX_SECONDS:.0f}",
                    "FIELD_INVALID",
                    field=name,
                )
        dropped = self.faults.set_plan(
            drop_now=request.drop_now, drop_every_s=request.drop_every_s, refuse_for_s=request.refuse_for_s
        )
        return pb.SetFaultsResponse(dropped=dropped, open_streams=len(self.faults.subscribers) - dropped)


@dataclass
class RunningCardsys:
    server: grpc.aio.Server
    servicer: CardSystemServicer
    port: int

    @property
    def target(self) -> str:
        return f"127.0.0.1:{self.port}"


@asynccontextmanager
async def running_cardsys(
    db: str | Path,
    listen: str = "127.0.0.1:0",
    *,
    drop_every_s: float = 0.0,
    refuse_for_s: float = 0.0,
    heartbeat_s: float = 5.0,
    now_ms: Callable[[], int] = _wall_ms,
) -> AsyncIterator[RunningCardsys]:
    """Serves the simulator on `listen` (port 0 picks one) over the store at `db`; stops on exit."""
    store = ChangeStore(db)
    await store.open()
    faults = Faults()
    servicer = CardSystemServicer(store, faults, heartbeat_s=heartbeat_s, now_ms=now_ms)
    server = grpc.aio.server()
    pb_grpc.add_CardSystemServiceServicer_to_server(servicer, server)
    try:
        port = server.add_insecure_port(listen)
    except RuntimeError:
        await store.close()
        raise SystemExit(f"error: cannot listen on {listen}") from None
    await server.start()
    if drop_every_s or refuse_for_s:
        faults.set_plan(drop_now=False, drop_every_s=drop_every_s, refuse_for_s=refuse_for_s)
    try:
        yield RunningCardsys(server, servicer, port)
    finally:
        await faults.close()
        faults.drop_all()  # open streams end with UNAVAILABLE now, not after the grace period
        await server.stop(1.0)
        await store.close()
