"""Idempotent, durable calls for the use cases beside `hub.py` (library, exams).

The same steps as `Hub.authorize` and the admin calls: a request_id seen before answers the
original response (another body: IDEMPOTENCY_KEY_REUSED); otherwise the hub must take writes,
`act` decides on the in-memory state (no await: nothing interleaves) and returns the response,
the rows it changed and the request row to journal; the answer waits until all of it is
durable. `act` raises before it changes anything, so an error writes nothing.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import replace
from typing import TypeVar

from google.protobuf.message import Message

from onecard_hub.hub import Hub
from onecard_hub.idempotency import Entry
from onecard_hub.store.records import Batch, RequestRow
from onecard_hub.usage import record_tap

M = TypeVar("M", bound=Message)


async def run_once(
    hub: Hub,
    key: tuple[str, str],
    method: str,
    fingerprint: bytes,
    parse: Callable[[bytes], M],
    act: Callable[[int], tuple[M, Batch, RequestRow]],
) -> M:
    """`key` is (caller, request_id); `act(now_ms)` decides and applies."""
    if (answer := await hub.answered(key, method, fingerprint, parse)) is not None:
        return answer
    now = hub.clock.now_ms()
    response, rows, request = act(now)
    record_tap(hub, request, now)  # usage statistics, when the call is a tap at a desk or tablet
    body = response.SerializeToString()
    rows.requests.append(replace(request, fingerprint=fingerprint, response=body, created_ms=now))
    await hub.commit(key, Entry(method, fingerprint, now, body), rows)
    return response


async def run_once_awaiting(
    hub: Hub,
    key: tuple[str, str],
    method: str,
    fingerprint: bytes,
    parse: Callable[[bytes], M],
    act: Callable[[], Awaitable[M]],
) -> M:
    """For use cases that await (the bank) before they answer (funds, settlement): the same replay;
    `act()` journals its own rows as it goes and is idempotent by purpose itself, so a crash before
    the answer is durable repeats safely; the answer is journaled once it returns."""
    if (answer := await hub.answered(key, method, fingerprint, parse)) is not None:
        return answer
    response = await act()
    now = hub.clock.now_ms()
    body = response.SerializeToString()
    rows = Batch(requests=[RequestRow(key[0], key[1], method, fingerprint, body, now)])
    await hub.commit(key, Entry(method, fingerprint, now, body), rows)
    return response
