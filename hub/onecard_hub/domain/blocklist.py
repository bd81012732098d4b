"""The blocklist a school's terminals keep: cards no terminal may accept, online or offline.

A card is on it while its identity function is not ACTIVE (lost, frozen, replaced, cancelled,
not yet enabled). `Campus.set_card_status` is the one way a card's status changes; it keeps the
list in step and returns the `BlocklistChange` rows its caller adds to the SAME writer batch as the
status change (`Batch.blocklist`), so the change log is durable exactly when the status is.

Versions are per school, monotonic and persisted: every change (a card joining or leaving the
list) takes the next version, starting at 1; version 0 means "no list at all". A restart reads the
highest version back from the change log, so versions never repeat or go backwards.

Two versions matter in memory:
- `version`: the last change decided (the in-memory state the tap path reads);
- `durable_version`: the last change whose writer batch has committed. Terminals only ever see
  durable state: `snapshot()`, `delta_since()`, GetConfig and heartbeats are all as of
  `durable_version` (the feed calls `mark_durable` when a batch commits).

The last `keep` changes are kept in memory, so a terminal that reconnects with the version it holds
gets only what changed since; one further behind (or with version 0, or with a version this hub
never issued) gets a full snapshot.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass, field

from onecard_hub.domain.model import CardStatus

KEEP_CHANGES = 10_000


def blocks(status: CardStatus) -> bool:
    return status is not CardStatus.ACTIVE


BLOCKING_STATUSES = frozenset(status for status in CardStatus if blocks(status))


@dataclass(frozen=True, slots=True)
class BlocklistChange:
    """One card joining (`added`) or leaving the school's blocklist, at `version`."""

    school_id: str
    version: int
    card_no: str
    added: bool
    changed_ms: int  # hub clock


@dataclass(frozen=True, slots=True)
class BlocklistSnapshot:
    version: int
    card_nos: list[str]  # sorted


@dataclass(slots=True)
class Blocklist:
    school_id: str = ""
    card_nos: set[str] = field(default_factory=set)
    version: int = 0
    durable_version: int = 0
    keep: int = KEEP_CHANGES
    changes: deque[BlocklistChange] = field(default_factory=deque)

    def update(self, card_no: str, status: CardStatus, changed_ms: int = 0) -> BlocklistChange | None:
        """Adds or removes the card as its status says; the change (next version) when the list changed."""
        added = blocks(status)
        if added == (card_no in self.card_nos):
            return None
        if added:
            self.card_nos.add(card_no)
        else:
            self.card_nos.discard(card_no)
        self.version += 1
        change = BlocklistChange(self.school_id, self.version, card_no, added, changed_ms)
        self.changes.append(change)
        while len(self.changes) > self.keep:
            self.changes.popleft()
        return change

    def restore(self, changes: Iterable[BlocklistChange]) -> None:
        """At start: the newest changes read back from the log (oldest first); all of them durable.
        The list itself comes from the cards' statuses. A list with cards but no change logged
        (seeded so) is version 1, so that version 0 keeps meaning "no list"."""
        for change in changes:
            self.changes.append(change)
            self.version = max(self.version, change.version)
        while len(self.changes) > self.keep:
            self.changes.popleft()
        if self.version == 0 and self.card_nos:
            self.version = 1
        self.durable_version = self.version

    def mark_durable(self, version: int) -> None:
        if version > self.durable_version:
            self.durable_version = version

    def delta_since(self, since_version: int) -> list[BlocklistChange] | None:
        """The durable changes after `since_version`, oldest first; None when a snapshot is needed
        (version 0, older than the changes kept, or a version this hub never made durable)."""
        durable = self.durable_version
        if since_version <= 0 or since_version > durable:
            return None
        if since_version == durable:
            return []
        oldest = self.changes[0].version if self.changes else durable + 1
        if since_version < oldest - 1:
            return None
        return [c for c in self._newest_after(since_version) if c.version <= durable]

    def _newest_after(self, version: int) -> list[BlocklistChange]:
        """Changes after `version`, oldest first, walking from the newest end (the common case is a
        few recent ones)."""
        found: list[BlocklistChange] = []
        for change in reversed(self.changes):
            if change.version <= version:
                break
            found.append(change)
        found.reverse()
        return found

    def snapshot(self) -> BlocklistSnapshot:
        """The whole list as of `durable_version` (decided but not yet durable changes undone)."""
        card_nos = set(self.card_nos)
        for change in reversed(self._newest_after(self.durable_version)):
            if change.added:
                card_nos.discard(change.card_no)
            else:
                card_nos.add(change.card_no)
        return BlocklistSnapshot(self.durable_version, sorted(card_nos))

    def sorted(self) -> list[str]:
        return sorted(self.card_nos)
