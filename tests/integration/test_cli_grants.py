"""`onecard grants …` against a real hub paying into a bank: submit from CSV (bad lines listed,
exit 1), approve, show, notices, coverage."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from onecard_hub.domain.clock import ManualClock
from tests.integration.cli_runner import CLI, runner
from tests.integration.grant_bank import FakeBank, running_fake_bank
from tests.integration.grant_fixtures import ADMIN, YEAR, hub_with_bank, students_with_cards


@pytest.fixture
def cli(capsys: pytest.CaptureFixture[str]) -> CLI:
    return runner(capsys)


async def test_a_batch_from_csv_through_the_command_line(
    campus_dir: Path, clock: ManualClock, cli: CLI, tmp_path: Path
) -> None:
    async with running_fake_bank(FakeBank()) as target, hub_with_bank(campus_dir, clock, target) as hub:
        school = sorted(hub.hub.campus.schools)[0]
        (a, _), (b, _) = students_with_cards(hub, school, 2)
        sheet = tmp_path / "grants.csv"
        sheet.write_text(f"student_id,amount_fen\n{a},200000\n{b},abc\n{b},150000\n", encoding="utf-8")
        base = ("--hub", hub.target, "--operator", ADMIN)
        args = ("grants", "submit", str(sheet), "--school", school, "--batch", "C1", "--year", YEAR)
        refused = await cli(*base, "--json", *args, "--type", "national-grant")
        assert refused.code == 1
        assert not refused.json().get("accepted") and refused.json()["errors"][0]["line"] == 3
        ran = await cli(*base, *args, "--type", "national-grant", "--accept-valid-lines")
        assert ran.code == 1 and "line errors" in ran.out  # made, with a line left out
        ran = await cli(*base, "grants", "approve", "C1", "--school", school)
        assert ran.code == 0, ran.err
        for _ in range(200):
            shown = await cli(*base, "--json", "grants", "show", "C1", "--school", school)
            if shown.json()["batch"]["status"] == "BATCH_STATUS_DONE":
                break
            await asyncio.sleep(0.05)
        assert [i["status"] for i in shown.json()["batch"]["items"]] == ["ITEM_STATUS_PAID"] * 2
        ran = await cli(*base, "grants", "show", "C1", "--school", school)
        assert ran.code == 0 and "paid" in ran.out
        ran = await cli(*base, "grants", "notices", "C1", "--school", school)
        assert ran.code == 0, ran.err
        ran = await cli(*base, "--json", "grants", "coverage", "--school", school, "--year", YEAR)
        assert ran.code == 0 and len(ran.json()["types_not_covered"]) == 3
