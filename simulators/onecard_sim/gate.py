"""Gate readers (出入校园): students walk in and out; e-card QR first, the chip card as backup.

`GateReader` is one gate terminal. A student outside enters, a student inside exits: an
approved pass moves the student's presence, so a hard anti-passback gate has nothing to refuse
in normal traffic. About 70% of passes show the e-card QR code (fetched from the hub by the
student's app), the rest tap the chip card.

`GateFleet` holds every reader of a run and offers the actions a scenario's streams call
(`enter`, `leave`), each picking a free student of the reader's school and a gate that is open
to the student's group at that hour. A small share of arrivals are mistakes, as on a real
campus: a second entry without an exit (ANTI_PASSBACK at a hard gate), an expired QR code (a
screenshot), a card reported lost or a suspended student.
"""

from __future__ import annotations

import random
from collections import Counter
from pathlib import Path

from onecard.auth.v1 import authorization_service_pb2 as auth_pb
from onecard.terminal.v1 import terminal_service_pb2 as term_pb
from onecard_client.campus import TerminalInfo
from onecard_sim.curves import local_minute
from onecard_sim.driver import Arrival
from onecard_sim.events import APPROVED, GATE_ENTRY, GATE_EXIT, OFFLINE_APPROVED, OFFLINE_REFUSED, EventSink
from onecard_sim.fleet import Fleet
from onecard_sim.population import ECardApp, Population, SimStudent
from onecard_sim.terminal import SimTerminal, TapResult

__all__ = ["GateFleet", "GateReader"]

_SCENE_NAME: dict[int, str] = {auth_pb.SCENE_GATE_ENTRY: GATE_ENTRY, auth_pb.SCENE_GATE_EXIT: GATE_EXIT}
MISTAKES = ("second_entry", "expired_qr", "unusable_card")


class GateReader(SimTerminal):
    """One gate terminal of a school."""

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

    def open_for(self, group: str, hub_ms: int) -> bool:
        """Whether the downloaded gate windows let the student group through at that hub time."""
        config = self.config
        if config is None or not config.gate_windows:
            return True
        minute = local_minute(hub_ms)
        for entry in config.gate_windows:
            if entry.student_group == group:
                return any(w.start_minute <= minute < w.end_minute for w in entry.windows)
        return True

    @property
    def hard_anti_passback(self) -> bool:
        return self.config is not None and self.config.anti_passback == term_pb.ANTI_PASSBACK_MODE_HARD

    async def pass_gate(self, student: SimStudent, *, scheduled_at: float | None = None) -> TapResult:
        """The student walks through: an exit when inside, an entry when outside."""
        scene = auth_pb.SCENE_GATE_EXIT if student.inside else auth_pb.SCENE_GATE_ENTRY
        return await self.tap(student, scene, scheduled_at=scheduled_at)

    async def tap(
        self,
        student: SimStudent,
        scene: int,
        *,
        qr: bool | None = None,
        expired_qr: bool = False,
        scheduled_at: float | None = None,
    ) -> TapResult:
        """One tap or scan at this gate; an approved pass moves the student's presence.

        `qr` forces the credential (None: QR with probability `qr_share`); `expired_qr` shows
        a code minted two minutes ago. A hub that refuses a pass for anti-passback knows better
        where the student is, so the student's presence is corrected to agree.
        """
        use_qr = expired_qr or (self.rng.random() < self.qr_share if qr is None else qr)
        hub_ms = self.now_ms()
        qr_text = None
        if expired_qr:
            qr_text = self.ecard.expired_code(student, hub_ms)
        elif use_qr:
            qr_text, scheduled_at = await self.show_code(self.ecard, student, scheduled_at)
            hub_ms = self.now_ms()
        name = _SCENE_NAME[scene]
        entering = scene == auth_pb.SCENE_GATE_ENTRY
        if self.offline:
            stored = self.store_offline(student, scene, qr_text=qr_text, occurred_ms=hub_ms)
            outcome = OFFLINE_APPROVED if stored else OFFLINE_REFUSED
            if stored:
                student.inside = entering
            return TapResult(self.emit_offline(name, outcome, student.card_no, hub_ms), None)
        request = await self.present(student, scene, qr_text=qr_text, tap_time_ms=hub_ms)
        response, event = await self.send(request, name, student.card_no, scheduled_at)
        if event.outcome == "ERROR_UNAVAILABLE" and self.hub_unreachable():
            # The hub is gone (auto_offline): the student is still at the gate; decide again locally.
            return await self.tap(student, scene, qr=qr_text is not None)
        if event.outcome == APPROVED or event.outcome == "ANTI_PASSBACK":
            # Approved: the student moved. Refused for anti-passback: the hub already has the
            # student on the far side (inside for a refused entry), so agree with it.
            student.inside = entering
            student.presence_known = True
        return TapResult(event, response)


class GateFleet(Fleet[GateReader]):
    """Every gate reader of a run, and the `enter` / `leave` actions for the driver's streams."""

    label = "gate readers"

    def __init__(
        self,
        readers: list[GateReader],
        population: Population,
        *,
        mistake_share: float = 0.02,
        seed: int = 0,
    ) -> None:
        super().__init__(readers)
        self.population = population
        self.mistake_share = mistake_share
        self.rng = random.Random(seed)
        self.mistakes: Counter[str] = Counter()
        self.no_student = 0  # arrivals that found no free student on the right side of the gate

    def _reader_for(self, school_id: str, group: str, hub_ms: int) -> GateReader:
        mine = [r for r in self.terminals if r.info.school_id == school_id]
        open_now = [r for r in mine if r.open_for(group, hub_ms)]
        return self.rng.choice(open_now or mine)

    async def enter(self, arrival: Arrival) -> None:
        """A student outside walks in (or, now and then, makes a mistake)."""
        await self._walk(arrival, entering=True)

    async def leave(self, arrival: Arrival) -> None:
        """A student inside walks out (or, now and then, makes a mistake)."""
        await self._walk(arrival, entering=False)

    async def _walk(self, arrival: Arrival, *, entering: bool) -> None:
        school = self.rng.choice(self.terminals).info.school_id
        if self.rng.random() < self.mistake_share:
            await self.mistake(school, arrival)
            return
        student = self.population.take(school, inside=not entering)
        if student is None:
            self.no_student += 1
            return
        try:
            reader = self._reader_for(school, student.group, arrival.hub_ms)
            scene = auth_pb.SCENE_GATE_ENTRY if entering else auth_pb.SCENE_GATE_EXIT
            await reader.tap(student, scene, scheduled_at=arrival.scheduled_at or None)
        finally:
            self.population.give_back(student)

    async def mistake(self, school_id: str, arrival: Arrival, kind: str | None = None) -> TapResult | None:
        """One of MISTAKES at a gate of the school (random when `kind` is None)."""
        kind = kind or self.rng.choice(MISTAKES)
        if kind == "unusable_card":
            student = self.population.take_unusable(school_id)
        elif kind == "second_entry":  # someone the hub knows is inside tries to enter again
            student = self.population.take(school_id, inside=True, prefer=lambda s: s.presence_known)
        else:
            student = self.population.take(school_id, inside=False)
        if student is None:
            self.no_student += 1
            return None
        self.mistakes[kind] += 1
        try:
            mine = [r for r in self.terminals if r.info.school_id == school_id]
            if kind == "second_entry":
                mine = [r for r in mine if r.hard_anti_passback] or mine
            reader = self.rng.choice(mine)
            scheduled = arrival.scheduled_at or None
            if kind == "expired_qr":
                return await reader.tap(
                    student, auth_pb.SCENE_GATE_ENTRY, expired_qr=True, scheduled_at=scheduled
                )
            scene = (
                auth_pb.SCENE_GATE_ENTRY
                if kind == "second_entry" or not student.inside
                else auth_pb.SCENE_GATE_EXIT
            )
            return await reader.tap(student, scene, scheduled_at=scheduled)
        finally:
            self.population.give_back(student)
