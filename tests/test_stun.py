"""The STUN codec: RFC 5769 vectors, round trips, classic RFC 3489 messages and malformed datagrams."""

from __future__ import annotations

import hashlib
import hmac
import struct
import zlib

import pytest
from hypothesis import given
from hypothesis import strategies as st

from cwmp_models import stun
from cwmp_models.stun import AttributeType, IntegrityForm, StunClass, StunError, StunMessage

# -- RFC 5769 test vectors, transcribed from the RFC text --------------------------------------------------------

RFC5769_PASSWORD = b"VOkJxbRl1RmTxUk/WvJxBt"
RFC5769_TRANSACTION_ID = bytes.fromhex("b7e7a701bc34d686fa87dfae")

# 2.1. Sample Request (username "evtj:h6vY", software "STUN test client").
SAMPLE_REQUEST = bytes.fromhex(
    "00010058"  # Request type and message length
    "2112a442"  # Magic cookie
    "b7e7a701bc34d686fa87dfae"  # Transaction ID
    "80220010"  # SOFTWARE attribute header
    "5354554e207465737420636c69656e74"  # User-agent name
    "00240004"  # PRIORITY attribute header
    "6e0001ff"  # ICE priority value
    "80290008"  # ICE-CONTROLLED attribute header
    "932ff9b151263b36"  # Pseudo-random tie breaker
    "00060009"  # USERNAME attribute header
    "6576746a3a68367659202020"  # Username (9 bytes) and padding (3 bytes)
    "00080014"  # MESSAGE-INTEGRITY attribute header
    "9aeaa70cbfd8cb56781ef2b5b2d3f249c1b571a2"  # HMAC-SHA1 fingerprint
    "80280004"  # FINGERPRINT attribute header
    "e57a3bcf"  # CRC32 fingerprint
)

# 2.2. Sample IPv4 Response (software "test vector", mapped address 192.0.2.1 port 32853).
SAMPLE_IPV4_RESPONSE = bytes.fromhex(
    "0101003c"  # Response type and message length
    "2112a442"  # Magic cookie
    "b7e7a701bc34d686fa87dfae"  # Transaction ID
    "8022000b"  # SOFTWARE attribute header
    "7465737420766563746f7220"  # UTF-8 server name and padding
    "00200008"  # XOR-MAPPED-ADDRESS attribute header
    "0001a147"  # Address family (IPv4) and xor'd mapped port number
    "e112a643"  # Xor'd mapped IPv4 address
    "00080014"  # MESSAGE-INTEGRITY attribute header
    "2b91f599fd9e90c38c7489f92af9ba53f06be7d7"  # HMAC-SHA1 fingerprint
    "80280004"  # FINGERPRINT attribute header
    "c07d4c96"  # CRC32 fingerprint
)

# 2.3. Sample IPv6 Response (mapped address 2001:db8:1234:5678:11:2233:4455:6677 port 32853).
SAMPLE_IPV6_RESPONSE = bytes.fromhex(
    "01010048"  # Response type and message length
    "2112a442"  # Magic cookie
    "b7e7a701bc34d686fa87dfae"  # Transaction ID
    "8022000b"  # SOFTWARE attribute header
    "7465737420766563746f7220"  # UTF-8 server name and padding
    "00200014"  # XOR-MAPPED-ADDRESS attribute header
    "0002a147"  # Address family (IPv6) and xor'd mapped port number
    "0113a9faa5d3f179bc25f4b5bed2b9d9"  # Xor'd mapped IPv6 address
    "00080014"  # MESSAGE-INTEGRITY attribute header
    "a382954e4be67bf11784c97c8292c275bfe3ed41"  # HMAC-SHA1 fingerprint
    "80280004"  # FINGERPRINT attribute header
    "c8fb0b4c"  # CRC32 fingerprint
)

# 2.4. Sample Request with Long-Term Authentication (no FINGERPRINT).
LONG_TERM_USERNAME = "\u30de\u30c8\u30ea\u30c3\u30af\u30b9"
LONG_TERM_REQUEST = bytes.fromhex(
    "00010060"  # Request type and message length
    "2112a442"  # Magic cookie
    "78ad3433c6ad72c029da412e"  # Transaction ID
    "00060012"  # USERNAME attribute header
    "e3839ee38388e383aae38383e382afe382b90000"  # Username value (18 bytes) and padding (2 bytes)
    "0015001c"  # NONCE attribute header
    "662f2f3439396b39353464364f4c33346f4c39465354767936347341"  # Nonce value
    "0014000b"  # REALM attribute header
    "6578616d706c652e6f726700"  # Realm value (11 bytes) and padding (1 byte)
    "00080014"  # MESSAGE-INTEGRITY attribute header
    "f67024656dd64a3e02b8e0712e85c9a28ca89666"  # HMAC-SHA1 fingerprint
)


def test_rfc5769_sample_request_decodes_and_verifies() -> None:
    msg = stun.decode(SAMPLE_REQUEST)
    assert (msg.method, msg.cls, msg.transaction_id, msg.classic) == (
        stun.BINDING,
        StunClass.REQUEST,
        RFC5769_TRANSACTION_ID,
        False,
    )
    assert msg.get(AttributeType.SOFTWARE) == b"STUN test client"
    assert msg.username() == "evtj:h6vY"
    assert msg.get(0x0024) == bytes.fromhex("6e0001ff")
    assert (msg.has_integrity, msg.has_fingerprint) == (True, True)
    assert stun.verify_integrity(SAMPLE_REQUEST, RFC5769_PASSWORD) is IntegrityForm.RFC5389
    assert stun.verify_integrity(SAMPLE_REQUEST, b"not the password") is None


@pytest.mark.parametrize(
    ("vector", "mapped"),
    [
        (SAMPLE_IPV4_RESPONSE, ("192.0.2.1", 32853)),
        (SAMPLE_IPV6_RESPONSE, ("2001:db8:1234:5678:11:2233:4455:6677", 32853)),
    ],
)
def test_rfc5769_sample_responses(vector: bytes, mapped: tuple[str, int]) -> None:
    msg = stun.decode(vector)
    assert msg.cls is StunClass.SUCCESS
    assert msg.get(AttributeType.SOFTWARE) == b"test vector"
    assert msg.mapped_address() == mapped
    assert stun.verify_integrity(vector, RFC5769_PASSWORD) is IntegrityForm.RFC5389


def test_rfc5769_long_term_request_verifies_with_long_term_key() -> None:
    msg = stun.decode(LONG_TERM_REQUEST)
    assert msg.username() == LONG_TERM_USERNAME
    assert msg.get(AttributeType.REALM) == b"example.org"
    assert (msg.has_integrity, msg.has_fingerprint) == (True, False)
    # RFC 5389 15.4: long-term key = MD5(username ":" realm ":" SASLprep(password)).
    key = hashlib.md5(f"{LONG_TERM_USERNAME}:example.org:TheMatrIX".encode()).digest()
    assert stun.verify_integrity(LONG_TERM_REQUEST, key) is IntegrityForm.RFC5389


@pytest.mark.parametrize(
    ("vector", "key", "padding", "fingerprint"),
    [
        (SAMPLE_REQUEST, RFC5769_PASSWORD, 0x20, True),
        (SAMPLE_IPV4_RESPONSE, RFC5769_PASSWORD, 0x20, True),
        (SAMPLE_IPV6_RESPONSE, RFC5769_PASSWORD, 0x20, True),
        (
            LONG_TERM_REQUEST,
            hashlib.md5(f"{LONG_TERM_USERNAME}:example.org:TheMatrIX".encode()).digest(),
            0x00,
            False,
        ),
    ],
)
def test_rfc5769_vectors_reencode_byte_for_byte(vector: bytes, key: bytes, padding: int, fingerprint: bool) -> None:
    assert stun.encode(stun.decode(vector), integrity_key=key, padding=padding, fingerprint=fingerprint) == vector


def test_building_the_ipv4_response_vector_from_its_parts() -> None:
    request = stun.decode(SAMPLE_REQUEST)
    response = stun.binding_success(request, ("192.0.2.1", 32853), software="test vector")
    # Our builder also adds MAPPED-ADDRESS for older clients; without it the RFC's bytes come out exactly.
    trimmed = StunMessage(
        response.method,
        response.cls,
        response.transaction_id,
        [(AttributeType.SOFTWARE, b"test vector"), response.attributes[0]],
    )
    assert response.attributes[0][0] == AttributeType.XOR_MAPPED_ADDRESS
    assert stun.encode(trimmed, integrity_key=RFC5769_PASSWORD, padding=0x20) == SAMPLE_IPV4_RESPONSE


# -- round trips -------------------------------------------------------------------------------------------------

_COOKIE = struct.pack("!I", stun.MAGIC_COOKIE)
transaction_ids = st.one_of(
    st.binary(min_size=12, max_size=12),
    st.binary(min_size=16, max_size=16).filter(lambda tid: tid[:4] != _COOKIE),
)
attribute_types = st.integers(0, 0xFFFF).filter(
    lambda kind: kind not in (AttributeType.MESSAGE_INTEGRITY, AttributeType.FINGERPRINT)
)
messages = st.builds(
    StunMessage,
    method=st.integers(0, 0xFFF),
    cls=st.sampled_from(StunClass),
    transaction_id=transaction_ids,
    attributes=st.lists(st.tuples(attribute_types, st.binary(max_size=64)), max_size=8).map(tuple),
)


@given(
    msg=messages,
    key=st.none() | st.binary(min_size=1, max_size=32),
    form=st.none() | st.sampled_from(IntegrityForm),
    fingerprint=st.none() | st.booleans(),
    padding=st.integers(0, 255),
)
def test_encode_decode_round_trip(
    msg: StunMessage, key: bytes | None, form: IntegrityForm | None, fingerprint: bool | None, padding: int
) -> None:
    wire = stun.encode(msg, integrity_key=key, integrity_form=form, fingerprint=fingerprint, padding=padding)
    decoded = stun.decode(wire)
    fingerprinted = fingerprint if fingerprint is not None else not msg.classic
    assert decoded == StunMessage(
        msg.method,
        msg.cls,
        msg.transaction_id,
        msg.attributes,
        has_integrity=key is not None,
        has_fingerprint=fingerprinted,
    )
    if key is not None:
        expected_form = form or (IntegrityForm.RFC3489 if msg.classic else IntegrityForm.RFC5389)
        text_before_integrity = len(wire) - 24 - (8 if fingerprinted else 0)
        if expected_form is IntegrityForm.RFC3489 and text_before_integrity % 64 == 0:
            expected_form = IntegrityForm.RFC5389  # no zero padding needed: the two forms are the same text
        assert stun.verify_integrity(wire, key) is expected_form
        assert stun.verify_integrity(wire, key + b"x") is None
    else:
        assert stun.verify_integrity(wire, b"any") is None


# IPv4-mapped IPv6 addresses are deliberately sent as IPv4 (tested below), so they do not round-trip.
unmapped_ip_addresses = st.ip_addresses().filter(lambda address: address.version == 4 or address.ipv4_mapped is None)


@given(unmapped_ip_addresses, st.integers(0, 0xFFFF), st.binary(min_size=12, max_size=12))
def test_address_values_round_trip(address, port: int, transaction_id: bytes) -> None:
    host = str(address)
    assert stun.parse_address(stun.address_value(host, port)) == (host, port)
    xored = stun.xor_address_value(host, port, transaction_id)
    assert stun.parse_xor_address(xored, transaction_id) == (host, port)


def test_xor_address_is_actually_xored() -> None:
    value = stun.xor_address_value("192.0.2.1", 32853, RFC5769_TRANSACTION_ID)
    assert value == bytes.fromhex("0001a147e112a643")
    assert stun.address_value("192.0.2.1", 32853) != value


def test_ipv4_mapped_addresses_are_sent_as_ipv4() -> None:
    assert stun.parse_address(stun.address_value("::ffff:198.51.100.7", 5060)) == ("198.51.100.7", 5060)


@given(st.integers(300, 699), st.text(max_size=40))
def test_error_code_round_trip(code: int, reason: str) -> None:
    assert stun.parse_error_code(stun.error_code_value(code, reason)) == (code, reason)


def test_error_code_default_reasons_and_range() -> None:
    assert stun.parse_error_code(stun.error_code_value(401)) == (401, "Unauthorized")
    with pytest.raises(StunError, match="outside 300-699"):
        stun.error_code_value(200)


@given(st.lists(st.integers(0, 0xFFFF), max_size=9))
def test_unknown_attributes_round_trip(types: list[int]) -> None:
    assert stun.parse_unknown_attributes(stun.unknown_attributes_value(types)) == tuple(types)


def test_change_request_flags() -> None:
    assert stun.parse_change_request(struct.pack("!I", 0)) == (False, False)
    assert stun.parse_change_request(struct.pack("!I", 4)) == (True, False)
    assert stun.parse_change_request(struct.pack("!I", 2)) == (False, True)
    with pytest.raises(StunError, match="4 bytes"):
        stun.parse_change_request(b"\x00\x00")


# -- TR-111 and classic RFC 3489 ---------------------------------------------------------------------------------


def test_tr111_binding_request_attributes() -> None:
    assert stun.CONNECTION_REQUEST_BINDING == b"dslforum.org/TR-111 " and len(stun.CONNECTION_REQUEST_BINDING) == 20
    msg = stun.binding_request(username="wp820-1", connection_request_binding=True, binding_change=True)
    wire = stun.encode(msg, integrity_key=b"stun-secret")
    decoded = stun.decode(wire)
    assert decoded.get(0xC001) == b"dslforum.org/TR-111 "
    assert decoded.get(0xC002) == b""
    assert decoded.username() == "wp820-1"
    assert stun.verify_integrity(wire, b"stun-secret") is IntegrityForm.RFC5389


def _classic_request(attributes: bytes, key: bytes, form: IntegrityForm) -> bytes:
    """An RFC 3489 Binding Request built the way a classic CPE stack builds it, independently of the codec."""
    tid = bytes(range(1, 17))
    length_with_integrity = len(attributes) + 24
    header_length = 0 if form is IntegrityForm.VOVIDA else length_with_integrity
    text = struct.pack("!HH", 0x0001, header_length) + tid + attributes
    if form is IntegrityForm.RFC3489:
        text += bytes(-len(text) % 64)
    digest = hmac.new(key, text, hashlib.sha1).digest()
    return struct.pack("!HH", 0x0001, length_with_integrity) + tid + attributes + struct.pack("!HH", 8, 20) + digest


CLASSIC_ATTRIBUTES = (
    struct.pack("!HHI", 0x0003, 4, 0)  # CHANGE-REQUEST, no flags (stund always sends one)
    + struct.pack("!HH", 0x0006, 10)
    + b"wp820-0001\x00\x00"  # USERNAME, padded; the text before MESSAGE-INTEGRITY is not a multiple of 64 bytes
    + struct.pack("!HH", 0xC001, 20)
    + b"dslforum.org/TR-111 "  # CONNECTION-REQUEST-BINDING
)


@pytest.mark.parametrize("form", [IntegrityForm.RFC3489, IntegrityForm.VOVIDA])
def test_classic_request_decodes_and_each_integrity_form_verifies(form: IntegrityForm) -> None:
    datagram = _classic_request(CLASSIC_ATTRIBUTES, b"stun-secret", form)
    msg = stun.decode(datagram)
    assert msg.classic and msg.transaction_id == bytes(range(1, 17))
    assert (msg.method, msg.cls) == (stun.BINDING, StunClass.REQUEST)
    assert msg.username() == "wp820-0001"
    assert msg.get(AttributeType.CONNECTION_REQUEST_BINDING) == stun.CONNECTION_REQUEST_BINDING
    assert stun.verify_integrity(datagram, b"stun-secret") is form
    assert stun.verify_integrity(datagram, b"other-secret") is None


def test_classic_response_has_mapped_address_only_and_echoes_the_transaction_id() -> None:
    request = stun.decode(_classic_request(CLASSIC_ATTRIBUTES, b"k", IntegrityForm.RFC3489))
    wire = stun.encode(stun.binding_success(request, ("203.0.113.9", 40000)), integrity_key=b"k")
    assert wire[:2] == b"\x01\x01" and wire[4:20] == bytes(range(1, 17))
    response = stun.decode(wire)
    assert [kind for kind, _ in response.attributes] == [AttributeType.MAPPED_ADDRESS]
    assert response.mapped_address() == ("203.0.113.9", 40000)
    assert (response.has_integrity, response.has_fingerprint) == (True, False)
    # RFC 3489: MESSAGE-INTEGRITY is the last attribute, computed over the 64-byte-padded text.
    assert wire[-24:-20] == struct.pack("!HH", 8, 20)
    assert stun.verify_integrity(wire, b"k") is IntegrityForm.RFC3489


def test_rfc5389_response_has_xor_and_plain_mapped_address() -> None:
    request = stun.binding_request()
    response = stun.decode(stun.encode(stun.binding_success(request, ("198.51.100.1", 1234), software="acs")))
    kinds = [kind for kind, _ in response.attributes]
    assert kinds == [AttributeType.XOR_MAPPED_ADDRESS, AttributeType.MAPPED_ADDRESS, AttributeType.SOFTWARE]
    assert stun.parse_address(response.get(AttributeType.MAPPED_ADDRESS)) == ("198.51.100.1", 1234)
    assert response.mapped_address() == ("198.51.100.1", 1234)
    assert response.has_fingerprint


def test_binding_error_carries_code_and_unknown_attributes() -> None:
    request = stun.binding_request()
    error = stun.decode(stun.encode(stun.binding_error(request, 420, unknown=[0x0024, 0x0003])))
    assert (error.cls, error.transaction_id) == (StunClass.ERROR, request.transaction_id)
    assert error.error_code() == (420, "Unknown Attribute")
    assert stun.parse_unknown_attributes(error.get(AttributeType.UNKNOWN_ATTRIBUTES)) == (0x0024, 0x0003)


# -- malformed input ---------------------------------------------------------------------------------------------


def _with_length(datagram: bytes, length: int) -> bytes:
    return datagram[:2] + struct.pack("!H", length) + datagram[4:]


VALID = stun.encode(stun.binding_request(username="u", connection_request_binding=True), fingerprint=False)


@pytest.mark.parametrize(
    ("datagram", "problem"),
    [
        (b"", "shorter than a STUN header"),
        (VALID[:19], "shorter than a STUN header"),
        (VALID[:-4], "header says"),
        (VALID + b"\x00\x00\x00\x00", "header says"),
        (_with_length(VALID[:-2], len(VALID) - 22), "multiple of 4"),
        (b"\xc0" + VALID[1:], "first two bits"),
        (_with_length(VALID[:20] + struct.pack("!HH", 0x8022, 40) + b"abcd", 8), "overruns"),
        (_with_length(VALID[:20] + b"\x80\x22\x00\x05abcd", 8), "overruns"),
        (_with_length(VALID[:20] + struct.pack("!HH", 8, 4) + b"abcd", 8), "MESSAGE-INTEGRITY must be 20 bytes"),
    ],
)
def test_malformed_datagrams_raise_stun_error(datagram: bytes, problem: str) -> None:
    with pytest.raises(StunError, match=problem):
        stun.decode(datagram)


def test_bad_fingerprint_is_rejected() -> None:
    wire = bytearray(stun.encode(stun.binding_request(username="u")))
    wire[-1] ^= 0x01
    with pytest.raises(StunError, match="FINGERPRINT does not match"):
        stun.decode(bytes(wire))


def test_tampered_body_breaks_fingerprint() -> None:
    wire = bytearray(stun.encode(stun.binding_request(username="user")))
    wire[24] ^= 0x20  # first byte of the USERNAME value
    with pytest.raises(StunError, match="FINGERPRINT"):
        stun.decode(bytes(wire))


def test_fingerprint_must_be_last() -> None:
    wire = stun.encode(stun.binding_request(), fingerprint=True)
    trailing = struct.pack("!HH", 0x8022, 4) + b"abcd"
    body = wire[20:] + trailing
    datagram = _with_length(wire[:20], len(body)) + body
    with pytest.raises(StunError, match="not the last attribute"):
        stun.decode(datagram)


def test_bad_integrity_does_not_verify_but_decodes() -> None:
    wire = bytearray(stun.encode(stun.binding_request(username="u"), integrity_key=b"secret", fingerprint=False))
    wire[-1] ^= 0x01
    assert stun.decode(bytes(wire)).has_integrity
    assert stun.verify_integrity(bytes(wire), b"secret") is None


def test_attributes_after_integrity_are_ignored_except_fingerprint() -> None:
    base = stun.encode(stun.binding_request(username="u"), integrity_key=b"secret", fingerprint=False)
    smuggled = struct.pack("!HH", 0x0006, 4) + b"evil"
    body = base[20:] + smuggled
    prefix = _with_length(base[:20], len(body) + 8) + body
    datagram = _with_length(prefix, len(body) + 8) + struct.pack("!HHI", 0x8028, 4, zlib.crc32(prefix) ^ 0x5354554E)
    msg = stun.decode(datagram)
    assert msg.username() == "u" and msg.has_fingerprint
    assert stun.verify_integrity(datagram, b"secret") is IntegrityForm.RFC5389


@pytest.mark.parametrize(
    ("value", "problem"),
    [(b"\x00\x01\x00\x50\x01\x02\x03", "family"), (b"\x00\x03\x00\x50\x01\x02\x03\x04", "family"), (b"\x00", "short")],
)
def test_bad_address_values(value: bytes, problem: str) -> None:
    with pytest.raises(StunError, match=problem):
        stun.parse_address(value)


def test_invalid_messages_cannot_be_built_or_encoded() -> None:
    with pytest.raises(StunError, match="12 \\(RFC 5389\\) or 16"):
        StunMessage(stun.BINDING, StunClass.REQUEST, b"short")
    with pytest.raises(StunError, match="magic cookie"):
        StunMessage(stun.BINDING, StunClass.REQUEST, _COOKIE + bytes(12))
    with pytest.raises(StunError, match="computed by encode"):
        stun.encode(StunMessage(stun.BINDING, StunClass.REQUEST, bytes(12), [(AttributeType.FINGERPRINT, b"1234")]))
    with pytest.raises(StunError, match="12-byte"):
        stun.xor_address_value("192.0.2.1", 1, bytes(16))
    with pytest.raises(StunError, match="not an IP address"):
        stun.address_value("example.com", 1)
    with pytest.raises(StunError, match="not UTF-8"):
        StunMessage(stun.BINDING, StunClass.REQUEST, bytes(12), [(AttributeType.USERNAME, b"\xff")]).username()
