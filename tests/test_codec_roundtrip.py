"""Property tests: serialize then parse gives back an equal message, for every message type and value type.

The @given functions are built inside each parametrized test: pytest-twisted wraps a collected hypothesis test's
inner function once per item, which breaks parametrized hypothesis tests; a locally built one is never collected.
"""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cwmp_models import codec
from cwmp_models import messages as m
from cwmp_models.envelope import CWMP_NAMESPACES, NS_CWMP_1_2, Envelope, schema_defines
from cwmp_models.types import XsdType
from tests.cwmp_strategies import VALUE_STRATEGIES, message_strategy, parameter_values


@pytest.mark.parametrize("cls", m.ALL_MESSAGES, ids=lambda cls: cls.__name__)
def test_message_round_trip(cls):
    namespaces = [ns for ns in CWMP_NAMESPACES if cls is m.Fault or schema_defines(ns, cls)]

    @settings(max_examples=40, deadline=None)
    @given(message_strategy(cls), st.sampled_from(namespaces), st.text(alphabet="0123456789abcdef", max_size=12))
    def check(message, namespace, request_id):
        envelope = Envelope(message, id=request_id, namespace=namespace)
        assert codec.parse(codec.serialize(envelope)) == envelope

    check()


@pytest.mark.parametrize("value_type", list(XsdType), ids=lambda t: t.value)
def test_value_round_trip(value_type):
    @settings(max_examples=80, deadline=None)
    @given(VALUE_STRATEGIES[value_type])
    def check(value):
        message = m.GetParameterValuesResponse([m.ParameterValueStruct("Device.X.Y", value, value_type)])
        parsed = codec.parse(codec.serialize(Envelope(message, id="1")))
        (item,) = parsed.body.parameter_list
        assert item.type is value_type
        assert item.value == value
        assert type(item.value) is type(value)

    check()


@settings(max_examples=60, deadline=None)
@given(
    st.lists(parameter_values(), max_size=30),
    st.booleans(),
    st.one_of(st.none(), st.integers(0, 2**32 - 1)),
    st.one_of(st.none(), st.sampled_from(["1.0,1.1,1.2,1.3,1.4", "1.4", "1.2,1.4"])),
)
def test_headers_round_trip(parameters, hold, timeout, versions):
    envelope = Envelope(
        m.SetParameterValues(parameters, "k"),
        id="abc",
        hold_requests=hold,
        session_timeout=timeout,
        supported_cwmp_versions=versions,
        namespace=NS_CWMP_1_2,
    )
    assert codec.parse(codec.serialize(envelope)) == envelope
