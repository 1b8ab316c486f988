"""CWMP protocol versions: what an envelope shows, what the two sides agree on, and how the choice is sent.

FIELD-NOTES "Versions and XML shape": 1.0 and 1.1 have their own namespaces; 1.2, 1.3 and 1.4 share cwmp-1-2, 1.3 adds
SessionTimeout, 1.4 adds SupportedCWMPVersions (CPE) and UseCWMPVersion (ACS, mustUnderstand=1); some devices send the
non-standard cwmp-1-3 / cwmp-1-4 namespaces.
"""

from __future__ import annotations

import pytest
from lxml import etree

from cwmp_models import codec
from cwmp_models import messages as m
from cwmp_models.envelope import (
    NS_CWMP_1_0,
    NS_CWMP_1_1,
    NS_CWMP_1_2,
    NS_CWMP_1_3,
    NS_CWMP_1_4,
    NS_SOAP_ENV,
    Envelope,
    highest_version,
    negotiate_version,
    parse_version_list,
)


def device_envelope(namespace: str, headers: str = "") -> bytes:
    """An empty-bodied envelope as a device would send it, with the given CWMP header elements."""
    return (
        f'<soapenv:Envelope xmlns:soapenv="{NS_SOAP_ENV}" xmlns:cwmp="{namespace}">'
        f'<soapenv:Header><cwmp:ID soapenv:mustUnderstand="1">1</cwmp:ID>{headers}</soapenv:Header>'
        "<soapenv:Body><cwmp:GetRPCMethods/></soapenv:Body></soapenv:Envelope>"
    ).encode()


TIMEOUT = "<cwmp:SessionTimeout>60</cwmp:SessionTimeout>"


def supported(versions: str) -> str:
    return f'<cwmp:SupportedCWMPVersions soapenv:mustUnderstand="0">{versions}</cwmp:SupportedCWMPVersions>'


@pytest.mark.parametrize(
    "namespace,headers,version",
    [
        (NS_CWMP_1_0, "", "1.0"),
        (NS_CWMP_1_1, "", "1.1"),
        (NS_CWMP_1_2, "", "1.2"),
        (NS_CWMP_1_2, TIMEOUT, "1.3"),
        (NS_CWMP_1_2, TIMEOUT + supported("1.0,1.1,1.2,1.3,1.4"), "1.4"),
        (NS_CWMP_1_2, supported("1.0,1.1,1.2,1.3,1.4"), "1.4"),
        (NS_CWMP_1_3, "", "1.3"),
        (NS_CWMP_1_4, "", "1.4"),
        (NS_CWMP_1_4, TIMEOUT, "1.4"),
        # A device listing only some versions shows the highest it lists.
        (NS_CWMP_1_2, supported("1.0, 1.2, 1.3"), "1.3"),
        # A version header holding nothing readable says nothing: the namespace and the other headers decide.
        (NS_CWMP_1_2, supported("latest"), "1.2"),
        (NS_CWMP_1_2, TIMEOUT + supported(""), "1.3"),
    ],
)
def test_version_detected_from_namespace_and_headers(namespace, headers, version):
    parsed = codec.parse(device_envelope(namespace, headers))
    assert parsed.namespace == namespace
    assert parsed.protocol_version == version


@pytest.mark.parametrize(
    "envelope,version",
    [
        (Envelope(None, namespace=NS_CWMP_1_2, use_cwmp_version="1.3"), "1.3"),
        (Envelope(None, namespace=NS_CWMP_1_2, use_cwmp_version="1.4", supported_cwmp_versions="1.0,1.1"), "1.4"),
        (Envelope(None, namespace=NS_CWMP_1_2, use_cwmp_version="?", supported_cwmp_versions="1.2,1.4"), "1.4"),
        (Envelope(None, namespace=NS_CWMP_1_0, use_cwmp_version="?"), "1.0"),
    ],
)
def test_an_explicit_version_wins_over_inference(envelope, version):
    assert envelope.protocol_version == version


@pytest.mark.parametrize(
    "text,versions",
    [
        ("1.0,1.1,1.2,1.3,1.4", ["1.0", "1.1", "1.2", "1.3", "1.4"]),
        (" 1.0 , 1.1 ,1.2 ", ["1.0", "1.1", "1.2"]),
        ("1.0, 1.4\n", ["1.0", "1.4"]),
        ("1.2 1.3", ["1.2", "1.3"]),  # spaces instead of commas
        ("1.2;1.4", ["1.2", "1.4"]),
        ("01.04", ["1.4"]),
        ("1.4,,1.2", ["1.4", "1.2"]),
        ("1.4,junk,1..2,v1.3,1.x,-1.0,١.٤", ["1.4"]),  # garbage dropped, including non-ASCII digits
        ("", []),
        ("none", []),
    ],
)
def test_parse_version_list_tolerates_spaces_and_garbage(text, versions):
    assert parse_version_list(text) == versions


def test_highest_version():
    assert highest_version("1.10,1.4,1.2") == "1.10"  # numeric, not text, order
    assert highest_version("1.2") == "1.2"
    assert highest_version("junk") is None


@pytest.mark.parametrize(
    "cpe,acs,chosen",
    [
        ("1.0,1.1,1.2,1.3,1.4", None, "1.4"),
        ("1.0,1.1,1.2", None, "1.2"),
        (" 1.4 , 1.3 ", None, "1.4"),
        ("1.0 1.3", None, "1.3"),
        ("1.4,2.0,3.1", None, "1.4"),  # versions we do not know are not offered back
        ("1.3,1.2", ("1.0", "1.2", "1.4"), "1.2"),
        ("1.0,1.1,1.2,1.3,1.4", ("1.0", "1.1"), "1.1"),
        ("2.0,3.1", None, None),
        ("1.3,1.1", ("1.0", "1.2", "1.4"), None),
        ("garbage", None, None),
        ("", None, None),
    ],
)
def test_negotiate_version_picks_the_highest_common_one(cpe, acs, chosen):
    result = negotiate_version(cpe) if acs is None else negotiate_version(cpe, acs)
    assert result == chosen


@pytest.mark.parametrize("namespace", [NS_CWMP_1_2, NS_CWMP_1_4])
def test_use_cwmp_version_is_emitted_with_must_understand(namespace):
    xml = codec.serialize(Envelope(m.InformResponse(1), id="1", use_cwmp_version="1.4", namespace=namespace))
    header = etree.fromstring(xml).find(f"{{{NS_SOAP_ENV}}}Header")
    (element,) = header.findall(f"{{{namespace}}}UseCWMPVersion")
    assert element.text == "1.4"
    assert element.get(f"{{{NS_SOAP_ENV}}}mustUnderstand") == "1"
    parsed = codec.parse(xml)
    assert parsed.use_cwmp_version == "1.4"
    assert parsed.protocol_version == "1.4"


def test_no_use_cwmp_version_unless_one_was_chosen():
    xml = codec.serialize(Envelope(m.InformResponse(1), id="1", namespace=NS_CWMP_1_2))
    assert b"UseCWMPVersion" not in xml


def test_a_1_4_inform_is_answered_with_the_negotiated_version_in_its_own_namespace():
    inform = codec.parse(device_envelope(NS_CWMP_1_2, TIMEOUT + supported("1.0,1.1,1.2,1.3,1.4")))
    chosen = negotiate_version(inform.supported_cwmp_versions, ("1.0", "1.1", "1.2", "1.3"))
    assert chosen == "1.3"
    answer_envelope = Envelope(m.InformResponse(1), id=inform.id, use_cwmp_version=chosen, namespace=inform.namespace)
    answer = codec.parse(codec.serialize(answer_envelope))
    assert answer.namespace == NS_CWMP_1_2
    assert answer.protocol_version == "1.3"
