"""The `onecard` command line against a real hub: the usage report in its three formats,
terminals, refusals (exit 1, the typed error printed), bad usage (exit 2), mutual TLS."""

from __future__ import annotations

import csv
import io
import subprocess
import sys
from pathlib import Path

import pytest

from onecard.auth.v1 import authorization_service_pb2 as auth_pb
from onecard_client import PermissionDeniedError
from onecard_client.campus import CampusCredentials
from onecard_client.testing import hub_for_tests
from onecard_hub.server import RunningHub
from tests.helpers import Campus
from tests.integration.cli_runner import CLI, runner

ADMIN = "province-admin"
ENTRY = auth_pb.SCENE_GATE_ENTRY
BUY = auth_pb.SCENE_CANTEEN_PURCHASE


@pytest.fixture
def cli(capsys: pytest.CaptureFixture[str]) -> CLI:
    return runner(capsys)


async def _taps(campus: Campus) -> None:
    """Two students use their cards (three approvals), and a lost card is declined at a gate."""
    buyer = campus.card(skip=1)
    approved = [
        await campus.send(campus.chip(campus.card(), campus.gate(), ENTRY)),
        await campus.send(campus.qr(buyer, campus.pos(), BUY, amount_fen=600)),
        await campus.send(campus.chip(buyer, campus.pos(), BUY, amount_fen=500)),
    ]
    assert all(r.decision == auth_pb.DECISION_APPROVED for r in approved)
    declined = await campus.send(campus.chip(campus.card(status="lost"), campus.gate(), ENTRY))
    assert declined.decision == auth_pb.DECISION_DECLINED


async def test_report_as_csv_json_and_table(
    hub: RunningHub, campus: Campus, cli: CLI, tmp_path: Path
) -> None:
    await _taps(campus)
    school = campus.school()
    base = ("--hub", hub.target, "--operator", ADMIN)

    out = tmp_path / "usage.csv"
    ran = await cli(*base, "report", "--format", "csv", "--out", str(out))
    assert ran.code == 0, ran.err
    rows = {r["school_id"]: r for r in csv.DictReader(io.StringIO(out.read_text(encoding="utf-8")))}
    assert set(rows) == set(campus.creds.schools)
    row = rows[school]
    assert (row["students_active"], row["gate_entry_approved"], row["gate_entry_declined"]) == ("2", "1", "1")
    assert (row["canteen_purchase_approved"], row["exam_check_in_approved"]) == ("2", "0")
    assert float(row["usage_rate"]) == pytest.approx(round(2 / int(row["students"]), 4))
    assert row["first_date"] == "2026-11-18" and row["last_date"] == "2026-11-24"
    other = rows[campus.school(1)]
    assert other["students_active"] == "0" and int(other["students"]) > 0

    ran = await cli(*base, "--json", "report", "--school", school)
    assert ran.code == 0, ran.err
    doc = ran.json()
    (entry,) = doc["schools"]
    assert entry["school_id"] == school and entry["students_active"] == 2
    assert entry["taps"]["canteen_purchase"] == {"approved": 2, "declined": 0}
    assert entry["cards_issued"] <= entry["students"] and entry["ecards_issued"] <= entry["cards_issued"]
    assert doc["totals"]["students_active"] == 2 and doc["window_days"] == 7
    assert (await cli(*base, "report", "--school", school, "--format", "json")).json() == doc

    ran = await cli(*base, "report")
    assert ran.code == 0, ran.err
    assert school in ran.out and "all schools" in ran.out and "canteen purchase" in ran.out


async def test_a_clerk_reports_on_their_school_and_is_refused_another(
    hub: RunningHub, creds: CampusCredentials, cli: CLI
) -> None:
    first, second = creds.schools[0], creds.schools[1]
    ran = await cli("--hub", hub.target, "--operator", f"{first}-clerk", "--json", "report")
    assert ran.code == 0, ran.err
    assert [s["school_id"] for s in ran.json()["schools"]] == [first]

    ran = await cli("--hub", hub.target, "--operator", f"{first}-clerk", "report", "--school", second)
    assert ran.code == 1
    assert "PERMISSION_DENIED" in ran.err and "reason=OTHER_SCHOOL" in ran.err and ran.out == ""

    ran = await cli("--hub", hub.target, "--operator", ADMIN, "--json", "report", "--school", "nowhere")
    assert ran.code == 1
    error = ran.json()["error"]
    assert (error["code"], error["reason"], error["field"]) == ("NOT_FOUND", "NOT_FOUND", "school_id")

    ran = await cli("--hub", hub.target, "--operator", "nobody", "report")
    assert ran.code == 1 and "UNAUTHENTICATED" in ran.err and "CALLER_UNKNOWN" in ran.err


async def test_terminal_disable_and_enable(hub: RunningHub, campus: Campus, cli: CLI) -> None:
    gate = campus.gate()
    base = ("--hub", hub.target, "--operator", f"{campus.school()}-clerk")
    ran = await cli(*base, "--json", "terminal", "disable", gate.terminal_id, "--request-id", "cli-test-1")
    assert ran.code == 0, ran.err
    doc = ran.json()
    assert doc["request_id"] == "cli-test-1" and doc["terminal"]["enabled"] is False
    with pytest.raises(PermissionDeniedError) as refused:
        await campus.send(campus.chip(campus.card(), gate, ENTRY))
    assert refused.value.reason == "TERMINAL_DISABLED"

    # The same request_id and body: the original answer. Another body: refused, nothing changed.
    again = await cli(*base, "--json", "terminal", "disable", gate.terminal_id, "--request-id", "cli-test-1")
    assert again.json() == doc
    reused = await cli(*base, "terminal", "enable", gate.terminal_id, "--request-id", "cli-test-1")
    assert reused.code == 1 and "IDEMPOTENCY_KEY_REUSED" in reused.err

    ran = await cli(*base, "terminal", "enable", gate.terminal_id)
    assert ran.code == 0, ran.err
    assert "request_id cli-" in ran.out and gate.terminal_id in ran.out
    assert (await campus.send(campus.chip(campus.card(), gate, ENTRY))).decision == auth_pb.DECISION_APPROVED

    listed = await cli(*base, "--json", "terminal", "list", "--school", campus.school())
    assert gate.terminal_id in {t["terminal_id"] for t in listed.json()["terminals"]}
    other = await cli(*base, "terminal", "list", "--school", campus.school(1))
    assert other.code == 1 and "OTHER_SCHOOL" in other.err


async def test_ledger_and_debts(hub: RunningHub, campus: Campus, cli: CLI) -> None:
    ran = await cli("--hub", hub.target, "--operator", ADMIN, "--json", "ledger")
    assert ran.code == 0, ran.err
    assert int(ran.json()["sum_fen"]) == 0
    ran = await cli("--hub", hub.target, "--operator", ADMIN, "ledger")
    assert "balanced" in ran.out
    ran = await cli("--hub", hub.target, "--operator", f"{campus.school()}-clerk", "--json", "debts")
    assert ran.code == 1 and ran.json()["error"]["field"] == "school_id"  # a clerk names their school
    ran = await cli("--hub", hub.target, "--operator", ADMIN, "--json", "debts", "--school", campus.school())
    assert ran.code == 0 and ran.json()["debts"] == []


@pytest.mark.parametrize(
    "args",
    [
        [],
        ["--operator", ADMIN],
        ["--operator", ADMIN, "report", "--format", "xml"],
        ["--operator", ADMIN, "no-such-command"],
        ["--operator", ADMIN, "terminal"],
        ["--operator", ADMIN, "report", "--bogus"],
        ["report"],  # no operator
        ["--operator", ADMIN, "--tls", "/no/such/folder", "report"],
        ["--operator", ADMIN, "school", "scenes", "S", "--live", "gate,grants"],
        ["--operator", ADMIN, "reconcile"],  # --date is required
    ],
)
async def test_bad_usage_exits_2(cli: CLI, args: list[str]) -> None:
    ran = await cli("--hub", "127.0.0.1:1", *args)
    assert ran.code == 2
    assert ran.err


async def test_an_unreachable_hub_is_a_refusal_with_its_code(cli: CLI) -> None:
    ran = await cli("--hub", "127.0.0.1:1", "--operator", ADMIN, "--deadline", "0.5", "report")
    assert ran.code == 1 and "UNAVAILABLE" in ran.err


async def test_over_mutual_tls_with_the_operators_certificate(cli: CLI) -> None:
    async with hub_for_tests(tls=True) as hub:
        assert hub.pki_dir is not None
        tls = ("--hub", hub.target, "--tls", str(hub.pki_dir))
        ran = await cli(*tls, "--operator", ADMIN, "--json", "report")
        assert ran.code == 0, ran.err
        assert [s["school_id"] for s in ran.json()["schools"]] == [hub.school_id]
        plain = await cli("--hub", hub.target, "--operator", ADMIN, "--deadline", "1", "report")
        assert plain.code == 1  # a plain-text client cannot talk to a TLS hub


def test_the_installed_command_runs() -> None:
    onecard = Path(sys.executable).with_name("onecard")
    done = subprocess.run([str(onecard), "--help"], capture_output=True, text=True, check=False)
    assert done.returncode == 0 and "report" in done.stdout
    done = subprocess.run([str(onecard), "report"], capture_output=True, text=True, check=False, env={})
    assert done.returncode == 2 and "--operator" in done.stderr
