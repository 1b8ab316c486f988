"""Connection-request listeners (TR-069 section 3.2.2): the ACS's HTTP GET that makes a phone open a session.

Each phone listens on its own loopback address at the port of ``X_GRANDSTREAM_ConnectionRequestPort`` (7547 by
default), so thousands of phones share one port number. All of them are served by one ``twisted.web`` Site that
finds the phone from the address the request arrived on: a phone's listener costs its listening socket and one small
object, not a Site of its own.

For each GET, in this order:

1. the path must be the one in the phone's ConnectionRequestURL (else 404);
2. HTTP Digest against the phone's ConnectionRequestUsername/Password (``DigestVerifier``; MD5 and SHA-256, qop=auth)
   — else 401 with a fresh challenge (``stale=true`` when only the nonce was old). A phone without connection-request
   credentials refuses everyone: it has nothing to check against;
3. 503 while the phone is in a session (or rebooting), and 503 when it accepted one less than ``min_interval``
   seconds ago (rate limiting; ``Retry-After`` says when to try again);
4. otherwise 200 with an empty body, and the phone starts a session with ``6 CONNECTION REQUEST``.

When the port setting changes, the listener moves after the session that changed it: the new port is opened first,
then the old one closed. Counters (in the fleet's ``Stats``): ``cr_received``, ``cr_unauthorized``, ``cr_busy``,
``cr_rate_limited``, ``cr_not_found``, ``cr_listen_failed``.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

from twisted.internet import defer, error as net_error
from twisted.web import server
from twisted.web.http import Request
from twisted.web.resource import Resource

from cwmp_models.httpauth import ha1
from cwmp_models.httpauth_server import DigestVerifier
from wp820_sim.agent import PhoneAgent, Stats

__all__ = ["ConnectionRequestService", "ConnectionRequestListener", "DEFAULT_REALM", "CONNECTION_REQUEST_URL"]

DEFAULT_REALM = "WP820"
CONNECTION_REQUEST_URL = "Device.ManagementServer.ConnectionRequestURL"


class ConnectionRequestListener:
    """One phone's listener: the ports open for it and when it last accepted a request."""

    __slots__ = ("agent", "_service", "_port", "_last_accepted")

    def __init__(self, agent: PhoneAgent, service: ConnectionRequestService) -> None:
        self.agent = agent
        self._service = service
        self._port: Any = None
        self._last_accepted = -math.inf

    @property
    def port(self) -> int | None:
        """The TCP port this phone listens on now, None while closed."""
        return self._port.getHost().port if self._port is not None else None

    def reconcile(self) -> None:
        wanted = int(self.agent.phone.connection_request_port)
        if self._port is not None and self.port == wanted:
            return
        previous = self._port
        try:
            self._port = self._service.listen(self.agent.ip, wanted)
        except net_error.CannotListenError as exc:
            self._service.stats.failure(
                "cr_listen_failed", "sim.cr_listen_failed", phone=self.agent.ip, port=wanted, error=str(exc.socketError)
            )
            return
        if previous is not None:
            previous.stopListening()

    def suspend(self) -> defer.Deferred[None]:
        port, self._port = self._port, None
        if port is None:
            return defer.succeed(None)
        return defer.maybeDeferred(port.stopListening)

    def handle(self, request: Request, now: float) -> bytes:
        service, phone = self._service, self.agent.phone
        if request.path.decode("utf-8", "replace") != _url_path(phone.value(CONNECTION_REQUEST_URL)):
            service.stats.add("cr_not_found")
            return _status(request, 404)
        username, password = phone.connection_request_credentials
        header = request.getHeader(b"authorization")

        def lookup(offered: str, algorithm: str) -> str | None:
            if not username or offered != username:
                return None
            return ha1(username, service.verifier.realm, password, algorithm)

        result = service.verifier.verify(
            "GET",
            request.uri.decode("utf-8", "replace"),
            header.decode("utf-8", "replace") if header is not None else None,
            lookup,
            is_tls=False,
            allow_basic=False,
        )
        if not result.ok:
            service.stats.add("cr_unauthorized")
            for value in service.verifier.challenge(stale=result.stale):
                request.responseHeaders.addRawHeader(b"www-authenticate", value.encode())
            return _status(request, 401)
        if self.agent.in_session:
            service.stats.add("cr_busy")
            return _status(request, 503)
        wait = self._last_accepted + service.min_interval - now
        if wait > 0:
            service.stats.add("cr_rate_limited")
            request.setHeader(b"retry-after", str(math.ceil(wait)).encode())
            return _status(request, 503)
        if not self.agent.accept_connection_request():
            service.stats.add("cr_busy")
            return _status(request, 503)
        self._last_accepted = now
        return _status(request, 200)


class _Dispatcher(Resource):
    isLeaf = True

    def __init__(self, service: ConnectionRequestService) -> None:
        super().__init__()
        self._service = service

    def render_GET(self, request: Request) -> bytes:  # noqa: N802 (twisted.web's name)
        service = self._service
        service.stats.add("cr_received")
        listener = service.listeners.get(request.getHost().host)
        if listener is None:
            return _status(request, 404)
        return listener.handle(request, service.now())


class _QuietSite(server.Site):
    def log(self, request: Request) -> None:
        pass


class ConnectionRequestService:
    """Everything the phones' listeners share: the Site, the Digest verifier, the rate limit, the counters."""

    def __init__(
        self,
        reactor: Any,
        stats: Stats,
        now: Callable[[], float],
        *,
        min_interval: float = 5.0,
        realm: str = DEFAULT_REALM,
        backlog: int = 16,
    ) -> None:
        self._reactor = reactor
        self.stats = stats
        self.now = now
        self.min_interval = min_interval
        self.verifier = DigestVerifier(realm, algorithms=("MD5", "SHA-256"))
        self.listeners: dict[str, ConnectionRequestListener] = {}
        self._backlog = backlog
        self.site = _QuietSite(_Dispatcher(self), parsePOSTFormSubmission=False)
        self.site.noisy = False

    def attach(self, agent: PhoneAgent) -> ConnectionRequestListener:
        listener = ConnectionRequestListener(agent, self)
        self.listeners[agent.ip] = listener
        agent.attachments.append(listener)
        return listener

    def listen(self, ip: str, port: int) -> Any:
        return self._reactor.listenTCP(port, self.site, backlog=self._backlog, interface=ip)


def _url_path(url: object) -> str:
    return urlsplit(str(url)).path or "/"


def _status(request: Request, code: int) -> bytes:
    request.setResponseCode(code)
    return b""
