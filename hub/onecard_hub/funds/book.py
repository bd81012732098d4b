"""Funds' state in memory: every top-up by id (and by student), auto top-up settings, changes of
bank; rebuilt from the store at start. Rows are made here (the one place that knows both shapes)."""

from __future__ import annotations

from dataclasses import dataclass, field

from onecard_hub.domain.topup import AutoTopUp, BankChange, ChangeState, Origin, TopUp, TopUpState
from onecard_hub.store.records import AutoTopUpRow, BankChangeRow, Snapshot, TopUpRow


def topup_row(t: TopUp) -> TopUpRow:
    return TopUpRow(
        t.topup_id,
        t.student_id,
        t.school_id,
        t.card_no,
        t.bank_code,
        t.amount_fen,
        t.origin.value,
        t.business_date,
        t.created_ms,
        t.state.value,
        t.reason,
        t.reversals,
        t.updated_ms,
    )


def topup_of(r: TopUpRow) -> TopUp:
    return TopUp(
        r.topup_id,
        r.student_id,
        r.school_id,
        r.card_no,
        r.bank_code,
        r.amount_fen,
        Origin(r.origin),
        r.business_date,
        r.created_ms,
        TopUpState(r.state),
        r.reason,
        r.reversals,
        r.updated_ms,
    )


def auto_row(a: AutoTopUp) -> AutoTopUpRow:
    return AutoTopUpRow(
        a.student_id, a.enabled, a.threshold_fen, a.amount_fen, a.last_topup_id, a.last_failure, a.updated_ms
    )


def change_row(c: BankChange) -> BankChangeRow:
    return BankChangeRow(
        c.student_id,
        c.card_no,
        c.old_bank_code,
        c.new_bank_code,
        c.created_ms,
        c.state.value,
        c.paid_out_fen,
        c.updated_ms,
    )


@dataclass(slots=True)
class FundsBook:
    topups: dict[str, TopUp] = field(default_factory=dict)
    by_student: dict[str, list[TopUp]] = field(default_factory=dict)
    autos: dict[str, AutoTopUp] = field(default_factory=dict)
    changes: dict[str, list[BankChange]] = field(default_factory=dict)  # student id → oldest first

    @classmethod
    def from_snapshot(cls, snap: Snapshot) -> FundsBook:
        book = cls()
        for row in snap.topups:
            book.keep(topup_of(row))
        for a in snap.auto_topups:
            book.autos[a.student_id] = AutoTopUp(
                a.student_id,
                a.enabled,
                a.threshold_fen,
                a.amount_fen,
                a.last_topup_id,
                a.last_failure,
                a.updated_ms,
            )
        for c in snap.bank_changes:
            book.changes.setdefault(c.student_id, []).append(
                BankChange(
                    c.student_id,
                    c.card_no,
                    c.old_bank_code,
                    c.new_bank_code,
                    c.created_ms,
                    ChangeState(c.state),
                    c.paid_out_fen,
                    c.updated_ms,
                )
            )
        return book

    def keep(self, topup: TopUp) -> None:
        if topup.topup_id not in self.topups:
            self.by_student.setdefault(topup.student_id, []).append(topup)
        self.topups[topup.topup_id] = topup

    def today_fen(self, student_id: str, business_date: str) -> int:
        return sum(
            t.amount_fen
            for t in self.by_student.get(student_id, ())
            if t.business_date == business_date and t.counts_today
        )

    def open_at(self, student_id: str, bank_code: str) -> list[TopUp]:
        """Top-ups of the student at that bank that are not final (pending or in review)."""
        return [
            t for t in self.by_student.get(student_id, ()) if t.bank_code == bank_code and not t.state.final
        ]

    def not_final(self) -> list[TopUp]:
        return [t for t in self.topups.values() if not t.state.final]

    def in_review(self, school_ids: set[str] | None) -> list[TopUp]:
        return sorted(
            (
                t
                for t in self.topups.values()
                if t.state is TopUpState.MANUAL_REVIEW and (school_ids is None or t.school_id in school_ids)
            ),
            key=lambda t: t.created_ms,
        )

    def pending_closes(self) -> list[BankChange]:
        return [c for cs in self.changes.values() for c in cs if c.state is ChangeState.PENDING_CLOSE]
