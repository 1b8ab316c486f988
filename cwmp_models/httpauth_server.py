"""The server side of HTTP Digest (RFC 7616) and Basic (RFC 7617) authentication, without I/O.

``DigestVerifier(realm, *, algorithms=("SHA-256", "MD5"), nonce_ttl=300.0, secret=None, clock=time.monotonic,
max_tracked_nonces=100_000)``

- ``challenge(*, stale=False, basic=False) -> list[str]``: WWW-Authenticate values, one Digest challenge per
  algorithm in preference order, all sharing one fresh nonce (plus a Basic challenge if asked; only offer it on TLS).
- ``verify(method, request_uri, authorization, lookup_ha1, *, is_tls, allow_basic=True) -> AuthResult``: never
  raises on anything the client sent; exceptions from ``lookup_ha1`` propagate. ``request_uri`` is the
  request-target as received; the header's ``uri`` must equal it, or be an absolute URI with the same path and query.
- ``tracked_nonces``: size of the nonce-count table.

``lookup_ha1(username, algorithm)`` returns the stored ``ha1(username, realm, password, algorithm)`` for a base
algorithm (``"MD5"`` or ``"SHA-256"``; ``-sess`` variants use their base) or ``None`` when there is none, so
passwords are never needed in plaintext. Basic credentials are checked by hashing the offered password into the
first HA1 the store has, in the verifier's algorithm order.

Nonces are stateless to issue: issue time, random bytes and an HMAC (per-process secret unless ``secret`` is given,
bound to the realm). A forged nonce fails the HMAC; an old one is expired. Only after a request's digest checks out
is its nonce-count recorded, in a bounded LRU table, and any (nonce, nc) not above the last recorded count is
refused. When an entry must be evicted, its issue time becomes a floor: a nonce issued at or before the floor and no
longer in the table is refused, since it may have been used. Refusals for an expired nonce, a replayed count or an
evicted nonce set ``stale=True`` when the digest itself was right (the client knows the password and should retry
with the fresh nonce from ``challenge(stale=True)`` without asking anyone). This is what makes stacks that reuse one
nonce with ``nc=00000001`` work: the repeat is refused as a replay, and their retry with the new nonce succeeds.

Several processes can share nonces by sharing ``secret`` (``time.monotonic`` is host-wide on Linux), but each
tracks nonce-counts on its own. Not thread-safe: meant for one reactor thread.
"""

from __future__ import annotations

import base64
import binascii
import enum
import hashlib
import hmac
import re
import secrets
import time
from collections import OrderedDict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from urllib.parse import unquote, urlsplit

from cwmp_models.httpauth import (
    ALGORITHMS,
    AuthElement,
    DigestAlgorithm,
    HttpAuthError,
    digest_response,
    ha1,
    parse_credentials,
    quote,
    resolve_algorithm,
)

__all__ = ["DigestVerifier", "AuthResult", "Reason", "LookupHa1"]

LookupHa1 = Callable[[str, str], str | None]


class Reason(enum.StrEnum):
    """Why a request was (not) authenticated: short, fit for logs and metrics, never carrying a secret."""

    OK = "ok"
    MISSING = "no credentials"
    MALFORMED = "malformed authorization header"
    UNSUPPORTED_SCHEME = "unsupported auth scheme"
    BASIC_NOT_ALLOWED = "basic auth not allowed"
    BASIC_WITHOUT_TLS = "basic auth refused without tls"
    UNSUPPORTED_ALGORITHM = "unsupported digest algorithm"
    UNSUPPORTED_QOP = "unsupported qop"
    USERHASH_UNSUPPORTED = "userhash not supported"
    REALM_MISMATCH = "realm mismatch"
    URI_MISMATCH = "uri does not match request"
    INVALID_NONCE = "invalid nonce"
    UNKNOWN_USER = "unknown user"
    BAD_CREDENTIALS = "wrong credentials"
    STALE_NONCE = "nonce expired"
    REPLAYED_NONCE_COUNT = "nonce count not increasing"
    EVICTED_NONCE = "nonce no longer tracked"


@dataclass(frozen=True, slots=True)
class AuthResult:
    ok: bool
    username: str | None  # set only when ok
    reason: Reason
    stale: bool = False  # answer with challenge(stale=True): the client had the right password
    scheme: str | None = None  # "digest" or "basic" once the header was parsed

    @classmethod
    def refused(cls, reason: Reason, scheme: str | None = None, *, stale: bool = False) -> AuthResult:
        return cls(False, None, reason, stale, scheme)


_NONCE_TIME_BYTES = 8
_NONCE_RANDOM_BYTES = 12
_NONCE_MAC_BYTES = 16
_NONCE_TEXT = re.compile(r"[A-Za-z0-9_-]{48}")  # unpadded base64url of the 36 bytes above
_NC = re.compile(r"[0-9A-Fa-f]{8}")
_HEX = re.compile(r"[0-9A-Fa-f]+")
_RFC8187 = re.compile(r"(?i:utf-8)'[^']*'(.*)", re.DOTALL)


class DigestVerifier:
    def __init__(
        self,
        realm: str,
        *,
        algorithms: Sequence[str] = ("SHA-256", "MD5"),
        nonce_ttl: float = 300.0,
        secret: bytes | None = None,
        clock: Callable[[], float] = time.monotonic,
        max_tracked_nonces: int = 100_000,
    ) -> None:
        quote(realm)  # rejects control characters now rather than at the first challenge
        if not algorithms:
            raise ValueError("at least one digest algorithm is required")
        if nonce_ttl <= 0:
            raise ValueError(f"nonce_ttl must be positive, got {nonce_ttl!r}")
        if max_tracked_nonces < 1:
            raise ValueError(f"max_tracked_nonces must be at least 1, got {max_tracked_nonces!r}")
        self.realm = realm
        self.algorithms: tuple[DigestAlgorithm, ...] = tuple(resolve_algorithm(name) for name in algorithms)
        self._ttl_ms = int(nonce_ttl * 1000)
        self._secret = secret if secret is not None else secrets.token_bytes(32)
        self._clock = clock
        self._counts = _NonceCounts(max_tracked_nonces)

    @property
    def tracked_nonces(self) -> int:
        """How many nonces have a recorded count (for metrics: near ``max_tracked_nonces`` means evictions)."""
        return len(self._counts)

    def challenge(self, *, stale: bool = False, basic: bool = False) -> list[str]:
        nonce = self._mint_nonce()
        common = f"realm={quote(self.realm)}, qop=\"auth\", nonce=\"{nonce}\", charset=UTF-8"
        suffix = ", stale=true" if stale else ""
        values = [f"Digest {common}, algorithm={algorithm.name}{suffix}" for algorithm in self.algorithms]
        if basic:
            values.append(f"Basic realm={quote(self.realm)}, charset=\"UTF-8\"")
        return values

    def verify(
        self,
        method: str,
        request_uri: str,
        authorization: str | None,
        lookup_ha1: LookupHa1,
        *,
        is_tls: bool,
        allow_basic: bool = True,
    ) -> AuthResult:
        if not authorization:
            return AuthResult.refused(Reason.MISSING)
        try:
            credentials = parse_credentials(authorization)
        except HttpAuthError:
            return AuthResult.refused(Reason.MALFORMED)
        if credentials.scheme == "digest":
            return self._verify_digest(method, request_uri, credentials, lookup_ha1)
        if credentials.scheme == "basic":
            if not allow_basic:
                return AuthResult.refused(Reason.BASIC_NOT_ALLOWED, "basic")
            if not is_tls:
                return AuthResult.refused(Reason.BASIC_WITHOUT_TLS, "basic")
            return self._verify_basic(credentials, lookup_ha1)
        return AuthResult.refused(Reason.UNSUPPORTED_SCHEME)

    def _verify_basic(self, credentials: AuthElement, lookup_ha1: LookupHa1) -> AuthResult:
        try:
            decoded = base64.b64decode(credentials.token68 or "", validate=True).decode("utf-8")
        except (binascii.Error, UnicodeDecodeError):
            return AuthResult.refused(Reason.MALFORMED, "basic")
        username, colon, password = decoded.partition(":")
        if not colon:
            return AuthResult.refused(Reason.MALFORMED, "basic")
        for algorithm in self.algorithms:
            stored = lookup_ha1(username, algorithm.base)
            if stored is not None:
                offered = ha1(username, self.realm, password, algorithm.base)
                if hmac.compare_digest(offered.encode("ascii"), stored.lower().encode("utf-8")):
                    return AuthResult(True, username, Reason.OK, scheme="basic")
                return AuthResult.refused(Reason.BAD_CREDENTIALS, "basic")
        return AuthResult.refused(Reason.UNKNOWN_USER, "basic")

    def _verify_digest(
        self, method: str, request_uri: str, credentials: AuthElement, lookup_ha1: LookupHa1
    ) -> AuthResult:
        def refused(reason: Reason, *, stale: bool = False) -> AuthResult:
            return AuthResult.refused(reason, "digest", stale=stale)

        params = credentials.params
        username = _username(params)
        required = ("realm", "nonce", "uri", "response", "qop", "nc", "cnonce")
        if username is None or any(name not in params for name in required):
            return refused(Reason.MALFORMED)
        algorithm = ALGORITHMS.get(params.get("algorithm", "MD5").upper())
        if algorithm is None or algorithm not in self.algorithms:
            return refused(Reason.UNSUPPORTED_ALGORITHM)
        if params["qop"].lower() != "auth":
            return refused(Reason.UNSUPPORTED_QOP)
        if params.get("userhash", "false").lower() != "false":
            return refused(Reason.USERHASH_UNSUPPORTED)
        if not _NC.fullmatch(params["nc"]):
            return refused(Reason.MALFORMED)
        response = params["response"]
        if len(response) != algorithm.hex_length or not _HEX.fullmatch(response):
            return refused(Reason.MALFORMED)
        if params["realm"] != self.realm:
            return refused(Reason.REALM_MISMATCH)
        if not _same_resource(params["uri"], request_uri):
            return refused(Reason.URI_MISMATCH)
        issued_ms = self._open_nonce(params["nonce"])
        if issued_ms is None:
            return refused(Reason.INVALID_NONCE)

        stored = lookup_ha1(username, algorithm.base)
        if stored is None:
            return refused(Reason.UNKNOWN_USER)
        expected = digest_response(
            algorithm=algorithm,
            stored_ha1=stored,
            nonce=params["nonce"],
            nc=params["nc"],
            cnonce=params["cnonce"],
            qop=params["qop"],
            method=method,
            uri=params["uri"],
        )
        if not hmac.compare_digest(expected.encode("utf-8"), response.lower().encode("ascii")):
            return refused(Reason.BAD_CREDENTIALS)

        now_ms = self._now_ms()
        if now_ms - issued_ms > self._ttl_ms:
            return refused(Reason.STALE_NONCE, stale=True)
        counted = self._counts.advance(params["nonce"], issued_ms, int(params["nc"], 16), now_ms - self._ttl_ms)
        if counted is not _Count.ACCEPTED:
            reason = Reason.REPLAYED_NONCE_COUNT if counted is _Count.NOT_INCREASING else Reason.EVICTED_NONCE
            return refused(reason, stale=True)
        return AuthResult(True, username, Reason.OK, scheme="digest")

    def _now_ms(self) -> int:
        return int(self._clock() * 1000)

    def _mint_nonce(self) -> str:
        body = self._now_ms().to_bytes(_NONCE_TIME_BYTES, "big") + secrets.token_bytes(_NONCE_RANDOM_BYTES)
        return base64.urlsafe_b64encode(body + self._nonce_mac(body)).decode("ascii")

    def _open_nonce(self, nonce: str) -> int | None:
        """The issue time in ms of a nonce this verifier minted, or None for anything else."""
        if not _NONCE_TEXT.fullmatch(nonce):
            return None
        raw = base64.urlsafe_b64decode(nonce)
        body, mac = raw[:-_NONCE_MAC_BYTES], raw[-_NONCE_MAC_BYTES:]
        if not hmac.compare_digest(mac, self._nonce_mac(body)):
            return None
        issued_ms = int.from_bytes(body[:_NONCE_TIME_BYTES], "big")
        return issued_ms if issued_ms <= self._now_ms() else None

    def _nonce_mac(self, body: bytes) -> bytes:
        message = self.realm.encode("utf-8") + b"\0" + body
        return hmac.new(self._secret, message, hashlib.sha256).digest()[:_NONCE_MAC_BYTES]


class _Count(enum.Enum):
    ACCEPTED = enum.auto()
    NOT_INCREASING = enum.auto()
    EVICTED = enum.auto()


class _NonceCounts:
    """Highest nonce-count seen per nonce, least recently used first, bounded in size."""

    def __init__(self, capacity: int) -> None:
        self._capacity = capacity
        self._entries: OrderedDict[str, tuple[int, int]] = OrderedDict()  # nonce -> (issued_ms, highest nc)
        self._evicted_floor_ms = -1

    def __len__(self) -> int:
        return len(self._entries)

    def advance(self, nonce: str, issued_ms: int, nc: int, expired_before_ms: int) -> _Count:
        entry = self._entries.get(nonce)
        if entry is None and issued_ms <= self._evicted_floor_ms:
            return _Count.EVICTED
        highest = entry[1] if entry is not None else 0  # counts start at 1
        if nc <= highest:
            return _Count.NOT_INCREASING
        self._entries[nonce] = (issued_ms, nc)
        self._entries.move_to_end(nonce)
        self._drop_expired(expired_before_ms)
        while len(self._entries) > self._capacity:
            _, (evicted_issued_ms, _) = self._entries.popitem(last=False)
            self._evicted_floor_ms = max(self._evicted_floor_ms, evicted_issued_ms)
        return _Count.ACCEPTED

    def _drop_expired(self, expired_before_ms: int) -> None:
        # Expired nonces are refused by their timestamp, so their entries are dead weight; the oldest-used ones sit
        # at the front, which keeps this amortised O(1).
        while self._entries:
            issued_ms, _ = next(iter(self._entries.values()))
            if issued_ms >= expired_before_ms:
                return
            self._entries.popitem(last=False)


def _username(params: Mapping[str, str]) -> str | None:
    """The username, plain or in RFC 8187 form (``username*=UTF-8''...``, for names a quoted-string cannot carry)."""
    plain, extended = params.get("username"), params.get("username*")
    if extended is None or plain is not None:
        return plain if extended is None else None  # sending both is forbidden (RFC 7616 section 3.4)
    encoded = _RFC8187.fullmatch(extended)
    if encoded is None:
        return None
    try:
        return unquote(encoded.group(1), encoding="utf-8", errors="strict")
    except UnicodeDecodeError:
        return None


def _same_resource(header_uri: str, request_uri: str) -> bool:
    """Whether the digest's ``uri`` names the requested resource; an absolute form (sent via proxies and by some
    stacks) matches by its path and query."""
    if header_uri == request_uri:
        return True
    header_target, request_target = _origin_form(header_uri), _origin_form(request_uri)
    return header_target is not None and header_target == request_target


def _origin_form(uri: str) -> str | None:
    try:
        parts = urlsplit(uri)
    except ValueError:
        return None
    if parts.scheme and parts.netloc:
        return (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    return uri
