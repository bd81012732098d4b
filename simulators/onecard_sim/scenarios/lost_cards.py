"""`lost-card-mid-rush`: the card office reports cards lost (挂失) while gates and canteens are busy,
and those very cards keep being tapped — by their holders who have not heard yet, or by a thief.

- Which cards: a share of each school's usable students (`LossPlan`), chosen with the run's seed.
- The reports: one `CardOfficeClient.report_loss` per card, by the school's clerk, spread evenly
  over `[start_at, end_at]` of the run. The answer's arrival is the moment the loss is committed.
- The taps: a stream of its own (`lost_card_taps`, constant rate) taps the chosen cards at the
  gates and canteen windows of their school, before and after their reports; the ordinary traffic
  may pick them too. Every TapEvent of a chosen card is kept for `loss_invariants.check_losses`.
"""

from __future__ import annotations

import asyncio
import random
import secrets
import time
from typing import Any

from onecard_client import OneCardError
from onecard_sim import curves
from onecard_sim.driver import Arrival, Stream
from onecard_sim.events import TapEvent
from onecard_sim.population import SimStudent
from onecard_sim.scenarios.catalog import LossPlan
from onecard_sim.scenarios.devices import CampusDevices
from onecard_sim.scenarios.episode import Episode, EpisodeResult, OperatorAccess
from onecard_sim.scenarios.loss_invariants import LossReport, check_losses

__all__ = ["STREAM", "LostCards"]

STREAM = "lost_card_taps"


class LostCards(Episode):
    def __init__(self, plan: LossPlan, devices: CampusDevices, access: OperatorAccess, seed: int) -> None:
        self.plan = plan
        self.devices = devices
        self.access = access
        self.rng = random.Random(seed * 31 + 5)
        self.chosen: dict[str, SimStudent] = {}
        for school in devices.population.schools:
            usable = devices.population.usable(school)
            count = min(plan.max_cards, max(plan.min_cards, round(plan.card_share * len(usable))))
            for student in self.rng.sample(usable, min(count, len(usable) // 4)):
                self.chosen[student.card_no] = student
        self.reports: dict[str, LossReport] = {}
        self.taps: list[TapEvent] = []
        self.busy = 0  # arrivals of the stream whose card was already at a terminal
        self._clients: dict[str, Any] = {}
        self._run_tag = secrets.token_hex(4)

    # -- traffic ---------------------------------------------------------------------------------

    def streams(
        self, start_ms: int, simulated_s: float, duration_s: float
    ) -> tuple[list[Stream], dict[str, int]]:
        arrivals = self.plan.taps_per_card * len(self.chosen)
        if not arrivals:
            return [], {}
        return [Stream(STREAM, curves.constant(arrivals / duration_s), self.tap)], {STREAM: round(arrivals)}

    async def tap(self, arrival: Arrival) -> None:
        """One of the chosen cards is tapped at a gate or a canteen window of its school."""
        student = self.chosen[self.rng.choice(list(self.chosen))]
        if not self.devices.population.take_student(student):
            self.busy += 1
            return
        try:
            scheduled = arrival.scheduled_at or None
            gates = [g for g in _terminals(self.devices.gates) if g.info.school_id == student.school_id]
            tills = [p for p in _terminals(self.devices.canteens) if p.info.school_id == student.school_id]
            if tills and (not gates or self.rng.random() < 0.5):
                await self.rng.choice(tills).purchase(student, scheduled_at=scheduled)
            elif gates:
                await self.rng.choice(gates).pass_gate(student, scheduled_at=scheduled)
        finally:
            self.devices.population.give_back(student)

    def watch(self, event: TapEvent) -> None:
        if event.card_no in self.chosen:
            self.taps.append(event)

    # -- the card office -------------------------------------------------------------------------

    async def play(self, duration_s: float) -> None:
        """Reports every chosen card lost, evenly spread over the plan's part of the run."""
        order = list(self.chosen.values())
        self.rng.shuffle(order)
        started = time.monotonic()
        first, last = self.plan.start_at * duration_s, self.plan.end_at * duration_s
        step = (last - first) / max(1, len(order) - 1)
        for i, student in enumerate(order):
            delay = started + first + i * step - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
            self.reports[student.card_no] = await self.report_loss(student)

    async def report_loss(self, student: SimStudent) -> LossReport:
        client = self._client(self.access.operator_for(student.school_id))
        try:
            await client.report_loss(
                request_id=f"loss-{self._run_tag}-{student.card_no}",
                card_no=student.card_no,
            )
        except OneCardError as error:
            return LossReport(
                student.card_no, time.monotonic(), self.devices.hub_time.now_ms(), _error(error)
            )
        return LossReport(student.card_no, time.monotonic(), self.devices.hub_time.now_ms())

    def _client(self, operator: str) -> Any:
        if operator not in self._clients:
            from onecard_client import CardOfficeClient

            self._clients[operator] = CardOfficeClient(operator, self.access.config(operator))
        return self._clients[operator]

    # -- the end ---------------------------------------------------------------------------------

    def result(self) -> EpisodeResult:
        summary, lines = check_losses(self.reports, self.taps)
        data = summary.to_json()
        data["stream_arrivals_card_busy"] = self.busy
        return EpisodeResult("lost_cards", data, lines, summary.approvals_after_loss)

    async def close(self) -> None:
        clients, self._clients = self._clients, {}
        await asyncio.gather(*(c.close() for c in clients.values()), return_exceptions=True)


def _terminals(fleet: Any) -> list[Any]:
    return list(fleet.terminals) if fleet is not None else []


def _error(error: OneCardError) -> str:
    return f"ERROR_{error.code.name}"
