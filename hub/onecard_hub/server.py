"""Serving the hub over gRPC: the servicers, health, reflection and a graceful stop."""

from __future__ import annotations

import asyncio
import gc
import logging
import signal
import sys
import traceback
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any, cast

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection

from onecard.admin.v1 import admin_service_pb2, admin_service_pb2_grpc
from onecard.auth.v1 import authorization_service_pb2, authorization_service_pb2_grpc
from onecard.cardoffice.v1 import card_office_service_pb2, card_office_service_pb2_grpc
from onecard.ecard.v1 import ecard_service_pb2, ecard_service_pb2_grpc
from onecard.exam.v1 import exam_service_pb2, exam_service_pb2_grpc
from onecard.funds.v1 import funds_service_pb2, funds_service_pb2_grpc
from onecard.grants.v1 import grant_service_pb2, grant_service_pb2_grpc
from onecard.library.v1 import library_service_pb2, library_service_pb2_grpc
from onecard.records.v1 import student_records_service_pb2, student_records_service_pb2_grpc
from onecard.settlement.v1 import settlement_service_pb2, settlement_service_pb2_grpc
from onecard.terminal.v1 import terminal_service_pb2
from onecard_hub.api.admin import AdminServicer
from onecard_hub.api.authorization import AuthorizationServicer
from onecard_hub.api.card_office import CardOfficeServicer
from onecard_hub.api.decoding import MalformedLog, tolerant_handlers
from onecard_hub.api.ecard import ECardServicer
from onecard_hub.api.errors import guard_servicer
from onecard_hub.api.exam import ExamAdminServicer, ExamServicer
from onecard_hub.api.funds import FundsServicer
from onecard_hub.api.grants import GrantServicer
from onecard_hub.api.identity import Identity
from onecard_hub.api.library import LibraryAdminServicer, LibraryServicer
from onecard_hub.api.settlement import SettlementServicer
from onecard_hub.api.student_records import StudentRecordsServicer
from onecard_hub.api.terminal import TerminalServicer, add_terminal_service
from onecard_hub.bank.gateway import BankGateway
from onecard_hub.blocklist_feed import MAX_PER_CONNECTION
from onecard_hub.cardsys_feed import CardsysFeed, start_cardsys_feed
from onecard_hub.config import HubConfig
from onecard_hub.domain.clock import Clock
from onecard_hub.domain.misuse import MisuseRules
from onecard_hub.exit_codes import ExitCode, StartupError
from onecard_hub.funds.runtime import Funds, start_funds
from onecard_hub.grants.runtime import Grants, start_grants
from onecard_hub.hub import Hub
from onecard_hub.security.keys import HubKeys
from onecard_hub.security.pki import PkiError, load_server_tls
from onecard_hub.security.protect import RequestFingerprint
from onecard_hub.settlement.flows import GrantFlow
from onecard_hub.settlement.runtime import Settlement, start_settlement
from onecard_hub.stopping import Step, StopFailed, cancelled, stop_all
from onecard_hub.store.sqlite import SqliteStore
from onecard_hub.telemetry import Telemetry
from onecard_hub.telemetry.exposition import MetricsListenError

log = logging.getLogger(__name__)

LIBRARY_SERVICES = ("LibraryService", "LibraryAdminService")
EXAM_SERVICES = ("ExamService", "ExamAdminService")
SERVICE_NAMES = (
    authorization_service_pb2.DESCRIPTOR.services_by_name["AuthorizationService"].full_name,
    terminal_service_pb2.DESCRIPTOR.services_by_name["TerminalService"].full_name,
    admin_service_pb2.DESCRIPTOR.services_by_name["AdminService"].full_name,
    ecard_service_pb2.DESCRIPTOR.services_by_name["ECardService"].full_name,
    card_office_service_pb2.DESCRIPTOR.services_by_name["CardOfficeService"].full_name,
    student_records_service_pb2.DESCRIPTOR.services_by_name["StudentRecordsService"].full_name,
    grant_service_pb2.DESCRIPTOR.services_by_name["GrantService"].full_name,
    settlement_service_pb2.DESCRIPTOR.services_by_name["SettlementService"].full_name,
    funds_service_pb2.DESCRIPTOR.services_by_name["FundsService"].full_name,
    *(library_service_pb2.DESCRIPTOR.services_by_name[n].full_name for n in LIBRARY_SERVICES),
    *(exam_service_pb2.DESCRIPTOR.services_by_name[n].full_name for n in EXAM_SERVICES),
)
# HTTP/2 streams (calls) open at once on one connection; a client's further calls wait for a free
# one. Without a bound one connection could hold any number (a probe held 20,000 WatchBlocklist
# streams, ≈28 KB each). A device with mutual TLS has a connection of its own and uses a few. In
# plain text every client of a process shares one connection (gRPC's global subchannel pool), and
# the busiest ones stay far below: `make bench` keeps 64 calls in flight on one channel, the
# simulators up to 128 taps (`--max-in-flight`) plus a heartbeat and a blocklist stream per
# terminal, a Locust process one call per user (200 users in the largest runs of loadtest/README.md),
# `make bench-blocklist` up to 500 streams. Blocklist streams may take half (blocklist_feed's
# MAX_PER_CONNECTION), so unary calls always keep 1,000 — fifteen times the bench's load.
MAX_CONCURRENT_STREAMS = 2 * MAX_PER_CONNECTION
GRPC_OPTIONS = [
    # An offline batch of 500 e-card records is ≈100 KiB; every other request is far smaller.
    ("grpc.max_receive_message_length", 256 * 1024),
    ("grpc.max_concurrent_streams", MAX_CONCURRENT_STREAMS),
    ("grpc.keepalive_time_ms", 60_000),
    ("grpc.http2.min_ping_interval_without_data_ms", 10_000),
    ("grpc.so_reuseport", 0),
]


class _GenericHandlersOnly:
    """What the generated `add_*Servicer_to_server` functions see as the server: a service's
    handlers are added as a generic handler only, never as registered methods.

    grpcio 1.85's asyncio server waits, for every incoming call, on one pending accept per
    registered method plus one for generic calls (`asyncio.wait(..., FIRST_COMPLETED)`;
    grpc/grpc#43461 is the open fix). The hub has about 100 methods, so every call paid for
    a wait over 100 futures: measured here with the Authorize servicer returning a fixed
    answer, 300 µs of CPU per call against 265 µs with only the generic handlers (the
    do-nothing server of `make bench`, 9 registered methods, 260-270). Generic handlers are
    looked up in the order added; AuthorizationService comes first.

    The hub's own services (SERVICE_NAMES) are added with tolerant request deserializers
    (api/decoding.py): a request that does not decode is answered INVALID_ARGUMENT by the
    servicer's guard, with one short log line at most every 10 s, instead of UNKNOWN and a
    traceback per call. Health and reflection are added as they come.
    """

    def __init__(self, server: grpc.aio.Server) -> None:
        self._server = server
        self._malformed = MalformedLog()

    def add_generic_rpc_handlers(self, handlers: Sequence[grpc.GenericRpcHandler]) -> None:
        self._server.add_generic_rpc_handlers(tolerant_handlers(handlers, SERVICE_NAMES, self._malformed))

    def add_registered_method_handlers(self, service_name: str, handlers: dict[str, Any]) -> None:
        """Left out on purpose: the generic handler added with it serves the same methods."""


@dataclass
class RunningHub:
    hub: Hub
    server: grpc.aio.Server
    port: int
    health: health.aio.HealthServicer

    tls: bool = False
    cardsys_feed: CardsysFeed | None = None  # with --cardsys: the provincial card system's feed
    grants: Grants | None = None  # grants (grants/): the book, and the payer when a bank is known
    settlement: Settlement | None = None  # settlement/: merchants' days, wallet refunds, reconciliation
    funds: Funds | None = None  # funds/: top-ups 圈存, auto top-up, the bank function, change of bank
    servicers: tuple[object, ...] = ()  # the hub's own, each guarded by api/errors.guard_servicer
    telemetry: Telemetry | None = None  # metrics (--metrics-listen) and traces: telemetry/

    @property
    def target(self) -> str:
        return f"127.0.0.1:{self.port}"


def _server_credentials(config: HubConfig) -> grpc.ServerCredentials | None:
    """Mutual TLS from the PKI folder: a client must present a certificate the hub's CA issued."""
    if config.tls_dir is None:
        return None
    try:
        tls = load_server_tls(config.tls_dir)
    except PkiError as exc:
        raise StartupError(f"--tls: {exc}", ExitCode.KEYS) from None
    return grpc.ssl_server_credentials(
        [(tls.key, tls.cert)], root_certificates=tls.ca_cert, require_client_auth=True
    )


def _hub_keys(config: HubConfig) -> HubKeys:
    try:
        return HubKeys.load(config.keys)
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise StartupError(f"the keys in {config.keys} cannot be read: {exc}", ExitCode.KEYS) from exc


@asynccontextmanager
async def running_hub(config: HubConfig, clock: Clock | None = None) -> AsyncIterator[RunningHub]:
    """Starts a hub on `config.listen` (port 0 picks a free one); stops it gracefully on exit.

    The database is checked before anything is written (store/checks.py): a refused one raises a
    store.checks.DatabaseRefused; keys, TLS and the address raise a StartupError. Whatever
    started is stopped again, in reverse order, every step even when one raises (stopping.py)."""
    clock = clock if clock is not None else config.make_clock()
    credentials = _server_credentials(config)
    keys = _hub_keys(config)
    hub = Hub(
        SqliteStore(config.db, synchronous=config.synchronous),
        keys,
        clock,
        retention_ms=int(config.retention_hours * 3600 * 1000),
        max_pending_writes=config.max_pending_writes,
        commit_linger_s=config.commit_linger_ms / 1000,
    )
    await hub.start()
    started: list[Step] = [  # stopped last to first
        ("closing the bank gateway", lambda: _close_bank(hub)),
        ("stopping the hub", hub.stop),
    ]
    try:
        running = await _serving(config, clock, hub, credentials, started)
    except BaseException:
        try:
            await stop_all(reversed(started))
        except StopFailed as exc:
            log.warning("giving up the start: %s", exc)
        raise
    try:
        yield running
    finally:
        await stop_all(reversed(started))


async def _serving(
    config: HubConfig,
    clock: Clock,
    hub: Hub,
    credentials: grpc.ServerCredentials | None,
    started: list[Step],
) -> RunningHub:
    """Everything around the started hub, each part's stop added to `started` once it runs."""
    keys = hub.keys
    hub.campus.misuse.rules = MisuseRules(*(int(s * 1000) for s in config.misuse_windows_s))
    hub.bank = BankGateway(config.bank) if config.bank else None  # --bank: the one way to a bank
    try:  # metrics and traces, hooked into the hub, its journal, feed and bank gateway (telemetry/)
        telemetry = Telemetry.start(config, hub)
    except MetricsListenError as exc:
        raise StartupError(str(exc), ExitCode.CANNOT_LISTEN) from None
    started.insert(0, ("stopping telemetry", telemetry.stop))  # stopped last: the last spans are kept
    server = grpc.aio.server(options=GRPC_OPTIONS)  # no interceptor: servicers are guarded (api/errors.py)
    fingerprint = RequestFingerprint(keys)
    identity = Identity(hub, tls=credentials is not None)
    servicers: list[object] = []
    generic_only = cast(grpc.aio.Server, _GenericHandlersOnly(server))  # see the class

    def register(add: Callable[[Any, grpc.aio.Server], None], servicer: object) -> None:
        add(guard_servicer(servicer, telemetry.observe), generic_only)
        servicers.append(servicer)

    register(
        authorization_service_pb2_grpc.add_AuthorizationServiceServicer_to_server,
        AuthorizationServicer(hub, fingerprint, identity),
    )
    register(add_terminal_service, TerminalServicer(hub, clock, identity))  # WatchBlocklist sends bytes
    register(
        admin_service_pb2_grpc.add_AdminServiceServicer_to_server, AdminServicer(hub, fingerprint, identity)
    )
    register(ecard_service_pb2_grpc.add_ECardServiceServicer_to_server, ECardServicer(hub, identity))
    register(
        library_service_pb2_grpc.add_LibraryServiceServicer_to_server,
        LibraryServicer(hub, fingerprint, identity),
    )
    register(
        library_service_pb2_grpc.add_LibraryAdminServiceServicer_to_server,
        LibraryAdminServicer(hub, identity),
    )
    register(
        exam_service_pb2_grpc.add_ExamServiceServicer_to_server, ExamServicer(hub, fingerprint, identity)
    )
    register(
        exam_service_pb2_grpc.add_ExamAdminServiceServicer_to_server,
        ExamAdminServicer(hub, fingerprint, identity),
    )
    register(
        card_office_service_pb2_grpc.add_CardOfficeServiceServicer_to_server,
        CardOfficeServicer(hub, fingerprint, identity),
    )
    register(
        student_records_service_pb2_grpc.add_StudentRecordsServiceServicer_to_server,
        StudentRecordsServicer(hub, fingerprint, identity),
    )
    grants = await start_grants(hub)  # pays through hub.bank when there is one
    started.append(("stopping grants", grants.stop))
    register(
        grant_service_pb2_grpc.add_GrantServiceServicer_to_server,
        GrantServicer(hub, grants, fingerprint, identity),
    )
    # pays and reconciles through hub.bank; canteen windows paid into the accounts the database holds
    settlement = await start_settlement(hub, hub.bank)
    settlement.add_flow(GrantFlow(grants.book))  # reconciliation covers the grants too
    register(
        settlement_service_pb2_grpc.add_SettlementServiceServicer_to_server,
        SettlementServicer(hub, settlement, fingerprint, identity),
    )
    funds = await start_funds(hub)  # top-ups through hub.bank; resumes every top-up left PENDING
    started.append(("stopping funds", funds.stop))
    if funds.flow is not None:
        settlement.add_flow(funds.flow)  # reconciliation covers top-ups
    register(
        funds_service_pb2_grpc.add_FundsServiceServicer_to_server,
        FundsServicer(hub, funds, fingerprint, identity),
    )
    health_servicer = health.aio.HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(health_servicer, generic_only)
    reflection.enable_server_reflection(
        (*SERVICE_NAMES, health.SERVICE_NAME, reflection.SERVICE_NAME), generic_only
    )
    try:
        if credentials is None:
            port = server.add_insecure_port(config.listen)
        else:
            port = server.add_secure_port(config.listen, credentials)
    except RuntimeError:
        raise StartupError(f"cannot listen on {config.listen}", ExitCode.CANNOT_LISTEN) from None
    await server.start()
    # Stopped in reverse: health NOT_SERVING, blocklist streams ended at once (UNAVAILABLE:
    # reconnect) rather than at the grace, in-flight calls finish and new ones are refused, then
    # funds, grants, the hub (the writer flushes) and the bank gateway.
    started.append(("stopping the server", lambda: server.stop(config.grace_seconds)))
    started.append(("ending the blocklist streams", hub.blocklist_feed.close))
    serving, not_serving = health_pb2.HealthCheckResponse.SERVING, health_pb2.HealthCheckResponse.NOT_SERVING
    started.append(("reporting NOT_SERVING", lambda: _set_health(health_servicer, not_serving)))
    await _set_health(health_servicer, serving)
    running = RunningHub(hub, server, port, health_servicer, tls=credentials is not None, grants=grants)
    running.servicers = tuple(servicers)
    running.settlement = settlement
    running.funds = funds
    running.telemetry = telemetry
    if config.cardsys:
        feed = running.cardsys_feed = await start_cardsys_feed(hub, config.cardsys, health_servicer)
        started.append(("stopping the card system feed", feed.stop))
    return running


async def _set_health(servicer: health.aio.HealthServicer, status: Any) -> None:
    for name in ("", *SERVICE_NAMES):
        await servicer.set(name, status)


async def _close_bank(hub: Hub) -> None:
    if hub.bank is not None:
        await hub.bank.close()


async def keep_collections_short(every_s: float = 1.0, full_every_s: float = 3600.0) -> None:
    """Keeps the cyclic garbage collector's pauses out of the tail latency.

    The hub keeps hundreds of thousands of long-lived objects (the campus, the idempotency
    window); a full collection walking them all stalls the event loop for tens of
    milliseconds. So, every second, the young generations are collected and what survived
    is frozen out of later collections (plain reference counting still frees it); once an
    hour everything is collected once, so that no cyclic garbage lives forever.
    """
    loop = asyncio.get_running_loop()
    last_full = loop.time()
    while True:
        await asyncio.sleep(every_s)
        if loop.time() - last_full >= full_every_s:
            started = loop.time()
            gc.unfreeze()
            gc.collect()
            last_full = loop.time()
            log.info("full garbage collection took %.0f ms", 1000 * (last_full - started))
        else:
            gc.collect(1)
        gc.freeze()


async def serve(config: HubConfig) -> int:
    """Serves until SIGTERM or SIGINT; returns the process exit code (exit_codes.py). A hub that
    cannot start raises (DatabaseRefused, StartupError, …: the command turns it into one line and
    its exit code); a stop always finishes, and one with a failed step exits 1."""
    try:
        return await _serve(config)
    except StopFailed as exc:
        if config.debug:
            for _, error in exc.failures:
                traceback.print_exception(error)
        print(f"error: the hub did not stop cleanly: {exc}", file=sys.stderr, flush=True)
        return ExitCode.FAILED


async def _serve(config: HubConfig) -> int:
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    async with running_hub(config) as running:
        gc.collect()
        gc.freeze()
        collector = loop.create_task(keep_collections_short(), name="gc")
        loader = running.hub.campus_loader
        filling = None if loader is None else loop.create_task(loader.fill(), name="campus-fill")
        host = config.listen.rsplit(":", 1)[0]
        if running.tls:
            log.info("mutual TLS with the PKI in %s: callers are named by their certificates", config.tls_dir)
            mode = f"mutual TLS, CA {config.tls_dir}"
        else:
            log.warning(
                "PLAIN TEXT: no TLS, callers name themselves in metadata — for local demos and tests only;"
                " serve --tls DIR turns on mutual TLS"
            )
            mode = "plain text"
        print(f"onecard-hub listening on {host}:{running.port} ({mode})", flush=True)
        if running.telemetry is not None and running.telemetry.metrics_url:
            print(f"onecard-hub metrics on {running.telemetry.metrics_url}", flush=True)
        writer_task = running.hub.writer.task
        waiters = [loop.create_task(stop.wait())]
        if writer_task is not None:
            waiters.append(writer_task)  # type: ignore[arg-type]
        await asyncio.wait(waiters, return_when=asyncio.FIRST_COMPLETED)
        collector.cancel()
        await cancelled(filling)
        failed = running.hub.writer.failed is not None
        log.info("stopping: %s", "journal failure" if failed else "signal")
    print("onecard-hub stopped", flush=True)
    return ExitCode.FAILED if failed else ExitCode.OK
