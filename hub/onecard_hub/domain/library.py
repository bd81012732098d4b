"""The library scene (图书借阅): loans of book copies to students, the loan limit and the
overdue block. Pure rules on in-memory state; the use case journals what they change.

A book copy is named by its barcode (`book_id`) within its school's library. A loan is open
until the book comes back; only open loans are held in memory (and loaded at start).
"""

from __future__ import annotations

from dataclasses import dataclass

from onecard_hub.domain.campus import Campus, Tap, TapResult
from onecard_hub.domain.decisions import APPROVED, DeclineReason
from onecard_hub.domain.desk_tap import admit
from onecard_hub.domain.model import Student

DAY_MS = 86_400_000


@dataclass(slots=True)
class Loan:
    loan_id: str  # "<terminal_id>:<request_id>" of the approved Borrow: unique, stable
    school_id: str
    book_id: str
    student: Student
    card_no: str
    borrowed_ms: int
    due_ms: int
    returned_ms: int = 0  # 0 while on loan

    def days_overdue(self, now_ms: int) -> int:
        """Started days past due, up to its return (or `now_ms` while on loan); 0 when not late."""
        late = (self.returned_ms or now_ms) - self.due_ms
        return 0 if late <= 0 else -(-late // DAY_MS)


@dataclass(slots=True)
class LibraryDecision:
    tap: TapResult  # reason, card, and the credential state to journal
    loan: Loan | None = None  # the loan made or closed, when approved
    loans_held: int = 0  # the student's open loans after the decision
    loan_limit: int = 0


class Library:
    """Open loans of every school, by book and by student."""

    def __init__(self) -> None:
        self.on_loan: dict[tuple[str, str], Loan] = {}  # (school_id, book_id) → open loan
        self.held: dict[str, dict[str, Loan]] = {}  # student_id → book_id → open loan

    def restore(self, loan: Loan) -> None:
        """Takes an open loan back in (at start)."""
        self.on_loan[(loan.school_id, loan.book_id)] = loan
        self.held.setdefault(loan.student.student_id, {})[loan.book_id] = loan

    def loans_of(self, student_id: str) -> list[Loan]:
        return list(self.held.get(student_id, {}).values())

    def borrow(self, campus: Campus, tap: Tap, book_id: str, now_ms: int) -> LibraryDecision:
        """Lends `book_id`: the holder may use the library, has no overdue loan, holds fewer
        than the limit, and the book is not on loan (to anyone, this student included)."""
        result = admit(campus, tap, now_ms)
        policy = campus.schools[tap.terminal.school_id].policy
        decision = LibraryDecision(result, loan_limit=policy.loan_limit)
        if result.card is None or result.reason is not APPROVED:
            return decision
        student = result.card.student
        held = self.held.get(student.student_id, {})
        decision.loans_held = len(held)
        if any(loan.due_ms < now_ms for loan in held.values()):
            result.reason = DeclineReason.LOAN_OVERDUE
        elif len(held) >= policy.loan_limit:
            result.reason = DeclineReason.LOAN_LIMIT_REACHED
        elif (student.school_id, book_id) in self.on_loan:
            result.reason = DeclineReason.BOOK_UNAVAILABLE
        else:
            loan = Loan(
                loan_id=f"{tap.terminal.terminal_id}:{tap.request_id}",
                school_id=student.school_id,
                book_id=book_id,
                student=student,
                card_no=result.card.card_no,
                borrowed_ms=now_ms,
                due_ms=now_ms + policy.loan_days * DAY_MS,
            )
            self.restore(loan)
            decision.loan = loan
            decision.loans_held += 1
        return decision

    def return_book(self, campus: Campus, tap: Tap, book_id: str, now_ms: int) -> LibraryDecision:
        """Takes `book_id` back from the holder it is on loan to (else BOOK_NOT_ON_LOAN)."""
        result = admit(campus, tap, now_ms)
        decision = LibraryDecision(result)
        if result.card is None or result.reason is not APPROVED:
            return decision
        student = result.card.student
        held = self.held.get(student.student_id, {})
        loan = held.get(book_id)
        if loan is None:
            result.reason = DeclineReason.BOOK_NOT_ON_LOAN
            decision.loans_held = len(held)
            return decision
        loan.returned_ms = now_ms
        del held[book_id]
        del self.on_loan[(loan.school_id, book_id)]
        decision.loan = loan
        decision.loans_held = len(held)
        return decision

    def overdue(self, school_id: str | None, now_ms: int) -> list[Loan]:
        """Open loans past due, oldest due first; every school's when `school_id` is None."""
        found = [
            loan
            for loan in self.on_loan.values()
            if loan.due_ms < now_ms and (school_id is None or loan.school_id == school_id)
        ]
        return sorted(found, key=lambda loan: (loan.due_ms, loan.loan_id))
