"""The do-nothing server of the benchmark: the yardstick the hub is measured against.

It serves the same contract as the hub — AuthorizationService.Authorize and TerminalService.GetClock —
on grpc.aio with uvloop, and does no work beyond building the answer: every Authorize gets a fixed,
realistically filled approval (display text, masked name, balance, authorization id, decision time),
with the caller's request_id echoed back. GetClock answers a simulated clock of its own, started from
`--clock-start` at `--clock-speed`, so the load generator talks to it exactly as it talks to the hub.

    python scripts/echo_server.py --listen 127.0.0.1:50099 --clock-start 2026-11-24T12:00:00+08:00

With `--tls DIR` it serves mutual TLS like `onecard-hub serve --tls DIR` (DIR made by `onecard-hub pki`):
the server certificate of DIR, and a client certificate of DIR's CA required. Prints a line containing
"listening" once it accepts calls; SIGTERM or SIGINT stop it.
"""

from __future__ import annotations

import argparse
import asyncio
import signal
import sys
import time
from collections.abc import AsyncIterator
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import grpc
from google.protobuf.timestamp_pb2 import Timestamp

from onecard.auth.v1 import authorization_service_pb2 as auth_pb2
from onecard.auth.v1 import authorization_service_pb2_grpc as auth_grpc
from onecard.terminal.v1 import terminal_service_pb2 as terminal_pb2
from onecard.terminal.v1 import terminal_service_pb2_grpc as terminal_grpc

CST = ZoneInfo("Asia/Shanghai")


def _parse_instant_ms(text: str) -> int:
    """An ISO-8601 instant to epoch ms; a time without a zone is read as China Standard Time."""
    value = datetime.fromisoformat(text)
    if value.tzinfo is None:
        value = value.replace(tzinfo=CST)
    return int(value.timestamp() * 1000)


def _timestamp(ms: int) -> Timestamp:
    stamp = Timestamp()
    stamp.FromMilliseconds(ms)
    return stamp


class SimulatedClock:
    """Starts at `start_ms` when made and runs `speed` times faster than real time."""

    def __init__(self, start_ms: int, speed: float) -> None:
        self.start_ms = start_ms
        self.speed = speed
        self.real_start_ms = time.time_ns() // 1_000_000
        self._mono_start = time.monotonic()

    def now_ms(self) -> int:
        return self.start_ms + int((time.monotonic() - self._mono_start) * 1000 * self.speed)


class EchoAuthorization(auth_grpc.AuthorizationServiceServicer):
    """Approves every tap with the same answer; only request_id is taken from the request."""

    def __init__(self, clock: SimulatedClock) -> None:
        self._decided_at = _timestamp(clock.now_ms())

    async def Authorize(
        self, request: auth_pb2.AuthorizeRequest, context: grpc.aio.ServicerContext[Any, Any]
    ) -> auth_pb2.AuthorizeResponse:
        return auth_pb2.AuthorizeResponse(
            request_id=request.request_id,
            decision=auth_pb2.DECISION_APPROVED,
            display_text="消费成功 余额9876.50元",
            holder_name_masked="张*三",
            balance_fen=987_650,
            authorization_id="az-01JD7Q8V2M4T6K9X3B5N7P1R0S",
            decided_at=self._decided_at,
        )

    async def Refund(
        self, request: auth_pb2.RefundRequest, context: grpc.aio.ServicerContext[Any, Any]
    ) -> auth_pb2.RefundResponse:
        await context.abort(grpc.StatusCode.UNIMPLEMENTED, "the do-nothing server only authorizes")

    async def Reverse(
        self, request: auth_pb2.ReverseRequest, context: grpc.aio.ServicerContext[Any, Any]
    ) -> auth_pb2.ReverseResponse:
        await context.abort(grpc.StatusCode.UNIMPLEMENTED, "the do-nothing server only authorizes")

    async def GetWalletBalance(
        self, request: auth_pb2.GetWalletBalanceRequest, context: grpc.aio.ServicerContext[Any, Any]
    ) -> auth_pb2.GetWalletBalanceResponse:
        await context.abort(grpc.StatusCode.UNIMPLEMENTED, "the do-nothing server only authorizes")

    async def UploadOfflineBatch(
        self, request: auth_pb2.UploadOfflineBatchRequest, context: grpc.aio.ServicerContext[Any, Any]
    ) -> auth_pb2.UploadOfflineBatchResponse:
        await context.abort(grpc.StatusCode.UNIMPLEMENTED, "the do-nothing server only authorizes")


class EchoTerminal(terminal_grpc.TerminalServiceServicer):
    """The server's simulated clock, in the hub's format."""

    def __init__(self, clock: SimulatedClock) -> None:
        self._clock = clock

    async def GetClock(
        self, request: terminal_pb2.GetClockRequest, context: grpc.aio.ServicerContext[Any, Any]
    ) -> terminal_pb2.GetClockResponse:
        clock = self._clock
        return terminal_pb2.GetClockResponse(
            now=_timestamp(clock.now_ms()),
            simulated=True,
            simulated_start=_timestamp(clock.start_ms),
            real_start=_timestamp(clock.real_start_ms),
            speed=clock.speed,
            time_zone="Asia/Shanghai",
        )

    async def GetConfig(
        self, request: terminal_pb2.GetConfigRequest, context: grpc.aio.ServicerContext[Any, Any]
    ) -> terminal_pb2.GetConfigResponse:
        await context.abort(grpc.StatusCode.UNIMPLEMENTED, "the do-nothing server only tells the time")

    async def Heartbeat(
        self, request: terminal_pb2.HeartbeatRequest, context: grpc.aio.ServicerContext[Any, Any]
    ) -> terminal_pb2.HeartbeatResponse:
        await context.abort(grpc.StatusCode.UNIMPLEMENTED, "the do-nothing server only tells the time")

    async def WatchBlocklist(
        self, request: terminal_pb2.WatchBlocklistRequest, context: grpc.aio.ServicerContext[Any, Any]
    ) -> AsyncIterator[terminal_pb2.WatchBlocklistResponse]:
        await context.abort(grpc.StatusCode.UNIMPLEMENTED, "the do-nothing server only tells the time")
        yield terminal_pb2.WatchBlocklistResponse()  # never reached: abort raises


def server_credentials(pki: Path) -> grpc.ServerCredentials:
    """Mutual TLS as the hub serves it with `serve --tls DIR`: its server certificate, and a client
    certificate of its CA required (the do-nothing server reads no identity from it)."""
    return grpc.ssl_server_credentials(
        [((pki / "server.key").read_bytes(), (pki / "server.crt").read_bytes())],
        root_certificates=(pki / "ca.crt").read_bytes(),
        require_client_auth=True,
    )


async def serve(listen: str, clock: SimulatedClock, tls: Path | None = None) -> None:
    server = grpc.aio.server()
    auth_grpc.add_AuthorizationServiceServicer_to_server(EchoAuthorization(clock), server)
    terminal_grpc.add_TerminalServiceServicer_to_server(EchoTerminal(clock), server)
    if tls is None:
        port = server.add_insecure_port(listen)
    else:
        port = server.add_secure_port(listen, server_credentials(tls))
    if port == 0:
        raise SystemExit(f"echo server: cannot listen on {listen}")
    await server.start()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    host = listen.rsplit(":", 1)[0]
    print(f"echo server listening on {host}:{port} ({'mutual TLS' if tls else 'plain text'})", flush=True)
    await stop.wait()
    await server.stop(grace=1.0)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--listen", default="127.0.0.1:50099", help="HOST:PORT (port 0 picks a free one)")
    parser.add_argument("--clock-start", default="2026-11-24T12:00:00+08:00", help="simulated start instant")
    parser.add_argument("--clock-speed", type=float, default=1.0, help="simulated seconds per real second")
    parser.add_argument(
        "--tls",
        type=Path,
        default=None,
        metavar="DIR",
        help="serve mutual TLS with the PKI in DIR, as `onecard-hub serve --tls DIR` does",
    )
    args = parser.parse_args(argv)
    clock = SimulatedClock(_parse_instant_ms(args.clock_start), args.clock_speed)
    try:
        import uvloop
    except ImportError:
        print("echo server: uvloop is not installed, using the default event loop", file=sys.stderr)
        asyncio.run(serve(args.listen, clock, args.tls))
    else:
        uvloop.run(serve(args.listen, clock, args.tls))


if __name__ == "__main__":
    main()
