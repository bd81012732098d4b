"""Rebuilds the hub's hot state from the store's snapshot at start.

The journal is the truth: balances come from the ledger's accounts; students and cards
(counters, PIN failures and presence from card_state and the log's tail) are read when first
needed (campus_loader.py), each student with all their cards; today's spending, meal counts,
used QR nonces, refundable purchases and pending reversals from the requests of the retention
window. Each student's current card (the card office) when the student is read; guardians from
guardians. Blocklists come from the statuses of the cards (read without building the cards),
their versions and recent changes from blocklist_changes; misuse signals from misuse_signals;
heartbeats from terminal_status; the keys of every booked offline record (and the debts they
left) from offline_transactions.
"""

from __future__ import annotations

import gc
import json
from dataclasses import dataclass, field

from onecard_hub.campus_loader import CampusLoader
from onecard_hub.domain.campus import Campus, GatePass, PinHasher, Purchase
from onecard_hub.domain.card_lifecycle import CardBook
from onecard_hub.domain.clock import business_day
from onecard_hub.domain.exam import CheckIn, ExamSession, Seat
from onecard_hub.domain.guardian import Guardian, Relation
from onecard_hub.domain.ledger import Account, AccountKind, Ledger
from onecard_hub.domain.library import Library, Loan
from onecard_hub.domain.model import (
    CardKeys,
    Operator,
    Presence,
    Scene,
    School,
    Terminal,
    TerminalKind,
)
from onecard_hub.domain.offline import OfflineBook
from onecard_hub.domain.pii import mask_name
from onecard_hub.domain.pilot import live_scenes_from_text
from onecard_hub.domain.policy import policy_from_json
from onecard_hub.domain.usage import UsageBook, window_start
from onecard_hub.idempotency import Entry, Registry
from onecard_hub.security.keys import HubKeys
from onecard_hub.store.records import Snapshot, TerminalRow

AUTHORIZE = "Authorize"
REFUND = "Refund"
REVERSE = "Reverse"
OUTCOME_REVERSED = 1
OUTCOME_ORIGINAL_NOT_SEEN = 3


@dataclass
class HotState:
    campus: Campus
    registry: Registry
    merchant_accounts: dict[str, int]
    offline: OfflineBook
    card_office: CardBook
    loader: CampusLoader | None = None  # builds students and cards when first needed
    library: Library = field(default_factory=Library)  # open loans
    exams: dict[str, ExamSession] = field(default_factory=dict)  # by session_id
    usage: UsageBook = field(default_factory=UsageBook)  # usage statistics of the last days


def terminal_from_row(row: TerminalRow, merchant_accounts: dict[str, int]) -> Terminal:
    return Terminal(
        terminal_id=row.terminal_id,
        school_id=row.school_id,
        kind=TerminalKind(row.kind),
        location=row.location,
        gate_group=row.gate_group,
        merchant_id=row.merchant_id,
        enabled=row.enabled,
        merchant_account_id=merchant_accounts.get(row.merchant_id, 0),
    )


def rebuild(snap: Snapshot, keys: HubKeys, pin_hasher: PinHasher, now_ms: int) -> HotState:
    was_collecting = gc.isenabled()
    gc.disable()  # millions of objects that live as long as the hub: no collection halfway through
    try:
        state = _rebuild(snap, keys, pin_hasher, now_ms)
        # ... nor after: the first collections would walk them all (at 1M accounts 0.2 s each for
        # the young generations, 0.3 s for the full one); server.keep_collections_short freezes
        # what survives from then on, and unfreezes everything for its hourly full collection
        gc.freeze()
        return state
    finally:
        if was_collecting:
            gc.enable()


def _rebuild(snap: Snapshot, keys: HubKeys, pin_hasher: PinHasher, now_ms: int) -> HotState:
    if snap.campus_rows is None:
        raise ValueError("a snapshot without the campus' students and cards (store.load makes them)")
    ledger = _ledger(snap)
    campus = Campus(ledger, pin_hasher)
    for s in snap.schools:
        campus.schools[s.school_id] = School(
            s.school_id, s.name, policy_from_json(s.policy_json), live_scenes_from_text(s.live_scenes)
        )
    card_book = CardBook()  # each student's current card: the newest live one, in issue order
    loader = CampusLoader(
        snap.campus_rows, campus, card_book, CardKeys(keys.issuer_master.key, keys.ecard_master.key)
    )
    loader.attach()  # students and cards are built when first needed (campus_loader.py)
    for g in snap.guardians:
        card_book.guardians.setdefault(g.student_id, []).append(
            Guardian(
                mask_name(g.name), g.id_number_index, g.id_number_masked, Relation(g.relation), g.added_ms
            )
        )
    merchant_accounts = {m.merchant_id: m.account_id for m in snap.merchants}
    for t in snap.terminals:
        campus.terminals[t.terminal_id] = terminal_from_row(t, merchant_accounts)
    for o in snap.operators:
        campus.operators[o.operator_id] = Operator(o.operator_id, o.school_id, o.role)
    for h in snap.terminal_status:
        known = campus.terminals.get(h.terminal_id)
        if known is not None:
            known.last_seen_ms = h.last_seen_ms
            known.software_version = h.software_version
            known.offline_pending = h.offline_pending
    campus.build_blocklists(snap.blocklist_changes, loader.blocked_cards())
    campus.misuse.restore(snap.misuse_signals)
    today = business_day(now_ms)
    offline = OfflineBook()
    for record in snap.offline:
        offline.remember(record, campus)
        if record.scene == Scene.CANTEEN_PURCHASE and business_day(record.occurred_ms) == today:
            wallet = campus.students[record.student_id].wallet
            wallet.roll_to(today)
            wallet.spent_today_fen += record.amount_fen

    registry = Registry()
    for row in snap.requests:
        key = (row.caller, row.request_id)
        entry = Entry(row.method, row.fingerprint, row.created_ms, row.response)
        if row.method == AUTHORIZE and row.reason == 0:
            card = campus.cards.get(row.card_no)
            terminal = campus.terminals.get(row.caller)
            if card is not None and terminal is not None:
                if row.scene == Scene.CANTEEN_PURCHASE:
                    entry.undo = Purchase(
                        card.student.wallet,
                        ledger.accounts[terminal.merchant_account_id],
                        row.amount_fen,
                        row.business_day,
                        row.meal_window,
                    )
                else:
                    entry.undo = GatePass(card, Presence.UNKNOWN)
        elif row.method == REFUND:
            original = registry.get((row.caller, row.origin_request_id))
            if original is not None and isinstance(original.undo, Purchase):
                original.undo.refunded_fen += row.amount_fen
        elif row.method == REVERSE:
            origin = (row.caller, row.origin_request_id)
            original = registry.get(origin)
            if row.outcome == OUTCOME_ORIGINAL_NOT_SEEN and original is None:
                registry.put(origin, Entry("", b"", row.created_ms, tombstone=True))
            elif row.outcome == OUTCOME_REVERSED and original is not None and original.undo is not None:
                original.undo.reversed = True
        if row.qr_expires_ms > now_ms:
            campus.used_nonces[row.card_no.encode() + row.qr_nonce] = row.qr_expires_ms
        registry.put(key, entry)

    for entry in registry.entries.values():
        purchase = entry.undo
        if isinstance(purchase, Purchase) and purchase.day == today and not purchase.reversed:
            wallet = purchase.wallet
            wallet.roll_to(today)
            wallet.spent_today_fen += purchase.amount_fen
            wallet.meal_counts[purchase.meal_window] = wallet.meal_counts.get(purchase.meal_window, 0) + 1
    state = HotState(campus, registry, merchant_accounts, offline, card_book, loader)
    state.library, state.exams = _library(snap, campus), _exams(snap)
    state.usage = _usage(snap, campus, today)
    return state


# -- the ledger: a million accounts, built straight from the store's tuples ----------------------


def _ledger(snap: Snapshot) -> Ledger:
    ledger = Ledger()
    accounts = ledger.accounts
    kinds = {k.value: k for k in AccountKind}
    for chunk in snap.accounts.chunks():
        for account_id, kind, owner, balance_fen in chunk:
            accounts[account_id] = Account(account_id, kinds[kind], owner, balance_fen)
    return ledger


def _usage(snap: Snapshot, campus: Campus, today: int) -> UsageBook:
    """Taps of the usage window from the journal, and the offline records booked for those days."""
    usage = UsageBook()
    usage.last_day.update(snap.card_last_used)
    for t in snap.tap_counts:
        terminal = campus.terminals.get(t.terminal_id)
        if terminal is not None:
            usage.record_past(terminal.school_id, "", t.scene, t.business_day, t.approved, t.declined)
    first = window_start(today)
    for record in snap.offline:
        day = business_day(record.occurred_ms)
        terminal = campus.terminals.get(record.terminal_id)
        if day >= first and terminal is not None:
            usage.record_past(terminal.school_id, record.card_no, record.scene, day, 1, 0)
    return usage


def _library(snap: Snapshot, campus: Campus) -> Library:
    library = Library()
    for row in snap.loans:
        student = campus.students[row.student_id]
        library.restore(
            Loan(row.loan_id, row.school_id, row.book_id, student, row.card_no, row.borrowed_ms, row.due_ms)
        )
    return library


def _exams(snap: Snapshot) -> dict[str, ExamSession]:
    sessions = {
        r.session_id: ExamSession(
            r.session_id,
            r.school_id,
            r.subject,
            tuple(json.loads(r.rooms_json)),
            r.start_ms,
            r.end_ms,
            r.opens_before_min,
            r.closes_after_min,
            r.created_ms,
            r.closed_ms,
        )
        for r in snap.exam_sessions
    }
    for seat in snap.exam_seats:
        sessions[seat.session_id].seat_student(seat.student_id, Seat(seat.room, seat.seat))
    for c in snap.exam_check_ins:
        sessions[c.session_id].record(
            CheckIn(c.student_id, c.expected_room, c.room, c.at_ms, c.terminal_id, c.request_id)
        )
    return sessions
