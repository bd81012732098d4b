"""Reading Locust's CSV statistics (`--csv PREFIX` writes PREFIX_stats.csv) without importing Locust.

Entry names follow `users.py`: "Authorize <scene>" for approvals (and for failures of that scene),
"Authorize <scene> DECLINED:<REASON>" for declines, "GetClock" once per process, and "Aggregated".
Locust's percentiles are approximations: exact to 1 ms below 100 ms, then rounded to 10 ms.
"""

from __future__ import annotations

import csv
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

__all__ = ["StatsRow", "aggregated", "read_stats", "scene_of", "stats_file", "table"]

AGGREGATED = "Aggregated"
DECLINED = " DECLINED:"


def stats_file(prefix: Path) -> Path:
    return prefix.with_name(prefix.name + "_stats.csv")


def _number(text: str) -> float | None:
    try:
        return float(text)
    except ValueError:
        return None  # "N/A" when an entry has no requests


@dataclass(frozen=True)
class StatsRow:
    type: str
    name: str
    requests: int
    failures: int
    rps: float
    p50_ms: float | None
    p99_ms: float | None
    max_ms: float | None

    @property
    def declined(self) -> bool:
        return DECLINED in self.name

    @property
    def decline_reason(self) -> str:
        return self.name.partition(DECLINED)[2]


def read_stats(path: Path) -> list[StatsRow]:
    with path.open(newline="", encoding="utf-8") as handle:
        return [
            StatsRow(
                type=row["Type"],
                name=row["Name"],
                requests=int(row["Request Count"]),
                failures=int(row["Failure Count"]),
                rps=_number(row["Requests/s"]) or 0.0,
                p50_ms=_number(row["50%"]),
                p99_ms=_number(row["99%"]),
                max_ms=_number(row["Max Response Time"]),
            )
            for row in csv.DictReader(handle)
        ]


def aggregated(rows: Iterable[StatsRow]) -> StatsRow:
    for row in rows:
        if row.name == AGGREGATED:
            return row
    raise ValueError("Locust's statistics have no Aggregated row")


def scene_of(name: str) -> str | None:
    """ "Authorize gate_entry DECLINED:X" → "gate_entry"; None for entries that are not taps."""
    if not name.startswith("Authorize "):
        return None
    return name.removeprefix("Authorize ").partition(DECLINED)[0]


def _ms(value: float | None) -> str:
    return "-" if value is None else f"{value:g}"


def table(rows: Iterable[StatsRow]) -> str:
    """The rows as a Markdown table."""
    lines = [
        "| entry | requests | failures | req/s | p50 ms | p99 ms | max ms |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for row in rows:
        lines.append(
            f"| {row.name} | {row.requests} | {row.failures} | {row.rps:.1f} | {_ms(row.p50_ms)} | "
            f"{_ms(row.p99_ms)} | {_ms(None if row.max_ms is None else round(row.max_ms, 1))} |"
        )
    return "\n".join(lines)
