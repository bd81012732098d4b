"""A terminal's copy of its school's blocklist, kept live by `TerminalClient.watch_blocklist`.

    copy = BlocklistCopy()
    async for message in terminal.watch_blocklist(copy.version):
        copy.apply(message)          # a snapshot replaces it, changes add and remove cards
        ...                          # copy.blocks(card_no) for offline decisions

When the stream ends (the hub restarts, or this terminal read too slowly and was dropped with
RESOURCE_EXHAUSTED), subscribe again with `copy.version`: the hub sends what changed since (or a
snapshot when that is too old), so nothing is missed and nothing comes twice. Pure: no grpc here.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

__all__ = ["BlocklistCopy", "BlocklistGap"]

ADDED = 1  # onecard.terminal.v1.BLOCKLIST_CHANGE_KIND_ADDED


class _Change(Protocol):
    @property
    def version(self) -> int: ...
    @property
    def card_no(self) -> str: ...
    @property
    def kind(self) -> int: ...


class _Message(Protocol):
    @property
    def snapshot(self) -> bool: ...
    @property
    def version(self) -> int: ...
    @property
    def blocked_card_nos(self) -> list[str] | object: ...
    @property
    def changes(self) -> list[_Change] | object: ...


class BlocklistGap(Exception):
    """A change that does not follow the version held: subscribe again from `BlocklistCopy.version`."""


@dataclass
class BlocklistCopy:
    version: int = 0
    card_nos: set[str] = field(default_factory=set)
    snapshots: int = 0  # how many snapshots were applied (statistics)
    changes_applied: int = 0

    def blocks(self, card_no: str) -> bool:
        return card_no in self.card_nos

    def apply(self, message: _Message) -> None:
        """Applies one WatchBlocklistResponse; BlocklistGap when a change skips a version."""
        if message.snapshot:
            self.card_nos = set(message.blocked_card_nos)  # type: ignore[call-overload]
            self.version = message.version
            self.snapshots += 1
            return
        for change in message.changes:  # type: ignore[attr-defined]
            if change.version != self.version + 1:
                raise BlocklistGap(f"holding version {self.version}, got a change at {change.version}")
            if change.kind == ADDED:
                self.card_nos.add(change.card_no)
            else:
                self.card_nos.discard(change.card_no)
            self.version = change.version
            self.changes_applied += 1
        if message.version > self.version:
            raise BlocklistGap(f"the message ends at version {message.version}, the copy at {self.version}")
