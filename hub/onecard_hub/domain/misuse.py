"""Misuse signals: a card used at two places too close in time (lent or rented out — the notice
forbids both).

The hub keeps, per card, the last tap it saw the card itself at (terminal, scene, time) in
memory: an approved tap, or one whose credential checked out but was declined CARD_OTHER_SCHOOL
(the card was at another school's gate or window). The next such tap is compared with it:

    two schools           terminals of different schools     within `school_window_ms` (10 min)
    two gates             gates of different places          within `gate_window_ms` (2 min)
    two canteen windows   POS of different canteen windows   within `canteen_window_ms` (2 min)

A gate's place is its gate group (else its location, else the terminal); a canteen POS's is its
canteen window (merchant). A signal never declines a tap: it is recorded with its evidence (both
taps) for the card office (`AdminService.ListMisuseSignals`), in memory and through the writer in
the tap's own batch. This runs on the authorization path, so `observe` does a dict lookup, a
tuple and a few comparisons (about a microsecond; see hub/README.md).
"""

from __future__ import annotations

import enum
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass

from onecard_hub.domain.model import Card, Scene, Terminal, TerminalKind

KEEP_SIGNALS = 10_000  # per school, in memory


class MisuseKind(enum.StrEnum):
    TWO_GATES = "two_gates"
    TWO_CANTEEN_WINDOWS = "two_canteen_windows"
    TWO_SCHOOLS = "two_schools"


@dataclass(frozen=True, slots=True)
class MisuseRules:
    gate_window_ms: int = 2 * 60_000
    canteen_window_ms: int = 2 * 60_000
    school_window_ms: int = 10 * 60_000


@dataclass(frozen=True, slots=True)
class PlacedTap:
    """One tap as evidence: where (terminal, its school, its place), what, when."""

    terminal_id: str
    school_id: str
    place: str
    scene: Scene
    at_ms: int


@dataclass(frozen=True, slots=True)
class MisuseSignal:
    signal_id: int
    kind: MisuseKind
    card_no: str
    student_id: str
    school_id: str  # the card's school: its card office follows it up
    first: PlacedTap
    second: PlacedTap

    @property
    def gap_ms(self) -> int:
        return self.second.at_ms - self.first.at_ms


def place_of(terminal: Terminal) -> str:
    if terminal.kind is TerminalKind.CANTEEN_POS:
        return terminal.merchant_id or terminal.terminal_id
    return terminal.gate_group or terminal.location or terminal.terminal_id


def _placed(terminal: Terminal, scene: Scene, at_ms: int) -> PlacedTap:
    return PlacedTap(terminal.terminal_id, terminal.school_id, place_of(terminal), scene, at_ms)


class MisuseWatch:
    """The last approved tap per card, and the signals raised (the newest `keep` per school)."""

    def __init__(self, rules: MisuseRules | None = None, keep: int = KEEP_SIGNALS) -> None:
        self.rules = rules or MisuseRules()
        self.keep = keep
        self._last: dict[str, tuple[Terminal, Scene, int]] = {}
        self.signals: dict[str, deque[MisuseSignal]] = {}
        self.last_id = 0

    def observe(self, card: Card, terminal: Terminal, scene: Scene, now_ms: int) -> MisuseSignal | None:
        """Notes an approved tap; the signal when it and the card's previous one are too close."""
        card_no = card.card_no
        last = self._last.get(card_no)
        self._last[card_no] = (terminal, scene, now_ms)
        if last is None or last[0] is terminal:
            return None
        before, before_scene, before_ms = last
        kind = self._kind(before, terminal, now_ms - before_ms)
        if kind is None:
            return None
        self.last_id += 1
        signal = MisuseSignal(
            self.last_id,
            kind,
            card_no,
            card.student.student_id,
            card.student.school_id,
            _placed(before, before_scene, before_ms),
            _placed(terminal, scene, now_ms),
        )
        self.remember(signal)
        return signal

    def _kind(self, before: Terminal, now: Terminal, gap_ms: int) -> MisuseKind | None:
        if gap_ms < 0:
            return None
        rules = self.rules
        if before.school_id != now.school_id:
            return MisuseKind.TWO_SCHOOLS if gap_ms < rules.school_window_ms else None
        if before.kind is not now.kind:
            return None
        if now.kind is TerminalKind.GATE:
            window, kind = rules.gate_window_ms, MisuseKind.TWO_GATES
        elif now.kind is TerminalKind.CANTEEN_POS:
            window, kind = rules.canteen_window_ms, MisuseKind.TWO_CANTEEN_WINDOWS
        else:
            return None
        return kind if gap_ms < window and place_of(before) != place_of(now) else None

    def remember(self, signal: MisuseSignal) -> None:
        kept = self.signals.get(signal.school_id)
        if kept is None:
            kept = self.signals[signal.school_id] = deque(maxlen=self.keep)
        kept.append(signal)
        self.last_id = max(self.last_id, signal.signal_id)

    def restore(self, signals: Iterable[MisuseSignal]) -> None:
        """At start: the signals read back from the store, oldest first."""
        for signal in signals:
            self.remember(signal)

    def listed(self, school_id: str, since_ms: int, limit: int) -> list[MisuseSignal]:
        """A school's signals (every school's for ""), second tap at or after `since_ms`, newest first."""
        schools = [school_id] if school_id else list(self.signals)
        found: list[MisuseSignal] = []
        for school in schools:
            for signal in reversed(self.signals.get(school, ())):
                if signal.second.at_ms < since_ms:
                    break
                found.append(signal)
        found.sort(key=lambda s: s.signal_id, reverse=True)
        return found[:limit]
