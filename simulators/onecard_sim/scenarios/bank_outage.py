"""`bank-outage`: the bank goes down during the lunch rush while top-ups (圈存) and a grant batch
(奖助学金) are running, and comes back. Canteens keep approving from wallets throughout; after the bank
returns every top-up, reversal and grant item must reach a final state, reconciliation (对账) must
explain every difference, and money must be conserved (DESIGN §10).

- Who: with the run's seed, a share of each school's usable students top up (kiosk / card office,
  spread over the whole run), a share set an auto top-up before the rush (it fires as their wallets
  drop), and a share are paid a grant by one batch submitted just before the outage.
- The outage: `BankControlService.SetFaults(outage_s=…)` at `outage_start_at` of the run, ended with
  `outage_s=0` at `outage_end_at`. Wallet approvals answered in between (sent after the bank went down,
  answered before it came back) are `bank.approved_during_outage`.
- The end: wait (at most `settle_timeout_s`) until the hub reports no bank operation in flight — top-ups
  that went to manual review (the bank stayed down longer than the reversal retries) are resolved as an
  operator would, from the bank's own record, once nothing else is pending —, run
  reconciliation for the business date, read the bank simulator's balances again. The hub's bank
  clearing accounts and the simulator's balances are read before the stretch and after the wait,
  with nothing in flight either time (`bank_invariants.check_bank`).

The calls to the hub's funds, grants and settlement services and to the bank simulator are in
`bank_calls.py`; this module only plays them.
"""

from __future__ import annotations

import asyncio
import random
import secrets
import time
from collections import Counter

import grpc

from onecard_client import OneCardError
from onecard_sim.events import APPROVED, TapEvent
from onecard_sim.population import SimStudent
from onecard_sim.scenarios.bank_calls import BankCalls
from onecard_sim.scenarios.bank_invariants import BankFacts, check_bank, clearing_change
from onecard_sim.scenarios.catalog import SIMULATED_DAY, BankPlan
from onecard_sim.scenarios.devices import CampusDevices
from onecard_sim.scenarios.episode import Episode, EpisodeResult

__all__ = ["BankOutage"]

POLL_S = 0.25
BROKEN = (":INTERNAL", ":UNKNOWN")  # answers of the hub that are bugs whatever the bank did
MAX_LINES = 10  # unexplained reconciliation lines quoted among the violations


class BankOutage(Episode):
    def __init__(self, plan: BankPlan, devices: CampusDevices, calls: BankCalls, seed: int) -> None:
        self.plan = plan
        self.devices = devices
        self.calls = calls
        self.rng = random.Random(seed * 37 + 11)
        self.tag = secrets.token_hex(4)
        self.business_date = SIMULATED_DAY.date().isoformat()
        self.top_ups: list[SimStudent] = []
        self.auto: list[SimStudent] = []
        self.grants: dict[str, list[SimStudent]] = {}  # school → students paid by its batch
        for school in devices.population.schools:
            usable = list(devices.population.usable(school))
            self.top_ups += self._pick(usable, plan.top_up_share)
            self.auto += self._pick(usable, plan.auto_top_up_share)
            self.grants[school] = self._pick(usable, plan.grant_share)
        self.down_s: float | None = None  # time.monotonic() when the bank went down
        self.up_s: float | None = None  # and when it came back
        self.approved_during_outage = 0
        self.outcomes: Counter[str] = Counter()  # what the top-up and grant calls answered
        self.not_final: dict[str, int] = {}
        self.unexplained = 0
        self.bank_before: int | None = None
        self.bank_after: int | None = None
        self.clearing_before: dict[str, int] = {}
        self.clearing_after: dict[str, int] = {}
        self.problems: list[str] = []
        self.manual_resolved = 0  # top-ups the scenario's operator resolved from manual review

    def _pick(self, usable: list[SimStudent], share: float) -> list[SimStudent]:
        count = min(len(usable), round(share * len(usable)))
        return self.rng.sample(usable, count) if count else []

    # -- before the stretch ----------------------------------------------------------------------

    async def prepare(self, start_ms: int) -> None:
        for student in self.auto:
            await self._call(
                "auto_top_up",
                self.calls.set_auto_top_up(
                    student,
                    threshold_fen=self.plan.auto_threshold_fen,
                    amount_fen=self.plan.auto_amount_fen,
                    request_id=f"auto-{self.tag}-{student.card_no}",
                ),
            )
        self.clearing_before = await self.calls.ledger_by_kind()
        self.bank_before = await self.calls.bank_total_fen()

    # -- during the stretch ----------------------------------------------------------------------

    def watch(self, event: TapEvent) -> None:
        down, up = self.down_s, self.up_s
        if event.outcome != APPROVED or event.offline or down is None:
            return
        if event.sent_s >= down and (up is None or event.real_s <= up):
            self.approved_during_outage += 1

    async def play(self, duration_s: float) -> None:
        started = time.monotonic()
        await asyncio.gather(
            self._outage(started, duration_s),
            self._top_ups(started, duration_s),
            self._grant_batches(started, duration_s),
        )

    async def _outage(self, started: float, duration_s: float) -> None:
        plan = self.plan
        await _sleep_until(started + plan.outage_start_at * duration_s)
        length_s = (plan.outage_end_at - plan.outage_start_at) * duration_s
        try:
            await self.calls.bank_down(length_s + 5.0)  # ended explicitly below; +5 s if that call is late
        except grpc.RpcError as exc:  # the report says what went wrong, the run goes on
            self.problems.append(f"bank: could not take the bank down: {exc}")
            return
        self.down_s = time.monotonic()
        await _sleep_until(started + plan.outage_end_at * duration_s)
        self.up_s = time.monotonic()
        try:
            await self.calls.bank_up()
        except grpc.RpcError as exc:
            self.problems.append(f"bank: could not end the outage: {exc}")

    async def _top_ups(self, started: float, duration_s: float) -> None:
        order = list(self.top_ups)
        self.rng.shuffle(order)
        step = duration_s / max(1, len(order))
        calls = []
        for i, student in enumerate(order):
            await _sleep_until(started + i * step)
            amount = self.rng.choice(self.plan.top_up_fen)
            request_id = f"topup-{self.tag}-{i}"
            calls.append(
                asyncio.create_task(self._call("top_up", self.calls.top_up(student, amount, request_id)))
            )
        await asyncio.gather(*calls)

    async def _grant_batches(self, started: float, duration_s: float) -> None:
        await _sleep_until(started + self.plan.grant_at * duration_s)
        for school, students in self.grants.items():
            if students:
                await self._call(
                    "grant_batch",
                    self.calls.submit_grant_batch(
                        school, students, self.plan.grant_fen, f"grants-{self.tag}-{school}"
                    ),
                )

    async def _call(self, what: str, call: object) -> None:
        """Awaits one call to the hub; counts its answer ("top_up:ok", "top_up:UNAVAILABLE")."""
        try:
            await call  # type: ignore[misc]
        except OneCardError as error:
            self.outcomes[f"{what}:{error.code.name}"] += 1
            return
        except ValueError as error:  # the hub refused it for a reason the scenario did not expect
            self.problems.append(f"bank: {what}: {error}")
            return
        self.outcomes[f"{what}:ok"] += 1

    # -- after the stretch -----------------------------------------------------------------------

    async def finish(self) -> None:
        """Waits (bounded) until nothing is in flight at the bank, reconciles, reads the balances."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.plan.settle_timeout_s
        resolved = False
        while True:
            self.not_final = await self.calls.not_final()
            if not any(self.not_final.values()) or loop.time() >= deadline:
                break
            others = sum(n for kind, n in self.not_final.items() if kind != "manual_review")
            if not others and not resolved:  # only manual review is left: the operator resolves it
                resolved = True
                try:
                    self.manual_resolved = await self.calls.resolve_manual_review(f"review-{self.tag}")
                except OneCardError as error:
                    self.problems.append(f"bank: resolving manual review failed: {error}")
                continue
            await asyncio.sleep(POLL_S)
        try:
            self.unexplained = await self.calls.reconcile(self.business_date, f"recon-{self.tag}")
        except OneCardError as error:
            self.problems.append(f"bank: reconciliation (对账) of {self.business_date} failed: {error}")
        self.clearing_after = await self.calls.ledger_by_kind()
        self.bank_after = await self.calls.bank_total_fen()

    def result(self) -> EpisodeResult:
        verdict = check_bank(
            BankFacts(
                approved_during_outage=self.approved_during_outage,
                outage_played=self.down_s is not None,
                not_final=self.not_final,
                unexplained=self.unexplained,
                bank_before_fen=self.bank_before,
                bank_after_fen=self.bank_after,
                clearing_before_fen=self.clearing_before.get("bank_clearing", 0),
                clearing_after_fen=self.clearing_before.get("bank_clearing", 0)
                + clearing_change(self.clearing_before, self.clearing_after),
            )
        )
        broken = {k: n for k, n in sorted(self.outcomes.items()) if k.endswith(BROKEN)}
        lines = [*self.problems, *verdict.violations]
        lines.extend(
            f"bank: {n} hub call(s) answered {what} (a bug, not an answer)" for what, n in broken.items()
        )
        if self.unexplained:
            shown = self.calls.unexplained_lines[:MAX_LINES]
            lines.extend(f"bank: 对账 {line}" for line in shown)
        return EpisodeResult("bank", verdict.section, lines, conserved=verdict.conserved)

    async def close(self) -> None:
        await self.calls.close()


async def _sleep_until(when: float) -> None:
    delay = when - time.monotonic()
    if delay > 0:
        await asyncio.sleep(delay)
