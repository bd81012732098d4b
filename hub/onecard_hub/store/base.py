"""The store interface: the hub's durable journal and the source of its start-up state.

SQLite implements it now; a PostgreSQL backend will implement the same methods.
"""

from __future__ import annotations

from typing import Protocol

from onecard_hub.store.records import AuditRow, Batch, LedgerTotals, SeedData, Snapshot


class Store(Protocol):
    async def open(self) -> None:
        """Connects and brings the schema to the current version."""

    async def close(self) -> None: ...

    async def load(self, since_ms: int, usage_since_ms: int | None = None) -> Snapshot:
        """Everything the hub keeps in memory; requests and transfers made since `since_ms`; with
        `usage_since_ms`, the tap counts and cards' last approved days since then (usage statistics)."""

    async def write(self, batch: Batch) -> None:
        """Writes a batch in one transaction; durable when it returns."""

    async def checkpoint(self) -> None:
        """Folds what the journal appended since the last checkpoint into the stored balances and
        card state, so that the next start replays less (the hub calls it on a clean stop)."""

    async def seed(self, data: SeedData) -> None:
        """Bulk-loads a campus into an empty store."""

    async def ledger_totals(self) -> LedgerTotals: ...

    async def ledger_mismatches(self) -> int:
        """Accounts whose balance differs from what their transfers add up to."""

    async def audit_entries(
        self, *, student_id: str, actor_id: str, school_id: str, after_id: int, limit: int
    ) -> list[AuditRow]:
        """The audit log, newest first, below `after_id` (0: from the newest); each non-empty
        filter must match."""

    async def max_seq(self) -> int:
        """The highest authorization sequence number journaled so far."""
