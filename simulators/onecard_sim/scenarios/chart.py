"""The PNG chart of a run: throughput and latency (p50, p99) per scene over simulated time.

Top panel: taps per real second the hub saw, per scene. Bottom panel: latency of online answers per
scene, p50 solid and p99 dashed (a bucket with no online answer leaves a gap). The x axis is the
hub's simulated time of day (China Standard Time). Drawn with matplotlib's Agg backend: no display.
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import matplotlib.dates as mdates
import matplotlib.pyplot as plt

from onecard_sim.scenarios.collector import Bucket, Collector, percentile

__all__ = ["write_chart"]

_CST = timezone(timedelta(hours=8))
_COLOURS = {
    "gate_entry": "tab:blue",
    "gate_exit": "tab:green",
    "canteen_purchase": "tab:orange",
    "library_borrow": "tab:purple",
    "library_return": "tab:brown",
    "exam_check_in": "tab:red",
}


def write_chart(collector: Collector, path: Path, *, title: str, speed: float) -> Path:
    """Draws the chart into `path` (PNG) and returns it."""
    width_ms = collector.bucket_ms
    times = [
        datetime.fromtimestamp((collector.start_ms + (i + 0.5) * width_ms) / 1000, tz=_CST)
        for i in range(len(collector.buckets))
    ]
    real_s_per_bucket = width_ms / 1000 / max(speed, 1e-9)
    scenes = sorted({scene for b in collector.buckets for scene in b.taps})

    figure, (top, bottom) = plt.subplots(2, 1, figsize=(10, 6.5), sharex=True)
    for scene in scenes:
        colour = _COLOURS.get(scene)
        rates = [b.taps.get(scene, 0) / real_s_per_bucket for b in collector.buckets]
        top.plot(times, rates, label=scene, color=colour)
        p50 = [_latency(b, scene, 0.50) for b in collector.buckets]
        p99 = [_latency(b, scene, 0.99) for b in collector.buckets]
        bottom.plot(times, p50, label=f"{scene} p50", color=colour)
        bottom.plot(times, p99, label=f"{scene} p99", color=colour, linestyle="--")
    top.set_ylabel("taps per second (real)")
    top.set_title(title)
    bottom.set_ylabel("latency, ms")
    bottom.set_xlabel("simulated time of day (CST)")
    bottom.xaxis.set_major_formatter(mdates.DateFormatter("%H:%M", tz=_CST))
    for axis in (top, bottom):
        axis.grid(alpha=0.3)
        if scenes:
            axis.legend(loc="upper left", fontsize="small")
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    plt.close(figure)
    return path


def _latency(bucket: Bucket, scene: str, share: float) -> float:
    """A percentile of the bucket's online answers; NaN (a gap in the line) when there were none."""
    values = bucket.latencies_ms.get(scene)
    return percentile(values, share) if values else float("nan")
