"""The simulator's CWMP client against the scripted mini ACS, over real HTTP(S) on loopback.

Each test runs a one-phone fleet on its own 127.x.y.z address (derived from the test's name, so tests running side
by side do not collide) against a ``MiniAcs`` listening on 127.0.0.1. Timing rules (Retry-After, backoff windows,
periodic and scheduled Informs) are checked on a ``task.Clock`` driving the phones' timers while the sockets run on
the real reactor, so no assertion depends on how fast the machine is.
"""

from __future__ import annotations

import zlib
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pytest
import pytest_twisted
from twisted.internet import defer, reactor, task, tcp, udp

from acs.tls import generate_ca_and_server, server_context_factory
from cwmp_models import gsconfig
from cwmp_models import messages as m
from cwmp_models.envelope import NS_CWMP_1_0
from cwmp_models.types import XsdType
from wp820_sim.agent import AgentSettings, AgentState, Scheduler, Stats
from wp820_sim.fleet import Fleet, FleetConfig, identity
from wp820_sim.mini_acs import AcsSession, MiniAcs
from wp820_sim.phone import Credentials
from wp820_sim.quirks import Quirks

USER, PASSWORD = "acs-user", "acs-secret"
MS = "Device.ManagementServer."
INTERVAL = MS + "PeriodicInformInterval"
PROFILES = "Device.Services.VoiceService.1.VoiceProfile."
GUARD = 30  # seconds: a bound against hangs, never an expectation about speed
FAST = AgentSettings(session_timeout=5.0, retry_scale=0.01, reboot_delay=0.01, transfer_timeout=5.0)


def within(d: defer.Deferred[Any] | Awaitable[Any], guard: float = GUARD) -> defer.Deferred[Any]:
    if not isinstance(d, defer.Deferred):
        d = defer.ensureDeferred(d)  # type: ignore[arg-type]
    return d.addTimeout(guard, reactor)


def first_index_for(nodeid: str) -> int:
    """A phone index (hence a 127.x.y.z address) of this test's own, away from 127.0.0.x."""
    return 300_000 + zlib.crc32(nodeid.encode()) % 2_000_000


def _open_sockets() -> list[object]:
    selectables = reactor.getReaders() + reactor.getWriters()
    return [s for s in selectables if isinstance(s, (tcp.Port, tcp.Server, tcp.Client, udp.Port))]


@pytest.fixture(autouse=True)
def nothing_left_behind():
    """Every socket closed and no timer left once the test and its fixtures are done (closing is asynchronous:
    give the reactor a few turns)."""
    yield

    async def settle() -> None:
        for _ in range(100):
            if not _open_sockets() and not reactor.getDelayedCalls():
                return
            await task.deferLater(reactor, 0.02, lambda: None)

    pytest_twisted.blockon(defer.ensureDeferred(settle()))
    assert _open_sockets() == []
    assert reactor.getDelayedCalls() == []


@dataclass
class Acs:
    acs: MiniAcs
    url: str  # the CWMP endpoint
    base: str  # scheme://host:port, for file URLs


def _listen(acs: MiniAcs, tls: Any = None) -> tuple[Any, str]:
    if tls is None:
        port = reactor.listenTCP(0, acs.site(), backlog=1024, interface="127.0.0.1")
        return port, f"http://127.0.0.1:{port.getHost().port}"
    port = reactor.listenSSL(0, acs.site(), tls, backlog=1024, interface="127.0.0.1")
    return port, f"https://127.0.0.1:{port.getHost().port}"


@pytest.fixture
def make_acs():
    ports = []

    def make(*, tls: Any = None, **options: Any) -> Acs:
        acs = MiniAcs(credentials={USER: PASSWORD}, keep_bodies=True, **options)
        port, base = _listen(acs, tls)
        ports.append(port)
        return Acs(acs, base + "/cwmp", base)

    yield make
    pytest_twisted.blockon(defer.gatherResults([defer.maybeDeferred(p.stopListening) for p in ports]))


@pytest.fixture
def acs(make_acs) -> Acs:
    return make_acs()


@pytest.fixture(scope="module")
def certificates(tmp_path_factory):
    good = generate_ca_and_server(["127.0.0.1"], tmp_path_factory.mktemp("tls"))
    other = generate_ca_and_server(["127.0.0.1"], tmp_path_factory.mktemp("other-ca"))
    return good, other


@pytest.fixture
def start_fleet(request, tmp_path: Path):
    """``await start_fleet(url, phones=1, clock=None, **FleetConfig overrides)`` -> a running Fleet (stopped after)."""
    fleets: list[Fleet] = []

    async def start(url: str, *, phones: int = 1, clock: Any = None, **overrides: Any) -> Fleet:
        options: dict[str, Any] = {
            "state_dir": tmp_path / "state",
            "bootstrap": Credentials(USER, PASSWORD),
            "first_index": first_index_for(request.node.nodeid),
            "agent": FAST,
            "cr_min_interval": 0.0,
        }
        options.update(overrides)
        fleet = Fleet(FleetConfig(acs_url=url, phones=phones, **options), clock=clock)
        fleets.append(fleet)
        await fleet.start()
        return fleet

    yield start
    for fleet in fleets:
        pytest_twisted.blockon(defer.ensureDeferred(fleet.stop()))


def serial_of(request) -> str:
    return identity(first_index_for(request.node.nodeid)).serial


async def one_session(acs: Acs, number: int = 1, fleet: Fleet | None = None) -> AcsSession:
    """The ACS's ``number``-th completed session; with ``fleet``, also wait until the phone has seen it end."""
    sessions = await within(acs.acs.wait_sessions(number))
    if fleet is not None:
        await within(fleet.wait_sessions(number))
    return sessions[number - 1]


# -- the Scheduler: many timers, one DelayedCall ---------------------------------------------------------------


def test_scheduler_runs_timers_in_order_on_one_delayed_call() -> None:
    clock = task.Clock()
    scheduler = Scheduler(clock)
    fired: list[str] = []
    scheduler.call_later(5, lambda: fired.append("b"))
    scheduler.call_later(2, lambda: fired.append("a"))
    cancelled = scheduler.call_later(3, lambda: fired.append("never"))
    scheduler.call_later(5, lambda: fired.append("c"))  # same time: insertion order
    cancelled.cancel()
    assert len(clock.getDelayedCalls()) == 1 and clock.getDelayedCalls()[0].getTime() == 2
    clock.advance(2)
    assert fired == ["a"] and clock.getDelayedCalls()[0].getTime() == 5
    clock.advance(3)
    assert fired == ["a", "b", "c"] and clock.getDelayedCalls() == [] and len(scheduler) == 0


def test_scheduler_rearms_for_an_earlier_timer_and_survives_a_failing_one() -> None:
    clock = task.Clock()
    scheduler = Scheduler(clock)
    fired: list[int] = []
    scheduler.call_later(10, lambda: fired.append(10))
    scheduler.call_later(1, lambda: 1 / 0)
    scheduler.call_later(1, lambda: fired.append(1))
    assert [call.getTime() for call in clock.getDelayedCalls()] == [1]
    clock.advance(1)
    assert fired == [1]
    clock.advance(9)
    assert fired == [1, 10]
    scheduler.call_later(4, lambda: fired.append(4))
    scheduler.stop()
    assert clock.getDelayedCalls() == []


def test_stats_waiters_fire_when_the_count_is_reached() -> None:
    stats = Stats()
    reached: list[int] = []
    stats.wait_for("sessions_ok", 2).addCallback(reached.append)
    stats.add("sessions_ok")
    assert reached == []
    stats.add("sessions_ok")
    assert reached == [2] and stats["sessions_ok"] == 2


# -- first contact, authentication, cookies, TLS ---------------------------------------------------------------


@pytest_twisted.ensureDeferred
async def test_first_contact_bootstraps_with_digest_and_returns_cookies(request, acs: Acs, start_fleet) -> None:
    acs.acs.enqueue(serial_of(request), m.GetParameterValues([MS + "PeriodicInformEnable"]))
    fleet = await start_fleet(acs.url)
    session = await one_session(acs)
    ident = identity(first_index_for(request.node.nodeid))
    inform = session.inform
    assert (inform.device_id.oui, inform.device_id.product_class, session.serial) == ("000B82", "WP820", ident.serial)
    assert session.event_codes == ["0 BOOTSTRAP", "1 BOOT"]
    assert inform.parameter(MS + "ConnectionRequestURL") == f"http://{ident.ip}:7547/"
    assert session.client_ip == ident.ip  # the phone's own loopback address, not 127.0.0.1
    assert session.auth_schemes == {"digest"}
    assert session.cookie_returned == 2  # the empty POST and the GetParameterValuesResponse carried the cookie
    assert isinstance(session.response_to(m.GetParameterValues), m.GetParameterValuesResponse)
    assert session.errors == []
    await within(fleet.wait_sessions(1))  # the ACS's 204 has reached the phone
    assert fleet.agent(ident.serial).sessions_ok == 1


@pytest_twisted.ensureDeferred
async def test_https_with_the_acs_certificate_validated_against_the_ca(make_acs, start_fleet, certificates) -> None:
    good, _ = certificates
    acs = make_acs(tls=server_context_factory(good.cert, good.key))
    fleet = await start_fleet(acs.url, ca_file=good.ca_cert)
    session = await one_session(acs)
    assert session.tls and session.event_codes == ["0 BOOTSTRAP", "1 BOOT"]
    assert session.auth_schemes == {"digest"}  # Basic was offered too (TLS), but Digest is preferred
    assert fleet.counters.get("sessions_failed", 0) == 0


@pytest_twisted.ensureDeferred
async def test_an_acs_offering_only_basic_over_tls_gets_basic(make_acs, start_fleet, certificates) -> None:
    good, _ = certificates
    acs = make_acs(tls=server_context_factory(good.cert, good.key), offer_digest=False)
    await start_fleet(acs.url, ca_file=good.ca_cert)
    session = await one_session(acs)
    assert session.auth_schemes == {"basic"} and session.errors == []


@pytest_twisted.ensureDeferred
async def test_an_md5_only_acs_gets_md5_digest(request, make_acs, start_fleet) -> None:
    acs = make_acs(algorithms=("MD5",))
    acs.acs.enqueue(serial_of(request), m.GetParameterValues([INTERVAL]))
    await start_fleet(acs.url)
    session = await one_session(acs)
    assert session.auth_schemes == {"digest"} and session.errors == []
    assert session.response_to(m.GetParameterValues).parameter_list[0].value == 86400


@pytest_twisted.ensureDeferred
async def test_an_acs_certificate_from_another_ca_is_refused(request, make_acs, start_fleet, certificates) -> None:
    good, other = certificates
    acs = make_acs(tls=server_context_factory(good.cert, good.key))
    fleet = await start_fleet(acs.url, ca_file=other.ca_cert)
    await within(fleet.stats.wait_for("sessions_failed", 1))
    assert acs.acs.sessions == [] and acs.acs.counters["requests"] == 0
    agent = fleet.agent(serial_of(request))
    assert agent.last_error is not None and "HTTP exchange failed" in agent.last_error


# -- every RPC, end to end -------------------------------------------------------------------------------------


@pytest_twisted.ensureDeferred
async def test_each_rpc_travels_over_http_and_gets_its_answer(request, acs: Acs, start_fleet) -> None:
    value = m.ParameterValueStruct(INTERVAL, 600, XsdType.UNSIGNED_INT)
    unknown = m.ParameterValueStruct(MS + "NoSuchThing", "x", XsdType.STRING)
    requests = [
        m.GetRPCMethods(),
        m.GetParameterNames(MS, True),
        m.GetParameterValues([INTERVAL]),
        m.SetParameterValues([value], "pk-1"),
        m.SetParameterValues([unknown], "pk-2"),
        m.GetParameterAttributes([INTERVAL]),
        m.SetParameterAttributes([m.SetParameterAttributesStruct(INTERVAL, True, 1)]),
        m.DeleteObject(PROFILES + "2.", "del-1"),
        m.AddObject(PROFILES, "add-1"),
        m.GetQueuedTransfers(),
        m.ScheduleDownload("sd", "3 Vendor Configuration File", "http://127.0.0.1:9/x", time_window_list=[]),
    ]
    acs.acs.enqueue(serial_of(request), *requests)
    fleet = await start_fleet(acs.url)
    session = await one_session(acs)
    answers = [exchange.response for exchange in session.exchanges]
    assert [type(answer).__name__ for answer in answers] == [
        "GetRPCMethodsResponse",
        "GetParameterNamesResponse",
        "GetParameterValuesResponse",
        "SetParameterValuesResponse",
        "Fault",
        "GetParameterAttributesResponse",
        "SetParameterAttributesResponse",
        "DeleteObjectResponse",
        "AddObjectResponse",
        "GetQueuedTransfersResponse",
        "Fault",
    ]
    assert "GetParameterValues" in answers[0].method_list and "Inform" not in answers[0].method_list
    assert MS + "URL" in [info.name for info in answers[1].parameter_list]
    assert answers[2].parameter_list[0].value == 86400
    assert answers[4].fault_code == 9003 and answers[4].set_parameter_values_faults[0].fault_code == 9005
    assert answers[10].fault_code == 9000  # ScheduleDownload: not implemented by the phone
    assert fleet.phone(serial_of(request)).value(INTERVAL) == 600
    assert session.errors == []


# -- retries ---------------------------------------------------------------------------------------------------


@pytest_twisted.ensureDeferred
async def test_503_with_retry_after_is_honoured(acs: Acs, start_fleet) -> None:
    clock = task.Clock()
    acs.acs.refuse(1, status=503, retry_after=120)
    fleet = await start_fleet(acs.url, clock=clock, agent=AgentSettings(retry_scale=1.0))
    clock.advance(0)  # power on
    await within(fleet.stats.wait_for("sessions_failed", 1))
    assert [call.getTime() for call in clock.getDelayedCalls()] == [120.0]  # not the 5-10 s backoff window
    assert fleet.counters["http_503"] == 1
    clock.advance(120)
    session = await one_session(acs)
    assert session.inform.retry_count == 1 and session.event_codes == ["0 BOOTSTRAP", "1 BOOT"]


@pytest_twisted.ensureDeferred
async def test_failed_sessions_back_off_in_doubling_windows(acs: Acs, start_fleet) -> None:
    clock = task.Clock()
    acs.acs.refuse(2, status=500)
    fleet = await start_fleet(acs.url, clock=clock, agent=AgentSettings(retry_scale=1.0))
    clock.advance(0)
    await within(fleet.stats.wait_for("sessions_failed", 1))
    (first_retry,) = [call.getTime() for call in clock.getDelayedCalls()]
    assert 5 <= first_retry <= 10
    clock.advance(first_retry)
    await within(fleet.stats.wait_for("sessions_failed", 2))
    (second_retry,) = [call.getTime() for call in clock.getDelayedCalls()]
    assert 10 <= second_retry - first_retry <= 20
    clock.advance(second_retry - first_retry)
    session = await one_session(acs)
    assert session.inform.retry_count == 2 and fleet.counters["retries"] == 2


@pytest_twisted.ensureDeferred
async def test_session_timeout_fails_the_session(request, acs: Acs, start_fleet) -> None:
    never = defer.Deferred()
    acs.acs.enqueue(serial_of(request), lambda session: never)
    fleet = await start_fleet(acs.url, agent=AgentSettings(session_timeout=0.3, retry_scale=100.0))
    await within(fleet.stats.wait_for("sessions_failed", 1))
    assert fleet.agent(serial_of(request)).last_error == "timed out waiting for the server"
    never.callback(None)  # the held response goes nowhere: the phone has hung up


# -- reboot, factory reset, scheduled and periodic Informs -------------------------------------------------------


@pytest_twisted.ensureDeferred
async def test_reboot_comes_back_with_boot_and_m_reboot(request, acs: Acs, start_fleet) -> None:
    acs.acs.enqueue(serial_of(request), m.Reboot("rb-1"))
    fleet = await start_fleet(acs.url)
    second = await one_session(acs, 2, fleet)
    assert second.events == [("1 BOOT", ""), ("M Reboot", "rb-1")]
    assert fleet.agent(serial_of(request)).state is AgentState.IDLE


@pytest_twisted.ensureDeferred
async def test_factory_reset_forgets_changes_and_bootstraps_again(request, acs: Acs, start_fleet) -> None:
    serial = serial_of(request)
    acs.acs.enqueue(serial, m.SetParameterValues([m.ParameterValueStruct(INTERVAL, 600, XsdType.UNSIGNED_INT)], "k"))
    acs.acs.enqueue(serial, m.FactoryReset())
    fleet = await start_fleet(acs.url)
    second = await one_session(acs, 2)
    assert second.event_codes == ["0 BOOTSTRAP", "1 BOOT"]
    assert fleet.phone(serial).value(INTERVAL) == 86400
    assert fleet.phone(serial).acs_url == acs.url  # the site defaults survive the reset


@pytest_twisted.ensureDeferred
async def test_schedule_inform_opens_a_session_after_its_delay(request, acs: Acs, start_fleet) -> None:
    clock = task.Clock()
    acs.acs.enqueue(serial_of(request), m.ScheduleInform(30, "si-1"))
    fleet = await start_fleet(acs.url, clock=clock)
    clock.advance(0)
    await one_session(acs, 1, fleet)
    assert [call.getTime() for call in clock.getDelayedCalls()] == [30.0]
    clock.advance(30)
    second = await one_session(acs, 2)
    assert second.events == [("3 SCHEDULED", ""), ("M ScheduleInform", "si-1")]


@pytest_twisted.ensureDeferred
async def test_periodic_informs_follow_interval_and_phase(acs: Acs, start_fleet) -> None:
    clock = task.Clock()
    clock.advance(1000)
    phase = datetime.fromtimestamp(30, timezone.utc)  # informs at 30 + k * 100 s
    fleet = await start_fleet(
        acs.url, clock=clock, periodic_interval=100, settings={"acs.periodic_inform_time": phase}
    )
    clock.advance(0)
    await one_session(acs, 1, fleet)
    assert [call.getTime() for call in clock.getDelayedCalls()] == [1030.0]
    clock.advance(30)
    second = await one_session(acs, 2, fleet)
    assert second.event_codes == ["2 PERIODIC"]
    assert [call.getTime() for call in clock.getDelayedCalls()] == [1130.0]


# -- transfers -------------------------------------------------------------------------------------------------


@pytest_twisted.ensureDeferred
async def test_download_of_a_config_file_is_applied_and_reported(request, acs: Acs, start_fleet) -> None:
    serial = serial_of(request)
    path = acs.acs.add_file("cfg.xml", gsconfig.build_config({"P1650": "1"}), username="dl", password="dl-pass")
    download = m.Download("dl-1", "3 Vendor Configuration File", acs.base + path, "dl", "dl-pass")
    acs.acs.enqueue(serial, download)
    fleet = await start_fleet(acs.url)
    first = await one_session(acs)
    assert isinstance(first.response_to(m.Download), m.DownloadResponse)
    second = await one_session(acs, 2)
    assert second.events == [("7 TRANSFER COMPLETE", ""), ("M Download", "dl-1")]
    (complete,) = second.cpe_requests
    assert isinstance(complete, m.TransferComplete)
    assert (complete.command_key, complete.fault_struct.fault_code) == ("dl-1", 0)
    assert acs.acs.downloads["cfg.xml"] == 1
    assert fleet.phone(serial).value("web.access_method") == "HTTPS"
    assert fleet.counters["transfers_ok"] == 1


@pytest_twisted.ensureDeferred
async def test_a_value_change_waits_for_the_running_download_and_shares_its_session(
    request, acs: Acs, start_fleet
) -> None:
    port = m.ParameterValueStruct(MS + "X_GRANDSTREAM_ConnectionRequestPort", 7549, XsdType.UNSIGNED_INT)
    path = acs.acs.add_file("cfg.xml", gsconfig.build_config({"P1650": "1"}))
    acs.acs.enqueue(
        serial_of(request),
        m.SetParameterValues([port], "port"),  # moves ConnectionRequestURL: a forced active notification
        m.Download("dl-3", "3 Vendor Configuration File", acs.base + path),
    )
    fleet = await start_fleet(acs.url)
    second = await one_session(acs, 2, fleet)
    assert second.event_codes == ["4 VALUE CHANGE", "7 TRANSFER COMPLETE", "M Download"]
    assert second.inform.parameter(MS + "ConnectionRequestURL").endswith(":7549/")
    assert len(acs.acs.sessions) == 2


@pytest_twisted.ensureDeferred
async def test_download_with_wrong_file_credentials_reports_9012(request, acs: Acs, start_fleet) -> None:
    path = acs.acs.add_file("cfg.xml", gsconfig.build_config({"P1650": "1"}), username="dl", password="dl-pass")
    acs.acs.enqueue(serial_of(request), m.Download("dl-2", "3 Vendor Configuration File", acs.base + path, "dl", "no"))
    fleet = await start_fleet(acs.url)
    second = await one_session(acs, 2)
    (complete,) = second.cpe_requests
    assert (complete.command_key, complete.fault_struct.fault_code) == ("dl-2", 9012)
    assert acs.acs.downloads["cfg.xml"] == 0
    assert fleet.phone(serial_of(request)).value("web.access_method") == "HTTP"


@pytest_twisted.ensureDeferred
async def test_upload_puts_the_configuration_and_reports(request, acs: Acs, start_fleet) -> None:
    acs.acs.require_upload_credentials("up", "up-pass")
    upload = m.Upload("up-1", "1 Vendor Configuration File", acs.base + "/uploads/backup.xml", "up", "up-pass")
    acs.acs.enqueue(serial_of(request), upload)
    await start_fleet(acs.url)
    second = await one_session(acs, 2)
    assert second.events == [("7 TRANSFER COMPLETE", ""), ("M Upload", "up-1")]
    assert second.cpe_requests[0].fault_struct.fault_code == 0
    assert "P4503" in gsconfig.parse_config(acs.acs.uploads["backup.xml"]).pvalues


# -- quirks: the mini ACS copes with each as a real ACS should ----------------------------------------------------


@pytest_twisted.ensureDeferred
async def test_no_cookies_is_tracked_by_the_connection(request, acs: Acs, start_fleet) -> None:
    acs.acs.enqueue(serial_of(request), m.GetParameterValues([INTERVAL]))
    await start_fleet(acs.url, quirks=Quirks(no_cookies=True))
    session = await one_session(acs)
    assert session.cookie_returned == 0 and session.tracked_by_connection == 2
    assert isinstance(session.response_to(m.GetParameterValues), m.GetParameterValuesResponse)


@pytest_twisted.ensureDeferred
async def test_basic_only_authenticates_with_basic_over_tls(make_acs, start_fleet, certificates) -> None:
    good, _ = certificates
    acs = make_acs(tls=server_context_factory(good.cert, good.key))
    await start_fleet(acs.url, ca_file=good.ca_cert, quirks=Quirks(basic_only=True))
    session = await one_session(acs)
    assert session.auth_schemes == {"basic"} and session.errors == []


@pytest_twisted.ensureDeferred
async def test_basic_only_cannot_authenticate_over_plain_http(request, acs: Acs, start_fleet) -> None:
    fleet = await start_fleet(acs.url, quirks=Quirks(basic_only=True))
    await within(fleet.stats.wait_for("sessions_failed", 1))
    assert acs.acs.sessions == []  # the ACS offered Digest only; a Basic-only stack has nothing to answer with
    assert fleet.agent(serial_of(request)).last_error.startswith("authentication:")


@pytest_twisted.ensureDeferred
async def test_a_reused_digest_nonce_is_refused_as_stale_and_recovered(request, acs: Acs, start_fleet) -> None:
    acs.acs.enqueue(serial_of(request), m.GetParameterValues([INTERVAL]))
    await start_fleet(acs.url, quirks=Quirks(reuse_digest_nonce=True))
    session = await one_session(acs)
    assert session.stale_nonce_retries == 2  # the empty POST and the response each replayed nc=00000001 once
    assert session.errors == [] and session.auth_schemes == {"digest"}


@pytest.mark.parametrize(
    ("quirks", "check"),
    [
        (Quirks(soap_env_prefix=True), lambda s: s.bodies[0].startswith(b"<SOAP-ENV:Envelope")),
        (Quirks(padded_array_counts=True), lambda s: b'arrayType="cwmp:EventStruct[0002]"' in s.bodies[0]),
        (Quirks(xml_declaration=True), lambda s: s.bodies[0].startswith(b"<?xml")),
        (Quirks(cwmp_version="1.0"), lambda s: s.namespace == NS_CWMP_1_0 and s.protocol_version == "1.0"),
        (Quirks(cwmp_version="1.4"), lambda s: s.protocol_version == "1.4"),
    ],
    ids=["soap-env", "padded-counts", "xml-declaration", "cwmp-1.0", "cwmp-1.4"],
)
@pytest_twisted.ensureDeferred
async def test_output_quirks_reach_the_acs_and_the_session_completes(
    request, acs: Acs, start_fleet, quirks: Quirks, check: Callable[[AcsSession], bool]
) -> None:
    acs.acs.enqueue(serial_of(request), m.GetParameterValues([INTERVAL]))
    await start_fleet(acs.url, quirks=quirks)
    session = await one_session(acs)
    assert check(session)
    assert session.response_to(m.GetParameterValues).parameter_list[0].value == 86400
    assert session.errors == []


@pytest_twisted.ensureDeferred
async def test_a_phone_rejecting_xml_declarations_fails_against_an_acs_sending_them(
    request, make_acs, start_fleet
) -> None:
    acs = make_acs(xml_declaration=True)
    fleet = await start_fleet(acs.url, quirks=Quirks(reject_xml_declaration=True))
    await within(fleet.stats.wait_for("sessions_failed", 1))
    assert "XML declaration" in fleet.agent(serial_of(request)).last_error
    assert acs.acs.completed == []
