"""Usage statistics, the pure part: the usage book (last approved day per card, taps per school,
day and scene) and the per-school report over a hand-made campus."""

from __future__ import annotations

from onecard_hub.domain.clock import business_day, parse_instant
from onecard_hub.domain.ledger import Account, AccountKind
from onecard_hub.domain.model import (
    BankStatus,
    Card,
    CardStatus,
    Enrollment,
    Scene,
    School,
    SchoolPolicy,
    Student,
    StudentGroup,
    Wallet,
)
from onecard_hub.domain.usage import (
    WINDOW_DAYS,
    UsageBook,
    business_date,
    usage_report,
    window_start,
    window_start_ms,
)

NOW = parse_instant("2026-11-24T12:00:00+08:00")
TODAY = business_day(NOW)
SCHOOL = School("s1", "一校", SchoolPolicy())
OTHER = School("s2", "二校", SchoolPolicy())


def _student(student_id: str, school: str = "s1", enrollment: Enrollment = Enrollment.ENROLLED) -> Student:
    account = Account(hash(student_id) % 10_000, AccountKind.WALLET, student_id)
    return Student(student_id, school, "张*", StudentGroup.BOARDER, enrollment, Wallet(account))


def _card(card_no: str, student: Student, status: CardStatus = CardStatus.ACTIVE, **extra: object) -> Card:
    return Card(card_no, student, status, b"k", b"e", b"p", **extra)  # type: ignore[arg-type]


def test_the_window_is_seven_business_days_ending_today() -> None:
    assert WINDOW_DAYS == 7
    assert business_date(TODAY) == "2026-11-24"
    assert business_date(window_start(TODAY)) == "2026-11-18"
    start = window_start_ms(NOW)
    assert business_day(start) == window_start(TODAY) and business_day(start - 1) == window_start(TODAY) - 1


def test_the_book_counts_taps_and_keeps_the_last_approved_day() -> None:
    book = UsageBook()
    book.record("s1", "C1", int(Scene.GATE_ENTRY), TODAY - 2, True)
    book.record("s1", "C1", int(Scene.GATE_ENTRY), TODAY, True)
    book.record("s1", "C2", int(Scene.GATE_ENTRY), TODAY, False)
    assert book.taps[("s1", TODAY, int(Scene.GATE_ENTRY))] == [1, 1]
    assert book.last_day == {"C1": TODAY}  # a decline is no use of the card
    book.record_past("s1", "C1", int(Scene.CANTEEN_PURCHASE), TODAY - 5, 1, 0)  # booked late: older
    assert book.last_day["C1"] == TODAY
    book.record_past("s1", "C3", int(Scene.CANTEEN_PURCHASE), TODAY - 9, 1, 0)
    book.prune(TODAY)
    assert "C3" not in book.last_day
    assert all(day >= window_start(TODAY) for _, day, _ in book.taps)


def test_the_report_counts_enrolled_students_their_current_cards_and_use() -> None:
    a, b, c = _student("a"), _student("b"), _student("c")
    gone = _student("d", enrollment=Enrollment.GRADUATED)
    elsewhere = _student("e", school="s2")
    old = _card("A-OLD", a, CardStatus.REPLACED, replaced_by="A-NEW")
    cards = [
        old,
        _card("A-NEW", a, bank_status=BankStatus.NOT_ACTIVATED),
        _card("B", b, CardStatus.LOST, ecard_issued=False, generation=2),
        _card("D", gone),
        _card("E", elsewhere),
    ]
    book = UsageBook()
    book.record("s1", "A-OLD", int(Scene.GATE_ENTRY), TODAY - 6, True)  # an old card still counts
    book.record("s1", "D", int(Scene.GATE_EXIT), TODAY, True)  # graduated: not among the students
    book.record("s1", "B", int(Scene.CANTEEN_PURCHASE), TODAY - 7, True)  # before the window
    book.record("s2", "E", int(Scene.CANTEEN_PURCHASE), TODAY, True)
    book.record("s1", "X", int(Scene.LIBRARY_BORROW), TODAY, False)

    (s1, s2) = usage_report([OTHER, SCHOOL], [a, b, c, gone, elsewhere], cards, book, TODAY)
    assert (s1.school_id, s2.school_id) == ("s1", "s2")
    assert (s1.students, s1.cards_issued, s1.ecards_issued, s1.bank_activated) == (3, 2, 1, 1)
    assert s1.students_active == 1 and s1.usage_rate == 1 / 3
    assert s1.taps[Scene.GATE_ENTRY].approved == 1 and s1.taps[Scene.GATE_EXIT].approved == 1
    assert s1.taps[Scene.CANTEEN_PURCHASE].approved == 0  # outside the window
    assert s1.taps[Scene.LIBRARY_BORROW].declined == 1
    assert list(s1.taps) == list(Scene)
    assert (s2.students, s2.students_active, s2.taps[Scene.CANTEEN_PURCHASE].approved) == (1, 1, 1)


def test_a_school_without_students_has_a_zero_rate() -> None:
    (only,) = usage_report([SCHOOL], [], [], UsageBook(), TODAY)
    assert only.students == 0 and only.usage_rate == 0.0
