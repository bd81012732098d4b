"""The async Python client of the hub, for terminals, simulators, load tests and vendors.

Calls carry a default deadline; UNAVAILABLE is retried with backoff and the same
request (so the same request_id: the hub answers a retry with the original response);
every other failure raises the matching OneCardError at once. `onecard_client.sync`
holds the blocking twins of these clients.
"""

from __future__ import annotations

from onecard_client._async_client import AdminClient, ECardClient, StudentRecordsClient, TerminalClient
from onecard_client._card_office import CardOfficeClient
from onecard_client._channel import OPERATOR_HEADER, TERMINAL_HEADER
from onecard_client._config import ClientConfig, RetryConfig, TLSConfig
from onecard_client._scenes import ExamAdminClient, LibraryAdminClient

__all__ = [
    "OPERATOR_HEADER",
    "TERMINAL_HEADER",
    "AdminClient",
    "CardOfficeClient",
    "ClientConfig",
    "ECardClient",
    "ExamAdminClient",
    "LibraryAdminClient",
    "RetryConfig",
    "StudentRecordsClient",
    "TLSConfig",
    "TerminalClient",
]
