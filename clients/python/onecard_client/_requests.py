"""The request messages each client method sends, built once for the async and the sync clients.

Pure functions: the retry loop resends the very message built here, so a mutating call keeps
its `request_id` on every try.
"""

from __future__ import annotations

from collections.abc import Iterable

from onecard.admin.v1 import admin_service_pb2 as admin_pb
from onecard.auth.v1 import authorization_service_pb2 as auth_pb
from onecard.ecard.v1 import ecard_service_pb2 as ecard_pb
from onecard.terminal.v1 import terminal_service_pb2 as term_pb
from onecard_client.credentials import mint_proof


def refund(
    terminal_id: str, request_id: str, original_request_id: str, amount_fen: int
) -> auth_pb.RefundRequest:
    return auth_pb.RefundRequest(
        request_id=request_id,
        terminal_id=terminal_id,
        original_request_id=original_request_id,
        amount_fen=amount_fen,
    )


def reverse(terminal_id: str, request_id: str, original_request_id: str) -> auth_pb.ReverseRequest:
    return auth_pb.ReverseRequest(
        request_id=request_id, terminal_id=terminal_id, original_request_id=original_request_id
    )


def wallet_balance(terminal_id: str, card_no: str) -> auth_pb.GetWalletBalanceRequest:
    return auth_pb.GetWalletBalanceRequest(terminal_id=terminal_id, card_no=card_no)


def upload_offline_batch(
    terminal_id: str, request_id: str, transactions: Iterable[auth_pb.OfflineTransaction]
) -> auth_pb.UploadOfflineBatchRequest:
    return auth_pb.UploadOfflineBatchRequest(
        request_id=request_id, terminal_id=terminal_id, transactions=list(transactions)
    )


def clock(terminal_id: str) -> term_pb.GetClockRequest:
    return term_pb.GetClockRequest(terminal_id=terminal_id)


def get_config(terminal_id: str) -> term_pb.GetConfigRequest:
    return term_pb.GetConfigRequest(terminal_id=terminal_id)


def heartbeat(terminal_id: str, software_version: str, offline_pending: int) -> term_pb.HeartbeatRequest:
    return term_pb.HeartbeatRequest(
        terminal_id=terminal_id, software_version=software_version, offline_pending=offline_pending
    )


def register_terminal(request_id: str, terminal: admin_pb.Terminal) -> admin_pb.RegisterTerminalRequest:
    return admin_pb.RegisterTerminalRequest(request_id=request_id, terminal=terminal)


def get_terminal(terminal_id: str) -> admin_pb.GetTerminalRequest:
    return admin_pb.GetTerminalRequest(terminal_id=terminal_id)


def list_terminals(school_id: str) -> admin_pb.ListTerminalsRequest:
    return admin_pb.ListTerminalsRequest(school_id=school_id)


def set_terminal_enabled(
    request_id: str, terminal_id: str, enabled: bool
) -> admin_pb.SetTerminalEnabledRequest:
    return admin_pb.SetTerminalEnabledRequest(request_id=request_id, terminal_id=terminal_id, enabled=enabled)


def list_wallet_debts(school_id: str) -> admin_pb.ListWalletDebtsRequest:
    return admin_pb.ListWalletDebtsRequest(school_id=school_id)


def usage_report(school_id: str) -> admin_pb.GetUsageReportRequest:
    return admin_pb.GetUsageReportRequest(school_id=school_id)


def ledger_summary() -> admin_pb.GetLedgerSummaryRequest:
    return admin_pb.GetLedgerSummaryRequest()


def mint_qr_code(card_no: str, ecard_key: bytes, hub_ms: int) -> ecard_pb.MintQrCodeRequest:
    """The app's request: the proof shows it holds the card's e-card key (DESIGN §4)."""
    request = ecard_pb.MintQrCodeRequest(card_no=card_no, proof=mint_proof(ecard_key, card_no, hub_ms))
    request.requested_at.FromMilliseconds(hub_ms)
    return request
