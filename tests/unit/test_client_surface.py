"""The SDK's public surface is locked: adding or removing a name is a decision, made here."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

import onecard_client
import onecard_client.client
import onecard_client.sync
from onecard_client import AdminClient, ClientConfig, RetryConfig, TLSConfig, TLSConfigurationError
from onecard_client import sync as sync_client

PUBLIC = [
    "AdminClient",
    "AlreadyExistsError",
    "CardOfficeClient",
    "ClientConfig",
    "DeadlineExceededError",
    "ECardClient",
    "ExamAdminClient",
    "FailedPreconditionError",
    "FundsClient",
    "GrantsClient",
    "HubTime",
    "InternalError",
    "InvalidArgumentError",
    "LibraryAdminClient",
    "NotFoundError",
    "OneCardError",
    "PermissionDeniedError",
    "ResourceExhaustedError",
    "RetryConfig",
    "SettlementClient",
    "StudentRecordsClient",
    "TLSConfig",
    "TLSConfigurationError",
    "TerminalClient",
    "UnauthenticatedError",
    "UnavailableError",
]

METHODS = {
    "TerminalClient": [
        "authorize",
        "borrow",
        "check_in",
        "clock",
        "get_config",
        "heartbeat",
        "hub_time",
        "refund",
        "return_book",
        "reverse",
        "upload_offline_batch",
        "wallet_balance",
        "watch_blocklist",
    ],
    "AdminClient": [
        "get_school",
        "get_terminal",
        "ledger_summary",
        "list_misuse_signals",
        "list_terminals",
        "list_wallet_debts",
        "register_terminal",
        "set_live_scenes",
        "set_terminal_enabled",
        "usage_report",
    ],
    "ECardClient": ["mint_qr_code"],
    "ExamAdminClient": [
        "close_exam_session",
        "create_exam_session",
        "get_attendance",
        "import_exam_roster",
    ],
    "LibraryAdminClient": ["list_overdue_loans"],
    "GrantsClient": [
        "approve_grant_batch",
        "get_grant_batch",
        "get_grant_coverage",
        "import_grant_batch_csv",
        "list_notifications",
        "notify_batch",
        "retry_failed_items",
        "submit_grant_batch",
    ],
    "CardOfficeClient": [
        "bulk_issue_cards",
        "change_pin",
        "enable_identity",
        "freeze_card",
        "get_card",
        "issue_card",
        "query_audit_log",
        "replace_card",
        "report_loss",
        "reset_pin",
        "resume_ecard",
        "set_guardian",
        "suspend_ecard",
        "unfreeze_card",
        "unlock",
    ],
    "FundsClient": [
        "change_bank",
        "get_bank_function",
        "get_top_up",
        "list_manual_review",
        "resolve_manual_review",
        "set_auto_top_up",
        "top_up",
    ],
    "SettlementClient": [
        "get_reconciliation_report",
        "get_settlement_report",
        "reconcile",
        "refund_wallet",
        "run_merchant_settlement",
    ],
    "StudentRecordsClient": [
        "enroll_student",
        "get_student",
        "graduate_student",
        "import_roster",
        "resume_student",
        "suspend_student",
        "transfer_student",
        "withdraw_student",
    ],
}


def test_the_package_exports_exactly_the_public_names() -> None:
    assert onecard_client.__all__ == PUBLIC
    assert all(getattr(onecard_client, name) is not None for name in PUBLIC)
    with pytest.raises(AttributeError):
        _ = onecard_client.NoSuchThing


def test_the_sync_module_mirrors_the_async_clients() -> None:
    assert onecard_client.sync.__all__ == [
        "AdminClient",
        "CardOfficeClient",
        "ClientConfig",
        "ECardClient",
        "ExamAdminClient",
        "FundsClient",
        "GrantsClient",
        "LibraryAdminClient",
        "RetryConfig",
        "SettlementClient",
        "StudentRecordsClient",
        "TLSConfig",
        "TerminalClient",
    ]
    for cls, methods in METHODS.items():
        for module in (onecard_client, onecard_client.sync):
            client = getattr(module, cls)
            public = sorted(m for m in vars(client) if not m.startswith("_"))
            assert public == methods, f"{module.__name__}.{cls}"


def test_the_old_import_paths_keep_working() -> None:
    from onecard_client.client import OPERATOR_HEADER, TERMINAL_HEADER

    assert (TERMINAL_HEADER, OPERATOR_HEADER) == ("onecard-terminal-id", "onecard-operator-id")
    assert onecard_client.client.TerminalClient is onecard_client.TerminalClient
    assert onecard_client.client.RetryConfig is RetryConfig


def test_credentials_do_not_pull_grpc_in() -> None:
    code = "import sys, onecard_client.credentials, onecard_client.campus; print('grpc' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "False"


def test_tls_config_follows_the_pki_layout(tmp_path: Path) -> None:
    terminal = TLSConfig.for_terminal(tmp_path, "jx-ts-01-pos-01")
    assert terminal == TLSConfig(
        ca_cert=tmp_path / "ca.crt",
        cert=tmp_path / "terminals" / "jx-ts-01-pos-01.crt",
        key=tmp_path / "terminals" / "jx-ts-01-pos-01.key",
        server_name="localhost",
    )
    assert TLSConfig.for_operator(tmp_path, "clerk").cert == tmp_path / "operators" / "clerk.crt"
    assert TLSConfig.for_app(tmp_path, "ecard-app", server_name="hub.school").key == (
        tmp_path / "apps" / "ecard-app.key"
    )
    assert TLSConfig.for_app(tmp_path, "ecard-app", server_name="hub.school").server_name == "hub.school"


def test_a_missing_tls_file_fails_when_the_client_is_made(tmp_path: Path) -> None:
    config = ClientConfig(tls=TLSConfig.for_operator(tmp_path, "clerk"))
    with pytest.raises(TLSConfigurationError) as raised:
        sync_client.AdminClient("clerk", config)
    assert "ca.crt" in str(raised.value)


async def test_a_missing_tls_file_fails_the_async_client_too(tmp_path: Path) -> None:
    with pytest.raises(TLSConfigurationError):
        AdminClient("clerk", ClientConfig(tls=TLSConfig.for_operator(tmp_path, "clerk")))


@pytest.mark.parametrize(
    "build",
    [
        lambda: RetryConfig(attempts=0),
        lambda: RetryConfig(initial_backoff_s=-1),
        lambda: RetryConfig(initial_backoff_s=2, max_backoff_s=1),
        lambda: RetryConfig(multiplier=0.5),
        lambda: ClientConfig(deadline_s=0),
    ],
)
def test_configs_refuse_nonsense(build: object) -> None:
    with pytest.raises(ValueError):
        build()  # type: ignore[operator]


def test_configs_are_frozen() -> None:
    config = ClientConfig()
    with pytest.raises(AttributeError):
        config.target = "elsewhere"  # type: ignore[misc]
