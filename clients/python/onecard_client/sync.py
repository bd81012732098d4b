"""The blocking clients: the same methods, retry rules and typed errors as the async ones.

from onecard_client import ClientConfig
from onecard_client.sync import TerminalClient

with TerminalClient("T-001", ClientConfig(target="127.0.0.1:50051")) as terminal:
    balance = terminal.wallet_balance("JX0001")
"""

from __future__ import annotations

from onecard_client._card_office_sync import CardOfficeClient
from onecard_client._config import ClientConfig, RetryConfig, TLSConfig
from onecard_client._funds_sync import FundsClient
from onecard_client._grants_sync import GrantsClient
from onecard_client._scenes_sync import ExamAdminClient, LibraryAdminClient
from onecard_client._settlement_sync import SettlementClient
from onecard_client._sync_client import AdminClient, ECardClient, StudentRecordsClient, TerminalClient

__all__ = [
    "AdminClient",
    "CardOfficeClient",
    "ClientConfig",
    "ECardClient",
    "ExamAdminClient",
    "FundsClient",
    "GrantsClient",
    "LibraryAdminClient",
    "RetryConfig",
    "SettlementClient",
    "StudentRecordsClient",
    "TLSConfig",
    "TerminalClient",
]
