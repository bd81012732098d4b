"""A scenario's own hub, seen from outside: `metrics.prom` beside `report.json` agrees with the report
(every tap the devices saw answered is one `onecard_authorizations_total`, by decision and reason), and
with `--trace` a simulated terminal's tap span leads into the hub's trace of that call, down to its
journal commit."""

from __future__ import annotations

import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest

from tests.integration.telemetry_helpers import read_spans, samples

SMALL = ("--schools", "1", "--students", "200", "--gates", "2", "--pos", "4", "--duration", "5")
AUTHORIZE = "onecard.auth.v1.AuthorizationService/Authorize"


@pytest.mark.slow
def test_metrics_prom_agrees_with_the_report_and_taps_are_traced_into_the_hub(tmp_path: Path) -> None:
    import json

    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "onecard_sim.cli",
            "scenario",
            "meal-rush",
            *SMALL,
            "--out",
            str(tmp_path),
            "--no-live",
            "--trace",
        ],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, f"{done.stdout}\n{done.stderr}"
    report = json.loads((tmp_path / "report.json").read_text(encoding="utf-8"))
    assert not [k for k in report["decisions"] if k.startswith(("ERROR_", "OFFLINE_"))]

    taps = [
        s
        for s in samples((tmp_path / "metrics.prom").read_text())
        if s.name == "onecard_authorizations_total"
    ]
    assert sum(s.value for s in taps) == sum(report["taps"].values()) > 0
    by_decision: Counter[str] = Counter()
    by_scene: Counter[str] = Counter()
    for sample in taps:
        approved = sample.labels["decision"] == "approved"
        assert approved == (sample.labels["reason"] == "")
        by_decision["APPROVED" if approved else sample.labels["reason"]] += int(sample.value)
        by_scene[sample.labels["scene"]] += int(sample.value)
    assert dict(by_decision) == report["decisions"]
    assert dict(by_scene) == report["taps"]
    assert "metrics: " in done.stdout

    terminal = read_spans(tmp_path / "traces-sim.jsonl")
    hub = read_spans(tmp_path / "traces-hub.jsonl")
    tap = next(s for s in terminal if s["name"] == "tap canteen_purchase")
    trace_id = tap["context"]["trace_id"]
    mine = [s for s in hub if s["context"]["trace_id"] == trace_id]
    rpc = next(s for s in mine if s["name"] == AUTHORIZE)
    assert rpc["parent_id"] == tap["context"]["span_id"]
    commit = next(s for s in mine if s["name"] == "journal commit")
    assert commit["parent_id"] == rpc["context"]["span_id"]
    assert len([s for s in terminal if s["name"].startswith("tap ")]) == sum(report["taps"].values())
