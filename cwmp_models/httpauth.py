"""HTTP Basic (RFC 7617) and Digest (RFC 7616) authentication without I/O: the shared core.

The package is split in three so each side imports only what it uses:

``cwmp_models.httpauth`` (this module)
    ``ha1(username, realm, password, algorithm="MD5") -> str`` -- the value to store per device and per algorithm
    instead of the password; ``digest_response(...)`` -- the request digest both sides compute;
    ``parse_challenges(header_values)`` / ``parse_credentials(header_value)`` -- the RFC 7235 header grammar;
    ``quote(value)``; the errors ``HttpAuthError`` > ``AuthHeaderError``, ``UnsupportedAlgorithmError``,
    ``NoUsableChallengeError``.
``cwmp_models.httpauth_server``
    ``DigestVerifier`` -- issues ``WWW-Authenticate`` challenges and verifies ``Authorization`` headers against
    stored HA1 values (the ACS toward phones, the simulator's connection-request listener); ``AuthResult``,
    ``Reason``.
``cwmp_models.httpauth_client``
    ``DigestClient`` -- answers challenges with an ``Authorization`` header (the ACS's connection requests, the
    simulator toward the ACS).

Algorithms: ``MD5``, ``MD5-sess``, ``SHA-256``, ``SHA-256-sess`` (names compared case-insensitively, since stacks
send ``md5``). A ``-sess`` variant derives its key from the stored HA1 of its base hash, so storage only ever holds
one HA1 per base hash.

Everything works on ``str``. Decode header bytes and the request-target as UTF-8 (``errors="surrogateescape"``):
correct clients send ASCII, and the stacks that put a UTF-8 username in a quoted-string then still verify. Encode the
headers produced here as UTF-8 (they are ASCII unless the server's realm, nonce or opaque were not).
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

__all__ = [
    "HttpAuthError",
    "AuthHeaderError",
    "UnsupportedAlgorithmError",
    "NoUsableChallengeError",
    "DigestAlgorithm",
    "ALGORITHMS",
    "resolve_algorithm",
    "ha1",
    "digest_response",
    "AuthElement",
    "parse_challenges",
    "parse_credentials",
    "quote",
]


class HttpAuthError(ValueError):
    """Base of every error raised by the httpauth modules."""


class AuthHeaderError(HttpAuthError):
    """A WWW-Authenticate or Authorization header (or a value meant for one) breaks the RFC 7235 grammar."""


class UnsupportedAlgorithmError(HttpAuthError):
    """A Digest algorithm name this package does not implement."""


class NoUsableChallengeError(HttpAuthError):
    """No challenge offered by the server can be answered with the client's settings."""


@dataclass(frozen=True, slots=True)
class DigestAlgorithm:
    name: str  # canonical spelling, as sent on the wire
    hash_name: str  # hashlib name
    base: str  # name of the algorithm whose HA1 is stored (itself unless a -sess variant)
    session: bool

    def hash(self, text: str) -> str:
        # surrogatepass: header text decoded with errors="surrogateescape" must fail to match, not raise.
        return hashlib.new(self.hash_name, text.encode("utf-8", "surrogatepass")).hexdigest()

    @property
    def hex_length(self) -> int:
        return hashlib.new(self.hash_name).digest_size * 2


ALGORITHMS: dict[str, DigestAlgorithm] = {
    algorithm.name.upper(): algorithm
    for algorithm in (
        DigestAlgorithm("MD5", "md5", "MD5", session=False),
        DigestAlgorithm("MD5-sess", "md5", "MD5", session=True),
        DigestAlgorithm("SHA-256", "sha256", "SHA-256", session=False),
        DigestAlgorithm("SHA-256-sess", "sha256", "SHA-256", session=True),
    )
}


def resolve_algorithm(name: str) -> DigestAlgorithm:
    try:
        return ALGORITHMS[name.upper()]
    except KeyError:
        raise UnsupportedAlgorithmError(f"unsupported digest algorithm {name!r}") from None


def ha1(username: str, realm: str, password: str, algorithm: str = "MD5") -> str:
    """H(username:realm:password) in lowercase hex: what a server stores instead of the password.

    Only base algorithms are accepted (``MD5``, ``SHA-256``): the ``-sess`` variants are computed from these at
    verification time because they depend on the nonce.
    """
    resolved = resolve_algorithm(algorithm)
    if resolved.session:
        raise UnsupportedAlgorithmError(
            f"store the HA1 of {resolved.base!r}; {resolved.name!r} is derived from it per nonce"
        )
    return resolved.hash(f"{username}:{realm}:{password}")


def digest_response(
    *,
    algorithm: DigestAlgorithm,
    stored_ha1: str,
    nonce: str,
    nc: str,
    cnonce: str,
    qop: str,
    method: str,
    uri: str,
) -> str:
    """The ``response`` value of RFC 7616 section 3.4.1 for qop=auth, from the stored (base) HA1."""
    key = stored_ha1.lower()
    if algorithm.session:
        key = algorithm.hash(f"{key}:{nonce}:{cnonce}")
    ha2 = algorithm.hash(f"{method}:{uri}")
    return algorithm.hash(f"{key}:{nonce}:{nc}:{cnonce}:{qop}:{ha2}")


@dataclass(frozen=True, slots=True)
class AuthElement:
    """One challenge (from WWW-Authenticate) or the credentials (from Authorization): same grammar, same shape."""

    scheme: str  # lowercased
    params: Mapping[str, str]  # names lowercased, values unquoted
    token68: str | None = None


_TOKEN = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
_TOKEN68 = re.compile(r"[A-Za-z0-9\-._~+/]+=*")
_OWS = re.compile(r"[ \t]*")
_LIST_SEPARATORS = re.compile(r"[ \t,]*")
# qdtext and quoted-pair of RFC 7230, admitting any non-control character so UTF-8-decoded headers also parse.
_QUOTED_STRING = re.compile(r'"((?:[^"\\\x00-\x08\x0a-\x1f\x7f]|\\[^\x00-\x08\x0a-\x1f\x7f])*)"')
_QUOTED_PAIR = re.compile(r"\\(.)")
_CONTROL = re.compile(r"[\x00-\x08\x0a-\x1f\x7f]")


def parse_challenges(header_values: Iterable[str]) -> list[AuthElement]:
    """Every challenge in the given WWW-Authenticate header values, in order (several may share one value)."""
    return [element for value in header_values for element in _parse_list(value)]


def parse_credentials(header_value: str) -> AuthElement:
    """The single credentials in an Authorization header value."""
    elements = _parse_list(header_value)
    if len(elements) != 1:
        raise AuthHeaderError(f"expected one set of credentials, found {len(elements)}")
    return elements[0]


def quote(value: str) -> str:
    """``value`` as an RFC 7230 quoted-string."""
    if _CONTROL.search(value):
        raise AuthHeaderError("header value contains a control character")
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _parse_list(header: str) -> list[AuthElement]:
    """Parse ``1#( auth-scheme [ 1*SP ( token68 / #auth-param ) ] )``.

    Commas separate both parameters and challenges, so a name is a parameter when ``=`` follows it and a new scheme
    otherwise; a token68 is recognised only directly after a scheme and only when it runs to the next comma.
    """
    # (scheme, params, token68) per element; params stay mutable until the element is complete.
    pending: list[tuple[str, dict[str, str], str | None]] = []
    end = len(header)
    pos = _skip(_LIST_SEPARATORS, header, 0)
    while pos < end:
        name_match = _TOKEN.match(header, pos)
        if name_match is None:
            raise AuthHeaderError(f"unexpected character at offset {pos}")
        after_name = _skip(_OWS, header, name_match.end())
        if after_name < end and header[after_name] == "=":
            if not pending:
                raise AuthHeaderError("parameter before any auth scheme")
            _, params, token68 = pending[-1]
            if token68 is not None:
                raise AuthHeaderError("parameter after a token68")
            name = name_match.group().lower()
            if name in params:
                raise AuthHeaderError(f"parameter {name!r} repeated")
            params[name], pos = _parse_value(header, _skip(_OWS, header, after_name + 1))
            pos = _expect_list_end(header, pos)
        else:
            token68, pos = _parse_token68(header, name_match.end())
            pending.append((name_match.group().lower(), {}, token68))
        pos = _skip(_LIST_SEPARATORS, header, pos)
    return [AuthElement(scheme, params, token68) for scheme, params, token68 in pending]


def _skip(pattern: re.Pattern[str], header: str, pos: int) -> int:
    match = pattern.match(header, pos)
    return pos if match is None else match.end()


def _parse_token68(header: str, pos: int) -> tuple[str | None, int]:
    """A token68 right after a scheme at ``pos``, if one runs to the next comma; else no token68, same position."""
    if pos >= len(header) or header[pos] == ",":
        return None, pos
    if header[pos] not in " \t":
        raise AuthHeaderError(f"unexpected character after auth scheme at offset {pos}")
    start = _skip(_OWS, header, pos)
    candidate = _TOKEN68.match(header, start)
    if candidate is not None:
        after = _skip(_OWS, header, candidate.end())
        if after >= len(header) or header[after] == ",":
            return candidate.group(), after
    return None, start


def _parse_value(header: str, pos: int) -> tuple[str, int]:
    quoted = _QUOTED_STRING.match(header, pos)
    if quoted is not None:
        return _QUOTED_PAIR.sub(r"\1", quoted.group(1)), quoted.end()
    token = _TOKEN.match(header, pos)
    if token is not None:
        return token.group(), token.end()
    raise AuthHeaderError(f"missing or malformed parameter value at offset {pos}")


def _expect_list_end(header: str, pos: int) -> int:
    pos = _skip(_OWS, header, pos)
    if pos < len(header) and header[pos] != ",":
        raise AuthHeaderError(f"expected ',' at offset {pos}")
    return pos
