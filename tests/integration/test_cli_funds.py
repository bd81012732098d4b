"""`onecard topup|review|bank …` against a real hub and the bank simulator."""

from __future__ import annotations

from pathlib import Path

import pytest

from onecard_client.campus import CampusCredentials
from onecard_hub.domain.clock import ManualClock
from tests.integration.cli_runner import CLI, runner
from tests.integration.topup_fixtures import ADMIN, cards, speed_up, until_final, world


@pytest.fixture
def cli(capsys: pytest.CaptureFixture[str]) -> CLI:
    return runner(capsys)


async def test_top_up_review_and_bank_from_the_command_line(
    campus_dir: Path, clock: ManualClock, creds: CampusCredentials, tmp_path: Path, cli: CLI
) -> None:
    async with world(campus_dir, clock, tmp_path) as w:
        card = cards(creds, 1)[0]
        base = ("--hub", w.hub.target, "--operator", ADMIN)
        ran = await cli(*base, "topup", "add", card.student_id, "1500")
        assert ran.code == 0 and "posted" in ran.out, ran.err
        shown = await cli(*base, "--json", "topup", "add", card.student_id, "0")
        assert shown.code == 1 and "amount_fen" in shown.err + shown.out
        ran = await cli(*base, "topup", "auto", card.student_id, "--threshold", "1000", "--amount", "5000")
        assert ran.code == 0 and "top up" in ran.out, ran.err
        ran = await cli(*base, "bank", "show", card.student_id)
        assert ran.code == 0 and card.bank_code in ran.out, ran.err

        speed_up(w.hub, max_reversals=1)
        await w.bank.control.set_faults(outage_s=60)
        ran = await cli(*base, "--json", "topup", "add", card.student_id, "700")
        topup_id = ran.json()["topup"]["topup_id"]
        await until_final(w.client, topup_id)
        ran = await cli(*base, "review", "list")
        assert ran.code == 0 and topup_id in ran.out
        await w.bank.control.set_faults(outage_s=0)
        ran = await cli(*base, "review", "resolve", topup_id, "voided", "--note", "bank: never debited")
        assert ran.code == 0 and "not_found" in ran.out, ran.err
