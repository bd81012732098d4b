"""The hub's one error tree. The API layer maps each class to one gRPC status code.

    HubError
    ├── InvalidArgument      INVALID_ARGUMENT   a field is missing, malformed or out of range
    ├── Unauthenticated      UNAUTHENTICATED    no caller identity, or an unknown caller
    ├── PermissionDenied     PERMISSION_DENIED  a known caller outside its scope
    ├── NotFound             NOT_FOUND          the named object does not exist
    ├── AlreadyExists        ALREADY_EXISTS     the object exists with other values
    ├── FailedPrecondition   FAILED_PRECONDITION an illegal state change, a reused request_id
    ├── Overloaded           RESOURCE_EXHAUSTED a queue bound or rate limit was hit
    └── Unavailable          UNAVAILABLE        shutting down, or the journal failed

`reason` is an ErrorReason name of onecard.common.v1 without its prefix. `message` is
written for the client: it never holds personal data or internal exception text, and it
quotes what the client sent only through `quoted` (an error must stay small whatever the
request held: it travels in the call's trailing metadata).
"""

from __future__ import annotations

MAX_QUOTED_CHARS = 40


def quoted(value: object, limit: int = MAX_QUOTED_CHARS) -> str:
    """`value` for an error message: its repr, of at most `limit` characters of it, then "…"."""
    text = str(value)
    if len(text) <= limit:
        return repr(text)
    return repr(text[:limit]) + "…"


class HubError(Exception):
    reason = "INTERNAL"

    def __init__(
        self,
        message: str,
        *,
        reason: str | None = None,
        field: str | None = None,
        metadata: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        if reason is not None:
            self.reason = reason
        self.field = field
        # More ErrorInfo metadata, e.g. {"state": "replaced"} for ILLEGAL_TRANSITION.
        self.metadata = metadata or {}


class InvalidArgument(HubError):
    reason = "FIELD_INVALID"

    def __init__(self, field: str, problem: str) -> None:
        super().__init__(f"{field}: {problem}", field=field)


class Unauthenticated(HubError):
    reason = "CALLER_UNKNOWN"


class PermissionDenied(HubError):
    reason = "OTHER_SCHOOL"


class NotFound(HubError):
    reason = "NOT_FOUND"


class AlreadyExists(HubError):
    reason = "ALREADY_EXISTS"


class FailedPrecondition(HubError):
    reason = "FAILED_PRECONDITION"


class Overloaded(HubError):
    reason = "OVERLOADED"


class Unavailable(HubError):
    reason = "UNAVAILABLE"
