"""Double-entry ledger in integer fen (DESIGN §6).

Every transfer moves an amount from one account to another, so the sum over all
accounts is always zero. Outside parties (each bank's clearing account, the grant
funding source) are accounts too. Transfers are append-only; a correction is a new
transfer.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass


class AccountKind(enum.StrEnum):
    WALLET = "wallet"
    MERCHANT = "merchant"
    BANK_CLEARING = "bank_clearing"
    GRANT_POOL = "grant_pool"
    SUSPENSE = "suspense"


class TransferKind(enum.StrEnum):
    TOP_UP = "top_up"  # 圈存: bank clearing → wallet
    PURCHASE = "purchase"  # wallet → merchant
    REFUND = "refund"  # merchant → wallet
    REVERSAL = "reversal"  # 冲正: merchant → wallet, undoing a purchase
    # wallet → merchant, booked from a terminal's offline upload; may take the wallet below zero
    OFFLINE_PURCHASE = "offline_purchase"
    # 奖助学金: grant pool → bank clearing, a grant item paid to the bank account
    GRANT_PAYMENT = "grant_payment"
    GRANT_RETURN = "grant_return"  # bank clearing → grant pool, a paid grant item sent back (退回)
    MERCHANT_SETTLEMENT = "merchant_settlement"  # merchant → bank clearing: a day's takings paid out
    WALLET_REFUND = "wallet_refund"  # wallet → bank clearing: a leaving student's balance paid out


@dataclass(slots=True)
class Account:
    account_id: int
    kind: AccountKind
    owner: str  # student id, merchant id, bank code, school id
    balance_fen: int = 0


@dataclass(frozen=True, slots=True)
class Transfer:
    from_account: int
    to_account: int
    amount_fen: int
    kind: TransferKind
    caller: str  # who asked: terminal or operator id
    request_id: str  # the caller's request_id that made this transfer
    origin_request_id: str  # for refunds and reversals: the purchase's request_id
    created_ms: int


class Ledger:
    """The accounts in memory; `post` is the only way balances change."""

    def __init__(self) -> None:
        self.accounts: dict[int, Account] = {}

    def add(self, account: Account) -> Account:
        self.accounts[account.account_id] = account
        return account

    def post(
        self,
        source: Account,
        target: Account,
        amount_fen: int,
        kind: TransferKind,
        *,
        caller: str,
        request_id: str,
        origin_request_id: str = "",
        created_ms: int,
    ) -> Transfer:
        if amount_fen <= 0:
            raise ValueError("a transfer moves a positive amount")
        source.balance_fen -= amount_fen
        target.balance_fen += amount_fen
        return Transfer(
            source.account_id,
            target.account_id,
            amount_fen,
            kind,
            caller,
            request_id,
            origin_request_id,
            created_ms,
        )

    def party(self, kind: AccountKind, owner: str) -> Account:
        """The account of `kind` that `owner` holds (a bank's clearing account, a school's grant
        pool): a scan, for callers that keep what they found."""
        for account in self.accounts.values():
            if account.kind == kind and account.owner == owner:
                return account
        raise LookupError(f"no {kind} account of {owner}")

    def total_fen(self) -> int:
        return sum(a.balance_fen for a in self.accounts.values())
