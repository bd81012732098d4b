"""The campus' students and cards, built from the store when first needed (domain/on_demand.py).

`CampusLoader.attach` makes the campus' `students` and `cards` `OnDemand` dictionaries: looking up a
student, or a card, that is not in memory reads the student and ALL their cards (store/campus_rows.py)
and builds them, so a student in memory always has every card of theirs in memory beside them, each
student's current card (`CardBook.current`) is known from then on, and a card's `student` is the one
student object. What is built stays. The rows are the truth for what is not in memory: every change
the hub makes is to a student or card it holds, so nothing about one it does not hold is waiting to
be written.

Walking every student or card builds all that is missing first (`everything`), as the hub used to at
start: the rows of a chunk at a time, straight into objects (enums by lookup, one string for every
student sharing a school id, masked names kept while they repeat). At a million cards that is about
12 s of CPU on the event loop, so `serve` does not wait for a walk to pay it: once serving, `fill`
builds what is missing in the background, a few hundred students (with all their cards) at a time
and never more than a fifth of the core, so that within a minute or so of a start at a million
cards no call pays for a first lookup and no report for a walk.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import sqlite3
import time
from typing import Any

from onecard_hub.domain.campus import Campus
from onecard_hub.domain.card_lifecycle import DEAD, CardBook
from onecard_hub.domain.ledger import Account
from onecard_hub.domain.model import (
    NO_MEALS,
    BankStatus,
    CardKeys,
    CardStatus,
    Enrollment,
    LoadedCard,
    Presence,
    Student,
    StudentGroup,
    Wallet,
)
from onecard_hub.domain.on_demand import OnDemand
from onecard_hub.domain.pii import mask_name
from onecard_hub.store.campus_rows import CampusRows, StudentWithCards

log = logging.getLogger(__name__)

BOOLS = (False, True)  # SQLite's 0 and 1
MASKS_KEPT = 100_000  # names whose masked form is kept (names repeat)
GROUPS = {g.value: g for g in StudentGroup}
ENROLLMENTS = {e.value: e for e in Enrollment}
STATUSES = {s.value: s for s in CardStatus}
BANK_STATUSES = {s.value: s for s in BankStatus}
PRESENCES = {p.value: p for p in Presence}


class CampusLoader:
    def __init__(self, rows: CampusRows, campus: Campus, card_book: CardBook, keys: CardKeys) -> None:
        self.rows = rows
        self.campus = campus
        self.card_book = card_book
        self.keys = keys
        self.accounts: dict[int, Account] = campus.ledger.accounts
        # school ids, bank codes, masked names and ID numbers, birth dates: one string for all who
        # share it
        self.shared: dict[str, str] = {s: s for s in campus.schools}
        self.masks: dict[str, str] = {}  # name → masked name
        self.students: OnDemand[str, Student] = OnDemand(self.fetch_student, self.everything)
        self.cards: OnDemand[str, LoadedCard] = OnDemand(self.fetch_card, self.everything)

    def attach(self) -> None:
        """The campus' students and cards are built from the store from now on, when first needed."""
        self.campus.students = self.students
        self.campus.cards = self.cards  # type: ignore[assignment]

    def blocked_cards(self) -> list[tuple[str, str]]:
        return self.rows.blocked_cards()

    # -- one student and their cards ------------------------------------------------------------------

    def fetch_student(self, student_id: str) -> None:
        if isinstance(student_id, str):
            self._build(self.rows.student(student_id))

    def fetch_card(self, card_no: str) -> None:
        if isinstance(card_no, str):
            self._build(self.rows.student_of_card(card_no))

    def _build(self, found: StudentWithCards | None) -> None:
        if found is None or dict.__contains__(self.students, found[0][0]):
            return  # no such student or card; or the student is in memory with all their cards
        student_row, card_rows = found
        student = self._student(student_row)
        for row in card_rows:
            self._card(row, student)

    def stored_student_by_id_index(self, id_index: bytes) -> Student | None:
        """The student whose row has this keyed index of the ID number (a unique column), built if
        needed. A student enrolled in memory whose row is not written yet is not found here."""
        student_id = self.rows.student_with_id_index(id_index)
        found: Student | None = None if student_id is None else self.students.get(student_id)
        return found

    # -- everything --------------------------------------------------------------------------------

    def everything(self) -> None:
        """Every student and card not in memory yet, read in chunks (one walk of each table)."""
        was_collecting = gc.isenabled()
        gc.disable()  # a million objects that live as long as the hub: no collection halfway through
        try:
            held, student_of = dict.__contains__, dict.__getitem__
            students, cards = self.students, self.cards
            for chunk in self.rows.student_chunks():
                for row in chunk:
                    if not held(students, row[0]):
                        self._student(row)
            # a card not in memory is one of a student just built (a student in memory has all theirs)
            for chunk in self.rows.card_chunks():
                for row in chunk:
                    if not held(cards, row[0]):
                        self._card(row, student_of(students, row[1]))
            self._completed()
            gc.freeze()  # no collection walks the millions just built (see recovery.rebuild)
        finally:
            if was_collecting:
                gc.enable()

    async def fill(self, step: int = 256, share: float = 0.2) -> None:
        """Builds every student (with all their cards) not in memory yet, `step` students at a time,
        sleeping between steps so that the building takes at most `share` of the loop's time; then
        the campus is complete. A student enrolled after the start is in memory already (the hub
        holds whatever it changes), so the students that exist when it starts are all there is."""
        began = time.monotonic()
        try:
            upto = self.rows.last_student_rowid()
            after = 0
            while after < upto and not self.students.complete:
                started = time.perf_counter()
                for found in self.rows.students_between(after, after + step):
                    self._build(found)
                after += step
                await asyncio.sleep((time.perf_counter() - started) * (1 - share) / share)
        except (sqlite3.Error, RuntimeError):  # lookups and walks still build what they need
            log.exception("building the campus in the background failed; it goes on being built on use")
            return
        if not self.students.complete:
            self._completed()
            gc.collect(1)
            gc.freeze()  # no collection walks the million just built
            log.info(
                "campus built in the background: %d students, %d cards in memory after %.1f s",
                dict.__len__(self.students),
                dict.__len__(self.cards),
                time.monotonic() - began,
            )

    def _completed(self) -> None:
        """Every student and card is in memory: nothing more is built, so what building needs goes."""
        self.students.complete = self.cards.complete = True
        self.rows.tail.clear()  # the log's tail is read for good
        self.shared.clear()  # the strings stay, with the students holding them; the map of them goes
        self.masks.clear()
        self.rows.forget_pages()

    # -- objects from rows -------------------------------------------------------------------------

    def _student(self, row: tuple[Any, ...]) -> Student:
        student_id, school_id, name, id_index, id_masked, birth, group, enrollment, wallet_id = row
        shared = self.shared
        account = self.accounts[wallet_id]
        if account.owner == student_id:
            student_id = account.owner  # one string for both
        masked = self.masks.get(name)
        if masked is None:
            masked = mask_name(name)
            masked = shared.setdefault(masked, masked)
            if len(self.masks) < MASKS_KEPT:
                self.masks[name] = masked
        student = Student(
            student_id,
            shared.setdefault(school_id, school_id),
            masked,
            GROUPS[group],
            ENROLLMENTS[enrollment],
            Wallet(account, -1, 0, NO_MEALS),
            shared.setdefault(birth, birth),
            id_index,
            shared.setdefault(id_masked, id_masked),
        )
        dict.__setitem__(self.students, student_id, student)
        return student

    def _card(self, row: tuple[Any, ...], student: Student) -> None:
        (
            card_no,
            _,
            status_text,
            pin_hash,
            bank_code,
            atc,
            pin_failures,
            presence,
            bank_status,
            generation,
            ecard_issued,
            ecard_suspended,
            issued_ms,
            replaced_by,
        ) = row
        status = STATUSES[status_text]
        dict.__setitem__(
            self.cards,
            card_no,
            LoadedCard(
                self.keys,
                card_no,
                student,
                status,
                pin_hash,
                atc,
                pin_failures,
                PRESENCES[presence],
                BOOLS[ecard_suspended],
                BOOLS[ecard_issued],
                generation,
                self.shared.setdefault(bank_code, bank_code),
                BANK_STATUSES[bank_status],
                issued_ms,
                replaced_by,
            ),
        )
        self.rows.tail.pop(card_no, None)  # the card in memory from now on is its truth
        current = self.card_book.current  # the newest live card, in issue order (CardBook.note_card)
        if status not in DEAD:
            current[student.student_id] = card_no
        elif current.get(student.student_id) == card_no:
            del current[student.student_id]
