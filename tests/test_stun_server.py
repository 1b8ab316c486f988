"""The ACS's STUN server: pure decisions, then real UDP sockets on 127.0.0.1."""

from __future__ import annotations

import struct

import pytest
import pytest_twisted
from twisted.internet import defer, reactor, udp
from twisted.internet.protocol import DatagramProtocol

from acs.stun_server import BindingInfo, StunServer, StunServerNotListening, answer, peer_address
from cwmp_models import stun
from cwmp_models.stun import AttributeType, IntegrityForm, StunClass
from cwmp_models.udp_connreq import ReplayGuard, UdpConnReqError, Verdict, parse_request, verify

PASSWORDS = {"wp820-0001": b"stun-secret"}
SOURCE = ("198.51.100.20", 40001)
NOW = 1_750_000_000.0


def _credentials(username: str) -> bytes | None:
    return PASSWORDS.get(username)


def _tr111_request(username: str = "wp820-0001", key: bytes | None = b"stun-secret", **kwargs) -> bytes:
    message = stun.binding_request(username=username, connection_request_binding=True, **kwargs)
    return stun.encode(message, integrity_key=key)


# -- decisions (no sockets) --------------------------------------------------------------------------------------


def test_authenticated_tr111_request_is_bound_and_answered_with_integrity() -> None:
    datagram = _tr111_request(binding_change=True)
    outcome = answer(datagram, SOURCE, credentials=_credentials, now=NOW)
    assert (outcome.result, outcome.destination) == ("bound", SOURCE)
    assert outcome.binding == BindingInfo(
        username="wp820-0001",
        address=SOURCE,
        binding_change=True,
        connection_request_binding=True,
        time=NOW,
        authenticated=True,
    )
    reply = stun.decode(outcome.reply)
    assert reply.cls is StunClass.SUCCESS and reply.transaction_id == stun.decode(datagram).transaction_id
    assert reply.mapped_address() == SOURCE
    assert stun.verify_integrity(outcome.reply, b"stun-secret") is IntegrityForm.RFC5389


@pytest.mark.parametrize(
    "datagram",
    [
        _tr111_request(key=None),  # no MESSAGE-INTEGRITY: TR-111 CPEs resend with it after a 401
        _tr111_request(key=b"wrong"),
        _tr111_request(username="stranger"),
        stun.encode(stun.binding_request(connection_request_binding=True)),  # no USERNAME
    ],
)
def test_unauthenticated_requests_get_401_and_no_binding(datagram: bytes) -> None:
    outcome = answer(datagram, SOURCE, credentials=_credentials, now=NOW)
    assert (outcome.result, outcome.binding) == ("unauthorized", None)
    reply = stun.decode(outcome.reply)
    assert reply.error_code() == (401, "Unauthorized")
    assert not reply.has_integrity


def test_open_server_binds_without_credentials() -> None:
    outcome = answer(_tr111_request(key=None), SOURCE, credentials=None, now=NOW)
    assert outcome.binding is not None and outcome.binding.username == "wp820-0001"
    assert not outcome.binding.authenticated
    assert not stun.decode(outcome.reply).has_integrity


def test_classic_request_gets_classic_answer_in_its_own_integrity_form() -> None:
    tid = bytes(range(16))
    message = stun.StunMessage(
        stun.BINDING,
        StunClass.REQUEST,
        tid,
        [(AttributeType.USERNAME, b"wp820-0001"), (AttributeType.CONNECTION_REQUEST_BINDING, b"dslforum.org/TR-111")],
    )
    datagram = stun.encode(message, integrity_key=b"stun-secret", integrity_form=IntegrityForm.VOVIDA)
    outcome = answer(datagram, SOURCE, credentials=_credentials, now=NOW)
    assert outcome.binding is not None and outcome.binding.connection_request_binding  # value without the space
    reply = stun.decode(outcome.reply)
    assert reply.transaction_id == tid and reply.classic
    assert [kind for kind, _ in reply.attributes] == [AttributeType.MAPPED_ADDRESS, AttributeType.SOFTWARE]
    assert stun.parse_address(reply.get(AttributeType.MAPPED_ADDRESS)) == SOURCE
    assert not reply.has_fingerprint
    assert stun.verify_integrity(outcome.reply, b"stun-secret") is IntegrityForm.VOVIDA


def test_unknown_comprehension_required_attribute_gets_420() -> None:
    datagram = _tr111_request(extra=[(0x0024, b"\x00\x00\x00\x01"), (0x8029, bytes(8))])
    outcome = answer(datagram, SOURCE, credentials=_credentials, now=NOW)
    reply = stun.decode(outcome.reply)
    assert (outcome.result, outcome.binding) == ("unknown_attribute", None)
    assert reply.error_code() == (420, "Unknown Attribute")
    assert stun.parse_unknown_attributes(reply.get(AttributeType.UNKNOWN_ATTRIBUTES)) == (0x0024,)
    assert stun.verify_integrity(outcome.reply, b"stun-secret") is IntegrityForm.RFC5389


def test_change_request_flags_get_420_but_cleared_flags_are_ignored() -> None:
    cleared = _tr111_request(extra=[(AttributeType.CHANGE_REQUEST, struct.pack("!I", 0))])
    assert answer(cleared, SOURCE, credentials=_credentials, now=NOW).result == "bound"
    change_port = _tr111_request(extra=[(AttributeType.CHANGE_REQUEST, struct.pack("!I", 2))])
    outcome = answer(change_port, SOURCE, credentials=_credentials, now=NOW)
    reply = stun.decode(outcome.reply)
    assert reply.error_code()[0] == 420
    assert stun.parse_unknown_attributes(reply.get(AttributeType.UNKNOWN_ATTRIBUTES)) == (AttributeType.CHANGE_REQUEST,)


def test_response_address_on_the_same_ip_is_honoured_with_reflected_from() -> None:
    target = (SOURCE[0], 50000)
    datagram = _tr111_request(extra=[(AttributeType.RESPONSE_ADDRESS, stun.address_value(*target))])
    outcome = answer(datagram, SOURCE, credentials=_credentials, now=NOW)
    assert (outcome.result, outcome.destination) == ("bound", target)
    reply = stun.decode(outcome.reply)
    assert reply.mapped_address() == SOURCE
    assert stun.parse_address(reply.get(AttributeType.REFLECTED_FROM)) == SOURCE


def test_response_address_elsewhere_is_refused_to_the_source() -> None:
    datagram = _tr111_request(extra=[(AttributeType.RESPONSE_ADDRESS, stun.address_value("192.0.2.99", 53))])
    outcome = answer(datagram, SOURCE, credentials=_credentials, now=NOW)
    assert (outcome.result, outcome.destination, outcome.binding) == ("bad_request", SOURCE, None)
    assert stun.decode(outcome.reply).error_code()[0] == 400


@pytest.mark.parametrize(
    ("datagram", "result"),
    [
        (b"\x00\x01\x00", "malformed"),
        (b"GET / HTTP/1.1\r\n\r\n", "malformed"),
        (stun.encode(stun.binding_success(stun.binding_request(), SOURCE)), "ignored"),
        (stun.encode(stun.StunMessage(stun.BINDING, StunClass.INDICATION, bytes(12))), "ignored"),
        (stun.encode(stun.StunMessage(0x003, StunClass.REQUEST, bytes(12))), "ignored"),
    ],
)
def test_datagrams_that_get_no_answer(datagram: bytes, result: str) -> None:
    assert answer(datagram, SOURCE, credentials=_credentials, now=NOW).result == result


def test_non_utf8_username_gets_400() -> None:
    message = stun.StunMessage(stun.BINDING, StunClass.REQUEST, bytes(12), [(AttributeType.USERNAME, b"\xff\xfe")])
    outcome = answer(stun.encode(message), SOURCE, credentials=_credentials, now=NOW)
    assert outcome.result == "bad_request" and stun.decode(outcome.reply).error_code()[0] == 400


def test_failing_credentials_lookup_gets_500() -> None:
    def broken(username: str) -> bytes | None:
        raise RuntimeError("store unavailable")

    outcome = answer(_tr111_request(), SOURCE, credentials=broken, now=NOW)
    assert (outcome.result, outcome.binding) == ("server_error", None)
    assert stun.decode(outcome.reply).error_code()[0] == 500


def test_peer_addresses_are_normalised() -> None:
    assert peer_address(("::ffff:198.51.100.20", 5, 0, 0)) == ("198.51.100.20", 5)
    assert peer_address(("2001:db8::1", 5, 0, 0)) == ("2001:db8::1", 5)
    assert peer_address(("127.0.0.1", 5)) == ("127.0.0.1", 5)


# -- real sockets ------------------------------------------------------------------------------------------------


class _Client(DatagramProtocol):
    """A phone's UDP socket: records every datagram with its source address."""

    def __init__(self) -> None:
        self.received: defer.DeferredQueue = defer.DeferredQueue()

    def datagramReceived(self, datagram: bytes, addr: tuple) -> None:  # noqa: N802
        self.received.put((datagram, addr))


def _next(client: _Client) -> defer.Deferred:
    # A generous guard against a hang, not a timing assertion.
    return client.received.get().addTimeout(10, reactor)


@pytest.fixture(autouse=True)
def nothing_left_behind():
    """Every test closes its ports and leaves no timer running (checked after all other fixtures' teardown)."""
    yield
    assert [reader for reader in reactor.getReaders() if isinstance(reader, udp.Port)] == []
    assert reactor.getDelayedCalls() == []


@pytest.fixture
def bindings() -> list[BindingInfo]:
    return []


def _close(*ports) -> defer.Deferred:
    return defer.gatherResults([defer.maybeDeferred(port.stopListening) for port in ports])


@pytest.fixture
def sockets(bindings: list[BindingInfo]):
    server = StunServer(on_binding=bindings.append, credentials=_credentials)
    client = _Client()
    server_port = reactor.listenUDP(0, server, interface="127.0.0.1")
    client_port = reactor.listenUDP(0, client, interface="127.0.0.1")
    try:
        yield server, server_port.getHost().port, client, client_port
    finally:
        pytest_twisted.blockon(_close(server_port, client_port))


@pytest_twisted.ensureDeferred
async def test_binding_over_udp_reports_the_client_source_port(sockets, bindings: list[BindingInfo]) -> None:
    server, server_port, client, client_port = sockets
    request = _tr111_request()
    client_port.write(request, ("127.0.0.1", server_port))
    datagram, source = await _next(client)
    assert source == ("127.0.0.1", server_port)
    reply = stun.decode(datagram)
    assert reply.cls is StunClass.SUCCESS and reply.transaction_id == stun.decode(request).transaction_id
    own_address = ("127.0.0.1", client_port.getHost().port)
    assert stun.parse_xor_address(reply.get(AttributeType.XOR_MAPPED_ADDRESS), reply.transaction_id) == own_address
    assert stun.verify_integrity(datagram, b"stun-secret") is IntegrityForm.RFC5389
    assert len(bindings) == 1
    assert (bindings[0].username, bindings[0].address, bindings[0].authenticated) == ("wp820-0001", own_address, True)
    assert bindings[0].connection_request_binding and server.counters["bound"] == 1


@pytest_twisted.ensureDeferred
async def test_bad_integrity_over_udp_gets_401_and_no_binding(sockets, bindings: list[BindingInfo]) -> None:
    server, server_port, client, client_port = sockets
    client_port.write(b"not stun at all", ("127.0.0.1", server_port))  # dropped: no reply precedes the 401
    client_port.write(_tr111_request(key=b"wrong"), ("127.0.0.1", server_port))
    datagram, _ = await _next(client)
    assert stun.decode(datagram).error_code() == (401, "Unauthorized")
    assert bindings == []
    assert (server.counters["malformed"], server.counters["unauthorized"]) == (1, 1)


@pytest_twisted.ensureDeferred
async def test_connection_request_arrives_from_the_stun_port_and_verifies(sockets, bindings) -> None:
    server, server_port, client, client_port = sockets
    client_port.write(_tr111_request(), ("127.0.0.1", server_port))
    await _next(client)  # the Binding Response
    request_id = await server.send_connection_request(bindings[0].address, "cr-user", "cr-pass", interval=0.01)

    guard = ReplayGuard()
    verdicts = []
    for _ in range(3):
        datagram, source = await _next(client)
        assert source == ("127.0.0.1", server_port)
        request = parse_request(datagram)
        assert (request.host, request.port, request.id) == (*bindings[0].address, request_id)
        verdicts.append(verify(request, "cr-user", "cr-pass", now=reactor.seconds(), guard=guard))
    assert verdicts == [Verdict.ACCEPTED, Verdict.REPLAYED, Verdict.REPLAYED]
    assert client.received.pending == []


@pytest_twisted.ensureDeferred
async def test_each_connection_request_gets_a_fresh_id(sockets) -> None:
    server, _, client, client_port = sockets
    address = ("127.0.0.1", client_port.getHost().port)
    first = await server.send_connection_request(address, "u", "p", repeats=1)
    second = await server.send_connection_request(address, "u", "p", repeats=1)
    received = [parse_request((await _next(client))[0]) for _ in range(2)]
    assert first != second and [r.id for r in received] == [first, second]
    assert received[0].cnonce != received[1].cnonce


@pytest_twisted.ensureDeferred
async def test_connection_request_to_a_hostname_fails_cleanly(sockets) -> None:
    server = sockets[0]
    with pytest.raises(UdpConnReqError, match="not an IP address"):
        await server.send_connection_request(("phone.example", 5000), "u", "p")


@pytest_twisted.ensureDeferred
async def test_connection_request_needs_a_listening_server() -> None:
    server = StunServer(on_binding=lambda binding: None)
    with pytest.raises(StunServerNotListening):
        await server.send_connection_request(("127.0.0.1", 9), "u", "p")


@pytest_twisted.ensureDeferred
async def test_a_failing_on_binding_callback_does_not_stop_the_reply() -> None:
    def failing(binding: BindingInfo) -> None:
        raise RuntimeError("store unavailable")

    server = StunServer(on_binding=failing, credentials=_credentials)
    client = _Client()
    server_port = reactor.listenUDP(0, server, interface="127.0.0.1")
    client_port = reactor.listenUDP(0, client, interface="127.0.0.1")
    try:
        client_port.write(_tr111_request(), ("127.0.0.1", server_port.getHost().port))
        datagram, _ = await _next(client)
        assert stun.decode(datagram).cls is StunClass.SUCCESS
    finally:
        await _close(server_port, client_port)

