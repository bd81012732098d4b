"""Pure parts of issue 5's bank side: masked account numbers, outcomes, the `--bank` flag, fault draws."""

from __future__ import annotations

import argparse

import pytest

from onecard_hub.config import add_serve_flags, config_from
from onecard_hub.domain.bank import BankOutcome, mask_account_no
from onecard_sim.bank.faults import BankFaults, Fate, FaultPlan, PlanError, check_plan


def test_account_numbers_are_masked_to_their_last_four_digits() -> None:
    assert mask_account_no("6210000000000123") == "****0123"
    assert mask_account_no("123") == "***"


def test_only_uncertain_is_not_definite() -> None:
    assert [o for o in BankOutcome if not o.definite] == [BankOutcome.UNCERTAIN]


def test_bank_flag_and_variable() -> None:
    parser = argparse.ArgumentParser()
    add_serve_flags(parser)
    assert config_from(parser.parse_args(["--db", "x.db"]), env={}).bank == ""
    assert config_from(parser.parse_args(["--db", "x.db"]), env={"ONECARD_BANK": "h:1"}).bank == "h:1"
    args = parser.parse_args(["--db", "x.db", "--bank", "h:2"])
    assert config_from(args, env={"ONECARD_BANK": "h:1"}).bank == "h:2"


def test_fault_plans_are_checked() -> None:
    with pytest.raises(PlanError):
        check_plan(FaultPlan(error_rate=0.6, timeout_rate=0.6))
    with pytest.raises(PlanError):
        check_plan(FaultPlan(latency_min_ms=50, latency_max_ms=10))


def test_fault_draws_follow_the_rates_and_spare_inquiries() -> None:
    faults = BankFaults(FaultPlan(error_rate=0.1, timeout_rate=0.1, drop_reply_rate=0.1), seed=3)
    fates = [faults.draw("ICBC", money=True) for _ in range(3_000)]
    for fate in (Fate.ERROR, Fate.TIMEOUT, Fate.DROP):
        assert 200 < fates.count(fate) < 400
    assert {faults.draw("ICBC", money=False) for _ in range(100)} == {Fate.ANSWER}
    faults.outage("CCB", 0, 60)
    assert (
        faults.draw("CCB", money=False) is Fate.OUTAGE and faults.draw("ICBC", money=True) is not Fate.OUTAGE
    )
