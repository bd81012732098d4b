"""AuthorizationService: thin — proto in, hub call, proto out."""

from __future__ import annotations

import grpc

from onecard.auth.v1 import authorization_service_pb2 as pb
from onecard.auth.v1 import authorization_service_pb2_grpc as pb_grpc
from onecard_hub import offline
from onecard_hub.api import convert
from onecard_hub.api.identity import Identity
from onecard_hub.api.offline import offline_batch, upload_response
from onecard_hub.domain.model import Terminal
from onecard_hub.hub import Hub
from onecard_hub.security.protect import RequestFingerprint


class AuthorizationServicer(pb_grpc.AuthorizationServiceServicer):
    def __init__(self, hub: Hub, fingerprint: RequestFingerprint, identity: Identity) -> None:
        self._hub = hub
        self._fingerprint = fingerprint
        self._identity = identity

    def _caller(self, context: grpc.aio.ServicerContext) -> Terminal:
        return self._identity.terminal(context)

    async def Authorize(
        self, request: pb.AuthorizeRequest, context: grpc.aio.ServicerContext
    ) -> pb.AuthorizeResponse:
        tap = convert.tap(request, self._caller(context))
        fingerprint = self._fingerprint("Authorize", request.SerializeToString(deterministic=True))
        return await self._hub.authorize(
            tap, fingerprint, convert.authorize_response, pb.AuthorizeResponse.FromString
        )

    async def Refund(self, request: pb.RefundRequest, context: grpc.aio.ServicerContext) -> pb.RefundResponse:
        terminal = self._caller(context)
        request_id = convert.request_id(request.request_id)
        convert.same_terminal(request.terminal_id, terminal)
        original = convert.request_id(request.original_request_id, "original_request_id")
        amount = convert.amount(request.amount_fen)
        refund_id = f"RF:{terminal.terminal_id}:{request_id}"
        return await self._hub.refund(
            terminal,
            request_id,
            original,
            amount,
            self._fingerprint("Refund", request.SerializeToString(deterministic=True)),
            lambda transfer, purchase: convert.refund_response(request_id, refund_id, transfer, purchase),
            pb.RefundResponse.FromString,
        )

    async def Reverse(
        self, request: pb.ReverseRequest, context: grpc.aio.ServicerContext
    ) -> pb.ReverseResponse:
        terminal = self._caller(context)
        request_id = convert.request_id(request.request_id)
        convert.same_terminal(request.terminal_id, terminal)
        original = convert.request_id(request.original_request_id, "original_request_id")
        return await self._hub.reverse(
            terminal,
            request_id,
            original,
            self._fingerprint("Reverse", request.SerializeToString(deterministic=True)),
            lambda outcome: convert.reverse_response(request_id, outcome),
            pb.ReverseResponse.FromString,
        )

    async def GetWalletBalance(
        self, request: pb.GetWalletBalanceRequest, context: grpc.aio.ServicerContext
    ) -> pb.GetWalletBalanceResponse:
        terminal = self._caller(context)
        convert.same_terminal(request.terminal_id, terminal)
        card, wallet = self._hub.wallet_of(terminal, convert.card_no(request.card_no))
        return pb.GetWalletBalanceResponse(
            balance_fen=wallet.balance_fen,
            holder_name_masked=card.student.name_masked,
            spent_today_fen=wallet.spent_today_fen,
            daily_limit_fen=self._hub.daily_limit_of(card),
        )

    async def UploadOfflineBatch(
        self, request: pb.UploadOfflineBatchRequest, context: grpc.aio.ServicerContext
    ) -> pb.UploadOfflineBatchResponse:
        terminal = self._caller(context)
        request_id, transactions = offline_batch(request, terminal, self._hub.clock.now_ms())
        return await offline.upload_offline_batch(
            self._hub,
            terminal,
            request_id,
            transactions,
            self._fingerprint("UploadOfflineBatch", request.SerializeToString(deterministic=True)),
            upload_response,
            pb.UploadOfflineBatchResponse.FromString,
        )
