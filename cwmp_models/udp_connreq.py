"""UDP connection requests (TR-069 Annex G, TR-111 Part 2): build, parse and verify the datagram.

Behind NAT the ACS cannot reach a phone's ConnectionRequestURL, so it sends, from its STUN server's port (the only
source the NAT mapping lets through), a datagram holding an HTTP-like request::

    GET http://<host>:<port>?ts=<unix time>&id=<message id>&un=<username>&cn=<cnonce>&sig=<hex> HTTP/1.1
    Host: <host>:<port>

``sig`` is the hex HMAC-SHA1, keyed with the connection-request password, of the text ``ts + id + un + cn``
concatenated with no separators. The ACS repeats the datagram a few times with the same ``id``; the CPE acts on the
first copy and drops the rest as replays. A CPE silently ignores any request whose signature, username, timestamp
(outside a window around its clock) or id (already seen) is wrong.

Public API::

    signature(password, ts, id, username, cnonce) -> str                  # lowercase hex
    build_request(host, port, username, password, *, ts, id, cnonce) -> bytes
    parse_request(datagram) -> UdpConnectionRequest                       # UdpConnReqError on malformed input
    ReplayGuard(window=DEFAULT_WINDOW)                                    # the CPE's memory of accepted ids
    verify(request, username, password, *, now, guard) -> Verdict         # truthy only for Verdict.ACCEPTED

Values are percent-encoded in the URI (RFC 3986 unreserved characters stay as they are, so ordinary usernames go
out verbatim, as GenieACS sends them) and the signature covers the decoded values. The CPE checks the signature
case-insensitively: TR-069's own example uses upper-case hex, GenieACS lower-case.
"""

from __future__ import annotations

import enum
import hashlib
import hmac
import ipaddress
from dataclasses import dataclass
from urllib.parse import parse_qsl, quote, urlsplit

__all__ = [
    "DEFAULT_WINDOW",
    "MAX_DATAGRAM",
    "UdpConnReqError",
    "UdpConnectionRequest",
    "Verdict",
    "ReplayGuard",
    "signature",
    "build_request",
    "parse_request",
    "verify",
]

# Our choice, not the standard's (TR-069 leaves the tolerance to the CPE): phones keep NTP time, and the ACS
# resends within seconds, so five minutes forgives clock skew while bounding how long an id must be remembered.
DEFAULT_WINDOW = 300.0
# Real requests are ~250 bytes; anything far larger is not one.
MAX_DATAGRAM = 2048

_PARAMETERS = ("ts", "id", "un", "cn", "sig")
_SIGNATURE_HEX_DIGITS = 40


class UdpConnReqError(ValueError):
    """A datagram that is not a well-formed UDP connection request."""


@dataclass(frozen=True)
class UdpConnectionRequest:
    host: str
    port: int | None
    ts: int
    id: str
    username: str
    cnonce: str
    signature: str


class Verdict(enum.Enum):
    ACCEPTED = "accepted"
    WRONG_USERNAME = "wrong username"
    STALE = "timestamp outside the window"
    BAD_SIGNATURE = "bad signature"
    REPLAYED = "id already seen"

    def __bool__(self) -> bool:
        return self is Verdict.ACCEPTED


def signature(password: str, ts: int, id: str, username: str, cnonce: str) -> str:
    text = f"{ts}{id}{username}{cnonce}".encode("utf-8")
    return hmac.new(password.encode("utf-8"), text, hashlib.sha1).hexdigest()


def _authority(host: str, port: int) -> str:
    if not 0 < port <= 0xFFFF:
        raise UdpConnReqError(f"port {port} is out of range")
    try:
        is_ipv6 = ipaddress.ip_address(host).version == 6
    except ValueError:
        is_ipv6 = False
    return f"[{host}]:{port}" if is_ipv6 else f"{host}:{port}"


def build_request(host: str, port: int, username: str, password: str, *, ts: int, id: str, cnonce: str) -> bytes:
    """The datagram for one connection request to ``host:port`` (the CPE's UDPConnectionRequestAddress)."""
    if ts < 0:
        raise UdpConnReqError("ts must not be negative")
    if not id:
        raise UdpConnReqError("id must not be empty")
    authority = _authority(host, port)
    values = (str(ts), id, username, cnonce, signature(password, ts, id, username, cnonce))
    query = "&".join(f"{name}={quote(value, safe='')}" for name, value in zip(_PARAMETERS, values))
    return f"GET http://{authority}?{query} HTTP/1.1\r\nHost: {authority}\r\n\r\n".encode("utf-8")


def parse_request(datagram: bytes) -> UdpConnectionRequest:
    """Parse the request line (headers are not needed and are ignored). Raises ``UdpConnReqError``."""
    if len(datagram) > MAX_DATAGRAM:
        raise UdpConnReqError(f"datagram of {len(datagram)} bytes is too large for a connection request")
    try:
        text = datagram.decode("utf-8")
    except UnicodeDecodeError:
        raise UdpConnReqError("datagram is not UTF-8 text") from None
    request_line = text.split("\n", 1)[0].rstrip("\r")
    parts = request_line.split(" ")
    if len(parts) != 3 or parts[0] != "GET" or not parts[2].startswith("HTTP/1."):
        raise UdpConnReqError("request line is not 'GET <uri> HTTP/1.x'")
    try:
        uri = urlsplit(parts[1])
        port = uri.port
        pairs = parse_qsl(uri.query, keep_blank_values=True, strict_parsing=True)
    except ValueError as exc:
        raise UdpConnReqError(f"malformed request URI: {exc}") from None
    if uri.scheme != "http" or not uri.hostname:
        raise UdpConnReqError("request URI is not an absolute http URI")

    values: dict[str, str] = {}
    for name, value in pairs:
        if name in values:
            raise UdpConnReqError(f"parameter {name!r} appears twice")
        values[name] = value
    missing = [name for name in _PARAMETERS if name not in values]
    if missing:
        raise UdpConnReqError(f"missing parameters: {', '.join(missing)}")
    if not values["ts"].isascii() or not values["ts"].isdigit():
        raise UdpConnReqError("ts is not a decimal number")
    if not values["id"]:
        raise UdpConnReqError("id is empty")
    sig = values["sig"]
    if len(sig) != _SIGNATURE_HEX_DIGITS or not all(c in "0123456789abcdefABCDEF" for c in sig):
        raise UdpConnReqError(f"sig is not {_SIGNATURE_HEX_DIGITS} hex digits")
    return UdpConnectionRequest(
        host=uri.hostname,
        port=port,
        ts=int(values["ts"]),
        id=values["id"],
        username=values["un"],
        cnonce=values["cn"],
        signature=sig,
    )


class ReplayGuard:
    """The ids a CPE has accepted, remembered as long as their timestamp could still pass the window check."""

    def __init__(self, window: float = DEFAULT_WINDOW) -> None:
        if window <= 0:
            raise ValueError("window must be positive")
        self.window = window
        self._seen: dict[str, int] = {}

    def fresh(self, ts: int, now: float) -> bool:
        return abs(now - ts) <= self.window

    def first_sight(self, id: str, ts: int, now: float) -> bool:
        """Record ``id``; False if it was already recorded. Forgets ids whose timestamp has left the window."""
        self._seen = {seen: stamp for seen, stamp in self._seen.items() if self.fresh(stamp, now)}
        if id in self._seen:
            return False
        self._seen[id] = ts
        return True


def verify(request: UdpConnectionRequest, username: str, password: str, *, now: float, guard: ReplayGuard) -> Verdict:
    """Decide, as the CPE, whether to act on ``request``; only an accepted request's id is remembered."""
    if not hmac.compare_digest(request.username.encode("utf-8"), username.encode("utf-8")):
        return Verdict.WRONG_USERNAME
    if not guard.fresh(request.ts, now):
        return Verdict.STALE
    expected = signature(password, request.ts, request.id, request.username, request.cnonce)
    if not hmac.compare_digest(expected.encode("ascii"), request.signature.lower().encode("utf-8")):
        return Verdict.BAD_SIGNATURE
    if not guard.first_sight(request.id, request.ts, now):
        return Verdict.REPLAYED
    return Verdict.ACCEPTED
