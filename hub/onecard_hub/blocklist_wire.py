"""WatchBlocklist's messages as they go on the wire, encoded once.

A committed change goes to every stream of its school: the feed encodes the message once and every
stream sends the same bytes (the servicer registers WatchBlocklist with a response serializer that
passes them through, `api/terminal.add_terminal_service`).

Messages that wait for the same stream are joined by concatenating their encodings. Protobuf
decodes concatenated messages as one merged message: the repeated `changes` follow each other in
order and the last `version` wins, so two deltas joined decode exactly as the one delta holding
both messages' changes (`encode_delta(b.version, a.changes + b.changes)`) — what a terminal applies
is the same, and a stream that fell behind sends one message instead of many.
"""

from __future__ import annotations

from collections.abc import Sequence

from onecard.terminal.v1 import terminal_service_pb2 as pb
from onecard_hub.domain.blocklist import BlocklistChange

ADDED, REMOVED = pb.BLOCKLIST_CHANGE_KIND_ADDED, pb.BLOCKLIST_CHANGE_KIND_REMOVED


def response(
    snapshot: bool, version: int, card_nos: Sequence[str], changes: Sequence[BlocklistChange]
) -> pb.WatchBlocklistResponse:
    """The message: a snapshot (`card_nos`, the whole list) or the `changes` up to `version`."""
    message = pb.WatchBlocklistResponse(snapshot=snapshot, version=version, blocked_card_nos=card_nos)
    for change in changes:
        item = message.changes.add(
            version=change.version, card_no=change.card_no, kind=ADDED if change.added else REMOVED
        )
        item.changed_at.FromMilliseconds(change.changed_ms)
    return message


def encode_snapshot(version: int, card_nos: Sequence[str]) -> bytes:
    return response(True, version, card_nos, ()).SerializeToString()


def encode_delta(version: int, changes: Sequence[BlocklistChange]) -> bytes:
    return response(False, version, (), changes).SerializeToString()


def joined(deltas: Sequence[bytes]) -> bytes:
    """Delta messages, oldest first, as one delta message (see the module's docstring)."""
    return deltas[0] if len(deltas) == 1 else b"".join(deltas)
