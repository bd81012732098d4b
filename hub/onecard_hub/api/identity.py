"""Who is calling. With mutual TLS the certificate names the caller (issue 3 adds it);
in plain-text mode the caller names itself in a metadata header, for local demos only."""

from __future__ import annotations

from typing import Any

import grpc

from onecard_hub.domain.errors import Unauthenticated

TERMINAL_HEADER = "onecard-terminal-id"
OPERATOR_HEADER = "onecard-operator-id"


def caller_id(context: grpc.aio.ServicerContext, header: str) -> str:
    for item in context.invocation_metadata() or ():
        entry: Any = item  # a _Metadatum with .key and .value
        if entry.key == header:
            value = entry.value
            return value if isinstance(value, str) else value.decode()
    raise Unauthenticated(f"no caller identity: send the {header} header or a client certificate")
