"""ECardService: the e-card platform mints dynamic QR codes for the holder's phone app.

Open to any authenticated caller (with mutual TLS: any certificate the hub's CA issued; in plain
text: anyone); the holder is proven by `proof`, not by the caller.
"""

from __future__ import annotations

import grpc

from onecard.ecard.v1 import ecard_service_pb2 as pb
from onecard.ecard.v1 import ecard_service_pb2_grpc as pb_grpc
from onecard_client.credentials import MINT_PROOF_BYTES
from onecard_hub.api import convert
from onecard_hub.api.identity import Identity
from onecard_hub.domain.errors import InvalidArgument
from onecard_hub.ecard import mint_qr_code
from onecard_hub.hub import Hub


class ECardServicer(pb_grpc.ECardServiceServicer):
    def __init__(self, hub: Hub, identity: Identity) -> None:
        self._hub = hub
        self._identity = identity

    async def MintQrCode(
        self, request: pb.MintQrCodeRequest, context: grpc.aio.ServicerContext
    ) -> pb.MintQrCodeResponse:
        self._identity.any_caller(context)
        card_no = convert.card_no(request.card_no)
        requested_ms = convert.required_instant_ms(request, "requested_at")
        if len(request.proof) != MINT_PROOF_BYTES:
            raise InvalidArgument("proof", f"must be {MINT_PROOF_BYTES} bytes")
        minted = mint_qr_code(self._hub, card_no, requested_ms, request.proof)
        response = pb.MintQrCodeResponse(token=minted.token)
        response.expires_at.FromMilliseconds(minted.expires_ms)
        return response
