"""The hub's one configuration object: built once from flags and ONECARD_* variables.

A flag wins over its variable, a variable over the default. Nothing else in the hub
reads the environment — but for OpenTelemetry's SDK, which reads its own OTEL_* variables
(the sampler, headers, certificates, timeouts, batching) when telemetry/tracing.py makes the
provider and the exporter; the ones that decide whether and where spans go are read here.
"""

from __future__ import annotations

import argparse
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from onecard_client.campus import keys_dir_for
from onecard_hub.domain.clock import Clock, SimulatedClock, SystemClock, parse_instant
from onecard_hub.store.sqlite import SYNCHRONOUS_MODES

DEFAULT_LISTEN = "127.0.0.1:50051"


class ConfigError(ValueError):
    """A flag or ONECARD_* variable with a value the hub cannot use (a usage error, exit 2)."""


@dataclass(frozen=True)
class HubConfig:
    db: Path
    keys: Path
    listen: str = DEFAULT_LISTEN
    synchronous: str = "FULL"
    clock_start: str = ""  # ISO instant; empty = real time
    clock_speed: float = 1.0
    retention_hours: float = 48.0
    max_pending_writes: int = 20_000
    commit_linger_ms: float = 8.0
    grace_seconds: float = 10.0
    log_level: str = "INFO"
    log_json: bool = False
    tls_dir: Path | None = None  # the PKI folder (`onecard-hub pki init`); None = plain text
    cardsys: str = ""  # HOST:PORT of the provincial card system to follow (cardsys_feed.py); "" = off
    bank: str = ""  # HOST:PORT of the co-branded banks (onecard-sim bank; bank/gateway.py); "" = off
    # Misuse signals (domain/misuse.py): seconds between two gates, two canteen windows, two schools.
    misuse_windows_s: tuple[float, float, float] = (120.0, 120.0, 600.0)
    debug: bool = False  # a failure to start or stop prints its traceback, not only its one line
    # Seeing the hub run (telemetry/): /metrics, and spans to a JSON-lines file and/or over OTLP.
    metrics_listen: str = ""  # HOST:PORT of the Prometheus /metrics endpoint; "" = no metrics
    trace_file: Path | None = None  # finished spans, one JSON document a line; None = no file
    otlp_traces: bool = False  # OTEL_TRACES_EXPORTER=otlp: spans to an OTLP collector over gRPC
    otlp_endpoint: str = ""  # OTEL_EXPORTER_OTLP_TRACES_ENDPOINT or _ENDPOINT; "" = the SDK's default
    service_name: str = "onecard-hub"  # OTEL_SERVICE_NAME

    def make_clock(self) -> Clock:
        if self.clock_start:
            return SimulatedClock(parse_instant(self.clock_start), self.clock_speed)
        return SystemClock()


def add_serve_flags(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--db", help="SQLite database file [ONECARD_DB]")
    parser.add_argument(
        "--keys", help="keys folder [ONECARD_KEYS] (default: beside the db, hub.db → hub.keys/)"
    )
    parser.add_argument(
        "--listen", help=f"HOST:PORT [ONECARD_LISTEN] (default {DEFAULT_LISTEN}; port 0 picks one)"
    )
    parser.add_argument(
        "--synchronous",
        choices=SYNCHRONOUS_MODES,
        help="SQLite synchronous mode [ONECARD_SYNCHRONOUS] (FULL)",
    )
    parser.add_argument(
        "--clock-start",
        help="run on a simulated clock from this instant, e.g. 2026-11-24T12:00:00+08:00"
        " [ONECARD_CLOCK_START]",
    )
    parser.add_argument(
        "--clock-speed", type=float, help="simulated clock speed-up [ONECARD_CLOCK_SPEED] (1)"
    )
    parser.add_argument(
        "--retention-hours", type=float, help="idempotency window [ONECARD_RETENTION_HOURS] (48)"
    )
    parser.add_argument(
        "--commit-linger-ms",
        type=float,
        help="the most time between the starts of two group commits, when the hub's core is 90%%"
        " busy or more; less when less busy, none below 70%% [ONECARD_COMMIT_LINGER_MS]"
        " (8; 0 = never wait)",
    )
    parser.add_argument(
        "--tls",
        metavar="DIR",
        help="serve mutual TLS with the PKI in DIR (onecard-hub pki init) [ONECARD_TLS_DIR];"
        " without it the hub serves plain text, for local demos only",
    )
    parser.add_argument(
        "--cardsys",
        metavar="HOST:PORT",
        help="follow the provincial card system's change feed there (onecard-sim cardsys)"
        " [ONECARD_CARDSYS] (default: off)",
    )
    parser.add_argument(
        "--bank",
        metavar="HOST:PORT",
        help="the co-branded banks' BankService there (onecard-sim bank): top-ups, grants, refunds,"
        " settlement [ONECARD_BANK] (default: off)",
    )
    parser.add_argument("--grace-seconds", type=float, help="time in-flight calls get on stop (10)")
    parser.add_argument(
        "--misuse-windows",
        metavar="GATES,WINDOWS,SCHOOLS",
        help="a card used at two places closer than this many seconds is flagged: two gates, two canteen"
        " windows, two schools [ONECARD_MISUSE_WINDOWS] (120,120,600)",
    )
    parser.add_argument(
        "--metrics-listen",
        metavar="HOST:PORT",
        help="serve Prometheus metrics at http://HOST:PORT/metrics (port 0 picks one)"
        " [ONECARD_METRICS_LISTEN] (default: off)",
    )
    parser.add_argument(
        "--trace-file",
        metavar="PATH",
        help="append a span per RPC (and its decision, journal commit, bank calls) to PATH, one JSON line"
        " each [ONECARD_TRACE_FILE]; OTLP instead or too: OTEL_TRACES_EXPORTER=otlp (default: off)",
    )
    parser.add_argument("--log-level", help="DEBUG, INFO, WARNING [ONECARD_LOG_LEVEL] (INFO)")
    parser.add_argument(
        "--log-json", action="store_true", default=None, help="JSON log lines [ONECARD_LOG_JSON]"
    )
    parser.add_argument(
        "--debug",
        action="store_true",
        default=None,
        help="a failure to start or stop prints its traceback too [ONECARD_DEBUG]",
    )


def config_from(args: argparse.Namespace, env: Mapping[str, str] | None = None) -> HubConfig:
    environ = os.environ if env is None else env

    def pick(flag: object, name: str, default: str) -> str:
        if flag is not None:
            return str(flag)
        return environ.get(f"ONECARD_{name}", default)

    db = pick(args.db, "DB", "")
    if not db:
        raise ConfigError("--db (or ONECARD_DB) is required")
    keys = pick(args.keys, "KEYS", "") or str(keys_dir_for(db))
    speed = float(pick(args.clock_speed, "CLOCK_SPEED", "1"))
    if speed <= 0:
        raise ConfigError("--clock-speed must be positive")
    linger = float(pick(args.commit_linger_ms, "COMMIT_LINGER_MS", "8"))
    if not 0 <= linger <= 100:
        raise ConfigError("--commit-linger-ms must be between 0 and 100")
    tls_dir = pick(args.tls, "TLS_DIR", "")
    return HubConfig(
        misuse_windows_s=_misuse_windows(pick(getattr(args, "misuse_windows", None), "MISUSE_WINDOWS", "")),
        db=Path(db),
        keys=Path(keys),
        listen=pick(args.listen, "LISTEN", DEFAULT_LISTEN),
        synchronous=pick(args.synchronous, "SYNCHRONOUS", "FULL").upper(),
        clock_start=pick(args.clock_start, "CLOCK_START", ""),
        clock_speed=speed,
        retention_hours=float(pick(args.retention_hours, "RETENTION_HOURS", "48")),
        commit_linger_ms=linger,
        grace_seconds=float(pick(args.grace_seconds, "GRACE_SECONDS", "10")),
        log_level=pick(args.log_level, "LOG_LEVEL", "INFO").upper(),
        log_json=_flag(pick(args.log_json, "LOG_JSON", "")),
        tls_dir=Path(tls_dir) if tls_dir else None,
        cardsys=pick(args.cardsys, "CARDSYS", ""),
        bank=pick(getattr(args, "bank", None), "BANK", ""),
        debug=_flag(pick(getattr(args, "debug", None), "DEBUG", "")),
        **_telemetry(args, environ, pick),
    )


def _flag(text: str) -> bool:
    return text not in ("", "0", "false", "False")


def _misuse_windows(text: str) -> tuple[float, float, float]:
    if not text:
        return HubConfig.misuse_windows_s
    try:
        gates, windows, schools = (float(part) for part in text.split(","))
    except ValueError:
        raise ConfigError("--misuse-windows takes three numbers of seconds, e.g. 120,120,600") from None
    if min(gates, windows, schools) < 0:
        raise ConfigError("--misuse-windows must not be negative")
    return gates, windows, schools


def _telemetry(
    args: argparse.Namespace, environ: Mapping[str, str], pick: Callable[[object, str, str], str]
) -> dict[str, Any]:
    """--metrics-listen, --trace-file and the standard OTEL_* variables that turn OTLP on and say where.

    Tracing costs CPU on every call, so it is on only when asked: OTEL_TRACES_EXPORTER=otlp (the
    SDK's default "otlp" when unset is not followed) or --trace-file; OTEL_SDK_DISABLED=true turns
    both off."""
    listen = pick(getattr(args, "metrics_listen", None), "METRICS_LISTEN", "")
    if listen:
        host, sep, port = listen.rpartition(":")
        if not sep or not host or not port.isdigit() or int(port) > 65535:
            raise ConfigError(f"--metrics-listen takes HOST:PORT, not {listen!r}")
    trace_file = pick(getattr(args, "trace_file", None), "TRACE_FILE", "")
    exporters = {e.strip() for e in environ.get("OTEL_TRACES_EXPORTER", "").split(",")} - {"", "none"}
    if exporters - {"otlp"}:
        raise ConfigError(
            f"OTEL_TRACES_EXPORTER={environ['OTEL_TRACES_EXPORTER']}: the hub exports spans with otlp"
            " (or none); --trace-file writes them to a file"
        )
    protocol = environ.get("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL") or environ.get(
        "OTEL_EXPORTER_OTLP_PROTOCOL", ""
    )
    if exporters and protocol not in ("", "grpc"):
        raise ConfigError(f"OTLP protocol {protocol!r}: the hub sends spans over grpc only")
    disabled = environ.get("OTEL_SDK_DISABLED", "").strip().lower() == "true"
    return {
        "metrics_listen": listen,
        "trace_file": Path(trace_file) if trace_file and not disabled else None,
        "otlp_traces": bool(exporters) and not disabled,
        "otlp_endpoint": environ.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")
        or environ.get("OTEL_EXPORTER_OTLP_ENDPOINT", ""),
        "service_name": environ.get("OTEL_SERVICE_NAME") or HubConfig.service_name,
    }
