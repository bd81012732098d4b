"""No personal data in what the hub shows of itself: after taps (approved and declined, chip and QR),
refusals naming a card, a loss report and an unlock with the holder's ID number, neither the scraped
/metrics, nor the trace file, nor the JSON log holds any card number, ID number or name of the seeded
campus."""

from __future__ import annotations

import io
import logging
import sqlite3
from pathlib import Path

import pytest

from onecard.auth.v1 import authorization_service_pb2 as pb
from onecard_client import CardOfficeClient, ClientConfig, NotFoundError, PermissionDeniedError
from onecard_client.campus import CampusCredentials
from onecard_hub.domain.clock import ManualClock
from onecard_hub.logs import JsonFormatter
from onecard_hub.server import running_hub
from tests.conftest import hub_config
from tests.helpers import Campus, new_request_id
from tests.integration.card_office_helpers import holders
from tests.integration.telemetry_helpers import scrape

BUY, ENTRY = pb.SCENE_CANTEEN_PURCHASE, pb.SCENE_GATE_ENTRY


def _names(campus_dir: Path) -> list[str]:
    with sqlite3.connect(campus_dir / "hub.db") as db:
        return [str(row[0]) for row in db.execute("SELECT name FROM students")]


async def test_no_card_number_id_number_or_name_in_metrics_traces_or_logs(
    campus_dir: Path, clock: ManualClock, creds: CampusCredentials
) -> None:
    log = io.StringIO()
    handler = logging.StreamHandler(log)
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger()
    level = root.level
    root.addHandler(handler)
    root.setLevel(logging.INFO)
    trace_file = campus_dir / "hub-traces.jsonl"
    config = hub_config(campus_dir, metrics_listen="127.0.0.1:0", trace_file=trace_file)
    try:
        async with running_hub(config, clock) as running:
            campus = Campus(creds, clock, running.target)
            pos, gate = campus.pos(), campus.gate()
            office = CardOfficeClient("province-admin", ClientConfig(target=running.target))
            try:
                for skip in range(4):
                    card = campus.card(skip=skip)
                    await campus.send(campus.chip(card, pos, BUY, amount_fen=900))
                    await campus.send(campus.qr(card, gate, ENTRY))
                await campus.send(campus.chip(campus.card(status="lost"), gate, ENTRY))
                await campus.send(campus.qr(campus.card(enrollment="suspended"), pos, BUY, amount_fen=500))
                await campus.send(campus.chip(campus.card(school=1), gate, ENTRY))
                with pytest.raises(NotFoundError):
                    await campus.client(pos).wallet_balance("Z99999999")
                with pytest.raises(PermissionDeniedError):
                    await campus.client(pos).wallet_balance(campus.card(school=1).card_no)
                lost = campus.card(skip=5)
                holder = holders(campus_dir)[lost.card_no]
                await office.report_loss(new_request_id(), lost.card_no)
                await office.unlock(new_request_id(), lost.card_no, holder.id_number)
                assert running.telemetry is not None
                metrics = await scrape(running.telemetry.metrics_url)
            finally:
                await office.close()
                await campus.close()
    finally:
        root.removeHandler(handler)
        root.setLevel(level)
    traces, logged = trace_file.read_text(encoding="utf-8"), log.getvalue()
    assert "onecard_authorizations_total" in metrics and "AuthorizationService/Authorize" in traces
    assert "hub state loaded" in logged

    personal = {
        "card number": [card.card_no for card in creds.cards],
        "ID number": [h.id_number for h in holders(campus_dir).values()],
        "name": _names(campus_dir),
    }
    assert all(personal.values())
    for what, values in personal.items():
        for text, where in ((metrics, "/metrics"), (traces, "the trace file"), (logged, "the log")):
            found = sorted({v for v in values if v in text})
            assert not found, f"{what}s in {where}: {found[:5]}"
