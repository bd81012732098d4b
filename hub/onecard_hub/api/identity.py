"""Who is calling: the one way every servicer learns its caller.

With mutual TLS (`serve --tls DIR`) the client certificate names the caller: its SAN URI
`onecard:<kind>:<id>` (kind terminal, operator or app; see `security/pki.py`). The TLS
handshake has already proven that the hub's CA issued it, so metadata headers are ignored.
In plain-text mode — local demos and tests only — the caller names itself in the
`onecard-terminal-id` / `onecard-operator-id` metadata header.

Each service admits one kind of caller: terminal services (authorization, terminal) a
terminal, AdminService an operator, ECardService anyone authenticated. Then:

    no identity, or a terminal/operator the hub does not know    UNAUTHENTICATED  CALLER_UNKNOWN
    a certificate of the wrong kind for the service              PERMISSION_DENIED CALLER_KIND_NOT_ALLOWED
    a disabled terminal, whatever it calls                       PERMISSION_DENIED TERMINAL_DISABLED
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import grpc

from onecard_hub.domain.errors import PermissionDenied, Unauthenticated
from onecard_hub.domain.model import Operator, Terminal
from onecard_hub.hub import Hub
from onecard_hub.security.pki import parse_identity_uri

TERMINAL_HEADER = "onecard-terminal-id"
OPERATOR_HEADER = "onecard-operator-id"
SAN_PROPERTY = "x509_subject_alternative_name"
TERMINAL, OPERATOR, APP = "terminal", "operator", "app"
MAX_CACHED_CERTIFICATES = 16_384


@dataclass(frozen=True, slots=True)
class Caller:
    kind: str  # "terminal" | "operator" | "app"
    caller_id: str


class Identity:
    """Resolves the caller of a call, from its certificate (`tls=True`) or its metadata header."""

    def __init__(self, hub: Hub, *, tls: bool) -> None:
        self._hub = hub
        self.tls = tls
        # SAN entry of a certificate → the caller it names (None: not one of ours). The CA
        # vouched for the certificate, so its SAN alone identifies it; parsing is done once.
        self._by_san: dict[bytes, Caller | None] = {}

    # -- what servicers call -------------------------------------------------------

    def terminal(self, context: grpc.aio.ServicerContext) -> Terminal:
        """The calling terminal, known and enabled."""
        if self.tls:
            terminal_id = self._certified(context, TERMINAL, "terminal services").caller_id
        else:
            terminal_id = _header(context, TERMINAL_HEADER)
        return self._enabled_terminal(terminal_id)

    def operator(self, context: grpc.aio.ServicerContext) -> Operator:
        """The calling operator (card-office clerk or province administrator), known to the hub."""
        if self.tls:
            operator_id = self._certified(context, OPERATOR, "AdminService").caller_id
        else:
            operator_id = _header(context, OPERATOR_HEADER)
        return self._hub.operator(operator_id)

    def any_caller(self, context: grpc.aio.ServicerContext) -> Caller | None:
        """For services open to every authenticated caller (ECardService).

        With TLS: the certificate's caller (a terminal must be known and enabled, an operator
        known; any app the CA certified). In plain text nobody is identified: None.
        """
        if not self.tls:
            return None
        caller = self._certified(context, None, "")
        if caller.kind == TERMINAL:
            self._enabled_terminal(caller.caller_id)
        elif caller.kind == OPERATOR:
            self._hub.operator(caller.caller_id)
        return caller

    # -- internals -----------------------------------------------------------------

    def _enabled_terminal(self, terminal_id: str) -> Terminal:
        terminal = self._hub.terminal(terminal_id)
        if not terminal.enabled:
            raise PermissionDenied("terminal is disabled", reason="TERMINAL_DISABLED")
        return terminal

    def _certified(self, context: grpc.aio.ServicerContext, kind: str | None, service: str) -> Caller:
        caller = None
        for san in context.auth_context().get(SAN_PROPERTY, ()):
            caller = self._by_san.get(san)
            if caller is None and san not in self._by_san:
                caller = self._remember(san)
            if caller is not None:
                break
        if caller is None:
            raise Unauthenticated("the client certificate names no onecard caller", reason="CALLER_UNKNOWN")
        if kind is not None and caller.kind != kind:
            raise PermissionDenied(
                f"a certificate of kind {caller.kind} cannot call {service}", reason="CALLER_KIND_NOT_ALLOWED"
            )
        return caller

    def _remember(self, san: bytes) -> Caller | None:
        if len(self._by_san) >= MAX_CACHED_CERTIFICATES:
            self._by_san.clear()
        parsed = parse_identity_uri(san.decode("utf-8", "replace"))
        caller = Caller(*parsed) if parsed is not None else None
        self._by_san[san] = caller
        return caller


def _header(context: grpc.aio.ServicerContext, header: str) -> str:
    for item in context.invocation_metadata() or ():
        entry: Any = item  # a _Metadatum with .key and .value
        if entry.key == header:
            value = entry.value
            return value if isinstance(value, str) else value.decode()
    raise Unauthenticated(f"no caller identity: send the {header} header or a client certificate")
