"""`scripts/bench_tap_path.py` run for real, very short: it seeds, drives the hub's own path and prints
its figures. What is checked is what it prints and exits with, never a timing."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "bench_tap_path.py"
FIELDS = (
    "decode_us", "identify_us", "validate_us", "fingerprint_us", "decide_us", "render_us",
    "path_us_batched", "path_us_single", "commit_us", "fsync_us", "path_us_at_rate",
    "taps_per_commit_at_rate",
)  # fmt: skip


def test_prints_every_phase_and_the_commit_costs() -> None:
    done = subprocess.run(
        [sys.executable, str(SCRIPT), "--taps", "128", "--repeat", "1", "--students", "1000"],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    last = done.stdout.strip().splitlines()[-1]
    assert last.startswith("bench-tap-path: "), last
    pairs = dict(item.split("=", 1) for item in last.removeprefix("bench-tap-path: ").split())
    assert tuple(pairs) == FIELDS
    for name in FIELDS:
        assert re.fullmatch(r"-?\d+\.\d+", pairs[name]), (name, pairs[name])
    for name in ("path_us_batched", "path_us_single", "path_us_at_rate"):
        assert float(pairs[name]) > 0, (name, last)  # the whole call took CPU
    assert float(pairs["taps_per_commit_at_rate"]) >= 1, last  # every commit carried a tap at least


def test_refuses_fewer_taps_than_a_group_commit() -> None:
    done = subprocess.run(
        [sys.executable, str(SCRIPT), "--taps", "10"], capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 2
    assert "--taps must be at least 64" in done.stderr
