"""Answered mutating calls by (caller, request_id), kept for the retention window (AIP-155).

Same id and same body → the original response; same id with a different body →
FAILED_PRECONDITION (IDEMPOTENCY_KEY_REUSED). A copy that arrives while the original is
still being made durable waits for it, so 50 concurrent copies make one debit.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

from onecard_hub.domain.campus import GatePass, Purchase
from onecard_hub.domain.errors import FailedPrecondition

Key = tuple[str, str]  # (caller, request_id)


@dataclass(slots=True)
class Entry:
    method: str
    fingerprint: bytes
    created_ms: int
    response: bytes = b""
    durable: asyncio.Future[None] | None = None  # set while the journal write is pending
    undo: Purchase | GatePass | None = None  # an approval a refund or reversal may undo
    tombstone: bool = False  # a reversal arrived before this request_id was ever seen

    def matches(self, method: str, fingerprint: bytes) -> None:
        if self.method != method or self.fingerprint != fingerprint:
            raise FailedPrecondition(
                "request_id: already used by this caller for a different request",
                reason="IDEMPOTENCY_KEY_REUSED",
                field="request_id",
            )


class Registry:
    def __init__(self) -> None:
        self.entries: dict[Key, Entry] = {}

    def get(self, key: Key) -> Entry | None:
        return self.entries.get(key)

    def put(self, key: Key, entry: Entry) -> None:
        self.entries.pop(key, None)  # keep the dict in creation order for pruning
        self.entries[key] = entry

    def prune(self, before_ms: int) -> int:
        """Forgets entries made before `before_ms` (they are oldest-first)."""
        stale = []
        for key, entry in self.entries.items():
            if entry.created_ms >= before_ms:
                break
            if entry.durable is None:
                stale.append(key)
        for key in stale:
            del self.entries[key]
        return len(stale)

    def __len__(self) -> int:
        return len(self.entries)
