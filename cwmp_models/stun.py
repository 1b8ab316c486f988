"""STUN message codec (RFC 5389, read-compatible with classic RFC 3489) with the TR-111 attributes.

TR-111 Part 2 (TR-069 Annex G) was written against classic STUN (RFC 3489), and CPE stacks in the field are often
stund derivatives; newer ones speak RFC 5389. Both share one wire layout, told apart by the magic cookie:

* RFC 5389: 20-byte header = type, length, magic cookie 0x2112A442, 12-byte transaction id.
* RFC 3489 ("classic"): the same four bytes are simply the start of a 16-byte transaction id.

A ``StunMessage`` with a 16-byte ``transaction_id`` is classic (``msg.classic``); ``decode`` and ``encode`` are
exact inverses, so the ACS and a simulated phone build and read messages with the same code.

Public API::

    decode(datagram) -> StunMessage                       # StunError on anything malformed or a bad FINGERPRINT
    encode(msg, *, integrity_key=None, integrity_form=None, fingerprint=None, padding=0) -> bytes
    verify_integrity(datagram, key) -> IntegrityForm | None   # the form that matched, None if absent or wrong
    binding_request(...), binding_success(request, mapped), binding_error(request, code, ...), new_transaction_id()
    address_value / parse_address, xor_address_value / parse_xor_address, error_code_value / parse_error_code,
    unknown_attributes_value / parse_unknown_attributes, parse_change_request

``attributes`` holds the raw ``(type, value)`` pairs in wire order, except MESSAGE-INTEGRITY and FINGERPRINT: those
are computed by ``encode`` and reported by ``decode`` as ``has_integrity`` / ``has_fingerprint``. Attributes that
follow MESSAGE-INTEGRITY (other than FINGERPRINT) are dropped on decode, as RFC 5389 section 15.4 requires.

MESSAGE-INTEGRITY (HMAC-SHA1, short-term credential: the key is the password's UTF-8 bytes; SASLprep is not
applied, which is the identity for the ASCII passwords TR-069 devices use) exists in three incompatible flavours,
and ``verify_integrity`` accepts each:

* ``RFC5389``: HMAC over the message up to the attribute, header length counting through MESSAGE-INTEGRITY.
* ``RFC3489``: the same text zero-padded to a multiple of 64 bytes (RFC 3489 section 11.2.8).
* ``VOVIDA``: what the widely copied stund/Vovida code computes: header length field still zero, no padding.

FINGERPRINT (CRC-32 xor 0x5354554E) is verified by ``decode`` whenever present, and by default ``encode`` adds it
to RFC 5389 messages only: a classic peer expects MESSAGE-INTEGRITY to be the last attribute.
"""

from __future__ import annotations

import enum
import hashlib
import hmac
import ipaddress
import os
import struct
import zlib
from collections.abc import Iterable
from dataclasses import dataclass, field

__all__ = [
    "MAGIC_COOKIE",
    "BINDING",
    "CONNECTION_REQUEST_BINDING",
    "StunError",
    "StunClass",
    "AttributeType",
    "Attribute",
    "IntegrityForm",
    "StunMessage",
    "decode",
    "encode",
    "verify_integrity",
    "new_transaction_id",
    "binding_request",
    "binding_success",
    "binding_error",
    "address_value",
    "parse_address",
    "xor_address_value",
    "parse_xor_address",
    "error_code_value",
    "parse_error_code",
    "unknown_attributes_value",
    "parse_unknown_attributes",
    "parse_change_request",
]

MAGIC_COOKIE = 0x2112A442
_COOKIE_BYTES = struct.pack("!I", MAGIC_COOKIE)
BINDING = 0x001
# TR-111 section 2.2.1: the exact 20-byte value, trailing space included so the length is a multiple of four.
CONNECTION_REQUEST_BINDING = b"dslforum.org/TR-111 "

_HEADER = struct.Struct("!HH")
_HEADER_SIZE = 20
_FINGERPRINT_XOR = 0x5354554E
_HMAC_SIZE = 20
_MAX_USERNAME_BYTES = 513
_MAX_REASON_BYTES = 763


class StunError(ValueError):
    """A datagram that is not a well-formed STUN message, or a message that cannot be encoded."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class StunClass(enum.IntEnum):
    REQUEST = 0b00
    INDICATION = 0b01
    SUCCESS = 0b10
    ERROR = 0b11


class AttributeType(enum.IntEnum):
    MAPPED_ADDRESS = 0x0001
    RESPONSE_ADDRESS = 0x0002  # RFC 3489 only
    CHANGE_REQUEST = 0x0003  # RFC 3489, revived by RFC 5780
    SOURCE_ADDRESS = 0x0004  # RFC 3489 only
    CHANGED_ADDRESS = 0x0005  # RFC 3489 only
    USERNAME = 0x0006
    PASSWORD = 0x0007  # RFC 3489 only
    MESSAGE_INTEGRITY = 0x0008
    ERROR_CODE = 0x0009
    UNKNOWN_ATTRIBUTES = 0x000A
    REFLECTED_FROM = 0x000B  # RFC 3489 only
    REALM = 0x0014
    NONCE = 0x0015
    XOR_MAPPED_ADDRESS = 0x0020
    SOFTWARE = 0x8022
    ALTERNATE_SERVER = 0x8023
    FINGERPRINT = 0x8028
    # TR-111 Part 2, both comprehension-optional.
    CONNECTION_REQUEST_BINDING = 0xC001
    BINDING_CHANGE = 0xC002


class IntegrityForm(enum.Enum):
    RFC5389 = "rfc5389"
    RFC3489 = "rfc3489"
    VOVIDA = "vovida"


Attribute = tuple[int, bytes]


@dataclass(frozen=True)
class StunMessage:
    method: int
    cls: StunClass
    transaction_id: bytes
    attributes: tuple[Attribute, ...] = ()
    has_integrity: bool = field(default=False, kw_only=True)
    has_fingerprint: bool = field(default=False, kw_only=True)

    def __post_init__(self) -> None:
        # Normalised so that messages built from lists or enum members compare equal to decoded ones.
        object.__setattr__(self, "cls", StunClass(self.cls))
        object.__setattr__(self, "attributes", tuple((int(kind), bytes(value)) for kind, value in self.attributes))
        if not 0 <= self.method <= 0xFFF:
            raise StunError(f"method {self.method:#x} does not fit in 12 bits")
        if len(self.transaction_id) not in (12, 16):
            raise StunError(
                f"transaction id must be 12 (RFC 5389) or 16 (RFC 3489) bytes, not {len(self.transaction_id)}"
            )
        if len(self.transaction_id) == 16 and self.transaction_id[:4] == _COOKIE_BYTES:
            # It would decode as an RFC 5389 message: the codec could not be symmetric.
            raise StunError("a classic transaction id must not start with the magic cookie")

    @property
    def classic(self) -> bool:
        """True for an RFC 3489 message (16-byte transaction id, no magic cookie)."""
        return len(self.transaction_id) == 16

    def get(self, attribute_type: int) -> bytes | None:
        """The value of the first attribute of this type (later duplicates are ignored, as RFC 5389 allows)."""
        for kind, value in self.attributes:
            if kind == attribute_type:
                return value
        return None

    def has(self, attribute_type: int) -> bool:
        return any(kind == attribute_type for kind, _ in self.attributes)

    def username(self) -> str | None:
        value = self.get(AttributeType.USERNAME)
        if value is None:
            return None
        try:
            return value.decode("utf-8")
        except UnicodeDecodeError:
            raise StunError("USERNAME is not UTF-8") from None

    def mapped_address(self) -> tuple[str, int] | None:
        """The XOR-MAPPED-ADDRESS when present (RFC 5389), else the MAPPED-ADDRESS."""
        xored = self.get(AttributeType.XOR_MAPPED_ADDRESS)
        if xored is not None and not self.classic:
            return parse_xor_address(xored, self.transaction_id)
        plain = self.get(AttributeType.MAPPED_ADDRESS)
        return None if plain is None else parse_address(plain)

    def error_code(self) -> tuple[int, str] | None:
        value = self.get(AttributeType.ERROR_CODE)
        return None if value is None else parse_error_code(value)


# -- message type ------------------------------------------------------------------------------------------------


def _message_type(method: int, cls: StunClass) -> int:
    # RFC 5389 section 6: the class bits C1 C0 sit at bits 8 and 4, interleaved with the method bits.
    return (method & 0x000F) | ((method & 0x0070) << 1) | ((method & 0x0F80) << 2) | ((cls & 1) << 4) | ((cls & 2) << 7)


def _split_type(message_type: int) -> tuple[int, StunClass]:
    method = (message_type & 0x000F) | ((message_type & 0x00E0) >> 1) | ((message_type & 0x3E00) >> 2)
    cls = StunClass(((message_type >> 4) & 1) | ((message_type >> 7) & 2))
    return method, cls


# -- decoding ----------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Scan:
    """Where things are in a datagram that passed the structural checks."""

    transaction_id: bytes
    attributes: tuple[tuple[int, int, int], ...]  # (type, offset of the attribute header, value length)
    integrity_at: int | None
    fingerprint_at: int | None


def _scan(datagram: bytes) -> _Scan:
    if len(datagram) < _HEADER_SIZE:
        raise StunError(f"datagram of {len(datagram)} bytes is shorter than a STUN header")
    message_type, length = _HEADER.unpack_from(datagram)
    if message_type & 0xC000:
        raise StunError("the first two bits of a STUN message must be zero")
    if length % 4:
        raise StunError(f"message length {length} is not a multiple of 4")
    if _HEADER_SIZE + length != len(datagram):
        raise StunError(f"header says {length} bytes of attributes, datagram carries {len(datagram) - _HEADER_SIZE}")
    classic = datagram[4:8] != _COOKIE_BYTES
    transaction_id = datagram[4:20] if classic else datagram[8:20]

    attributes: list[tuple[int, int, int]] = []
    integrity_at: int | None = None
    fingerprint_at: int | None = None
    offset = _HEADER_SIZE
    # The length is a multiple of 4 and every attribute is padded to 4, so a whole attribute header always fits.
    while offset < len(datagram):
        kind, size = _HEADER.unpack_from(datagram, offset)
        end = offset + 4 + size
        if end > len(datagram):
            raise StunError(f"attribute {kind:#06x} at offset {offset} overruns the message")
        if fingerprint_at is not None:
            raise StunError("FINGERPRINT is not the last attribute")
        if kind == AttributeType.FINGERPRINT:
            if size != 4:
                raise StunError(f"FINGERPRINT must be 4 bytes, not {size}")
            fingerprint_at = offset
        elif integrity_at is not None:
            pass  # RFC 5389 section 15.4: ignore everything after MESSAGE-INTEGRITY but FINGERPRINT
        elif kind == AttributeType.MESSAGE_INTEGRITY:
            if size != _HMAC_SIZE:
                raise StunError(f"MESSAGE-INTEGRITY must be {_HMAC_SIZE} bytes, not {size}")
            integrity_at = offset
        else:
            attributes.append((kind, offset, size))
        offset = end + (-size % 4)
    return _Scan(transaction_id, tuple(attributes), integrity_at, fingerprint_at)


def _crc(data: bytes) -> bytes:
    return struct.pack("!I", zlib.crc32(data) ^ _FINGERPRINT_XOR)


def decode(datagram: bytes) -> StunMessage:
    """Parse one datagram. Raises ``StunError`` naming the problem if it is not a well-formed STUN message."""
    scan = _scan(datagram)
    if scan.fingerprint_at is not None:
        expected = _crc(datagram[: scan.fingerprint_at])
        if not hmac.compare_digest(expected, datagram[scan.fingerprint_at + 4 : scan.fingerprint_at + 8]):
            raise StunError("FINGERPRINT does not match")
    method, cls = _split_type(_HEADER.unpack_from(datagram)[0])
    return StunMessage(
        method,
        cls,
        scan.transaction_id,
        tuple((kind, datagram[at + 4 : at + 4 + size]) for kind, at, size in scan.attributes),
        has_integrity=scan.integrity_at is not None,
        has_fingerprint=scan.fingerprint_at is not None,
    )


# -- integrity ---------------------------------------------------------------------------------------------------


def _integrity_input(prefix: bytes, form: IntegrityForm) -> bytes:
    """The HMAC input for MESSAGE-INTEGRITY appended after ``prefix`` (the message so far, any length field)."""
    body_through_integrity = len(prefix) - _HEADER_SIZE + 4 + _HMAC_SIZE
    length = 0 if form is IntegrityForm.VOVIDA else body_through_integrity
    text = prefix[:2] + struct.pack("!H", length) + prefix[4:]
    if form is IntegrityForm.RFC3489:
        text += bytes(-len(text) % 64)
    return text


def _hmac(key: bytes, text: bytes) -> bytes:
    return hmac.new(key, text, hashlib.sha1).digest()


def verify_integrity(datagram: bytes, key: bytes) -> IntegrityForm | None:
    """Check MESSAGE-INTEGRITY with ``key``; return the flavour that matched, None if missing or wrong.

    Raises ``StunError`` if the datagram is not structurally a STUN message.
    """
    scan = _scan(datagram)
    if scan.integrity_at is None:
        return None
    prefix = datagram[: scan.integrity_at]
    received = datagram[scan.integrity_at + 4 : scan.integrity_at + 4 + _HMAC_SIZE]
    for form in IntegrityForm:
        if hmac.compare_digest(_hmac(key, _integrity_input(prefix, form)), received):
            return form
    return None


# -- encoding ----------------------------------------------------------------------------------------------------


def _attribute(kind: int, value: bytes, padding: int) -> bytes:
    if not 0 <= kind <= 0xFFFF:
        raise StunError(f"attribute type {kind} does not fit in 16 bits")
    if len(value) > 0xFFFF - 4:
        raise StunError(f"attribute {kind:#06x} value of {len(value)} bytes is too long")
    return _HEADER.pack(kind, len(value)) + value + bytes([padding]) * (-len(value) % 4)


def encode(
    msg: StunMessage,
    *,
    integrity_key: bytes | None = None,
    integrity_form: IntegrityForm | None = None,
    fingerprint: bool | None = None,
    padding: int = 0,
) -> bytes:
    """Serialise ``msg``, appending MESSAGE-INTEGRITY (when ``integrity_key`` is given) and FINGERPRINT.

    ``integrity_form`` defaults to RFC5389 for RFC 5389 messages and RFC3489 for classic ones (a server answers in
    the form the request used). ``fingerprint`` defaults to on for RFC 5389 messages, off for classic ones.
    ``padding`` is the byte value that pads attributes to 4 bytes: RFC 5389 lets it be anything, and the RFC 5769
    test vectors use spaces.
    """
    if not 0 <= padding <= 0xFF:
        raise StunError(f"padding byte {padding} is not a byte value")
    for kind, _ in msg.attributes:
        if kind in (AttributeType.MESSAGE_INTEGRITY, AttributeType.FINGERPRINT):
            raise StunError("MESSAGE-INTEGRITY and FINGERPRINT are computed by encode, not passed as attributes")
    body = b"".join(_attribute(kind, value, padding) for kind, value in msg.attributes)
    header_tail = msg.transaction_id if msg.classic else _COOKIE_BYTES + msg.transaction_id
    message_type = _message_type(msg.method, msg.cls)

    def framed(body_so_far: bytes) -> bytes:
        if len(body_so_far) > 0xFFFF:
            raise StunError(f"message body of {len(body_so_far)} bytes is too long")
        return _HEADER.pack(message_type, len(body_so_far)) + header_tail + body_so_far

    if integrity_key is not None:
        form = integrity_form or (IntegrityForm.RFC3489 if msg.classic else IntegrityForm.RFC5389)
        digest = _hmac(integrity_key, _integrity_input(framed(body), form))
        body += _attribute(AttributeType.MESSAGE_INTEGRITY, digest, padding)
    if fingerprint if fingerprint is not None else not msg.classic:
        # The CRC covers the header with its length already counting the FINGERPRINT attribute.
        prefix = framed(body + bytes(8))[:-8]
        body += _attribute(AttributeType.FINGERPRINT, _crc(prefix), padding)
    return framed(body)


# -- attribute values --------------------------------------------------------------------------------------------

_FAMILY_IPV4 = 0x01
_FAMILY_IPV6 = 0x02


def _ip(host: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address:
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        raise StunError(f"{host!r} is not an IP address") from None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


def _check_port(port: int) -> None:
    if not 0 <= port <= 0xFFFF:
        raise StunError(f"port {port} is out of range")


def address_value(host: str, port: int) -> bytes:
    """A MAPPED-ADDRESS-style value (also RESPONSE-ADDRESS, SOURCE-ADDRESS, REFLECTED-FROM, ...)."""
    _check_port(port)
    address = _ip(host)
    family = _FAMILY_IPV4 if address.version == 4 else _FAMILY_IPV6
    return struct.pack("!BBH", 0, family, port) + address.packed


def parse_address(value: bytes) -> tuple[str, int]:
    if len(value) < 4:
        raise StunError(f"address attribute of {len(value)} bytes is too short")
    _, family, port = struct.unpack_from("!BBH", value)
    raw = value[4:]
    if family == _FAMILY_IPV4 and len(raw) == 4:
        return str(ipaddress.IPv4Address(raw)), port
    if family == _FAMILY_IPV6 and len(raw) == 16:
        return str(ipaddress.IPv6Address(raw)), port
    raise StunError(f"address attribute has family {family:#04x} with {len(raw)} address bytes")


def _xor_mask(transaction_id: bytes) -> bytes:
    if len(transaction_id) != 12:
        raise StunError("XOR-MAPPED-ADDRESS needs an RFC 5389 (12-byte) transaction id")
    return _COOKIE_BYTES + transaction_id


def _xor_value(value: bytes, transaction_id: bytes) -> bytes:
    mask = _xor_mask(transaction_id)
    # The port is xored with the cookie's top 16 bits, the address with cookie + transaction id.
    xored_port = bytes(a ^ b for a, b in zip(value[2:4], mask))
    return value[:2] + xored_port + bytes(a ^ b for a, b in zip(value[4:], mask))


def xor_address_value(host: str, port: int, transaction_id: bytes) -> bytes:
    return _xor_value(address_value(host, port), transaction_id)


def parse_xor_address(value: bytes, transaction_id: bytes) -> tuple[str, int]:
    return parse_address(_xor_value(value, transaction_id))


_REASONS = {
    300: "Try Alternate",
    400: "Bad Request",
    401: "Unauthorized",
    420: "Unknown Attribute",
    438: "Stale Nonce",
    500: "Server Error",
}


def error_code_value(code: int, reason: str | None = None) -> bytes:
    if not 300 <= code <= 699:
        raise StunError(f"error code {code} is outside 300-699")
    text = (reason if reason is not None else _REASONS.get(code, "")).encode("utf-8")
    if len(text) > _MAX_REASON_BYTES:
        raise StunError(f"error reason of {len(text)} bytes is too long")
    return struct.pack("!HBB", 0, code // 100, code % 100) + text


def parse_error_code(value: bytes) -> tuple[int, str]:
    if len(value) < 4:
        raise StunError(f"ERROR-CODE of {len(value)} bytes is too short")
    _, hundreds, number = struct.unpack_from("!HBB", value)
    hundreds &= 0x07
    if not 3 <= hundreds <= 6 or number > 99:
        raise StunError(f"ERROR-CODE class {hundreds} number {number} is not a valid code")
    return hundreds * 100 + number, value[4:].decode("utf-8", errors="replace")


def unknown_attributes_value(types: Iterable[int]) -> bytes:
    return b"".join(struct.pack("!H", kind) for kind in types)


def parse_unknown_attributes(value: bytes) -> tuple[int, ...]:
    if len(value) % 2:
        raise StunError("UNKNOWN-ATTRIBUTES has an odd length")
    return struct.unpack(f"!{len(value) // 2}H", value)


def parse_change_request(value: bytes) -> tuple[bool, bool]:
    """(change IP, change port) flags of a CHANGE-REQUEST value."""
    if len(value) != 4:
        raise StunError(f"CHANGE-REQUEST must be 4 bytes, not {len(value)}")
    (flags,) = struct.unpack("!I", value)
    return bool(flags & 0x4), bool(flags & 0x2)


# -- message builders --------------------------------------------------------------------------------------------


def new_transaction_id(*, classic: bool = False) -> bytes:
    while True:
        candidate = os.urandom(16 if classic else 12)
        if not (classic and candidate[:4] == _COOKIE_BYTES):
            return candidate


def binding_request(
    *,
    transaction_id: bytes | None = None,
    classic: bool = False,
    username: str | None = None,
    connection_request_binding: bool = False,
    binding_change: bool = False,
    software: str | None = None,
    extra: Iterable[Attribute] = (),
) -> StunMessage:
    """A Binding Request as a TR-111 CPE sends it (add the key to ``encode`` for MESSAGE-INTEGRITY)."""
    attributes: list[Attribute] = []
    if username is not None:
        raw = username.encode("utf-8")
        if len(raw) > _MAX_USERNAME_BYTES:
            raise StunError(f"USERNAME of {len(raw)} bytes is too long")
        attributes.append((AttributeType.USERNAME, raw))
    if connection_request_binding:
        attributes.append((AttributeType.CONNECTION_REQUEST_BINDING, CONNECTION_REQUEST_BINDING))
    if binding_change:
        attributes.append((AttributeType.BINDING_CHANGE, b""))
    if software is not None:
        attributes.append((AttributeType.SOFTWARE, software.encode("utf-8")))
    attributes.extend(extra)
    tid = transaction_id if transaction_id is not None else new_transaction_id(classic=classic)
    return StunMessage(BINDING, StunClass.REQUEST, tid, tuple(attributes))


def binding_success(
    request: StunMessage,
    mapped: tuple[str, int],
    *,
    software: str | None = None,
    extra: Iterable[Attribute] = (),
) -> StunMessage:
    """The Binding Success Response: XOR-MAPPED-ADDRESS plus MAPPED-ADDRESS, or MAPPED-ADDRESS alone for RFC 3489."""
    host, port = mapped
    attributes: list[Attribute] = []
    if not request.classic:
        attributes.append((AttributeType.XOR_MAPPED_ADDRESS, xor_address_value(host, port, request.transaction_id)))
    attributes.append((AttributeType.MAPPED_ADDRESS, address_value(host, port)))
    attributes.extend(extra)
    if software is not None:
        attributes.append((AttributeType.SOFTWARE, software.encode("utf-8")))
    return StunMessage(request.method, StunClass.SUCCESS, request.transaction_id, tuple(attributes))


def binding_error(
    request: StunMessage,
    code: int,
    reason: str | None = None,
    *,
    unknown: Iterable[int] = (),
    software: str | None = None,
) -> StunMessage:
    attributes: list[Attribute] = [(AttributeType.ERROR_CODE, error_code_value(code, reason))]
    unknown = tuple(unknown)
    if unknown:
        attributes.append((AttributeType.UNKNOWN_ATTRIBUTES, unknown_attributes_value(unknown)))
    if software is not None:
        attributes.append((AttributeType.SOFTWARE, software.encode("utf-8")))
    return StunMessage(request.method, StunClass.ERROR, request.transaction_id, tuple(attributes))
