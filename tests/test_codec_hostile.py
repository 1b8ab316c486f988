"""Hostile and broken input: each is refused promptly with one typed error naming the problem, never a bare library
exception, never a hang, and never an error text that echoes more than a short excerpt of what was sent.

FIELD-NOTES "XML safety with lxml": no DTDs, no entities, no network, bounded size and depth. The module-wide timeout
is the "never hangs" guard; nothing here measures time.
"""

from __future__ import annotations

import re

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from lxml import etree

from cwmp_models import codec
from cwmp_models import messages as m
from cwmp_models.envelope import NS_CWMP_1_0, Envelope
from cwmp_models.types import XsdType

pytestmark = pytest.mark.timeout(10)

SOAP = "http://schemas.xmlsoap.org/soap/envelope/"


def envelope(body: str, *, header: str = "", prolog: str = "", cwmp: str = NS_CWMP_1_0) -> bytes:
    return (
        f'{prolog}<soap:Envelope xmlns:soap="{SOAP}" xmlns:cwmp="{cwmp}" '
        'xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" xmlns:xsd="http://www.w3.org/2001/XMLSchema">'
        f'<soap:Header><cwmp:ID soap:mustUnderstand="1">7</cwmp:ID>{header}</soap:Header>'
        f"<soap:Body>{body}</soap:Body></soap:Envelope>"
    ).encode("utf-8")


KICKED = "<cwmp:Kicked><Command>{}</Command><Referer/><Arg/><Next/></cwmp:Kicked>"
INFORM = (
    "<cwmp:Inform><DeviceId><Manufacturer>Grandstream</Manufacturer><OUI>000B82</OUI><ProductClass>WP820</ProductClass>"
    "<SerialNumber>c074ad112233</SerialNumber></DeviceId><Event><EventStruct><EventCode>2 PERIODIC</EventCode>"
    "<CommandKey/></EventStruct></Event><MaxEnvelopes>1</MaxEnvelopes><CurrentTime>2026-11-27T08:30:15Z</CurrentTime>"
    "<RetryCount>0</RetryCount><ParameterList><ParameterValueStruct><Name>Device.DeviceInfo.UpTime</Name>"
    '<Value xsi:type="xsd:unsignedInt">42</Value></ParameterValueStruct><ParameterValueStruct>'
    '<Name>Device.ManagementServer.PeriodicInformEnable</Name><Value xsi:type="xsd:boolean">1</Value>'
    "</ParameterValueStruct></ParameterList></cwmp:Inform>"
)
VALID = envelope(INFORM)
BOOT_EVENT = "<EventStruct><EventCode>1 BOOT</EventCode></EventStruct>"


def _billion_laughs() -> str:
    entities = ['<!ENTITY lol "lol">'] + [
        f'<!ENTITY lol{i} "{("&lol%s;" % (i - 1 if i > 1 else "")) * 10}">' for i in range(1, 10)
    ]
    return f"<!DOCTYPE lolz [{''.join(entities)}]>"


_QUADRATIC_ENTITY = "A" * 50_000

HOSTILE: dict[str, tuple[bytes, str]] = {
    # name: (input, regular expression the reason must match)
    "external entity reading /etc/passwd": (
        envelope(KICKED.format("&xxe;"), prolog='<!DOCTYPE x [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>'),
        "DOCTYPE",
    ),
    "external parameter entity": (
        envelope(KICKED.format("x"), prolog='<!DOCTYPE x [<!ENTITY % p SYSTEM "file:///etc/passwd"> %p;]>'),
        "DOCTYPE",
    ),
    "external DTD over http": (
        envelope(KICKED.format("x"), prolog='<!DOCTYPE Envelope SYSTEM "http://127.0.0.1:9/cwmp.dtd">'),
        "DOCTYPE",
    ),
    "external DTD from a file": (
        envelope(KICKED.format("x"), prolog='<!DOCTYPE Envelope SYSTEM "file:///etc/passwd">'),
        "DOCTYPE",
    ),
    "billion laughs": (envelope(KICKED.format("&lol9;"), prolog=_billion_laughs()), "DOCTYPE"),
    "quadratic blowup": (
        envelope(
            KICKED.format("&a;" * 20_000), prolog=f'<!DOCTYPE x [<!ENTITY a "{_QUADRATIC_ENTITY}">]>'
        ),
        "DOCTYPE",
    ),
    "billion laughs in UTF-16": (
        ('<?xml version="1.0" encoding="UTF-16"?>' + _billion_laughs()).encode("utf-16")
        + envelope(KICKED.format("&lol9;")).decode().encode("utf-16")[2:],
        "UTF-16",
    ),
    "10,000-deep nesting": (envelope(KICKED.format("<a>" * 10_000 + "</a>" * 10_000)), "malformed XML.*depth"),
    "a 50 MB body": (envelope(KICKED.format("x" * (50 << 20))), "larger than"),
    "invalid UTF-8 (a stray 0xFF)": (VALID.replace(b"WP820", b"WP\xff820"), "malformed XML: Invalid bytes"),
    "invalid UTF-8 (a broken sequence)": (
        VALID.replace(b"Grandstream", b"Grand\xc3\x28stream"),
        "malformed XML: Invalid bytes",
    ),
    "invalid UTF-8 (an encoded surrogate)": (
        VALID.replace(b"Grandstream", b"Grand\xed\xa0\x80stream"),
        "malformed XML: Invalid bytes",
    ),
    "truncated XML": (VALID[: len(VALID) // 2], "malformed XML"),
    "wrong root": (b"<html><body>CWMP</body></html>", "root element is 'html'"),
    "SOAP 1.2 envelope": (VALID.replace(SOAP.encode(), b"http://www.w3.org/2003/05/soap-envelope"), "root element"),
    "no Body": (VALID.replace(b"soap:Body", b"soap:Bodies"), "no Body"),
    "two RPCs in one body": (envelope(INFORM + "<cwmp:GetRPCMethods/>"), "Body holds 2 elements"),
    "a processing instruction in the body": (envelope('<?php system("id") ?>' + INFORM), "processing instruction"),
    "a processing instruction before the root": (
        b'<?xml version="1.0"?><?xml-stylesheet href="http://evil.example/x.xsl"?>' + VALID,
        "processing instruction",
    ),
    "non-XML garbage": (b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03 TLS hello?", "malformed XML|NUL"),
    "HTTP instead of XML": (b"GET / HTTP/1.1\r\nHost: acs\r\n\r\n", "malformed XML"),
    "empty bytes": (b"", "empty document"),
    "only whitespace": (b" \r\n\t ", "empty document"),
    "a UTF-16 declaration on UTF-8 bytes": (b'<?xml version="1.0" encoding="UTF-16"?>' + VALID, "encoding 'UTF-16'"),
    "a UTF-16 document": (
        ('<?xml version="1.0" encoding="UTF-16"?>' + VALID.decode()).encode("utf-16"),
        "UTF-16",
    ),
    "a UTF-7 declaration": (b'<?xml version="1.0" encoding="UTF-7"?>' + VALID, "encoding 'UTF-7'"),
    "an unknown RPC name": (envelope("<cwmp:DropTables/>"), "unknown CWMP method 'DropTables'"),
    "an unknown CWMP namespace": (
        envelope(INFORM.replace("cwmp:", "x:").replace("<x:Inform>", '<x:Inform xmlns:x="urn:dslforum-org:cwmp-9-9">')),
        "unknown namespace 'urn:dslforum-org:cwmp-9-9'",
    ),
    "a required field missing": (
        envelope(re.sub("<DeviceId>.*</DeviceId>", "", INFORM)), "Inform: missing DeviceId"
    ),
    "a number that is not one": (
        envelope(INFORM.replace("<RetryCount>0", "<RetryCount>zero")), "RetryCount: not an int"
    ),
    "too many events": (
        envelope(INFORM.replace("<Event>", "<Event>" + BOOT_EVENT * 64)),  # 65 with the one already there
        "Event: more than 64 items",
    ),
}


@pytest.mark.parametrize("name", sorted(HOSTILE))
def test_hostile_input_is_refused_with_a_typed_error(name):
    data, reason = HOSTILE[name]
    with pytest.raises(codec.CwmpParseError) as caught:
        codec.parse(data)
    assert re.search(reason, caught.value.reason), caught.value.reason
    assert str(caught.value) == caught.value.reason
    assert len(caught.value.reason) <= 200


def test_the_valid_base_message_parses():
    """The positive control for the mutations above and below."""
    parsed = codec.parse(VALID)
    assert isinstance(parsed.body, m.Inform)
    assert parsed.body.parameter("Device.DeviceInfo.UpTime") == 42


def test_input_must_be_bytes():
    with pytest.raises(codec.CwmpParseError, match="not bytes"):
        codec.parse(VALID.decode())  # type: ignore[arg-type]


def test_xinclude_is_never_processed():
    data = envelope(
        KICKED.format('<xi:include xmlns:xi="http://www.w3.org/2001/XInclude" href="file:///etc/passwd" parse="text"/>')
    )
    kicked = codec.parse(data).body
    assert isinstance(kicked, m.Kicked)
    assert kicked.command == ""


# --------------------------------------------------------------------------------------------------------------------
# Error texts carry at most a short excerpt of the input
# --------------------------------------------------------------------------------------------------------------------

LONG = "X" * 5000


@pytest.mark.parametrize(
    "data",
    [
        pytest.param(envelope(f"<cwmp:{LONG}/>"), id="method name"),
        pytest.param(envelope(INFORM.replace("<cwmp:Inform>", f'<y:Inform xmlns:y="urn:{LONG}">')
                              .replace("</cwmp:Inform>", "</y:Inform>")), id="namespace"),
        pytest.param(f"<{LONG}/>".encode(), id="root element"),
        pytest.param(f'<?xml version="1.0" encoding="{LONG}"?><a/>'.encode(), id="encoding name"),
        pytest.param(envelope(f"<cwmp:Inform><{LONG}></cwmp:Inform>"), id="syntax error naming a tag"),
        pytest.param(
            envelope(
                f'<cwmp:ChangeDUState><Operations xsi:type="cwmp:{LONG}"/></cwmp:ChangeDUState>',
                cwmp="urn:dslforum-org:cwmp-1-2",
            ),
            id="operation type",
        ),
    ],
)
def test_reasons_hold_only_a_short_excerpt_of_the_input(data):
    with pytest.raises(codec.CwmpParseError) as caught:
        codec.parse(data)
    assert len(caught.value.reason) <= 200
    assert "X" * 41 not in caught.value.reason


def test_the_excerpt_bound_applies_to_reply_ids_too():
    reply = Envelope(m.GetRPCMethodsResponse([]), id=LONG)
    with pytest.raises(codec.CwmpProtocolError) as caught:
        codec.check_reply(reply, ("1", m.GetRPCMethods))
    assert "X" * 41 not in caught.value.reason


def test_output_errors_are_typed_and_keep_the_value_out():
    """A value that does not fit its type is refused on output naming the parameter, never echoing the value (it may
    be a password)."""
    secret = m.ParameterValueStruct("Device.ManagementServer.Password", "hunter2-secret", XsdType.UNSIGNED_INT)
    with pytest.raises(codec.CwmpSerializeError) as caught:
        codec.serialize(Envelope(m.SetParameterValues([secret], "k"), id="1"))
    assert "Device.ManagementServer.Password" in caught.value.reason
    assert "hunter2" not in caught.value.reason


def test_an_out_of_range_session_timeout_is_a_serialize_error():
    with pytest.raises(codec.CwmpSerializeError, match="SessionTimeout"):
        codec.serialize(Envelope(None, session_timeout=-1))


# --------------------------------------------------------------------------------------------------------------------
# Replies that do not fit the exchange
# --------------------------------------------------------------------------------------------------------------------

FAULT_REPLY = envelope(
    "<soap:Fault><faultcode>Client</faultcode><faultstring>CWMP fault</faultstring><detail><cwmp:Fault>"
    "<FaultCode>9005</FaultCode><FaultString>Invalid parameter name</FaultString></cwmp:Fault></detail></soap:Fault>"
)
GPV_REPLY = envelope(
    '<cwmp:GetParameterValuesResponse><ParameterList><ParameterValueStruct><Name>Device.LAN.IPAddress</Name>'
    '<Value xsi:type="xsd:string">10.0.0.7</Value></ParameterValueStruct></ParameterList>'
    "</cwmp:GetParameterValuesResponse>"
)


@pytest.mark.parametrize(
    "reply,outstanding,reason",
    [
        pytest.param(FAULT_REPLY, None, "Fault answers no outstanding request", id="a fault answering nothing"),
        pytest.param(
            GPV_REPLY, None, "GetParameterValuesResponse answers no outstanding request", id="a response to nothing"
        ),
        pytest.param(VALID, None, "unexpected Inform", id="a request where a reply was expected"),
        pytest.param(
            GPV_REPLY, ("8", m.GetParameterValues), "reply ID '7' does not match request ID '8'", id="wrong ID"
        ),
        pytest.param(FAULT_REPLY, ("8", m.GetParameterValues), "does not match", id="a fault with the wrong ID"),
        pytest.param(
            GPV_REPLY, ("7", m.SetParameterValues), "GetParameterValuesResponse does not answer SetParameterValues",
            id="a response of the wrong kind",
        ),
        pytest.param(envelope(""), ("7", m.Reboot), "empty envelope", id="an empty envelope"),
    ],
)
def test_replies_that_do_not_fit_are_protocol_errors(reply, outstanding, reason):
    with pytest.raises(codec.CwmpProtocolError) as caught:
        codec.check_reply(codec.parse(reply), outstanding)
    assert isinstance(caught.value, codec.CwmpError)
    assert not isinstance(caught.value, codec.CwmpParseError)
    assert reason in caught.value.reason


def test_fitting_replies_are_returned():
    """The positive control: the right ID with the matching response, or with a fault, passes."""
    response = codec.check_reply(codec.parse(GPV_REPLY), ("7", m.GetParameterValues))
    assert isinstance(response, m.GetParameterValuesResponse)
    fault = codec.check_reply(codec.parse(FAULT_REPLY), ("7", m.GetParameterValues))
    assert isinstance(fault, m.Fault) and fault.fault_code == 9005


# --------------------------------------------------------------------------------------------------------------------
# Property: nothing but CwmpError ever escapes parse()
# --------------------------------------------------------------------------------------------------------------------

SEEDS = [
    VALID,
    FAULT_REPLY,
    GPV_REPLY,
    envelope(
        '<cwmp:GetParameterValuesResponse><ParameterList>'
        + "".join(
            f'<ParameterValueStruct><Name>Device.X.{t}</Name><Value xsi:type="xsd:{t}">{v}</Value>'
            "</ParameterValueStruct>"
            for t, v in [
                ("int", "-5"), ("unsignedInt", "7"), ("long", "1"), ("unsignedLong", "2"), ("boolean", "true"),
                ("dateTime", "2016-12-31T23:59:60Z"), ("base64", "AAE="), ("hexBinary", "0aFF"), ("string", "s"),
            ]
        )
        + "</ParameterList></cwmp:GetParameterValuesResponse>"
    ),
    envelope(
        "<cwmp:TransferComplete><CommandKey>k</CommandKey><FaultStruct><FaultCode>0</FaultCode><FaultString/>"
        "</FaultStruct><StartTime>2026-01-01T00:00:00Z</StartTime><CompleteTime>2026-01-01T00:00:01Z</CompleteTime>"
        "</cwmp:TransferComplete>",
        header="<cwmp:SessionTimeout>30</cwmp:SessionTimeout><cwmp:NoMoreRequests>1</cwmp:NoMoreRequests>",
    ),
    envelope(
        '<cwmp:ChangeDUState><Operations xsi:type="cwmp:InstallOpStruct"><URL>http://a/b</URL></Operations>'
        "<CommandKey>c</CommandKey></cwmp:ChangeDUState>",
        cwmp="urn:dslforum-org:cwmp-1-2",
    ),
]

XML_TOKENS = [b"<", b">", b"/>", b"</a>", b"&", b"&amp;", b"&#0;", b"&#x110000;", b"<![CDATA[", b"]]>", b"<!--",
              b"-->", b"<?pi?>", b"<!DOCTYPE", b"xmlns:x='urn:x'", b'xsi:type="xsd:int"', b"\x00", b"\xff", b"\r\n",
              b"9" * 5000, b"-", b"T", b":", b"Z", b"+99:99", b"60", b"cwmp:", b"soap:"]


def test_every_seed_is_a_valid_message():
    """Mutations start from real messages, so they reach past the XML parser into the decoders."""
    for seed in SEEDS:
        assert codec.parse(seed).body is not None


@st.composite
def mutated(draw) -> bytes:
    data = bytearray(draw(st.sampled_from(SEEDS)))
    for _ in range(draw(st.integers(1, 4))):
        where = draw(st.integers(0, len(data)))
        action = draw(st.sampled_from(["flip", "delete", "insert", "token", "duplicate", "truncate"]))
        if action == "flip" and where < len(data):
            data[where] = draw(st.integers(0, 255))
        elif action == "delete":
            del data[where : where + draw(st.integers(1, 64))]
        elif action == "insert":
            data[where:where] = draw(st.binary(min_size=1, max_size=16))
        elif action == "token":
            data[where:where] = draw(st.sampled_from(XML_TOKENS))
        elif action == "duplicate":
            data[where:where] = data[where : where + draw(st.integers(1, 200))]
        elif action == "truncate":
            del data[where:]
    return bytes(data)


@st.composite
def with_replaced_texts(draw) -> bytes:
    """Well-formed XML whose element texts and attribute values are replaced by arbitrary text: reaches the value
    decoders (integers, dateTimes, booleans, xsi:types) rather than the XML parser."""
    root = etree.fromstring(draw(st.sampled_from(SEEDS)))
    elements = list(root.iter())
    text = st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00\ufffe\uffff"), max_size=30)
    text = text.map(lambda s: "".join(c for c in s if c in "\t\n\r" or ord(c) >= 0x20))
    for _ in range(draw(st.integers(1, 6))):
        element = draw(st.sampled_from(elements))
        if element.attrib and draw(st.booleans()):
            key = draw(st.sampled_from(sorted(element.attrib)))
            element.set(key, draw(text))
        else:
            element.text = draw(st.one_of(text, st.sampled_from(["9" * 30, "-1", "1e3", "٣", "9999-12-31T23:59:60Z"])))
    return etree.tostring(root)


def _parse_or_cwmp_error(data: bytes) -> None:
    try:
        codec.parse(data)
    except codec.CwmpError as exc:
        assert exc.reason and len(exc.reason) <= 200


def test_arbitrary_bytes_raise_nothing_but_cwmp_error():
    @settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
    @given(st.binary(max_size=2048))
    def check(data):
        _parse_or_cwmp_error(data)

    check()


def test_mutated_envelopes_raise_nothing_but_cwmp_error():
    @settings(max_examples=600, deadline=None, suppress_health_check=[HealthCheck.too_slow])
    @given(mutated())
    def check(data):
        _parse_or_cwmp_error(data)

    check()


def test_envelopes_with_arbitrary_values_raise_nothing_but_cwmp_error():
    @settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
    @given(with_replaced_texts())
    def check(data):
        _parse_or_cwmp_error(data)

    check()
