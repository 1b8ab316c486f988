"""Connection requests to a simulated phone over real HTTP on its own loopback address: Digest, busy, rate limit,
port moves."""

from __future__ import annotations

from typing import Any

import pytest_twisted
from twisted.internet import defer, reactor

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
from wp820_sim.agent import HttpClient, HttpReply, SessionError, TlsPolicy
from wp820_sim.fleet import Fleet, identity

CR_USER, CR_PASSWORD = "cruser", "crpass1"
CR_SETTINGS = {"acs.connection_request_username": CR_USER, "acs.connection_request_password": CR_PASSWORD}
PORT_PATH = "Device.ManagementServer.X_GRANDSTREAM_ConnectionRequestPort"
CR_URL_PATH = "Device.ManagementServer.ConnectionRequestURL"


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
    fleet = await start_fleet(acs.url, settings=CR_SETTINGS, **overrides)
    await one_session(acs, 1, fleet)
    return fleet, ident.serial, f"http://{ident.ip}:7547/"


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
    fleet = await start_fleet(acs.url)
    await one_session(acs, 1, fleet)
    reply = await within(connection_request(f"http://{ident.ip}:7547/", username="", password=""))
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
    acs.acs.enqueue(
        ident.serial, m.SetParameterValues([m.ParameterValueStruct(PORT_PATH, 7548, XsdType.UNSIGNED_INT)], "port")
    )
    fleet = await start_fleet(acs.url, settings=CR_SETTINGS)
    # The new port changes ConnectionRequestURL, a forced active notification: a VALUE CHANGE session follows.
    moved = await one_session(acs, 2, fleet)
    assert moved.event_codes == ["4 VALUE CHANGE"]
    new_url = f"http://{ident.ip}:7548/"
    assert moved.inform.parameter(CR_URL_PATH) == new_url
    try:
        await within(connection_request(f"http://{ident.ip}:7547/"))
        raise AssertionError("the old port still listens")
    except SessionError as exc:
        assert exc.reason == "cannot connect: ConnectionRefusedError"
    reply = await within(connection_request(new_url))
    assert reply.status == 200
    session = await one_session(acs, 3, fleet)
    assert session.event_codes == ["6 CONNECTION REQUEST"]
