"""The retry rules, shared by the async and the sync clients (DESIGN §3).

- UNAVAILABLE is retried with exponential backoff and jitter, at most `RetryConfig.attempts`
  tries in all, always with the very same request message (so the same `request_id`).
- Every other code is raised at once as its typed exception — DEADLINE_EXCEEDED too: the
  hub may have acted, and the caller decides (retry with the same id, or reverse it).
- A failed TLS handshake is a configuration error: TLSConfigurationError at once.

The clients run the loop (`await asyncio.sleep` or `time.sleep` between tries); the
decisions are made here, once.
"""

from __future__ import annotations

import logging
import random
import re

import grpc

from onecard_client._config import ClientConfig
from onecard_client.errors import TLSConfigurationError, UnavailableError, from_rpc_error

log = logging.getLogger("onecard_client")

# What grpc core writes into the details of UNAVAILABLE when the handshake failed on this
# side: the hub's certificate did not verify against our CA, or the hub speaks plain text.
_HANDSHAKE_FAILED = re.compile(r"handshake failed|CERTIFICATE_VERIFY_FAILED|SSL_ERROR|TSI_", re.IGNORECASE)
# When the hub refuses our certificate, we only see the connection closed while connecting.
# A hub restarting can do that too, so it is retried like any UNAVAILABLE and named a TLS
# problem only when every attempt ended that way.
_CLOSED_WHILE_CONNECTING = re.compile(r"failed to connect to all addresses.*Socket closed", re.IGNORECASE)


class CallAttempts:
    """The tries of one call. After each failure `failed(error)` either returns how long to
    wait before sending the same request again, or raises the exception for the caller."""

    def __init__(self, config: ClientConfig, method: str) -> None:
        self._config = config
        self._method = method
        self._attempt = 1
        self._backoff = config.retry.initial_backoff_s

    def failed(self, error: grpc.RpcError) -> float:
        exc = from_rpc_error(error)
        tls = self._config.tls is not None
        if tls and exc.code == grpc.StatusCode.UNAVAILABLE and _HANDSHAKE_FAILED.search(exc.message):
            raise TLSConfigurationError(
                f"TLS handshake with {self._config.target} failed; check ca_cert and server_name"
                f" (is the hub serving TLS?): {exc.message}"
            ) from None
        if not isinstance(exc, UnavailableError):
            raise exc from None
        retry = self._config.retry
        if self._attempt >= retry.attempts:
            if tls and _CLOSED_WHILE_CONNECTING.search(exc.message):
                raise TLSConfigurationError(
                    f"{self._config.target} closed every TLS connection while connecting"
                    f" ({self._attempt} attempts): does its CA trust this client's certificate?"
                ) from None
            raise exc from None
        delay = self._backoff * (0.5 + random.random())
        self._backoff = min(self._backoff * retry.multiplier, retry.max_backoff_s)
        self._attempt += 1
        log.info(
            "%s: UNAVAILABLE, sending the same request again in %.0f ms (attempt %d of %d)",
            self._method,
            delay * 1000,
            self._attempt,
            retry.attempts,
        )
        return delay
