"""Every RPC of every service the hub serves, fed random bytes, messages with extreme values, cut-short
and altered encodings: the answer is OK (a decline is an answer) or a documented status code with one
ErrorInfo and no internal text, and a refused call writes nothing.

Calls come as a known terminal and a known operator at once (both plain-text headers; each service reads
the one it admits), so they get past identity; when the request names a terminal, that one calls. String
fields often hold ids the seeded campus knows, so calls reach the rules behind the first checks.
"""

from __future__ import annotations

import sqlite3
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import grpc
import pytest
from google.protobuf.descriptor import FieldDescriptor, MethodDescriptor
from google.protobuf.message import Message
from hypothesis import given
from hypothesis import strategies as st

from onecard_client.campus import CampusCredentials
from onecard_hub.api.identity import OPERATOR_HEADER, TERMINAL_HEADER
from onecard_hub.domain.clock import ManualClock, business_date
from onecard_hub.server import RunningHub
from onecard_hub.store.records import Batch
from tests.fuzz.calls import TALLY, error_info, hub_rpcs, problems, send
from tests.fuzz.messages import Messages
from tests.fuzz.profiles import fuzz_settings

DAY_MS = 86_400_000
# Refusals the contract says are recorded: a wrong old PIN counts toward the PIN's lockout.
RECORDED_REFUSALS = {("ChangePin", "IDENTITY_CHECK_FAILED")}


def known_values(creds: CampusCredentials, now_ms: int) -> list[list[str]]:
    """The ids and codes the seeded campus holds, by kind, and the business dates around the clock."""
    terminals, cards = creds.terminals, creds.cards
    return [
        creds.schools,
        creds.operators,
        [t.terminal_id for t in terminals],
        [v for t in terminals for v in (t.gate_group, t.merchant_id, t.location) if v],
        [c.card_no for c in cards],
        [c.student_id for c in cards if c.student_id],
        [v for c in cards for v in (c.bank_code, c.pin) if v],
        [m.account_no for m in creds.merchants],
        [business_date(now_ms + days * DAY_MS) for days in (-2, -1, 0, 1)],
    ]


_MESSAGES: dict[tuple[tuple[str, ...], int], Messages] = {}


def messages_of(creds: CampusCredentials, now_ms: int) -> Messages:
    """The strategies for this campus and clock, built once (every test seeds the same campus)."""
    key = (tuple(creds.schools), now_ms)
    if key not in _MESSAGES:
        _MESSAGES[key] = Messages(known_values(creds, now_ms), now_ms // 1000)
    return _MESSAGES[key]


def strings_in(message: Message) -> Iterator[str]:
    for field, value in message.ListFields():
        items = value if field.is_repeated else [value]
        for item in items:
            if field.type == FieldDescriptor.TYPE_STRING:
                yield item
            elif isinstance(item, Message):
                yield from strings_in(item)


@pytest.fixture
def data_version(campus_dir: Path) -> Iterator[sqlite3.Connection]:
    """A connection of its own: `PRAGMA data_version` changes when any other connection commits."""
    connection = sqlite3.connect(campus_dir / "hub.db")
    yield connection
    connection.close()


@pytest.fixture
async def channel(hub: RunningHub) -> AsyncIterator[grpc.aio.Channel]:
    async with grpc.aio.insecure_channel(hub.target) as channel:
        yield channel


def _version(connection: sqlite3.Connection) -> int:
    return int(connection.execute("PRAGMA data_version").fetchone()[0])


RPCS = hub_rpcs()


@pytest.mark.parametrize("method", RPCS, ids=[m.full_name.removeprefix("onecard.") for m in RPCS])
@fuzz_settings()
@given(data=st.data())
async def test_every_answer_is_ok_or_a_documented_error_and_a_refusal_writes_nothing(
    hub: RunningHub,
    creds: CampusCredentials,
    clock: ManualClock,
    channel: grpc.aio.Channel,
    data_version: sqlite3.Connection,
    method: MethodDescriptor,
    data: st.DataObject,
) -> None:
    messages = messages_of(creds, clock.now_ms())
    request = data.draw(messages.of(method.input_type), label="request")
    terminals = {t.terminal_id for t in creds.terminals}
    named = sorted(terminals.intersection(strings_in(request)))
    terminal = data.draw(st.sampled_from(named or sorted(terminals)), label="terminal")
    operator = data.draw(st.sampled_from(creds.operators), label="operator")
    kind, body = data.draw(encodings_of(request), label="body")
    metadata = ((TERMINAL_HEADER, terminal), (OPERATOR_HEADER, operator))

    before = _version(data_version)
    answer = await send(channel, method, body, metadata)
    TALLY.add(method, kind, answer)
    found = problems(method, body, answer)
    assert not found, f"{method.full_name} ({kind}, {len(body)} bytes): {found}"
    info = error_info(answer)
    if answer.code in (grpc.StatusCode.OK, grpc.StatusCode.DEADLINE_EXCEEDED):
        return  # a call past its deadline may still be done: its outcome is unknown, by the contract
    if (method.name, info and info.reason) not in RECORDED_REFUSALS:
        await hub.hub.writer.submit(Batch())  # commits after anything the call may have queued
        assert _version(data_version) == before, f"{method.full_name} refused ({answer.code.name}) but wrote"


def encodings_of(request: Message) -> st.SearchStrategy[tuple[str, bytes]]:
    """(kind, body): half the time the encoding whole, else random bytes, the encoding cut short, or it
    with one byte changed."""
    encoded = request.SerializeToString()
    whole = st.tuples(st.just("message"), st.just(encoded))
    broken = [st.tuples(st.just("bytes"), st.binary(max_size=64))]
    if encoded:
        broken.append(
            st.tuples(st.just("truncated"), st.integers(0, len(encoded) - 1).map(lambda k: encoded[:k]))
        )
        altered = st.tuples(st.integers(0, len(encoded) - 1), st.integers(0, 255)).map(
            lambda p: encoded[: p[0]] + bytes([p[1]]) + encoded[p[0] + 1 :]
        )
        broken.append(st.tuples(st.just("altered"), altered))
    return st.sampled_from((whole, st.one_of(broken))).flatmap(lambda chosen: chosen)
