"""The runs of `onecard_load.measure` and what they say: which side limits each run, the steady series of
one mode, the verdicts printed at the end (ceilings, CPU per call, the steady figure as a share of them).

A side (the server, or Locust on its own core) using 90% of its CPU or more is the one that limits a run;
when neither does, the latency comes from stalls, and when the rest of the machine used a good part of a
CPU ("others"), the run is spoilt. The first failed steady step is run again against the do-nothing
server: when Locust cannot hold that rate within the p99 even there, the client limits the figure.
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from typing import Any

from onecard_load.headless import LocustResult
from onecard_load.stats import StatsRow, scene_of

__all__ = ["RUN_HEADER", "Measured", "Series", "limiting_side", "per_scene", "verdicts"]

MIN_SENT_SHARE = 0.95


LIMIT_SHARE = 0.9  # a side using this much of its CPU is the one that limits the run
OTHERS_SHARE = 0.3  # the rest of the machine using this much of a CPU spoils the run


def limiting_side(cpu: dict[str, float]) -> str:
    """Which side limits a run, from the CPU shares: "Locust", "server", both, "others" (the rest of the
    machine took a good part of a CPU), or "neither" (no side saturated: latency comes from stalls)."""
    server, locust, others = cpu.get("server", 0.0), cpu.get("locust", 0.0), cpu.get("others", 0.0)
    sides = [name for name, share in (("Locust", locust), ("server", server)) if share >= LIMIT_SHARE]
    if sides:
        return " and ".join(sides)
    return "others" if others >= OTHERS_SHARE else "neither"


@dataclass(frozen=True)
class Measured:
    label: str
    server: str  # "hub" | "echo"
    wanted_rate: float | None  # the steady rate asked for; None for a closed loop or a shape
    wanted_text: str
    result: LocustResult
    mode: str = "plain"  # "plain" | "tls"

    @property
    def total(self) -> StatsRow:
        return self.result.total

    def passed(self, p99_limit: float) -> bool:
        total = self.total
        if self.wanted_rate is None or total.failures or total.p99_ms is None:
            return False
        return total.rps >= MIN_SENT_SHARE * self.wanted_rate and total.p99_ms <= p99_limit

    def cpu_us(self, side: str) -> float | None:
        """CPU per call of one side ("server" or "locust"), in µs."""
        share, rps = self.result.cpu.get(side), self.total.rps
        return None if share is None or not rps else 1e6 * share / rps

    @property
    def limits(self) -> str:
        return limiting_side(self.result.cpu)

    def row(self) -> str:
        total, cpu = self.total, self.result.cpu
        return (
            f"| {self.label} | {self.server} | {self.mode} | {self.wanted_text} | {total.rps:.0f} | "
            f"{_ms(total.p50_ms)} | {_ms(total.p99_ms)} | {total.failures} | "
            f"{_pct(cpu.get('server'))} | {_pct(cpu.get('locust'))} | {_pct(cpu.get('others'))} | "
            f"{_us(self.cpu_us('server'))} | {_us(self.cpu_us('locust'))} | {self.limits} |"
        )

    def as_json(self) -> dict[str, Any]:
        total = self.total
        return {
            "label": self.label,
            "server": self.server,
            "mode": self.mode,
            "limits": self.limits,
            "server_cpu_us": self.cpu_us("server"),
            "locust_cpu_us": self.cpu_us("locust"),
            "wanted_rate": self.wanted_rate,
            "rps": round(total.rps, 1),
            "requests": total.requests,
            "failures": total.failures,
            "p50_ms": total.p50_ms,
            "p99_ms": total.p99_ms,
            "approved": self.result.approved,
            "declined": self.result.declined,
            "cpu": self.result.cpu,
            "csv": str(self.result.csv_prefix),
        }


def _ms(value: float | None) -> str:
    return "-" if value is None else f"{value:g}"


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{100 * value:.0f}%"


def _us(value: float | None) -> str:
    return "-" if value is None else f"{value:.0f}"


RUN_HEADER = (
    "| run | server | mode | wanted | req/s | p50 ms | p99 ms | failures | server CPU | Locust CPU | others "
    "| server µs/call | Locust µs/call | limits |\n"
    "|---|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|"
)


@dataclass
class Series:
    """The steady steps of one mode (plain or TLS): the highest passing rate with every step below it."""

    mode: str
    steps: list[Measured]
    best: Measured | None = None
    misses: int = 0
    echo_check: Measured | None = None  # the first failed rate again, against the do-nothing server

    @property
    def done(self) -> bool:
        return self.misses >= 2

    def add(self, step: Measured, p99_limit: float) -> None:
        self.steps.append(step)
        if step.passed(p99_limit):
            self.misses = 0
            if len(self.steps) == 1 or self.best is self.steps[-2]:
                self.best = step
        else:
            self.misses += 1

    def first_failure(self, p99_limit: float) -> Measured | None:
        return next((step for step in self.steps if not step.passed(p99_limit)), None)


def per_scene(result: LocustResult) -> str:
    """p50/p99 of each scene's approvals, and how many of its taps were declined (and why)."""
    lines = [
        "| scene | approved | p50 ms | p99 ms | req/s | declined (reason: count) |",
        "|---|---:|---:|---:|---:|---|",
    ]
    scenes = sorted({s for row in result.tap_rows() if (s := scene_of(row.name)) is not None})
    for scene in scenes:
        rows = [row for row in result.tap_rows() if scene_of(row.name) == scene]
        approved = next((row for row in rows if not row.declined), None)
        declines = (
            ", ".join(f"{row.decline_reason}: {row.requests}" for row in rows if row.declined) or "none"
        )
        if approved is None:
            lines.append(f"| {scene} | 0 | - | - | - | {declines} |")
            continue
        lines.append(
            f"| {scene} | {approved.requests - approved.failures} | {_ms(approved.p50_ms)} | "
            f"{_ms(approved.p99_ms)} | {approved.rps:.0f} | {declines} |"
        )
    return "\n".join(lines)


def _best_text(series: Series) -> str:
    best = series.best
    if best is None or best.wanted_rate is None:
        return "none of the steps"
    return f"{best.wanted_rate:.0f} taps/s (achieved {best.total.rps:.0f}/s, p99 {best.total.p99_ms:g} ms)"


def verdicts(args: argparse.Namespace, echo: dict[str, Measured], hub: dict[str, Measured],
              series: dict[str, Series]) -> list[str]:  # fmt: skip
    """What the figures say, one line each, per mode: ceilings, who limits, the steady figure."""
    lines = []
    for mode, ceiling in hub.items():
        tag = f"[{mode}] "
        server_us, locust_us = ceiling.cpu_us("server"), ceiling.cpu_us("locust")
        if server_us:
            lines.append(
                f"{tag}hub ceiling {ceiling.total.rps:.0f}/s (limits: {ceiling.limits}); "
                "the hub's CPU per call "
                f"{server_us:.0f} µs → {1e6 / server_us:.0f}/s with a whole core"
            )
        if mode in echo:
            e = echo[mode]
            lines.append(
                f"{tag}Locust's own ceiling (against the do-nothing server) {e.total.rps:.0f}/s "
                f"(limits: {e.limits}); Locust's CPU per call {_us(e.cpu_us('locust'))} µs"
            )
        if locust_us and server_us:
            lines.append(
                f"{tag}one Locust process costs {locust_us:.0f} µs a call against the hub's {server_us:.0f}: "
                + (
                    "Locust limits the ceiling, not the hub"
                    if locust_us > server_us
                    else "the hub is the slower side"
                )
            )
        run = series[mode]
        best = run.best
        text = (
            f"{tag}highest steady rate with p99 ≤ {args.p99_ms:g} ms (it and every step below): "
            f"{_best_text(run)}"
        )
        if best is not None and best.wanted_rate:
            share = best.wanted_rate / ceiling.total.rps if ceiling.total.rps else 0.0
            text += f" = {100 * share:.0f}% of the measured ceiling"
            if server_us:
                text += f", {100 * best.wanted_rate * server_us / 1e6:.0f}% of the hub's whole-core rate"
        lines.append(text)
        failed = run.first_failure(args.p99_ms)
        step = failed or best
        step_us = step.cpu_us("server") if step is not None else None
        if step is not None and step_us and server_us:
            lines.append(
                f"{tag}at {step.wanted_rate:.0f}/s steady the hub spent {step_us:.0f} µs of CPU per call, "
                f"{step_us / server_us:.1f}× its cost at the ceiling: at that cost a whole core takes "
                f"{1e6 / step_us:.0f}/s (many terminals tapping now and then cost more per call than 64 "
                "busy ones, so the closed-loop ceiling overstates what a steady crowd can get)"
            )
        check = run.echo_check
        if check is not None and failed is not None:
            if "others" in (check.limits, failed.limits):
                verdict = "inconclusive: the rest of the machine took a good part of a CPU meanwhile"
            elif not check.passed(args.p99_ms):
                verdict = "Locust itself cannot keep that rate within the p99: the client limits this figure"
            else:
                verdict = "the do-nothing server passes it: the hub is what fails the step"
            lines.append(
                f"{tag}first failed step {failed.wanted_rate:.0f}/s (p99 {_ms(failed.total.p99_ms)} ms, "
                f"limits: {failed.limits}); the same against the do-nothing server: "
                f"p99 {_ms(check.total.p99_ms)} ms (limits: {check.limits}) — {verdict}"
            )
    return lines
