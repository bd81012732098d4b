"""`exam-day`: exam sessions across the rooms of each school; students check in at the exam tablets.

- Before the stretch (`prepare`): per school, every exam tablet stands in a room; each session of
  the plan (`ExamPlan`) uses every room; the roster seats a share of the usable students, each in
  one session, round-robin over the rooms. Created by the school's clerk through ExamAdminService.
- During (`streams`): `exam_arrivals` come while a session's window is open — a roster student
  walks to the tablet of the seat's room (now and then first to another room's: WRONG_ROOM; now
  and then checks in again right after: ALREADY_CHECKED_IN; now and then a student of the school
  who sits no exam now tries: NOT_ON_ROSTER); `exam_late` come after a window closed (late
  arrivals: OUTSIDE_CHECK_IN_WINDOW). A share of each roster never comes (absent).
- After (`finish`): GetAttendance of every session, judged by `exam_invariants.check_exams`.
"""

from __future__ import annotations

import asyncio
import random
import secrets
from dataclasses import dataclass, field
from typing import Any

from google.protobuf.timestamp_pb2 import Timestamp

from onecard.exam.v1 import exam_service_pb2 as exam_pb
from onecard_sim.driver import Arrival, Stream
from onecard_sim.events import APPROVED
from onecard_sim.exam_tablet import ExamTablet, ExamTabletFleet
from onecard_sim.population import Population, SimStudent
from onecard_sim.scenarios.catalog import ExamPlan
from onecard_sim.scenarios.episode import Episode, EpisodeResult, OperatorAccess
from onecard_sim.scenarios.exam_invariants import (
    AttemptKind,
    Attendance,
    CheckInSeen,
    SessionFacts,
    check_exams,
)

__all__ = ["ARRIVALS", "LATE", "ExamDay"]

ARRIVALS, LATE = "exam_arrivals", "exam_late"
SUBJECTS = ("电工基础", "机械制图", "计算机应用基础", "汽车构造", "数控加工")
_MINUTE_MS = 60_000
_EDGE_MS = 2 * _MINUTE_MS  # arrivals keep this far from a window's edges (a tap takes time to arrive)
_LATE_SPAN_MS = 30 * _MINUTE_MS  # late arrivals come within this time after a window closed
_ROSTER_CHUNK = 5_000


@dataclass
class _Session:
    session_id: str
    school_id: str
    opens_ms: int
    closes_ms: int
    roster: dict[str, str] = field(default_factory=dict)  # student_id → room
    waiting: list[SimStudent] = field(default_factory=list)  # roster students who will come, not yet in
    late: list[SimStudent] = field(default_factory=list)  # roster students who will come after the window
    checked_in: set[str] = field(default_factory=set)
    attendance: Attendance = field(default_factory=Attendance)


class ExamDay(Episode):
    def __init__(
        self,
        plan: ExamPlan,
        tablets: ExamTabletFleet,
        population: Population,
        access: OperatorAccess,
        seed: int,
    ) -> None:
        self.plan = plan
        self.tablets = tablets
        self.population = population
        self.access = access
        self.rng = random.Random(seed * 17 + 3)
        self.sessions: list[_Session] = []
        self.seen: list[CheckInSeen] = []
        self.problems: list[str] = []  # setup or attendance calls that failed
        self.no_student = 0
        self._clients: dict[str, Any] = {}
        self._tag = secrets.token_hex(3)

    # -- before the stretch ----------------------------------------------------------------------

    async def prepare(self, start_ms: int) -> None:
        plan = self.plan
        for school in self.population.schools:
            rooms = self.tablets.rooms(school)
            students = list(self.population.usable(school))
            if not rooms or not students:
                continue
            self.rng.shuffle(students)
            seated = students[: round(plan.roster_share * len(students))]
            count = len(plan.session_starts_min)
            for k, offset in enumerate(plan.session_starts_min):
                start = start_ms + offset * _MINUTE_MS
                session = _Session(
                    f"{school}-exam-{self._tag}-{k + 1}",
                    school,
                    start - plan.window_before_min * _MINUTE_MS,
                    start + plan.window_after_min * _MINUTE_MS,
                )
                mine = seated[k::count]
                seats: dict[str, int] = {}
                rows = []
                for i, student in enumerate(mine):
                    room = rooms[i % len(rooms)]
                    seats[room] = seats.get(room, 0) + 1
                    session.roster[student.card.student_id] = room
                    rows.append(
                        exam_pb.RosterRow(
                            student_id=student.card.student_id, room=room, seat=f"{seats[room]:02d}"
                        )
                    )
                order = self.rng.sample(mine, len(mine))
                comers = round(plan.show_share * len(mine))
                session.waiting = order[:comers]
                session.late = order[comers : comers + round(plan.late_share * len(mine))]
                await self._create(session, rooms, start, SUBJECTS[k % len(SUBJECTS)], rows)
                self.sessions.append(session)

    async def _create(
        self, session: _Session, rooms: list[str], start_ms: int, subject: str, rows: list[exam_pb.RosterRow]
    ) -> None:
        client = self._client(session.school_id)
        proto = exam_pb.ExamSession(
            session_id=session.session_id,
            school_id=session.school_id,
            subject=subject,
            rooms=rooms,
            start=_ts(start_ms),
            end=_ts(start_ms + self.plan.session_length_min * _MINUTE_MS),
            check_in_opens_minutes_before=self.plan.window_before_min,
            check_in_closes_minutes_after=self.plan.window_after_min,
        )
        await client.create_exam_session(f"{session.session_id}-create", proto)
        for i in range(0, len(rows), _ROSTER_CHUNK):
            answer = await client.import_exam_roster(
                f"{session.session_id}-roster-{i}", session.session_id, rows[i : i + _ROSTER_CHUNK]
            )
            for refused in answer.rejected:
                self.problems.append(
                    f"session {session.session_id}: roster row {i + refused.index} refused"
                    f" ({exam_pb.RosterRowProblem.Name(refused.problem)}: {refused.detail})"
                )

    def _client(self, school_id: str) -> Any:
        operator = self.access.operator_for(school_id)
        if operator not in self._clients:
            from onecard_client import ExamAdminClient

            self._clients[operator] = ExamAdminClient(operator, self.access.config(operator))
        return self._clients[operator]

    # -- the traffic -----------------------------------------------------------------------------

    def streams(
        self, start_ms: int, simulated_s: float, duration_s: float
    ) -> tuple[list[Stream], dict[str, int]]:
        if not self.sessions:
            return [], {}
        speed = simulated_s / duration_s
        open_spans = [(s.opens_ms + _EDGE_MS, s.closes_ms - _EDGE_MS) for s in self.sessions]
        late_spans = [(s.closes_ms + _EDGE_MS, s.closes_ms + _LATE_SPAN_MS) for s in self.sessions]
        comers = sum(len(s.waiting) for s in self.sessions)
        late = sum(len(s.late) for s in self.sessions)
        return (
            [
                Stream(ARRIVALS, _uniform(open_spans, comers, speed), self.arrive),
                Stream(LATE, _uniform(late_spans, late, speed), self.arrive_late),
            ],
            {ARRIVALS: comers, LATE: late},
        )

    async def arrive(self, arrival: Arrival) -> None:
        """Someone walks up to an exam room whose session's window is open."""
        open_now = [s for s in self.sessions if s.opens_ms <= arrival.hub_ms <= s.closes_ms]
        if not open_now:
            return
        session = self.rng.choice(open_now)
        scheduled = arrival.scheduled_at or None
        if self.rng.random() < self.plan.not_on_roster_share:
            await self._not_on_roster(session, scheduled)
            return
        student = self._take_waiting(session.waiting)
        if student is None:
            self.no_student += 1
            return
        try:
            room = session.roster[student.card.student_id]
            others = [r for r in self.tablets.rooms(session.school_id) if r != room]
            if others and self.rng.random() < self.plan.wrong_room_share:
                await self._check_in(
                    session, student, self.rng.choice(others), AttemptKind.WRONG_ROOM, scheduled
                )
                scheduled = None
            outcome = await self._check_in(session, student, room, AttemptKind.ARRIVAL, scheduled)
            if outcome == APPROVED and self.rng.random() < self.plan.double_share:
                await self._check_in(session, student, room, AttemptKind.DOUBLE, None)
        finally:
            self.population.give_back(student)

    async def arrive_late(self, arrival: Arrival) -> None:
        """A roster student who missed the window comes anyway."""
        closed = [s for s in self.sessions if s.closes_ms < arrival.hub_ms and s.late]
        if not closed:
            return
        session = self.rng.choice(closed)
        student = self._take_waiting(session.late)
        if student is None:
            self.no_student += 1
            return
        try:
            room = session.roster[student.card.student_id]
            await self._check_in(session, student, room, AttemptKind.LATE, arrival.scheduled_at or None)
        finally:
            self.population.give_back(student)

    async def _not_on_roster(self, session: _Session, scheduled: float | None) -> None:
        student = self.population.take(
            session.school_id, prefer=lambda s: s.card.student_id not in session.roster
        )
        if student is None or student.card.student_id in session.roster:
            if student is not None:
                self.population.give_back(student)
            return
        try:
            room = self.rng.choice(self.tablets.rooms(session.school_id))
            await self._check_in(session, student, room, AttemptKind.NOT_ON_ROSTER, scheduled)
        finally:
            self.population.give_back(student)

    def _take_waiting(self, waiting: list[SimStudent]) -> SimStudent | None:
        """A roster student who has not come yet (and is free), taken off the list."""
        for i, student in enumerate(waiting):
            if self.population.take_student(student):
                waiting.pop(i)
                return student
        return None

    async def _check_in(
        self, session: _Session, student: SimStudent, room: str, kind: str, scheduled: float | None
    ) -> str:
        tablet: ExamTablet | None = self.tablets.in_room(session.school_id, room)
        if tablet is None:
            return ""
        _, event = await tablet.check_in(student, session.session_id, scheduled_at=scheduled)
        self.seen.append(
            CheckInSeen(session.session_id, student.card.student_id, room, kind, event.outcome, event.hub_ms)
        )
        if event.outcome == APPROVED:
            session.checked_in.add(student.card.student_id)
        return event.outcome

    # -- the end ---------------------------------------------------------------------------------

    async def finish(self) -> None:
        for session in self.sessions:
            client = self._client(session.school_id)
            answer = await client.get_attendance(session.session_id)
            session.attendance = Attendance(
                present_rows=tuple((p.student_id, p.room) for p in answer.present),
                absent=frozenset(a.student_id for a in answer.absent),
                wrong_room_attempts=len(answer.wrong_room_attempts),
            )

    def result(self) -> EpisodeResult:
        facts = [
            SessionFacts(s.session_id, s.roster, s.opens_ms, s.closes_ms, s.attendance) for s in self.sessions
        ]
        section, lines = check_exams(facts, self.seen)
        if not self.sessions:
            lines.append("exam-day: no session was set up (no exam tablet or no usable student)")
        return EpisodeResult("exam", section, [*self.problems, *lines])

    async def close(self) -> None:
        clients, self._clients = self._clients, {}
        await asyncio.gather(*(c.close() for c in clients.values()), return_exceptions=True)


def _uniform(spans: list[tuple[int, int]], arrivals: int, speed: float) -> Any:
    """A rate (per real second) that is the same inside every span of hub time and zero outside,
    giving `arrivals` in all on average."""
    real_s = sum(max(0, end - start) for start, end in spans) / 1000 / speed
    rate = arrivals / real_s if real_s > 0 and arrivals > 0 else 0.0

    def curve(hub_ms: int) -> float:
        return rate if any(start <= hub_ms <= end for start, end in spans) else 0.0

    return curve


def _ts(ms: int) -> Timestamp:
    stamp = Timestamp()
    stamp.FromMilliseconds(ms)
    return stamp
