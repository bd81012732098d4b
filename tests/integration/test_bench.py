"""The benchmark (`scripts/bench.py`) run for real, very short: its servers, its load generator, its summary.

Run with `--echo-only` (the do-nothing server in the hub's place, no seeding) and with the hub, each
with one round of sub-second slices: what is checked is what the bench prints and exits with, never a
timing.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

BENCH = Path(__file__).resolve().parents[2] / "scripts" / "bench.py"
SHORT = (
    "--closed-seconds", "0.5",
    "--warmup-seconds", "0.2",
    "--open-seconds", "0.5",
    "--rate", "200",
    "--students", "4000",  # enough prebuilt requests that a fast server cannot use them up in the warm-up
)  # fmt: skip
FIELDS = (
    "hub_rps", "echo_rps", "ratio", "p99_ms_at_1000", "echo_p99_ms_at_1000",
    "ratio_iqr", "calibration", "calibration_spread",
    "hub_cpu_us_closed", "echo_cpu_us_closed", "hub_cpu_us_open", "echo_cpu_us_open", "cpu_ratio",
)  # fmt: skip
NUMBER = r"\d+(\.\d+)?"


def _bench(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(BENCH), *SHORT, *args],
        capture_output=True,
        text=True,
        timeout=400,
        check=False,
    )


def _fields(line: str) -> dict[str, str]:
    assert line.startswith("bench: "), line
    pairs = [item.split("=", 1) for item in line.removeprefix("bench: ").split()]
    return {key: value for key, value in pairs}


def test_echo_only_pairs_three_do_nothing_servers_and_prints_the_calibration() -> None:
    done = _bench("--echo-only", "--rounds", "2")
    assert done.returncode == 0, f"{done.stdout}\n{done.stderr}"
    lines = done.stdout.splitlines()
    fields = _fields(lines[-1])
    assert tuple(fields) == FIELDS  # the old fields first, in their order, then the new ones
    for key in ("hub_rps", "echo_rps", "ratio", "calibration", "hub_cpu_us_closed", "echo_cpu_us_open"):
        assert re.fullmatch(NUMBER, fields[key]), (key, fields[key])
    for key in ("ratio_iqr", "calibration_spread"):
        assert re.fullmatch(rf"{NUMBER}\.\.{NUMBER}", fields[key]), (key, fields[key])
    assert sum(line.startswith("round ") for line in lines) == 2
    assert any(line.startswith("  calibration echo2/echo (two identical servers): median ") for line in lines)
    assert any(line.startswith("  idle servers (each, while another one was loaded): ") for line in lines)


def test_the_hub_against_echo_with_metrics_keeps_the_telemetry_fields_before_the_new_ones() -> None:
    done = _bench("--rounds", "1", "--metrics")
    assert done.returncode == 0, f"{done.stdout}\n{done.stderr}"
    fields = _fields(done.stdout.splitlines()[-1])
    expected = (*FIELDS[:5], "hub_cpu_us", "metrics_ratio", "metrics_cpu_us", *FIELDS[5:])
    assert tuple(fields) == expected
    assert float(fields["hub_cpu_us_closed"]) > 0 and float(fields["metrics_cpu_us"]) > 0
    assert "  !!! APPROVAL SHARE" not in done.stdout


def test_a_bad_slice_length_is_refused_before_anything_starts() -> None:
    done = _bench("--echo-only", "--open-seconds", "30")
    assert done.returncode == 2
    assert "QR tokens expire" in done.stderr


def test_a_baseline_checkout_is_loaded_beside_the_hub_from_its_own_code(tmp_path: Path) -> None:
    base = tmp_path / "base"
    shutil.copytree(BENCH.parents[1] / "hub" / "onecard_hub", base / "hub" / "onecard_hub")
    marker = tmp_path / "ran-from-base"
    # imported at start by any interpreter with base/hub on its path: proves hub@base ran this code
    (base / "hub" / "sitecustomize.py").write_text(f"open({str(marker)!r}, 'a').write('x')\n")
    done = _bench("--rounds", "1", "--baseline", str(base))
    assert done.returncode == 0, f"{done.stdout}\n{done.stderr}"
    fields = _fields(done.stdout.splitlines()[-1])
    base_fields = (
        "base_ratio",
        "base_p99_ms_at_1000",
        "base_cpu_us_closed",
        "base_cpu_us_open",
        "hub_over_base",
    )
    assert tuple(fields) == (*FIELDS[:5], *base_fields, *FIELDS[5:])
    assert float(fields["base_cpu_us_closed"]) > 0 and float(fields["hub_over_base"]) > 0
    assert marker.read_text() == "x"  # the baseline's hub, and only it, started from the copy


def test_a_baseline_that_is_not_a_checkout_is_refused(tmp_path: Path) -> None:
    done = _bench("--rounds", "1", "--baseline", str(tmp_path))
    assert done.returncode == 2
    assert "not a checkout of this repository" in done.stderr
