"""The grants in memory: every batch with its items and every notice, read from the store at start
and kept in step with what is journaled (rows made here, written by the hub's writer)."""

from __future__ import annotations

from dataclasses import dataclass, field

from onecard_hub.domain.grants import (
    BatchStatus,
    FailReason,
    GrantBatch,
    GrantItem,
    GrantType,
    ItemStatus,
    Notification,
)
from onecard_hub.store.records import GrantBatchRow, GrantItemRow, GrantNoticeRow, Snapshot


@dataclass(slots=True)
class GrantBook:
    batches: dict[tuple[str, str], GrantBatch] = field(default_factory=dict)
    notices: dict[tuple[str, str], dict[str, Notification]] = field(default_factory=dict)

    @classmethod
    def from_snapshot(cls, snap: Snapshot) -> GrantBook:
        book = cls()
        for b in snap.grant_batches:
            book.batches[(b.school_id, b.batch_id)] = GrantBatch(
                b.school_id,
                b.batch_id,
                GrantType(b.grant_type),
                b.academic_year,
                b.submitted_by,
                b.created_ms,
                BatchStatus(b.status),
                b.approved_by,
            )
        for i in snap.grant_items:
            batch = book.batches[(i.school_id, i.batch_id)]
            batch.items[i.student_id] = GrantItem(
                i.student_id,
                i.amount_fen,
                ItemStatus(i.status),
                FailReason(i.fail_reason),
                i.attempts,
                i.transfer_id,
                i.bank_code,
                i.card_no,
                i.updated_ms,
                i.line_no,
            )
        for n in snap.grant_notices:
            book.notices.setdefault((n.school_id, n.batch_id), {})[n.student_id] = Notification(
                n.school_id,
                n.batch_id,
                n.student_id,
                n.name_masked,
                GrantType(n.grant_type),
                n.amount_fen,
                n.created_ms,
                n.message,
            )
        return book

    def unfinished(self) -> list[GrantBatch]:
        return [b for b in self.batches.values() if b.status == BatchStatus.PAYING]


def batch_row(batch: GrantBatch) -> GrantBatchRow:
    return GrantBatchRow(
        batch.school_id,
        batch.batch_id,
        int(batch.grant_type),
        batch.academic_year,
        int(batch.status),
        batch.submitted_by,
        batch.approved_by,
        batch.created_ms,
    )


def item_row(batch: GrantBatch, item: GrantItem) -> GrantItemRow:
    return GrantItemRow(
        batch.school_id,
        batch.batch_id,
        item.student_id,
        item.line_no,
        item.amount_fen,
        int(item.status),
        int(item.fail_reason),
        item.attempts,
        item.transfer_id,
        item.bank_code,
        item.card_no,
        item.updated_ms,
    )


def notice_row(n: Notification) -> GrantNoticeRow:
    return GrantNoticeRow(
        n.school_id,
        n.batch_id,
        n.student_id,
        n.name_masked,
        int(n.grant_type),
        n.amount_fen,
        n.created_ms,
        n.message,
    )
