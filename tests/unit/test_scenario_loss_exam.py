"""The invariants of lost-card-mid-rush (`loss_invariants`) and exam-day (`exam_invariants`), over
facts built by hand: each broken rule gives its violation line, a clean run gives none."""

from __future__ import annotations

from onecard_sim.events import APPROVED, GATE_ENTRY, TapEvent
from onecard_sim.scenarios.exam_invariants import (
    ALREADY,
    AttemptKind,
    Attendance,
    CheckInSeen,
    SessionFacts,
    check_exams,
)
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


# -- exam-day ------------------------------------------------------------------------------------

OPENS, CLOSES = HUB_MS, HUB_MS + 45 * 60_000
ROSTER = {"s1": "R01", "s2": "R02", "s3": "R01"}


def _seen(student: str, kind: str, outcome: str, room: str = "", tap_ms: int = OPENS + 60_000) -> CheckInSeen:
    return CheckInSeen("exam-1", student, room or ROSTER.get(student, "R01"), kind, outcome, tap_ms)


def _session(present: tuple[tuple[str, str], ...], absent: set[str], wrong: int = 1) -> SessionFacts:
    return SessionFacts("exam-1", ROSTER, OPENS, CLOSES, Attendance(present, frozenset(absent), wrong))


CLEAN_SEEN = [
    _seen("s1", AttemptKind.WRONG_ROOM, "WRONG_ROOM", room="R02"),
    _seen("s1", AttemptKind.ARRIVAL, APPROVED),
    _seen("s1", AttemptKind.DOUBLE, ALREADY),
    _seen("s2", AttemptKind.ARRIVAL, APPROVED),
    _seen("s3", AttemptKind.LATE, "OUTSIDE_CHECK_IN_WINDOW", tap_ms=CLOSES + 300_000),
    _seen("x9", AttemptKind.NOT_ON_ROSTER, "NOT_ON_ROSTER"),
]


def test_a_clean_exam_day_has_no_violation_and_counts_attendance() -> None:
    section, lines = check_exams([_session((("s1", "R01"), ("s2", "R02")), {"s3"})], CLEAN_SEEN)
    assert lines == []
    assert section["present"] == 2 and section["absent"] == 1 and section["wrong_room_attempts"] == 1
    assert section["attempts"] == {
        "arrival": {APPROVED: 2},
        "double": {ALREADY: 1},
        "late": {"OUTSIDE_CHECK_IN_WINDOW": 1},
        "not_on_roster": {"NOT_ON_ROSTER": 1},
        "wrong_room": {"WRONG_ROOM": 1},
    }


def test_each_broken_exam_rule_is_a_violation_line() -> None:
    seen = [
        _seen("s1", AttemptKind.ARRIVAL, APPROVED),
        _seen("s1", AttemptKind.DOUBLE, APPROVED),  # approved twice
        _seen("s2", AttemptKind.WRONG_ROOM, APPROVED, room="R01"),  # wrong room approved
        _seen("s3", AttemptKind.LATE, APPROVED, tap_ms=CLOSES + 300_000),  # late approved
    ]
    # The hub lists s1 twice and s3 not at all; nobody absent; no wrong-room attempt recorded.
    _, lines = check_exams([_session((("s1", "R01"), ("s1", "R01"), ("s2", "R01")), set(), wrong=0)], seen)
    text = "\n".join(lines)
    assert "student s1 was approved 2 times" in text
    assert "a second check-in was answered APPROVED, not ALREADY_CHECKED_IN" in text
    assert "student s2 at room R01" in text and "approved in the wrong room (seat in R02)" in text
    assert "approved after the check-in window closed" in text
    assert "student s1 checked in (approved) but GetAttendance lists them present 2 time(s)" in text
    assert "student s3 checked in (approved) but GetAttendance lists them present 0 time(s)" in text


def test_a_double_check_in_after_the_window_may_be_answered_outside_the_window() -> None:
    late_double = _seen("s1", AttemptKind.DOUBLE, "OUTSIDE_CHECK_IN_WINDOW", tap_ms=CLOSES + 1)
    seen = [_seen("s1", AttemptKind.ARRIVAL, APPROVED), late_double]
    _, lines = check_exams([_session((("s1", "R01"),), {"s2", "s3"}, wrong=0)], seen)
    assert lines == []
    in_window = _seen("s1", AttemptKind.DOUBLE, "OUTSIDE_CHECK_IN_WINDOW")
    _, lines = check_exams([_session((("s1", "R01"),), {"s2", "s3"}, wrong=0)], [seen[0], in_window])
    assert len(lines) == 1 and "not ALREADY_CHECKED_IN" in lines[0]
