"""Quirk switches: the CLI spelling, the XML each output quirk produces, and that our own codec still reads it."""

from __future__ import annotations

import dataclasses

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cwmp_models import codec
from cwmp_models import messages as m
from cwmp_models.envelope import (
    NS_CWMP_1_0,
    NS_CWMP_1_1,
    NS_CWMP_1_2,
    NS_CWMP_1_3,
    NS_CWMP_1_4,
    NS_XSI,
    NS_XSI_1999,
    Envelope,
    schema_defines,
)
from wp820_sim import QuirkError, Quirks, serialize_for

from .cwmp_samples import DEVICE, PARAMETERS, SAMPLES

INFORM = m.Inform(DEVICE, [m.EventStruct("1 BOOT")], parameter_list=PARAMETERS[:3])
TRICKY_TEXT = m.GetParameterValuesResponse(
    [m.ParameterValueStruct("Device.X", 'soap-env:Body arrayType="x[3]" <soap-env:Fault> &')]
)


def test_the_default_phone_writes_exactly_what_the_codec_writes():
    envelope = Envelope(INFORM, id="7")
    assert serialize_for(Quirks(), envelope) == codec.serialize(envelope)


def test_parse_and_spec_round_trip():
    quirks = Quirks.parse(" no_cookies, basic-only ,cwmp=1.0,kdf=pbkdf2-sha256,,soap_env_prefix")
    assert quirks == Quirks(
        no_cookies=True, basic_only=True, soap_env_prefix=True, cwmp_version="1.0", config_kdf="pbkdf2-sha256"
    )
    assert quirks.spec() == "no_cookies,basic_only,soap_env_prefix,cwmp=1.0,kdf=pbkdf2-sha256"
    assert Quirks.parse(quirks.spec()) == quirks
    assert Quirks.parse("") == Quirks() and Quirks().spec() == ""


@pytest.mark.parametrize("spec", ["no_biscuits", "cwmp=2.0", "kdf=rot13", "speed=fast", "cwmp"])
def test_parse_refuses_unknown_quirks_and_values(spec):
    with pytest.raises(QuirkError):
        Quirks.parse(spec)


def test_soap_env_prefix_and_1999_xsi():
    data = serialize_for(Quirks(soap_env_prefix=True), Envelope(INFORM, id="7")).decode()
    assert data.startswith('<SOAP-ENV:Envelope xmlns:SOAP-ENV="http://schemas.xmlsoap.org/soap/envelope/" ')
    assert f'xmlns:xsi="{NS_XSI_1999}"' in data and NS_XSI not in data
    assert "soap-env" not in data and "soap-enc" not in data
    assert '<cwmp:ID SOAP-ENV:mustUnderstand="1">7</cwmp:ID>' in data
    assert 'SOAP-ENC:arrayType="cwmp:EventStruct[1]"' in data
    assert codec.parse(data.encode()).body == INFORM


def test_padded_array_counts():
    data = serialize_for(Quirks(padded_array_counts=True), Envelope(INFORM, id="7")).decode()
    assert 'arrayType="cwmp:EventStruct[0001]"' in data
    assert 'arrayType="cwmp:ParameterValueStruct[0003]"' in data
    assert codec.parse(data.encode()).body == INFORM


def test_output_quirks_never_touch_text_content():
    quirks = Quirks(soap_env_prefix=True, padded_array_counts=True)
    data = serialize_for(quirks, Envelope(TRICKY_TEXT, id="1"))
    assert codec.parse(data).body == TRICKY_TEXT


def test_xml_declaration():
    data = serialize_for(Quirks(xml_declaration=True), Envelope(INFORM, id="7"))
    assert data.startswith(b'<?xml version="1.0" encoding="UTF-8"?>')
    assert codec.parse(data).body == INFORM
    assert not serialize_for(Quirks(), Envelope(INFORM, id="7")).startswith(b"<?xml")


@pytest.mark.parametrize(
    ("quirks", "namespace"),
    [
        (Quirks(cwmp_version="1.0"), NS_CWMP_1_0),
        (Quirks(cwmp_version="1.1"), NS_CWMP_1_1),
        (Quirks(cwmp_version="1.2"), NS_CWMP_1_2),
        (Quirks(cwmp_version="1.4"), NS_CWMP_1_2),
        (Quirks(cwmp_version="1.2", versioned_namespace=True), NS_CWMP_1_2),
        (Quirks(cwmp_version="1.3", versioned_namespace=True), NS_CWMP_1_3),
        (Quirks(cwmp_version="1.4", versioned_namespace=True), NS_CWMP_1_4),
    ],
)
def test_cwmp_version_chooses_the_namespace(quirks, namespace):
    assert quirks.namespace == namespace
    parsed = codec.parse(serialize_for(quirks, Envelope(INFORM, id="7")))
    assert parsed.namespace == namespace and parsed.body == INFORM


def test_only_a_cwmp_1_4_inform_announces_the_supported_versions():
    inform = codec.parse(serialize_for(Quirks(cwmp_version="1.4"), Envelope(INFORM, id="7")))
    assert inform.supported_cwmp_versions == "1.0,1.1,1.2,1.3,1.4" and inform.protocol_version == "1.4"
    response = codec.parse(serialize_for(Quirks(cwmp_version="1.4"), Envelope(m.RebootResponse(), id="8")))
    assert response.supported_cwmp_versions is None
    older = codec.parse(serialize_for(Quirks(cwmp_version="1.2"), Envelope(INFORM, id="7")))
    assert older.supported_cwmp_versions is None


def test_a_message_the_phones_namespace_lacks_cannot_be_sent():
    with pytest.raises(codec.CwmpSerializeError):
        serialize_for(Quirks(cwmp_version="1.0"), Envelope(m.GetAllQueuedTransfersResponse(), id="1"))


def test_reject_xml_declaration_refuses_messages_that_start_with_one():
    picky = Quirks(reject_xml_declaration=True)
    declared = serialize_for(Quirks(xml_declaration=True), Envelope(m.InformResponse(), id="1"))
    plain = serialize_for(Quirks(), Envelope(m.InformResponse(), id="1"))
    assert picky.refusal(declared) == "message starts with an XML declaration"
    assert picky.refusal(b"\xef\xbb\xbf\r\n" + declared) is not None
    assert picky.refusal(plain) is None
    assert Quirks().refusal(declared) is None


OUTPUT_QUIRKS = st.builds(
    Quirks,
    soap_env_prefix=st.booleans(),
    padded_array_counts=st.booleans(),
    xml_declaration=st.booleans(),
    versioned_namespace=st.booleans(),
    cwmp_version=st.sampled_from(["1.0", "1.1", "1.2", "1.3", "1.4"]),
)


@settings(max_examples=150, deadline=None)
@given(
    quirks=OUTPUT_QUIRKS,
    message=st.sampled_from(list(SAMPLES.values())),
    request_id=st.text(st.characters(min_codepoint=0x20, max_codepoint=0x7E), max_size=12),
)
def test_every_quirk_combination_parses_back_with_our_codec(quirks, message, request_id):
    if not isinstance(message, m.Fault) and not schema_defines(quirks.namespace, type(message)):
        return
    envelope = Envelope(message, id=request_id or None)
    parsed = codec.parse(serialize_for(quirks, envelope))
    assert parsed.body == message and parsed.id == envelope.id and parsed.namespace == quirks.namespace


def test_quirks_are_immutable():
    with pytest.raises(dataclasses.FrozenInstanceError):
        Quirks().no_cookies = True  # type: ignore[misc]
