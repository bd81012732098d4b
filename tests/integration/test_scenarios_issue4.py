"""`lost-card-mid-rush` and `exam-day` end to end, small (1 school, 200 students, 5 s): their own hub
(a real `onecard-hub serve` child on a seeded SQLite file), real simulated devices and operator
clients, and the files they leave behind. Run as a tester would: `python -m onecard_sim.cli`."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from onecard_sim.scenarios.report import REPORT_KEYS

SMALL = ("--schools", "1", "--students", "200", "--duration", "5", "--no-live")
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def _play(name: str, out: Path) -> tuple[subprocess.CompletedProcess[str], dict[str, Any]]:
    done = subprocess.run(
        [sys.executable, "-m", "onecard_sim.cli", "scenario", name, *SMALL, "--out", str(out)],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    report = out / "report.json"
    assert report.is_file(), f"no report.json; output:\n{done.stdout}\n{done.stderr}"
    return done, json.loads(report.read_text(encoding="utf-8"))


def _check_common(
    done: subprocess.CompletedProcess[str], doc: dict[str, Any], out: Path, section: str
) -> None:
    assert done.returncode == 0, f"{doc['violations']}\n{done.stdout}\n{done.stderr}"
    assert doc["violations"] == []
    # DESIGN §10's keys in order, the scenario's own section(s) right after `ledger`.
    keys = list(doc)
    assert [k for k in keys if k not in (section, "library")] == list(REPORT_KEYS)
    assert keys.index(section) == keys.index("ledger") + 1
    assert doc["ledger"] == {"sum_fen": 0, "conserved": True}
    assert doc["approvals_after_loss"] == 0
    assert not [n for n in doc["decisions"] if n.startswith("ERROR_")]
    for scene, latency in doc["latency_ms"].items():
        assert scene in doc["taps"] and 0 < latency["p50"] <= latency["p99"]
    assert (out / "chart.png").read_bytes()[:8] == PNG_MAGIC
    assert "every invariant held" in done.stdout


@pytest.mark.slow
def test_lost_cards_are_declined_once_the_loss_is_answered(tmp_path: Path) -> None:
    done, doc = _play("lost-card-mid-rush", tmp_path)
    _check_common(done, doc, tmp_path, "lost_cards")
    lost = doc["lost_cards"]
    assert lost["cards_reported"] >= 3 and lost["reports_failed"] == 0
    assert lost["taps_after_loss"] > 0
    assert lost["declined_reported_lost"] > 0
    assert doc["decisions"]["CARD_REPORTED_LOST"] >= lost["declined_reported_lost"]
    assert doc["taps"]["canteen_purchase"] > 0 and doc["taps"]["gate_entry"] > 0
    assert "lost_cards:" in done.stdout


@pytest.mark.slow
def test_exam_day_checks_students_in_across_rooms(tmp_path: Path) -> None:
    done, doc = _play("exam-day", tmp_path)
    _check_common(done, doc, tmp_path, "exam")
    exam = doc["exam"]
    assert exam["sessions"] == 2 and exam["roster"] > 100
    assert exam["present"] > 0 and exam["present"] + exam["absent"] == exam["roster"]
    assert exam["attempts"]["arrival"]["APPROVED"] == exam["present"]
    assert doc["taps"]["exam_check_in"] > exam["present"]
    assert "exam_check_in" in doc["latency_ms"]
    assert {"library_borrow"} <= set(doc["taps"])
