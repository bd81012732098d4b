"""The invariants a scenario run must keep, as pure functions over what the run observed.

Each broken invariant gives one readable line (what, which card — masked —, when); an empty list means
every invariant held. No I/O here: the runner gathers `RunFacts`, the unit tests build them by hand.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone

__all__ = ["CardFacts", "LedgerTotals", "RunFacts", "check", "mask_card_no"]

_CST = timezone(timedelta(hours=8))
ERROR_PREFIX = "ERROR_"
# Kinds of ledger account a canteen purchase or refund moves money between.
WALLET, MERCHANT = "wallet", "merchant"


def mask_card_no(card_no: str) -> str:
    """A card number as it may appear in a report: the first two and the last four characters."""
    if len(card_no) <= 6:
        return "*" * len(card_no)
    return card_no[:2] + "*" * (len(card_no) - 6) + card_no[-4:]


def _when(hub_ms: int) -> str:
    return datetime.fromtimestamp(hub_ms / 1000, tz=_CST).strftime("%H:%M:%S")


@dataclass(frozen=True)
class CardFacts:
    """What the credentials export says of a card (the seeded truth)."""

    status: str = "active"  # "active", "lost", …
    enrollment: str = "enrolled"  # "enrolled", "suspended", …


@dataclass(frozen=True)
class LedgerTotals:
    """A ledger summary: the sum over every account and the balance per account kind."""

    sum_fen: int
    by_kind: Mapping[str, int] = field(default_factory=dict)


@dataclass
class RunFacts:
    decisions: Mapping[str, int]
    ledger_before: LedgerTotals
    ledger_after: LedgerTotals
    cards: Mapping[str, CardFacts]  # every card of the export
    # card → (online approvals, hub time of the first) and card → offline approvals
    approvals: Mapping[str, tuple[int, int]] = field(default_factory=dict)
    offline_approvals: Mapping[str, tuple[int, int]] = field(default_factory=dict)
    expected_errors: frozenset[str] = frozenset()
    offline_stored: int = 0  # transactions the terminals approved offline and kept for upload
    uploaded: int = 0  # sent in first uploads
    booked: int = 0
    rejected: int = 0
    duplicates: int = 0  # "already booked" answers to first uploads
    reuploaded: int = 0
    duplicates_applied: int = 0  # booked by a re-upload
    # Σ approved purchases − refunds as the devices saw them, when they report amounts; None otherwise.
    device_net_purchases_fen: int | None = None
    # Money also moved through a bank (top-ups, grants, refunds): wallets are no longer the mirror of
    # the canteen windows; the canteen windows still took exactly the purchases − refunds the devices
    # saw, and the bank's own rule (bank_invariants.py) covers the rest.
    bank_flows: bool = False


def check(facts: RunFacts) -> list[str]:
    """Every broken invariant, one line each; empty when all held."""
    return [
        *_ledger(facts),
        *_wallets(facts),
        *_errors(facts),
        *_offline(facts),
        *_unusable_cards(facts),
    ]


def _ledger(facts: RunFacts) -> list[str]:
    if facts.ledger_after.sum_fen != 0:
        return [f"ledger does not sum to zero: {facts.ledger_after.sum_fen:+d} fen at the end"]
    return []


def _wallets(facts: RunFacts) -> list[str]:
    before, after = facts.ledger_before.by_kind, facts.ledger_after.by_kind
    change = {kind: after.get(kind, 0) - before.get(kind, 0) for kind in {*before, *after}}
    wallets, merchants = change.get(WALLET, 0), change.get(MERCHANT, 0)
    net = facts.device_net_purchases_fen
    if facts.bank_flows:
        if net is not None and merchants != net:
            return [
                f"canteen windows changed by {merchants:+d} fen, but the terminals saw approved purchases −"
                f" refunds of {net} fen"
            ]
        return []
    lines = []
    if wallets != -merchants:
        lines.append(
            f"wallet balances changed by {wallets:+d} fen but canteen windows by {merchants:+d} fen:"
            f" purchases − refunds should move exactly what the wallets lost"
        )
    lines.extend(
        f"{kind} accounts changed by {delta:+d} fen in a scenario that moves money only between"
        f" wallets and canteen windows"
        for kind, delta in sorted(change.items())
        if kind not in (WALLET, MERCHANT) and delta != 0
    )
    if net is not None and wallets != -net:
        lines.append(
            f"wallet balances changed by {wallets:+d} fen, but the terminals saw approved purchases −"
            f" refunds of {net} fen (expected {-net:+d})"
        )
    return lines


def _errors(facts: RunFacts) -> list[str]:
    return [
        f"{count} tap(s) ended in {outcome} (a broken call, not an answer)"
        for outcome, count in sorted(facts.decisions.items())
        if outcome.startswith(ERROR_PREFIX) and outcome not in facts.expected_errors and count
    ]


def _offline(facts: RunFacts) -> list[str]:
    lines = []
    if facts.duplicates_applied:
        lines.append(
            f"{facts.duplicates_applied} offline transaction(s) were booked again by a re-upload"
            f" (an upload must be idempotent by terminal and serial)"
        )
    answered = facts.booked + facts.rejected + facts.duplicates
    if facts.offline_stored != answered:
        lines.append(
            f"{facts.offline_stored} offline transaction(s) stored by the terminals, but uploads answered"
            f" {answered} (booked {facts.booked}, rejected {facts.rejected}, already booked"
            f" {facts.duplicates}): every stored transaction must be booked or explicitly rejected"
        )
    if facts.uploaded < facts.offline_stored:
        lines.append(
            f"{facts.offline_stored - facts.uploaded} offline transaction(s) stored but never uploaded"
        )
    return lines


def _unusable_cards(facts: RunFacts) -> list[str]:
    lines = []
    for card_no, (count, first_ms) in sorted(facts.approvals.items()):
        card = facts.cards.get(card_no)
        if card is not None and (card.status != "active" or card.enrollment != "enrolled"):
            lines.append(
                f"card {mask_card_no(card_no)} ({card.status}, student {card.enrollment}) was approved"
                f" {count} time(s) online, first at {_when(first_ms)}"
            )
    # Offline, a terminal knows only its blocklist copy: a blocked card must never pass it.
    for card_no, (count, first_ms) in sorted(facts.offline_approvals.items()):
        card = facts.cards.get(card_no)
        if card is not None and card.status != "active":
            lines.append(
                f"card {mask_card_no(card_no)} ({card.status}) was approved {count} time(s) offline"
                f" despite the blocklist, first at {_when(first_ms)}"
            )
    return lines
