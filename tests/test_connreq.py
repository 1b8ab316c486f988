"""Connection requests (issue 6), without the simulator: route and outcome rules, the store's record, the HTTP Digest
client against a scripted phone on loopback, the service's refusals and limits, the UDP path through the real STUN
server, and the STUN binding bookkeeping."""

from __future__ import annotations

import base64
import itertools
import os
import time

import pytest
import pytest_twisted
from twisted.internet import defer, error as net_error, reactor, task
from twisted.internet.protocol import DatagramProtocol
from twisted.web import server
from twisted.web.resource import Resource

from acs.connreq import ConnectionRequestService, format_udp_address, parse_udp_address, plan_route
from acs.connreq_http import classify_failure, classify_status, send_http_request
from acs.handler import SessionHandler
from acs.store import InformFacts, Store
from acs.stun_bindings import StunBindings
from acs.stun_server import BindingInfo, StunServer
from acs.tls import generate_ca_and_server, server_context_factory
from acs.vault import Vault
from cwmp_models import messages as m
from cwmp_models import udp_connreq
from cwmp_models.envelope import Envelope
from cwmp_models.httpauth import ha1
from cwmp_models.httpauth_server import DigestVerifier
from cwmp_models.types import XsdType

SERIAL = "c074ad000001"
DEVICE = f"000B82-WP820-{SERIAL}"
PASSWORD = "Cr0ssingTheNatIs24charsX"
PORT_PATH = "Device.ManagementServer.X_GRANDSTREAM_ConnectionRequestPort"
URL_PATH = "Device.ManagementServer.ConnectionRequestURL"


# ---- pure rules -----------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("203.0.113.7:40000", ("203.0.113.7", 40000)),
        ("[2001:db8::1]:3479", ("2001:db8::1", 3479)),
        ("phone.example:40000", None),
        ("203.0.113.7", None),
        ("203.0.113.7:0", None),
        ("203.0.113.7:70000", None),
        ("", None),
        (None, None),
    ],
)
def test_udp_addresses_parse_only_as_ip_and_port(text, expected):
    assert parse_udp_address(text) == expected


def test_udp_addresses_format_back():
    assert format_udp_address("2001:db8::1", 3479) == "[2001:db8::1]:3479"
    assert parse_udp_address(format_udp_address("2001:db8::1", 3479)) == ("2001:db8::1", 3479)


def route(**kwargs):
    base = dict(url="http://192.0.2.10:58547/cr", url_observed_at=100.0, port_reading=None, device_ip="192.0.2.10",
                udp_address="203.0.113.7:40000", udp_possible=True)
    return plan_route(**{**base, **kwargs})


def test_route_uses_the_reported_url_and_knows_the_udp_address():
    r = route()
    assert (r.url, r.udp_address) == ("http://192.0.2.10:58547/cr", ("203.0.113.7", 40000))


def test_route_without_stun_has_no_udp_address():
    assert route(udp_possible=False).udp_address is None


def test_a_newer_port_reading_that_disagrees_makes_the_url_stale():
    r = route(port_reading=("60000", 150.0))
    assert r.url is None and "moved to 60000" in r.why_no_url and r.udp_address is not None
    # An older reading, or one that agrees, leaves the URL alone (the Inform that reported it came later).
    assert route(port_reading=("60000", 50.0)).url is not None
    assert route(port_reading=("58547", 150.0)).url is not None
    assert route(url="http://192.0.2.10/cr", port_reading=("80", 150.0)).url is not None


@pytest.mark.parametrize(
    ("url", "device_ip", "problem"),
    [
        ("ftp://192.0.2.10/", "192.0.2.10", "scheme"),
        ("http://phone.example:7547/", "192.0.2.10", "not an IP address"),
        ("http://127.0.0.1:7550/api", "192.0.2.10", "ACS host itself"),
        ("http://[::1]:7550/", "192.0.2.10", "ACS host itself"),
        ("http://0.0.0.0:7550/", "192.0.2.10", "ACS host itself"),
        ("http://192.0.2.10:99999/", "192.0.2.10", "not an IP address"),
        ("http://user:pw@192.0.2.10:7547/", "192.0.2.10", "carries credentials"),
    ],
)
def test_urls_a_device_could_abuse_are_refused(url, device_ip, problem):
    r = route(url=url, device_ip=device_ip)
    assert r.url is None and problem in r.why_no_url


def test_loopback_urls_are_fine_for_a_phone_on_loopback():
    assert route(url="http://127.0.0.5:58547/", device_ip="127.0.0.5").url == "http://127.0.0.5:58547/"


def test_status_and_failure_classification():
    assert classify_status(200)[0] == classify_status(204)[0] == "accepted"
    assert classify_status(401)[0] == "auth_failed"
    assert classify_status(503, "7") == ("busy", "retry after 7 s")
    assert classify_status(404)[0] == classify_status(500)[0] == "http_error"
    assert classify_failure(net_error.ConnectionRefusedError())[0] == "refused"
    assert classify_failure(net_error.NoRouteError())[0] == "offline"
    assert classify_failure(net_error.DNSLookupError())[0] == "offline"
    assert classify_failure(net_error.TCPTimedOutError())[0] == "timeout"
    assert classify_failure(defer.TimeoutError())[0] == "timeout"
    assert classify_failure(RuntimeError())[0] == "error"


# ---- the store's record ---------------------------------------------------------------------------------------------


class Clock:
    def __init__(self, now: float = 1_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def add_device(store: Store, serial: str = SERIAL, *, url: str | None = None, ip: str = "127.0.0.1",
               udp: str | None = None) -> str:
    facts = InformFacts(device_id=f"000B82-WP820-{serial}", oui="000B82", product_class="WP820",
                        serial_number=serial, manufacturer="Grandstream", at=store.clock(), ip=ip,
                        connection_request_url=url, udp_connection_request_address=udp)
    return store.devices.record_inform(facts).id


@pytest.fixture
def store(tmp_path):
    s = Store(tmp_path / "acs.sqlite")
    yield s
    s.close()


def test_delivery_links_the_newest_deliverable_request_once(tmp_path):
    clock = Clock()
    store = Store(tmp_path / "acs.sqlite", clock=clock)
    device = add_device(store)
    requests = store.connection_requests
    old = requests.create(device, by="t")
    requests.update(old, outcome="accepted", method="http")
    clock.now += 400
    refused = requests.create(device, by="t", outcome="too_soon", detail="x")
    busy = requests.create(device, by="t")
    requests.update(busy, outcome="busy", method="http", http_status=503)
    fresh = requests.create(device, by="t")
    assert requests.link_delivery(device, "s1", since=clock.now - 300) == fresh
    assert requests.link_delivery(device, "s2", since=clock.now - 300) is None  # refusals and 503s explain nothing
    record = requests.get(fresh)
    assert (record.delivered_session_id, record.outcome) == ("s1", "pending")
    requests.update(fresh, outcome="accepted", method="http", http_status=200)
    assert requests.get(fresh).delivered_session_id == "s1"  # the late HTTP answer keeps the link
    assert requests.get(refused).completed_at is not None and requests.get(old).delivered_session_id is None
    store.close()


def test_last_sent_ignores_requests_that_never_went_out(tmp_path):
    clock = Clock()
    store = Store(tmp_path / "acs.sqlite", clock=clock)
    device = add_device(store)
    requests = store.connection_requests
    assert requests.last_sent_at(device) is None
    requests.create(device, by="t", outcome="in_session")
    assert requests.last_sent_at(device) is None
    sent = requests.create(device, by="t")
    assert requests.last_sent_at(device) == clock.now
    clock.now += 5
    requests.update(sent, outcome="refused", method="http")
    assert requests.last_sent_at(device) == clock.now - 5
    store.close()


def test_queued_requests_are_claimed_once_and_expire(tmp_path):
    clock = Clock()
    store = Store(tmp_path / "acs.sqlite", clock=clock)
    device = add_device(store)
    requests = store.connection_requests
    first = requests.create(device, by="t")
    requests.update(first, outcome="queued", method="udp", url="203.0.113.7:4000", final=False)
    clock.now += 40
    second = requests.create(device, by="t")
    requests.update(second, outcome="queued", method="udp", url="203.0.113.7:4000", final=False)
    assert [r.id for r in requests.queued(since=clock.now - 30)] == [second]
    assert requests.expire_queued(before=clock.now - 30) == 1
    assert requests.get(first).outcome == "expired"
    assert requests.claim_queued(second) and not requests.claim_queued(second)
    store.close()


# ---- a scripted phone for the HTTP client ---------------------------------------------------------------------------


_CONNECTIONS = itertools.count(1)


def _connection_number(channel) -> int:
    # id() of a closed connection's channel can be reused by the next one; a number given once per channel cannot.
    number = getattr(channel, "_test_number", None)
    if number is None:
        number = channel._test_number = next(_CONNECTIONS)
    return number


class ScriptedPhone(Resource):
    """A connection-request endpoint: Digest (chosen algorithms) or Basic, and misbehaviours on demand."""

    isLeaf = True

    def __init__(self, username=SERIAL, password=PASSWORD, *, algorithms=("MD5",), mode="ok"):
        super().__init__()
        self.username, self.password, self.mode = username, password, mode
        self.verifier = DigestVerifier("WP820", algorithms=algorithms)
        self.requests: list[tuple[int, str | None]] = []  # (connection id, Authorization scheme)
        self.held: list[server.Request] = []
        self.resets_left = 1 if mode == "reset-once" else 10 ** 6 if mode == "reset-always" else 0

    def render_GET(self, request):  # noqa: N802
        raw = request.getHeader(b"authorization")
        header = raw.decode() if raw is not None else None
        self.requests.append((_connection_number(request.channel), header.split(" ")[0] if header else None))
        if self.resets_left:
            self.resets_left -= 1
            request.channel.transport.abortConnection()
            return server.NOT_DONE_YET
        if self.mode == "silent":
            return server.NOT_DONE_YET
        if self.mode == "open":
            return b""
        if not self._authorized(request, header):
            return b""
        if self.mode == "busy":
            request.setResponseCode(503)
            request.setHeader(b"retry-after", b"7")
            return b""
        if self.mode == "hold":
            self.held.append(request)
            return server.NOT_DONE_YET
        return b""

    def _authorized(self, request, header) -> bool:
        if self.mode == "basic":
            expected = base64.b64encode(f"{self.username}:{self.password}".encode()).decode()
            if header == f"Basic {expected}":
                return True
            request.setResponseCode(401)
            request.setHeader(b"www-authenticate", b'Basic realm="WP820"')
            return False

        def lookup(username, algorithm):
            known = self.username is None or username == self.username
            return ha1(username, "WP820", self.password, algorithm) if known else None

        result = self.verifier.verify("GET", request.uri.decode(), header, lookup, is_tls=False, allow_basic=False)
        if result.ok:
            return True
        request.setResponseCode(401)
        for value in self.verifier.challenge(stale=result.stale):
            request.responseHeaders.addRawHeader(b"www-authenticate", value.encode())
        return False

    def release(self):
        for request in self.held:
            request.finish()
        self.held.clear()


class QuietSite(server.Site):
    noisy = False

    def log(self, request):
        pass


@pytest.fixture
def listen():
    ports = []

    def start(resource: Resource) -> str:
        port = reactor.listenTCP(0, QuietSite(resource), interface="127.0.0.1")
        ports.append(port)
        return f"http://127.0.0.1:{port.getHost().port}/cr"

    yield start
    for port in ports:
        pytest_twisted.blockon(defer.maybeDeferred(port.stopListening))


async def get(url, credentials=((SERIAL, PASSWORD),), *, timeout=2.0, allow_basic=False):
    return await send_http_request(reactor, url, credentials, timeout=timeout, allow_basic=allow_basic)


@pytest_twisted.ensureDeferred
@pytest.mark.parametrize("algorithms", [("MD5",), ("SHA-256",), ("SHA-256", "MD5")])
async def test_digest_answer_on_the_same_connection(listen, algorithms):
    phone = ScriptedPhone(algorithms=algorithms)
    attempt = await get(listen(phone))
    assert (attempt.outcome, attempt.status, attempt.credential_index) == ("accepted", 200, 0)
    (first, none), (second, scheme) = phone.requests
    assert (none, scheme) == (None, "Digest") and first == second


@pytest_twisted.ensureDeferred
async def test_wrong_password_is_auth_failed(listen):
    attempt = await get(listen(ScriptedPhone()), [(SERIAL, "wrong")])
    assert (attempt.outcome, attempt.status) == ("auth_failed", 401)
    assert "wrong" not in attempt.detail


@pytest_twisted.ensureDeferred
async def test_the_pending_password_is_tried_after_the_active_one(listen):
    phone = ScriptedPhone()
    attempt = await get(listen(phone), [(SERIAL, "old-active"), (SERIAL, PASSWORD)])
    assert (attempt.outcome, attempt.credential_index) == ("accepted", 1)
    assert len(phone.requests) == 3


@pytest_twisted.ensureDeferred
async def test_busy_phone_is_busy_with_its_retry_after(listen):
    attempt = await get(listen(ScriptedPhone(mode="busy")))
    assert (attempt.outcome, attempt.status, attempt.detail) == ("busy", 503, "retry after 7 s")


@pytest_twisted.ensureDeferred
async def test_basic_only_when_allowed(listen):
    url = listen(ScriptedPhone(mode="basic"))
    refused = await get(url)
    assert refused.outcome == "auth_failed" and "connreq.allow_basic" in refused.detail
    assert (await get(url, allow_basic=True)).outcome == "accepted"


@pytest_twisted.ensureDeferred
async def test_a_phone_without_authentication_is_accepted_and_noted(listen):
    attempt = await get(listen(ScriptedPhone(mode="open")))
    assert (attempt.outcome, attempt.detail) == ("accepted", "accepted without authentication")


@pytest_twisted.ensureDeferred
async def test_one_retry_on_a_reset_connection(listen):
    phone = ScriptedPhone(mode="reset-once")
    assert (await get(listen(phone))).outcome == "accepted"
    assert len(phone.requests) == 3 and phone.requests[0][0] != phone.requests[1][0]
    always = ScriptedPhone(mode="reset-always")
    attempt = await get(listen(always))
    assert attempt.outcome == "reset" and len(always.requests) == 2


@pytest_twisted.ensureDeferred
async def test_a_phone_that_never_answers_times_out(listen):
    attempt = await get(listen(ScriptedPhone(mode="silent")), timeout=0.3)
    assert (attempt.outcome, attempt.status) == ("timeout", None)


@pytest_twisted.ensureDeferred
async def test_an_untrusted_certificate_is_an_error_not_a_reset(tmp_path):
    tls = generate_ca_and_server(["127.0.0.1"], tmp_path / "tls")  # a CA nobody trusts
    phone = ScriptedPhone()
    port = reactor.listenSSL(0, QuietSite(phone), server_context_factory(tls.cert, tls.key), interface="127.0.0.1")
    try:
        attempt = await get(f"https://127.0.0.1:{port.getHost().port}/cr")
    finally:
        await port.stopListening()
    assert attempt.outcome == "error" and attempt.detail.startswith("HTTP exchange failed") and phone.requests == []


@pytest_twisted.ensureDeferred
async def test_nothing_listening_is_refused():
    port = reactor.listenTCP(0, QuietSite(Resource()), interface="127.0.0.1")
    number = port.getHost().port
    await port.stopListening()
    assert (await get(f"http://127.0.0.1:{number}/cr")).outcome == "refused"


async def until(predicate):
    for _ in range(500):
        if predicate():
            return
        await task.deferLater(reactor, 0.01, lambda: None)
    raise AssertionError("condition not reached")


# ---- the service ----------------------------------------------------------------------------------------------------


@pytest.fixture
def vault():
    return Vault(os.urandom(32))


def escrow(store, vault, device_id, password=PASSWORD, *, state="active", name="acs.connection_request_password"):
    store.secrets.put(device_id, name, vault.seal(device_id, name, password), state=state)


def service(store, vault, **kwargs) -> ConnectionRequestService:
    kwargs.setdefault("reactor", reactor)
    kwargs.setdefault("timeout", 2.0)
    kwargs.setdefault("min_interval", 0.0)
    return ConnectionRequestService(store, vault, **kwargs)


@pytest_twisted.ensureDeferred
async def test_kick_records_the_request_and_audits_it(store, vault, listen):
    device = add_device(store, url=listen(ScriptedPhone()))
    escrow(store, vault, device)
    result = await service(store, vault).kick(device, by="operator:alice", reason="test")
    assert result.ok and (result.outcome, result.method, result.http_status) == ("accepted", "http", 200)
    record = store.connection_requests.get(result.request_id)
    assert (record.outcome, record.requested_by, record.method, record.url) == (
        "accepted", "operator:alice", "http", result.url)
    entry = store.audit.entries(device_id=device, action="connection-request")[0]
    assert (entry.actor, entry.reason, entry.detail["outcome"]) == ("operator:alice", "test", "accepted")


@pytest_twisted.ensureDeferred
async def test_the_username_read_back_from_the_phone_wins_over_the_serial(store, vault, listen):
    device = add_device(store, url=listen(ScriptedPhone(username="CR-USER")))
    escrow(store, vault, device)
    svc = service(store, vault)
    assert (await svc.kick(device, by="t")).outcome == "auth_failed"
    store.parameters.record_values(device, [("Device.ManagementServer.ConnectionRequestUsername", "CR-USER",
                                             XsdType.STRING)], at=store.clock(), session_id=None)
    assert (await svc.kick(device, by="t")).outcome == "accepted"


@pytest_twisted.ensureDeferred
async def test_refusals_before_the_wire(store, vault, listen):
    phone = ScriptedPhone()
    url = listen(phone)
    device = add_device(store, url=url)
    escrow(store, vault, device)
    open_sessions = {device}
    svc = service(store, vault, min_interval=3600.0, is_session_open=lambda d: d in open_sessions)
    assert (await svc.kick(device, by="t")).outcome == "in_session"
    open_sessions.clear()
    assert (await svc.kick(device, by="t")).outcome == "accepted"
    too_soon = await svc.kick(device, by="t")
    assert too_soon.outcome == "too_soon" and "3600" in too_soon.detail
    assert (await svc.kick("no-such-device", by="t")).outcome == "unknown_device"
    assert len(phone.requests) == 2  # only the accepted kick reached the phone
    outcomes = [r.outcome for r in store.connection_requests.for_device(device)]
    assert outcomes == ["too_soon", "accepted", "in_session"]


@pytest_twisted.ensureDeferred
async def test_a_session_recorded_by_another_process_counts_as_open(store, vault, listen):
    device = add_device(store, url=listen(ScriptedPhone()))
    escrow(store, vault, device)
    store.history.start_session("s-other", device, at=store.clock(), remote_ip=None, events=[], cwmp_version="1.2")
    assert (await service(store, vault).kick(device, by="t")).outcome == "in_session"
    store.history.end_session("s-other", at=store.clock(), outcome="ok", rpc_count=0)
    assert (await service(store, vault).kick(device, by="t")).outcome == "accepted"


@pytest_twisted.ensureDeferred
async def test_no_credentials_and_no_url(store, vault):
    device = add_device(store, url="http://127.0.0.1:9/cr")
    assert (await service(store, vault).kick(device, by="t")).outcome == "no_credentials"
    assert (await service(store, None).kick(device, by="t")).detail.startswith("no vault")
    other = add_device(store, "c074ad000002")
    escrow(store, vault, other)
    result = await service(store, vault).kick(other, by="t")
    assert result.outcome == "no_url" and "no ConnectionRequestURL" in result.detail


@pytest_twisted.ensureDeferred
async def test_the_old_url_is_not_used_after_the_port_change_is_read_back(store, vault, listen):
    phone = ScriptedPhone()
    url = listen(phone)
    device = add_device(store, url=url)
    escrow(store, vault, device)
    store.parameters.record_values(device, [(URL_PATH, url, XsdType.STRING)], at=store.clock() - 10,
                                   session_id="s1")
    store.parameters.record_values(device, [(PORT_PATH, 60001, XsdType.UNSIGNED_INT)], at=store.clock(),
                                   session_id="s1")
    result = await service(store, vault).kick(device, by="t")
    assert result.outcome == "no_url" and "moved to 60001" in result.detail and phone.requests == []


@pytest_twisted.ensureDeferred
async def test_concurrency_limit(store, vault, listen):
    phone = ScriptedPhone(username=None, mode="hold")  # any username: each device signs in with its serial
    base = listen(phone)
    devices = []
    for n in range(4):
        device = add_device(store, f"c074ad00010{n}", url=f"{base}/{n}")
        escrow(store, vault, device)
        devices.append(device)
    svc = service(store, vault, concurrency=2)
    pending = [svc.kick(device, by="t") for device in devices]
    await until(lambda: len(phone.held) == 2)
    assert len(svc._slots.waiting) == 2 and len(phone.held) == 2
    phone.release()
    await until(lambda: len(phone.held) == 2)  # the two waiting requests go out only now
    phone.release()
    results = [await d for d in pending]
    assert [r.outcome for r in results] == ["accepted"] * 4


@pytest_twisted.ensureDeferred
async def test_bulk_kicks_start_at_the_configured_rate(store, vault):
    clock = task.Clock()
    devices = [add_device(store, f"c074ad00020{n}", url="http://127.0.0.1:9/cr") for n in range(5)]
    svc = service(store, vault, reactor=clock, rate=2.0)  # no escrowed password: decided without the network
    done = svc.kick_many(devices + devices[:1], by="campaign:7")
    started = []
    for _ in range(5):
        started.append(sum(len(store.connection_requests.for_device(d)) for d in devices))
        clock.advance(0.5)
    results = await done
    assert started == [1, 2, 3, 4, 5]  # one more every 1/rate seconds
    assert [r.device_id for r in results] == devices and {r.outcome for r in results} == {"no_credentials"}


# ---- the delivered link, through the session handler ----------------------------------------------------------------


def inform(events=("6 CONNECTION REQUEST",)) -> Envelope:
    device_id = m.DeviceId("Grandstream", "000B82", "WP820", SERIAL)
    params = [m.ParameterValueStruct(URL_PATH, "http://127.0.0.1:9/cr")]
    return Envelope(m.Inform(device_id, [m.EventStruct(code) for code in events], parameter_list=params), id="1")


@pytest_twisted.ensureDeferred
async def test_the_connection_request_session_is_linked_to_the_request(store, vault, listen):
    device = add_device(store, url=listen(ScriptedPhone()))
    escrow(store, vault, device)
    svc = service(store, vault)
    kicked = await svc.kick(device, by="t")
    handler = SessionHandler(store, on_session_start=svc.session_started, auth_disabled=True)
    periodic = handler.new_session(remote_ip="127.0.0.1")
    handler.handle(periodic, inform(("2 PERIODIC",)))
    handler.end(periodic)
    assert store.history.session(periodic.machine.session_id).connection_request_id is None
    answering = handler.new_session(remote_ip="127.0.0.1")
    handler.handle(answering, inform())
    session_id = answering.machine.session_id
    assert store.history.session(session_id).connection_request_id == kicked.request_id
    record = store.connection_requests.get(kicked.request_id)
    assert record.delivered_session_id == session_id and record.delivered_at is not None


# ---- UDP (TR-111) ---------------------------------------------------------------------------------------------------


class UdpPhone(DatagramProtocol):
    """The phone's side of the NAT: checks each UDP connection request as a CPE does."""

    def __init__(self, username=SERIAL, password=PASSWORD):
        self.username, self.password = username, password
        self.guard = udp_connreq.ReplayGuard()
        self.verdicts: list[udp_connreq.Verdict] = []
        self.arrived: defer.Deferred | None = None

    def datagramReceived(self, datagram, addr):  # noqa: N802
        request = udp_connreq.parse_request(datagram)
        self.verdicts.append(udp_connreq.verify(request, self.username, self.password, now=time.time(),
                                                guard=self.guard))


@pytest.fixture
def udp():
    ports = []

    def open_(protocol) -> int:
        port = reactor.listenUDP(0, protocol, interface="127.0.0.1")
        ports.append(port)
        return port.getHost().port

    yield open_
    for port in ports:
        pytest_twisted.blockon(defer.maybeDeferred(port.stopListening))


@pytest_twisted.ensureDeferred
async def test_an_unreachable_url_falls_back_to_udp_from_the_stun_port(store, vault, udp):
    phone = UdpPhone()
    phone_port = udp(phone)
    stun = StunServer(on_binding=lambda info: None)
    udp(stun)
    device = add_device(store, url="http://127.0.0.1:9/cr", udp=f"127.0.0.1:{phone_port}")
    escrow(store, vault, device, "old-password")
    escrow(store, vault, device, state="pending")
    svc = service(store, vault, stun_server=stun, udp_repeats=3, udp_interval=0.01)
    result = await svc.kick(device, by="t")
    assert (result.outcome, result.method, result.url) == ("sent", "udp", f"127.0.0.1:{phone_port}")
    assert result.detail.startswith("HTTP refused")
    await until(lambda: len(phone.verdicts) == 6)
    # Signed once with each password the phone may hold: it acts on one copy and drops the rest.
    assert phone.verdicts.count(udp_connreq.Verdict.ACCEPTED) == 1
    assert phone.verdicts.count(udp_connreq.Verdict.REPLAYED) == 2
    assert phone.verdicts.count(udp_connreq.Verdict.BAD_SIGNATURE) == 3


@pytest_twisted.ensureDeferred
async def test_without_the_stun_port_udp_is_handed_to_the_acs_process(store, vault, udp):
    phone = UdpPhone()
    phone_port = udp(phone)
    device = add_device(store, udp=f"127.0.0.1:{phone_port}")
    escrow(store, vault, device)
    cli_side = service(store, vault, udp_handover=True)
    queued = await cli_side.kick(device, by="operator:bob")
    assert (queued.outcome, queued.ok) == ("queued", True)
    stun = StunServer(on_binding=lambda info: None)
    udp(stun)
    acs_side = service(store, vault, stun_server=stun, udp_repeats=1)
    assert await acs_side.relay_queued() == 1
    assert await acs_side.relay_queued() == 0
    assert store.connection_requests.get(queued.request_id).outcome == "sent"
    await until(lambda: phone.verdicts == [udp_connreq.Verdict.ACCEPTED])


# ---- STUN bindings --------------------------------------------------------------------------------------------------


def binding(username=SERIAL, address=("203.0.113.7", 40000), *, authenticated=True, cr_binding=True):
    return BindingInfo(username, address, False, cr_binding, 0.0, authenticated)


def test_stun_credentials_are_the_escrowed_password_of_the_serial(store, vault):
    device = add_device(store)
    bindings = StunBindings(store, vault)
    assert bindings.credentials(SERIAL) is None
    escrow(store, vault, device, "stun-pending", state="pending", name="acs.stun_password")
    assert bindings.credentials(SERIAL) == b"stun-pending"
    escrow(store, vault, device, "stun-active", name="acs.stun_password")
    assert bindings.credentials(SERIAL) == b"stun-active"
    assert bindings.credentials("someone-else") is None and StunBindings(store, None).credentials(SERIAL) is None


def test_only_authenticated_connection_request_bindings_are_stored(store, vault):
    device = add_device(store)
    bindings = StunBindings(store, vault)
    bindings.on_binding(binding(authenticated=False))
    bindings.on_binding(binding(cr_binding=False))
    bindings.on_binding(binding(username="stranger"))
    assert store.devices.get(device).udp_connection_request_address is None
    bindings.on_binding(binding())
    assert store.devices.get(device).udp_connection_request_address == "203.0.113.7:40000"
    bindings.on_binding(binding(address=("2001:db8::7", 40001)))
    assert store.devices.get(device).udp_connection_request_address == "[2001:db8::7]:40001"
