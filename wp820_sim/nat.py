"""TR-111 mode: a phone behind a simulated NAT, kept reachable through a STUN binding and UDP connection requests.

Behind NAT a phone's ConnectionRequestURL is useless to the ACS. In NAT mode the fleet opens no HTTP
connection-request listener, so the URL the phone reports (its own loopback address and port) is a place where
nothing listens, as unreachable as a private 192.168 address, without ever naming a non-loopback address.

``SimulatedNat`` stands between one phone and the world. The phone side is in-process (the phone hands it datagrams;
no socket), the world side is a real UDP socket: the NAT's *external port* on its public address (a loopback
address). Like a typical home router it does

* endpoint-independent mapping: one external port for everything the phone sends, until ``rebind()`` or until the
  mapping has been idle for ``mapping_timeout`` seconds (then the next datagram out gets a new port);
* address-and-port-dependent filtering: a datagram arriving at the external port is let in only from an address the
  phone has sent to through this mapping; everything else is dropped and counted (``nat_dropped``).

``StunBinding`` is the phone's TR-111 client (an ``Attachment`` of its agent, following the phone's STUN settings):

* sends Binding Requests to STUNServerAddress:STUNServerPort (the ACS URL's host when the address is empty) through
  the NAT, with CONNECTION-REQUEST-BINDING, USERNAME = STUNUsername and MESSAGE-INTEGRITY keyed with STUNPassword
  when one is set; a response must carry a valid MESSAGE-INTEGRITY too when a password is set;
* retransmits an unanswered request after 0.5, 1, 2 s (RFC 5389 style, four attempts), then waits for the next
  keep-alive; keeps the binding alive every STUNMinimumKeepAlivePeriod..STUNMaximumKeepAlivePeriod seconds (random);
* when the mapped address differs from the last one, sends a new request at once with BINDING-CHANGE (TR-111
  section 2.2.1.2) and reports the new ``host:port`` to the phone as its UDPConnectionRequestAddress (NATDetected);
* takes UDP connection requests from the same port: ``cwmp_models.udp_connreq.parse_request`` then ``verify`` with a
  ``ReplayGuard`` against ConnectionRequestUsername/Password. Accepted → a session with ``6 CONNECTION REQUEST``;
  anything else is silently ignored and counted: ``udp_cr_malformed``, ``udp_cr_ignored_<verdict>`` (``bad_signature``,
  ``replayed``, ``stale``, ``wrong_username``), ``udp_cr_busy``; accepted ones count ``udp_cr_accepted``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from twisted.internet import defer
from twisted.internet.protocol import DatagramProtocol

from cwmp_models import stun, udp_connreq
from cwmp_models.stun import StunClass, StunError
from wp820_sim.agent import PhoneAgent, Scheduler, Stats, Timer

__all__ = ["SimulatedNat", "StunBinding", "StunTarget", "RETRANSMIT_DELAYS"]

Address = tuple[str, int]
RETRANSMIT_DELAYS = (0.5, 1.0, 2.0, 4.0)  # wait after each attempt; four attempts, then give up until the keep-alive


class _ExternalPort(DatagramProtocol):
    def __init__(self, nat: SimulatedNat) -> None:
        self._nat = nat

    def datagramReceived(self, datagram: bytes, addr: tuple) -> None:  # noqa: N802 (Twisted's name)
        self._nat._inbound(self, datagram, (addr[0], addr[1]))


class SimulatedNat:
    def __init__(
        self,
        reactor: Any,
        *,
        public_ip: str,
        stats: Stats,
        clock: Callable[[], float],
        mapping_timeout: float | None = None,
    ) -> None:
        self._reactor = reactor
        self.public_ip = public_ip
        self._stats = stats
        self._clock = clock
        self._mapping_timeout = mapping_timeout
        self._protocol: _ExternalPort | None = None
        self._port: Any = None
        self._peers: set[Address] = set()
        self._last_out = 0.0
        self._deliver: Callable[[bytes, Address], None] | None = None

    @property
    def external_address(self) -> Address | None:
        """The current mapping's public address, None while there is none."""
        return (self.public_ip, self._port.getHost().port) if self._port is not None else None

    def connect_phone(self, deliver: Callable[[bytes, Address], None]) -> None:
        """Where datagrams let in go: the phone's UDP receive function."""
        self._deliver = deliver

    def send(self, datagram: bytes, destination: Address) -> None:
        """A datagram from the phone: out through the mapping (opened, or renewed if it expired)."""
        now = self._clock()
        if self._port is not None and self._expired(now):
            self.rebind()
        if self._port is None:
            self._protocol = _ExternalPort(self)
            self._port = self._reactor.listenUDP(0, self._protocol, interface=self.public_ip)
            self._stats.add("nat_mappings")
        self._peers.add(destination)
        self._last_out = now
        self._port.write(datagram, destination)

    def rebind(self) -> None:
        """Drop the mapping, as a router does on restart or expiry: the phone's next datagram gets a new port."""
        port, self._port, self._protocol = self._port, None, None
        self._peers = set()
        if port is not None:
            port.stopListening()

    def close(self) -> defer.Deferred[None]:
        port, self._port, self._protocol = self._port, None, None
        self._peers = set()
        return defer.maybeDeferred(port.stopListening) if port is not None else defer.succeed(None)

    def _expired(self, now: float) -> bool:
        return self._mapping_timeout is not None and now - self._last_out > self._mapping_timeout

    def _inbound(self, protocol: _ExternalPort, datagram: bytes, source: Address) -> None:
        if protocol is not self._protocol or source not in self._peers or self._expired(self._clock()):
            self._stats.add("nat_dropped")
            return
        if self._deliver is not None:
            self._deliver(datagram, source)


@dataclass(frozen=True)
class StunTarget:
    enabled: bool
    server: Address
    username: str
    password: str
    min_keepalive: float
    max_keepalive: float


class StunBinding:
    """One phone's TR-111 client (an ``Attachment`` of its agent)."""

    def __init__(
        self,
        agent: PhoneAgent,
        nat: SimulatedNat,
        *,
        scheduler: Scheduler,
        stats: Stats,
        rng: Any,
        wall_clock: Callable[[], float],
        replay_window: float = udp_connreq.DEFAULT_WINDOW,
    ) -> None:
        self.agent = agent
        self.nat = nat
        self._scheduler = scheduler
        self._stats = stats
        self._rng = rng
        self._wall_clock = wall_clock
        self._guard = udp_connreq.ReplayGuard(replay_window)
        self._settings: StunTarget | None = None
        self._transaction: bytes | None = None
        self._attempt = 0
        self._timer: Timer | None = None
        self._binding_change = False
        self.mapped: Address | None = None
        nat.connect_phone(self._received)
        agent.attachments.append(self)

    # -- Attachment --------------------------------------------------------------------------------------------

    def reconcile(self) -> None:
        settings = self._read_settings()
        if settings == self._settings:
            return
        self._settings = settings
        self._cancel_timer()
        if settings is None or not settings.enabled:
            self._transaction = None
            return
        self._send_binding()

    def suspend(self) -> defer.Deferred[None]:
        self._cancel_timer()
        self._settings = None
        self._transaction = None
        return self.nat.close()

    # -- STUN --------------------------------------------------------------------------------------------------

    def _read_settings(self) -> StunTarget | None:
        phone = self.agent.phone
        configured = phone.stun
        if not configured.enabled:
            return None
        host = configured.server_address or urlsplit(phone.acs_url).hostname or ""
        if not host:
            return None
        minimum = float(max(1, configured.minimum_keepalive))
        maximum = float(configured.maximum_keepalive)
        return StunTarget(
            enabled=True,
            server=(host, configured.server_port),
            username=configured.username,
            password=configured.password,
            min_keepalive=minimum,
            max_keepalive=maximum if maximum >= minimum else minimum,  # -1: no maximum, keep to the minimum
        )

    def _send_binding(self) -> None:
        settings = self._settings
        assert settings is not None
        if self._transaction is None:
            self._transaction = stun.new_transaction_id()
            self._attempt = 0
        request = stun.binding_request(
            transaction_id=self._transaction,
            username=settings.username or None,
            connection_request_binding=True,
            binding_change=self._binding_change,
        )
        key = settings.password.encode("utf-8") if settings.password else None
        try:
            self.nat.send(stun.encode(request, integrity_key=key), settings.server)
        except Exception as exc:  # an unresolvable server name, a socket error: wait and try again later
            self._stats.failure("stun_send_failed", "sim.stun_send_failed", phone=self.agent.ip, error=str(exc))
        self._stats.add("stun_requests")
        delay = RETRANSMIT_DELAYS[self._attempt]
        self._attempt += 1
        self._timer = self._scheduler.call_later(delay, self._no_answer)

    def _no_answer(self) -> None:
        if self._attempt < len(RETRANSMIT_DELAYS):
            self._send_binding()
            return
        self._stats.add("stun_timeouts")
        self._transaction = None
        self._keep_alive_later()

    def _keep_alive_later(self) -> None:
        settings = self._settings
        if settings is None:
            return
        self._cancel_timer()
        delay = self._rng.uniform(settings.min_keepalive, settings.max_keepalive)
        self._timer = self._scheduler.call_later(delay, self._keep_alive)

    def _keep_alive(self) -> None:
        if self._settings is not None:
            self._transaction = None
            self._send_binding()

    def _cancel_timer(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def _received(self, datagram: bytes, source: Address) -> None:
        # STUN messages start with two zero bits; a UDP connection request starts with "GET".
        if datagram[:1] in (b"\x00", b"\x01"):
            self._stun_response(datagram)
        else:
            self._connection_request(datagram)

    def _stun_response(self, datagram: bytes) -> None:
        settings = self._settings
        try:
            message = stun.decode(datagram)
        except StunError:
            self._stats.add("stun_malformed")
            return
        if settings is None or message.transaction_id != self._transaction:
            self._stats.add("stun_unexpected")
            return
        if settings.password:
            try:
                verified = stun.verify_integrity(datagram, settings.password.encode("utf-8"))
            except StunError:
                verified = None
            if verified is None and message.cls is StunClass.SUCCESS:
                self._stats.add("stun_bad_integrity")  # not from our server: keep waiting for the real answer
                return
        self._cancel_timer()
        self._transaction = None
        if message.cls is StunClass.ERROR:
            code = message.error_code()
            self._stats.add(f"stun_error_{code[0] if code else 'unknown'}")
            self._keep_alive_later()
            return
        mapped = message.mapped_address()
        if mapped is None:
            self._stats.add("stun_malformed")
            self._keep_alive_later()
            return
        self._stats.add("stun_bound")
        if mapped != self.mapped:
            changed = self.mapped is not None
            self.mapped = mapped
            level = self.agent.phone.set_udp_connection_request_address(
                f"{mapped[0]}:{mapped[1]}", nat_detected=mapped != self._local_address()
            )
            if level == 2:
                self.agent.request_session()
            if changed:
                # Tell the server at once that the binding moved (TR-111 2.2.1.2), rather than at the keep-alive.
                self._binding_change = True
                self._send_binding()
                return
        self._binding_change = False
        self._keep_alive_later()

    def _local_address(self) -> Address:
        # The phone's own UDP connection-request socket as it would bind it: its address, its HTTP CR port.
        return (self.agent.ip, self.agent.phone.connection_request_port)

    # -- UDP connection requests -------------------------------------------------------------------------------

    def _connection_request(self, datagram: bytes) -> None:
        try:
            request = udp_connreq.parse_request(datagram)
        except udp_connreq.UdpConnReqError:
            self._stats.add("udp_cr_malformed")
            return
        username, password = self.agent.phone.connection_request_credentials
        verdict = udp_connreq.verify(request, username, password, now=self._wall_clock(), guard=self._guard)
        if not verdict:
            self._stats.add(f"udp_cr_ignored_{verdict.name.lower()}")
            return
        if self.agent.accept_connection_request():
            self._stats.add("udp_cr_accepted")
        else:
            self._stats.add("udp_cr_busy")
