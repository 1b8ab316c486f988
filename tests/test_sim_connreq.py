"""Connection requests to a simulated phone over real HTTP on its own loopback address: Digest, busy, rate limit,
port moves, one shared socket per port (and per-phone sockets when another process holds the port), connections
for no phone of ours refused.

Each test puts its phones on a port of its own (``cr_port_for``) rather than 7547, so a concurrent test run or
simulator holding 7547 cannot change what a test sees."""

from __future__ import annotations

import zlib
from types import SimpleNamespace
from typing import Any

import pytest_twisted
from twisted.internet import defer, reactor, tcp
from twisted.internet.address import IPv4Address

from cwmp_models import messages as m
from cwmp_models.types import XsdType
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
from wp820_sim.agent import HttpClient, HttpReply, SessionError, Stats, TlsPolicy
from wp820_sim.connreq import ConnectionRequestService
from wp820_sim.fleet import Fleet, identity

CR_USER, CR_PASSWORD = "cruser", "crpass1"
CR_SETTINGS = {"acs.connection_request_username": CR_USER, "acs.connection_request_password": CR_PASSWORD}
PORT_PATH = "Device.ManagementServer.X_GRANDSTREAM_ConnectionRequestPort"
CR_URL_PATH = "Device.ManagementServer.ConnectionRequestURL"


def cr_port_for(nodeid: str, offset: int = 0) -> int:
    """A connection-request port of this test's own, below the ephemeral range (32768-60999 on Linux)."""
    return 20_000 + (zlib.crc32(nodeid.encode()) + offset) % 10_000


def port_settings(port: int) -> dict[str, Any]:
    return {**CR_SETTINGS, "acs.connection_request_port": port}


def listening_on(port: int) -> list[tcp.Port]:
    return [s for s in reactor.getReaders() if isinstance(s, tcp.Port) and s.getHost().port == port]


def client_connections() -> list[tcp.Client]:
    return [s for s in reactor.getReaders() + reactor.getWriters() if isinstance(s, tcp.Client)]


async def connection_request(url: str, username: str = CR_USER, password: str = CR_PASSWORD) -> HttpReply:
    """What an ACS does: GET the ConnectionRequestURL, answering the Digest challenge."""
    client = HttpClient(
        reactor,
        bind_ip="127.0.0.1",
        username=username,
        password=password,
        tls_policy=TlsPolicy(),
        timeout=5.0,
        max_body=4096,
    )
    try:
        return await client.request(b"GET", url, None, {})
    finally:
        await client.close()


async def running_phone(request, acs: Acs, start_fleet, **overrides: Any) -> tuple[Fleet, str, str]:
    """A bootstrapped phone: (fleet, serial, its ConnectionRequestURL)."""
    ident = identity(first_index_for(request.node.nodeid))
    port = cr_port_for(request.node.nodeid)
    fleet = await start_fleet(acs.url, settings=port_settings(port), **overrides)
    await one_session(acs, 1, fleet)
    return fleet, ident.serial, f"http://{ident.ip}:{port}/"


@pytest_twisted.ensureDeferred
async def test_authenticated_request_gets_200_and_a_connection_request_session(request, acs: Acs, start_fleet) -> None:
    fleet, serial, url = await running_phone(request, acs, start_fleet)
    reply = await within(connection_request(url))
    assert (reply.status, reply.body) == (200, b"")
    session = await one_session(acs, 2, fleet)
    assert session.event_codes == ["6 CONNECTION REQUEST"]
    assert fleet.counters["connection_requests_accepted"] == 1


@pytest_twisted.ensureDeferred
async def test_wrong_credentials_get_401_and_no_session(request, acs: Acs, start_fleet) -> None:
    fleet, _, url = await running_phone(request, acs, start_fleet)
    reply = await within(connection_request(url, password="wrong"))
    assert reply.status == 401
    assert any(value.startswith(b"Digest ") for value in reply.headers.getRawHeaders(b"www-authenticate"))
    anonymous = await within(connection_request(url, username="", password=""))
    assert anonymous.status == 401
    # Each client tries bare, then answers the challenge (wrongly, or with an empty username): four refusals.
    assert fleet.counters["cr_unauthorized"] == 4
    assert fleet.counters.get("connection_requests_accepted", 0) == 0 and len(acs.acs.sessions) == 1


@pytest_twisted.ensureDeferred
async def test_a_phone_without_connection_request_credentials_refuses_everyone(request, acs: Acs, start_fleet) -> None:
    ident = identity(first_index_for(request.node.nodeid))
    port = cr_port_for(request.node.nodeid)
    fleet = await start_fleet(acs.url, settings={"acs.connection_request_port": port})
    await one_session(acs, 1, fleet)
    reply = await within(connection_request(f"http://{ident.ip}:{port}/", username="", password=""))
    assert reply.status == 401 and fleet.counters.get("connection_requests_accepted", 0) == 0


@pytest_twisted.ensureDeferred
async def test_other_paths_are_not_found(request, acs: Acs, start_fleet) -> None:
    fleet, _, url = await running_phone(request, acs, start_fleet)
    reply = await within(connection_request(url + "elsewhere"))
    assert reply.status == 404 and fleet.counters["cr_not_found"] == 1


@pytest_twisted.ensureDeferred
async def test_503_while_the_phone_is_in_a_session(request, acs: Acs, start_fleet) -> None:
    fleet, serial, url = await running_phone(request, acs, start_fleet)
    held: defer.Deferred[None] = defer.Deferred()
    entered: defer.Deferred[None] = defer.Deferred()

    def hold(session: Any) -> defer.Deferred[None]:
        entered.callback(None)
        return held

    acs.acs.enqueue(serial, hold)
    fleet.agent(serial).request_session(["2 PERIODIC"])
    await within(entered)  # the phone is in a session, waiting for the ACS
    busy = await within(connection_request(url))
    assert busy.status == 503 and fleet.counters["cr_busy"] == 1
    held.callback(None)
    await one_session(acs, 2, fleet)
    assert fleet.counters.get("connection_requests_accepted", 0) == 0


@pytest_twisted.ensureDeferred
async def test_rate_limit_refuses_a_second_request_too_soon(request, acs: Acs, start_fleet) -> None:
    fleet, _, url = await running_phone(request, acs, start_fleet, cr_min_interval=3600.0)
    first = await within(connection_request(url))
    await one_session(acs, 2, fleet)
    second = await within(connection_request(url))
    assert (first.status, second.status) == (200, 503)
    assert int(second.headers.getRawHeaders(b"retry-after")[0]) > 0
    assert fleet.counters["cr_rate_limited"] == 1 and fleet.counters["connection_requests_accepted"] == 1


@pytest_twisted.ensureDeferred
async def test_the_listener_moves_when_the_port_setting_changes(request, acs: Acs, start_fleet) -> None:
    ident = identity(first_index_for(request.node.nodeid))
    old_port, new_port = cr_port_for(request.node.nodeid), cr_port_for(request.node.nodeid, 1)
    acs.acs.enqueue(
        ident.serial, m.SetParameterValues([m.ParameterValueStruct(PORT_PATH, new_port, XsdType.UNSIGNED_INT)], "port")
    )
    fleet = await start_fleet(acs.url, settings=port_settings(old_port))
    # The new port changes ConnectionRequestURL, a forced active notification: a VALUE CHANGE session follows.
    moved = await one_session(acs, 2, fleet)
    assert moved.event_codes == ["4 VALUE CHANGE"]
    new_url = f"http://{ident.ip}:{new_port}/"
    assert moved.inform.parameter(CR_URL_PATH) == new_url
    assert listening_on(old_port) == []  # its only phone left: the port's socket is closed
    try:
        await within(connection_request(f"http://{ident.ip}:{old_port}/"))
        raise AssertionError("the old port still listens")
    except SessionError as exc:
        assert exc.reason == "cannot connect: ConnectionRefusedError"
    reply = await within(connection_request(new_url))
    assert reply.status == 200
    session = await one_session(acs, 3, fleet)
    assert session.event_codes == ["6 CONNECTION REQUEST"]


# -- one socket per port -------------------------------------------------------------------------------------------


@pytest_twisted.ensureDeferred
async def test_idle_phones_share_one_listening_socket_per_port_and_hold_no_other(request, acs: Acs, start_fleet):
    port = cr_port_for(request.node.nodeid)
    fleet = await start_fleet(acs.url, phones=50, settings=port_settings(port))
    await within(fleet.wait_sessions(50))
    assert len(listening_on(port)) == 1
    assert client_connections() == []  # every session's connection is closed: an idle phone holds nothing
    # Each phone is still reached at its own address through the shared socket.
    first, last = identity(fleet.config.first_index), identity(fleet.config.first_index + 49)
    replies = await within(
        defer.gatherResults(
            [defer.ensureDeferred(connection_request(f"http://{ident.ip}:{port}/")) for ident in (first, last)]
        )
    )
    assert [reply.status for reply in replies] == [200, 200]
    await within(acs.acs.wait_sessions(52))
    crs = [s for s in acs.acs.completed if s.event_codes == ["6 CONNECTION REQUEST"]]
    assert sorted(s.serial for s in crs) == sorted([first.serial, last.serial])
    assert sorted(s.client_ip for s in crs) == sorted([first.ip, last.ip])


@pytest_twisted.ensureDeferred
async def test_a_connection_for_no_phone_of_ours_is_reset_before_a_byte_is_read(request, acs: Acs, start_fleet):
    fleet, _, url = await running_phone(request, acs, start_fleet)
    port = cr_port_for(request.node.nodeid)
    stranger = identity(first_index_for(request.node.nodeid) + 1).ip  # the next address: no phone there
    try:
        await within(connection_request(f"http://{stranger}:{port}/"))
        raise AssertionError("a connection for an unknown address was answered")
    except SessionError as exc:
        assert exc.reason.startswith("HTTP exchange failed")
    assert fleet.counters["cr_refused"] == 1 and fleet.counters.get("cr_received", 0) == 0
    reply = await within(connection_request(url))  # the phone itself is still reachable
    assert reply.status == 200


@pytest_twisted.ensureDeferred
async def test_only_loopback_connections_to_a_registered_phone_are_routed(request) -> None:
    port = cr_port_for(request.node.nodeid)
    service = ConnectionRequestService(reactor, Stats(), lambda: 0.0)
    phone_ip = "127.0.9.9"
    listener = service.attach(SimpleNamespace(ip=phone_ip, attachments=[]))  # type: ignore[arg-type]
    assert service.register(listener, port) and service.sockets == 1

    def route(host: str, peer: str = "127.0.0.1", on: int = port) -> object:
        return service.route(IPv4Address("TCP", host, on), IPv4Address("TCP", peer, 50000))

    assert route(phone_ip) is listener and route(phone_ip, peer="127.3.2.1") is listener
    assert route(phone_ip, peer="192.0.2.7") is None  # the peer is off loopback
    assert route("127.0.9.10") is None  # no phone at that address
    assert route(phone_ip, on=port + 1) is None  # the phone is not on that port
    assert route("192.0.2.1") is None  # the destination is off loopback
    await within(service.unregister(listener, port))
    assert route(phone_ip) is None and service.sockets == 0 and listening_on(port) == []


@pytest_twisted.ensureDeferred
async def test_phones_moving_off_a_shared_port_leave_it_open_for_the_others(request, acs: Acs, start_fleet):
    first_index = first_index_for(request.node.nodeid)
    mover, stayer = identity(first_index), identity(first_index + 1)
    old_port, new_port = cr_port_for(request.node.nodeid), cr_port_for(request.node.nodeid, 1)
    acs.acs.enqueue(
        mover.serial, m.SetParameterValues([m.ParameterValueStruct(PORT_PATH, new_port, XsdType.UNSIGNED_INT)], "p")
    )
    fleet = await start_fleet(acs.url, phones=2, settings=port_settings(old_port))
    await within(fleet.wait_sessions(3))  # two bootstraps, and the mover's VALUE CHANGE
    assert (len(listening_on(old_port)), len(listening_on(new_port))) == (1, 1)
    try:
        await within(connection_request(f"http://{mover.ip}:{old_port}/"))
        raise AssertionError("the mover is still reachable on its old port")
    except SessionError as exc:
        assert exc.reason.startswith("HTTP exchange failed")
    replies = [
        await within(connection_request(f"http://{ident.ip}:{port}/"))
        for ident, port in ((mover, new_port), (stayer, old_port))
    ]
    assert [reply.status for reply in replies] == [200, 200] and fleet.counters["cr_refused"] == 1


@pytest_twisted.ensureDeferred
async def test_a_port_held_by_another_process_falls_back_to_one_socket_per_phone(request, acs: Acs, start_fleet):
    """A second fleet (as another simulator process would) finds the port taken: its phones bind their own addresses,
    and the kernel gives each fleet exactly its own phones' connections."""
    port = cr_port_for(request.node.nodeid)
    first_index = first_index_for(request.node.nodeid)
    holder = await start_fleet(acs.url, phones=2, settings=port_settings(port))
    await within(holder.wait_sessions(2))
    latecomer = await start_fleet(acs.url, phones=2, first_index=first_index + 2, settings=port_settings(port))
    await within(latecomer.wait_sessions(2))
    assert len(listening_on(port)) == 1 + 2  # the holder's shared socket, one for each of the latecomer's phones
    for fleet in (holder, latecomer):
        reply = await within(connection_request(f"http://{identity(fleet.config.first_index + 1).ip}:{port}/"))
        assert reply.status == 200 and fleet.counters["connection_requests_accepted"] == 1
    assert holder.counters.get("cr_refused", 0) == latecomer.counters.get("cr_refused", 0) == 0
