"""One HTTP connection request (TR-069 section 3.2.2): a GET to the phone's ConnectionRequestURL, answered with HTTP
Digest, the result classified.

``send_http_request(reactor, url, credentials, *, timeout, allow_basic) -> Deferred[HttpAttempt]``

The exchange: a bare GET; on ``401`` the Authorization answering the challenge (``cwmp_models.httpauth_client``:
Digest SHA-256 or MD5 with qop=auth; Basic only with ``allow_basic``) is sent on the same connection, which is how
phones expect it and what keeps a per-connection nonce valid. ``credentials`` are (username, password) pairs tried
in order on 401: the ACS passes the escrowed active password, then a pending one the phone may already hold. A
second 401 with ``stale=true`` is answered once more with the same credentials.

Every step has ``timeout`` seconds (connect, answer, body). A connection reset before the answer (the phone's stack
dropping an idle keep-alive connection, a listener restarting) is retried once on a new connection; nothing else is.

Outcomes: ``accepted`` (2xx), ``auth_failed`` (401 to every credential, or no challenge we may answer), ``busy``
(503, the phone is in a session or rate-limiting), ``http_error`` (any other status), ``refused`` (nothing listens),
``offline`` (no route to the host), ``timeout``, ``reset`` (the connection dropped twice), ``error`` (anything else,
e.g. an https URL whose certificate the system trust store does not validate).
Details never contain a password or an Authorization value.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from twisted.internet import defer, error as net_error
from twisted.internet.protocol import Protocol
from twisted.python.failure import Failure
from twisted.web.client import Agent, HTTPConnectionPool, ResponseFailed
from twisted.web.http_headers import Headers
from twisted.web.iweb import IResponse

from cwmp_models.httpauth import HttpAuthError
from cwmp_models.httpauth_client import DigestClient

__all__ = ["UNREACHABLE", "HttpAttempt", "send_http_request", "classify_failure", "classify_status"]

# A phone's answer is empty; anything larger is read no further.
MAX_BODY = 16 * 1024
# Outcomes after which the UDP path (TR-111) is worth trying: the URL is not reachable from here.
UNREACHABLE = frozenset({"refused", "offline", "timeout", "reset"})


@dataclass(frozen=True)
class HttpAttempt:
    outcome: str
    status: int | None = None
    detail: str = ""
    credential_index: int | None = None  # which of the credentials the phone accepted


class _Reset(Exception):
    """The connection dropped before an answer: worth one retry on a new connection."""


class _ExchangeFailed(Exception):
    """The exchange failed otherwise (TLS, an unparseable answer); the message names the underlying errors."""


@dataclass(frozen=True)
class _Answer:
    status: int
    challenges: list[str]
    retry_after: str | None


class _Drain(Protocol):
    def __init__(self, finished: defer.Deferred[None]) -> None:
        self._finished = finished
        self._size = 0

    def dataReceived(self, data: bytes) -> None:  # noqa: N802 (Twisted's name)
        self._size += len(data)
        if self._size > MAX_BODY and self.transport is not None:
            self.transport.stopProducing()

    def connectionLost(self, reason: Failure = net_error.ConnectionDone()) -> None:  # noqa: N802
        if not self._finished.called:
            # A body cut short is of no interest: the status line said everything.
            self._finished.callback(None)


class _Connection:
    """One persistent connection's worth of GETs (an HTTPConnectionPool holding at most one)."""

    def __init__(self, reactor: Any, timeout: float) -> None:
        self._reactor = reactor
        self._timeout = timeout
        self._pool = HTTPConnectionPool(reactor, persistent=True)
        self._pool.maxPersistentPerHost = 1
        self._pool.retryAutomatically = False  # our own retry is counted; the pool's would be silent
        self._agent = Agent(reactor, pool=self._pool, connectTimeout=timeout)

    async def get(self, url: str, authorization: str | None) -> _Answer:
        headers = Headers({b"user-agent": [b"wp820-acs connection request"]})
        if authorization is not None:
            headers.setRawHeaders(b"authorization", [authorization.encode("utf-8")])
        try:
            response: IResponse = await self._agent.request(b"GET", url.encode("ascii"), headers).addTimeout(
                self._timeout, self._reactor
            )
        except ResponseFailed as exc:  # ResponseNeverReceived included: the connection died before the answer
            if _cancelled(exc):  # our own timeout cancelled the request after the connection was made
                raise defer.TimeoutError() from None
            if _dropped(exc):
                raise _Reset(_reasons(exc)) from None
            raise _ExchangeFailed(_reasons(exc)) from None
        except (net_error.ConnectionLost, net_error.ConnectionDone) as exc:
            raise _Reset(type(exc).__name__) from None
        finished: defer.Deferred[None] = defer.Deferred()
        response.deliverBody(_Drain(finished))
        try:
            await finished.addTimeout(self._timeout, self._reactor)
        except defer.TimeoutError:
            pass  # the status is known; a body that never ends only costs us the connection
        return _Answer(
            response.code,
            [value.decode("latin-1") for value in response.headers.getRawHeaders(b"www-authenticate", [])],
            _first(response.headers.getRawHeaders(b"retry-after")),
        )

    async def close(self) -> None:
        await self._pool.closeCachedConnections()


def send_http_request(
    reactor: Any,
    url: str,
    credentials: Sequence[tuple[str, str]],
    *,
    timeout: float,
    allow_basic: bool = False,
) -> defer.Deferred[HttpAttempt]:
    return defer.ensureDeferred(_send(reactor, url, list(credentials), timeout, allow_basic))


async def _send(
    reactor: Any, url: str, credentials: list[tuple[str, str]], timeout: float, allow_basic: bool
) -> HttpAttempt:
    parts = urlsplit(url)
    target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    retries = [1]  # one retry on a reset connection, for the whole request
    connection = _Connection(reactor, timeout)

    async def get(authorization: str | None) -> _Answer:
        nonlocal connection
        while True:
            try:
                return await connection.get(url, authorization)
            except _Reset:
                if not retries[0]:
                    raise
                retries[0] -= 1
                await connection.close()
                connection = _Connection(reactor, timeout)

    try:
        answer = await get(None)
        if answer.status != 401:
            return _finish(answer, None, "accepted without authentication")
        for index, (username, password) in enumerate(credentials):
            client = DigestClient(username, password, allow_basic=allow_basic)
            challenges = answer.challenges
            for _ in range(2):  # the second round only for a stale nonce
                try:
                    authorization = client.authorization("GET", target, challenges)
                except HttpAuthError as exc:
                    hint = "" if allow_basic else " (Basic needs connreq.allow_basic)"
                    return HttpAttempt("auth_failed", 401, f"{exc}{hint}")
                except ValueError as exc:  # a Basic username the scheme cannot carry
                    return HttpAttempt("auth_failed", 401, str(exc))
                answer = await get(authorization)
                if answer.status != 401 or not _stale(answer.challenges):
                    break
                challenges = answer.challenges
            if answer.status != 401:
                return _finish(answer, index, "")
        tried = "no credentials" if not credentials else f"{len(credentials)} credential(s) refused"
        return HttpAttempt("auth_failed", 401, tried)
    except Exception as exc:  # noqa: BLE001 - every failure becomes a classified outcome
        outcome, detail = classify_failure(exc)
        return HttpAttempt(outcome, None, detail)
    finally:
        await connection.close()


def _finish(answer: _Answer, index: int | None, note: str) -> HttpAttempt:
    outcome, detail = classify_status(answer.status, answer.retry_after)
    if outcome == "accepted" and note:
        detail = note
    return HttpAttempt(outcome, answer.status, detail, index)


def classify_status(status: int, retry_after: str | None = None) -> tuple[str, str]:
    if 200 <= status < 300:
        return "accepted", ""
    if status == 401:
        return "auth_failed", "credentials refused"
    if status == 503:
        return "busy", f"retry after {retry_after} s" if retry_after else "phone busy"
    if status == 404:
        return "http_error", "404: the phone serves no connection request at this URL"
    return "http_error", f"HTTP {status}"


def classify_failure(exc: BaseException) -> tuple[str, str]:
    """(outcome, detail) for an exception of the exchange."""
    name = type(exc).__name__
    if isinstance(exc, net_error.ConnectionRefusedError):
        return "refused", "connection refused: nothing listens at the URL"
    if isinstance(exc, (defer.TimeoutError, net_error.TimeoutError, net_error.TCPTimedOutError)):
        return "timeout", "no answer in time"
    if isinstance(exc, (net_error.NoRouteError, net_error.DNSLookupError, net_error.ConnectError)):
        return "offline", f"cannot connect: {name}"
    if isinstance(exc, _Reset):
        return "reset", f"connection reset twice ({exc})"
    if isinstance(exc, _ExchangeFailed):
        return "error", f"HTTP exchange failed ({exc})"
    return "error", name


def _reasons(exc: ResponseFailed) -> str:
    names = []
    for reason in getattr(exc, "reasons", []) or []:
        value = reason.value if isinstance(reason, Failure) else reason
        names.append(type(value).__name__)
    return ", ".join(names) or type(exc).__name__


def _dropped(exc: ResponseFailed) -> bool:
    reasons = exc.reasons or []
    return bool(reasons) and all(isinstance(r, Failure) and r.check(net_error.ConnectionClosed) for r in reasons)


def _cancelled(exc: ResponseFailed) -> bool:
    return any(isinstance(reason, Failure) and reason.check(defer.CancelledError) for reason in exc.reasons or [])


def _stale(challenges: Sequence[str]) -> bool:
    return any("stale=true" in value.replace(" ", "").replace('"', "").lower() for value in challenges)


def _first(values: list[bytes] | None) -> str | None:
    return values[0].decode("latin-1").strip() if values else None

