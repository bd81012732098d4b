"""The cards a load-generating process taps with, and the state a real card would carry between taps.

Two rules keep the load approvable: a chip's counter (ATC) only moves forward, and a card at a
hard anti-passback gate alternates entry and exit. Both are per-card state, so:

- each Locust process owns a disjoint slice of the cards (`card_slice`: card i of the sorted export goes
  to process i mod N, N being the number of processes), so no two processes ever tap the same card;
- inside a process a card is taken out of its school's `CardDeck` for one call and put back at the end of
  the line afterwards, so no two users of the process have it in flight at once, and the taps of a card
  are as far apart as the deck is long.

A card whose call ended without an answer (a gRPC error, a deadline) is retired: the hub may or may not
have counted that tap, so its counter and its inside/outside state can no longer be trusted.

A new Locust process does not know which counters an earlier run against the same hub left behind, so
counters start from a floor that grows with the wall clock (`atc_floor`: tenths of a second since
2026-01-01, which fits the chip's 32-bit counter until 2039): as long as a card is tapped less than ten
times a second, a later run starts above every counter an earlier one sent. The inside/outside state
repairs itself: a card refused for anti-passback is flipped (see `users.py`).
"""

from __future__ import annotations

import random
import time
from collections import deque
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from onecard_client.campus import CardCredential

__all__ = ["CardDeck", "CardState", "NoFreeCard", "atc_floor", "card_slice", "decks_by_school"]

ATC_EPOCH_S = 1_767_225_600  # 2026-01-01T00:00:00Z
MAX_ATC = 0xFFFF_FFFF
ATC_HEADROOM = 10_000_000  # taps a card may still make once the floor reaches its cap


class NoFreeCard(RuntimeError):
    """Every card of a school is in flight or retired: too many users for too few cards."""


@dataclass(slots=True)
class CardState:
    """A card and what its chip and the campus gates remember of it."""

    card: CardCredential
    atc: int  # the last counter value the chip used
    inside: bool = False  # True after an approved entry: the next gate tap is an exit

    def next_atc(self) -> int:
        self.atc += 1
        return self.atc


class CardDeck:
    """One school's cards, each lent to one call at a time, round-robin."""

    def __init__(self, cards: Iterable[CardCredential], floor: int = 0) -> None:
        self._free: deque[CardState] = deque(CardState(card, max(card.atc, floor)) for card in cards)
        self.size = len(self._free)
        self.retired = 0

    def take(self) -> CardState:
        try:
            return self._free.popleft()
        except IndexError:
            raise NoFreeCard(
                f"all {self.size} cards of the school are in flight or retired ({self.retired} retired): "
                "seed more students or run fewer users"
            ) from None

    def give_back(self, state: CardState) -> None:
        self._free.append(state)

    def retire(self, state: CardState) -> None:
        """Keeps a card out of the run: its last tap's outcome is unknown."""
        self.retired += 1

    def __len__(self) -> int:
        return len(self._free)


def atc_floor(now_s: float | None = None) -> int:
    """The lowest counter a process starting now gives its cards: tenths of a second since 2026."""
    now_s = time.time() if now_s is None else now_s
    return min(MAX_ATC - ATC_HEADROOM, max(0, int((now_s - ATC_EPOCH_S) * 10)))


def card_slice(cards: Sequence[CardCredential], index: int, count: int) -> list[CardCredential]:
    """The cards process `index` of `count` may use: every count-th card of the export sorted by number."""
    if count < 1 or not 0 <= index < count:
        raise ValueError(f"process index {index} is not within 0..{count - 1}")
    ordered = sorted(cards, key=lambda card: card.card_no)
    return ordered[index::count]


def decks_by_school(
    cards: Iterable[CardCredential], rng: random.Random, floor: int = 0
) -> dict[str, CardDeck]:
    """A deck per school, shuffled so that consecutive taps spread over students and groups."""
    by_school: dict[str, list[CardCredential]] = {}
    for card in cards:
        by_school.setdefault(card.school_id, []).append(card)
    decks: dict[str, CardDeck] = {}
    for school, school_cards in sorted(by_school.items()):
        rng.shuffle(school_cards)
        decks[school] = CardDeck(school_cards, floor)
    return decks
