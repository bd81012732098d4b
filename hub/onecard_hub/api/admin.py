"""AdminService: the terminal registry (register, list, enable/disable) and the ledger's trial balance."""

from __future__ import annotations

import grpc

from onecard.admin.v1 import admin_service_pb2 as pb
from onecard.admin.v1 import admin_service_pb2_grpc as pb_grpc
from onecard_hub import misuse, offline, pilot, usage
from onecard_hub.api import convert
from onecard_hub.api.identity import Identity
from onecard_hub.api.misuse import signal_message
from onecard_hub.api.pilot import school_message
from onecard_hub.api.usage import usage_response
from onecard_hub.domain.errors import InvalidArgument, PermissionDenied
from onecard_hub.domain.model import Operator, Terminal, TerminalKind
from onecard_hub.domain.pilot import scenes_from_numbers
from onecard_hub.hub import Hub
from onecard_hub.security.protect import RequestFingerprint
from onecard_hub.store.records import TerminalRow

MAX_TEXT = 128


def _terminal_message(t: Terminal) -> pb.Terminal:
    message = pb.Terminal(
        terminal_id=t.terminal_id,
        school_id=t.school_id,
        kind=int(t.kind),  # type: ignore[arg-type]
        location=t.location,
        gate_group=t.gate_group,
        merchant_id=t.merchant_id,
        enabled=t.enabled,
        software_version=t.software_version,
        offline_pending=t.offline_pending,
    )
    if t.last_seen_ms:
        message.last_seen.FromMilliseconds(t.last_seen_ms)
    return message


def _terminal_row(m: pb.Terminal) -> TerminalRow:
    convert.request_id(m.terminal_id, "terminal.terminal_id")
    if not m.school_id:
        raise InvalidArgument("terminal.school_id", "required")
    if m.kind not in {int(k) for k in TerminalKind}:
        raise InvalidArgument("terminal.kind", "unknown terminal kind")
    for name in ("school_id", "location", "gate_group", "merchant_id"):
        if len(getattr(m, name)) > MAX_TEXT:
            raise InvalidArgument(f"terminal.{name}", f"at most {MAX_TEXT} characters")
    kind = TerminalKind(m.kind)
    if kind is TerminalKind.GATE and not m.gate_group:
        raise InvalidArgument("terminal.gate_group", "required for a gate")
    if kind is TerminalKind.CANTEEN_POS and not m.merchant_id:
        raise InvalidArgument("terminal.merchant_id", "required for a canteen POS")
    return TerminalRow(m.terminal_id, m.school_id, m.kind, m.location, m.gate_group, m.merchant_id, True)


class AdminServicer(pb_grpc.AdminServiceServicer):
    def __init__(self, hub: Hub, fingerprint: RequestFingerprint, identity: Identity) -> None:
        self._hub = hub
        self._fingerprint = fingerprint
        self._identity = identity

    def _operator(self, context: grpc.aio.ServicerContext) -> Operator:
        return self._identity.operator(context)

    async def RegisterTerminal(
        self, request: pb.RegisterTerminalRequest, context: grpc.aio.ServicerContext
    ) -> pb.RegisterTerminalResponse:
        operator = self._operator(context)
        request_id = convert.request_id(request.request_id)
        if not request.HasField("terminal"):
            raise InvalidArgument("terminal", "required")
        row = _terminal_row(request.terminal)
        return await self._hub.register_terminal(
            operator,
            request_id,
            row,
            self._fingerprint.of("RegisterTerminal", request),
            lambda t: pb.RegisterTerminalResponse(terminal=_terminal_message(t)),
            pb.RegisterTerminalResponse.FromString,
        )

    async def GetTerminal(
        self, request: pb.GetTerminalRequest, context: grpc.aio.ServicerContext
    ) -> pb.GetTerminalResponse:
        operator = self._operator(context)
        convert.request_id(request.terminal_id, "terminal_id")
        return pb.GetTerminalResponse(
            terminal=_terminal_message(self._hub.terminal_for(operator, request.terminal_id))
        )

    async def ListTerminals(
        self, request: pb.ListTerminalsRequest, context: grpc.aio.ServicerContext
    ) -> pb.ListTerminalsResponse:
        operator = self._operator(context)
        if len(request.school_id) > MAX_TEXT:
            raise InvalidArgument("school_id", f"at most {MAX_TEXT} characters")
        terminals = self._hub.terminals_of(operator, request.school_id)
        return pb.ListTerminalsResponse(terminals=[_terminal_message(t) for t in terminals])

    async def SetTerminalEnabled(
        self, request: pb.SetTerminalEnabledRequest, context: grpc.aio.ServicerContext
    ) -> pb.SetTerminalEnabledResponse:
        operator = self._operator(context)
        request_id = convert.request_id(request.request_id)
        terminal_id = convert.request_id(request.terminal_id, "terminal_id")
        return await self._hub.set_terminal_enabled(
            operator,
            request_id,
            terminal_id,
            request.enabled,
            self._fingerprint.of("SetTerminalEnabled", request),
            lambda t: pb.SetTerminalEnabledResponse(terminal=_terminal_message(t)),
            pb.SetTerminalEnabledResponse.FromString,
        )

    async def GetLedgerSummary(
        self, request: pb.GetLedgerSummaryRequest, context: grpc.aio.ServicerContext
    ) -> pb.GetLedgerSummaryResponse:
        operator = self._operator(context)
        if operator.school_id:
            raise PermissionDenied("the ledger summary is for province administrators")
        totals = await self._hub.ledger_totals()
        return pb.GetLedgerSummaryResponse(
            sum_fen=totals.sum_fen,
            transfer_count=totals.transfer_count,
            totals=[pb.AccountKindTotal(kind=k, accounts=n, balance_fen=b) for k, n, b in totals.by_kind],
        )

    async def ListWalletDebts(
        self, request: pb.ListWalletDebtsRequest, context: grpc.aio.ServicerContext
    ) -> pb.ListWalletDebtsResponse:
        operator = self._operator(context)
        if len(request.school_id) > MAX_TEXT:
            raise InvalidArgument("school_id", f"at most {MAX_TEXT} characters")
        debts = offline.wallet_debts(self._hub, operator, request.school_id)
        return pb.ListWalletDebtsResponse(
            debts=[
                pb.WalletDebt(
                    student_id=d.student.student_id,
                    holder_name_masked=d.student.name_masked,
                    card_no=d.card_no,
                    debt_fen=d.debt_fen,
                    offline_refs=d.refs,
                )
                for d in debts
            ],
            total_debt_fen=sum(d.debt_fen for d in debts),
        )

    async def SetLiveScenes(
        self, request: pb.SetLiveScenesRequest, context: grpc.aio.ServicerContext
    ) -> pb.SetLiveScenesResponse:
        operator = self._operator(context)
        request_id = convert.request_id(request.request_id)
        school_id = convert.request_id(request.school_id, "school_id")
        scenes = scenes_from_numbers(request.scenes)
        return await pilot.set_live_scenes(
            self._hub,
            operator,
            request_id,
            school_id,
            scenes,
            self._fingerprint.of("SetLiveScenes", request),
            lambda view: pb.SetLiveScenesResponse(school=school_message(view)),
            pb.SetLiveScenesResponse.FromString,
        )

    async def GetSchool(
        self, request: pb.GetSchoolRequest, context: grpc.aio.ServicerContext
    ) -> pb.GetSchoolResponse:
        operator = self._operator(context)
        school_id = convert.request_id(request.school_id, "school_id")
        return pb.GetSchoolResponse(school=school_message(pilot.school_view(self._hub, operator, school_id)))

    async def GetUsageReport(
        self, request: pb.GetUsageReportRequest, context: grpc.aio.ServicerContext
    ) -> pb.GetUsageReportResponse:
        operator = self._operator(context)
        if len(request.school_id) > MAX_TEXT:
            raise InvalidArgument("school_id", f"at most {MAX_TEXT} characters")
        return usage_response(usage.school_usage(self._hub, operator, request.school_id))

    async def ListMisuseSignals(
        self, request: pb.ListMisuseSignalsRequest, context: grpc.aio.ServicerContext
    ) -> pb.ListMisuseSignalsResponse:
        operator = self._operator(context)
        if len(request.school_id) > MAX_TEXT:
            raise InvalidArgument("school_id", f"at most {MAX_TEXT} characters")
        since_ms = (
            convert.instant_ms(request.since, "since", after_epoch=False) if request.HasField("since") else 0
        )
        signals = misuse.misuse_signals(self._hub, operator, request.school_id, since_ms, request.limit)
        return pb.ListMisuseSignalsResponse(
            signals=[signal_message(s, misuse.holder_name_masked(self._hub, s)) for s in signals]
        )
