"""What a co-branded bank answered, in the hub's words: pure results of the bank gateway
(`hub/onecard_hub/bank/gateway.py`), for the use cases of issue 5 (top-up 圈存, grants, refunds,
settlement, reconciliation 对账) to decide on without touching gRPC.

`BankOutcome.UNCERTAIN` is the one that matters most: the call timed out, the bank was
unavailable, or the reply was lost — the bank may or may not have applied it. It is settled by
inquiry (`get_transfer`) or reversal (冲正), never by a second transfer for the same purpose.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

# The statement (对账单) CSV, header line as onecard.bank.v1.GetStatementResponse says.
STATEMENT_HEADER = "bank_reference,transfer_id,kind,account_no,card_no,amount_fen,status,posted_at"
MAX_TRANSFER_ID = 64


class BankOutcome(enum.StrEnum):
    POSTED = "posted"  # applied: money moved
    REJECTED = "rejected"  # refused, nothing moved; see `reject_reason`
    REVERSED = "reversed"  # applied then undone (冲正), or refused because the reversal came first
    RETURNED = "returned"  # a credit posted, then sent back by the receiving account (退回)
    NOT_FOUND = "not_found"  # the bank has no such transfer / account
    UNCERTAIN = "uncertain"  # no answer: timeout, UNAVAILABLE, transport error — may have applied
    OK = "ok"  # an account call or statement answered

    @property
    def definite(self) -> bool:
        return self is not BankOutcome.UNCERTAIN


class RejectReason(enum.StrEnum):
    NONE = ""
    ACCOUNT_NOT_FOUND = "account_not_found"
    NOT_ACTIVATED = "not_activated"  # the bank function was never activated (未激活)
    ACCOUNT_FROZEN = "account_frozen"
    ACCOUNT_CLOSED = "account_closed"
    INSUFFICIENT_FUNDS = "insufficient_funds"
    REVERSED_BEFORE = "reversed_before"  # the transfer_id was reversed before it arrived
    LIMIT_EXCEEDED = "limit_exceeded"
    INVALID_REQUEST = "invalid_request"  # the bank refused the request as malformed (INVALID_ARGUMENT)
    OTHER = "other"


class AccountState(enum.StrEnum):
    UNKNOWN = ""
    NOT_ACTIVATED = "not_activated"
    ACTIVE = "active"
    FROZEN = "frozen"
    CLOSED = "closed"


@dataclass(frozen=True, slots=True)
class TransferResult:
    """A Debit, Credit or GetTransfer answered (or not: UNCERTAIN, with `error` saying why)."""

    transfer_id: str
    outcome: BankOutcome
    reject_reason: RejectReason = RejectReason.NONE
    amount_fen: int = 0  # GetTransfer only
    bank_reference: str = ""
    posted_ms: int = 0
    error: str = ""  # for UNCERTAIN: the gRPC code or transport error, e.g. "DEADLINE_EXCEEDED"


@dataclass(frozen=True, slots=True)
class ReversalResult:
    """A Reverse (冲正): the original's status after it — REVERSED (undone, or refused in advance),
    REJECTED (it had been refused: nothing to undo), or UNCERTAIN."""

    reversal_id: str
    transfer_id: str
    outcome: BankOutcome
    reversed_fen: int = 0
    error: str = ""


@dataclass(frozen=True, slots=True)
class BankAccount:
    bank_code: str
    account_no: str
    card_no: str
    state: AccountState
    balance_fen: int


@dataclass(frozen=True, slots=True)
class AccountResult:
    """GetAccount / OpenAccount / CloseAccount: OK with `account` (for CloseAccount also
    `paid_out_fen`), NOT_FOUND, REJECTED (malformed request), or UNCERTAIN."""

    outcome: BankOutcome
    account: BankAccount | None = None
    paid_out_fen: int = 0
    error: str = ""


@dataclass(frozen=True, slots=True)
class StatementResult:
    """GetStatement: OK with the CSV (header + one line per transfer), or UNCERTAIN / REJECTED."""

    outcome: BankOutcome
    bank_code: str
    business_date: str
    csv: str = ""
    lines: int = 0
    error: str = ""


def reversal_id_of(transfer_id: str) -> str:
    """The id a reversal (冲正) of `transfer_id` goes under: one per transfer, so a repeat is the same."""
    return f"R{transfer_id}"[:MAX_TRANSFER_ID]


def mask_account_no(account_no: str) -> str:
    """An account number for logs: only its last four digits, "****1234"."""
    if len(account_no) <= 4:
        return "*" * len(account_no)
    return "****" + account_no[-4:]
