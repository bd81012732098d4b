"""Collects what the devices report (`onecard_sim.events`) into counts, latencies and a time series.

The `Collector` is the scenario's `EventSink`. It keeps no event list: counts by scene and by outcome,
the latencies of online answers (for the percentiles), per-bucket series over simulated time (for the
chart and the live progress), the upload answers, and the few per-card facts the invariants need.
"""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass, field

from onecard_sim.events import APPROVED, OFFLINE_APPROVED, TapEvent, UploadEvent

__all__ = ["BUCKETS", "Bucket", "Collector", "UploadTally", "percentile"]

BUCKETS = 60  # points of the chart over the simulated stretch
ERROR_PREFIX = "ERROR_"


def percentile(values: list[float], share: float) -> float:
    """Nearest-rank percentile (0 when there is nothing), rounded to 0.01 ms."""
    if not values:
        return 0.0
    ordered = sorted(values)
    rank = max(1, math.ceil(share * len(ordered)))
    return round(ordered[rank - 1], 2)


@dataclass
class Bucket:
    """One slice of simulated time: taps and online latencies per scene."""

    taps: Counter[str] = field(default_factory=Counter)
    latencies_ms: dict[str, list[float]] = field(default_factory=dict)


@dataclass
class UploadTally:
    uploaded: int = 0  # transactions sent in first uploads
    reuploaded: int = 0  # transactions sent again on purpose
    booked: int = 0  # booked by first uploads
    rejected: int = 0  # explicitly rejected by first uploads
    duplicates: int = 0  # answered "already booked" in first uploads (an SDK retry of a lost answer)
    duplicates_applied: int = 0  # booked by a re-upload: money moved twice
    reupload_not_duplicate: int = 0  # re-sent transactions the hub did not recognise as already booked


class Collector:
    """An `EventSink` for one scenario run; `start_ms` and `simulated_s` place the buckets."""

    def __init__(self, start_ms: int, simulated_s: float, buckets: int = BUCKETS) -> None:
        self.start_ms = start_ms
        self.simulated_s = simulated_s
        self.bucket_ms = max(1.0, simulated_s * 1000 / buckets)
        self.buckets = [Bucket() for _ in range(buckets)]
        self.taps: Counter[str] = Counter()
        self.decisions: Counter[str] = Counter()
        self.latencies_ms: dict[str, list[float]] = {}
        self.uploads = UploadTally()
        self.offline_stored = 0
        # Per card: (approvals, hub time of the first), online and offline — compared with the export.
        self.approved_cards: dict[str, tuple[int, int]] = {}
        self.offline_approved_cards: dict[str, tuple[int, int]] = {}
        self.first_error: dict[str, TapEvent] = {}

    # -- EventSink ---------------------------------------------------------------------------------

    def tap(self, event: TapEvent) -> None:
        self.taps[event.scene] += 1
        self.decisions[event.outcome] += 1
        bucket = self.buckets[self._bucket_of(event.hub_ms)]
        bucket.taps[event.scene] += 1
        if event.outcome.startswith(ERROR_PREFIX):
            self.first_error.setdefault(event.outcome, event)
            return
        if event.offline:
            if event.outcome == OFFLINE_APPROVED:
                self.offline_stored += 1
                _count(self.offline_approved_cards, event)
            return
        self.latencies_ms.setdefault(event.scene, []).append(event.latency_ms)
        bucket.latencies_ms.setdefault(event.scene, []).append(event.latency_ms)
        if event.outcome == APPROVED:
            _count(self.approved_cards, event)

    def upload(self, event: UploadEvent) -> None:
        tally = self.uploads
        if event.reupload:
            tally.reuploaded += event.transactions
            tally.duplicates_applied += event.booked
            tally.reupload_not_duplicate += event.transactions - event.duplicates
        else:
            tally.uploaded += event.transactions
            tally.booked += event.booked
            tally.rejected += event.rejected
            tally.duplicates += event.duplicates

    # -- reading ------------------------------------------------------------------------------------

    def _bucket_of(self, hub_ms: int) -> int:
        index = int((hub_ms - self.start_ms) / self.bucket_ms)
        return min(max(index, 0), len(self.buckets) - 1)

    @property
    def total_taps(self) -> int:
        return sum(self.taps.values())

    def latency_summary(self) -> dict[str, dict[str, float]]:
        return {
            scene: {"p50": percentile(values, 0.50), "p99": percentile(values, 0.99)}
            for scene, values in sorted(self.latencies_ms.items())
        }

    def recent_p99(self, last: int = 2000) -> float:
        """p99 over the most recent online answers of every scene (for the live progress)."""
        values: list[float] = []
        for series in self.latencies_ms.values():
            values.extend(series[-last:])
        return percentile(values, 0.99)


def _count(seen: dict[str, tuple[int, int]], event: TapEvent) -> None:
    count, first_ms = seen.get(event.card_no, (0, event.hub_ms))
    seen[event.card_no] = (count + 1, min(first_ms, event.hub_ms))
