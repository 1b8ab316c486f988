"""Connection-request listeners (TR-069 section 3.2.2): the ACS's HTTP GET that makes a phone open a session.

Each phone is reached at its own loopback address on the port of ``X_GRANDSTREAM_ConnectionRequestPort`` (7547 by
default), yet a phone costs no socket of its own: the fleet opens **one listening socket per distinct port**, bound
to the wildcard address, and hands each accepted connection to the phone that owns its *destination* address
(``transport.getHost()``) on that port. Twenty thousand idle phones on one port hold one file descriptor, not twenty
thousand. A phone's listener is an entry in its port's table (``ConnectionRequestService``).

Why the wildcard, and why it is safe: Linux delivers a connection for 127.A.B.C only to a socket bound to exactly
that address or to the wildcard; there is no way to bind 127.0.0.0/8 as a range without privileges (a ``sk_lookup``
BPF program or a TPROXY rule needs CAP_NET_ADMIN; ``IP_FREEBIND``/``IP_TRANSPARENT`` only change which single address
may be bound). The wildcard socket is reachable from other interfaces, so every connection is checked before a byte
of it is read: its peer must be on loopback (127/8) and its destination a 127/8 address of a running phone
registered on that port; anything else is aborted at once (a TCP reset) and counted as ``cr_refused``. So a stranger
on the network, or a connection to the URL of a phone that is off, rebooting or behind the simulated NAT, gets
nothing. (A port with no registered phone has no socket at all: such URLs are refused outright, as before.)

Sharing a port with other processes: the wildcard socket is bound *without* ``SO_REUSEPORT``, so it is only taken
when nothing else on the host uses the port, and ``SO_REUSEPORT`` is switched on after the bind. Then a second
simulator process (or a concurrent test run) finds the port taken (``EADDRINUSE``), and its phones on that port each
bind their own address with ``SO_REUSEPORT`` (one socket per phone, the pre-sharing cost): the kernel prefers an
exact-address socket to the wildcard, so each process receives exactly its own phones' connections. The fallback
is logged once per port (``sim.cr_port_in_use``). Two processes simulating the same phones (the same
``first_index``, say two ``acs demo`` runs at once) cannot both be reached: the later one's per-phone sockets take
those addresses' connections. Give each process phones of its own.

For each GET, in this order:

1. the path must be the one in the phone's ConnectionRequestURL (else 404);
2. HTTP Digest against the phone's ConnectionRequestUsername/Password (``DigestVerifier``; MD5 and SHA-256, qop=auth)
   — else 401 with a fresh challenge (``stale=true`` when only the nonce was old). A phone without connection-request
   credentials refuses everyone: it has nothing to check against;
3. 503 while the phone is in a session (or rebooting), and 503 when it accepted one less than ``min_interval``
   seconds ago (rate limiting; ``Retry-After`` says when to try again);
4. otherwise 200 with an empty body, and the phone starts a session with ``6 CONNECTION REQUEST``.

When the port setting changes, the phone moves after the session that changed it: it joins the new port's table
first (opening that port's socket if it is the first phone there), then leaves the old one, whose socket closes when
its last phone leaves. Counters (in the fleet's ``Stats``): ``cr_received``, ``cr_refused``, ``cr_unauthorized``,
``cr_busy``, ``cr_rate_limited``, ``cr_not_found``, ``cr_listen_failed``.
"""

from __future__ import annotations

import errno
import math
import socket
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

import structlog
from twisted.internet import defer
from twisted.internet.address import IPv4Address
from twisted.internet.interfaces import IAddress, IListeningPort
from twisted.web import server
from twisted.web.http import HTTPChannel, Request
from twisted.web.resource import Resource

from cwmp_models.httpauth import ha1
from cwmp_models.httpauth_server import DigestVerifier
from wp820_sim.agent import PhoneAgent, Stats

__all__ = [
    "CONNECTION_REQUEST_URL",
    "DEFAULT_REALM",
    "WILDCARD",
    "ConnectionRequestListener",
    "ConnectionRequestService",
]

log = structlog.get_logger(__name__)

DEFAULT_REALM = "WP820"
CONNECTION_REQUEST_URL = "Device.ManagementServer.ConnectionRequestURL"
WILDCARD = "0.0.0.0"
# An ACS kicking a campaign may connect to thousands of phones on one port within a second.
_SHARED_BACKLOG = 1024
_OWN_BACKLOG = 16
# A connection that never sends its request must not hold a descriptor for Twisted's default of twelve hours.
_IDLE_TIMEOUT = 30


class ConnectionRequestListener:
    """One phone's listener: the port it is registered on and when it last accepted a request."""

    __slots__ = ("agent", "_service", "_port", "_last_accepted")

    def __init__(self, agent: PhoneAgent, service: ConnectionRequestService) -> None:
        self.agent = agent
        self._service = service
        self._port: int | None = None
        self._last_accepted = -math.inf

    @property
    def port(self) -> int | None:
        """The TCP port this phone is reachable on now, None while it is not."""
        return self._port

    def reconcile(self) -> None:
        wanted = int(self.agent.phone.connection_request_port)
        if self._port == wanted:
            return
        if not self._service.register(self, wanted):
            return  # counted and logged; the phone stays reachable where it was
        previous, self._port = self._port, wanted
        if previous is not None:
            self._service.unregister(self, previous)

    def suspend(self) -> defer.Deferred[None]:
        port, self._port = self._port, None
        if port is None:
            return defer.succeed(None)
        return self._service.unregister(self, port)

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


class _PortTable:
    """The phones registered on one port (by address) and the socket(s) receiving their connections: the shared
    wildcard socket, or (``own``, when another process holds the port) one socket per phone."""

    __slots__ = ("phones", "shared", "own")

    def __init__(self) -> None:
        self.phones: dict[str, ConnectionRequestListener] = {}
        self.shared: IListeningPort | None = None
        self.own: dict[str, IListeningPort] | None = None


class _Dispatcher(Resource):
    isLeaf = True

    def __init__(self, service: ConnectionRequestService) -> None:
        super().__init__()
        self._service = service

    def render_GET(self, request: Request) -> bytes:  # noqa: N802 (twisted.web's name)
        service = self._service
        service.stats.add("cr_received")
        listener = service.route(request.getHost(), request.getClientAddress())
        if listener is None:  # the phone went down after its connection was admitted
            return _status(request, 404)
        return listener.handle(request, service.now())


class _GatedChannel(HTTPChannel):
    """An HTTP/1.1 connection that is aborted before anything is read unless it is for one of our phones."""

    site: _Site

    def connectionMade(self) -> None:  # noqa: N802 (Twisted's name)
        super().connectionMade()
        service = self.site.service
        if service.route(self.transport.getHost(), self.transport.getPeer()) is None:
            service.stats.add("cr_refused")
            self.transport.abortConnection()


class _Site(server.Site):
    protocol = _GatedChannel

    def __init__(self, service: ConnectionRequestService) -> None:
        super().__init__(_Dispatcher(service), timeout=_IDLE_TIMEOUT, parsePOSTFormSubmission=False)
        self.service = service
        self.noisy = False

    def log(self, request: Request) -> None:
        pass


class ConnectionRequestService:
    """Everything the phones' listeners share: the port tables and their sockets, the Site, the Digest verifier,
    the rate limit, the counters."""

    def __init__(
        self,
        reactor: Any,
        stats: Stats,
        now: Callable[[], float],
        *,
        min_interval: float = 5.0,
        realm: str = DEFAULT_REALM,
    ) -> None:
        self._reactor = reactor
        self.stats = stats
        self.now = now
        self.min_interval = min_interval
        self.verifier = DigestVerifier(realm, algorithms=("MD5", "SHA-256"))
        self.site = _Site(self)
        self._ports: dict[int, _PortTable] = {}
        self._ports_in_use_logged: set[int] = set()

    def attach(self, agent: PhoneAgent) -> ConnectionRequestListener:
        listener = ConnectionRequestListener(agent, self)
        agent.attachments.append(listener)
        return listener

    @property
    def sockets(self) -> int:
        """Listening sockets open now (one per port in use, plus one per phone on a port held elsewhere)."""
        return sum((table.shared is not None) + len(table.own or ()) for table in self._ports.values())

    def route(self, host: IAddress, peer: IAddress) -> ConnectionRequestListener | None:
        """The phone a connection from ``peer`` to ``host`` is for: None unless both ends are on loopback and a
        phone is registered at that address and port."""
        if not (isinstance(host, IPv4Address) and isinstance(peer, IPv4Address)):
            return None
        if not (_is_loopback(host.host) and _is_loopback(peer.host)):
            return None
        table = self._ports.get(host.port)
        return table.phones.get(host.host) if table is not None else None

    def register(self, listener: ConnectionRequestListener, port: int) -> bool:
        """Make the listener's phone reachable on ``port``, opening a socket if needed. False (counted and logged
        as ``cr_listen_failed``) when the port cannot be listened on."""
        ip = listener.agent.ip
        table = self._ports.get(port)
        if table is None:
            table = _PortTable()
            try:
                table.shared = self._listen(WILDCARD, port, claim=True)
            except OSError as exc:
                if exc.errno != errno.EADDRINUSE:
                    return self._listen_failed(ip, port, exc)
                table.own = {}
                if port not in self._ports_in_use_logged:
                    self._ports_in_use_logged.add(port)
                    log.warning(
                        "sim.cr_port_in_use",
                        port=port,
                        advice="another process uses this port: each phone on it binds its own address (a socket each)",
                    )
            self._ports[port] = table
        if table.own is not None:
            try:
                table.own[ip] = self._listen(ip, port, claim=False)
            except OSError as exc:
                if not table.phones:
                    del self._ports[port]
                return self._listen_failed(ip, port, exc)
        table.phones[ip] = listener
        return True

    def unregister(self, listener: ConnectionRequestListener, port: int) -> defer.Deferred[None]:
        """The phone is no longer reachable on ``port``; the port's socket closes with its last phone. Fires once
        every socket this closes is closed."""
        ip = listener.agent.ip
        table = self._ports.get(port)
        if table is None or table.phones.get(ip) is not listener:
            return defer.succeed(None)
        del table.phones[ip]
        closing = [table.own.pop(ip)] if table.own is not None else []
        if not table.phones:
            del self._ports[port]
            if table.shared is not None:
                closing.append(table.shared)
        if not closing:
            return defer.succeed(None)
        done = defer.gatherResults([defer.maybeDeferred(listening.stopListening) for listening in closing])
        return done.addCallback(lambda _: None)

    def _listen(self, interface: str, port: int, *, claim: bool) -> IListeningPort:
        """A listening socket handed to the reactor. ``claim``: bind without SO_REUSEPORT, so the bind fails
        if any other socket uses the port, then allow SO_REUSEPORT so others can still bind their own addresses."""
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            if not claim:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
            sock.bind((interface, port))
            if claim:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
            sock.listen(_SHARED_BACKLOG if claim else _OWN_BACKLOG)
            sock.setblocking(False)
            return self._reactor.adoptStreamPort(sock.fileno(), socket.AF_INET, self.site)
        finally:
            sock.close()  # the reactor holds its own duplicate

    def _listen_failed(self, ip: str, port: int, exc: OSError) -> bool:
        reason = exc.strerror or type(exc).__name__
        self.stats.failure("cr_listen_failed", "sim.cr_listen_failed", phone=ip, port=port, error=reason)
        return False


def _is_loopback(host: str) -> bool:
    return host.startswith("127.")


def _url_path(url: object) -> str:
    return urlsplit(str(url)).path or "/"


def _status(request: Request, code: int) -> bytes:
    request.setResponseCode(code)
    return b""
