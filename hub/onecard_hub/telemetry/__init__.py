"""Seeing the hub run: Prometheus metrics at /metrics and OpenTelemetry traces.

`Telemetry.start(config, hub)` (server.py, once the hub is started) builds what the config asks for
— metrics with `--metrics-listen HOST:PORT`, traces with `--trace-file PATH` or
`OTEL_TRACES_EXPORTER=otlp` — and hooks it into the hub: the servicers' guard (`rpc`, given to
`api/errors.guard_servicer`), the journal writer, the live blocklist feed, the bank gateway, the
decision (`hub.tracer`) and offline uploads (`hub.metrics`). With neither on, nothing is hooked in and
no call pays for any of it. `stop()` stops the metrics server and flushes the last spans.

Modules: `rpc.py` (gRPC server metrics and spans), `metrics.py` (the registry and the hub's own
metrics), `journal.py` (per commit), `bank.py` (the gateway's calls), `tracing.py` (where spans go,
the decision span), `context.py` (trace ids for logs and errors), `exposition.py` (the HTTP server).
"""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING

from opentelemetry import trace

from onecard_hub.telemetry.exposition import MetricsServer, serve_metrics
from onecard_hub.telemetry.journal import JournalTelemetry
from onecard_hub.telemetry.metrics import HubMetrics
from onecard_hub.telemetry.rpc import RpcTelemetry
from onecard_hub.telemetry.tracing import INSTRUMENTATION, tracer_provider

if TYPE_CHECKING:
    from opentelemetry.sdk.trace import TracerProvider

    from onecard_hub.api.errors import Observe
    from onecard_hub.config import HubConfig
    from onecard_hub.hub import Hub

__all__ = ["Telemetry"]

log = logging.getLogger(__name__)


class Telemetry:
    def __init__(
        self,
        metrics: HubMetrics | None,
        provider: TracerProvider | None,
        server: MetricsServer | None = None,
    ) -> None:
        self.metrics = metrics
        self.provider = provider
        self.tracer: trace.Tracer | None = provider.get_tracer(INSTRUMENTATION) if provider else None
        self.server = server
        # api/errors.guard_servicer's `observe`; None: the servicers are only guarded.
        self.rpc: RpcTelemetry | None = None
        if metrics is not None or self.tracer is not None:
            self.rpc = RpcTelemetry(metrics.rpc_methods if metrics else None, self.tracer)

    @classmethod
    def start(cls, config: HubConfig, hub: Hub) -> Telemetry:
        """What `config` asks for, hooked into `hub` (started; its bank gateway set). Raises
        exposition.MetricsListenError when --metrics-listen cannot be bound."""
        metrics = HubMetrics() if config.metrics_listen else None
        provider = tracer_provider(config)
        telemetry = cls(metrics, provider)
        telemetry._hook(hub)
        if metrics is not None:
            try:
                telemetry.server = serve_metrics(config.metrics_listen, metrics.registry)
            except BaseException:
                if provider is not None:
                    provider.shutdown()
                raise
            log.info("metrics at %s", telemetry.server.url)
        if provider is not None:
            where = [str(config.trace_file)] if config.trace_file else []
            if config.otlp_traces:
                where.append(f"OTLP {config.otlp_endpoint or '(the SDK default endpoint)'}")
            log.info("tracing to %s", " and ".join(where))
        return telemetry

    def _hook(self, hub: Hub) -> None:
        metrics, tracer = self.metrics, self.tracer
        if metrics is None and tracer is None:
            return
        hub.metrics, hub.tracer = metrics, tracer
        hub.writer.telemetry = JournalTelemetry(metrics, tracer)
        if metrics is not None:
            metrics.watch(hub)
            hub.blocklist_feed.watch = metrics
        if hub.bank is not None:
            from onecard_hub.telemetry.bank import ObservedBankStub

            hub.bank.observe(lambda stub: ObservedBankStub(stub, metrics, tracer))

    @property
    def observe(self) -> Observe | None:
        """For api/errors.guard_servicer: None when neither metrics nor tracing is on."""
        return self.rpc.observe if self.rpc is not None else None

    @property
    def metrics_url(self) -> str:
        return self.server.url if self.server is not None else ""

    @property
    def metrics_port(self) -> int | None:
        return self.server.port if self.server is not None else None

    async def stop(self) -> None:
        """Stops the metrics server, then flushes and closes the span exporters (off the loop)."""
        server, self.server = self.server, None
        if server is not None:
            await asyncio.to_thread(server.stop)
        provider, self.provider = self.provider, None
        if provider is not None:
            await asyncio.to_thread(provider.shutdown)
