"""Live progress of a device simulator (`onecard-sim readers` / `onecard-sim pos`): a small
`EventSink` that tallies taps and uploads, and the rich table drawn from it."""

from __future__ import annotations

import math
from collections import Counter

from rich.table import Table

from onecard_sim.events import APPROVED, OFFLINE_APPROVED, TapEvent, UploadEvent

__all__ = ["Tally"]

_MAX_LATENCIES = 200_000  # per scene; beyond this the percentiles use the first ones seen


class Tally:
    """Counts taps by scene and outcome, keeps online latencies, sums upload answers."""

    def __init__(self) -> None:
        self.taps: Counter[str] = Counter()
        self.outcomes: Counter[str] = Counter()
        self.latencies_ms: dict[str, list[float]] = {}
        self.uploads: Counter[str] = Counter()  # batches, transactions, booked, duplicates, rejected, re-*

    def tap(self, event: TapEvent) -> None:
        self.taps[event.scene] += 1
        self.outcomes[event.outcome] += 1
        if not event.offline and not event.outcome.startswith("ERROR_"):
            latencies = self.latencies_ms.setdefault(event.scene, [])
            if len(latencies) < _MAX_LATENCIES:
                latencies.append(event.latency_ms)

    def upload(self, event: UploadEvent) -> None:
        prefix = "re" if event.reupload else ""
        self.uploads[f"{prefix}batches"] += 1
        self.uploads[f"{prefix}transactions"] += event.transactions
        self.uploads[f"{prefix}booked"] += event.booked
        self.uploads[f"{prefix}duplicates"] += event.duplicates
        self.uploads[f"{prefix}rejected"] += event.rejected

    @property
    def total(self) -> int:
        return sum(self.taps.values())

    @property
    def approved(self) -> int:
        return self.outcomes[APPROVED] + self.outcomes[OFFLINE_APPROVED]

    def percentile(self, scene: str, share: float) -> float:
        values = sorted(self.latencies_ms.get(scene, ()))
        if not values:
            return 0.0
        return values[max(1, math.ceil(share * len(values))) - 1]

    def table(self, title: str, status: str = "", extra: dict[str, Counter[str]] | None = None) -> Table:
        """The live table: taps and latency per scene, outcomes, uploads, and `extra` rows."""
        extra = extra or {}
        table = Table(title=title, caption=status or None, expand=False)
        table.add_column("scene")
        table.add_column("taps", justify="right")
        table.add_column("p50 ms", justify="right")
        table.add_column("p99 ms", justify="right")
        for scene in sorted(self.taps):
            table.add_row(
                scene,
                str(self.taps[scene]),
                f"{self.percentile(scene, 0.5):.1f}",
                f"{self.percentile(scene, 0.99):.1f}",
            )
        outcomes = ", ".join(f"{name} {count}" for name, count in self.outcomes.most_common(8))
        table.add_row("outcomes", outcomes or "-", "", "")
        for prefix, label in (("", "uploads"), ("re", "re-uploads")):
            if self.uploads[f"{prefix}batches"]:
                u = {
                    k: self.uploads[prefix + k]
                    for k in ("batches", "transactions", "booked", "duplicates", "rejected")
                }
                table.add_row(
                    label,
                    f"{u['batches']} batches, {u['transactions']} transactions: {u['booked']} booked, "
                    f"{u['duplicates']} duplicates, {u['rejected']} rejected",
                    "",
                    "",
                )
        for label, counts in extra.items():
            if counts:
                table.add_row(label, ", ".join(f"{k} {v}" for k, v in counts.most_common()), "", "")
        return table
