"""A test terminal: taps and scans like a reader, keeping each card's counter."""

from __future__ import annotations

import asyncio
import inspect
import itertools
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from onecard.auth.v1 import authorization_service_pb2 as pb
from onecard_client.campus import CampusCredentials, CardCredential, TerminalInfo
from onecard_client.client import ClientConfig, TerminalClient
from onecard_client.taps import chip_tap, qr_scan
from onecard_hub.domain.clock import ManualClock
from onecard_hub.store.campus_rows import STATE
from onecard_hub.store.records import Snapshot

_ids = itertools.count(1)


def new_request_id() -> str:
    return f"t-{next(_ids)}"


async def until(
    condition: Callable[[], bool | Awaitable[bool]], what: str = "condition", limit_s: float = 20.0
) -> None:
    """Polls `condition` (plain or async) every 10 ms until it holds, or fails the test after `limit_s`.
    For a positive condition that must come true, never to wait before asserting that something did not."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + limit_s
    while True:
        held = condition()
        if inspect.isawaitable(held):
            held = await held
        if held:
            return
        if loop.time() > deadline:
            raise AssertionError(f"not within {limit_s:.0f} s: {what}")
        await asyncio.sleep(0.01)


def name(reason: int) -> str:
    return pb.DeclineReason.Name(reason).removeprefix("DECLINE_REASON_")  # type: ignore[arg-type]


@dataclass
class Campus:
    """The seeded campus as a test sees it, plus a client per terminal."""

    creds: CampusCredentials
    clock: ManualClock
    target: str
    atc: dict[str, int] = field(default_factory=dict)
    clients: dict[str, TerminalClient] = field(default_factory=dict)

    def client(self, terminal: TerminalInfo | str) -> TerminalClient:
        terminal_id = terminal if isinstance(terminal, str) else terminal.terminal_id
        if terminal_id not in self.clients:
            self.clients[terminal_id] = TerminalClient(terminal_id, ClientConfig(target=self.target))
        return self.clients[terminal_id]

    async def close(self) -> None:
        for c in self.clients.values():
            await c.close()

    def school(self, index: int = 0) -> str:
        return self.creds.schools[index]

    def card(
        self,
        school: int = 0,
        *,
        status: str = "active",
        enrollment: str = "enrolled",
        group: str = "",
        skip: int = 0,
    ) -> CardCredential:
        found = [
            c
            for c in self.creds.cards_of(self.school(school))
            if c.status == status and c.enrollment == enrollment and (not group or c.student_group == group)
        ]
        return found[skip]

    def gate(self, school: int = 0, group: str = "main") -> TerminalInfo:
        return next(t for t in self.creds.terminals_of(self.school(school), "gate") if t.gate_group == group)

    def pos(self, school: int = 0, index: int = 0) -> TerminalInfo:
        return self.creds.terminals_of(self.school(school), "canteen_pos")[index]

    def chip(
        self,
        card: CardCredential,
        terminal: TerminalInfo,
        scene: int,
        *,
        amount_fen: int = 0,
        pin: str = "",
        atc: int | None = None,
        request_id: str | None = None,
        tap_time_ms: int | None = None,
    ) -> pb.AuthorizeRequest:
        if atc is None:
            atc = self.atc.get(card.card_no, card.atc) + 1
        self.atc[card.card_no] = max(atc, self.atc.get(card.card_no, 0))
        return chip_tap(
            card,
            request_id=request_id or new_request_id(),
            terminal_id=terminal.terminal_id,
            scene=scene,
            atc=atc,
            tap_time_ms=self.clock.now_ms() if tap_time_ms is None else tap_time_ms,
            amount_fen=amount_fen,
            pin=pin,
        )

    def qr(
        self,
        card: CardCredential,
        terminal: TerminalInfo,
        scene: int,
        *,
        amount_fen: int = 0,
        pin: str = "",
        request_id: str | None = None,
        issued_ms: int | None = None,
    ) -> pb.AuthorizeRequest:
        now = self.clock.now_ms()
        return qr_scan(
            self.creds,
            card,
            request_id=request_id or new_request_id(),
            terminal_id=terminal.terminal_id,
            scene=scene,
            issued_ms=now if issued_ms is None else issued_ms,
            tap_time_ms=now,
            amount_fen=amount_fen,
            pin=pin,
        )

    async def send(self, request: pb.AuthorizeRequest) -> pb.AuthorizeResponse:
        return await self.client(request.terminal_id).authorize(request)


def loaded_counters(snap: Snapshot) -> dict[str, tuple[int, int, int]]:
    """card_no → (atc, pin_failures, presence) as the hub loads a card: card_state, or the latest
    counters the unfolded log holds for it (store/campus_rows.py)."""
    assert snap.campus_rows is not None
    return {
        row[0]: (row[STATE][0], row[STATE][1], row[STATE][2])
        for chunk in snap.campus_rows.card_chunks()
        for row in chunk
    }
