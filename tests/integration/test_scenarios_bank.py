"""`bank-outage` end to end, small (1 school, 200 students, 6 s): its own hub started with `--bank`
beside the bank simulator, real simulated devices, top-ups (圈存), auto top-ups and a grant batch
through the hub while the bank goes down mid-rush and comes back. Run as a tester would:
`python -m onecard_sim.cli`."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from onecard_sim.scenarios.bank_invariants import BANK_KEYS
from onecard_sim.scenarios.catalog import NOT_BUILT
from onecard_sim.scenarios.report import REPORT_KEYS

SMALL = ("--schools", "1", "--students", "200", "--gates", "2", "--pos", "4", "--duration", "6", "--no-live")


@pytest.mark.slow
@pytest.mark.skipif("bank-outage" in NOT_BUILT, reason=NOT_BUILT.get("bank-outage", ""))
def test_bank_outage_keeps_canteens_approving_and_ends_with_every_bank_operation_final(
    tmp_path: Path,
) -> None:
    out = tmp_path / "bank-outage"
    done = subprocess.run(
        [sys.executable, "-m", "onecard_sim.cli", "scenario", "bank-outage", *SMALL, "--out", str(out)],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    report = out / "report.json"
    assert report.is_file(), f"no report.json; output:\n{done.stdout}\n{done.stderr}"
    doc = json.loads(report.read_text(encoding="utf-8"))
    assert done.returncode == 0, f"{doc['violations']}\n{done.stdout}\n{done.stderr}"
    assert doc["violations"] == []
    keys = list(doc)
    assert keys[keys.index("ledger") + 1] == "bank"  # DESIGN §10's keys, `bank` right after `ledger`
    assert [k for k in keys if k != "bank"] == list(REPORT_KEYS)
    assert tuple(doc["bank"]) == BANK_KEYS
    assert doc["bank"]["approved_during_outage"] > 0  # canteens kept approving from wallets
    assert doc["bank"]["not_final"] == 0 and doc["bank"]["unexplained"] == 0
    assert doc["ledger"] == {"sum_fen": 0, "conserved": True}
    assert doc["decisions"].get("APPROVED", 0) > 0
    assert not [name for name in doc["decisions"] if name.startswith("ERROR_")]
    assert "bank: approved during outage" in " ".join(done.stdout.split())
    assert "every invariant held" in done.stdout
