"""The fuzz suite's calls: every RPC the hub serves, sending raw bytes, and what an answer must be."""

from __future__ import annotations

import re
import time
from collections import Counter
from dataclasses import dataclass, field

import grpc
from google.protobuf import descriptor_pool, message_factory
from google.protobuf.descriptor import MethodDescriptor
from google.rpc import error_details_pb2, status_pb2

from onecard.common.v1 import errors_pb2
from onecard_hub.api.errors import ERROR_DOMAIN, MAX_METADATA_CHARS, MAX_STATUS_MESSAGE_CHARS
from onecard_hub.server import GRPC_OPTIONS, SERVICE_NAMES

TIMEOUT_S = 5.0
# Documented status codes (protos/CONTRACT.md). DEADLINE_EXCEEDED is the client's own, with no ErrorInfo.
DOCUMENTED = frozenset(
    {
        grpc.StatusCode.INVALID_ARGUMENT,
        grpc.StatusCode.NOT_FOUND,
        grpc.StatusCode.FAILED_PRECONDITION,
        grpc.StatusCode.PERMISSION_DENIED,
        grpc.StatusCode.UNAUTHENTICATED,
        grpc.StatusCode.ALREADY_EXISTS,
        grpc.StatusCode.RESOURCE_EXHAUSTED,
        grpc.StatusCode.UNAVAILABLE,
        grpc.StatusCode.OUT_OF_RANGE,
        grpc.StatusCode.DEADLINE_EXCEEDED,
    }
)
REASONS = frozenset(
    value.name.removeprefix("ERROR_REASON_")
    for value in errors_pb2.ErrorReason.DESCRIPTOR.values
    if value.number != 0
)
MAX_RECEIVE = dict(GRPC_OPTIONS)["grpc.max_receive_message_length"]
# What must never reach a client: exception class names, tracebacks, source paths, SQL.
INTERNAL_TEXT = re.compile(
    r"Traceback|\b[A-Z][A-Za-z]*(?:Error|Exception)\b|<class |File \"|\.py\b|site-packages"
    r"|\b(?:SELECT|INSERT|UPDATE|DELETE|PRAGMA)\b|sqlite",
    re.IGNORECASE,
)


def shows_internals(text: str, body: bytes) -> bool:
    """Whether `text` holds internal text the client did not send itself: an id of 'SQLITE' quoted
    back in a NOT_FOUND is the client's own input, not a leak."""
    sent = body.decode("utf-8", errors="ignore").lower()
    return any(match.group().lower() not in sent for match in INTERNAL_TEXT.finditer(text))


def hub_rpcs() -> list[MethodDescriptor]:
    """Every method of every service the hub serves (`server.SERVICE_NAMES`)."""
    pool = descriptor_pool.Default()
    return [method for name in SERVICE_NAMES for method in pool.FindServiceByName(name).methods]


def path_of(method: MethodDescriptor) -> str:
    return f"/{method.containing_service.full_name}/{method.name}"


@dataclass(frozen=True)
class Answer:
    code: grpc.StatusCode
    message: str = ""
    trailers: tuple[tuple[str, str | bytes], ...] = ()
    response: bytes = b""


async def send(
    channel: grpc.aio.Channel, method: MethodDescriptor, body: bytes, metadata: tuple[tuple[str, str], ...]
) -> Answer:
    """Sends `body` as it is; a stream counts as answered (OK) at its first message."""
    path = path_of(method)
    try:
        if method.server_streaming:
            watch: grpc.aio.UnaryStreamMultiCallable[bytes, bytes] = channel.unary_stream(path)
            call = watch(body, metadata=metadata, timeout=TIMEOUT_S)
            async for first in call:
                call.cancel()
                return Answer(grpc.StatusCode.OK, response=first)
            return Answer(grpc.StatusCode.OK)
        unary: grpc.aio.UnaryUnaryMultiCallable[bytes, bytes] = channel.unary_unary(path)
        response = await unary(body, metadata=metadata, timeout=TIMEOUT_S)
        return Answer(grpc.StatusCode.OK, response=response)
    except grpc.aio.AioRpcError as exc:
        trailers = tuple(exc.trailing_metadata() or ())
        return Answer(exc.code(), exc.details() or "", trailers)


def status_of(answer: Answer) -> status_pb2.Status | None:
    raw = dict(answer.trailers).get("grpc-status-details-bin")
    return status_pb2.Status.FromString(raw) if isinstance(raw, bytes) else None


def error_info(answer: Answer) -> error_details_pb2.ErrorInfo | None:
    """The first ErrorInfo of the answer's status details."""
    status = status_of(answer)
    for detail in status.details if status is not None else ():
        info = error_details_pb2.ErrorInfo()
        if detail.Unpack(info):
            return info
    return None


def problems(method: MethodDescriptor, body: bytes, answer: Answer) -> list[str]:
    """What is wrong with an answer; empty when it is one the contract allows."""
    code = answer.code
    if code is grpc.StatusCode.OK:
        try:
            message_factory.GetMessageClass(method.output_type).FromString(answer.response)
        except Exception as exc:  # any failure to parse is the finding
            return [f"OK with an unparseable response: {exc}"]
        return []
    if code not in DOCUMENTED:
        return [f"status {code.name}: {answer.message[:300]!r}"]
    if code is grpc.StatusCode.DEADLINE_EXCEEDED:
        return []
    if code is grpc.StatusCode.RESOURCE_EXHAUSTED and len(body) > MAX_RECEIVE:
        return []  # gRPC's own size limit, before any hub code runs: no ErrorInfo
    found = []
    if len(answer.message) >= MAX_STATUS_MESSAGE_CHARS:  # at the cap: the hub had to cut it (errors.py)
        found.append(f"{code.name} message of {len(answer.message)} characters")
    if shows_internals(answer.message, body):
        found.append(f"{code.name} message shows internals: {answer.message[:300]!r}")
    status = status_of(answer)
    if status is None:
        return [*found, f"{code.name} without grpc-status-details-bin: {answer.message[:300]!r}"]
    if status.code != code.value[0]:
        found.append(f"status details say code {status.code}, the call {code.name}")
    info = error_info(answer)
    if info is None or len(status.details) != 1:
        return [*found, f"{code.name} with {len(status.details)} details, not one ErrorInfo"]
    if info.domain != ERROR_DOMAIN or info.reason not in REASONS:
        found.append(f"{code.name} ErrorInfo domain {info.domain!r} reason {info.reason!r}")
    for key, value in info.metadata.items():
        if len(value) >= MAX_METADATA_CHARS:
            found.append(f"ErrorInfo metadata {key!r} of {len(value)} characters")
        if shows_internals(value, body):
            found.append(f"ErrorInfo metadata {key!r} shows internals: {value[:300]!r}")
    return found


@dataclass
class Tally:
    """What a run sent and got back, for the figures printed at its end."""

    by_code: Counter[str] = field(default_factory=Counter)
    by_kind: Counter[str] = field(default_factory=Counter)
    refusals: Counter[tuple[str, str, str]] = field(default_factory=Counter)  # (rpc, reason, field)
    rpcs: set[str] = field(default_factory=set)
    first: float = 0.0
    last: float = 0.0

    def add(self, method: MethodDescriptor, kind: str, answer: Answer) -> None:
        now = time.monotonic()
        self.first = self.first or now
        self.last = now
        self.by_code[answer.code.name] += 1
        self.by_kind[kind] += 1
        self.rpcs.add(method.full_name)
        if answer.code is not grpc.StatusCode.OK:
            info = error_info(answer)
            if info is not None:
                self.refusals[(method.name, info.reason, info.metadata.get("field", ""))] += 1

    def lines(self) -> list[str]:
        sent = sum(self.by_code.values())
        if not sent:
            return []
        codes = ", ".join(f"{code} {n:,}" for code, n in self.by_code.most_common())
        kinds = ", ".join(f"{kind} {n:,}" for kind, n in self.by_kind.most_common())
        common = "; ".join(
            f"{rpc} {reason} {name or '-'} {n:,}" for (rpc, reason, name), n in self.refusals.most_common(8)
        )
        return [
            f"fuzz: {sent:,} messages to {len(self.rpcs)} RPCs in {self.last - self.first:.0f} s",
            f"fuzz: by status: {codes}",
            f"fuzz: by kind: {kinds}",
            f"fuzz: most frequent refusals (RPC, reason, field): {common}",
        ]


TALLY = Tally()
