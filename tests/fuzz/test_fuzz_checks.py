"""The fuzz suite's own judge: internal text in an answer is a finding unless the client sent it."""

from __future__ import annotations

from tests.fuzz.calls import shows_internals


def test_the_clients_own_words_quoted_back_are_not_internals() -> None:
    body = b"\n\x06SQLITE"  # GetTopUp with topup_id "SQLITE"
    assert not shows_internals("topup_id: no top-up 'SQLITE'", body)


def test_internal_text_the_client_did_not_send_is_found() -> None:
    body = b"\n\x06T00001"
    assert shows_internals("topup_id: sqlite3.OperationalError: database is locked", body)
    assert shows_internals("Traceback (most recent call last)", body)
    assert shows_internals("failed in /work/hub/onecard_hub/hub.py line 3", body)


def test_a_quoted_echo_does_not_hide_a_leak_beside_it() -> None:
    body = b"\n\x06SQLITE"
    assert shows_internals("no top-up 'SQLITE' (KeyError)", body)
