"""Where a request that does not decode went wrong: the field, found by walking the protobuf wire format.

Only called for a request protobuf refused (a cold path): the answer then names the field, as every
INVALID_ARGUMENT does, e.g. `transactions[2].qr.token` for a string that is not UTF-8, or the field
whose value is cut short. None when the bytes go wrong outside any field the message declares.
"""

from __future__ import annotations

from google.protobuf.descriptor import Descriptor, FieldDescriptor

MAX_DEPTH = 16  # deeper than any request of the contract; protobuf itself stops at 100
_VARINT, _FIXED64, _LENGTH, _START_GROUP, _END_GROUP, _FIXED32 = range(6)
_PACKABLE_VARINTS = frozenset(
    {
        FieldDescriptor.TYPE_INT32,
        FieldDescriptor.TYPE_INT64,
        FieldDescriptor.TYPE_UINT32,
        FieldDescriptor.TYPE_UINT64,
        FieldDescriptor.TYPE_SINT32,
        FieldDescriptor.TYPE_SINT64,
        FieldDescriptor.TYPE_BOOL,
        FieldDescriptor.TYPE_ENUM,
    }
)


class _Bad(Exception):
    """The bytes end or go wrong here."""


def _varint(data: bytes, pos: int) -> tuple[int, int]:
    value = shift = 0
    while pos < len(data) and shift < 70:
        byte = data[pos]
        pos += 1
        value |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return value, pos
        shift += 7
    raise _Bad


def undecodable_field(descriptor: Descriptor, data: bytes) -> str | None:
    """The path of the field where `data` stops being an encoding of `descriptor`'s message."""
    return _walk(descriptor, data, "", 0)


def _walk(descriptor: Descriptor, data: bytes, prefix: str, depth: int) -> str | None:
    seen: dict[int, int] = {}
    here = prefix or None  # what to name when the bytes go wrong outside a declared field
    pos = 0
    while pos < len(data):
        try:
            key, pos = _varint(data, pos)
        except _Bad:
            return here
        number, wire = key >> 3, key & 7
        if number == 0:
            return here
        field = descriptor.fields_by_number.get(number)
        name = here
        if field is not None:
            index = seen.get(number, 0)
            seen[number] = index + 1
            name = f"{prefix}.{field.name}" if prefix else field.name
            if field.is_repeated and not _is_map(field):
                name += f"[{index}]"
        try:
            if wire == _VARINT:
                _, pos = _varint(data, pos)
            elif wire in (_FIXED64, _FIXED32):
                pos += 8 if wire == _FIXED64 else 4
                if pos > len(data):
                    raise _Bad
            elif wire == _LENGTH:
                length, start = _varint(data, pos)
                pos = start + length
                if pos > len(data):
                    raise _Bad
                if field is not None and name is not None:
                    inner = _value(field, data[start:pos], name, depth)
                    if inner is not None:
                        return inner
            else:  # groups (never used by the contract) and the wire types 6 and 7 that do not exist
                raise _Bad
        except _Bad:
            return name
    return None


def _value(field: FieldDescriptor, chunk: bytes, name: str, depth: int) -> str | None:
    """The bad path inside one length-delimited value, if it is bad."""
    if field.type == FieldDescriptor.TYPE_STRING:
        try:
            chunk.decode("utf-8")
        except UnicodeDecodeError:
            return name
        return None
    if field.type == FieldDescriptor.TYPE_MESSAGE and field.message_type is not None:
        if depth >= MAX_DEPTH:
            return name
        return _walk(field.message_type, chunk, name, depth + 1)
    if field.is_repeated and field.type in _PACKABLE_VARINTS:
        pos = 0
        try:
            while pos < len(chunk):
                _, pos = _varint(chunk, pos)
        except _Bad:
            return name
    return None


def _is_map(field: FieldDescriptor) -> bool:
    message = field.message_type
    return message is not None and bool(message.GetOptions().map_entry)
