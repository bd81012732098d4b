"""A Locust user that speaks gRPC: one channel per user, every call in Locust's statistics.

Locust runs users as gevent greenlets, so this module makes grpc cooperative with
`grpc.experimental.gevent.init_gevent()` and uses grpc's synchronous stubs. Import it only in
a process that Locust runs: Locust monkey-patches the process for gevent, which breaks grpc.aio.

Reporting: a call is one Locust request of type "grpc", named by the caller. A `classify` function can
rename an answered call (a decline is reported as its own entry, e.g. "Authorize canteen_purchase
DECLINED:INSUFFICIENT_FUNDS") or turn it into a failure. A call that ends with a gRPC status other than
OK is a failure, reported as "<CODE>: <details>".
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import grpc
import grpc.experimental.gevent as grpc_gevent
from google.protobuf.message import Message
from locust import User
from locust.env import Environment

from onecard_client.tracing import tap_span, with_trace_context

__all__ = [
    "GrpcStatusError",
    "GrpcUser",
    "TlsConfig",
    "UnexpectedAnswer",
    "Verdict",
    "grpc_target",
    "open_channel",
]

grpc_gevent.init_gevent()

Response = TypeVar("Response", bound=Message)
Metadata = tuple[tuple[str, str], ...]
KEEPALIVE_MS = 30_000


@dataclass(frozen=True)
class TlsConfig:
    """Mutual TLS for one channel: the hub's CA, and the client's certificate chain and private key (PEM).

    With mutual TLS the hub takes the caller's identity from its certificate (the SAN URI
    `onecard:terminal:<id>`) and ignores the identity headers, so a user playing a terminal presents that
    terminal's certificate (`onecard-hub pki issue-all` makes one per terminal).
    """

    root_certificates: bytes
    certificate_chain: bytes
    private_key: bytes
    server_name: str = ""  # the name in the hub's certificate, when it is not the host dialled

    @classmethod
    def of_terminal(cls, pki: Path, terminal_id: str) -> TlsConfig:
        """The hub's CA and terminal `terminal_id`'s certificate and key, from a PKI folder made by
        `onecard-hub pki` (ca.crt, terminals/<id>.crt and .key); FileNotFoundError names what is missing."""
        cert, key = pki / "terminals" / f"{terminal_id}.crt", pki / "terminals" / f"{terminal_id}.key"
        for path in (pki / "ca.crt", cert, key):
            if not path.is_file():
                raise FileNotFoundError(
                    f"{path} is missing: `onecard-hub pki issue-all --dir {pki}` makes a certificate "
                    "for every terminal of the campus"
                )
        return cls((pki / "ca.crt").read_bytes(), cert.read_bytes(), key.read_bytes())

    def channel_credentials(self) -> grpc.ChannelCredentials:
        return grpc.ssl_channel_credentials(
            root_certificates=self.root_certificates,
            private_key=self.private_key,
            certificate_chain=self.certificate_chain,
        )


def grpc_target(host: str | None) -> str:
    """Locust's `--host` as a gRPC target: `HOST:PORT`, optionally written `grpc://HOST:PORT`."""
    if not host:
        raise ValueError("give the hub's address with --host HOST:PORT (e.g. --host 127.0.0.1:50051)")
    for scheme in ("grpc://", "grpcs://", "http://", "https://"):
        if host.startswith(scheme):
            host = host[len(scheme) :]
    return host.rstrip("/")


def open_channel(target: str, tls: TlsConfig | None = None) -> grpc.Channel:
    """A channel to the hub: plain text, or mutual TLS when `tls` is given."""
    options: list[tuple[str, Any]] = [
        ("grpc.keepalive_time_ms", KEEPALIVE_MS),
        ("grpc.keepalive_permit_without_calls", 0),
    ]
    if tls is None:
        return grpc.insecure_channel(target, options=options)
    if tls.server_name:
        options.append(("grpc.ssl_target_name_override", tls.server_name))
    return grpc.secure_channel(target, tls.channel_credentials(), options=options)


class GrpcStatusError(Exception):
    """A call that ended with a gRPC status other than OK (Locust groups failures by this text)."""

    @classmethod
    def from_rpc_error(cls, error: grpc.RpcError) -> GrpcStatusError:
        if isinstance(error, grpc.Call):
            code = error.code()
            name = code.name if code is not None else "UNKNOWN"
            return cls(f"{name}: {error.details() or ''}")
        return cls(f"{type(error).__name__}: {error}")


class UnexpectedAnswer(Exception):
    """An answer that a well-behaved server never gives (e.g. no decision at all)."""


@dataclass(frozen=True, slots=True)
class Verdict:
    """How to report an answered call: under which name, and whether it failed."""

    name: str
    failure: Exception | None = None


class GrpcUser(User):
    """A user with one gRPC channel to `--host`; subclasses make stubs on `self.channel`."""

    abstract = True

    def __init__(self, environment: Environment) -> None:
        super().__init__(environment)
        self._channel: grpc.Channel | None = None
        self.metadata: Metadata = ()
        self.call_timeout = 2.0

    def tls_config(self) -> TlsConfig | None:
        """The TLS settings of this user's channel; None (this default) is plain text."""
        return None

    @property
    def channel(self) -> grpc.Channel:
        if self._channel is None:
            self._channel = open_channel(grpc_target(self.host), self.tls_config())
        return self._channel

    def on_stop(self) -> None:
        if self._channel is not None:
            self._channel.close()
            self._channel = None

    def call(
        self,
        name: str,
        method: Callable[..., Response],
        request: Message,
        *,
        classify: Callable[[str, Response], Verdict] | None = None,
    ) -> Response | None:
        """Makes one call and reports it; returns the answer, or None when the call failed."""
        started = time.perf_counter()
        # A span per call (a no-op unless an OpenTelemetry SDK is set up in this process), carried to
        # the hub as W3C trace context in the metadata.
        with tap_span(name):
            try:
                response = method(
                    request, metadata=with_trace_context(self.metadata), timeout=self.call_timeout
                )
            except grpc.RpcError as error:
                elapsed_ms = (time.perf_counter() - started) * 1000.0
                self._report(name, elapsed_ms, 0, GrpcStatusError.from_rpc_error(error))
                return None
        elapsed_ms = (time.perf_counter() - started) * 1000.0
        verdict = classify(name, response) if classify is not None else Verdict(name)
        self._report(verdict.name, elapsed_ms, response.ByteSize(), verdict.failure)
        return response

    def _report(self, name: str, elapsed_ms: float, length: int, failure: Exception | None) -> None:
        self.environment.events.request.fire(
            request_type="grpc",
            name=name,
            response_time=elapsed_ms,
            response_length=length,
            exception=failure,
            context={},
        )
