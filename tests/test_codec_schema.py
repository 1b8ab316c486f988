"""Every message we can emit validates against the official CWMP schema of every namespace that defines it, as a
whole SOAP envelope (validated offline, see tests/xsd.py)."""

from __future__ import annotations

import pytest
from lxml import etree

from cwmp_models import codec
from cwmp_models import messages as m
from cwmp_models.envelope import (
    CWMP_NAMESPACES,
    NS_CWMP_1_0,
    NS_CWMP_1_2,
    SCHEMA_OF_NAMESPACE,
    Envelope,
    schema_defines,
)
from tests.cwmp_samples import SAMPLES
from tests.xsd import validation_errors

VALIDATED_NAMESPACES = ["urn:dslforum-org:cwmp-1-0", "urn:dslforum-org:cwmp-1-1", NS_CWMP_1_2]


def test_every_message_class_has_a_sample():
    assert set(SAMPLES) == set(m.ALL_MESSAGES)


def _cases():
    for cls in m.ALL_MESSAGES:
        for namespace in VALIDATED_NAMESPACES:
            if cls is m.Fault or schema_defines(namespace, cls):
                yield pytest.param(cls, namespace, id=f"{cls.__name__}-{namespace[-3:]}")


@pytest.mark.parametrize("cls,namespace", list(_cases()))
def test_serialized_envelope_validates(cls, namespace):
    envelope = Envelope(SAMPLES[cls], id="4711", namespace=namespace)
    xml = codec.serialize(envelope)
    assert validation_errors(xml, namespace) == []
    assert codec.parse(xml) == envelope


@pytest.mark.parametrize("namespace", VALIDATED_NAMESPACES)
def test_headers_and_empty_body_validate(namespace):
    envelope = Envelope(None, id="1", hold_requests=True, namespace=namespace)
    xml = codec.serialize(envelope)
    assert validation_errors(xml, namespace) == []


def test_version_headers_validate_in_1_2_namespace():
    envelope = Envelope(
        m.InformResponse(1), id="1", session_timeout=60, use_cwmp_version="1.4", namespace=NS_CWMP_1_2
    )
    xml = codec.serialize(envelope)
    assert validation_errors(xml, NS_CWMP_1_2) == []
    assert b'<cwmp:UseCWMPVersion soap-env:mustUnderstand="1">1.4</cwmp:UseCWMPVersion>' in xml


def test_the_validator_rejects_qualified_children():
    """A negative control: the schema check really bites (spyne-style qualified children must fail)."""
    xml = codec.serialize(Envelope(SAMPLES[m.GetParameterNames], id="1"))
    qualified = xml.replace(b"<ParameterPath>", b"<cwmp:ParameterPath>").replace(
        b"</ParameterPath>", b"</cwmp:ParameterPath>"
    )
    assert validation_errors(qualified, NS_CWMP_1_2)


def test_the_validator_rejects_a_missing_array_type():
    xml = codec.serialize(Envelope(SAMPLES[m.GetParameterValues], id="1"))
    broken = xml.replace(b' soap-enc:arrayType="xsd:string[2]"', b"")
    assert validation_errors(broken, NS_CWMP_1_2)


@pytest.mark.parametrize("cls", [c for c in m.ALL_MESSAGES if c.SINCE != "1-0"])
def test_rpcs_absent_from_an_older_namespace_are_refused(cls):
    with pytest.raises(codec.CwmpSerializeError, match="does not exist in namespace"):
        codec.serialize(Envelope(SAMPLES[cls], id="1", namespace=NS_CWMP_1_0))


@pytest.mark.parametrize("namespace", CWMP_NAMESPACES)
def test_answers_use_the_device_namespace(namespace):
    xml = codec.serialize(Envelope(m.InformResponse(1), id="1", namespace=namespace))
    assert f'xmlns:cwmp="{namespace}"'.encode() in xml
    assert codec.parse(xml).namespace == namespace
    assert SCHEMA_OF_NAMESPACE[namespace]


def test_output_shape_rules():
    xml = codec.serialize(Envelope(SAMPLES[m.SetParameterValues], id="7"))
    assert not xml.startswith(b"<?xml")
    assert b'<cwmp:ID soap-env:mustUnderstand="1">7</cwmp:ID>' in xml
    assert b"<cwmp:SetParameterValues>" in xml
    root = etree.fromstring(xml)
    rpc = root.find("{http://schemas.xmlsoap.org/soap/envelope/}Body")[0]
    # Only the RPC element is qualified; every descendant is unqualified.
    assert all(not el.tag.startswith("{") for el in rpc.iterdescendants())
    values = [el for el in rpc.iter("Value")]
    assert values and all(el.get("{http://www.w3.org/2001/XMLSchema-instance}type") for el in values)


def test_xml_declaration_is_optional():
    xml = codec.serialize(Envelope(None), xml_declaration=True)
    assert xml.startswith(b'<?xml version="1.0" encoding="UTF-8"?>')
    assert codec.parse(xml).body is None


@pytest.mark.parametrize(
    "message,reason",
    [
        (m.SetParameterValues([], "k" * 33), "ParameterKey: longer than 32"),
        (m.Reboot("c" * 33), "CommandKey: longer than 32"),
        (m.AddObject("Device." + "x" * 256 + ".", ""), "ObjectName: longer than 256"),
        (m.GetParameterValues(["D." * 200]), "string: longer than 256"),
        (m.Kicked("k" * 33), "Command: longer than 32"),
        (m.SetParameterValues([m.ParameterValueStruct("A", "bad\x01")], ""), "A: contains a character"),
        (m.Fault(42, "nope"), "outside 8000-8899"),
        (m.ScheduleDownload("k", "1 Firmware Upgrade Image", "u", time_window_list=[m.TimeWindowStruct(0, 1, "1 At Any Time")] * 3), "more than 2 items"),
    ],
)
def test_schema_limits_are_enforced_on_output(message, reason):
    with pytest.raises(codec.CwmpSerializeError, match=reason):
        codec.serialize(Envelope(message, id="1"))


@pytest.mark.parametrize("namespace", CWMP_NAMESPACES)
def test_a_fault_without_an_id_keeps_its_namespace(namespace):
    envelope = Envelope(m.Fault.of(9005), namespace=namespace)
    assert codec.parse(codec.serialize(envelope)) == envelope
