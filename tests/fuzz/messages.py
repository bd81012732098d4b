"""Hypothesis strategies for any protobuf message, built from its descriptor (no list of fields).

Every field type has plausible values, which get a call past its first checks to the rules behind them,
and extreme ones:

| type | plausible | extreme |
|---|---|---|
| integers | 0 to 1,000 | the limits of the type (±2^63, 2^64-1, ±2^31, ...), anything in range |
| enums | a named value | a number the contract does not name |
| strings | a campus id, id-like text, a small number | empty, unicode, numbers (±2^63 ...), huge (100 kB) |
| bytes | 8, 16, 32 or 64 random bytes | empty, short, huge |
| repeated | one to four elements | none, or hundreds of copies of one |
| Timestamp | near the hub's clock | seconds beyond year 9999 or before year 1, nanos < 0 or ≥ 10^9 |
| Duration | a minute to a day | beyond ±10,000 years, nanos out of range |

and floats (NaN and infinities included), bools, map fields, nested messages to a bounded depth. A
message is, half the time, plausible but for one field that is extreme (in a nested message: one field
of it), else every field plausible three times in four. Either way it sets every field or a random
subset; oneof members are set in turn (the last one set wins).
"""

from __future__ import annotations

from collections.abc import Sequence
from enum import Enum
from typing import Any, TypeVar, cast

from google.protobuf import message_factory
from google.protobuf.descriptor import Descriptor, FieldDescriptor
from google.protobuf.message import Message
from hypothesis import strategies as st

F = FieldDescriptor
T = TypeVar("T")
MAX_DEPTH = 4  # deeper message fields are left unset
HUGE_CHARS = (65, 129, 513, 4_097, 70_000, 100_000)
MANY = (65, 201, 501, 1_001, 5_001)  # copies of one element: past every bound a request has
MAX_COPIED_BYTES = 320 * 1024  # a little over the hub's largest request, so that limit is met too

_INT_RANGES = {
    F.TYPE_INT32: (-(2**31), 2**31 - 1),
    F.TYPE_SINT32: (-(2**31), 2**31 - 1),
    F.TYPE_SFIXED32: (-(2**31), 2**31 - 1),
    F.TYPE_ENUM: (-(2**31), 2**31 - 1),
    F.TYPE_INT64: (-(2**63), 2**63 - 1),
    F.TYPE_SINT64: (-(2**63), 2**63 - 1),
    F.TYPE_SFIXED64: (-(2**63), 2**63 - 1),
    F.TYPE_UINT32: (0, 2**32 - 1),
    F.TYPE_FIXED32: (0, 2**32 - 1),
    F.TYPE_UINT64: (0, 2**64 - 1),
    F.TYPE_FIXED64: (0, 2**64 - 1),
}
_EDGES = (0, 1, -1, 2, 7, 100, 1_000, 2**15, 2**31 - 1, 2**31, 2**32 - 1, 2**32, 2**53 + 1, 2**63 - 1, 2**63)
_NUMBER_TEXTS = tuple(str(v) for e in (*_EDGES, 2**64 - 1, 2**64, 10**19) for v in (e, -e))

# Timestamp: 0001-01-01T00:00:00Z .. 9999-12-31T23:59:59Z; Duration: ±10,000 years.
MIN_TIMESTAMP_S, MAX_TIMESTAMP_S = -62_135_596_800, 253_402_300_799
MAX_DURATION_S = 315_576_000_000
_NANOS_EDGES = (-(2**31), -1, 0, 1, 999_999_999, 1_000_000_000, 2**31 - 1)


class Mode(Enum):
    PLAUSIBLE = "plausible"
    EXTREME = "extreme"  # a scalar: an extreme value; a message: plausible but for one field
    MIXED = "mixed"  # three times in four plausible


Pair = tuple[st.SearchStrategy[Any], st.SearchStrategy[Any]]  # (plausible, extreme)


def weighted(*choices: st.SearchStrategy[T]) -> st.SearchStrategy[T]:
    """One of `choices`, each as often as it is listed. (`one_of` picks each distinct strategy equally
    often, repeated ones too.) Shrinking goes toward the first."""
    return st.sampled_from(choices).flatmap(lambda chosen: chosen)


def _pick(pair: Pair, mode: Mode) -> st.SearchStrategy[Any]:
    plausible, extreme = pair
    if mode is Mode.PLAUSIBLE:
        return plausible
    if mode is Mode.EXTREME:
        return extreme
    return weighted(plausible, plausible, plausible, extreme)


def integers(field_type: int) -> Pair:
    low, high = _INT_RANGES[field_type]
    edges = sorted({v for e in _EDGES for v in (e, -e, low, high, low + 1, high - 1) if low <= v <= high})
    return st.integers(max(low, 0), min(high, 1_000)), st.one_of(
        st.sampled_from(edges), st.integers(low, high)
    )


def strings(known: Sequence[Sequence[str]]) -> Pair:
    """`known`: groups of values (schools, operators, card numbers, ...); a group is picked first, so
    that a small group (three operators) turns up as often as a large one (hundreds of cards)."""
    id_like = st.from_regex(r"[A-Za-z0-9][A-Za-z0-9._:\-]{0,63}", fullmatch=True)
    groups = [sorted(set(group)) for group in known if group]
    plausible = st.one_of(id_like, st.integers(0, 10**6).map(str))
    if groups:
        plausible = st.one_of(st.sampled_from(groups).flatmap(st.sampled_from), plausible)
    huge = st.builds(
        lambda c, n: c * n, st.sampled_from(["x", "界", "9", "\x00", " "]), st.sampled_from(HUGE_CHARS)
    )
    numbers = st.one_of(st.sampled_from(_NUMBER_TEXTS), st.integers().map(str))
    return plausible, st.one_of(st.just(""), st.text(max_size=24), numbers, huge)


def byte_strings() -> Pair:
    exact = st.sampled_from([8, 16, 32, 64]).flatmap(lambda n: st.binary(min_size=n, max_size=n))
    huge = st.builds(
        lambda b, n: b * n, st.sampled_from([b"\x00", b"\xff", b"a"]), st.sampled_from(HUGE_CHARS)
    )
    return exact, st.one_of(st.just(b""), st.binary(max_size=40), huge)


def _timestamps(now_s: int) -> Pair:
    near = st.fixed_dictionaries(
        {
            "seconds": st.integers(now_s - 40 * 86_400, now_s + 40 * 86_400),
            "nanos": st.integers(0, 999_999_999),
        }
    )
    edges = (MIN_TIMESTAMP_S - 1, MIN_TIMESTAMP_S, -1, 0, 1, MAX_TIMESTAMP_S, MAX_TIMESTAMP_S + 1)
    extreme = st.fixed_dictionaries(
        {
            "seconds": st.one_of(
                st.sampled_from((*edges, -(2**63), 2**63 - 1)), st.integers(-(2**63), 2**63 - 1)
            ),
            "nanos": st.one_of(st.sampled_from(_NANOS_EDGES), st.integers(-(2**31), 2**31 - 1)),
        }
    )
    return st.one_of(st.just({"seconds": now_s, "nanos": 0}), near), extreme


def _durations() -> Pair:
    plausible = st.fixed_dictionaries({"seconds": st.integers(60, 86_400), "nanos": st.just(0)})
    edges = (-MAX_DURATION_S - 1, -MAX_DURATION_S, -1, 0, 1, MAX_DURATION_S, MAX_DURATION_S + 1)
    extreme = st.fixed_dictionaries(
        {
            "seconds": st.one_of(st.sampled_from(edges), st.integers(-(2**63), 2**63 - 1)),
            "nanos": st.sampled_from(_NANOS_EDGES),
        }
    )
    return plausible, extreme


class Messages:
    """Strategies for the messages of one campus: its ids and its clock shape the values."""

    def __init__(self, known: Sequence[Sequence[str]], now_s: int) -> None:
        self._strings = strings(known)
        self._bytes = byte_strings()
        self._timestamps = _timestamps(now_s)
        self._durations = _durations()
        self._cache: dict[tuple[str, int, Mode], st.SearchStrategy[Message]] = {}

    def of(self, descriptor: Descriptor) -> st.SearchStrategy[Message]:
        """Half the time plausible but for one field, else mostly plausible."""
        return weighted(self._message(descriptor, 0, Mode.EXTREME), self._message(descriptor, 0, Mode.MIXED))

    def _message(self, descriptor: Descriptor, depth: int, mode: Mode) -> st.SearchStrategy[Message]:
        key = (descriptor.full_name, depth, mode)
        if key not in self._cache:
            self._cache[key] = st.deferred(lambda: self._build(descriptor, depth, mode))
        return self._cache[key]

    def _build(self, descriptor: Descriptor, depth: int, mode: Mode) -> st.SearchStrategy[Message]:
        cls = message_factory.GetMessageClass(descriptor)
        if descriptor.full_name in ("google.protobuf.Timestamp", "google.protobuf.Duration"):
            pair = self._timestamps if descriptor.full_name.endswith("Timestamp") else self._durations
            return _pick(pair, mode).map(lambda values: cls(**values))
        fields = [f for f in descriptor.fields if depth < MAX_DEPTH or f.type != F.TYPE_MESSAGE]
        if mode is not Mode.EXTREME or not fields:
            inner = Mode.PLAUSIBLE if mode is Mode.PLAUSIBLE else Mode.MIXED
            return _subset({f.name: self._field(f, depth, inner) for f in fields}).map(
                lambda values: _filled(cls(), values)
            )
        one_off = [  # per field: that one extreme (always set), the others plausible
            st.builds(
                lambda off, rest: {**rest, **off},
                st.fixed_dictionaries({f.name: self._field(f, depth, Mode.EXTREME)}),
                _subset({g.name: self._field(g, depth, Mode.PLAUSIBLE) for g in fields if g is not f}),
            )
            for f in fields
        ]
        return (
            st.sampled_from(one_off).flatmap(lambda chosen: chosen).map(lambda values: _filled(cls(), values))
        )

    def _field(self, field: FieldDescriptor, depth: int, mode: Mode) -> st.SearchStrategy[Any]:
        if _is_map(field):
            entry = _message_type(field)
            keys = self._single(entry.fields_by_name["key"], depth + 1, Mode.PLAUSIBLE)
            values = self._single(entry.fields_by_name["value"], depth + 1, mode)
            return st.dictionaries(keys, values, max_size=4)
        if not field.is_repeated:
            return self._single(field, depth, mode)
        plausible = st.lists(self._single(field, depth, Mode.PLAUSIBLE), min_size=1, max_size=4)
        extreme = st.one_of(
            st.just([]),
            st.lists(self._single(field, depth, Mode.EXTREME), min_size=1, max_size=4),
            st.builds(_copies, self._single(field, depth, Mode.PLAUSIBLE), st.sampled_from(MANY)),
        )
        return _pick((plausible, extreme), mode)

    def _single(self, field: FieldDescriptor, depth: int, mode: Mode) -> st.SearchStrategy[Any]:
        t = field.type
        if t in (F.TYPE_MESSAGE, F.TYPE_GROUP):
            return self._message(_message_type(field), depth + 1, mode)
        if t == F.TYPE_ENUM:
            assert field.enum_type is not None
            named = [v.number for v in field.enum_type.values]
            return _pick((st.sampled_from(named), integers(F.TYPE_ENUM)[1]), mode)
        if t in _INT_RANGES:
            return _pick(integers(t), mode)
        if t == F.TYPE_BOOL:
            return st.booleans()
        if t == F.TYPE_STRING:
            return _pick(self._strings, mode)
        if t == F.TYPE_BYTES:
            return _pick(self._bytes, mode)
        if t == F.TYPE_FLOAT:
            return _pick((st.floats(-1e6, 1e6, width=32), st.floats(width=32)), mode)
        if t == F.TYPE_DOUBLE:
            return _pick((st.floats(-1e9, 1e9), st.floats()), mode)
        raise AssertionError(f"field type {t} of {field.full_name}")


def _subset(fields: dict[str, st.SearchStrategy[Any]]) -> st.SearchStrategy[dict[str, Any]]:
    """Every field, or each with even odds."""
    chosen = st.fixed_dictionaries({name: st.booleans() for name in fields})
    some = chosen.flatmap(lambda keep: st.fixed_dictionaries({n: s for n, s in fields.items() if keep[n]}))
    return weighted(st.fixed_dictionaries(fields), some)


def _message_type(field: FieldDescriptor) -> Descriptor:
    assert field.message_type is not None, field.full_name
    return field.message_type


def _is_map(field: FieldDescriptor) -> bool:
    return field.type == F.TYPE_MESSAGE and bool(_message_type(field).GetOptions().map_entry)


def _copies(item: Any, count: int) -> list[Any]:
    """`count` copies of `item`, or one when they would pass `MAX_COPIED_BYTES` in all."""
    size = (
        item.ByteSize() if isinstance(item, Message) else len(item) if isinstance(item, (str, bytes)) else 10
    )
    return [item] * count if size * count <= MAX_COPIED_BYTES else [item]


def _filled(message: Message, values: dict[str, Any]) -> Message:
    fields = message.DESCRIPTOR.fields_by_name
    for name, value in values.items():
        field = cast(FieldDescriptor, fields[name])
        target: Any = getattr(message, name)
        if _is_map(field):
            for k, v in value.items():
                if isinstance(v, Message):
                    target[k].CopyFrom(v)
                else:
                    target[k] = v
        elif field.is_repeated:
            if field.type == F.TYPE_MESSAGE:
                for item in value:
                    target.add().CopyFrom(item)
            else:
                target.extend(value)
        elif field.type == F.TYPE_MESSAGE:
            target.CopyFrom(value)
        else:
            setattr(message, name, value)
    return message
