"""The client side of HTTP Digest (RFC 7616) and Basic (RFC 7617) authentication, without I/O.

``DigestClient(username, password, *, allow_basic=False, cnonce_factory=..., max_tracked_nonces=32)``

- ``authorization(method, uri, challenge_headers=None) -> str``: the Authorization header value answering the given
  WWW-Authenticate values (pass every such header of the 401; one value may hold several challenges). Without
  challenges it answers the last challenge again with the next nonce-count, for clients that authenticate
  pre-emptively on later requests of a session. Raises ``NoUsableChallengeError`` when nothing offered can be
  answered (the message names the offered schemes and algorithms, never credentials).

Choice: Digest with qop=auth, preferring SHA-256, then SHA-256-sess, MD5, MD5-sess, the server's order breaking
ties; Basic only when ``allow_basic`` (pass ``allow_basic=is_tls``: Basic sends the password itself). Values the
server sends are kept verbatim (realm, nonce, opaque echoed back); unknown parameters, ``userhash`` included, are
ignored and the username is sent in the clear (as ``username*`` in RFC 8187 form when it is not plain ASCII).
A WWW-Authenticate value that does not parse is skipped so the other values can still be used.
"""

from __future__ import annotations

import base64
import re
import secrets
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Literal
from urllib.parse import quote as percent_encode

from cwmp_models.httpauth import (
    ALGORITHMS,
    AuthElement,
    AuthHeaderError,
    DigestAlgorithm,
    NoUsableChallengeError,
    digest_response,
    ha1,
    parse_challenges,
    quote,
)

__all__ = ["DigestClient"]

_PREFERENCE = ("SHA-256", "SHA-256-sess", "MD5", "MD5-sess")
_PLAIN_USERNAME = re.compile(r"[\x20-\x7e]*")
_RFC8187_ATTR_CHARS = "!#$&+-.^_`|~"  # beyond the letters, digits and "_.-~" percent_encode always keeps


@dataclass(frozen=True, slots=True)
class _DigestTerms:
    realm: str
    nonce: str
    opaque: str | None
    algorithm: DigestAlgorithm


def _random_cnonce() -> str:
    return secrets.token_hex(16)


class DigestClient:
    def __init__(
        self,
        username: str,
        password: str,
        *,
        allow_basic: bool = False,
        cnonce_factory: Callable[[], str] = _random_cnonce,
        max_tracked_nonces: int = 32,
    ) -> None:
        if allow_basic and ":" in username:
            raise ValueError("Basic authentication cannot carry a username containing ':'")
        self.username = username
        self._password = password
        self._allow_basic = allow_basic
        self._cnonce_factory = cnonce_factory
        self._max_tracked_nonces = max_tracked_nonces
        self._counts: OrderedDict[str, int] = OrderedDict()  # nonce -> last nonce-count sent
        self._last: _DigestTerms | Literal["basic"] | None = None

    def __repr__(self) -> str:
        return f"DigestClient(username={self.username!r}, allow_basic={self._allow_basic!r})"

    def authorization(self, method: str, uri: str, challenge_headers: Sequence[str] | None = None) -> str:
        if challenge_headers is not None:
            self._last = self._choose(challenge_headers)
        elif self._last is None:
            raise NoUsableChallengeError("no challenge received yet")
        if self._last == "basic":
            return self._basic()
        return self._digest(method, uri, self._last)

    def _choose(self, challenge_headers: Sequence[str]) -> _DigestTerms | Literal["basic"]:
        challenges: list[AuthElement] = []
        for value in challenge_headers:
            try:
                challenges.extend(parse_challenges([value]))
            except AuthHeaderError:
                continue
        digests = [terms for terms in map(_digest_terms, challenges) if terms is not None]
        if digests:
            return min(digests, key=lambda terms: _PREFERENCE.index(terms.algorithm.name))
        if self._allow_basic and any(challenge.scheme == "basic" for challenge in challenges):
            return "basic"
        offered = ", ".join(_describe(challenge) for challenge in challenges) or "nothing parseable"
        raise NoUsableChallengeError(f"no usable challenge (offered: {offered})")

    def _basic(self) -> str:
        token = base64.b64encode(f"{self.username}:{self._password}".encode()).decode("ascii")
        return f"Basic {token}"

    def _digest(self, method: str, uri: str, terms: _DigestTerms) -> str:
        nc = f"{self._next_count(terms.nonce):08x}"
        cnonce = self._cnonce_factory()
        response = digest_response(
            algorithm=terms.algorithm,
            stored_ha1=ha1(self.username, terms.realm, self._password, terms.algorithm.base),
            nonce=terms.nonce,
            nc=nc,
            cnonce=cnonce,
            qop="auth",
            method=method,
            uri=uri,
        )
        fields = [
            _username_field(self.username),
            f"realm={quote(terms.realm)}",
            f"uri={quote(uri)}",
            f"algorithm={terms.algorithm.name}",
            f"nonce={quote(terms.nonce)}",
            f"nc={nc}",
            f"cnonce={quote(cnonce)}",
            "qop=auth",
            f"response={quote(response)}",
        ]
        if terms.opaque is not None:
            fields.append(f"opaque={quote(terms.opaque)}")
        return "Digest " + ", ".join(fields)

    def _next_count(self, nonce: str) -> int:
        count = self._counts.pop(nonce, 0) + 1
        self._counts[nonce] = count
        while len(self._counts) > self._max_tracked_nonces:
            self._counts.popitem(last=False)
        return count


def _digest_terms(challenge: AuthElement) -> _DigestTerms | None:
    if challenge.scheme != "digest":
        return None
    params = challenge.params
    algorithm = ALGORITHMS.get(params.get("algorithm", "MD5").upper())
    qops = {qop.strip().lower() for qop in params.get("qop", "").split(",")}
    if algorithm is None or "auth" not in qops or "nonce" not in params or "realm" not in params:
        return None
    return _DigestTerms(params["realm"], params["nonce"], params.get("opaque"), algorithm)


def _describe(challenge: AuthElement) -> str:
    if challenge.scheme == "digest":
        return f"digest algorithm={challenge.params.get('algorithm', 'MD5')!r} qop={challenge.params.get('qop')!r}"
    return challenge.scheme


def _username_field(username: str) -> str:
    if _PLAIN_USERNAME.fullmatch(username):
        return f"username={quote(username)}"
    return "username*=UTF-8''" + percent_encode(username.encode("utf-8"), safe=_RFC8187_ATTR_CHARS)
