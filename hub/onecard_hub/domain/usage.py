"""Usage statistics (the notice asks every school to track how its students use the card).

Per school: enrolled students, how many of them hold a card, an e-card and an activated bank
function, how many used a card or e-card in the last `WINDOW_DAYS` business days of the hub's
clock (today included), and the taps of those days by scene.

`UsageBook` is what the tap path feeds: per card, the last business day it was approved (one
dict store per approval), and per (school, day, scene) the approved and declined taps. At start
it is rebuilt from the journal's taps of the window and the booked offline records
(`recovery.py`). The report itself reads the campus in memory once: no SQL.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta

from onecard_hub.domain.clock import CST, business_day
from onecard_hub.domain.model import BankStatus, Card, CardStatus, Enrollment, Scene, School, Student

WINDOW_DAYS = 7
# Cards that no longer count as issued: superseded or closed for good.
_DEAD = frozenset({CardStatus.REPLACED, CardStatus.CANCELLED})
_SCENES = frozenset(int(s) for s in Scene)


def window_start(today: int) -> int:
    """The first business day of the window that ends today."""
    return today - WINDOW_DAYS + 1


def window_start_ms(now_ms: int) -> int:
    """When the window that ends today began: local midnight of its first business day."""
    first = date(1970, 1, 1) + timedelta(days=window_start(business_day(now_ms)))
    return int(datetime.combine(first, time(), tzinfo=CST).timestamp() * 1000)


def business_date(day: int) -> str:
    """A business day (days since 1970-01-01 in CST) as its date, "2026-11-24"."""
    return (date(1970, 1, 1) + timedelta(days=day)).isoformat()


class UsageBook:
    """Last approved day per card, and taps per (school, business day, scene)."""

    __slots__ = ("last_day", "taps")

    def __init__(self) -> None:
        self.last_day: dict[str, int] = {}  # card_no → last business day with an approved tap
        # (school_id, business day, scene number) → [approved, declined]
        self.taps: dict[tuple[str, int, int], list[int]] = {}

    def record(self, school_id: str, card_no: str, scene: int, day: int, approved: bool) -> None:
        """A live tap or scan decided today (the hot path: two dict operations)."""
        counts = self.taps.get((school_id, day, scene))
        if counts is None:
            counts = self.taps[(school_id, day, scene)] = [0, 0]
        if approved:
            counts[0] += 1
            self.last_day[card_no] = day
        else:
            counts[1] += 1

    def record_past(
        self, school_id: str, card_no: str, scene: int, day: int, approved: int, declined: int
    ) -> None:
        """Taps that happened on `day`, possibly before days already recorded (offline records
        booked late, the journal at start)."""
        counts = self.taps.setdefault((school_id, day, scene), [0, 0])
        counts[0] += approved
        counts[1] += declined
        if approved and card_no and day > self.last_day.get(card_no, -1):
            self.last_day[card_no] = day

    def prune(self, today: int) -> None:
        """Forgets the days before the window (the report calls it)."""
        first = window_start(today)
        for key in [k for k in self.taps if k[1] < first]:
            del self.taps[key]
        for card_no in [c for c, d in self.last_day.items() if d < first]:
            del self.last_day[card_no]

    def used_since(self, card_no: str, first_day: int) -> bool:
        return self.last_day.get(card_no, -1) >= first_day


@dataclass(frozen=True, slots=True)
class SceneCount:
    approved: int = 0
    declined: int = 0


@dataclass(frozen=True, slots=True)
class SchoolUsage:
    school_id: str
    name: str
    students: int  # enrolled now; every count below counts these students only
    cards_issued: int
    ecards_issued: int
    bank_activated: int
    students_active: int
    taps: dict[Scene, SceneCount] = field(default_factory=dict)  # every scene, in enum order

    @property
    def usage_rate(self) -> float:
        return self.students_active / self.students if self.students else 0.0


@dataclass(slots=True)
class _Tally:
    students: int = 0
    cards: int = 0
    ecards: int = 0
    bank: int = 0
    active: int = 0


def usage_report(
    schools: Iterable[School],
    students: Iterable[Student],
    cards: Iterable[Card],
    book: UsageBook,
    today: int,
) -> list[SchoolUsage]:
    """The report for `schools` (by school_id), from the campus in memory and the book."""
    first = window_start(today)
    wanted = {s.school_id: s for s in schools}
    current: dict[str, Card] = {}  # student_id → their newest card that is neither replaced nor cancelled
    used: set[str] = set()  # student_ids with an approved tap of any of their cards in the window
    for card in cards:
        student = card.student
        if student.school_id not in wanted:
            continue
        if card.status not in _DEAD:
            current[student.student_id] = card
        if book.used_since(card.card_no, first):
            used.add(student.student_id)
    tallies = {school_id: _Tally() for school_id in wanted}
    for student in students:
        tally = tallies.get(student.school_id)
        if tally is None or student.enrollment is not Enrollment.ENROLLED:
            continue
        tally.students += 1
        held = current.get(student.student_id)
        if held is not None:
            tally.cards += 1
            tally.ecards += held.ecard_issued
            tally.bank += held.bank_status is not BankStatus.NOT_ACTIVATED
        tally.active += student.student_id in used
    taps: dict[str, dict[Scene, list[int]]] = {s: {scene: [0, 0] for scene in Scene} for s in wanted}
    for (school_id, day, scene), (approved, declined) in book.taps.items():
        by_scene = taps.get(school_id)
        if by_scene is None or day < first or day > today or scene not in _SCENES:
            continue
        counts = by_scene[Scene(scene)]
        counts[0] += approved
        counts[1] += declined
    return [
        SchoolUsage(
            school_id=school_id,
            name=wanted[school_id].name,
            students=t.students,
            cards_issued=t.cards,
            ecards_issued=t.ecards,
            bank_activated=t.bank,
            students_active=t.active,
            taps={scene: SceneCount(a, d) for scene, (a, d) in taps[school_id].items()},
        )
        for school_id, t in sorted(tallies.items())
    ]
