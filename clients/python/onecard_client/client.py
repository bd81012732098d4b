"""The async Python client of the hub, for terminals, simulators, load tests and vendors.

Calls carry a default deadline; UNAVAILABLE is retried with backoff and the same
request (so the same request_id: the hub answers a retry with the original response);
every other failure raises the matching OneCardError at once.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TypeVar

import grpc

from onecard.admin.v1 import admin_service_pb2 as admin_pb
from onecard.admin.v1 import admin_service_pb2_grpc as admin_grpc
from onecard.auth.v1 import authorization_service_pb2 as auth_pb
from onecard.auth.v1 import authorization_service_pb2_grpc as auth_grpc
from onecard.terminal.v1 import terminal_service_pb2 as term_pb
from onecard.terminal.v1 import terminal_service_pb2_grpc as term_grpc
from onecard_client.errors import UnavailableError, from_rpc_error
from onecard_client.hub_time import HubTime

TERMINAL_HEADER = "onecard-terminal-id"
OPERATOR_HEADER = "onecard-operator-id"

R = TypeVar("R")


@dataclass(frozen=True)
class RetryConfig:
    attempts: int = 4  # the first try included
    initial_backoff_s: float = 0.05
    max_backoff_s: float = 1.0


@dataclass(frozen=True)
class ClientConfig:
    target: str = "127.0.0.1:50051"
    deadline_s: float = 2.0
    retry: RetryConfig = RetryConfig()
    keepalive_ms: int = 30_000


def _channel(config: ClientConfig) -> grpc.aio.Channel:
    return grpc.aio.insecure_channel(
        config.target,
        options=[
            ("grpc.keepalive_time_ms", config.keepalive_ms),
            ("grpc.keepalive_permit_without_calls", 0),
        ],
    )


class _Base:
    def __init__(self, config: ClientConfig, metadata: tuple[tuple[str, str], ...]) -> None:
        self.config = config
        self._metadata = metadata
        self._channel = _channel(config)

    async def close(self) -> None:
        await self._channel.close()

    async def __aenter__(self):  # type: ignore[no-untyped-def]
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def _call(self, method: Callable[..., Awaitable[R]], request: object) -> R:
        retry = self.config.retry
        backoff = retry.initial_backoff_s
        for attempt in range(1, retry.attempts + 1):
            try:
                return await method(request, timeout=self.config.deadline_s, metadata=self._metadata)
            except grpc.RpcError as exc:
                error = from_rpc_error(exc)
            if not isinstance(error, UnavailableError) or attempt == retry.attempts:
                raise error
            await asyncio.sleep(backoff * (0.5 + random.random()))
            backoff = min(backoff * 2, retry.max_backoff_s)
        raise AssertionError("unreachable")


class TerminalClient(_Base):
    """A terminal's connection: authorize taps, refund, reverse, read balances and the clock."""

    def __init__(self, terminal_id: str, config: ClientConfig | None = None) -> None:
        super().__init__(config or ClientConfig(), ((TERMINAL_HEADER, terminal_id),))
        self.terminal_id = terminal_id
        self._auth = auth_grpc.AuthorizationServiceStub(self._channel)
        self._terminal = term_grpc.TerminalServiceStub(self._channel)

    async def authorize(self, request: auth_pb.AuthorizeRequest) -> auth_pb.AuthorizeResponse:
        return await self._call(self._auth.Authorize, request)

    async def refund(
        self, request_id: str, original_request_id: str, amount_fen: int
    ) -> auth_pb.RefundResponse:
        return await self._call(
            self._auth.Refund,
            auth_pb.RefundRequest(
                request_id=request_id,
                terminal_id=self.terminal_id,
                original_request_id=original_request_id,
                amount_fen=amount_fen,
            ),
        )

    async def reverse(self, request_id: str, original_request_id: str) -> auth_pb.ReverseResponse:
        return await self._call(
            self._auth.Reverse,
            auth_pb.ReverseRequest(
                request_id=request_id, terminal_id=self.terminal_id, original_request_id=original_request_id
            ),
        )

    async def wallet_balance(self, card_no: str) -> auth_pb.GetWalletBalanceResponse:
        return await self._call(
            self._auth.GetWalletBalance,
            auth_pb.GetWalletBalanceRequest(terminal_id=self.terminal_id, card_no=card_no),
        )

    async def clock(self) -> term_pb.GetClockResponse:
        return await self._call(
            self._terminal.GetClock, term_pb.GetClockRequest(terminal_id=self.terminal_id)
        )

    async def hub_time(self) -> HubTime:
        response = await self.clock()
        return HubTime.from_clock(response.now.ToMilliseconds(), response.speed or 1.0)


class AdminClient(_Base):
    """An operator's connection to the AdminService."""

    def __init__(self, operator_id: str, config: ClientConfig | None = None) -> None:
        super().__init__(config or ClientConfig(), ((OPERATOR_HEADER, operator_id),))
        self._admin = admin_grpc.AdminServiceStub(self._channel)

    async def register_terminal(
        self, request_id: str, terminal: admin_pb.Terminal
    ) -> admin_pb.RegisterTerminalResponse:
        return await self._call(
            self._admin.RegisterTerminal,
            admin_pb.RegisterTerminalRequest(request_id=request_id, terminal=terminal),
        )

    async def get_terminal(self, terminal_id: str) -> admin_pb.GetTerminalResponse:
        return await self._call(self._admin.GetTerminal, admin_pb.GetTerminalRequest(terminal_id=terminal_id))

    async def ledger_summary(self) -> admin_pb.GetLedgerSummaryResponse:
        return await self._call(self._admin.GetLedgerSummary, admin_pb.GetLedgerSummaryRequest())
