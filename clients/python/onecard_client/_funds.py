"""FundsClient (async): top-up (圈存) from the holder's bank account, the manual-review queue, auto
top-up, the bank function and change of co-branded bank (onecard.funds.v1.FundsService).

An operator (`FundsClient(operator_id)`) acts on their school's students; a self-service kiosk
(`FundsClient(terminal_id, kiosk=True)`) on the card it read. Every mutating call takes the caller's
`request_id`: the same id and body answer the original response (TopUp: the top-up as it is now).
"""

from __future__ import annotations

from onecard.cardoffice.v1 import card_office_service_pb2 as card_office_pb
from onecard.funds.v1 import funds_service_pb2 as pb
from onecard.funds.v1 import funds_service_pb2_grpc as pb_grpc
from onecard_client._async_client import _AsyncClient
from onecard_client._channel import OPERATOR_HEADER, TERMINAL_HEADER
from onecard_client._config import ClientConfig


class FundsClient(_AsyncClient):
    """Top-ups, manual review, auto top-up and the bank function."""

    def __init__(self, caller_id: str, config: ClientConfig | None = None, *, kiosk: bool = False) -> None:
        super().__init__(config or ClientConfig(), TERMINAL_HEADER if kiosk else OPERATOR_HEADER, caller_id)
        self.caller_id = caller_id
        self._funds = pb_grpc.FundsServiceStub(self._channel)

    async def top_up(
        self,
        request_id: str,
        amount_fen: int,
        *,
        card_no: str = "",
        student_id: str = "",
        deadline_s: float | None = None,
    ) -> pb.TopUpResponse:
        """圈存 from the holder's bank account: exactly one of `card_no` (a kiosk: the card it read) and
        `student_id`. Answers POSTED or VOIDED, or PENDING when the bank is slow: poll `get_top_up`."""
        request = pb.TopUpRequest(
            request_id=request_id, amount_fen=amount_fen, card_no=card_no, student_id=student_id
        )
        return await self._call(self._funds.TopUp, request, deadline_s)

    async def get_top_up(self, topup_id: str, *, deadline_s: float | None = None) -> pb.GetTopUpResponse:
        return await self._call(self._funds.GetTopUp, pb.GetTopUpRequest(topup_id=topup_id), deadline_s)

    async def list_manual_review(
        self, *, school_id: str = "", deadline_s: float | None = None
    ) -> pb.ListManualReviewResponse:
        """Top-ups whose outcome the bank never made definite: an operator resolves them."""
        request = pb.ListManualReviewRequest(school_id=school_id)
        return await self._call(self._funds.ListManualReview, request, deadline_s)

    async def resolve_manual_review(
        self,
        request_id: str,
        topup_id: str,
        resolution: pb.Resolution.ValueType,
        note: str,
        *,
        deadline_s: float | None = None,
    ) -> pb.ResolveManualReviewResponse:
        """POSTED or VOIDED, checked against the bank when it answers; audit-logged with `note`."""
        request = pb.ResolveManualReviewRequest(
            request_id=request_id, topup_id=topup_id, resolution=resolution, note=note
        )
        return await self._call(self._funds.ResolveManualReview, request, deadline_s)

    async def set_auto_top_up(
        self,
        request_id: str,
        threshold_fen: int,
        amount_fen: int,
        enabled: bool,
        *,
        card_no: str = "",
        student_id: str = "",
        deadline_s: float | None = None,
    ) -> pb.SetAutoTopUpResponse:
        request = pb.SetAutoTopUpRequest(
            request_id=request_id,
            card_no=card_no,
            student_id=student_id,
            threshold_fen=threshold_fen,
            amount_fen=amount_fen,
            enabled=enabled,
        )
        return await self._call(self._funds.SetAutoTopUp, request, deadline_s)

    async def get_bank_function(
        self, student_id: str, *, deadline_s: float | None = None
    ) -> pb.GetBankFunctionResponse:
        request = pb.GetBankFunctionRequest(student_id=student_id)
        return await self._call(self._funds.GetBankFunction, request, deadline_s)

    async def change_bank(
        self,
        request_id: str,
        student_id: str,
        new_bank_code: str,
        holder_id_number: str,
        *,
        guardian_id_number: str = "",
        deadline_s: float | None = None,
    ) -> pb.ChangeBankResponse:
        """Opens and links the account at `new_bank_code`; the old one closes once its top-ups settle."""
        request = pb.ChangeBankRequest(
            request_id=request_id,
            student_id=student_id,
            new_bank_code=new_bank_code,
            proof=card_office_pb.IdentityProof(
                holder_id_number=holder_id_number, guardian_id_number=guardian_id_number
            ),
        )
        return await self._call(self._funds.ChangeBank, request, deadline_s)
