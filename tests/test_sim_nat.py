"""TR-111 mode over real UDP on loopback: the phone behind a simulated NAT keeps a STUN binding with the ACS's STUN
server (``acs.stun_server``) and acts on UDP connection requests sent from it, and on nothing else."""

from __future__ import annotations

from typing import Any

import pytest
import pytest_twisted
from twisted.internet import defer, reactor, task
from twisted.internet.protocol import DatagramProtocol

from acs.stun_server import BindingInfo, StunServer
from cwmp_models import messages as m
from cwmp_models import udp_connreq
from tests.test_sim_agent import (  # noqa: F401 (fixtures)
    Acs,
    acs,
    first_index_for,
    make_acs,
    nothing_left_behind,
    one_session,
    start_fleet,
    within,
)
from tests.test_sim_connreq import CR_PASSWORD, CR_USER, connection_request, cr_port_for, port_settings
from wp820_sim.agent import SessionError
from wp820_sim.fleet import Fleet, identity
from wp820_sim.nat import StunBinding

STUN_USER, STUN_PASSWORD = "stun-user", "stun-pass"
UDP_CR_ADDRESS = "Device.ManagementServer.UDPConnectionRequestAddress"
NAT_SETTINGS = {
    "acs.connection_request_username": CR_USER,
    "acs.connection_request_password": CR_PASSWORD,
    "acs.stun_username": STUN_USER,
    "acs.stun_password": STUN_PASSWORD,
    "acs.stun_minimum_keepalive_period": 30,
    "acs.stun_maximum_keepalive_period": 30,
}


class Bindings:
    """The STUN server's on_binding callback, with a way to wait for the n-th binding."""

    def __init__(self) -> None:
        self.seen: list[BindingInfo] = []
        self._waiting: list[tuple[int, defer.Deferred[BindingInfo]]] = []

    def __call__(self, binding: BindingInfo) -> None:
        self.seen.append(binding)
        for entry in [w for w in self._waiting if len(self.seen) >= w[0]]:
            self._waiting.remove(entry)
            entry[1].callback(self.seen[entry[0] - 1])

    def nth(self, number: int) -> defer.Deferred[BindingInfo]:
        if len(self.seen) >= number:
            return defer.succeed(self.seen[number - 1])
        d: defer.Deferred[BindingInfo] = defer.Deferred()
        self._waiting.append((number, d))
        return within(d)


@pytest.fixture
def stun_server():
    bindings = Bindings()
    server = StunServer(on_binding=bindings, credentials={STUN_USER: STUN_PASSWORD.encode()}.get)
    port = reactor.listenUDP(0, server, interface="127.0.0.1")
    yield server, port.getHost().port, bindings
    pytest_twisted.blockon(defer.maybeDeferred(port.stopListening))


class Stranger(DatagramProtocol):
    """Someone on the Internet who is not the STUN server."""


@pytest.fixture
def stranger():
    protocol = Stranger()
    port = reactor.listenUDP(0, protocol, interface="127.0.0.1")
    yield port
    pytest_twisted.blockon(defer.maybeDeferred(port.stopListening))


async def nat_phone(request, acs: Acs, start_fleet, stun_server, **overrides: Any) -> tuple[Fleet, str, BindingInfo]:
    """A phone behind NAT, bootstrapped and bound: (fleet, serial, its binding at the STUN server)."""
    _, stun_port, bindings = stun_server
    fleet = await start_fleet(
        acs.url,
        nat=True,
        stun_server=("127.0.0.1", stun_port),
        settings={**NAT_SETTINGS, "acs.connection_request_port": cr_port_for(request.node.nodeid)},
        **overrides,
    )
    if "clock" in overrides:
        overrides["clock"].advance(0)
    binding = await bindings.nth(1)
    await one_session(acs, 1, fleet)
    return fleet, identity(first_index_for(request.node.nodeid)).serial, binding


@pytest_twisted.ensureDeferred
async def test_stun_binding_through_the_nat_reports_the_public_address(request, acs: Acs, start_fleet, stun_server):
    fleet, serial, binding = await nat_phone(request, acs, start_fleet, stun_server)
    ip = identity(first_index_for(request.node.nodeid)).ip
    assert (binding.username, binding.authenticated, binding.connection_request_binding) == (STUN_USER, True, True)
    assert not binding.binding_change
    assert binding.address[0] == ip  # the NAT's public side
    phone = fleet.phone(serial)
    assert phone.value(UDP_CR_ADDRESS) == f"{binding.address[0]}:{binding.address[1]}"
    assert phone.value("Device.ManagementServer.NATDetected") is True
    # The HTTP ConnectionRequestURL the phone reports leads nowhere, as behind a real NAT.
    with pytest.raises(SessionError, match="cannot connect: ConnectionRefusedError"):
        await within(connection_request(phone.connection_request_url))


@pytest_twisted.ensureDeferred
async def test_a_nat_phones_url_stays_unanswered_next_to_phones_sharing_its_port(
    request, acs: Acs, start_fleet, stun_server
):
    """Phones not behind the NAT keep a shared socket open on the same port: a connection to the NAT phone's
    address reaches that socket, which resets it unread."""
    fleet, serial, _ = await nat_phone(request, acs, start_fleet, stun_server)
    port = cr_port_for(request.node.nodeid)
    neighbours = await start_fleet(
        acs.url, first_index=first_index_for(request.node.nodeid) + 1, settings=port_settings(port)
    )
    await within(neighbours.wait_sessions(1))
    with pytest.raises(SessionError, match="HTTP exchange failed"):
        await within(connection_request(fleet.phone(serial).connection_request_url))
    assert neighbours.counters["cr_refused"] == 1 and neighbours.counters.get("cr_received", 0) == 0
    assert fleet.counters.get("connection_requests_accepted", 0) == 0


@pytest_twisted.ensureDeferred
async def test_udp_connection_request_opens_a_session_and_its_repeats_are_replays(
    request, acs: Acs, start_fleet, stun_server
):
    server = stun_server[0]
    fleet, _, binding = await nat_phone(request, acs, start_fleet, stun_server)
    await within(server.send_connection_request(binding.address, CR_USER, CR_PASSWORD, interval=0.01))
    session = await one_session(acs, 2, fleet)
    assert session.event_codes == ["6 CONNECTION REQUEST"]
    await within(fleet.stats.wait_for("udp_cr_ignored_replayed", 2))
    assert fleet.counters["udp_cr_accepted"] == 1


@pytest_twisted.ensureDeferred
async def test_forged_signature_is_silently_ignored(request, acs: Acs, start_fleet, stun_server):
    server = stun_server[0]
    fleet, _, binding = await nat_phone(request, acs, start_fleet, stun_server)
    await within(server.send_connection_request(binding.address, CR_USER, "not-the-password", interval=0.01))
    await within(fleet.stats.wait_for("udp_cr_ignored_bad_signature", 3))
    assert fleet.counters.get("udp_cr_accepted", 0) == 0 and len(acs.acs.sessions) == 1


@pytest_twisted.ensureDeferred
async def test_the_nat_drops_datagrams_from_addresses_the_phone_never_sent_to(
    request, acs: Acs, start_fleet, stun_server, stranger
):
    fleet, _, binding = await nat_phone(request, acs, start_fleet, stun_server)
    host, port = binding.address
    valid = udp_connreq.build_request(
        host, port, CR_USER, CR_PASSWORD, ts=int(reactor.seconds()), id="from-a-stranger", cnonce="c"
    )
    stranger.write(valid, (host, port))  # correctly signed, but not from the STUN server's address
    await within(fleet.stats.wait_for("nat_dropped", 1))
    assert fleet.counters.get("udp_cr_accepted", 0) == 0 and len(acs.acs.sessions) == 1


@pytest_twisted.ensureDeferred
async def test_a_new_mapping_is_reported_with_binding_change(request, acs: Acs, start_fleet, stun_server):
    clock = task.Clock()
    # The ACS asks for active notification of the address, as TR-111 recommends.
    serial = identity(first_index_for(request.node.nodeid)).serial
    acs.acs.enqueue(serial, m.SetParameterAttributes([m.SetParameterAttributesStruct(UDP_CR_ADDRESS, True, 2)]))
    fleet, serial, first = await nat_phone(request, acs, start_fleet, stun_server, clock=clock)
    (binding,) = [a for a in fleet.agent(serial).attachments if isinstance(a, StunBinding)]
    binding.nat.rebind()  # the router forgot the mapping
    clock.advance(30)  # the keep-alive goes out through a new external port
    moved = await stun_server[2].nth(2)
    assert moved.address != first.address and not moved.binding_change
    announced = await stun_server[2].nth(3)
    assert announced.address == moved.address and announced.binding_change
    new_address = f"{moved.address[0]}:{moved.address[1]}"
    assert fleet.phone(serial).value(UDP_CR_ADDRESS) == new_address
    reported = await one_session(acs, 2, fleet)
    assert reported.event_codes == ["4 VALUE CHANGE"] and reported.inform.parameter(UDP_CR_ADDRESS) == new_address
