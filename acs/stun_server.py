"""The ACS's STUN server (TR-111 Part 2) and the sender of UDP connection requests (TR-069 Annex G).

A phone behind NAT keeps a binding to this server by sending Binding Requests every STUNMinimumKeepAlivePeriod to
STUNMaximumKeepAlivePeriod seconds. The source address of each request is the NAT's public mapping, i.e. the phone's
UDPConnectionRequestAddress; the server reports it through ``on_binding`` and answers with the mapped address.
When the ACS later wants a session, ``send_connection_request`` sends the UDP connection request *from this
server's port*, the only source the NAT mapping lets through.

Usage::

    server = StunServer(on_binding=store_binding, credentials=stun_password_for)
    port = reactor.listenUDP(3478, server, interface="::")      # dual-stack; IPv4 peers are reported as IPv4
    ...
    yield server.send_connection_request(binding.address, cr_username, cr_password)

Decisions, all in ``answer`` (pure: no sockets, no reactor):

* With ``credentials`` (STUN username -> password bytes, or None for an unknown user) every Binding Request must
  carry USERNAME and a MESSAGE-INTEGRITY that verifies in any of the three forms ``cwmp_models.stun`` knows;
  otherwise 401. TR-111 CPEs resend with MESSAGE-INTEGRITY on a 401, and RFC 3489 uses 401 for a missing one, so
  401 is used where RFC 5389 would say 400. The success response carries MESSAGE-INTEGRITY in the form the request
  used. Without ``credentials`` the server is open and reports ``authenticated=False``.
* ``on_binding`` is called for every accepted request. TR-111 CPEs probe binding lifetimes from a second port
  without CONNECTION-REQUEST-BINDING, so only ``BindingInfo.connection_request_binding`` addresses are fit to be
  stored as UDPConnectionRequestAddress. The attribute counts as present whatever its value: some stacks send
  "dslforum.org/TR-111" without the trailing space.
* RESPONSE-ADDRESS (RFC 3489, used by TR-111 CPEs for that lifetime discovery) is honoured only when it names the
  request's own source IP (another port behind the same NAT); any other IP gets 400, so the server cannot be used
  to reflect traffic at third parties. The response then carries REFLECTED-FROM.
* CHANGE-REQUEST with either flag set gets 420 listing it (the RFC 5780 answer of a server with one address); with
  both flags clear (stund clients always send one) it is ignored.
* Unknown comprehension-required attributes get 420 with UNKNOWN-ATTRIBUTES, after authentication (RFC 5389 7.3).
* RFC 3489 clients get MAPPED-ADDRESS only, their 16-byte transaction id echoed, no FINGERPRINT. SOURCE-ADDRESS and
  CHANGED-ADDRESS, which RFC 3489 also lists, are omitted: a TR-111 CPE reads only the mapped address.
* Malformed datagrams, responses, indications and non-Binding methods are dropped and counted in ``counters``.
  Nothing a peer sends can raise into the reactor; errors of the ``credentials`` callback become 500.
"""

from __future__ import annotations

import ipaddress
import secrets
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass

import structlog
from twisted.internet import defer, task
from twisted.internet.address import IPv6Address
from twisted.internet.interfaces import IReactorTime
from twisted.internet.protocol import DatagramProtocol

from cwmp_models import stun
from cwmp_models.stun import AttributeType, StunClass, StunError
from cwmp_models.udp_connreq import UdpConnReqError, build_request

__all__ = [
    "DEFAULT_SOFTWARE",
    "BindingInfo",
    "Outcome",
    "StunServer",
    "StunServerNotListening",
    "answer",
    "peer_address",
]

DEFAULT_SOFTWARE = "wp820-acs"

Credentials = Callable[[str], bytes | None]
Address = tuple[str, int]

log = structlog.get_logger(__name__)

# Comprehension-required attributes (type < 0x8000) a Binding Request may carry without earning a 420.
_UNDERSTOOD = frozenset({AttributeType.USERNAME, AttributeType.RESPONSE_ADDRESS, AttributeType.CHANGE_REQUEST})


class StunServerNotListening(RuntimeError):
    """A connection request was asked of a server whose UDP port is not open."""


@dataclass(frozen=True)
class BindingInfo:
    username: str | None  # the STUNUsername the request carried, verified when ``authenticated``
    address: Address  # the request's public source address: the UDPConnectionRequestAddress
    binding_change: bool  # BINDING-CHANGE present: the CPE saw its mapping change
    connection_request_binding: bool  # CONNECTION-REQUEST-BINDING present: this is the CR listening port
    time: float
    authenticated: bool


@dataclass(frozen=True)
class Outcome:
    """What to do with one datagram: ``result`` names it (and is the counter bumped)."""

    result: str
    reply: bytes | None = None
    destination: Address | None = None
    binding: BindingInfo | None = None


def _ip(host: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address:
    address = ipaddress.ip_address(host)
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


def peer_address(addr: tuple) -> Address:
    """A Twisted UDP peer address (2-tuple, or 4-tuple on IPv6) as (host, port), IPv4-mapped IPv6 shown as IPv4."""
    return str(_ip(addr[0])), addr[1]


def answer(
    datagram: bytes,
    source: Address,
    *,
    credentials: Credentials | None,
    now: float,
    software: str | None = DEFAULT_SOFTWARE,
) -> Outcome:
    """Decide the reply to one datagram received from ``source`` (already normalised by ``peer_address``)."""
    try:
        request = stun.decode(datagram)
    except StunError:
        return Outcome("malformed")
    if request.cls is not StunClass.REQUEST or request.method != stun.BINDING:
        return Outcome("ignored")

    key: bytes | None = None
    form: stun.IntegrityForm | None = None

    def error(result: str, code: int, reason: str | None = None, unknown: tuple[int, ...] = ()) -> Outcome:
        message = stun.binding_error(request, code, reason, unknown=unknown, software=software)
        return Outcome(result, stun.encode(message, integrity_key=key, integrity_form=form), source)

    try:
        username = request.username()
    except StunError:
        return error("bad_request", 400, "USERNAME is not UTF-8")

    if credentials is not None:
        if username is None or not request.has_integrity:
            return error("unauthorized", 401)
        try:
            password = credentials(username)
        except Exception:
            log.exception("stun.credentials_failed")
            return error("server_error", 500)
        verified = None if password is None else stun.verify_integrity(datagram, password)
        if verified is None:
            return error("unauthorized", 401)
        key, form = password, verified

    unknown = [kind for kind, _ in request.attributes if kind < 0x8000 and kind not in _UNDERSTOOD]
    change_request = request.get(AttributeType.CHANGE_REQUEST)
    if change_request is not None:
        try:
            change_ip, change_port = stun.parse_change_request(change_request)
        except StunError as exc:
            return error("bad_request", 400, exc.reason)
        if change_ip or change_port:
            unknown.append(AttributeType.CHANGE_REQUEST)
    if unknown:
        return error("unknown_attribute", 420, unknown=tuple(dict.fromkeys(unknown)))

    destination = source
    extra: list[stun.Attribute] = []
    response_address = request.get(AttributeType.RESPONSE_ADDRESS)
    if response_address is not None:
        try:
            target = stun.parse_address(response_address)
        except StunError as exc:
            return error("bad_request", 400, exc.reason)
        if _ip(target[0]) != _ip(source[0]):
            return error("bad_request", 400, "RESPONSE-ADDRESS must be on the request's source IP")
        destination = (str(_ip(target[0])), target[1])
        extra.append((AttributeType.REFLECTED_FROM, stun.address_value(*source)))

    response = stun.binding_success(request, source, software=software, extra=extra)
    binding = BindingInfo(
        username=username,
        address=source,
        binding_change=request.has(AttributeType.BINDING_CHANGE),
        connection_request_binding=request.has(AttributeType.CONNECTION_REQUEST_BINDING),
        time=now,
        authenticated=key is not None,
    )
    return Outcome("bound", stun.encode(response, integrity_key=key, integrity_form=form), destination, binding)


class StunServer(DatagramProtocol):
    """Answers STUN Binding Requests and sends UDP connection requests from the same port."""

    def __init__(
        self,
        on_binding: Callable[[BindingInfo], None],
        credentials: Credentials | None = None,
        clock: IReactorTime | None = None,
        software: str | None = DEFAULT_SOFTWARE,
    ) -> None:
        if clock is None:
            from twisted.internet import reactor as clock  # type: ignore[assignment]
        self._on_binding = on_binding
        self._credentials = credentials
        self._clock: IReactorTime = clock  # type: ignore[assignment]
        self._software = software
        # TR-069 makes the id an unsignedInt unique per request: a counter from a random start never repeats
        # within 2**32 requests and does not reveal how many were sent.
        self._next_id = secrets.randbits(32)
        self.counters: Counter[str] = Counter()

    def datagramReceived(self, datagram: bytes, addr: tuple) -> None:  # noqa: N802 (Twisted's name)
        source = peer_address(addr)
        outcome = answer(
            datagram, source, credentials=self._credentials, now=self._clock.seconds(), software=self._software
        )
        self.counters[outcome.result] += 1
        if outcome.binding is not None:
            try:
                self._on_binding(outcome.binding)
            except Exception:
                log.exception("stun.on_binding_failed", address=source)
        if outcome.reply is not None and outcome.destination is not None:
            try:
                self._write(outcome.reply, outcome.destination)
            except OSError as exc:
                self.counters["send_failed"] += 1
                log.warning("stun.reply_failed", address=outcome.destination, error=str(exc))

    def _write(self, datagram: bytes, destination: Address) -> None:
        if self.transport is None:
            raise StunServerNotListening("the STUN server's UDP port is not open")
        host, port = destination
        if isinstance(self.transport.getHost(), IPv6Address) and _ip(host).version == 4:
            # A dual-stack IPv6 socket reaches IPv4 peers through their IPv4-mapped form.
            host = f"::ffff:{host}"
        self.transport.write(datagram, (host, port))

    def send_connection_request(
        self, address: Address, username: str, password: str, *, repeats: int = 3, interval: float = 0.5
    ) -> defer.Deferred[str]:
        """Send one UDP connection request ``repeats`` times, ``interval`` seconds apart, from this server's port.

        ``address`` is the CPE's UDPConnectionRequestAddress (an IP address and port); ``username`` and
        ``password`` are its ConnectionRequestUsername/Password. The Deferred fires with the request's id once the
        last copy is sent, or fails with ``StunServerNotListening``, ``UdpConnReqError`` (bad address) or the
        ``OSError`` of a failed send.
        """
        return defer.ensureDeferred(self._send_connection_request(address, username, password, repeats, interval))

    async def _send_connection_request(
        self, address: Address, username: str, password: str, repeats: int, interval: float
    ) -> str:
        if repeats < 1 or interval < 0:
            raise ValueError("repeats must be at least 1 and interval not negative")
        try:
            host, port = peer_address(address)
        except ValueError:
            raise UdpConnReqError(f"{address[0]!r} is not an IP address") from None
        request_id = str(self._next_id)
        self._next_id = (self._next_id + 1) % 2**32
        datagram = build_request(
            host, port, username, password, ts=int(self._clock.seconds()), id=request_id, cnonce=secrets.token_hex(8)
        )
        for attempt in range(repeats):
            if attempt:
                await task.deferLater(self._clock, interval, lambda: None)
            self._write(datagram, (host, port))
        self.counters["connection_requests"] += 1
        return request_id
