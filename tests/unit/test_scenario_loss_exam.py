"""The invariants of lost-card-mid-rush (`loss_invariants`) and exam-day (`exam_invariants`), over
facts built by hand: each broken rule gives its violation line, a clean run gives none."""

from __future__ import annotations

from onecard_sim.events import APPROVED, GATE_ENTRY, TapEvent
from onecard_sim.scenarios.loss_invariants import LOST, LossReport, check_losses

CARD = "A12345678"
HUB_MS = 1_795_500_000_000  # 2026-11-24 some time before noon, CST


def _tap(outcome: str, sent_s: float, answered_s: float, card: str = CARD) -> TapEvent:
    return TapEvent(
        scene=GATE_ENTRY,
        outcome=outcome,
        latency_ms=(answered_s - sent_s) * 1000,
        hub_ms=HUB_MS,
        real_s=answered_s,
        card_no=card,
        terminal_id="jx-ts-01-gate-01",
        sent_s=sent_s,
    )


REPORTS = {CARD: LossReport(CARD, answered_s=100.0, hub_ms=HUB_MS)}


def test_an_approval_sent_after_the_loss_answer_is_a_violation_line() -> None:
    summary, lines = check_losses(REPORTS, [_tap(APPROVED, 100.2, 100.25)])
    assert summary.approvals_after_loss == 1 and summary.taps_after_loss == 1
    assert len(lines) == 1
    line = lines[0]
    assert "card A1***5678 was approved (gate_entry at jx-ts-01-gate-01" in line
    assert "0.200 s before the tap was sent" in line
    assert CARD not in line  # masked


def test_taps_in_flight_at_the_loss_are_counted_apart_and_not_judged() -> None:
    taps = [
        _tap(APPROVED, 99.0, 99.5),  # before: approved, as expected
        _tap(APPROVED, 99.9, 100.1),  # in flight when the loss was answered: ambiguous
        _tap(LOST, 100.5, 100.6),  # after: declined CARD_REPORTED_LOST
        _tap("OUTSIDE_MEAL_WINDOW", 101.0, 101.1),  # after, another decline: counted, no violation
        _tap(APPROVED, 100.5, 100.6, card="B00000001"),  # a card nobody reported lost
    ]
    summary, lines = check_losses(REPORTS, taps)
    assert lines == []
    assert (summary.taps_before_loss, summary.in_flight_at_loss, summary.taps_after_loss) == (1, 1, 2)
    assert summary.declined_reported_lost == 1 and summary.approvals_after_loss == 0
    assert summary.to_json()["after_loss_outcomes"] == {LOST: 1, "OUTSIDE_MEAL_WINDOW": 1}


def test_a_failed_report_and_a_run_that_never_tapped_a_lost_card_are_violations() -> None:
    failed = {CARD: LossReport(CARD, 100.0, HUB_MS, error="ERROR_UNAVAILABLE")}
    summary, lines = check_losses(failed, [_tap(APPROVED, 101.0, 101.1)])
    assert summary.reports_failed == 1 and summary.approvals_after_loss == 0
    assert len(lines) == 1
    assert lines[0].startswith("the loss report of card A1***5678 failed (ERROR_UNAVAILABLE)")
    _, lines = check_losses(REPORTS, [_tap(APPROVED, 99.0, 99.5)])
    assert len(lines) == 1 and "none of them was tapped afterwards" in lines[0]
