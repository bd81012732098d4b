"""FundsService: proto in → use case (funds/) → proto out.

Callers: a self-service kiosk (TerminalKind.KIOSK; the holder's own card, read at the kiosk, of the
kiosk's school) for TopUp, GetTopUp and SetAutoTopUp; operators (a clerk for their school, a province
administrator for every school) for everything.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TypeVar

import grpc
from google.protobuf.message import Message

from onecard.funds.v1 import funds_service_pb2 as pb
from onecard.funds.v1 import funds_service_pb2_grpc as pb_grpc
from onecard_hub.api import convert
from onecard_hub.api.identity import OPERATOR, OPERATOR_HEADER, Identity
from onecard_hub.card_office.common import Proof, card_in_scope, student_in_scope
from onecard_hub.domain.bank import mask_account_no
from onecard_hub.domain.errors import InvalidArgument, NotFound, PermissionDenied
from onecard_hub.domain.model import (
    CO_BRANDED_BANKS,
    BankStatus,
    Card,
    Operator,
    Student,
    Terminal,
    TerminalKind,
)
from onecard_hub.domain.pii import mask_card_no
from onecard_hub.domain.topup import (
    AutoTopUp,
    BankChange,
    ChangeState,
    Origin,
    TopUp,
    TopUpState,
    check_auto,
    check_note,
)
from onecard_hub.funds import review
from onecard_hub.funds.bank_change import change_bank
from onecard_hub.funds.book import topup_row
from onecard_hub.funds.runtime import Funds
from onecard_hub.grants.batches import current_card
from onecard_hub.hub import Hub
from onecard_hub.idempotency import Entry
from onecard_hub.once import run_once_awaiting
from onecard_hub.security.protect import RequestFingerprint
from onecard_hub.store.records import Batch, RequestRow
from onecard_hub.student_records import schools_in_scope

M = TypeVar("M", bound=Message)
STATE = {
    TopUpState.PENDING: pb.TOP_UP_STATE_PENDING,
    TopUpState.POSTED: pb.TOP_UP_STATE_POSTED,
    TopUpState.VOIDED: pb.TOP_UP_STATE_VOIDED,
    TopUpState.MANUAL_REVIEW: pb.TOP_UP_STATE_MANUAL_REVIEW,
}
ORIGIN = {
    Origin.KIOSK: pb.TOP_UP_ORIGIN_KIOSK,
    Origin.OPERATOR: pb.TOP_UP_ORIGIN_OPERATOR,
    Origin.AUTO: pb.TOP_UP_ORIGIN_AUTO,
}
BANK_STATUS = {
    BankStatus.NOT_ACTIVATED: pb.BANK_FUNCTION_STATUS_NOT_ACTIVATED,
    BankStatus.ACTIVE: pb.BANK_FUNCTION_STATUS_ACTIVE,
    BankStatus.LOST: pb.BANK_FUNCTION_STATUS_LOST,
    BankStatus.FROZEN: pb.BANK_FUNCTION_STATUS_FROZEN,
}
RESOLUTION = {pb.RESOLUTION_POSTED: TopUpState.POSTED, pb.RESOLUTION_VOIDED: TopUpState.VOIDED}


def topup_message(t: TopUp) -> pb.TopUp:
    return pb.TopUp(
        topup_id=t.topup_id,
        student_id=t.student_id,
        school_id=t.school_id,
        card_no_masked=mask_card_no(t.card_no),
        bank_code=t.bank_code,
        amount_fen=t.amount_fen,
        state=STATE[t.state],
        reason=t.reason,
        transfer_id=t.transfer_id,
        reversal_attempts=t.reversals,
        origin=ORIGIN[t.origin],
        created_ms=t.created_ms,
        updated_ms=t.updated_ms,
    )


def auto_message(a: AutoTopUp | None) -> pb.AutoTopUp:
    if a is None:
        return pb.AutoTopUp()
    return pb.AutoTopUp(
        enabled=a.enabled,
        threshold_fen=a.threshold_fen,
        amount_fen=a.amount_fen,
        last_topup_id=a.last_topup_id,
        last_failure=a.last_failure,
    )


def change_message(c: BankChange) -> pb.BankChange:
    state = (
        pb.BANK_CHANGE_STATE_CLOSED if c.state is ChangeState.CLOSED else pb.BANK_CHANGE_STATE_PENDING_CLOSE
    )
    return pb.BankChange(
        old_bank_code=c.old_bank_code,
        new_bank_code=c.new_bank_code,
        state=state,
        paid_out_fen=c.paid_out_fen,
        created_ms=c.created_ms,
    )


class FundsServicer(pb_grpc.FundsServiceServicer):
    def __init__(self, hub: Hub, funds: Funds, fingerprint: RequestFingerprint, identity: Identity) -> None:
        self._hub = hub
        self._funds = funds
        self._fingerprint = fingerprint
        self._identity = identity

    # -- callers -------------------------------------------------------------------------------

    def _caller(self, context: grpc.aio.ServicerContext) -> Operator | Terminal:
        """An operator, or a kiosk terminal (CALLER_KIND_NOT_ALLOWED for other terminals)."""
        if self._identity.tls:
            caller = self._identity.any_caller(context)
            is_operator = caller is not None and caller.kind == OPERATOR
        else:
            is_operator = any(key == OPERATOR_HEADER for key, _ in context.invocation_metadata() or ())
        if is_operator:
            return self._identity.operator(context)
        terminal = self._identity.terminal(context)
        if terminal.kind is not TerminalKind.KIOSK:
            raise PermissionDenied(
                "only a self-service kiosk may call FundsService", reason="CALLER_KIND_NOT_ALLOWED"
            )
        return terminal

    def _card(self, caller: Operator | Terminal, card_no: str, student_id: str) -> Card:
        """The card named by exactly one of card_no and student_id, in the caller's scope."""
        if bool(card_no) == bool(student_id):
            raise InvalidArgument("card_no", "give exactly one of card_no and student_id")
        if isinstance(caller, Terminal):
            if not card_no:
                raise InvalidArgument("card_no", "a kiosk gives the card it read")
            card = self._hub.campus.cards.get(convert.card_no(card_no))
            if card is None:
                raise NotFound("card_no: no such card", field="card_no")
            if card.student.school_id != caller.school_id:
                raise PermissionDenied("card_no: a card of another school's student")
            return card
        if card_no:
            return card_in_scope(self._hub, caller, convert.card_no(card_no))
        return self._current_card(student_in_scope(self._hub, caller, student_id))

    def _current_card(self, student: Student) -> Card:
        card = current_card(self._hub, student)
        if card is None:
            raise NotFound("student_id: the student has no current card", field="student_id")
        return card

    def _visible(self, caller: Operator | Terminal, topup: TopUp) -> None:
        school = caller.school_id
        if school and school != topup.school_id:
            raise PermissionDenied("topup_id: a top-up of another school")

    async def _once(
        self,
        caller_id: str,
        request_id: str,
        method: str,
        request: Message,
        parse: Callable[[bytes], M],
        act: Callable[[], Awaitable[M]],
    ) -> M:
        """Idempotent by (caller, request_id): a repeat answers the first answer."""
        fingerprint = self._fingerprint.of(method, request)
        return await run_once_awaiting(self._hub, (caller_id, request_id), method, fingerprint, parse, act)

    # -- top-up --------------------------------------------------------------------------------

    async def TopUp(self, request: pb.TopUpRequest, context: grpc.aio.ServicerContext) -> pb.TopUpResponse:
        caller = self._caller(context)
        caller_id = caller.terminal_id if isinstance(caller, Terminal) else caller.operator_id
        request_id = convert.request_id(request.request_id)
        hub, topups = self._hub, self._funds.topups
        key = (caller_id, request_id)
        fingerprint = self._fingerprint.of("TopUp", request)
        first = await hub.answered(key, "TopUp", fingerprint, pb.TopUpResponse.FromString)
        if first is not None:  # a retry: the top-up as it stands now
            topup = topups.book.topups.get(first.topup.topup_id)
            return pb.TopUpResponse(topup=topup_message(topup)) if topup is not None else first
        card = self._card(caller, request.card_no, request.student_id)
        origin = Origin.KIOSK if isinstance(caller, Terminal) else Origin.OPERATOR

        async def journal(topup: TopUp) -> None:
            """The PENDING top-up, its transfer id and this answer: durable before the bank is called."""
            now = hub.clock.now_ms()
            body = pb.TopUpResponse(topup=topup_message(topup)).SerializeToString()
            rows = Batch(
                topups=[topup_row(topup)],
                requests=[RequestRow(caller_id, request_id, "TopUp", fingerprint, body, now)],
            )
            await hub.commit(key, Entry("TopUp", fingerprint, now, body), rows)

        topup = await topups.start(card, request.amount_fen, origin, journal)
        left = context.time_remaining()  # answer PENDING before the caller's deadline passes
        within = topups.answer_within_s if left is None else min(topups.answer_within_s, max(left - 0.3, 0.0))
        await topups.wait(topup, within)
        return pb.TopUpResponse(topup=topup_message(topup))

    async def GetTopUp(
        self, request: pb.GetTopUpRequest, context: grpc.aio.ServicerContext
    ) -> pb.GetTopUpResponse:
        caller = self._caller(context)
        if not request.topup_id:
            raise InvalidArgument("topup_id", "required")
        topup = self._funds.topups.get(request.topup_id)
        self._visible(caller, topup)
        return pb.GetTopUpResponse(topup=topup_message(topup))

    async def ListManualReview(
        self, request: pb.ListManualReviewRequest, context: grpc.aio.ServicerContext
    ) -> pb.ListManualReviewResponse:
        operator = self._identity.operator(context)
        schools = schools_in_scope(self._hub, operator, request.school_id)
        return pb.ListManualReviewResponse(
            topups=[topup_message(t) for t in self._funds.book.in_review(schools)]
        )

    async def ResolveManualReview(
        self, request: pb.ResolveManualReviewRequest, context: grpc.aio.ServicerContext
    ) -> pb.ResolveManualReviewResponse:
        operator = self._identity.operator(context)
        request_id = convert.request_id(request.request_id)
        if not request.topup_id:
            raise InvalidArgument("topup_id", "required")
        resolution = RESOLUTION.get(request.resolution)
        if resolution is None:
            raise InvalidArgument("resolution", "POSTED or VOIDED")
        check_note(request.note)
        topup = self._funds.topups.get(request.topup_id)
        self._visible(operator, topup)
        self._funds.bank()

        async def act() -> pb.ResolveManualReviewResponse:
            done, bank = await review.resolve(
                self._funds.topups, operator, request_id, topup, resolution, request.note
            )
            return pb.ResolveManualReviewResponse(topup=topup_message(done), bank_status=bank.value)

        return await self._once(
            operator.operator_id,
            request_id,
            "ResolveManualReview",
            request,
            pb.ResolveManualReviewResponse.FromString,
            act,
        )

    # -- auto top-up and the bank function -----------------------------------------------------

    async def SetAutoTopUp(
        self, request: pb.SetAutoTopUpRequest, context: grpc.aio.ServicerContext
    ) -> pb.SetAutoTopUpResponse:
        caller = self._caller(context)
        caller_id = caller.terminal_id if isinstance(caller, Terminal) else caller.operator_id
        request_id = convert.request_id(request.request_id)
        card = self._card(caller, request.card_no, request.student_id)
        autos = self._funds.autos
        check_auto(request.threshold_fen, request.amount_fen, request.enabled)

        async def act() -> pb.SetAutoTopUpResponse:
            auto = await autos.set(card.student, request.threshold_fen, request.amount_fen, request.enabled)
            return pb.SetAutoTopUpResponse(auto_topup=auto_message(auto))

        return await self._once(
            caller_id, request_id, "SetAutoTopUp", request, pb.SetAutoTopUpResponse.FromString, act
        )

    async def GetBankFunction(
        self, request: pb.GetBankFunctionRequest, context: grpc.aio.ServicerContext
    ) -> pb.GetBankFunctionResponse:
        operator = self._identity.operator(context)
        student = student_in_scope(self._hub, operator, request.student_id)
        card = self._current_card(student)
        answer = pb.GetBankFunctionResponse(
            student_id=student.student_id,
            card_no_masked=mask_card_no(card.card_no),
            bank_code=card.bank_code,
            bank_name=CO_BRANDED_BANKS.get(card.bank_code, ""),
            status=BANK_STATUS.get(card.bank_status, pb.BANK_FUNCTION_STATUS_UNSPECIFIED),
            auto_topup=auto_message(self._funds.book.autos.get(student.student_id)),
        )
        changes = self._funds.book.changes.get(student.student_id)
        if changes:
            answer.last_change.CopyFrom(change_message(changes[-1]))
        if self._hub.bank is not None and card.bank_code:
            account = await self._hub.bank.get_account(card.bank_code, card_no=card.card_no, deadline_s=1.0)
            if account.account is not None:
                answer.account_no_masked = mask_account_no(account.account.account_no)
        return answer

    async def ChangeBank(
        self, request: pb.ChangeBankRequest, context: grpc.aio.ServicerContext
    ) -> pb.ChangeBankResponse:
        operator = self._identity.operator(context)
        request_id = convert.request_id(request.request_id)
        student = student_in_scope(self._hub, operator, request.student_id)
        card = self._current_card(student)
        if not request.new_bank_code:
            raise InvalidArgument("new_bank_code", "required")
        proof = Proof(request.proof.holder_id_number, request.proof.guardian_id_number)
        bank = self._funds.bank()

        async def act() -> pb.ChangeBankResponse:
            change, account_no = await change_bank(
                self._hub, self._funds.book, bank, operator, request_id, card, request.new_bank_code, proof
            )
            if self._funds.closer is not None:
                self._funds.closer.poke()
            return pb.ChangeBankResponse(
                change=change_message(change), account_no_masked=mask_account_no(account_no)
            )

        return await self._once(
            operator.operator_id, request_id, "ChangeBank", request, pb.ChangeBankResponse.FromString, act
        )
