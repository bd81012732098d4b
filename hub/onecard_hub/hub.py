"""The hub's use cases: decide in memory, journal through the writer, answer when durable.

Servicers call these methods with domain objects and a `render` function that turns the
outcome into the response message; the hub keeps the response's bytes for idempotent
replays. Nothing here knows grpc.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, TypeVar

from google.protobuf.message import Message

from onecard_hub.blocklist_feed import BlocklistFeed
from onecard_hub.domain.campus import GatePass, Purchase, Tap, TapResult
from onecard_hub.domain.clock import Clock, business_day
from onecard_hub.domain.decisions import DeclineReason
from onecard_hub.domain.errors import (
    AlreadyExists,
    FailedPrecondition,
    InvalidArgument,
    NotFound,
    PermissionDenied,
    Unauthenticated,
    Unavailable,
)
from onecard_hub.domain.ledger import Transfer
from onecard_hub.domain.model import Card, Operator, Terminal, TerminalKind, Wallet
from onecard_hub.domain.scope import listed_school
from onecard_hub.domain.topup import LowBalanceWatch
from onecard_hub.domain.usage import UsageBook, window_start_ms
from onecard_hub.idempotency import Entry, Registry
from onecard_hub.recovery import (
    AUTHORIZE,
    OUTCOME_ORIGINAL_NOT_SEEN,
    OUTCOME_REVERSED,
    REFUND,
    REVERSE,
    rebuild,
    terminal_from_row,
)
from onecard_hub.security.keys import HubKeys
from onecard_hub.security.protect import PinHasher
from onecard_hub.stopping import stop_all
from onecard_hub.store.base import Store
from onecard_hub.store.records import Batch, CardStateRow, LedgerTotals, RequestRow, TerminalRow
from onecard_hub.store.writer import JournalWriter
from onecard_hub.telemetry.tracing import traced_decision

if TYPE_CHECKING:
    from opentelemetry.trace import Tracer

    from onecard_hub.bank.gateway import BankGateway
    from onecard_hub.telemetry.metrics import HubMetrics

log = logging.getLogger(__name__)

M = TypeVar("M", bound=Message)
OUTCOME_NOTHING_TO_REVERSE = 2
REGISTER_TERMINAL = "RegisterTerminal"
SET_TERMINAL_ENABLED = "SetTerminalEnabled"


@dataclass(frozen=True, slots=True)
class ReverseOutcome:
    outcome: int
    reversed_fen: int
    balance_fen: int


def _card_row(card: Card) -> CardStateRow:
    return CardStateRow(card.card_no, card.atc, card.pin_failures, int(card.presence))


class Hub:
    def __init__(
        self,
        store: Store,
        keys: HubKeys,
        clock: Clock,
        *,
        retention_ms: int = 48 * 3600 * 1000,
        max_pending_writes: int = 20_000,
        commit_linger_s: float = 0.008,
    ) -> None:
        self.store = store
        self.keys = keys
        self.clock = clock
        self.retention_ms = retention_ms
        self.writer = JournalWriter(store, max_pending=max_pending_writes, linger_s=commit_linger_s)
        self.registry = Registry()
        self._seq = 0
        self._housekeeping: asyncio.Task[None] | None = None
        self.bank: BankGateway | None = None  # with --bank: the one way to a bank (server.py sets it)
        self.low_balance = LowBalanceWatch()  # auto top-up's hook on purchases (funds/auto_topup.py)
        # Set by telemetry/ when on (--metrics-listen; --trace-file or OTLP); None costs one check.
        self.metrics: HubMetrics | None = None
        self.tracer: Tracer | None = None

    # -- life cycle ----------------------------------------------------------------

    async def start(self) -> None:
        await self.store.open()
        try:
            now = self.clock.now_ms()
            snap = await self.store.load(now - self.retention_ms, usage_since_ms=window_start_ms(now))
            state = rebuild(snap, self.keys, PinHasher(self.keys), now)
        except BaseException:
            await self.store.close()  # its threads would keep the process from exiting
            raise
        self.campus = state.campus
        self.registry = state.registry
        self.merchant_accounts = state.merchant_accounts
        self.offline_book = state.offline  # see offline.py
        self.card_book = state.card_office  # see card_office/
        self.campus_loader = state.loader  # students and cards built when first needed
        self.library = state.library  # see library.py
        self.exams = state.exams  # see exams.py
        self.usage: UsageBook = state.usage  # see usage.py
        self.cardsys_version = snap.cardsys_version  # the provincial feed resumes here (cardsys_feed.py)
        self._seq = await self.store.max_seq()
        self.blocklist_feed = BlocklistFeed(self.campus)  # sees each batch once durable
        self.writer.listeners.append(self.blocklist_feed.committed)
        self.writer.start()
        self._housekeeping = asyncio.get_running_loop().create_task(self._tidy(), name="housekeeping")
        log.info(
            "hub state loaded: %d schools, %d cards in memory (the others when first used), %d terminals,"
            " %d recent requests",
            len(self.campus.schools),
            dict.__len__(self.campus.cards),  # len() would build every card (domain/on_demand.py)
            len(self.campus.terminals),
            len(self.registry),
        )

    async def stop(self) -> None:
        """Flushes the journal and closes the store; in-flight calls finish first (the server's job).

        Every step is taken even when an earlier one raises (a disk gone read-only fails the last
        checkpoint): the store is always closed and its threads stopped, then the failures are
        raised together (stopping.StopFailed)."""
        await stop_all(
            (
                ("closing the blocklist streams", self.blocklist_feed.close),
                ("stopping the housekeeping", self._stop_housekeeping),
                ("flushing the journal", self._flush_journal),
                ("the last checkpoint", self._last_checkpoint),
                ("closing the store", self.store.close),
            )
        )

    def _stop_housekeeping(self) -> None:
        if self._housekeeping is not None:
            self._housekeeping.cancel()
            self._housekeeping = None

    async def _flush_journal(self) -> None:
        await self.writer.close()
        stats = self.writer.stats()
        log.info(
            "journal: %d rows in %d commits (%.1f per commit, largest %d)",
            stats.rows,
            stats.batches,
            stats.rows / max(stats.batches, 1),
            stats.largest_batch,
        )

    async def _last_checkpoint(self) -> None:
        if self.writer.failed is None:
            await self.store.checkpoint()

    async def _tidy(self, every_s: float = 30.0) -> None:
        while True:
            await asyncio.sleep(every_s)
            now = self.clock.now_ms()
            self.campus.forget_expired_nonces(now)
            self.registry.prune(now - self.retention_ms)

    # -- callers -------------------------------------------------------------------

    def terminal(self, terminal_id: str) -> Terminal:
        terminal = self.campus.terminals.get(terminal_id)
        if terminal is None:
            raise Unauthenticated("unknown terminal", reason="CALLER_UNKNOWN")
        return terminal

    def operator(self, operator_id: str) -> Operator:
        operator = self.campus.operators.get(operator_id)
        if operator is None:
            raise Unauthenticated("unknown operator", reason="CALLER_UNKNOWN")
        return operator

    # -- idempotency ---------------------------------------------------------------

    def check_healthy(self) -> None:
        if self.writer.failed is not None:
            raise Unavailable("the hub's journal failed; it must restart")

    async def answered(
        self, key: tuple[str, str], method: str, fingerprint: bytes, parse: Callable[[bytes], M]
    ) -> M | None:
        """The answer this (caller, request_id) already got, replayed (a different body under the
        same id is FAILED_PRECONDITION); None when the call is new and the journal can take it. The
        first step of every mutating use case (`authorize` does it inline: it needs the tombstone)."""
        self.check_healthy()
        entry = self.registry.get(key)
        if entry is not None and not entry.tombstone:
            return await self._replay(entry, method, fingerprint, parse)
        self.writer.check_accepting()
        return None

    async def _replay(self, entry: Entry, method: str, fingerprint: bytes, parse: Callable[[bytes], M]) -> M:
        entry.matches(method, fingerprint)
        if entry.durable is not None:
            await entry.durable
        return parse(entry.response)

    async def commit(self, key: tuple[str, str], entry: Entry, rows: Batch) -> None:
        """Registers the answer, then returns once it and everything it changed are durable."""
        await self._registered(key, entry, self.writer.submit(rows))

    async def _registered(self, key: tuple[str, str], entry: Entry, durable: asyncio.Future[None]) -> None:
        """Registers the answer, then waits for its journal write (`durable`, from the writer)."""
        self.registry.put(key, entry)
        entry.durable = durable
        try:
            await durable  # the writer's future cannot be cancelled (a cancelled caller waits for it)
        finally:
            if durable.done():
                entry.durable = None

    # -- the critical path ---------------------------------------------------------

    async def authorize(
        self,
        tap: Tap,
        fingerprint: bytes,
        render: Callable[[Tap, TapResult, int, int], M],
        parse: Callable[[bytes], M],
    ) -> M:
        self.check_healthy()
        key = (tap.terminal.terminal_id, tap.request_id)
        entry = self.registry.get(key)
        if entry is not None and not entry.tombstone:
            return await self._replay(entry, AUTHORIZE, fingerprint, parse)
        self.writer.check_accepting()
        now = self.clock.now_ms()
        if entry is not None:  # the terminal reversed this request before it arrived
            self.campus.check_scene(tap.terminal, tap.scene)
            result = TapResult(DeclineReason.REVERSED, self.campus.cards.get(tap.card_no))
        elif self.tracer is None:
            result = self.campus.authorize(tap, now)
        else:
            result = traced_decision(self.tracer, self.campus, tap, now)
        day = business_day(now)
        self.usage.record(tap.terminal.school_id, tap.card_no, tap.scene, day, result.approved)
        self._seq += 1
        response = render(tap, result, now, self._seq)
        body = response.SerializeToString()
        request = RequestRow(
            key[0],
            key[1],
            AUTHORIZE,
            fingerprint,
            body,
            now,
            self._seq,
            tap.card_no,
            int(tap.scene),
            int(result.reason),
            tap.amount_fen,
            day,
            result.meal_window,
            result.qr_nonce,
            result.qr_expires_ms,
        )
        card = result.card
        durable = self.writer.submit_tap(
            request,
            result.transfer,
            _card_row(card) if card is not None and result.card_changed else None,
            result.misuse,
        )
        undo = result.purchase or result.gate_pass
        await self._registered(key, Entry(AUTHORIZE, fingerprint, now, body, undo=undo), durable)
        if result.purchase is not None:  # auto top-up: one dict lookup; queues, never waits on a bank
            self.low_balance.purchased(
                result.purchase.wallet.account.owner, result.purchase.wallet.balance_fen
            )
        return response

    async def refund(
        self,
        terminal: Terminal,
        request_id: str,
        original_request_id: str,
        amount_fen: int,
        fingerprint: bytes,
        render: Callable[[Transfer, Purchase], M],
        parse: Callable[[bytes], M],
    ) -> M:
        key = (terminal.terminal_id, request_id)
        if (answer := await self.answered(key, REFUND, fingerprint, parse)) is not None:
            return answer
        original = self.registry.get((terminal.terminal_id, original_request_id))
        if original is None or original.tombstone or original.method != AUTHORIZE:
            raise NotFound(
                "original_request_id: no authorization with this request_id from this terminal "
                "within the retention window",
                field="original_request_id",
            )
        if not isinstance(original.undo, Purchase):
            raise FailedPrecondition(
                "original_request_id: not an approved canteen purchase", reason="NOT_REFUNDABLE"
            )
        now = self.clock.now_ms()
        purchase = original.undo
        transfer = self.campus.refund(terminal, request_id, original_request_id, purchase, amount_fen, now)
        response = render(transfer, purchase)
        body = response.SerializeToString()
        rows = Batch(
            requests=[
                RequestRow(
                    key[0],
                    key[1],
                    REFUND,
                    fingerprint,
                    body,
                    now,
                    amount_fen=amount_fen,
                    business_day=business_day(now),
                    origin_request_id=original_request_id,
                )
            ],
            transfers=[transfer],
        )
        await self.commit(key, Entry(REFUND, fingerprint, now, body), rows)
        return response

    async def reverse(
        self,
        terminal: Terminal,
        request_id: str,
        original_request_id: str,
        fingerprint: bytes,
        render: Callable[[ReverseOutcome], M],
        parse: Callable[[bytes], M],
    ) -> M:
        key = (terminal.terminal_id, request_id)
        if (answer := await self.answered(key, REVERSE, fingerprint, parse)) is not None:
            return answer
        now = self.clock.now_ms()
        origin = (terminal.terminal_id, original_request_id)
        original = self.registry.get(origin)
        rows = Batch()
        if original is None or original.tombstone:
            if original is None:
                self.registry.put(origin, Entry("", b"", now, tombstone=True))
            outcome = ReverseOutcome(OUTCOME_ORIGINAL_NOT_SEEN, 0, 0)
        elif original.method != AUTHORIZE:
            raise FailedPrecondition(
                "original_request_id: names a call that is not an authorization", reason="NOT_REFUNDABLE"
            )
        elif original.undo is None or original.undo.reversed:
            outcome = ReverseOutcome(OUTCOME_NOTHING_TO_REVERSE, 0, _balance_of(original.undo))
        else:
            undone = self.campus.reverse(terminal, request_id, original_request_id, original.undo, now)
            outcome = ReverseOutcome(OUTCOME_REVERSED, undone.reversed_fen, _balance_of(original.undo))
            if undone.transfer is not None:
                rows.transfers.append(undone.transfer)
            if undone.card_changed is not None:
                rows.card_states.append(_card_row(undone.card_changed))
        response = render(outcome)
        body = response.SerializeToString()
        rows.requests.append(
            RequestRow(
                key[0],
                key[1],
                REVERSE,
                fingerprint,
                body,
                now,
                amount_fen=outcome.reversed_fen,
                business_day=business_day(now),
                origin_request_id=original_request_id,
                outcome=outcome.outcome,
            )
        )
        await self.commit(key, Entry(REVERSE, fingerprint, now, body), rows)
        return response

    def wallet_of(self, terminal: Terminal, card_no: str) -> tuple[Card, Wallet]:
        card = self.campus.cards.get(card_no)
        if card is None:
            raise NotFound("card_no: no such card", field="card_no")
        if card.student.school_id != terminal.school_id:
            raise PermissionDenied("card_no: the card belongs to another school", reason="OTHER_SCHOOL")
        wallet = card.student.wallet
        wallet.roll_to(business_day(self.clock.now_ms()))
        return card, wallet

    def daily_limit_of(self, card: Card) -> int:
        return self.campus.schools[card.student.school_id].policy.daily_limit_fen

    # -- administration ------------------------------------------------------------

    async def register_terminal(
        self,
        operator: Operator,
        request_id: str,
        row: TerminalRow,
        fingerprint: bytes,
        render: Callable[[Terminal], M],
        parse: Callable[[bytes], M],
    ) -> M:
        key = (operator.operator_id, request_id)
        if (answer := await self.answered(key, REGISTER_TERMINAL, fingerprint, parse)) is not None:
            return answer
        school = self.campus.schools.get(row.school_id)
        if school is None:
            raise NotFound("terminal.school_id: no such school", field="terminal.school_id")
        if operator.school_id and operator.school_id != row.school_id:
            raise PermissionDenied("terminal.school_id: another school than the operator's")
        kind = TerminalKind(row.kind)
        if kind is TerminalKind.GATE and row.gate_group not in school.policy.gate_groups:
            raise InvalidArgument("terminal.gate_group", "not a gate group of this school")
        if kind is TerminalKind.CANTEEN_POS and row.merchant_id not in self.merchant_accounts:
            raise InvalidArgument("terminal.merchant_id", "not a canteen window of this school")
        terminal = terminal_from_row(row, self.merchant_accounts)
        existing = self.campus.terminals.get(row.terminal_id)
        if existing is not None and existing != terminal:
            raise AlreadyExists("terminal.terminal_id: registered already with other values")
        self.campus.terminals[row.terminal_id] = terminal
        now = self.clock.now_ms()
        response = render(terminal)
        body = response.SerializeToString()
        rows = Batch(
            requests=[RequestRow(key[0], key[1], REGISTER_TERMINAL, fingerprint, body, now)],
            terminals=[row],
        )
        await self.commit(key, Entry(REGISTER_TERMINAL, fingerprint, now, body), rows)
        return response

    def terminal_for(self, operator: Operator, terminal_id: str) -> Terminal:
        """A terminal the operator may see (a clerk: one of their school's), or NOT_FOUND /
        PERMISSION_DENIED."""
        terminal = self.campus.terminals.get(terminal_id)
        if terminal is None:
            raise NotFound("terminal_id: no such terminal", field="terminal_id")
        if operator.school_id and operator.school_id != terminal.school_id:
            raise PermissionDenied("terminal_id: a terminal of another school")
        return terminal

    def terminals_of(self, operator: Operator, school_id: str) -> list[Terminal]:
        """A school's terminals by id; a province administrator may leave `school_id` empty for all."""
        school = listed_school(operator, school_id, self.campus.schools)
        found = [t for t in self.campus.terminals.values() if school is None or t.school_id == school]
        return sorted(found, key=lambda t: t.terminal_id)

    async def set_terminal_enabled(
        self,
        operator: Operator,
        request_id: str,
        terminal_id: str,
        enabled: bool,
        fingerprint: bytes,
        render: Callable[[Terminal], M],
        parse: Callable[[bytes], M],
    ) -> M:
        """Enables or disables a terminal; answers once the change is durable."""
        key = (operator.operator_id, request_id)
        if (answer := await self.answered(key, SET_TERMINAL_ENABLED, fingerprint, parse)) is not None:
            return answer
        terminal = self.terminal_for(operator, terminal_id)
        terminal.enabled = enabled  # a disabled terminal's next call is refused at once
        now = self.clock.now_ms()
        response = render(terminal)
        body = response.SerializeToString()
        rows = Batch(
            requests=[RequestRow(key[0], key[1], SET_TERMINAL_ENABLED, fingerprint, body, now)],
            terminals=[_terminal_row(terminal)],
        )
        await self.commit(key, Entry(SET_TERMINAL_ENABLED, fingerprint, now, body), rows)
        return response

    async def ledger_totals(self) -> LedgerTotals:
        return await self.store.ledger_totals()


def _terminal_row(t: Terminal) -> TerminalRow:
    return TerminalRow(
        t.terminal_id, t.school_id, int(t.kind), t.location, t.gate_group, t.merchant_id, t.enabled
    )


def _balance_of(undo: Purchase | GatePass | None) -> int:
    return undo.wallet.balance_fen if isinstance(undo, Purchase) else 0
