"""The scenario runner's pure parts: the report's shape (DESIGN §10), the invariants' violation lines,
the collector's upload arithmetic, the catalogue and the traffic sizing."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from onecard_sim import curves
from onecard_sim.events import APPROVED, OFFLINE_APPROVED, TapEvent, UploadEvent
from onecard_sim.scenarios.catalog import NOT_BUILT, SCENARIOS, UnknownScenario, lookup
from onecard_sim.scenarios.collector import Collector, percentile
from onecard_sim.scenarios.invariants import CardFacts, LedgerTotals, RunFacts, check, mask_card_no
from onecard_sim.scenarios.report import REPORT_KEYS, Report, write_report
from onecard_sim.scenarios.traffic import mean_shape, scale_for

LOST_CARD = "A12345678"
START_MS = int(lookup("meal-rush").start_at.timestamp() * 1000)  # 2026-11-24 11:00 CST
BALANCED = LedgerTotals(0, {"wallet": 1_000_000, "merchant": 0, "bank_clearing": -1_000_000})


def _facts(**changes: object) -> RunFacts:
    facts = RunFacts(
        decisions={APPROVED: 10, "INSUFFICIENT_FUNDS": 1},
        ledger_before=BALANCED,
        ledger_after=LedgerTotals(0, {"wallet": 998_800, "merchant": 1_200, "bank_clearing": -1_000_000}),
        cards={LOST_CARD: CardFacts("lost", "enrolled"), "B00000001": CardFacts()},
        approvals={"B00000001": (10, START_MS)},
        device_net_purchases_fen=1_200,
    )
    for name, value in changes.items():
        setattr(facts, name, value)
    return facts


def test_a_clean_run_has_no_violation() -> None:
    assert check(_facts()) == []


def test_report_has_exactly_the_keys_of_design_section_10(tmp_path: Path) -> None:
    report = Report(
        scenario="meal-rush",
        seed=7,
        duration_s=5,
        simulated_s=7200,
        taps={"canteen_purchase": 3, "gate_entry": 2},
        decisions={"APPROVED": 4, "PIN_INCORRECT": 1},
        latency_ms={"canteen_purchase": {"p50": 1.5, "p99": 3.0}},
        uploaded=2,
        reuploaded=2,
    )
    doc = json.loads(write_report(report, tmp_path).read_text(encoding="utf-8"))
    assert tuple(doc) == REPORT_KEYS
    assert set(doc["offline"]) == {"uploaded", "reuploaded", "duplicates_applied"}
    assert doc["ledger"] == {"sum_fen": 0, "conserved": True}
    assert doc["taps"] == {"canteen_purchase": 3, "gate_entry": 2}
    assert doc["decisions"] == {"APPROVED": 4, "PIN_INCORRECT": 1}
    assert doc["latency_ms"]["canteen_purchase"] == {"p50": 1.5, "p99": 3.0}
    assert doc["violations"] == [] and report.ok
    assert doc["duration_s"] == 5.0 and doc["simulated_s"] == 7200.0


def test_a_ledger_that_does_not_sum_to_zero_is_a_violation_and_not_conserved() -> None:
    after = LedgerTotals(-5, {"wallet": 998_795, "merchant": 1_200, "bank_clearing": -1_000_000})
    lines = check(_facts(ledger_after=after))
    assert any("ledger does not sum to zero: -5 fen" in line for line in lines)
    doc = Report("meal-rush", 7, 5, 7200, ledger_sum_fen=-5, violations=lines).to_json()
    assert doc["ledger"] == {"sum_fen": -5, "conserved": False}


def test_a_reupload_that_books_again_is_a_duplicate_applied() -> None:
    collector = Collector(START_MS, 7200)
    for _ in range(3):
        collector.tap(_tap(OFFLINE_APPROVED, offline=True))
    collector.upload(UploadEvent("pos-1", transactions=3, booked=3, duplicates=0, rejected=0, reupload=False))
    collector.upload(UploadEvent("pos-1", transactions=3, booked=1, duplicates=2, rejected=0, reupload=True))
    assert (collector.uploads.uploaded, collector.uploads.reuploaded) == (3, 3)
    assert collector.uploads.duplicates_applied == 1
    lines = check(
        _facts(
            offline_stored=collector.offline_stored,
            uploaded=3,
            booked=3,
            reuploaded=3,
            duplicates_applied=collector.uploads.duplicates_applied,
        )
    )
    assert lines == [
        "1 offline transaction(s) were booked again by a re-upload"
        " (an upload must be idempotent by terminal and serial)"
    ]


def test_stored_offline_transactions_must_all_be_booked_or_rejected() -> None:
    lines = check(_facts(offline_stored=5, uploaded=3, booked=2, rejected=1))
    assert any("5 offline transaction(s) stored" in line and "answered 3" in line for line in lines)
    assert any("2 offline transaction(s) stored but never uploaded" in line for line in lines)
    assert check(_facts(offline_stored=5, uploaded=5, booked=4, rejected=1)) == []


def test_unexpected_errors_are_violations_and_expected_ones_are_not() -> None:
    decisions = {APPROVED: 10, "ERROR_UNAVAILABLE": 3}
    assert check(_facts(decisions=decisions, device_net_purchases_fen=None)) == [
        "3 tap(s) ended in ERROR_UNAVAILABLE (a broken call, not an answer)"
    ]
    expected = frozenset({"ERROR_UNAVAILABLE"})
    assert check(_facts(decisions=decisions, expected_errors=expected, device_net_purchases_fen=None)) == []


def test_an_approval_of_a_lost_card_names_the_card_masked_and_the_time() -> None:
    lines = check(_facts(approvals={LOST_CARD: (2, START_MS + 90_000)}))
    assert len(lines) == 1
    assert mask_card_no(LOST_CARD) in lines[0] and LOST_CARD not in lines[0]
    assert "lost" in lines[0] and "2 time(s)" in lines[0] and "11:01:30" in lines[0]


def test_an_offline_approval_is_checked_against_the_blocklist_only() -> None:
    suspended = {"C00000002": CardFacts("active", "suspended"), LOST_CARD: CardFacts("lost")}
    offline = {"C00000002": (1, START_MS), LOST_CARD: (1, START_MS)}
    lines = check(_facts(cards=suspended, offline_approvals=offline))
    assert len(lines) == 1 and "offline despite the blocklist" in lines[0]


def test_wallets_must_lose_exactly_what_canteen_windows_gain() -> None:
    leak = LedgerTotals(
        0, {"wallet": 998_700, "merchant": 1_200, "bank_clearing": -1_000_000, "suspense": 100}
    )
    lines = check(_facts(ledger_after=leak, device_net_purchases_fen=None))
    assert any(
        "wallet balances changed by -1300 fen but canteen windows by +1200 fen" in line for line in lines
    )
    assert any(line.startswith("suspense accounts changed by +100 fen") for line in lines)


def test_wallets_must_match_what_the_terminals_saw_approved() -> None:
    lines = check(_facts(device_net_purchases_fen=1_500))
    assert lines == [
        "wallet balances changed by -1200 fen, but the terminals saw approved purchases − refunds"
        " of 1500 fen (expected -1500)"
    ]


def test_percentile_is_nearest_rank() -> None:
    assert percentile([], 0.99) == 0.0
    assert percentile([float(v) for v in range(1, 101)], 0.99) == 99.0
    assert percentile([4.0, 1.0, 3.0, 2.0], 0.5) == 2.0


def test_latency_counts_online_answers_only() -> None:
    collector = Collector(START_MS, 7200)
    collector.tap(_tap(APPROVED, latency_ms=2.0))
    collector.tap(_tap(OFFLINE_APPROVED, offline=True))
    collector.tap(_tap("ERROR_DEADLINE_EXCEEDED", latency_ms=2000.0))
    assert collector.taps == {"canteen_purchase": 3}
    assert collector.latency_summary() == {"canteen_purchase": {"p50": 2.0, "p99": 2.0}}


def test_catalogue_names_and_clock() -> None:
    assert set(SCENARIOS) == {
        "meal-rush",
        "morning-gates",
        "offline-canteen",
        "lost-card-mid-rush",
        "exam-day",
        "bank-outage",
    }
    assert NOT_BUILT == {}  # every scenario of DESIGN §10 is built
    rush = lookup("meal-rush")
    assert rush.simulated_s == 7200 and rush.clock_speed(60) == 120
    assert rush.start_at.isoformat() == "2026-11-24T11:00:00+08:00" and rush.start_at.weekday() == 1
    with pytest.raises(UnknownScenario, match="meal-rush, morning-gates, offline-canteen"):
        lookup("tea-time")


def test_scale_gives_the_asked_number_of_arrivals() -> None:
    assert mean_shape(curves.constant, START_MS, 7200) == 1.0
    assert scale_for(600, curves.constant, START_MS, 7200, 60) == 10.0
    lunch = mean_shape(curves.meal_rush, START_MS, 7200)
    assert 0.5 < lunch < 1.0  # 11:00–13:00 holds the peak but not only the peak
    assert scale_for(0, curves.meal_rush, START_MS, 7200, 60) == 0.0


def _tap(outcome: str, *, offline: bool = False, latency_ms: float = 0.0) -> TapEvent:
    return TapEvent(
        scene="canteen_purchase",
        outcome=outcome,
        latency_ms=latency_ms,
        hub_ms=START_MS + 60_000,
        real_s=0.0,
        card_no="B00000001",
        terminal_id="pos-1",
        offline=offline,
    )
