"""SQLite schema, as numbered migrations. A database is brought forward one step at a time.

The schema version is SQLite's `PRAGMA user_version` (0: no schema); every hub database carries
APPLICATION_ID in `PRAGMA application_id`, written with its first migration (`onecard-hub seed`).
"""

from __future__ import annotations

import re

# "OCHB", OneCard Hub: bytes 68-71 of the file's header. Databases seeded before it existed carry 0
# and are recognised by their schema instead (store/checks.py); the hub writes the id the first time
# it opens one.
APPLICATION_ID = 0x4F434842

MIGRATIONS: tuple[str, ...] = (
    # 1: the campus, the ledger, and the request journal
    """
    CREATE TABLE schools (
        school_id   TEXT PRIMARY KEY,
        name        TEXT NOT NULL,
        policy_json TEXT NOT NULL
    );
    CREATE TABLE accounts (
        account_id  INTEGER PRIMARY KEY,
        kind        TEXT NOT NULL,
        owner       TEXT NOT NULL,
        balance_fen INTEGER NOT NULL DEFAULT 0
    );
    CREATE TABLE students (
        student_id        TEXT PRIMARY KEY,
        school_id         TEXT NOT NULL REFERENCES schools (school_id),
        name              TEXT NOT NULL,
        id_number_enc     BLOB NOT NULL,
        id_number_index   BLOB NOT NULL UNIQUE,
        id_number_masked  TEXT NOT NULL,
        birth_date        TEXT NOT NULL,
        student_group     TEXT NOT NULL,
        enrollment        TEXT NOT NULL,
        wallet_account_id INTEGER NOT NULL REFERENCES accounts (account_id)
    );
    CREATE TABLE cards (
        card_no    TEXT PRIMARY KEY,
        student_id TEXT NOT NULL REFERENCES students (student_id),
        status     TEXT NOT NULL,
        pin_hash   BLOB NOT NULL,
        bank_code  TEXT NOT NULL
    );
    CREATE TABLE card_state (
        card_no      TEXT PRIMARY KEY,
        atc          INTEGER NOT NULL,
        pin_failures INTEGER NOT NULL,
        presence     INTEGER NOT NULL
    ) WITHOUT ROWID;
    CREATE TABLE merchants (
        merchant_id TEXT PRIMARY KEY,
        school_id   TEXT NOT NULL REFERENCES schools (school_id),
        name        TEXT NOT NULL,
        account_id  INTEGER NOT NULL REFERENCES accounts (account_id)
    );
    CREATE TABLE terminals (
        terminal_id TEXT PRIMARY KEY,
        school_id   TEXT NOT NULL REFERENCES schools (school_id),
        kind        INTEGER NOT NULL,
        location    TEXT NOT NULL,
        gate_group  TEXT NOT NULL,
        merchant_id TEXT NOT NULL,
        enabled     INTEGER NOT NULL
    );
    CREATE TABLE operators (
        operator_id TEXT PRIMARY KEY,
        school_id   TEXT NOT NULL,
        role        TEXT NOT NULL
    );
    -- Every answered mutating call, append-only: the idempotency record (the hub keeps
    -- the last retention window in memory) and the history of taps.
    CREATE TABLE requests (
        caller            TEXT NOT NULL,
        request_id        TEXT NOT NULL,
        method            TEXT NOT NULL,
        fingerprint       BLOB NOT NULL,
        response          BLOB NOT NULL,
        created_ms        INTEGER NOT NULL,
        seq               INTEGER NOT NULL,
        card_no           TEXT NOT NULL,
        scene             INTEGER NOT NULL,
        reason            INTEGER NOT NULL,
        amount_fen        INTEGER NOT NULL,
        business_day      INTEGER NOT NULL,
        meal_window       TEXT NOT NULL,
        qr_nonce          BLOB NOT NULL,
        qr_expires_ms     INTEGER NOT NULL,
        origin_request_id TEXT NOT NULL,
        outcome           INTEGER NOT NULL
    );
    CREATE INDEX requests_by_time ON requests (created_ms);
    -- The double-entry ledger, append-only.
    CREATE TABLE transfers (
        transfer_id       INTEGER PRIMARY KEY,
        from_account      INTEGER NOT NULL,
        to_account        INTEGER NOT NULL,
        amount_fen        INTEGER NOT NULL CHECK (amount_fen > 0),
        kind              TEXT NOT NULL,
        caller            TEXT NOT NULL,
        request_id        TEXT NOT NULL,
        origin_request_id TEXT NOT NULL,
        created_ms        INTEGER NOT NULL
    );
    CREATE INDEX transfers_by_time ON transfers (created_ms);
    """,
    # 2: balances and card state become checkpoints. A group commit appends only (requests,
    # transfers, card_state_log); every so often a checkpoint folds the transfers since the last
    # checkpoint into accounts.balance_fen and the card log into card_state, so the hot path
    # never rewrites random pages. The views give the current values at any time.
    """
    CREATE TABLE checkpoints (
        name     TEXT PRIMARY KEY,
        position INTEGER NOT NULL
    );
    INSERT INTO checkpoints (name, position)
        SELECT 'transfers', COALESCE(MAX(transfer_id), 0) FROM transfers;
    CREATE TABLE card_state_log (
        entry_id     INTEGER PRIMARY KEY,
        card_no      TEXT NOT NULL,
        atc          INTEGER NOT NULL,
        pin_failures INTEGER NOT NULL,
        presence     INTEGER NOT NULL
    );
    CREATE VIEW transfers_since_checkpoint AS
        SELECT * FROM transfers
        WHERE transfer_id > (SELECT position FROM checkpoints WHERE name = 'transfers');
    CREATE VIEW pending_deltas AS
        SELECT account, SUM(delta) AS delta FROM (
            SELECT to_account AS account, amount_fen AS delta FROM transfers_since_checkpoint
            UNION ALL
            SELECT from_account, -amount_fen FROM transfers_since_checkpoint)
        GROUP BY account;
    CREATE VIEW account_balances AS
        SELECT a.account_id, a.kind, a.owner, a.balance_fen + COALESCE(d.delta, 0) AS balance_fen
        FROM accounts a LEFT JOIN pending_deltas d ON d.account = a.account_id;
    CREATE VIEW card_states AS
        SELECT card_no, atc, pin_failures, presence FROM card_state
        WHERE card_no NOT IN (SELECT card_no FROM card_state_log)
        UNION ALL
        SELECT card_no, atc, pin_failures, presence FROM card_state_log
        WHERE entry_id IN (SELECT MAX(entry_id) FROM card_state_log GROUP BY card_no);
    """,
    # 3: the terminal fleet. Heartbeats (one row per terminal, replaced by each heartbeat), and the
    # transactions terminals made offline and uploaded later: one row per (terminal, serial), kept
    # for good, so that a batch uploaded again, even after a restart, books nothing twice. A rejected
    # record may be booked by a later upload (its row is then replaced); a booked one never changes.
    """
    CREATE TABLE terminal_status (
        terminal_id      TEXT PRIMARY KEY,
        last_seen_ms     INTEGER NOT NULL,
        software_version TEXT NOT NULL,
        offline_pending  INTEGER NOT NULL
    ) WITHOUT ROWID;
    CREATE TABLE offline_transactions (
        terminal_id       TEXT NOT NULL,
        serial            INTEGER NOT NULL,
        card_no           TEXT NOT NULL,
        student_id        TEXT NOT NULL,
        atc               INTEGER NOT NULL,
        qr_nonce          BLOB NOT NULL,
        scene             INTEGER NOT NULL,
        amount_fen        INTEGER NOT NULL,
        occurred_ms       INTEGER NOT NULL,
        booked_ms         INTEGER NOT NULL,
        outcome           INTEGER NOT NULL,
        reason            INTEGER NOT NULL,
        debt_fen          INTEGER NOT NULL,
        balance_after_fen INTEGER NOT NULL,
        request_id        TEXT NOT NULL,
        PRIMARY KEY (terminal_id, serial)
    );
    """,
    # 4: the card office (issue 4). A card's bank function (set by the bank, through the provincial
    # feed), generation and e-card; the card that replaced it. Guardians of minors, their ID numbers
    # only encrypted with a keyed index. The audit log of card-office actions, append-only, details
    # masked; queried by student and by operator.
    """
    ALTER TABLE cards ADD COLUMN bank_status TEXT NOT NULL DEFAULT 'active';
    ALTER TABLE cards ADD COLUMN generation INTEGER NOT NULL DEFAULT 3;
    ALTER TABLE cards ADD COLUMN ecard_issued INTEGER NOT NULL DEFAULT 1;
    ALTER TABLE cards ADD COLUMN ecard_suspended INTEGER NOT NULL DEFAULT 0;
    ALTER TABLE cards ADD COLUMN issued_ms INTEGER NOT NULL DEFAULT 0;
    ALTER TABLE cards ADD COLUMN replaced_by TEXT NOT NULL DEFAULT '';
    CREATE INDEX cards_by_student ON cards (student_id);
    CREATE TABLE guardians (
        student_id       TEXT NOT NULL REFERENCES students (student_id),
        id_number_index  BLOB NOT NULL,
        id_number_enc    BLOB NOT NULL,
        id_number_masked TEXT NOT NULL,
        name             TEXT NOT NULL,
        relation         TEXT NOT NULL,
        added_ms         INTEGER NOT NULL,
        PRIMARY KEY (student_id, id_number_index)
    );
    CREATE TABLE audit_log (
        audit_id   INTEGER PRIMARY KEY,
        at_ms      INTEGER NOT NULL,
        actor_kind TEXT NOT NULL,
        actor_id   TEXT NOT NULL,
        school_id  TEXT NOT NULL,
        student_id TEXT NOT NULL,
        card_no    TEXT NOT NULL,
        action     TEXT NOT NULL,
        request_id TEXT NOT NULL,
        details    TEXT NOT NULL
    );
    CREATE INDEX audit_by_student ON audit_log (student_id, audit_id);
    CREATE INDEX audit_by_actor ON audit_log (actor_id, audit_id);
    """,
    # 5: student records and the pilot roll-out (issue 4). A school's live scenes: scene numbers,
    # comma-separated; NULL means every scene (a school nobody restricted, and new scenes with it).
    # Students by school, for a school's roster and its counts.
    """
    ALTER TABLE schools ADD COLUMN live_scenes TEXT;
    CREATE INDEX students_by_school ON students (school_id);
    """,
    # library and exam scenes (issue 4). Loans: one row per loan, returned_ms set when the book
    # comes back (only open loans are loaded at start). Exam sessions (rooms as a JSON list;
    # closed_ms 0 while open), their seating roster (one seat per student, replaced when moved),
    # and every check-in and wrong-room attempt, append-only.
    """
    CREATE TABLE loans (
        loan_id     TEXT PRIMARY KEY,
        school_id   TEXT NOT NULL,
        book_id     TEXT NOT NULL,
        student_id  TEXT NOT NULL,
        card_no     TEXT NOT NULL,
        borrowed_ms INTEGER NOT NULL,
        due_ms      INTEGER NOT NULL,
        returned_ms INTEGER NOT NULL
    );
    CREATE INDEX loans_open ON loans (returned_ms, school_id);
    CREATE TABLE exam_sessions (
        session_id       TEXT PRIMARY KEY,
        school_id        TEXT NOT NULL,
        subject          TEXT NOT NULL,
        rooms_json       TEXT NOT NULL,
        start_ms         INTEGER NOT NULL,
        end_ms           INTEGER NOT NULL,
        opens_before_min INTEGER NOT NULL,
        closes_after_min INTEGER NOT NULL,
        created_ms       INTEGER NOT NULL,
        closed_ms        INTEGER NOT NULL
    );
    CREATE TABLE exam_seats (
        session_id TEXT NOT NULL REFERENCES exam_sessions (session_id),
        student_id TEXT NOT NULL,
        room       TEXT NOT NULL,
        seat       TEXT NOT NULL,
        PRIMARY KEY (session_id, student_id)
    );
    CREATE TABLE exam_check_ins (
        session_id    TEXT NOT NULL REFERENCES exam_sessions (session_id),
        student_id    TEXT NOT NULL,
        expected_room TEXT NOT NULL,
        room          TEXT NOT NULL,
        at_ms         INTEGER NOT NULL,
        terminal_id   TEXT NOT NULL,
        request_id    TEXT NOT NULL
    );
    CREATE INDEX exam_check_ins_by_session ON exam_check_ins (session_id);
    """,
    # The live blocklist and misuse signals (issue 4). Every change of a school's blocklist, with
    # its version (per school, from 1, monotonic), written in the batch of the status change that
    # made it; a restart reads the newest back. Misuse signals (a card used at two places too close
    # in time), with both taps as evidence, written with the tap that raised them.
    """
    CREATE TABLE blocklist_changes (
        school_id  TEXT NOT NULL,
        version    INTEGER NOT NULL,
        card_no    TEXT NOT NULL,
        added      INTEGER NOT NULL,
        changed_ms INTEGER NOT NULL,
        PRIMARY KEY (school_id, version)
    ) WITHOUT ROWID;
    CREATE TABLE misuse_signals (
        signal_id          INTEGER PRIMARY KEY,
        kind               TEXT NOT NULL,
        card_no            TEXT NOT NULL,
        student_id         TEXT NOT NULL,
        school_id          TEXT NOT NULL,
        first_terminal_id  TEXT NOT NULL,
        first_school_id    TEXT NOT NULL,
        first_place        TEXT NOT NULL,
        first_scene        INTEGER NOT NULL,
        first_ms           INTEGER NOT NULL,
        second_terminal_id TEXT NOT NULL,
        second_school_id   TEXT NOT NULL,
        second_place       TEXT NOT NULL,
        second_scene       INTEGER NOT NULL,
        second_ms          INTEGER NOT NULL
    );
    CREATE INDEX misuse_by_school ON misuse_signals (school_id, signal_id);
    """,
    # the provincial card system's feed (issue 4, cardsys_feed.py): every change the hub took from
    # it, applied or skipped, by the feed's version; the highest is where the feed resumes.
    """
    CREATE TABLE cardsys_changes (
        version     INTEGER PRIMARY KEY,
        card_no     TEXT NOT NULL,
        function    TEXT NOT NULL,
        action      TEXT NOT NULL,
        channel     TEXT NOT NULL,
        occurred_ms INTEGER NOT NULL,
        applied_ms  INTEGER NOT NULL,
        outcome     TEXT NOT NULL
    );
    """,
    # grants (奖助学金, issue 5, grants/): batches, their items (one per student: the current bank
    # transfer id is written before the bank is called), and the advance notices to students whose
    # bank function is not activated.
    """
    CREATE TABLE grant_batches (
        school_id     TEXT NOT NULL,
        batch_id      TEXT NOT NULL,
        grant_type    INTEGER NOT NULL,
        academic_year TEXT NOT NULL,
        status        INTEGER NOT NULL,
        submitted_by  TEXT NOT NULL,
        approved_by   TEXT NOT NULL,
        created_ms    INTEGER NOT NULL,
        PRIMARY KEY (school_id, batch_id)
    );
    CREATE TABLE grant_items (
        school_id   TEXT NOT NULL,
        batch_id    TEXT NOT NULL,
        student_id  TEXT NOT NULL,
        line_no     INTEGER NOT NULL,
        amount_fen  INTEGER NOT NULL CHECK (amount_fen > 0),
        status      INTEGER NOT NULL,
        fail_reason INTEGER NOT NULL,
        attempts    INTEGER NOT NULL,
        transfer_id TEXT NOT NULL,
        bank_code   TEXT NOT NULL,
        card_no     TEXT NOT NULL,
        updated_ms  INTEGER NOT NULL,
        PRIMARY KEY (school_id, batch_id, student_id)
    );
    CREATE TABLE grant_notices (
        school_id   TEXT NOT NULL,
        batch_id    TEXT NOT NULL,
        student_id  TEXT NOT NULL,
        name_masked TEXT NOT NULL,
        grant_type  INTEGER NOT NULL,
        amount_fen  INTEGER NOT NULL,
        created_ms  INTEGER NOT NULL,
        message     TEXT NOT NULL,
        PRIMARY KEY (school_id, batch_id, student_id)
    );
    """,
    # settlement (issue 5, settlement/): payments to bank accounts — a merchant's day, a leaving
    # student's wallet — one row per purpose, the current attempt's transfer id written before the
    # bank is called; reconciliation reports (对账) per bank and business date.
    """
    CREATE TABLE settlement_payments (
        payment_key      TEXT PRIMARY KEY,
        purpose          TEXT NOT NULL,
        party_id         TEXT NOT NULL,
        school_id        TEXT NOT NULL,
        business_date    TEXT NOT NULL,
        booked_date      TEXT NOT NULL,
        bank_code        TEXT NOT NULL,
        payee            TEXT NOT NULL,
        amount_fen       INTEGER NOT NULL,
        sales_fen        INTEGER NOT NULL,
        sales_count      INTEGER NOT NULL,
        given_back_fen   INTEGER NOT NULL,
        given_back_count INTEGER NOT NULL,
        status           TEXT NOT NULL,
        failure          TEXT NOT NULL,
        attempts         INTEGER NOT NULL,
        transfer_id      TEXT NOT NULL,
        updated_ms       INTEGER NOT NULL
    );
    CREATE TABLE reconciliation_reports (
        bank_code     TEXT NOT NULL,
        business_date TEXT NOT NULL,
        unexplained   INTEGER NOT NULL,
        report        BLOB NOT NULL,
        created_ms    INTEGER NOT NULL,
        PRIMARY KEY (bank_code, business_date)
    );
    """,
    # funds (issue 5, funds/): top-ups 圈存 (written PENDING with their transfer id before the
    # debit; upserted as they settle), auto top-up settings, changes of co-branded bank.
    """
    CREATE TABLE topups (
        topup_id      TEXT PRIMARY KEY,
        student_id    TEXT NOT NULL,
        school_id     TEXT NOT NULL,
        card_no       TEXT NOT NULL,
        bank_code     TEXT NOT NULL,
        amount_fen    INTEGER NOT NULL,
        origin        TEXT NOT NULL,
        business_date TEXT NOT NULL,
        created_ms    INTEGER NOT NULL,
        state         TEXT NOT NULL,
        reason        TEXT NOT NULL,
        reversals     INTEGER NOT NULL,
        updated_ms    INTEGER NOT NULL
    );
    CREATE TABLE auto_topups (
        student_id    TEXT PRIMARY KEY,
        enabled       INTEGER NOT NULL,
        threshold_fen INTEGER NOT NULL,
        amount_fen    INTEGER NOT NULL,
        last_topup_id TEXT NOT NULL,
        last_failure  TEXT NOT NULL,
        updated_ms    INTEGER NOT NULL
    );
    CREATE TABLE bank_changes (
        student_id    TEXT NOT NULL,
        card_no       TEXT NOT NULL,
        old_bank_code TEXT NOT NULL,
        new_bank_code TEXT NOT NULL,
        created_ms    INTEGER NOT NULL,
        state         TEXT NOT NULL,
        paid_out_fen  INTEGER NOT NULL,
        updated_ms    INTEGER NOT NULL,
        PRIMARY KEY (student_id, created_ms)
    );
    """,
    # merchants' settlement accounts (settlement/): the bank and account number each canteen window's
    # takings are paid into, written by the seed. A database seeded before gets the accounts its seed
    # gave it (the seed's rule: every school banks with one co-branded bank, chosen by the school's
    # number; the account number is 6299, the school's number and the window's, six digits each); a
    # merchant the rule does not fit gets none.
    """
    CREATE TABLE merchant_accounts (
        merchant_id TEXT PRIMARY KEY REFERENCES merchants (merchant_id),
        bank_code   TEXT NOT NULL,
        account_no  TEXT NOT NULL
    );
    INSERT INTO merchant_accounts (merchant_id, bank_code, account_no)
        SELECT merchant_id,
            CASE CAST(substr(school_id, 7) AS INTEGER) % 5
                WHEN 0 THEN 'ICBC' WHEN 1 THEN 'CCB' WHEN 2 THEN 'ABC' WHEN 3 THEN 'BOC' ELSE 'JXB' END,
            printf('6299%06d%06d', CAST(substr(school_id, 7) AS INTEGER),
                CAST(substr(merchant_id, length(school_id) + 6) AS INTEGER))
        FROM merchants
        WHERE school_id GLOB 'jx-ts-[0-9]*' AND substr(school_id, 7) NOT GLOB '*[^0-9]*'
            AND substr(merchant_id, 1, length(school_id) + 5) = school_id || '-win-'
            AND substr(merchant_id, length(school_id) + 6) GLOB '[0-9]*'
            AND substr(merchant_id, length(school_id) + 6) NOT GLOB '*[^0-9]*';
    """,
    # folds off the commit path (store/fold.py): a fold writes balances in chunks, in account order.
    # While one is under way, accounts below fold_progress.cursor hold the transfers up to
    # fold_progress.fold_to, the others up to the 'transfers' checkpoint; pending_deltas adds to each
    # account what it has not taken in yet.
    """
    CREATE TABLE fold_progress (
        fold_to INTEGER NOT NULL,
        cursor  INTEGER NOT NULL
    );
    INSERT INTO fold_progress (fold_to, cursor)
        SELECT position, 0 FROM checkpoints WHERE name = 'transfers';
    DROP VIEW IF EXISTS account_balances;
    DROP VIEW IF EXISTS pending_deltas;
    CREATE VIEW pending_deltas AS
        SELECT m.account, SUM(m.delta) AS delta FROM (
            SELECT transfer_id, to_account AS account, amount_fen AS delta FROM transfers_since_checkpoint
            UNION ALL
            SELECT transfer_id, from_account, -amount_fen FROM transfers_since_checkpoint) AS m,
            (SELECT (SELECT position FROM checkpoints WHERE name = 'transfers') AS folded, fold_to, cursor
                FROM fold_progress) AS f
        WHERE m.transfer_id > CASE WHEN m.account < f.cursor THEN f.fold_to ELSE f.folded END
        GROUP BY m.account;
    CREATE VIEW account_balances AS
        SELECT a.account_id, a.kind, a.owner, a.balance_fen + COALESCE(d.delta, 0) AS balance_fen
        FROM accounts a LEFT JOIN pending_deltas d ON d.account = a.account_id;
    """,
)

SCHEMA_VERSION = len(MIGRATIONS)


def tables_at(version: int) -> frozenset[str]:
    """The tables a database of schema `version` has (the migrations only ever add tables)."""
    return frozenset(
        name for script in MIGRATIONS[:version] for name in re.findall(r"CREATE TABLE (\w+)", script)
    )
