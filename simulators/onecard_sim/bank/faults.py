"""Fault injection for the banks: latency, errors, timeouts, dropped replies and outages.

A plan per bank code, or one for every bank (`bank_code` ""); a bank's own plan wins. For each
money call (and, with `on_inquiries`, each read) one draw decides its fate:

- ERROR: answered UNAVAILABLE, nothing applied;
- TIMEOUT: never answered in time (sleeps past the caller's deadline), nothing applied;
- DROP: applied and committed, then answered UNAVAILABLE — the caller cannot tell it from ERROR;
- an outage (`outage_s` from now, or `--outage-at S --outage-for S` from start) refuses every call.
"""

from __future__ import annotations

import enum
import random
import time
from collections import Counter
from dataclasses import dataclass, replace


class Fate(enum.StrEnum):
    ANSWER = "answered"
    ERROR = "errors"
    TIMEOUT = "timeouts"
    DROP = "dropped_replies"
    OUTAGE = "outage_refusals"


@dataclass(frozen=True)
class FaultPlan:
    latency_min_ms: int = 0
    latency_max_ms: int = 0
    error_rate: float = 0.0
    timeout_rate: float = 0.0
    drop_reply_rate: float = 0.0


class PlanError(ValueError):
    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field


def check_plan(plan: FaultPlan) -> FaultPlan:
    for name in ("error_rate", "timeout_rate", "drop_reply_rate"):
        if not 0.0 <= getattr(plan, name) <= 1.0:
            raise PlanError(name, "a share from 0 to 1")
    if plan.error_rate + plan.timeout_rate + plan.drop_reply_rate > 1.0:
        raise PlanError("error_rate", "error, timeout and drop-reply rates add up to more than 1")
    if plan.latency_min_ms < 0 or plan.latency_max_ms < 0:
        raise PlanError("latency_min_ms", "not negative")
    if plan.latency_max_ms and plan.latency_max_ms < plan.latency_min_ms:
        raise PlanError("latency_max_ms", "below latency_min_ms")
    return plan


class BankFaults:
    def __init__(self, plan: FaultPlan | None = None, *, seed: int = 0, on_inquiries: bool = False) -> None:
        self.plans: dict[str, FaultPlan] = {"": check_plan(plan or FaultPlan())}
        self.rng = random.Random(seed or None)
        self.on_inquiries = on_inquiries
        self.counts: Counter[str] = Counter()
        self._outage: dict[str, tuple[float, float]] = {}  # bank → (from, until), monotonic

    def set_plan(self, bank_code: str, plan: FaultPlan, *, outage_s: float | None, seed: int) -> None:
        self.plans[bank_code] = check_plan(plan)
        if seed:
            self.rng = random.Random(seed)
        if outage_s is not None:
            self.outage(bank_code, 0.0, outage_s)

    def outage(self, bank_code: str, at_s: float, for_s: float) -> None:
        """Down from `at_s` seconds from now for `for_s` seconds (0: the outage ends)."""
        now = time.monotonic()
        if for_s <= 0:
            self._outage.pop(bank_code, None)
        else:
            self._outage[bank_code] = (now + at_s, now + at_s + for_s)

    def outage_left_s(self, bank_code: str = "") -> float:
        now = time.monotonic()
        left = 0.0
        for code in {bank_code, ""}:
            start, until = self._outage.get(code, (0.0, 0.0))
            if start <= now < until:
                left = max(left, until - now)
        return left

    def plan(self, bank_code: str) -> FaultPlan:
        return self.plans.get(bank_code, self.plans[""])

    def latency_s(self, bank_code: str) -> float:
        plan = self.plan(bank_code)
        if plan.latency_max_ms <= 0:
            return 0.0
        return self.rng.uniform(plan.latency_min_ms, plan.latency_max_ms) / 1000

    def draw(self, bank_code: str, *, money: bool) -> Fate:
        if self.outage_left_s(bank_code) > 0:
            fate = Fate.OUTAGE
        elif not money and not self.on_inquiries:
            fate = Fate.ANSWER
        else:
            plan = self.plan(bank_code)
            r = self.rng.random()
            if r < plan.error_rate:
                fate = Fate.ERROR
            elif r < plan.error_rate + plan.timeout_rate:
                fate = Fate.TIMEOUT
            elif r < plan.error_rate + plan.timeout_rate + plan.drop_reply_rate:
                fate = Fate.DROP
            else:
                fate = Fate.ANSWER
        self.counts[fate.value] += 1
        self.counts["calls"] += 1
        return fate

    def with_rates(self, bank_code: str, **changes: float | int) -> FaultPlan:
        return replace(self.plan(bank_code), **changes)  # type: ignore[arg-type]
