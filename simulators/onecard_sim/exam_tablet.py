"""Exam tablets (考试管理): a tablet stands in one exam room and checks students into a session with
a card tap or an e-card QR scan (`ExamService.CheckIn`), once each.

`ExamTablet` is one tablet. It sends the room it stands in (`room`; empty: the hub takes the
tablet's registered location) and reports each check-in as a `TapEvent` of scene `exam_check_in`,
with the outcome the hub answered (APPROVED, WRONG_ROOM, ALREADY_CHECKED_IN,
OUTSIDE_CHECK_IN_WINDOW, NOT_ON_ROSTER, a card refusal, …). `ExamTabletFleet` finds the tablet of
a room. Which students come when, and their mistakes, are the exam-day scenario's
(`scenarios/exam_day.py`).
"""

from __future__ import annotations

import random
from pathlib import Path

from onecard.auth.v1 import authorization_service_pb2 as auth_pb
from onecard.exam.v1 import exam_service_pb2 as exam_pb
from onecard_client.campus import TerminalInfo
from onecard_client.taps import chip_tap
from onecard_sim.events import EXAM_CHECK_IN, EventSink, TapEvent
from onecard_sim.fleet import Fleet
from onecard_sim.population import ECardApp, SimStudent
from onecard_sim.terminal import SimTerminal

__all__ = ["ExamTablet", "ExamTabletFleet"]

_SCENE = auth_pb.SCENE_EXAM_CHECK_IN


class ExamTablet(SimTerminal):
    """One exam tablet, standing in `room`."""

    def __init__(
        self,
        info: TerminalInfo,
        *,
        target: str,
        sink: EventSink,
        ecard: ECardApp,
        room: str = "",
        pki_dir: Path | None = None,
        qr_share: float = 0.7,
        seed: int = 0,
        **options: object,
    ) -> None:
        super().__init__(info, target=target, sink=sink, pki_dir=pki_dir, **options)  # type: ignore[arg-type]
        self.ecard = ecard
        self.room = room
        self.qr_share = qr_share
        self.rng = random.Random(seed)

    async def check_in(
        self,
        student: SimStudent,
        session_id: str,
        *,
        qr: bool | None = None,
        scheduled_at: float | None = None,
    ) -> tuple[exam_pb.CheckInResponse | None, TapEvent]:
        """The student taps the card (or shows the e-card) at this tablet for `session_id`."""
        use_qr = self.rng.random() < self.qr_share if qr is None else qr
        request = exam_pb.CheckInRequest(
            request_id=self.new_request_id(),
            terminal_id=self.terminal_id,
            session_id=session_id,
            room=self.room,
        )
        if use_qr:
            text, scheduled_at = await self.show_code(self.ecard, student, scheduled_at)
            request.qr.token = text
        tap_ms = self.now_ms()
        if not use_qr:
            request.chip.CopyFrom(
                chip_tap(
                    student.card,
                    request_id=request.request_id,
                    terminal_id=self.terminal_id,
                    scene=_SCENE,
                    atc=student.next_atc(),
                    tap_time_ms=tap_ms,
                ).chip
            )
        request.tap_time.FromMilliseconds(tap_ms)
        return await self.call(
            self.client.check_in(request),
            scene=EXAM_CHECK_IN,
            card_no=student.card_no,
            request_id=request.request_id,
            tap_time_ms=tap_ms,
            scheduled_at=scheduled_at,
        )


class ExamTabletFleet(Fleet[ExamTablet]):
    """Every exam tablet of a run; `in_room` finds the one standing in a room of a school."""

    label = "exam tablets"

    def in_room(self, school_id: str, room: str) -> ExamTablet | None:
        for tablet in self.terminals:
            if tablet.info.school_id == school_id and tablet.room == room:
                return tablet
        return None

    def rooms(self, school_id: str) -> list[str]:
        return [t.room for t in self.terminals if t.info.school_id == school_id]
