"""The SQL the SQLite store runs on the journal, and the parameters it binds from the hub's rows."""

from __future__ import annotations

from typing import Any

from onecard_hub.domain.ledger import Transfer
from onecard_hub.domain.offline import BOOKED, OfflineRecord
from onecard_hub.store.records import RequestRow, TerminalRow

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
# A checkpoint, in one transaction: balances take in the transfers since the last checkpoint,
# card_state takes the latest logged state of each card, and the log starts over.
CHECKPOINT = (
    "UPDATE accounts SET balance_fen = balance_fen + d.delta FROM pending_deltas AS d"
    " WHERE d.account = accounts.account_id",
    "UPDATE checkpoints SET position = (SELECT COALESCE(MAX(transfer_id), 0) FROM transfers)"
    " WHERE name = 'transfers'",
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
