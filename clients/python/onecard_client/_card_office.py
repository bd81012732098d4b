"""CardOfficeClient (async): an operator's connection to the CardOfficeService (卡务).

Every mutating call takes the caller's `request_id`: the same id and body answer the original
response (also after a retry on UNAVAILABLE). Answers of IssueCard, BulkIssueCards and
ReplaceCard carry the new card's keys (`personalization`): give them only to the device that
writes the chip. ID numbers and PINs travel in requests only; the hub never sends them back.
"""

from __future__ import annotations

from collections.abc import Iterable

from onecard.cardoffice.v1 import card_office_service_pb2 as pb
from onecard.cardoffice.v1 import card_office_service_pb2_grpc as pb_grpc
from onecard_client._async_client import _AsyncClient
from onecard_client._channel import OPERATOR_HEADER
from onecard_client._config import ClientConfig

THIRD_GENERATION = pb.CARD_GENERATION_THIRD


def proof(holder_id_number: str, guardian_id_number: str = "") -> pb.IdentityProof:
    return pb.IdentityProof(holder_id_number=holder_id_number, guardian_id_number=guardian_id_number)


class CardOfficeClient(_AsyncClient):
    """The card office's calls; a clerk acts only on their own school's students."""

    def __init__(self, operator_id: str, config: ClientConfig | None = None) -> None:
        super().__init__(config or ClientConfig(), OPERATOR_HEADER, operator_id)
        self.operator_id = operator_id
        self._office = pb_grpc.CardOfficeServiceStub(self._channel)

    async def issue_card(
        self,
        request_id: str,
        student_id: str,
        bank_code: str,
        initial_pin: str,
        *,
        generation: int = THIRD_GENERATION,
        guardian: pb.Guardian | None = None,
        deadline_s: float | None = None,
    ) -> pb.IssueCardResponse:
        """A card for a student without one; a minor needs `guardian` unless one is registered."""
        request = pb.IssueCardRequest(
            request_id=request_id,
            student_id=student_id,
            bank_code=bank_code,
            generation=generation,  # type: ignore[arg-type]
            initial_pin=initial_pin,
            guardian=guardian,
        )
        return await self._call(self._office.IssueCard, request, deadline_s)

    async def bulk_issue_cards(
        self, request_id: str, rows: Iterable[pb.BulkIssueRow], *, deadline_s: float | None = None
    ) -> pb.BulkIssueCardsResponse:
        request = pb.BulkIssueCardsRequest(request_id=request_id, rows=list(rows))
        return await self._call(self._office.BulkIssueCards, request, deadline_s)

    async def enable_identity(
        self, request_id: str, card_no: str, *, deadline_s: float | None = None
    ) -> pb.EnableIdentityResponse:
        request = pb.EnableIdentityRequest(request_id=request_id, card_no=card_no)
        return await self._call(self._office.EnableIdentity, request, deadline_s)

    async def report_loss(
        self, request_id: str, card_no: str, *, deadline_s: float | None = None
    ) -> pb.ReportLossResponse:
        request = pb.ReportLossRequest(request_id=request_id, card_no=card_no)
        return await self._call(self._office.ReportLoss, request, deadline_s)

    async def unlock(
        self,
        request_id: str,
        card_no: str,
        holder_id_number: str,
        guardian_id_number: str = "",
        *,
        deadline_s: float | None = None,
    ) -> pb.UnlockResponse:
        request = pb.UnlockRequest(
            request_id=request_id, card_no=card_no, proof=proof(holder_id_number, guardian_id_number)
        )
        return await self._call(self._office.Unlock, request, deadline_s)

    async def replace_card(
        self,
        request_id: str,
        card_no: str,
        bank_code: str,
        initial_pin: str,
        holder_id_number: str,
        guardian_id_number: str = "",
        *,
        generation: int = THIRD_GENERATION,
        deadline_s: float | None = None,
    ) -> pb.ReplaceCardResponse:
        request = pb.ReplaceCardRequest(
            request_id=request_id,
            card_no=card_no,
            bank_code=bank_code,
            generation=generation,  # type: ignore[arg-type]
            initial_pin=initial_pin,
            proof=proof(holder_id_number, guardian_id_number),
        )
        return await self._call(self._office.ReplaceCard, request, deadline_s)

    async def freeze_card(
        self, request_id: str, card_no: str, *, deadline_s: float | None = None
    ) -> pb.FreezeCardResponse:
        request = pb.FreezeCardRequest(request_id=request_id, card_no=card_no)
        return await self._call(self._office.FreezeCard, request, deadline_s)

    async def unfreeze_card(
        self, request_id: str, card_no: str, *, deadline_s: float | None = None
    ) -> pb.UnfreezeCardResponse:
        request = pb.UnfreezeCardRequest(request_id=request_id, card_no=card_no)
        return await self._call(self._office.UnfreezeCard, request, deadline_s)

    async def change_pin(
        self, request_id: str, card_no: str, old_pin: str, new_pin: str, *, deadline_s: float | None = None
    ) -> pb.ChangePinResponse:
        request = pb.ChangePinRequest(
            request_id=request_id, card_no=card_no, old_pin=old_pin, new_pin=new_pin
        )
        return await self._call(self._office.ChangePin, request, deadline_s)

    async def reset_pin(
        self,
        request_id: str,
        card_no: str,
        new_pin: str,
        holder_id_number: str,
        guardian_id_number: str = "",
        *,
        deadline_s: float | None = None,
    ) -> pb.ResetPinResponse:
        request = pb.ResetPinRequest(
            request_id=request_id,
            card_no=card_no,
            new_pin=new_pin,
            proof=proof(holder_id_number, guardian_id_number),
        )
        return await self._call(self._office.ResetPin, request, deadline_s)

    async def set_guardian(
        self, request_id: str, student_id: str, guardian: pb.Guardian, *, deadline_s: float | None = None
    ) -> pb.SetGuardianResponse:
        request = pb.SetGuardianRequest(request_id=request_id, student_id=student_id, guardian=guardian)
        return await self._call(self._office.SetGuardian, request, deadline_s)

    async def suspend_ecard(
        self, request_id: str, card_no: str, *, deadline_s: float | None = None
    ) -> pb.SuspendECardResponse:
        request = pb.SuspendECardRequest(request_id=request_id, card_no=card_no)
        return await self._call(self._office.SuspendECard, request, deadline_s)

    async def resume_ecard(
        self, request_id: str, card_no: str, *, deadline_s: float | None = None
    ) -> pb.ResumeECardResponse:
        request = pb.ResumeECardRequest(request_id=request_id, card_no=card_no)
        return await self._call(self._office.ResumeECard, request, deadline_s)

    async def get_card(
        self, card_no: str = "", *, student_id: str = "", deadline_s: float | None = None
    ) -> pb.GetCardResponse:
        """By card number, or (`student_id=`) the student's current card."""
        request = pb.GetCardRequest(card_no=card_no, student_id=student_id)
        return await self._call(self._office.GetCard, request, deadline_s)

    async def query_audit_log(
        self,
        *,
        student_id: str = "",
        operator_id: str = "",
        page_size: int = 0,
        page_token: str = "",
        deadline_s: float | None = None,
    ) -> pb.QueryAuditLogResponse:
        """One page, newest first; pass `next_page_token` back for the next."""
        request = pb.QueryAuditLogRequest(
            student_id=student_id, operator_id=operator_id, page_size=page_size, page_token=page_token
        )
        return await self._call(self._office.QueryAuditLog, request, deadline_s)
