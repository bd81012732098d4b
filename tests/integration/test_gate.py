"""Gate rules: card and student state, school, time windows, anti-passback (real hub, real SQLite)."""

from __future__ import annotations

from onecard.auth.v1 import authorization_service_pb2 as pb
from tests.helpers import Campus, name

ENTRY, EXIT = pb.SCENE_GATE_ENTRY, pb.SCENE_GATE_EXIT


async def test_entry_then_exit_is_approved_with_masked_name(campus: Campus) -> None:
    card, gate = campus.card(), campus.gate()
    entry = await campus.send(campus.chip(card, gate, ENTRY))
    assert entry.decision == pb.DECISION_APPROVED, name(entry.decline_reason)
    assert entry.display_text == "通过"
    assert "*" in entry.holder_name_masked
    assert entry.authorization_id
    exit_ = await campus.send(campus.qr(card, gate, EXIT))
    assert exit_.decision == pb.DECISION_APPROVED


async def test_second_entry_without_exit_is_declined_at_a_hard_gate(campus: Campus) -> None:
    card, gate = campus.card(), campus.gate(group="main")
    assert (await campus.send(campus.chip(card, gate, ENTRY))).decision == pb.DECISION_APPROVED
    again = await campus.send(campus.qr(card, gate, ENTRY))
    assert again.decision == pb.DECISION_DECLINED
    assert name(again.decline_reason) == "ANTI_PASSBACK"
    assert again.display_text == "请勿重复刷卡进出"


async def test_exit_without_entry_after_exit_is_declined_and_soft_gate_allows(campus: Campus) -> None:
    card = campus.card(skip=1)
    main, side = campus.gate(group="main"), campus.gate(group="side")
    assert (await campus.send(campus.chip(card, main, EXIT))).decision == pb.DECISION_APPROVED
    assert name((await campus.send(campus.chip(card, main, EXIT))).decline_reason) == "ANTI_PASSBACK"
    assert (await campus.send(campus.chip(card, side, EXIT))).decision == pb.DECISION_APPROVED


async def test_time_windows_per_student_group(campus: Campus) -> None:
    campus.clock.advance(minutes=10 * 60 + 30)  # 22:30: day students are out of their window, boarders not
    day, boarder = campus.card(group="day"), campus.card(group="boarder")
    gate = campus.gate(group="main")
    day_answer = await campus.send(campus.chip(day, gate, ENTRY))
    assert name(day_answer.decline_reason) == "OUTSIDE_TIME_WINDOW"
    assert (await campus.send(campus.chip(boarder, gate, ENTRY))).decision == pb.DECISION_APPROVED


async def test_card_and_student_states_decline(campus: Campus) -> None:
    gate = campus.gate()
    lost = await campus.send(campus.chip(campus.card(status="lost"), gate, ENTRY))
    assert name(lost.decline_reason) == "CARD_REPORTED_LOST"
    suspended = await campus.send(campus.qr(campus.card(enrollment="suspended"), gate, ENTRY))
    assert name(suspended.decline_reason) == "STUDENT_SUSPENDED"
    other_school = await campus.send(campus.chip(campus.card(school=1), gate, ENTRY))
    assert name(other_school.decline_reason) == "CARD_OTHER_SCHOOL"
