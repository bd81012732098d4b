"""The bank gateway seen through telemetry, with the bank simulator: a top-up is a Debit counted by bank,
operation and outcome, its states counted once durable, and a CLIENT span under the TopUp call's span
whose trace context reached the bank; a bank that does not answer counts `uncertain`."""

from __future__ import annotations

from pathlib import Path

from onecard.funds.v1 import funds_service_pb2 as pb
from onecard_client import ClientConfig, FundsClient
from onecard_client.campus import CampusCredentials
from onecard_hub.domain.clock import ManualClock
from onecard_hub.server import running_hub
from onecard_sim.bank import running_bank
from tests.conftest import hub_config
from tests.integration.telemetry_helpers import read_spans, scrape, value
from tests.integration.topup_fixtures import ADMIN, cards, rid, speed_up, until_final

TOP_UP = "onecard.funds.v1.FundsService/TopUp"
DEBIT = "onecard.bank.v1.BankService/Debit"


async def test_bank_calls_and_top_up_states_are_counted_and_traced(
    campus_dir: Path, clock: ManualClock, creds: CampusCredentials, tmp_path: Path
) -> None:
    posted_card, failing_card = cards(creds, 2)
    trace_file = tmp_path / "hub-traces.jsonl"
    async with running_bank(tmp_path / "bank.db", campus_dir / "hub.keys") as bank:
        config = hub_config(campus_dir, bank=bank.target, metrics_listen="127.0.0.1:0", trace_file=trace_file)
        async with (
            running_hub(config, clock) as hub,
            FundsClient(ADMIN, ClientConfig(target=hub.target)) as funds,
        ):
            speed_up(hub, max_reversals=2)
            posted = (await funds.top_up(rid(), 5_000, student_id=posted_card.student_id)).topup
            assert posted.state == pb.TOP_UP_STATE_POSTED
            await bank.control.set_faults(outage_s=60)  # every BankService call: UNAVAILABLE
            pending = (await funds.top_up(rid(), 3_000, student_id=failing_card.student_id)).topup
            await until_final(funds, pending.topup_id)
            await bank.control.set_faults(outage_s=0)
            assert hub.telemetry is not None
            text = await scrape(hub.telemetry.metrics_url)
    bank_code = posted_card.bank_code
    assert value(text, "onecard_bank_calls_total", bank=bank_code, operation="Debit", outcome="posted") == 1
    assert value(text, "onecard_bank_calls_total", outcome="uncertain") >= 1
    assert value(text, "onecard_bank_call_seconds_count", operation="Debit") >= 2
    assert value(text, "onecard_topups_total", state="pending") == 2
    assert value(text, "onecard_topups_total", state="posted") == 1
    assert value(text, "onecard_topups_total", state="manual_review") == 1

    spans = read_spans(trace_file)
    top_up = next(s for s in spans if s["name"] == TOP_UP)
    debit = next(
        s for s in spans if s["name"] == DEBIT and s["context"]["trace_id"] == top_up["context"]["trace_id"]
    )
    assert debit["kind"] == "SpanKind.CLIENT"
    assert debit["attributes"]["onecard.bank"] == bank_code
    assert debit["attributes"]["onecard.bank.outcome"] == "posted"
