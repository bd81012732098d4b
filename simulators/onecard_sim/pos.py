"""Canteen POS (餐饮消费): a window of the canteen sells from its menu; students pay with the
e-card QR code (about 70%) or the chip card.

`CanteenPos` is one POS terminal:
- an order is one or two dishes from the meal's menu (350–2,800 fen); now and then a student pays
  for a table of friends, above the PIN-free limit, and enters the PIN — sometimes wrong first
  (PIN_INCORRECT), then right (a new tap);
- now and then a dish is sent back and refunded (`refund`);
- a purchase that gets no answer (DEADLINE_EXCEEDED or UNAVAILABLE after the SDK's retries) is
  reversed (DESIGN §3), by a new request naming the lost one;
- offline (`go_offline`), it decides on its local rules and stores, then uploads on `go_online`
  (see terminal.py and offline.py).

`CanteenFleet` holds every POS of a run and offers `buy`, the action of a meal-rush stream: a
free student of the window's school who has not eaten this meal yet, when there is one.
"""

from __future__ import annotations

import random
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from onecard.auth.v1 import authorization_service_pb2 as auth_pb
from onecard_client import OneCardError
from onecard_client.campus import TerminalInfo
from onecard_sim.curves import local_minute
from onecard_sim.driver import Arrival
from onecard_sim.events import (
    APPROVED,
    CANTEEN_PURCHASE,
    OFFLINE_APPROVED,
    OFFLINE_REFUSED,
    EventSink,
    UploadEvent,
)
from onecard_sim.fleet import Fleet
from onecard_sim.offline import MAX_BATCH, business_day
from onecard_sim.population import ECardApp, Population, SimStudent
from onecard_sim.terminal import SimTerminal, TapResult

__all__ = ["MENU", "CanteenFleet", "CanteenPos", "MenuItem"]

_SCENE = auth_pb.SCENE_CANTEEN_PURCHASE


@dataclass(frozen=True, slots=True)
class MenuItem:
    name: str
    price_fen: int


MENU: dict[str, tuple[MenuItem, ...]] = {
    "breakfast": (
        MenuItem("肉包豆浆 bun and soy milk", 350),
        MenuItem("鸡蛋饼 egg pancake", 400),
        MenuItem("南昌拌粉 Nanchang rice noodles", 600),
        MenuItem("瓦罐汤配包子 clay-pot soup with a bun", 800),
    ),
    "lunch": (
        MenuItem("一荤一素 one meat, one vegetable", 900),
        MenuItem("两荤一素 two meats, one vegetable", 1300),
        MenuItem("赣南小炒鱼饭 Gannan fried fish with rice", 1800),
        MenuItem("牛肉炒粉 beef fried rice noodles", 1200),
        MenuItem("麻辣烫 malatang", 1600),
        MenuItem("特色小炒 chef's stir-fry", 2800),
        MenuItem("瓦罐汤 clay-pot soup", 500),
        MenuItem("酸奶 yoghurt", 450),
    ),
    "dinner": (
        MenuItem("一荤一素 one meat, one vegetable", 900),
        MenuItem("两荤一素 two meats, one vegetable", 1300),
        MenuItem("鸡腿饭 chicken leg rice", 1500),
        MenuItem("瓦罐汤 clay-pot soup", 500),
        MenuItem("水果拼盘 fruit plate", 800),
    ),
}
_OFF_HOURS = (MenuItem("饮料 drink", 350), MenuItem("面包 bread", 450))


class CanteenPos(SimTerminal):
    """One canteen window's POS terminal."""

    def __init__(
        self,
        info: TerminalInfo,
        *,
        target: str,
        sink: EventSink,
        ecard: ECardApp,
        pki_dir: Path | None = None,
        qr_share: float = 0.7,
        table_share: float = 0.03,  # orders for a table of friends, above the PIN-free limit
        wrong_pin_share: float = 0.25,  # of PIN entries, wrong the first time
        refund_share: float = 0.02,  # of approved purchases, a dish sent back
        seed: int = 0,
        **options: object,
    ) -> None:
        super().__init__(info, target=target, sink=sink, pki_dir=pki_dir, **options)  # type: ignore[arg-type]
        self.ecard = ecard
        self.qr_share = qr_share
        self.table_share = table_share
        self.wrong_pin_share = wrong_pin_share
        self.refund_share = refund_share
        self.rng = random.Random(seed)
        self.counters: Counter[str] = Counter()  # refunds, refunded_fen, reversals, pin_retries, …
        self.lost_requests: list[str] = []  # purchases whose reversal got no answer either

    # -- what the window sells ---------------------------------------------------------------------

    def meal_of(self, hub_ms: int) -> str:
        """The meal being served at that hub time (from the configuration), or "" between meals."""
        minute = local_minute(hub_ms)
        for meal in self.config.meal_windows if self.config else ():
            if meal.window.start_minute <= minute < meal.window.end_minute:
                return meal.name
        return ""

    def pin_free_limit_fen(self) -> int:
        return self.config.pin_free_limit_fen if self.config and self.config.pin_free_limit_fen else 5_000

    def order(self, hub_ms: int) -> list[MenuItem]:
        """A student's order: one or two dishes; now and then a table's worth above the PIN-free limit."""
        menu = MENU.get(self.meal_of(hub_ms), _OFF_HOURS)
        if self.rng.random() < self.table_share:
            items: list[MenuItem] = []
            while sum(i.price_fen for i in items) <= self.pin_free_limit_fen():
                items.append(self.rng.choice(menu))
            return items
        return self.rng.sample(menu, k=min(len(menu), self.rng.choice((1, 1, 2))))

    # -- paying --------------------------------------------------------------------------------------

    async def purchase(
        self,
        student: SimStudent,
        amount_fen: int | None = None,
        *,
        qr: bool | None = None,
        wrong_pin: bool | None = None,
        scheduled_at: float | None = None,
    ) -> TapResult:
        """The student pays for an order (`amount_fen`, or a random order from the menu).

        Above the PIN-free limit the student enters the PIN; `wrong_pin` (None: with probability
        `wrong_pin_share`) enters a wrong one first and, refused with PIN_INCORRECT, pays again with
        the right one. Returns the last tap's result.
        """
        hub_ms = self.now_ms()
        items = [] if amount_fen is not None else self.order(hub_ms)
        amount = amount_fen if amount_fen is not None else sum(i.price_fen for i in items)
        use_qr = self.rng.random() < self.qr_share if qr is None else qr
        if self.offline:
            return await self._purchase_offline(student, amount, use_qr)
        pin = ""
        if amount > self.pin_free_limit_fen():
            first_wrong = self.rng.random() < self.wrong_pin_share if wrong_pin is None else wrong_pin
            pin = _wrong_pin(student.card.pin) if first_wrong else student.card.pin
        result = await self._pay(student, amount, use_qr, pin, scheduled_at)
        if result.outcome == "ERROR_UNAVAILABLE" and self.hub_unreachable():
            # The hub is gone (auto_offline): the student is still at the window, so this sale
            # is decided again on local rules; the lost request is reversed once the hub is back.
            self.counters["auto_offline"] += 1
            return await self._purchase_offline(student, amount, use_qr)
        if result.outcome == "PIN_INCORRECT" and pin != student.card.pin:
            self.counters["pin_retries"] += 1
            result = await self._pay(student, amount, use_qr, student.card.pin, None)
        if result.outcome == APPROVED:
            self.counters["approved_fen"] += amount
            if len(items) > 0 and self.rng.random() < self.refund_share:
                await self.refund(result.event.request_id, min(items, key=lambda i: i.price_fen).price_fen)
        return result

    async def _pay(
        self, student: SimStudent, amount: int, use_qr: bool, pin: str, scheduled_at: float | None
    ) -> TapResult:
        qr_text = None
        if use_qr:
            qr_text, scheduled_at = await self.show_code(self.ecard, student, scheduled_at)
        request = await self.present(
            student, _SCENE, qr_text=qr_text, tap_time_ms=self.now_ms(), amount_fen=amount, pin=pin
        )
        response, event = await self.send(request, CANTEEN_PURCHASE, student.card_no, scheduled_at)
        if event.outcome in ("ERROR_DEADLINE_EXCEEDED", "ERROR_UNAVAILABLE"):
            if event.outcome == "ERROR_UNAVAILABLE" and self.auto_offline:
                self.lost_requests.append(request.request_id)  # reversed when the hub is back
            else:
                await self.reverse(request.request_id)
        return TapResult(event, response)

    async def _purchase_offline(self, student: SimStudent, amount: int, use_qr: bool) -> TapResult:
        hub_ms = self.now_ms()
        qr_text = await self.ecard.qr_code(student, hub_ms) if use_qr else None
        stored = self.store_offline(student, _SCENE, qr_text=qr_text, occurred_ms=hub_ms, amount_fen=amount)
        if stored:
            self.counters["offline_fen"] += amount
        outcome = OFFLINE_APPROVED if stored else OFFLINE_REFUSED
        return TapResult(self.emit_offline(CANTEEN_PURCHASE, outcome, student.card_no, hub_ms), None)

    async def refund(self, original_request_id: str, amount_fen: int) -> auth_pb.RefundResponse | None:
        """Gives back part of an approved purchase of this POS (a dish sent back)."""
        try:
            response = await self.client.refund(self.new_request_id(), original_request_id, amount_fen)
        except OneCardError:
            self.counters["refund_errors"] += 1
            return None
        self.counters["refunds"] += 1
        self.counters["refunded_fen"] += response.refunded_fen
        return response

    async def reverse(self, original_request_id: str) -> auth_pb.ReverseResponse | None:
        """Cancels a purchase that got no answer; remembered in `lost_requests` if this fails too."""
        try:
            response = await self.client.reverse(self.new_request_id(), original_request_id)
        except OneCardError:
            self.lost_requests.append(original_request_id)
            self.counters["reversal_errors"] += 1
            return None
        self.counters["reversals"] += 1
        return response

    async def go_online(self, batch_size: int = MAX_BATCH) -> list[UploadEvent]:
        events = await super().go_online(batch_size)
        lost, self.lost_requests = self.lost_requests, []
        for request_id in lost:
            await self.reverse(request_id)
        return events


def _wrong_pin(pin: str) -> str:
    """A PIN that differs from `pin` in its last digit."""
    last = (int(pin[-1]) + 1) % 10 if pin and pin[-1].isdigit() else 0
    return (pin[:-1] if pin else "000") + str(last)


class CanteenFleet(Fleet[CanteenPos]):
    """Every canteen POS of a run, and the `buy` action for a meal-rush stream."""

    label = "canteen POS"

    def __init__(
        self,
        terminals: list[CanteenPos],
        population: Population,
        *,
        mistake_share: float = 0.01,
        seed: int = 0,
    ) -> None:
        super().__init__(terminals)
        self.population = population
        self.mistake_share = mistake_share
        self.rng = random.Random(seed)
        self.no_student = 0

    async def buy(self, arrival: Arrival) -> None:
        """A student walks up to a window and pays (now and then with an unusable card)."""
        pos = self.rng.choice(self.terminals)
        school = pos.info.school_id
        meal_key = f"{business_day(arrival.hub_ms)}/{pos.meal_of(arrival.hub_ms)}"
        if self.rng.random() < self.mistake_share:
            student = self.population.take_unusable(school)
        else:
            student = self.population.take(school, prefer=lambda s: meal_key not in s.meals)
        if student is None:
            self.no_student += 1
            return
        try:
            result = await pos.purchase(student, scheduled_at=arrival.scheduled_at or None)
            if result.outcome in (APPROVED, OFFLINE_APPROVED):
                student.meals[meal_key] = student.meals.get(meal_key, 0) + 1
        finally:
            self.population.give_back(student)

    def counters(self) -> Counter[str]:
        total: Counter[str] = Counter()
        for pos in self.terminals:
            total.update(pos.counters)
        return total
