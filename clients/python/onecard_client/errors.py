"""The SDK's exceptions: one class per gRPC code, built from google.rpc.Status.

    OneCardError
    ├── InvalidArgumentError      the request is malformed; `field` names what
    ├── UnauthenticatedError      no or unknown caller identity
    ├── PermissionDeniedError     a known caller outside its scope
    ├── NotFoundError
    ├── AlreadyExistsError
    ├── FailedPreconditionError   e.g. reason IDEMPOTENCY_KEY_REUSED
    ├── ResourceExhaustedError    rate limit or overload: slow down
    ├── UnavailableError          retryable with the same request_id
    ├── DeadlineExceededError
    ├── InternalError             quote `correlation_id` to the hub's operators
    └── TLSConfigurationError     the TLS handshake failed, or the TLS files cannot be read:
                                  a configuration to fix, never retried

A raw grpc.RpcError never leaves the SDK.
"""

from __future__ import annotations

from typing import Any

import grpc
from google.rpc import error_details_pb2, status_pb2

__all__ = [
    "AlreadyExistsError",
    "DeadlineExceededError",
    "FailedPreconditionError",
    "InternalError",
    "InvalidArgumentError",
    "NotFoundError",
    "OneCardError",
    "PermissionDeniedError",
    "ResourceExhaustedError",
    "TLSConfigurationError",
    "UnauthenticatedError",
    "UnavailableError",
    "from_rpc_error",
]


class OneCardError(Exception):
    code: grpc.StatusCode = grpc.StatusCode.UNKNOWN

    def __init__(self, message: str, *, reason: str = "", metadata: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.reason = reason
        self.metadata = metadata or {}

    @property
    def field(self) -> str:
        return self.metadata.get("field", "")

    @property
    def correlation_id(self) -> str:
        return self.metadata.get("correlation_id", "")

    def __str__(self) -> str:
        return f"{self.code.name}: {self.message}" + (f" [{self.reason}]" if self.reason else "")


class InvalidArgumentError(OneCardError):
    code = grpc.StatusCode.INVALID_ARGUMENT


class UnauthenticatedError(OneCardError):
    code = grpc.StatusCode.UNAUTHENTICATED


class PermissionDeniedError(OneCardError):
    code = grpc.StatusCode.PERMISSION_DENIED


class NotFoundError(OneCardError):
    code = grpc.StatusCode.NOT_FOUND


class AlreadyExistsError(OneCardError):
    code = grpc.StatusCode.ALREADY_EXISTS


class FailedPreconditionError(OneCardError):
    code = grpc.StatusCode.FAILED_PRECONDITION


class ResourceExhaustedError(OneCardError):
    code = grpc.StatusCode.RESOURCE_EXHAUSTED


class UnavailableError(OneCardError):
    code = grpc.StatusCode.UNAVAILABLE


class DeadlineExceededError(OneCardError):
    code = grpc.StatusCode.DEADLINE_EXCEEDED


class InternalError(OneCardError):
    code = grpc.StatusCode.INTERNAL


class TLSConfigurationError(OneCardError):
    """The TLS setup is wrong: a file cannot be read, the hub's certificate is not signed by
    the configured CA, the hub speaks plain text, or the hub refused this client's certificate.

    The transport reports these as UNAVAILABLE; retrying cannot help, so the SDK does not.
    """

    code = grpc.StatusCode.UNAVAILABLE


_BY_CODE: dict[grpc.StatusCode, type[OneCardError]] = {
    cls.code: cls
    for cls in (
        InvalidArgumentError,
        UnauthenticatedError,
        PermissionDeniedError,
        NotFoundError,
        AlreadyExistsError,
        FailedPreconditionError,
        ResourceExhaustedError,
        UnavailableError,
        DeadlineExceededError,
        InternalError,
    )
}

_STATUS_KEY = "grpc-status-details-bin"


def from_rpc_error(error: grpc.RpcError) -> OneCardError:
    """Turns a failed call into the SDK's exception, reading the ErrorInfo when present."""
    code = error.code() if hasattr(error, "code") else grpc.StatusCode.UNKNOWN
    message = (error.details() if hasattr(error, "details") else "") or code.name
    reason, metadata = "", {}
    trailing = error.trailing_metadata() if hasattr(error, "trailing_metadata") else None
    for item in trailing or ():
        entry: Any = item  # grpc.aio gives _Metadatum objects, grpc gives tuples
        key, value = (entry.key, entry.value) if hasattr(entry, "key") else (entry[0], entry[1])
        if key == _STATUS_KEY and isinstance(value, bytes):
            status = status_pb2.Status.FromString(value)
            message = status.message or message
            for detail in status.details:
                info = error_details_pb2.ErrorInfo()
                if detail.Unpack(info):
                    reason, metadata = info.reason, dict(info.metadata)
    cls = _BY_CODE.get(code, OneCardError)
    exc = cls(message, reason=reason, metadata=metadata)
    if cls is OneCardError:
        exc.code = code
    return exc
