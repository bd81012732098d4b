"""`onecard-sim scenario NAME` end to end, each scenario in a small fast form: its own hub (a real
`onecard-hub serve` child on a seeded SQLite file, simulated clock), real simulated devices, and the
files it leaves behind. Runs `python -m onecard_sim.cli` in a subprocess, as a tester would."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from onecard_sim.cli import main
from onecard_sim.scenarios.report import REPORT_KEYS

SMALL = ("--schools", "1", "--students", "200", "--gates", "2", "--pos", "4", "--duration", "5")
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def _scenario(name: str, out: Path, *extra: str) -> tuple[subprocess.CompletedProcess[str], dict[str, Any]]:
    done = subprocess.run(
        [sys.executable, "-m", "onecard_sim.cli", "scenario", name, *SMALL, "--out", str(out), *extra],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    report = out / "report.json"
    assert report.is_file(), f"no report.json; output:\n{done.stdout}\n{done.stderr}"
    return done, json.loads(report.read_text(encoding="utf-8"))


def _check_common(done: subprocess.CompletedProcess[str], doc: dict[str, Any], out: Path, name: str) -> None:
    assert done.returncode == 0, f"{doc['violations']}\n{done.stdout}\n{done.stderr}"
    assert doc["violations"] == []
    assert tuple(doc) == REPORT_KEYS
    assert doc["scenario"] == name and doc["seed"] == 7
    assert doc["duration_s"] == 5.0 and doc["simulated_s"] == 7200.0
    assert doc["ledger"] == {"sum_fen": 0, "conserved": True}
    assert doc["approvals_after_loss"] == 0
    assert doc["offline"]["duplicates_applied"] == 0
    assert sum(doc["taps"].values()) > 0 and doc["decisions"].get("APPROVED", 0) > 0
    assert not [name for name in doc["decisions"] if name.startswith("ERROR_")]
    for scene, latency in doc["latency_ms"].items():
        assert scene in doc["taps"] and 0 < latency["p50"] <= latency["p99"]
    assert (out / "chart.png").read_bytes()[:8] == PNG_MAGIC
    assert "every invariant held" in done.stdout


@pytest.mark.slow
def test_meal_rush_sells_lunch_with_some_gate_traffic(tmp_path: Path) -> None:
    out = tmp_path / "given" / "meal-rush"  # --out is honoured, parents made
    done, doc = _scenario("meal-rush", out)
    _check_common(done, doc, out, "meal-rush")
    assert doc["taps"]["canteen_purchase"] > doc["taps"].get("gate_entry", 0)
    assert doc["offline"] == {"uploaded": 0, "reuploaded": 0, "duplicates_applied": 0}


@pytest.mark.slow
def test_morning_gates_lets_students_in(tmp_path: Path) -> None:
    done, doc = _scenario("morning-gates", tmp_path)
    _check_common(done, doc, tmp_path, "morning-gates")
    assert "canteen_purchase" not in doc["taps"]
    assert doc["taps"]["gate_entry"] > doc["taps"].get("gate_exit", 0)


@pytest.mark.slow
def test_offline_canteen_uploads_every_batch_twice_and_books_once(tmp_path: Path) -> None:
    done, doc = _scenario("offline-canteen", tmp_path)
    _check_common(done, doc, tmp_path, "offline-canteen")
    offline = doc["offline"]
    assert offline["uploaded"] > 0 and offline["uploaded"] == doc["decisions"]["OFFLINE_APPROVED"]
    assert offline["reuploaded"] == offline["uploaded"]


@pytest.mark.slow
def test_meal_rush_over_mutual_tls(tmp_path: Path) -> None:
    done, doc = _scenario("meal-rush", tmp_path, "--tls")
    _check_common(done, doc, tmp_path, "meal-rush")
    assert "(mutual TLS" in (tmp_path / "hub.log").read_text(encoding="utf-8")


def test_an_unknown_scenario_lists_the_scenarios(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["scenario", "tea-time"]) == 2
    err = " ".join(capsys.readouterr().err.split())
    assert "unknown scenario 'tea-time'" in err
    assert "meal-rush, morning-gates, offline-canteen" in err


def test_hub_without_keys_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["scenario", "meal-rush", "--hub", "127.0.0.1:1"]) == 2
    assert "--hub needs --keys" in capsys.readouterr().err
