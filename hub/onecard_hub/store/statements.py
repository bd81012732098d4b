"""The SQL the SQLite store runs on the journal, and the parameters it binds from the hub's rows."""

from __future__ import annotations

from typing import Any

from onecard_hub.domain.ledger import Transfer
from onecard_hub.domain.offline import BOOKED, OfflineRecord
from onecard_hub.store.records import (
    AccountRow,
    AuditRow,
    CardRow,
    GuardianRow,
    RequestRow,
    StudentRow,
    TerminalRow,
)

INSERT_REQUEST = (
    "INSERT INTO requests (caller, request_id, method, fingerprint, response, created_ms, seq, card_no,"
    " scene, reason, amount_fen, business_day, meal_window, qr_nonce, qr_expires_ms, origin_request_id,"
    " outcome) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
)
INSERT_TRANSFER = (
    "INSERT INTO transfers (from_account, to_account, amount_fen, kind, caller, request_id,"
    " origin_request_id, created_ms) VALUES (?, ?, ?, ?, ?, ?, ?, ?)"
)
APPEND_CARD_STATE = "INSERT INTO card_state_log (card_no, atc, pin_failures, presence) VALUES (?, ?, ?, ?)"
# A whole fold in one transaction (on a clean stop; store/fold.py folds in chunks while the hub
# runs): balances take in what pending_deltas says each has not taken in yet, card_state takes the
# latest logged state of each card, and the log starts over.
FOLDED_ALL = (
    "UPDATE checkpoints SET position = (SELECT COALESCE(MAX(transfer_id), 0) FROM transfers)"
    " WHERE name = 'transfers'",
    "UPDATE fold_progress SET fold_to = (SELECT position FROM checkpoints WHERE name = 'transfers'),"
    " cursor = 0",
)
CHECKPOINT = (
    "UPDATE accounts SET balance_fen = balance_fen + d.delta FROM pending_deltas AS d"
    " WHERE d.account = accounts.account_id",
    *FOLDED_ALL,
    "INSERT INTO card_state (card_no, atc, pin_failures, presence)"
    " SELECT card_no, atc, pin_failures, presence FROM card_state_log"
    " WHERE entry_id IN (SELECT MAX(entry_id) FROM card_state_log GROUP BY card_no)"
    " ON CONFLICT (card_no) DO UPDATE SET atc = excluded.atc, pin_failures = excluded.pin_failures,"
    " presence = excluded.presence",
    "DELETE FROM card_state_log",
)
UPSERT_TERMINAL = (
    "INSERT INTO terminals (terminal_id, school_id, kind, location, gate_group, merchant_id, enabled)"
    " VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (terminal_id) DO UPDATE SET school_id = excluded.school_id,"
    " kind = excluded.kind, location = excluded.location, gate_group = excluded.gate_group,"
    " merchant_id = excluded.merchant_id, enabled = excluded.enabled"
)

UPSERT_TERMINAL_STATUS = (
    "INSERT INTO terminal_status (terminal_id, last_seen_ms, software_version, offline_pending)"
    " VALUES (?, ?, ?, ?) ON CONFLICT (terminal_id) DO UPDATE SET last_seen_ms = excluded.last_seen_ms,"
    " software_version = excluded.software_version, offline_pending = excluded.offline_pending"
)
OFFLINE_COLUMNS = (
    "terminal_id, serial, card_no, student_id, atc, qr_nonce, scene, amount_fen, occurred_ms, booked_ms,"
    " outcome, reason, debt_fen, balance_after_fen, request_id"
)
# A booked record never changes; a rejected one is replaced when a later upload books it or
# rejects it again.
UPSERT_OFFLINE = (
    f"INSERT INTO offline_transactions ({OFFLINE_COLUMNS}) VALUES ({', '.join('?' * 15)})"
    " ON CONFLICT (terminal_id, serial) DO UPDATE SET card_no = excluded.card_no,"
    " student_id = excluded.student_id, atc = excluded.atc, qr_nonce = excluded.qr_nonce,"
    " scene = excluded.scene, amount_fen = excluded.amount_fen, occurred_ms = excluded.occurred_ms,"
    " booked_ms = excluded.booked_ms, outcome = excluded.outcome, reason = excluded.reason,"
    " debt_fen = excluded.debt_fen, balance_after_fen = excluded.balance_after_fen,"
    f" request_id = excluded.request_id WHERE offline_transactions.outcome != {BOOKED}"
)


def request_params(r: RequestRow) -> tuple[Any, ...]:
    return (
        r.caller,
        r.request_id,
        r.method,
        r.fingerprint,
        r.response,
        r.created_ms,
        r.seq,
        r.card_no,
        r.scene,
        r.reason,
        r.amount_fen,
        r.business_day,
        r.meal_window,
        r.qr_nonce,
        r.qr_expires_ms,
        r.origin_request_id,
        r.outcome,
    )


def transfer_params(t: Transfer) -> tuple[Any, ...]:
    return (
        t.from_account,
        t.to_account,
        t.amount_fen,
        t.kind.value,
        t.caller,
        t.request_id,
        t.origin_request_id,
        t.created_ms,
    )


def offline_params(o: OfflineRecord) -> tuple[Any, ...]:
    return (
        o.terminal_id,
        o.serial,
        o.card_no,
        o.student_id,
        o.atc,
        o.qr_nonce,
        o.scene,
        o.amount_fen,
        o.occurred_ms,
        o.booked_ms,
        o.outcome,
        o.reason,
        o.debt_fen,
        o.balance_after_fen,
        o.request_id,
    )


def terminal_params(t: TerminalRow) -> tuple[Any, ...]:
    return (t.terminal_id, t.school_id, t.kind, t.location, t.gate_group, t.merchant_id, int(t.enabled))


# The card office: a card row carries everything but its counters (those are in card_state).
CARD_COLUMNS = (
    "card_no, student_id, status, pin_hash, bank_code, bank_status, generation, ecard_issued,"
    " ecard_suspended, issued_ms, replaced_by"
)
UPSERT_CARD = (
    f"INSERT INTO cards ({CARD_COLUMNS}) VALUES ({', '.join('?' * 11)})"
    " ON CONFLICT (card_no) DO UPDATE SET status = excluded.status, pin_hash = excluded.pin_hash,"
    " bank_code = excluded.bank_code, bank_status = excluded.bank_status,"
    " generation = excluded.generation, ecard_issued = excluded.ecard_issued,"
    " ecard_suspended = excluded.ecard_suspended, issued_ms = excluded.issued_ms,"
    " replaced_by = excluded.replaced_by"
)
GUARDIAN_COLUMNS = "student_id, id_number_index, id_number_enc, id_number_masked, name, relation, added_ms"
UPSERT_GUARDIAN = (
    f"INSERT INTO guardians ({GUARDIAN_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?)"
    " ON CONFLICT (student_id, id_number_index) DO UPDATE SET id_number_enc = excluded.id_number_enc,"
    " id_number_masked = excluded.id_number_masked, name = excluded.name, relation = excluded.relation"
)
AUDIT_COLUMNS = "at_ms, actor_kind, actor_id, school_id, student_id, card_no, action, request_id, details"
INSERT_AUDIT = f"INSERT INTO audit_log ({AUDIT_COLUMNS}) VALUES ({', '.join('?' * 9)})"


def card_params(c: CardRow) -> tuple[Any, ...]:
    return (
        c.card_no,
        c.student_id,
        c.status,
        c.pin_hash,
        c.bank_code,
        c.bank_status,
        c.generation,
        int(c.ecard_issued),
        int(c.ecard_suspended),
        c.issued_ms,
        c.replaced_by,
    )


def guardian_params(g: GuardianRow) -> tuple[Any, ...]:
    return (
        g.student_id,
        g.id_number_index,
        g.id_number_enc,
        g.id_number_masked,
        g.name,
        g.relation,
        g.added_ms,
    )


def audit_params(a: AuditRow) -> tuple[Any, ...]:
    return (
        a.at_ms,
        a.actor_kind,
        a.actor_id,
        a.school_id,
        a.student_id,
        a.card_no,
        a.action,
        a.request_id,
        a.details,
    )


# -- student records (学籍) and the pilot roll-out -----------------------------------------

INSERT_ACCOUNT = "INSERT INTO accounts (account_id, kind, owner, balance_fen) VALUES (?, ?, ?, ?)"
INSERT_STUDENT = (
    "INSERT INTO students (student_id, school_id, name, id_number_enc, id_number_index, id_number_masked,"
    " birth_date, student_group, enrollment, wallet_account_id) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
)
UPDATE_STUDENT_STATUS = "UPDATE students SET school_id = ?, enrollment = ? WHERE student_id = ?"
UPDATE_LIVE_SCENES = "UPDATE schools SET live_scenes = ? WHERE school_id = ?"


def account_params(a: AccountRow) -> tuple[Any, ...]:
    return (a.account_id, a.kind, a.owner, a.balance_fen)


def student_params(s: StudentRow) -> tuple[Any, ...]:
    return (
        s.student_id,
        s.school_id,
        s.name,
        s.id_number_enc,
        s.id_number_index,
        s.id_number_masked,
        s.birth_date,
        s.student_group,
        s.enrollment,
        s.wallet_account_id,
    )


# The library and exam scenes: a loan is written when made and again when returned; a session
# when created and again when closed; a seat whenever a student is seated or moved.
LOAN_COLUMNS = "loan_id, school_id, book_id, student_id, card_no, borrowed_ms, due_ms, returned_ms"
UPSERT_LOAN = (
    f"INSERT INTO loans ({LOAN_COLUMNS}) VALUES ({', '.join('?' * 8)})"
    " ON CONFLICT (loan_id) DO UPDATE SET returned_ms = excluded.returned_ms"
)
EXAM_SESSION_COLUMNS = (
    "session_id, school_id, subject, rooms_json, start_ms, end_ms, opens_before_min, closes_after_min,"
    " created_ms, closed_ms"
)
UPSERT_EXAM_SESSION = (
    f"INSERT INTO exam_sessions ({EXAM_SESSION_COLUMNS}) VALUES ({', '.join('?' * 10)})"
    " ON CONFLICT (session_id) DO UPDATE SET closed_ms = excluded.closed_ms"
)
EXAM_SEAT_COLUMNS = "session_id, student_id, room, seat"
UPSERT_EXAM_SEAT = (
    f"INSERT INTO exam_seats ({EXAM_SEAT_COLUMNS}) VALUES (?, ?, ?, ?)"
    " ON CONFLICT (session_id, student_id) DO UPDATE SET room = excluded.room, seat = excluded.seat"
)
EXAM_CHECK_IN_COLUMNS = "session_id, student_id, expected_room, room, at_ms, terminal_id, request_id"
INSERT_EXAM_CHECK_IN = f"INSERT INTO exam_check_ins ({EXAM_CHECK_IN_COLUMNS}) VALUES ({', '.join('?' * 7)})"
