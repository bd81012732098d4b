"""One headless Locust run as a child process, with its CSV statistics and the CPU both sides used."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path

from onecard_load.processes import CLIENT_CPU, REPO, Children, CpuSample, StartError, locust_command, tail
from onecard_load.stats import StatsRow, aggregated, read_stats, stats_file

__all__ = ["LOCUSTFILES", "LocustResult", "run_locust"]

LOCUSTFILES = {
    "steady": REPO / "loadtest" / "locustfile.py",
    "meal-rush": REPO / "loadtest" / "meal_rush.py",
    "morning-gate": REPO / "loadtest" / "morning_gate.py",
}
# Locust logs this once its users are up (with --reset-stats, when it resets its statistics too):
# CPU is measured from there, so start-up (imports, loading the credentials) is left out.
_STARTED = ("Resetting stats", "All users spawned", "Ramping to")
_STOPPING = ("limit reached", "Shape test stopping", "Shutting down")  # ... and until it stops its users


@dataclass(frozen=True)
class LocustResult:
    status: int
    rows: list[StatsRow]
    csv_prefix: Path
    log: Path
    cpu: dict[str, float] = field(default_factory=dict)  # "locust", "server": share of one CPU

    @property
    def total(self) -> StatsRow:
        return aggregated(self.rows)

    def tap_rows(self) -> list[StatsRow]:
        return [row for row in self.rows if row.name.startswith("Authorize ")]

    @property
    def approved(self) -> int:
        return sum(row.requests - row.failures for row in self.tap_rows() if not row.declined)

    @property
    def declined(self) -> int:
        return sum(row.requests for row in self.tap_rows() if row.declined)


def run_locust(
    children: Children,
    *,
    shape: str,
    target: str,
    keys: Path,
    csv_prefix: Path,
    locust_args: list[str],
    html: Path | None = None,
    server_pid: int | None = None,
    timeout: float = 900.0,
    started_marker: str | None = None,
) -> LocustResult:
    """Runs `locust --headless` with the locustfile of `shape` against `target` until it exits."""
    log = csv_prefix.with_name(csv_prefix.name + ".log")
    argv = [
        *locust_command(),
        "-f", str(LOCUSTFILES[shape]),
        "--headless",
        "--host", target,
        "--keys", str(keys),
        "--csv", str(csv_prefix),
        *(["--html", str(html)] if html is not None else []),
        *locust_args,
    ]  # fmt: skip
    proc = children.start(argv, log=log, cpu=CLIENT_CPU)
    pids = {"locust": proc.pid, **({"server": server_pid} if server_pid is not None else {})}
    cpu = CpuSample(pids)
    markers = (started_marker,) if started_marker else _STARTED
    started = stopping = False
    deadline = time.monotonic() + timeout
    try:
        while proc.poll() is None:
            if time.monotonic() > deadline:
                raise StartError(f"Locust ran over {timeout:.0f} s:\n{tail(log)}")
            if not stopping:
                text = log.read_text(encoding="utf-8", errors="replace")
                started = started or any(marker in text for marker in markers)
                stopping = started and any(marker in text for marker in _STOPPING)
                if started and not stopping:
                    cpu.sample()
            time.sleep(0.2)
    finally:
        children.stop(proc)
    status = proc.returncode if proc.returncode is not None else -1
    stats = stats_file(csv_prefix)
    if not stats.is_file():
        raise StartError(f"Locust (status {status}) wrote no {stats}:\n{tail(log)}")
    return LocustResult(status, read_stats(stats), csv_prefix, log, cpu.shares())
