"""The blocklist a school's terminals keep: cards no terminal may accept, online or offline.

A card is on it while its identity function is not ACTIVE (lost, frozen, replaced, cancelled,
not yet enabled). `Campus.set_card_status` is the one way a card's status changes, and it keeps
the list and its version in step.

The version is a fingerprint of the list's content (63 bits of SHA-256 over the sorted card
numbers): equal versions mean equal lists, so it stays the same across a restart of the hub
and changes whenever a card joins or leaves the list. Terminals compare it for equality
(a heartbeat answers the current one) and fetch the configuration again when it differs.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field

from onecard_hub.domain.model import CardStatus

_VERSION_MASK = (1 << 63) - 1


def blocks(status: CardStatus) -> bool:
    return status is not CardStatus.ACTIVE


def fingerprint(card_nos: set[str]) -> int:
    digest = hashlib.sha256("\n".join(sorted(card_nos)).encode()).digest()
    return int.from_bytes(digest[:8], "big") & _VERSION_MASK


@dataclass(slots=True)
class Blocklist:
    card_nos: set[str] = field(default_factory=set)
    version: int = fingerprint(set())

    def update(self, card_no: str, status: CardStatus) -> bool:
        """Adds or removes the card as its status says; True when the list changed."""
        if blocks(status) == (card_no in self.card_nos):
            return False
        if blocks(status):
            self.card_nos.add(card_no)
        else:
            self.card_nos.discard(card_no)
        self.version = fingerprint(self.card_nos)
        return True

    def sorted(self) -> list[str]:
        return sorted(self.card_nos)
