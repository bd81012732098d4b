"""Library desks (图书借阅): a student lends or brings back a book with a card tap or an e-card QR scan
(`LibraryService.Borrow` / `Return`).

`LibraryDesk` is one desk; each call is reported as a `TapEvent` of scene `library_borrow` or
`library_return` with the hub's outcome (APPROVED, LOAN_LIMIT_REACHED, LOAN_OVERDUE,
BOOK_UNAVAILABLE, BOOK_NOT_ON_LOAN, a card refusal, …).

`LibraryFleet` holds every desk of a run, the school's shelves (book ids) and the simulator's idea of
who holds which book, and offers the `visit` action of a library stream: a student with books brings
one back, or borrows one from the shelf. Now and then a mistake: a student at the loan limit tries
one more (LOAN_LIMIT_REACHED), a book already lent to someone else is asked for (BOOK_UNAVAILABLE),
a book the student never borrowed is handed in (BOOK_NOT_ON_LOAN). What the simulator expected and
what the hub answered are kept (`surprises`) for the scenario's invariants.
"""

from __future__ import annotations

import random
from collections import Counter
from pathlib import Path

from onecard.auth.v1 import authorization_service_pb2 as auth_pb
from onecard.library.v1 import library_service_pb2 as lib_pb
from onecard_client.campus import TerminalInfo
from onecard_client.taps import chip_tap
from onecard_sim.driver import Arrival
from onecard_sim.events import APPROVED, LIBRARY_BORROW, LIBRARY_RETURN, EventSink, TapEvent
from onecard_sim.fleet import Fleet
from onecard_sim.population import ECardApp, Population, SimStudent
from onecard_sim.terminal import SimTerminal

__all__ = ["BOOKS_PER_STUDENT", "DEFAULT_LOAN_LIMIT", "LibraryDesk", "LibraryFleet"]

DEFAULT_LOAN_LIMIT = 5  # until a desk hears the school's limit from the hub (BorrowResponse.loan_limit)
BOOKS_PER_STUDENT = 3
MISTAKES = ("over_limit", "book_lent", "not_on_loan")


class LibraryDesk(SimTerminal):
    """One library desk of a school."""

    def __init__(
        self,
        info: TerminalInfo,
        *,
        target: str,
        sink: EventSink,
        ecard: ECardApp,
        pki_dir: Path | None = None,
        qr_share: float = 0.7,
        seed: int = 0,
        **options: object,
    ) -> None:
        super().__init__(info, target=target, sink=sink, pki_dir=pki_dir, **options)  # type: ignore[arg-type]
        self.ecard = ecard
        self.qr_share = qr_share
        self.rng = random.Random(seed)

    async def borrow(
        self, student: SimStudent, book_id: str, *, scheduled_at: float | None = None
    ) -> tuple[lib_pb.BorrowResponse | None, TapEvent]:
        request = lib_pb.BorrowRequest(
            request_id=self.new_request_id(), terminal_id=self.terminal_id, book_id=book_id
        )
        scheduled_at = await self._credential(request, student, auth_pb.SCENE_LIBRARY_BORROW, scheduled_at)
        return await self.call(
            self.client.borrow(request),
            scene=LIBRARY_BORROW,
            card_no=student.card_no,
            request_id=request.request_id,
            tap_time_ms=request.tap_time.ToMilliseconds(),
            scheduled_at=scheduled_at,
        )

    async def return_book(
        self, student: SimStudent, book_id: str, *, scheduled_at: float | None = None
    ) -> tuple[lib_pb.ReturnResponse | None, TapEvent]:
        request = lib_pb.ReturnRequest(
            request_id=self.new_request_id(), terminal_id=self.terminal_id, book_id=book_id
        )
        scheduled_at = await self._credential(request, student, auth_pb.SCENE_LIBRARY_RETURN, scheduled_at)
        return await self.call(
            self.client.return_book(request),
            scene=LIBRARY_RETURN,
            card_no=student.card_no,
            request_id=request.request_id,
            tap_time_ms=request.tap_time.ToMilliseconds(),
            scheduled_at=scheduled_at,
        )

    async def _credential(
        self,
        request: lib_pb.BorrowRequest | lib_pb.ReturnRequest,
        student: SimStudent,
        scene: int,
        scheduled_at: float | None,
    ) -> float | None:
        """Fills the card tap or the QR scan and the tap time; returns the (moved) schedule."""
        if self.rng.random() < self.qr_share:
            text, scheduled_at = await self.show_code(self.ecard, student, scheduled_at)
            request.qr.token = text
            request.tap_time.FromMilliseconds(self.now_ms())
            return scheduled_at
        tap_ms = self.now_ms()
        chip = chip_tap(
            student.card,
            request_id=request.request_id,
            terminal_id=self.terminal_id,
            scene=scene,
            atc=student.next_atc(),
            tap_time_ms=tap_ms,
        ).chip
        request.chip.CopyFrom(chip)
        request.tap_time.FromMilliseconds(tap_ms)
        return scheduled_at


class LibraryFleet(Fleet[LibraryDesk]):
    """Every library desk of a run, the shelves, and the `visit` action for a library stream."""

    label = "library desks"

    def __init__(
        self, desks: list[LibraryDesk], population: Population, *, mistake_share: float = 0.08, seed: int = 0
    ) -> None:
        super().__init__(desks)
        self.population = population
        self.mistake_share = mistake_share
        self.rng = random.Random(seed)
        self.run_tag = f"{seed:x}{self.rng.getrandbits(24):06x}"  # book ids of two runs never collide
        self.loans: dict[str, str] = {}  # book → card holding it (as the desks saw approvals)
        self.held: dict[str, set[str]] = {}  # card → books it holds
        self.loan_limit = DEFAULT_LOAN_LIMIT
        self.mistakes: Counter[str] = Counter()
        self.surprises: list[str] = []  # an approval the simulator knew the hub must refuse
        self.no_student = 0

    def shelf(self, school_id: str) -> list[str]:
        count = max(10, BOOKS_PER_STUDENT * len(self.population.usable(school_id)))
        return [f"{school_id}-bk-{self.run_tag}-{n:05d}" for n in range(count)]

    async def visit(self, arrival: Arrival) -> None:
        """A student walks up to a desk: brings a book back, borrows one, or makes a mistake."""
        desk = self.rng.choice(self.terminals)
        school = desk.info.school_id
        kind = self.rng.choice(MISTAKES) if self.rng.random() < self.mistake_share else ""
        if kind == "over_limit":  # a reader who already holds books
            student = self.population.take(school, prefer=lambda s: len(self.held.get(s.card_no, ())) >= 2)
        else:
            student = self.population.take(school)
        if student is None:
            self.no_student += 1
            return
        scheduled = arrival.scheduled_at or None
        try:
            books = self.held.setdefault(student.card_no, set())
            if kind:
                self.mistakes[kind] += 1
                await self._mistake(kind, desk, student, scheduled)
            elif books and self.rng.random() < 0.5:
                await self._return(desk, student, self.rng.choice(sorted(books)), scheduled)
            else:
                await self._borrow(desk, student, self._free_book(school), scheduled)
        finally:
            self.population.give_back(student)

    async def _mistake(
        self, kind: str, desk: LibraryDesk, student: SimStudent, scheduled: float | None
    ) -> None:
        school = desk.info.school_id
        if kind == "over_limit":  # borrows until the hub says the limit is reached (one past it at most)
            for _ in range(self.loan_limit + 1):
                outcome = await self._borrow(desk, student, self._free_book(school), scheduled)
                scheduled = None
                if outcome != APPROVED:
                    return
        elif kind == "book_lent" and self.loans:
            lent = [b for b, card in self.loans.items() if card != student.card_no and b.startswith(school)]
            if lent:
                await self._borrow(desk, student, self.rng.choice(lent), scheduled)
        else:  # a book from the shelf the student never borrowed
            await self._return(desk, student, self._free_book(school), scheduled)

    def _free_book(self, school_id: str) -> str:
        shelf = self.shelf(school_id)
        for _ in range(20):
            book = self.rng.choice(shelf)
            if book not in self.loans:
                return book
        return self.rng.choice(shelf)

    async def _borrow(
        self, desk: LibraryDesk, student: SimStudent, book: str, scheduled: float | None
    ) -> str:
        books = self.held.setdefault(student.card_no, set())
        holder = self.loans.get(book)
        at_limit = len(books) >= self.loan_limit
        response, event = await desk.borrow(student, book, scheduled_at=scheduled)
        if response is not None and response.loan_limit:
            self.loan_limit = response.loan_limit
        if event.outcome == APPROVED:
            if holder is not None and holder != student.card_no:
                self.surprises.append(f"book {book} lent to a second holder while on loan (borrow approved)")
            elif at_limit:
                self.surprises.append(
                    f"a borrow was approved past the loan limit ({len(books)} books held,"
                    f" limit {self.loan_limit})"
                )
            self.loans[book] = student.card_no
            books.add(book)
        return event.outcome

    async def _return(
        self, desk: LibraryDesk, student: SimStudent, book: str, scheduled: float | None
    ) -> str:
        books = self.held.setdefault(student.card_no, set())
        _, event = await desk.return_book(student, book, scheduled_at=scheduled)
        if event.outcome == APPROVED:
            if book not in books:
                self.surprises.append(f"book {book} was taken back from a student who never borrowed it")
            books.discard(book)
            self.loans.pop(book, None)
        return event.outcome
