"""The hub's Prometheus metrics: one registry per running hub, scraped at /metrics.

What is counted where (every label value is bounded: school ids, scenes, reasons, states, bank
codes, method names; never a card number, request id, name or terminal id):

- gRPC server metrics: `telemetry/rpc.py` (the guarded servicer methods).
- Taps and other journaled facts: from each batch the journal writer made durable (a listener,
  `JournalCounts`, like the live blocklist feed), so a count is a decision that was answered, and
  a replayed request is not counted twice: `onecard_authorizations_total{school,scene,decision,
  reason}` (reason "" when approved; desk and tablet taps too), `onecard_misuse_signals_total
  {school,kind}`, `onecard_topups_total{state}` and `onecard_grant_payments_total{state}` (each
  state a top-up or grant item entered since the hub started).
- The journal: `onecard_journal_commit_seconds`, `onecard_journal_batch_rows` (per group commit),
  `onecard_journal_queue_rows` (rows waiting for the writer) and its limit, `onecard_journal_failed`.
- The live blocklist: `onecard_blocklist_subscribers{school}`, `onecard_blocklist_publish_lag_seconds`
  (durable → written to a terminal's stream), `onecard_blocklist_dropped_total`.
- The bank gateway (`telemetry/bank.py`): `onecard_bank_calls_total{bank,operation,outcome}`,
  `onecard_bank_call_seconds{bank,operation}`.
- Offline uploads (`offline.py`): `onecard_offline_records_total{school,outcome}`.
- The process: prometheus_client's process, platform and GC collectors (CPU, RSS, open files, GC).

Per-call and per-commit figures are plain numbers kept on the event loop (no lock), turned into metric
families by custom collectors at scrape time; rarer events (a bank call, a top-up, an offline record)
use prometheus_client's metric objects.
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Callable, Iterable, Sequence
from typing import TYPE_CHECKING

import prometheus_client
from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    GCCollector,
    Histogram,
    PlatformCollector,
    ProcessCollector,
)
from prometheus_client.metrics_core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector
from prometheus_client.utils import floatToGoString

from onecard_hub.domain.decisions import DeclineReason
from onecard_hub.domain.grants import FINAL as FINAL_ITEM_STATES
from onecard_hub.domain.grants import ItemStatus
from onecard_hub.domain.model import Scene
from onecard_hub.domain.offline import OfflineOutcome, OfflineResult
from onecard_hub.domain.topup import TopUpState
from onecard_hub.store.records import Batch
from onecard_hub.telemetry.rpc import GrpcCollector, MethodStats

if TYPE_CHECKING:
    from onecard_hub.hub import Hub

# The hub's counters have no `_created` series: nothing reads them, and they double the lines.
prometheus_client.disable_created_metrics()

COMMIT_BOUNDS = (0.0005, 0.001, 0.002, 0.004, 0.008, 0.016, 0.032, 0.064, 0.128, 0.256, 0.512, 1.024)
ROW_BOUNDS = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024)
LAG_BOUNDS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
BANK_BOUNDS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 5.0)
_SCENE_SHIFT = 8  # a tap's count key: scene << 8 | decline reason (no tuple per tap)


def _scene_name(scene: int) -> str:
    try:
        return Scene(scene).name.lower()
    except ValueError:
        return str(scene)


def _reason_name(reason: int) -> str:
    if reason == 0:
        return ""
    try:
        return DeclineReason(reason).name
    except ValueError:
        return str(reason)


def _item_state(status: int) -> str:
    try:
        return ItemStatus(status).name.lower()
    except ValueError:
        return str(status)


class JournalCounts(Collector):
    """A listener of the journal writer: counts what each durable batch holds; at scrape time,
    `onecard_authorizations_total`. The rarer rows go to counters of `metrics`."""

    def __init__(self, hub: Hub, metrics: HubMetrics) -> None:
        self._terminals = hub.campus.terminals
        self._metrics = metrics
        # terminal → (scene << 8 | reason) → taps; summed per school (a terminal's is fixed) at scrape time
        self._taps: dict[str, dict[int, int]] = {}
        # The last state written of each top-up and grant item not final yet (what counts as a change).
        self._open_topups: dict[str, str] = {}
        self._open_items: dict[tuple[str, str, str], int] = {}

    def __call__(self, batch: Batch) -> None:
        taps = self._taps
        for row in batch.requests:
            scene, reason = row.scene, row.reason
            if scene <= 0 or reason < 0:
                continue  # not a tap (the same rule as the usage statistics)
            counts = taps.get(row.caller)
            if counts is None:
                counts = taps[row.caller] = {}
            key = scene << _SCENE_SHIFT | reason
            counts[key] = counts.get(key, 0) + 1
        if batch.misuse:
            for signal in batch.misuse:
                self._metrics.misuse_signals.labels(signal.school_id, str(signal.kind)).inc()
        if batch.topups:
            self._topups_changed(batch)
        if batch.grant_items:
            self._grant_items_changed(batch)

    def _topups_changed(self, batch: Batch) -> None:
        """A top-up's row is written again on every change (a reversal tried, …): counted when its
        state is another than the last one written; forgotten once final."""
        seen = self._open_topups
        for topup in batch.topups:
            if seen.get(topup.topup_id) != topup.state:
                self._metrics.topups.labels(topup.state).inc()
            if TopUpState(topup.state).final:
                seen.pop(topup.topup_id, None)
            else:
                seen[topup.topup_id] = topup.state

    def _grant_items_changed(self, batch: Batch) -> None:
        """The same for grant items (rewritten per attempt; a failed one may be retried)."""
        seen = self._open_items
        for item in batch.grant_items:
            key = (item.school_id, item.batch_id, item.student_id)
            if seen.get(key) != item.status:
                self._metrics.grant_payments.labels(_item_state(item.status)).inc()
            if item.status in FINAL_ITEM_STATES:
                seen.pop(key, None)
            else:
                seen[key] = item.status

    def collect(self) -> Iterable[Metric]:
        family = CounterMetricFamily(
            "onecard_authorizations",
            "Taps and scans decided and made durable (Authorize, library desks, exam tablets), by the"
            " terminal's school, scene, decision and decline reason (empty when approved).",
            labels=("school", "scene", "decision", "reason"),
        )
        by_school: dict[tuple[str, int], int] = {}
        for terminal_id, counts in list(self._taps.items()):
            terminal = self._terminals.get(terminal_id)
            school = terminal.school_id if terminal is not None else ""
            for key, n in list(counts.items()):
                by_school[school, key] = by_school.get((school, key), 0) + n
        mask = (1 << _SCENE_SHIFT) - 1
        for (school, key), n in sorted(by_school.items()):
            reason = key & mask
            decision = "approved" if reason == 0 else "declined"
            family.add_metric([school, _scene_name(key >> _SCENE_SHIFT), decision, _reason_name(reason)], n)
        return [family]


class LoopHistogram(Collector):
    """A histogram observed on the event loop only (a commit, a blocklist message): a bisect and two
    additions, no lock (prometheus_client's Histogram takes one per bucket and sum, ≈ 1 µs). Read at
    scrape time from copies, like the gRPC counts."""

    def __init__(self, name: str, documentation: str, bounds: Sequence[float], registry: CollectorRegistry):
        self._name = name
        self._documentation = documentation
        self._bounds = tuple(float(b) for b in bounds)
        self._le = (*(floatToGoString(b) for b in self._bounds), "+Inf")
        self._counts = [0] * (len(self._bounds) + 1)  # per bucket, not cumulative
        self._sum = 0.0
        registry.register(self)

    def observe(self, value: float) -> None:
        self._counts[bisect_left(self._bounds, value)] += 1
        self._sum += value

    def collect(self) -> Iterable[Metric]:
        counts, total, cumulative = list(self._counts), 0, []
        for le, n in zip(self._le, counts, strict=True):
            total += n
            cumulative.append((le, float(total)))
        family = HistogramMetricFamily(self._name, self._documentation)
        family.add_metric([], cumulative, sum_value=self._sum)
        return [family]


class _Subscribers(Collector):
    def __init__(self, by_school: Callable[[], dict[str, int]]) -> None:
        self._by_school = by_school

    def collect(self) -> Iterable[Metric]:
        family = GaugeMetricFamily(
            "onecard_blocklist_subscribers",
            "Terminals with a live WatchBlocklist stream, by school.",
            labels=("school",),
        )
        for school, n in sorted(self._by_school().items()):
            family.add_metric([school], n)
        return [family]


class HubMetrics:
    """The registry of one running hub and every metric in it; `watch` binds them to the hub."""

    def __init__(self) -> None:
        registry = self.registry = CollectorRegistry()
        ProcessCollector(registry=registry)
        PlatformCollector(registry=registry)
        GCCollector(registry=registry)
        self.rpc_methods: list[MethodStats] = []
        registry.register(GrpcCollector(self.rpc_methods))
        self.commit_seconds = LoopHistogram(
            "onecard_journal_commit_seconds",
            "Duration of one group commit of the journal (BEGIN … COMMIT, then the fdatasync of the log).",
            COMMIT_BOUNDS,
            registry,
        )
        self.batch_rows = LoopHistogram(
            "onecard_journal_batch_rows",
            "Rows one group commit wrote (a tap is one row, its transfer and counters ride along).",
            ROW_BOUNDS,
            registry,
        )
        self.queue_rows = Gauge(
            "onecard_journal_queue_rows",
            "Rows waiting for the journal writer's next commit.",
            registry=registry,
        )
        self.queue_limit = Gauge(
            "onecard_journal_queue_limit_rows",
            "Rows the writer takes before it answers RESOURCE_EXHAUSTED (--max-pending-writes).",
            registry=registry,
        )
        self.journal_failed = Gauge(
            "onecard_journal_failed",
            "1 when a journal write failed: the hub takes no more writes and must be restarted.",
            registry=registry,
        )
        self.blocklist_lag = LoopHistogram(
            "onecard_blocklist_publish_lag_seconds",
            "From a blocklist change being durable to its message written to a terminal's stream.",
            LAG_BOUNDS,
            registry,
        )
        self.blocklist_dropped = Counter(
            "onecard_blocklist_dropped",
            "WatchBlocklist streams ended because the terminal fell behind (RESOURCE_EXHAUSTED).",
            registry=registry,
        )
        self.bank_calls = Counter(
            "onecard_bank_calls",
            "Calls of the bank gateway by bank, operation and outcome (posted, rejected, reversed,"
            " returned, not_found, ok, invalid, uncertain: no definite answer).",
            ("bank", "operation", "outcome"),
            registry=registry,
        )
        self.bank_seconds = Histogram(
            "onecard_bank_call_seconds",
            "Duration of a bank gateway call, answered or not.",
            ("bank", "operation"),
            buckets=BANK_BOUNDS,
            registry=registry,
        )
        self.offline_records = Counter(
            "onecard_offline_records",
            "Offline transactions uploaded (UploadOfflineBatch), by school and outcome.",
            ("school", "outcome"),
            registry=registry,
        )
        self.topups = Counter(
            "onecard_topups",
            "Top-ups (圈存) entering a state, made durable: pending, posted, voided, manual_review.",
            ("state",),
            registry=registry,
        )
        self.grant_payments = Counter(
            "onecard_grant_payments",
            "Grant items entering a state, made durable: pending, uncertain, paid, failed, returned.",
            ("state",),
            registry=registry,
        )
        self.misuse_signals = Counter(
            "onecard_misuse_signals",
            "Misuse signals raised (a card at two places too close in time), by the card's school and kind.",
            ("school", "kind"),
            registry=registry,
        )

    def watch(self, hub: Hub) -> None:
        """Binds the metrics to a started hub: its journal's durable batches and queue, its feed."""
        writer = hub.writer
        counts = JournalCounts(hub, self)
        self.registry.register(counts)
        writer.listeners.append(counts)
        self.queue_rows.set_function(lambda: writer.pending)
        self.queue_limit.set(writer.max_pending)
        self.journal_failed.set_function(lambda: 0 if writer.failed is None else 1)
        self.registry.register(_Subscribers(hub.blocklist_feed.subscribers_by_school))

    def offline_uploaded(self, school_id: str, results: list[OfflineResult]) -> None:
        """An answered UploadOfflineBatch: every transaction's outcome (booked, duplicate, rejected)."""
        for result in results:
            self.offline_records.labels(school_id, OfflineOutcome(result.outcome).name.lower()).inc()

    def feed_delivered(self, lag_s: float) -> None:
        self.blocklist_lag.observe(lag_s)

    def feed_dropped(self) -> None:
        self.blocklist_dropped.inc()
