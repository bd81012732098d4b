"""OneCard Hub's Python SDK: async clients (here), blocking ones (`onecard_client.sync`),
typed errors, credential formats and a hub for integrators' tests (`onecard_client.testing`).

    from onecard_client import ClientConfig, TLSConfig, TerminalClient

    config = ClientConfig(target="hub.example:50051", tls=TLSConfig.for_terminal("pki", "T-001"))
    async with TerminalClient("T-001", config) as terminal:
        response = await terminal.authorize(request)
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from onecard_client._async_client import AdminClient, ECardClient, StudentRecordsClient, TerminalClient
    from onecard_client._card_office import CardOfficeClient
    from onecard_client._config import ClientConfig, RetryConfig, TLSConfig
    from onecard_client._funds import FundsClient
    from onecard_client._grants import GrantsClient
    from onecard_client._scenes import ExamAdminClient, LibraryAdminClient
    from onecard_client._settlement import SettlementClient
    from onecard_client.errors import (
        AlreadyExistsError,
        DeadlineExceededError,
        FailedPreconditionError,
        InternalError,
        InvalidArgumentError,
        NotFoundError,
        OneCardError,
        PermissionDeniedError,
        ResourceExhaustedError,
        TLSConfigurationError,
        UnauthenticatedError,
        UnavailableError,
    )
    from onecard_client.hub_time import HubTime

__all__ = [
    "AdminClient",
    "AlreadyExistsError",
    "CardOfficeClient",
    "ClientConfig",
    "DeadlineExceededError",
    "ECardClient",
    "ExamAdminClient",
    "FailedPreconditionError",
    "FundsClient",
    "GrantsClient",
    "HubTime",
    "InternalError",
    "InvalidArgumentError",
    "LibraryAdminClient",
    "NotFoundError",
    "OneCardError",
    "PermissionDeniedError",
    "ResourceExhaustedError",
    "RetryConfig",
    "SettlementClient",
    "StudentRecordsClient",
    "TLSConfig",
    "TLSConfigurationError",
    "TerminalClient",
    "UnauthenticatedError",
    "UnavailableError",
]

# Loaded on first use: the hub imports `onecard_client.credentials` into its domain, which
# must not pull grpc in (tests/unit/test_domain_purity.py).
_HOMES = {
    "AdminClient": "_async_client",
    "CardOfficeClient": "_card_office",
    "ECardClient": "_async_client",
    "ExamAdminClient": "_scenes",
    "FundsClient": "_funds",
    "GrantsClient": "_grants",
    "LibraryAdminClient": "_scenes",
    "SettlementClient": "_settlement",
    "StudentRecordsClient": "_async_client",
    "TerminalClient": "_async_client",
    "ClientConfig": "_config",
    "RetryConfig": "_config",
    "TLSConfig": "_config",
    "HubTime": "hub_time",
}


def __getattr__(name: str) -> Any:
    if name not in __all__:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{_HOMES.get(name, 'errors')}"), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(__all__)
