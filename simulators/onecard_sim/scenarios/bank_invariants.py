"""The `bank` object of `report.json` and the conservation rule (DESIGN §10), as pure functions.

- `approved_during_outage`: wallet approvals (gates, canteens) answered while the bank was down. The
  point of `bank-outage`: a payment never waits on a bank, so there must be some.
- `not_final`: bank operations (top-ups, reversals, grant items, refunds) not in a final state once the
  bank is back and the scenario has waited (bounded) for them. Must be 0.
- `unexplained`: reconciliation (对账) differences between the hub's bank-side transfers and the bank's
  statement that reconciliation could not settle or explain. Must be 0.
- conservation: the hub's ledger sums to 0, *and* the simulator's accounts changed (Σ balances, after
  − before) by exactly what the hub's bank clearing accounts recorded over the same stretch. Signs: a
  top-up debits the holder's bank account and the hub's clearing account (→ wallet); a grant, a
  refund or a settlement credits both. So Δ(Σ bank accounts) must equal Δ(Σ hub bank clearing).

No I/O here: the episode gathers `BankFacts`, the unit tests build them by hand.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

__all__ = ["BANK_KEYS", "BankFacts", "BankVerdict", "check_bank", "clearing_change"]

BANK_KEYS = ("approved_during_outage", "not_final", "unexplained")
BANK_CLEARING = "bank_clearing"


@dataclass(frozen=True)
class BankFacts:
    approved_during_outage: int
    outage_played: bool  # the bank was actually taken down (SetFaults answered)
    # Bank operations left not final at the end, by kind ("top_up", "grant_item", …).
    not_final: Mapping[str, int] = field(default_factory=dict)
    unexplained: int = 0
    # Σ of the simulator's account balances before and after the stretch; None when unread.
    bank_before_fen: int | None = None
    bank_after_fen: int | None = None
    # The hub's bank clearing accounts (Σ) before and after, from the ledger summary.
    clearing_before_fen: int = 0
    clearing_after_fen: int = 0
    # Parts of the scenario that could not be played (named), e.g. "grants (GrantsClient missing)".
    skipped: tuple[str, ...] = ()


@dataclass(frozen=True)
class BankVerdict:
    section: dict[str, Any]  # the report's `bank` object
    conserved: bool  # the bank half of `ledger.conserved`
    violations: list[str]


def clearing_change(before: Mapping[str, int], after: Mapping[str, int]) -> int:
    """Change of the hub's bank clearing total between two ledger summaries (balances by kind)."""
    return after.get(BANK_CLEARING, 0) - before.get(BANK_CLEARING, 0)


def check_bank(facts: BankFacts) -> BankVerdict:
    not_final = sum(facts.not_final.values())
    section: dict[str, Any] = {
        "approved_during_outage": int(facts.approved_during_outage),
        "not_final": int(not_final),
        "unexplained": int(facts.unexplained),
    }
    lines: list[str] = []
    if not facts.outage_played:
        lines.append("bank: the outage was not played (the bank simulator never went down)")
    elif facts.approved_during_outage <= 0:
        lines.append(
            "bank: no wallet approval while the bank was down — gates and canteens must keep approving"
            " from wallets during a bank outage"
        )
    if not_final:
        detail = ", ".join(f"{kind} {n}" for kind, n in sorted(facts.not_final.items()) if n)
        lines.append(f"bank: {not_final} bank operation(s) not final after the bank came back ({detail})")
    if facts.unexplained:
        lines.append(f"bank: reconciliation left {facts.unexplained} difference(s) unexplained")
    conserved = True
    if facts.bank_before_fen is None or facts.bank_after_fen is None:
        conserved = False
        lines.append("bank: the simulator's account balances could not be read; conservation unproven")
    else:
        bank_change = facts.bank_after_fen - facts.bank_before_fen
        hub_change = facts.clearing_after_fen - facts.clearing_before_fen
        if bank_change != hub_change:
            conserved = False
            lines.append(
                f"bank: money not conserved — the bank simulator's accounts changed by {bank_change:+d} fen,"
                f" the hub's bank clearing accounts by {hub_change:+d} fen"
                f" (difference {bank_change - hub_change:+d})"
            )
    lines.extend(f"bank: not played — {what}" for what in facts.skipped)
    return BankVerdict(section, conserved, lines)
