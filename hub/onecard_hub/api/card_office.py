"""CardOfficeService: proto in → use case (`card_office/`) → proto out.

Operators only (`Identity.operator`). An answer that carries card keys (issue, bulk issue,
replace) is kept for idempotent replays without them (`_redact_*`) and completed again from the
issuer keys on a replay (`_parse_*`): the request journal never holds a card key.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

import grpc
from google.protobuf.message import Message

from onecard.cardoffice.v1 import card_office_service_pb2 as pb
from onecard.cardoffice.v1 import card_office_service_pb2_grpc as pb_grpc
from onecard_hub.api import convert
from onecard_hub.api.identity import Identity
from onecard_hub.card_office import issuance, pins, queries, status
from onecard_hub.card_office.common import CardView, Personalization, Proof, personalization
from onecard_hub.domain.card_lifecycle import CardAction, ECardStatus
from onecard_hub.domain.errors import InvalidArgument
from onecard_hub.domain.guardian import Guardian, Relation
from onecard_hub.domain.model import BankStatus, CardStatus, Operator
from onecard_hub.hub import Hub
from onecard_hub.security.protect import RequestFingerprint

M = TypeVar("M", bound=Message)

_IDENTITY = {
    CardStatus.ACTIVE: pb.IDENTITY_STATUS_ACTIVE,
    CardStatus.NOT_ENABLED: pb.IDENTITY_STATUS_NOT_ENABLED,
    CardStatus.LOST: pb.IDENTITY_STATUS_LOST,
    CardStatus.FROZEN: pb.IDENTITY_STATUS_FROZEN,
    CardStatus.REPLACED: pb.IDENTITY_STATUS_REPLACED,
    CardStatus.CANCELLED: pb.IDENTITY_STATUS_CANCELLED,
}
_BANK = {
    BankStatus.NOT_ACTIVATED: pb.BANK_STATUS_NOT_ACTIVATED,
    BankStatus.ACTIVE: pb.BANK_STATUS_ACTIVE,
    BankStatus.LOST: pb.BANK_STATUS_LOST,
    BankStatus.FROZEN: pb.BANK_STATUS_FROZEN,
}
_ECARD = {
    ECardStatus.NOT_ISSUED: pb.ECARD_STATUS_NOT_ISSUED,
    ECardStatus.ACTIVE: pb.ECARD_STATUS_ACTIVE,
    ECardStatus.SUSPENDED: pb.ECARD_STATUS_SUSPENDED,
}
# GuardianRelation numbers 1.. follow the order of domain/guardian.py Relation.
_RELATIONS: dict[int, Relation] = dict(enumerate(Relation, start=1))
_RELATION_NUMBERS = {relation: number for number, relation in _RELATIONS.items()}


def _guardian_view(g: Guardian) -> pb.GuardianView:
    return pb.GuardianView(
        name_masked=g.name_masked,
        id_number_masked=g.id_masked,
        relation=_RELATION_NUMBERS[g.relation],  # type: ignore[arg-type]
    )


def card_message(v: CardView) -> pb.Card:
    card = v.card
    message = pb.Card(
        card_no=card.card_no,
        student_id=card.student.student_id,
        school_id=card.student.school_id,
        holder_name_masked=card.student.name_masked,
        identity_status=_IDENTITY[card.status],
        bank_status=_BANK[card.bank_status],
        bank_code=card.bank_code,
        generation=card.generation,  # type: ignore[arg-type]
        ecard_status=_ECARD[v.ecard],
        pin_failures=card.pin_failures,
        pin_locked=v.pin_locked,
        replaced_by=card.replaced_by,
        holder_is_minor=v.minor,
        guardians=[_guardian_view(g) for g in v.guardians],
    )
    if card.issued_ms:
        message.issued_at.FromMilliseconds(card.issued_ms)
    return message


def _keys(p: Personalization) -> pb.CardPersonalization:
    return pb.CardPersonalization(card_no=p.card_no, card_key=p.card_key, ecard_key=p.ecard_key)


def _guardian_input(m: pb.Guardian) -> issuance.GuardianInput:
    return issuance.GuardianInput(m.name, m.id_number, _RELATIONS.get(m.relation))


def _proof(m: pb.IdentityProof) -> Proof:
    return Proof(m.holder_id_number, m.guardian_id_number)


def _issue_order(
    student_id: str, bank_code: str, generation: int, pin: str, guardian: pb.Guardian | None
) -> issuance.IssueOrder:
    return issuance.IssueOrder(
        student_id, bank_code, generation, pin, _guardian_input(guardian) if guardian is not None else None
    )


class CardOfficeServicer(pb_grpc.CardOfficeServiceServicer):
    def __init__(self, hub: Hub, fingerprint: RequestFingerprint, identity: Identity) -> None:
        self._hub = hub
        self._fingerprint = fingerprint
        self._identity = identity

    def _operator(self, context: grpc.aio.ServicerContext) -> Operator:
        return self._identity.operator(context)

    def _restore_keys(self, message: pb.CardPersonalization) -> None:
        """Completes a personalization kept without its keys (an idempotent replay)."""
        card = self._hub.campus.cards.get(message.card_no)
        if card is not None:
            message.CopyFrom(_keys(personalization(self._hub, card)))

    # -- issuing ------------------------------------------------------------------

    async def IssueCard(
        self, request: pb.IssueCardRequest, context: grpc.aio.ServicerContext
    ) -> pb.IssueCardResponse:
        operator = self._operator(context)
        request_id = convert.request_id(request.request_id)
        guardian = request.guardian if request.HasField("guardian") else None
        order = _issue_order(
            request.student_id, request.bank_code, request.generation, request.initial_pin, guardian
        )

        def redact(response: pb.IssueCardResponse) -> bytes:
            kept = pb.IssueCardResponse()
            kept.CopyFrom(response)
            kept.personalization.ClearField("card_key")
            kept.personalization.ClearField("ecard_key")
            return kept.SerializeToString()

        def parse(body: bytes) -> pb.IssueCardResponse:
            response = pb.IssueCardResponse.FromString(body)
            self._restore_keys(response.personalization)
            return response

        return await issuance.issue_card(
            self._hub,
            operator,
            request_id,
            order,
            self._fingerprint.of("IssueCard", request),
            lambda issued: pb.IssueCardResponse(
                card=card_message(issued.view), personalization=_keys(issued.keys)
            ),
            parse,
            redact,
        )

    async def BulkIssueCards(
        self, request: pb.BulkIssueCardsRequest, context: grpc.aio.ServicerContext
    ) -> pb.BulkIssueCardsResponse:
        operator = self._operator(context)
        request_id = convert.request_id(request.request_id)
        orders = [
            _issue_order(
                row.student_id,
                row.bank_code,
                row.generation,
                row.initial_pin,
                row.guardian if row.HasField("guardian") else None,
            )
            for row in request.rows
        ]

        def render(results: list[issuance.RowResult]) -> pb.BulkIssueCardsResponse:
            response = pb.BulkIssueCardsResponse()
            for r in results:
                response.results.append(_row_result(r))
            response.issued = sum(1 for r in results if r.issued is not None)
            response.rejected = len(results) - response.issued
            return response

        def redact(response: pb.BulkIssueCardsResponse) -> bytes:
            kept = pb.BulkIssueCardsResponse()
            kept.CopyFrom(response)
            for result in kept.results:
                if not result.issued:
                    continue  # touching the sub-message would make an empty one appear
                result.personalization.ClearField("card_key")
                result.personalization.ClearField("ecard_key")
            return kept.SerializeToString()

        def parse(body: bytes) -> pb.BulkIssueCardsResponse:
            response = pb.BulkIssueCardsResponse.FromString(body)
            for result in response.results:
                if result.issued:
                    self._restore_keys(result.personalization)
            return response

        return await issuance.bulk_issue(
            self._hub,
            operator,
            request_id,
            orders,
            self._fingerprint.of("BulkIssueCards", request),
            render,
            parse,
            redact,
        )

    async def ReplaceCard(
        self, request: pb.ReplaceCardRequest, context: grpc.aio.ServicerContext
    ) -> pb.ReplaceCardResponse:
        operator = self._operator(context)
        request_id = convert.request_id(request.request_id)
        order = issuance.ReplaceOrder(
            request.card_no, request.bank_code, request.generation, request.initial_pin, _proof(request.proof)
        )

        def redact(response: pb.ReplaceCardResponse) -> bytes:
            kept = pb.ReplaceCardResponse()
            kept.CopyFrom(response)
            kept.personalization.ClearField("card_key")
            kept.personalization.ClearField("ecard_key")
            return kept.SerializeToString()

        def parse(body: bytes) -> pb.ReplaceCardResponse:
            response = pb.ReplaceCardResponse.FromString(body)
            self._restore_keys(response.personalization)
            return response

        return await issuance.replace_card(
            self._hub,
            operator,
            request_id,
            order,
            self._fingerprint.of("ReplaceCard", request),
            lambda r: pb.ReplaceCardResponse(
                old_card=card_message(r.old),
                new_card=card_message(r.new.view),
                personalization=_keys(r.new.keys),
            ),
            parse,
            redact,
        )

    # -- identity status ------------------------------------------------------------

    async def _identity_change(
        self,
        context: grpc.aio.ServicerContext,
        action: CardAction,
        request: pb.EnableIdentityRequest
        | pb.ReportLossRequest
        | pb.FreezeCardRequest
        | pb.UnfreezeCardRequest
        | pb.UnlockRequest,
        render: Callable[[status.StatusChanged], M],
        parse: Callable[[bytes], M],
        proof: Proof | None = None,
    ) -> M:
        operator = self._operator(context)
        request_id = convert.request_id(request.request_id)
        return await status.change_identity(
            self._hub,
            operator,
            action,
            request_id,
            request.card_no,
            self._fingerprint.of(action.value, request),
            render,
            parse,
            proof,
        )

    async def EnableIdentity(
        self, request: pb.EnableIdentityRequest, context: grpc.aio.ServicerContext
    ) -> pb.EnableIdentityResponse:
        return await self._identity_change(
            context,
            CardAction.ENABLE,
            request,
            lambda c: pb.EnableIdentityResponse(card=card_message(c.view)),
            pb.EnableIdentityResponse.FromString,
        )

    async def ReportLoss(
        self, request: pb.ReportLossRequest, context: grpc.aio.ServicerContext
    ) -> pb.ReportLossResponse:
        return await self._identity_change(
            context,
            CardAction.REPORT_LOSS,
            request,
            lambda c: pb.ReportLossResponse(card=card_message(c.view), blocklist_version=c.blocklist_version),
            pb.ReportLossResponse.FromString,
        )

    async def Unlock(self, request: pb.UnlockRequest, context: grpc.aio.ServicerContext) -> pb.UnlockResponse:
        return await self._identity_change(
            context,
            CardAction.UNLOCK,
            request,
            lambda c: pb.UnlockResponse(card=card_message(c.view)),
            pb.UnlockResponse.FromString,
            _proof(request.proof),
        )

    async def FreezeCard(
        self, request: pb.FreezeCardRequest, context: grpc.aio.ServicerContext
    ) -> pb.FreezeCardResponse:
        return await self._identity_change(
            context,
            CardAction.FREEZE,
            request,
            lambda c: pb.FreezeCardResponse(card=card_message(c.view)),
            pb.FreezeCardResponse.FromString,
        )

    async def UnfreezeCard(
        self, request: pb.UnfreezeCardRequest, context: grpc.aio.ServicerContext
    ) -> pb.UnfreezeCardResponse:
        return await self._identity_change(
            context,
            CardAction.UNFREEZE,
            request,
            lambda c: pb.UnfreezeCardResponse(card=card_message(c.view)),
            pb.UnfreezeCardResponse.FromString,
        )

    # -- e-card -------------------------------------------------------------------------

    async def SuspendECard(
        self, request: pb.SuspendECardRequest, context: grpc.aio.ServicerContext
    ) -> pb.SuspendECardResponse:
        operator = self._operator(context)
        return await status.change_ecard(
            self._hub,
            operator,
            CardAction.SUSPEND_ECARD,
            convert.request_id(request.request_id),
            request.card_no,
            self._fingerprint.of("SuspendECard", request),
            lambda v: pb.SuspendECardResponse(card=card_message(v)),
            pb.SuspendECardResponse.FromString,
        )

    async def ResumeECard(
        self, request: pb.ResumeECardRequest, context: grpc.aio.ServicerContext
    ) -> pb.ResumeECardResponse:
        operator = self._operator(context)
        return await status.change_ecard(
            self._hub,
            operator,
            CardAction.RESUME_ECARD,
            convert.request_id(request.request_id),
            request.card_no,
            self._fingerprint.of("ResumeECard", request),
            lambda v: pb.ResumeECardResponse(card=card_message(v)),
            pb.ResumeECardResponse.FromString,
        )

    # -- PINs and guardians -----------------------------------------------------------------

    async def ChangePin(
        self, request: pb.ChangePinRequest, context: grpc.aio.ServicerContext
    ) -> pb.ChangePinResponse:
        operator = self._operator(context)
        return await pins.change_pin(
            self._hub,
            operator,
            convert.request_id(request.request_id),
            request.card_no,
            request.old_pin,
            request.new_pin,
            self._fingerprint.of("ChangePin", request),
            lambda v: pb.ChangePinResponse(card=card_message(v)),
            pb.ChangePinResponse.FromString,
        )

    async def ResetPin(
        self, request: pb.ResetPinRequest, context: grpc.aio.ServicerContext
    ) -> pb.ResetPinResponse:
        operator = self._operator(context)
        return await pins.reset_pin(
            self._hub,
            operator,
            convert.request_id(request.request_id),
            request.card_no,
            _proof(request.proof),
            request.new_pin,
            self._fingerprint.of("ResetPin", request),
            lambda v: pb.ResetPinResponse(card=card_message(v)),
            pb.ResetPinResponse.FromString,
        )

    async def SetGuardian(
        self, request: pb.SetGuardianRequest, context: grpc.aio.ServicerContext
    ) -> pb.SetGuardianResponse:
        operator = self._operator(context)
        request_id = convert.request_id(request.request_id)
        if not request.HasField("guardian"):
            raise InvalidArgument("guardian", "required")
        return await status.set_guardian(
            self._hub,
            operator,
            request_id,
            request.student_id,
            _guardian_input(request.guardian),
            self._fingerprint.of("SetGuardian", request),
            lambda g: pb.SetGuardianResponse(
                student_id=g.student_id, guardians=[_guardian_view(x) for x in g.guardians]
            ),
            pb.SetGuardianResponse.FromString,
        )

    # -- reading ------------------------------------------------------------------------

    async def GetCard(
        self, request: pb.GetCardRequest, context: grpc.aio.ServicerContext
    ) -> pb.GetCardResponse:
        operator = self._operator(context)
        found = queries.get_card(self._hub, operator, request.card_no, request.student_id)
        return pb.GetCardResponse(card=card_message(found))

    async def QueryAuditLog(
        self, request: pb.QueryAuditLogRequest, context: grpc.aio.ServicerContext
    ) -> pb.QueryAuditLogResponse:
        operator = self._operator(context)
        page = await queries.query_audit_log(
            self._hub,
            operator,
            request.student_id,
            request.operator_id,
            request.page_size,
            request.page_token,
        )
        response = pb.QueryAuditLogResponse(next_page_token=page.next_token)
        for e in page.entries:
            entry = response.entries.add(
                audit_id=e.audit_id,
                actor_kind=e.actor_kind,
                actor_id=e.actor_id,
                school_id=e.school_id,
                student_id=e.student_id,
                card_no=e.card_no,
                action=e.action,
                request_id=e.request_id,
                details=e.details,
            )
            entry.at.FromMilliseconds(e.at_ms)
        return response


def _row_result(r: issuance.RowResult) -> pb.BulkIssueResult:
    if r.issued is not None:
        return pb.BulkIssueResult(
            row=r.row, issued=True, card=card_message(r.issued.view), personalization=_keys(r.issued.keys)
        )
    error = r.error
    assert error is not None
    return pb.BulkIssueResult(
        row=r.row,
        issued=False,
        error_reason=error.reason,
        error_field=error.field or "",
        error_message=error.message,
    )
