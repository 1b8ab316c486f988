"""Hypothesis strategies for every CWMP message, derived from the same FIELDS tables the codec uses, so a new field
or message is covered by the property tests without touching them."""

from __future__ import annotations

import dataclasses
from datetime import datetime, timedelta, timezone

from hypothesis import strategies as st

from cwmp_models import messages as m
from cwmp_models.schema import BOOL, DATETIME, INT, STR, UINT, VALUE, ArrayKind, ChoiceKind, Kind, RepeatedKind, StructKind
from cwmp_models.types import XsdType

# Any text XML 1.0 can carry (no C0 controls except tab/newline/CR, no surrogates, no U+FFFE/U+FFFF).
_XML_CHARS = st.characters(
    blacklist_categories=("Cs",),
    blacklist_characters=[chr(c) for c in range(0x20) if c not in (0x09, 0x0A, 0x0D)] + ["\ufffe", "\uffff"],
)
xml_text = st.text(_XML_CHARS, max_size=40)


def _limited_text(limit: int | None):
    return st.text(_XML_CHARS, max_size=min(limit or 40, 40))


timezones = st.one_of(
    st.none(),
    st.just(timezone.utc),
    st.integers(min_value=-14 * 60, max_value=14 * 60).map(lambda minutes: timezone(timedelta(minutes=minutes))),
)
datetimes = st.builds(
    lambda naive, tz: naive.replace(tzinfo=tz),
    st.datetimes(min_value=datetime(2, 1, 1), max_value=datetime(9998, 12, 31)),
    timezones,
)

VALUE_STRATEGIES = {
    XsdType.STRING: xml_text,
    XsdType.INT: st.integers(-(2**31), 2**31 - 1),
    XsdType.UNSIGNED_INT: st.integers(0, 2**32 - 1),
    XsdType.LONG: st.integers(-(2**63), 2**63 - 1),
    XsdType.UNSIGNED_LONG: st.integers(0, 2**64 - 1),
    XsdType.BOOLEAN: st.booleans(),
    XsdType.DATETIME: datetimes,
    XsdType.BASE64: st.binary(max_size=48),
    XsdType.HEXBINARY: st.binary(max_size=48),
}


@st.composite
def parameter_values(draw) -> m.ParameterValueStruct:
    value_type = draw(st.sampled_from(list(XsdType)))
    name = draw(xml_text.filter(lambda text: len(text) <= 256))
    return m.ParameterValueStruct(name, draw(VALUE_STRATEGIES[value_type]), value_type)


def strategy_for(kind: Kind, max_len: int | None = None):
    if kind is STR:
        return _limited_text(max_len)
    if kind is INT:
        return st.integers(-(2**31), 2**31 - 1)
    if kind is UINT:
        return st.integers(0, 2**32 - 1)
    if kind is BOOL:
        return st.booleans()
    if kind is DATETIME:
        return datetimes
    if kind is VALUE:
        raise AssertionError("Value is drawn with its struct")
    if isinstance(kind, StructKind):
        if kind.cls is m.ParameterValueStruct:
            return parameter_values()
        return struct_strategy(kind.cls)
    if isinstance(kind, ArrayKind):
        return st.lists(strategy_for(kind.item, kind.item_max_len), max_size=min(kind.max_items or 5, 5))
    if isinstance(kind, RepeatedKind):
        return st.lists(strategy_for(kind.item, max_len), max_size=3)
    if isinstance(kind, ChoiceKind):
        return st.one_of([struct_strategy(cls) for _, cls in kind.choices])
    raise AssertionError(kind)


def struct_strategy(cls: type):
    defaults = {f.name: f.default for f in dataclasses.fields(cls)}
    arguments = {}
    for spec in cls.FIELDS:
        strategy = strategy_for(spec.kind, spec.max_len)
        # Only fields whose absence means None may be drawn as None: an omitted element parses back to the default.
        if spec.optional and defaults.get(spec.attr) is None:
            strategy = st.one_of(st.none(), strategy)
        arguments[spec.attr] = strategy
    return st.builds(cls, **arguments)


def message_strategy(cls: type[m.Message]):
    if cls is m.Fault:
        return st.builds(
            m.Fault,
            fault_code=st.one_of(st.integers(8000, 8899), st.integers(9000, 9899)),
            fault_string=_limited_text(None),
            set_parameter_values_faults=st.lists(struct_strategy(m.SetParameterValuesFault), max_size=3),
        )
    return struct_strategy(cls)
