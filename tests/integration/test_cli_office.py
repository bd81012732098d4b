"""`onecard card …`, `onecard student …`, `onecard school scenes` and the read-only scene commands
against a real hub: each changes what the next tap sees, refusals exit 1 with their reason, and
secrets (PINs, ID numbers, card keys) never appear on the command line or in the output."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from onecard.auth.v1 import authorization_service_pb2 as auth_pb
from onecard_client.campus import CardCredential
from onecard_hub.server import RunningHub
from tests.helpers import Campus, name
from tests.integration.card_office_helpers import holders
from tests.integration.cli_runner import CLI, runner
from tests.unit.test_enrollment import id_number

ADMIN = "province-admin"
ENTRY = auth_pb.SCENE_GATE_ENTRY
BUY = auth_pb.SCENE_CANTEEN_PURCHASE


@pytest.fixture
def cli(capsys: pytest.CaptureFixture[str]) -> CLI:
    return runner(capsys)


def _adult_card(campus: Campus, campus_dir: Path) -> tuple[CardCredential, str]:
    """An active card of an enrolled adult, and the holder's ID number."""
    known = holders(campus_dir)
    for skip in range(40):
        card = campus.card(skip=skip)
        if not known[card.card_no].minor:
            return card, known[card.card_no].id_number
    raise AssertionError("no adult holder in the seeded campus")


async def test_loss_unlock_show_and_audit(
    hub: RunningHub, campus: Campus, cli: CLI, campus_dir: Path
) -> None:
    card, holder_id = _adult_card(campus, campus_dir)
    base = ("--hub", hub.target, "--operator", f"{campus.school()}-clerk")

    ran = await cli(*base, "--json", "card", "report-loss", card.card_no)
    assert ran.code == 0, ran.err
    assert ran.json()["card"]["identity_status"] == "IDENTITY_STATUS_LOST" and ran.json()["request_id"]
    declined = await campus.send(campus.chip(card, campus.gate(), ENTRY))
    assert name(declined.decline_reason) == "CARD_REPORTED_LOST"

    wrong = await cli(*base, "card", "unlock", card.card_no, env={"ONECARD_HOLDER_ID_NUMBER": id_number()})
    assert wrong.code == 1 and "IDENTITY_CHECK_FAILED" in wrong.err
    ran = await cli(*base, "card", "unlock", card.card_no, env={"ONECARD_HOLDER_ID_NUMBER": holder_id})
    assert ran.code == 0, ran.err
    assert holder_id not in ran.out and "request_id cli-" in ran.out
    approved = await campus.send(campus.chip(card, campus.gate(), ENTRY))
    assert approved.decision == auth_pb.DECISION_APPROVED

    shown = await cli(*base, "--json", "card", "show", card.card_no)
    assert shown.json()["card"]["identity_status"] == "IDENTITY_STATUS_ACTIVE"
    by_student = await cli(*base, "--json", "card", "show", "--student", card.student_id)
    assert by_student.json()["card"]["card_no"] == card.card_no
    audit = await cli(*base, "--json", "card", "audit", "--student", card.student_id)
    actions = [e["action"] for e in audit.json()["entries"]]
    assert len(actions) >= 2 and holder_id not in audit.out

    other = await cli(*base, "card", "freeze", campus.card(school=1).card_no)
    assert other.code == 1 and "OTHER_SCHOOL" in other.err
    missing = await cli(*base, "--json", "card", "freeze", "JX-NO-SUCH-CARD")
    assert missing.code == 1 and missing.json()["error"]["code"] == "NOT_FOUND"
    both = await cli(*base, "card", "show", card.card_no, "--student", card.student_id)
    assert both.code == 2


async def test_enroll_issue_and_enable_a_card(
    hub: RunningHub, campus: Campus, cli: CLI, tmp_path: Path
) -> None:
    school = campus.school()
    base = ("--hub", hub.target, "--operator", f"{school}-clerk")
    number = id_number(born="20000305", seq="871")
    ran = await cli(
        *base,
        "--json",
        "student",
        "enroll",
        "S-CLI-1",
        "--school",
        school,
        "--name",
        "李小明",
        "--birth-date",
        "2000-03-05",
        "--group",
        "day",
        env={"ONECARD_ID_NUMBER": number},
    )
    assert ran.code == 0, ran.err
    assert number not in ran.out and "李小明" not in ran.out  # masked

    keys = tmp_path / "card-keys.json"
    ran = await cli(
        *base, "--json", "card", "issue", "S-CLI-1", "--bank", "JXB", "--keys-out", str(keys),
        env={"ONECARD_PIN": "852963"},
    )  # fmt: skip
    assert ran.code == 0, ran.err
    issued = ran.json()
    assert "personalization" not in issued and "card_key" not in ran.out and "852963" not in ran.out
    assert os.stat(keys).st_mode & 0o777 == 0o600
    assert json.loads(keys.read_text())["card_no"] == issued["card"]["card_no"]

    shown = await cli(*base, "--json", "student", "show", "S-CLI-1")
    assert issued["card"]["card_no"] in shown.json()["student"]["card_nos"]
    no_pin = await cli(*base, "card", "issue", "S-CLI-1", "--bank", "JXB")  # no PIN anywhere: usage
    assert no_pin.code == 2 and "ONECARD_PIN" in no_pin.err


async def test_student_status_follows_at_the_next_tap(hub: RunningHub, campus: Campus, cli: CLI) -> None:
    card = campus.card(skip=5)
    base = ("--hub", hub.target, "--operator", f"{campus.school()}-clerk")
    ran = await cli(*base, "--json", "student", "suspend", card.student_id)
    assert ran.code == 0, ran.err
    declined = await campus.send(campus.chip(card, campus.gate(), ENTRY))
    assert name(declined.decline_reason) == "STUDENT_SUSPENDED"
    again = await cli(*base, "student", "suspend", card.student_id)
    assert again.code == 1 and "ILLEGAL_TRANSITION" in again.err
    assert (await cli(*base, "student", "resume", card.student_id)).code == 0
    approved = await campus.send(campus.chip(card, campus.gate(), ENTRY))
    assert approved.decision == auth_pb.DECISION_APPROVED


async def test_import_roster_reports_every_row(
    hub: RunningHub, campus: Campus, cli: CLI, tmp_path: Path
) -> None:
    roster = tmp_path / "roster.csv"
    good = id_number(born="20010101", seq="611")
    roster.write_text(
        "student_id,name,id_number,birth_date,group\n"
        f"S-ROSTER-1,赵六,{good},2001-01-01,boarder\n"
        "S-ROSTER-2,钱七,not-a-number,2001-01-01,boarder\n",
        encoding="utf-8",
    )
    base = ("--hub", hub.target, "--operator", f"{campus.school()}-clerk")
    ran = await cli(*base, "--json", "student", "import-roster", str(roster), "--school", campus.school())
    assert ran.code == 1  # a row was rejected: the report says which and why
    doc = ran.json()
    assert (doc["enrolled"], doc["rejected"]) == (1, 1) and len(doc["rows"]) == 2
    assert good not in ran.out
    missing = await cli(*base, "student", "import-roster", str(tmp_path / "none.csv"), "--school", "x")
    assert missing.code == 2


async def test_school_scenes_roll_out(hub: RunningHub, campus: Campus, cli: CLI) -> None:
    school = campus.school()
    admin = ("--hub", hub.target, "--operator", ADMIN)
    ran = await cli(*admin, "--json", "school", "scenes", school, "--live", "gate,library")
    assert ran.code == 0, ran.err
    assert ran.json()["school"]["live_scenes"] == [
        "SCENE_GATE_ENTRY",
        "SCENE_GATE_EXIT",
        "SCENE_LIBRARY_BORROW",
        "SCENE_LIBRARY_RETURN",
    ]
    declined = await campus.send(campus.chip(campus.card(), campus.pos(), BUY, amount_fen=300))
    assert name(declined.decline_reason) == "SCENE_NOT_LIVE"
    clerk = await cli(
        "--hub", hub.target, "--operator", f"{school}-clerk", "school", "scenes", school, "--live", ""
    )
    assert clerk.code == 1 and "PERMISSION_DENIED" in clerk.err
    shown = await cli(*admin, "school", "show", school)
    assert shown.code == 0 and "library_borrow" in shown.out and "canteen_purchase" not in shown.out


async def test_read_only_scene_commands(hub: RunningHub, campus: Campus, cli: CLI) -> None:
    school = campus.school()
    base = ("--hub", hub.target, "--operator", f"{school}-clerk", "--json")
    overdue = await cli(*base, "library", "overdue", "--school", school)
    assert overdue.code == 0, overdue.err
    assert overdue.json().get("loans", []) == []
    misuse = await cli(*base, "misuse", "--school", school)
    assert misuse.code == 0, misuse.err
    attendance = await cli(*base, "exam", "attendance", "no-such-session")
    assert attendance.code == 1 and attendance.json()["error"]["code"] == "NOT_FOUND"
