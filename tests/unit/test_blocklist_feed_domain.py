"""The versioned blocklist (deltas, snapshots as of the durable version, what the hub keeps) and
the misuse rules, without a server."""

from __future__ import annotations

import pytest

from onecard.terminal.v1 import terminal_service_pb2 as term_pb
from onecard_client.blocklist import BlocklistCopy, BlocklistGap
from onecard_hub.domain.blocklist import Blocklist, BlocklistChange
from onecard_hub.domain.ledger import Account, AccountKind
from onecard_hub.domain.misuse import MisuseKind, MisuseRules, MisuseWatch
from onecard_hub.domain.model import (
    Card,
    CardStatus,
    Enrollment,
    Scene,
    Student,
    StudentGroup,
    Terminal,
    TerminalKind,
    Wallet,
)

LOST, ACTIVE = CardStatus.LOST, CardStatus.ACTIVE


def test_deltas_and_snapshots_show_only_durable_changes() -> None:
    blocklist = Blocklist("sc")
    for card_no in ("A", "B", "C"):
        blocklist.update(card_no, LOST, 1)
    blocklist.mark_durable(2)  # C's batch has not committed yet
    snap = blocklist.snapshot()
    assert (snap.version, snap.card_nos) == (2, ["A", "B"])
    assert blocklist.delta_since(0) is None  # 0: a snapshot instead
    assert [c.version for c in blocklist.delta_since(1) or []] == [2]
    assert blocklist.delta_since(2) == []
    assert blocklist.delta_since(3) is None  # not durable yet: unknown to terminals
    blocklist.mark_durable(3)
    assert blocklist.delta_since(2) == [BlocklistChange("sc", 3, "C", True, 1)]


def test_a_terminal_older_than_what_is_kept_needs_a_snapshot() -> None:
    blocklist = Blocklist("sc", keep=2)
    for card_no in ("A", "B", "C", "D"):
        blocklist.update(card_no, LOST)
    blocklist.mark_durable(4)
    assert [c.version for c in blocklist.changes] == [3, 4]
    assert blocklist.delta_since(1) is None
    assert [c.version for c in blocklist.delta_since(2) or []] == [3, 4]


def test_restore_reads_the_version_back_and_a_seeded_list_is_version_one() -> None:
    blocklist = Blocklist("sc", card_nos={"A"})
    blocklist.restore([BlocklistChange("sc", 7, "A", True, 5)])
    assert (blocklist.version, blocklist.durable_version) == (7, 7)
    change = blocklist.update("A", ACTIVE)
    assert change is not None and change.version == 8
    seeded = Blocklist("sc", card_nos={"A"})
    seeded.restore([])
    assert seeded.snapshot().version == 1
    empty = Blocklist("sc")
    empty.restore([])
    assert empty.snapshot().version == 0


def _card(card_no: str = "C1", school_id: str = "sc") -> Card:
    wallet = Wallet(Account(1, AccountKind.WALLET, "s1"))
    student = Student("s1", school_id, "张*三", StudentGroup.BOARDER, Enrollment.ENROLLED, wallet)
    return Card(card_no, student, ACTIVE, b"k", b"e", b"p")


def _terminal(terminal_id: str, kind: TerminalKind, place: str, school_id: str = "sc") -> Terminal:
    if kind is TerminalKind.GATE:
        return Terminal(terminal_id, school_id, kind, gate_group=place)
    return Terminal(terminal_id, school_id, kind, merchant_id=place)


def test_misuse_rules() -> None:
    watch = MisuseWatch(
        MisuseRules(gate_window_ms=60_000, canteen_window_ms=120_000, school_window_ms=600_000)
    )
    card = _card()
    main, main2, side = (
        _terminal("G1", TerminalKind.GATE, "main"),
        _terminal("G2", TerminalKind.GATE, "main"),
        _terminal("G3", TerminalKind.GATE, "side"),
    )
    assert watch.observe(card, main, Scene.GATE_ENTRY, 0) is None
    assert watch.observe(card, main2, Scene.GATE_EXIT, 1_000) is None  # the same place
    signal = watch.observe(card, side, Scene.GATE_ENTRY, 30_000)
    assert signal is not None and signal.kind is MisuseKind.TWO_GATES and signal.gap_ms == 29_000
    assert watch.observe(card, main, Scene.GATE_EXIT, 90_000 + 30_000) is None  # outside 60 s
    pos1, pos2 = (
        _terminal("P1", TerminalKind.CANTEEN_POS, "w1"),
        _terminal("P2", TerminalKind.CANTEEN_POS, "w2"),
    )
    assert watch.observe(card, pos1, Scene.CANTEEN_PURCHASE, 200_000) is None  # a gate, then a window
    two_windows = watch.observe(card, pos2, Scene.CANTEEN_PURCHASE, 300_000)
    assert two_windows is not None and two_windows.kind is MisuseKind.TWO_CANTEEN_WINDOWS
    foreign = _terminal("X1", TerminalKind.CANTEEN_POS, "w1", school_id="other")
    two_schools = watch.observe(card, foreign, Scene.CANTEEN_PURCHASE, 800_000)
    assert two_schools is not None and two_schools.kind is MisuseKind.TWO_SCHOOLS
    assert two_schools.school_id == "sc"  # the card's school follows it up
    assert watch.observe(card, pos1, Scene.CANTEEN_PURCHASE, 800_000 + 600_000) is None
    assert [s.signal_id for s in watch.listed("sc", 0, 10)] == [3, 2, 1]
    assert [s.signal_id for s in watch.listed("sc", 300_000, 10)] == [3, 2]
    assert watch.listed("other", 0, 10) == []


def test_the_sdk_copy_applies_snapshots_and_changes_and_finds_gaps() -> None:
    copy = BlocklistCopy()
    copy.apply(term_pb.WatchBlocklistResponse(snapshot=True, version=4, blocked_card_nos=["A", "B"]))
    added, removed = term_pb.BLOCKLIST_CHANGE_KIND_ADDED, term_pb.BLOCKLIST_CHANGE_KIND_REMOVED
    copy.apply(
        term_pb.WatchBlocklistResponse(
            version=6,
            changes=[
                term_pb.BlocklistChange(version=5, card_no="C", kind=added),
                term_pb.BlocklistChange(version=6, card_no="A", kind=removed),
            ],
        )
    )
    assert (copy.version, copy.card_nos) == (6, {"B", "C"})
    copy.apply(term_pb.WatchBlocklistResponse(version=6))  # up to date: an empty delta
    with pytest.raises(BlocklistGap):
        copy.apply(
            term_pb.WatchBlocklistResponse(
                version=8, changes=[term_pb.BlocklistChange(version=8, card_no="D", kind=added)]
            )
        )
