"""`bank-outage`'s pure parts: the `bank` object of DESIGN §10, the conservation rule (the hub's bank
clearing flows against the bank simulator's balances), its place in `report.json`, and the wallet
invariant of a run where money also moves through a bank."""

from __future__ import annotations

import json
from pathlib import Path

from onecard_sim.scenarios.bank_invariants import BANK_KEYS, BankFacts, check_bank, clearing_change
from onecard_sim.scenarios.bank_parts import missing_bank_parts
from onecard_sim.scenarios.catalog import lookup
from onecard_sim.scenarios.invariants import LedgerTotals, RunFacts, check
from onecard_sim.scenarios.report import REPORT_KEYS, Report, write_report

# Top-ups of 30 000 fen took money out of the bank (hub clearing −30 000, bank accounts −30 000);
# a grant of 250 000 fen put money in (both +250 000).
GOOD = BankFacts(
    approved_during_outage=120,
    outage_played=True,
    not_final={"top_up": 0, "grant_item": 0},
    unexplained=0,
    bank_before_fen=10_000_000,
    bank_after_fen=10_220_000,
    clearing_before_fen=-5_000_000,
    clearing_after_fen=-4_780_000,
)


def _facts(**changes: object) -> BankFacts:
    return BankFacts(**{**GOOD.__dict__, **changes})


def test_a_good_run_keeps_every_bank_rule() -> None:
    verdict = check_bank(GOOD)
    assert verdict.violations == [] and verdict.conserved
    assert tuple(verdict.section) == BANK_KEYS
    assert verdict.section == {"approved_during_outage": 120, "not_final": 0, "unexplained": 0}


def test_money_the_bank_moved_but_the_hub_did_not_record_is_not_conserved() -> None:
    verdict = check_bank(_facts(bank_after_fen=10_215_000))  # a top-up of 5 000 applied, hub voided it
    assert not verdict.conserved
    assert verdict.violations == [
        "bank: money not conserved — the bank simulator's accounts changed by +215000 fen,"
        " the hub's bank clearing accounts by +220000 fen (difference -5000)"
    ]


def test_unread_balances_prove_nothing() -> None:
    verdict = check_bank(_facts(bank_after_fen=None))
    assert not verdict.conserved and "could not be read" in verdict.violations[0]


def test_not_final_unexplained_and_no_approvals_during_the_outage_are_violations() -> None:
    verdict = check_bank(
        _facts(approved_during_outage=0, not_final={"top_up": 2, "grant_item": 1}, unexplained=3)
    )
    assert verdict.section == {"approved_during_outage": 0, "not_final": 3, "unexplained": 3}
    assert verdict.conserved  # the balances still agree
    assert len(verdict.violations) == 3
    assert "no wallet approval while the bank was down" in verdict.violations[0]
    assert "3 bank operation(s) not final" in verdict.violations[1]
    assert "grant_item 1, top_up 2" in verdict.violations[1]
    assert "left 3 difference(s) unexplained" in verdict.violations[2]


def test_an_outage_never_played_and_skipped_parts_are_said() -> None:
    verdict = check_bank(_facts(outage_played=False, skipped=("grants (GrantsClient missing)",)))
    assert verdict.violations == [
        "bank: the outage was not played (the bank simulator never went down)",
        "bank: not played — grants (GrantsClient missing)",
    ]


def test_clearing_change_reads_the_ledger_kinds() -> None:
    assert clearing_change({"bank_clearing": -100, "wallet": 100}, {"bank_clearing": -70}) == 30
    assert clearing_change({}, {}) == 0


def test_the_bank_object_sits_after_ledger_and_conservation_includes_the_bank(tmp_path: Path) -> None:
    report = Report(
        scenario="bank-outage",
        seed=7,
        duration_s=5,
        simulated_s=7200,
        bank_conserved=False,
        sections={"bank": check_bank(GOOD).section},
    )
    doc = json.loads(write_report(report, tmp_path).read_text(encoding="utf-8"))
    keys = list(doc)
    assert keys[keys.index("ledger") + 1] == "bank"
    assert [k for k in keys if k != "bank"] == list(REPORT_KEYS)
    assert doc["ledger"] == {"sum_fen": 0, "conserved": False}  # the sum is 0 but the bank disagrees
    assert doc["bank"] == {"approved_during_outage": 120, "not_final": 0, "unexplained": 0}


def test_with_bank_flows_only_the_canteen_windows_must_mirror_the_devices() -> None:
    before = LedgerTotals(0, {"wallet": 1_000, "merchant": 0, "bank_clearing": -1_000, "grant_pool": 0})
    # A top-up of 500 and purchases of 300: wallets +200, merchants +300, clearing −500.
    after = LedgerTotals(0, {"wallet": 1_200, "merchant": 300, "bank_clearing": -1_500, "grant_pool": 0})
    facts = RunFacts(
        decisions={"APPROVED": 3},
        ledger_before=before,
        ledger_after=after,
        cards={},
        device_net_purchases_fen=300,
        bank_flows=True,
    )
    assert check(facts) == []
    facts.device_net_purchases_fen = 400
    assert check(facts) == [
        "canteen windows changed by +300 fen, but the terminals saw approved purchases − refunds of 400 fen"
    ]
    facts.bank_flows = False  # a scenario without a bank: the top-up itself is a violation
    assert any("bank_clearing accounts changed" in line for line in check(facts))


def test_bank_outage_is_in_the_catalogue_with_its_outage_inside_the_run() -> None:
    spec = lookup("bank-outage")
    assert spec.bank is not None and spec.canteen
    assert 0 < spec.bank.outage_start_at < spec.bank.outage_end_at < 1
    assert spec.simulated_s == 7200  # the lunch rush


def test_every_part_bank_outage_drives_is_built() -> None:
    assert missing_bank_parts() == []
