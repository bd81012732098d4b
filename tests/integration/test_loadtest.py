"""Short headless Locust runs against a freshly seeded hub (what `make loadtest` does, only shorter).

Everything runs in subprocesses — the seed, the hub, Locust — through `python -m onecard_load.run`:
Locust patches its process for gevent, which must never happen in this one (it breaks grpc.aio). The
test reads Locust's CSV statistics itself rather than trusting the exit status alone.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from onecard_load.stats import StatsRow, aggregated, read_stats

pytestmark = pytest.mark.slow

# Declines that mean the users got a card's state wrong (counters, codes, gates, clock), not the campus.
STATE_DECLINES = {"COUNTER_REPLAYED", "QR_REPLAYED", "QR_EXPIRED", "CLOCK_SKEW", "ANTI_PASSBACK"}


def _load_run(out: Path, *args: str) -> tuple[subprocess.CompletedProcess[str], list[StatsRow]]:
    done = subprocess.run(
        [sys.executable, "-m", "onecard_load.run", "--out", str(out), *args],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    stats = out / "locust_stats.csv"
    assert stats.is_file(), f"no statistics; output:\n{done.stdout}\n{done.stderr}"
    return done, read_stats(stats)


def _check(done: subprocess.CompletedProcess[str], rows: list[StatsRow]) -> None:
    total = aggregated(rows)
    assert total.requests > 0, done.stdout
    assert total.failures == 0, done.stdout
    assert done.returncode == 0, f"{done.stdout}\n{done.stderr}"
    assert done.stdout.splitlines()[-1].startswith("loadtest: ok ")
    wrong = {row.decline_reason for row in rows if row.declined} & STATE_DECLINES
    assert not wrong, done.stdout
    approved = sum(row.requests for row in rows if row.name.startswith("Authorize ") and not row.declined)
    assert approved >= 0.9 * total.requests, done.stdout


def test_a_short_meal_rush_has_requests_and_no_failure(tmp_path: Path) -> None:
    out = tmp_path / "results"
    done, rows = _load_run(out, "--shape", "meal-rush", "--rate", "60", "--seconds", "5", "--students", "300")
    _check(done, rows)
    assert {"Authorize canteen_purchase", "Authorize gate_entry"} <= {row.name for row in rows}
    assert (out / "report.html").is_file() and (out / "hub.log").is_file()


def test_two_locust_processes_share_no_card(tmp_path: Path) -> None:
    # 120 cards for 300 taps a second: every card is tapped again and again, by chip and by QR, at the
    # gates in and out; a card used by both processes would soon send a counter the hub has seen.
    done, rows = _load_run(
        tmp_path / "results",
        "--shape", "steady",
        "--rate", "300",
        "--seconds", "5",
        "--students", "120",
        "--processes", "2",
    )  # fmt: skip
    _check(done, rows)
    assert "Authorize gate_exit" in {row.name for row in rows}


def test_a_short_run_over_mutual_tls_has_no_failure(tmp_path: Path) -> None:
    # The hub serves --tls with a PKI made for the campus; every user presents its own terminal's
    # certificate, and the hub names the caller from it (a wrong one would be refused, failing the run).
    out, pki = tmp_path / "results", tmp_path / "pki"
    done, rows = _load_run(
        out, "--shape", "steady", "--rate", "60", "--seconds", "5", "--students", "300", "--tls", str(pki)
    )
    _check(done, rows)
    assert (pki / "ca.crt").is_file() and any((pki / "terminals").glob("*.crt"))
    assert "(mutual TLS" in (out / "hub.log").read_text(encoding="utf-8")


def test_users_with_certificates_of_another_ca_are_refused(tmp_path: Path) -> None:
    out = tmp_path / "results"
    done, rows = _load_run(
        out,
        "--shape", "steady",
        "--rate", "60",
        "--seconds", "3",
        "--students", "300",
        "--tls", str(tmp_path / "pki"),
        "--client-tls", str(tmp_path / "other-pki"),
    )  # fmt: skip
    total = aggregated(rows)
    assert total.requests > 0 and total.failures == total.requests, done.stdout
    assert done.returncode != 0
    assert done.stdout.splitlines()[-1].startswith("loadtest: FAILED ")
    failures = (out / "locust_failures.csv").read_text(encoding="utf-8")
    assert "UNAVAILABLE" in failures, failures
