"""The CWMP server over real sockets on loopback: session flows, authentication, limits, overload, timeouts and
restarts (issue 3)."""

from __future__ import annotations

import gzip
import zlib

import pytest
import pytest_twisted
import structlog
from twisted.internet import defer, reactor

from acs.tasks import enqueue
from acs.web.cwmp import CwmpLimits
from cwmp_models import codec
from cwmp_models import messages as m
from cwmp_models.envelope import NS_CWMP_1_0, Envelope
from tests.acs_harness import REALM, build, device, enrol_device
from tests.cwmp_client import ScriptedCpe

PASSWORD = "s3cretPassw0rd"


def inform(serial="c074ad000001", events=("2 PERIODIC",), **headers) -> Envelope:
    params = [
        m.ParameterValueStruct("Device.DeviceInfo.SoftwareVersion", "1.0.1.16"),
        m.ParameterValueStruct("Device.ManagementServer.ConnectionRequestURL", "http://127.0.0.2:7547/"),
        m.ParameterValueStruct("Device.ManagementServer.ParameterKey", "k0"),
    ]
    return Envelope(
        m.Inform(device(serial), [m.EventStruct(code) for code in events], parameter_list=params), id="i1", **headers
    )


@pytest.fixture
def harness(tmp_path):
    h = build(tmp_path / "acs.sqlite")
    yield h
    pytest_twisted.blockon(defer.ensureDeferred(h.stop()))


def cpe(h, serial="c074ad000001", **kwargs) -> ScriptedCpe:
    username = enrol_device(h.store, serial, PASSWORD)
    return ScriptedCpe(h.url, username=username, password=PASSWORD, **kwargs)


@pytest_twisted.ensureDeferred
async def test_full_session_with_cookies(harness):
    phone = cpe(harness)
    device_id = device().key
    harness.store.devices  # noqa: B018 - the device row appears with the first Inform
    first = await phone.post(inform(events=("0 BOOTSTRAP", "1 BOOT")))
    assert first.status == 200 and isinstance(first.envelope.body, m.InformResponse)
    assert first.envelope.body.max_envelopes == 1 and first.envelope.id == "i1"
    assert "acs_session" in phone.cookies

    # Durable before acknowledged: the Inform's facts are in the store once the InformResponse is out.
    stored = harness.store.devices.get(device_id)
    assert stored.software_version == "1.0.1.16" and stored.last_boot is not None
    assert [code for _, code, _, _ in harness.store.history.events(device_id)] == ["1 BOOT", "0 BOOTSTRAP"]
    assert harness.store.parameters.get(device_id)["Device.ManagementServer.ParameterKey"].value == "k0"

    enqueue(harness.store, device_id, m.GetParameterValues(["Device.DeviceInfo."]), created_by="operator:test")
    # A CPE request before the empty POST.
    tc = await phone.post(Envelope(m.GetRPCMethods(), id="c1"))
    assert isinstance(tc.envelope.body, m.GetRPCMethodsResponse) and "Inform" in tc.envelope.body.method_list
    request = await phone.post(None)
    assert isinstance(request.envelope.body, m.GetParameterValues)
    done = await phone.post(
        Envelope(m.GetParameterValuesResponse([m.ParameterValueStruct("Device.DeviceInfo.UpTime", "5")]),
                 id=request.envelope.id)
    )
    assert done.status == 204
    session = harness.store.history.sessions(device_id)[0]
    assert session.outcome == "ok" and session.rpc_count == 1
    assert [t.status for t in harness.store.tasks.for_device(device_id)] == ["done"]
    await phone.close()


@pytest_twisted.ensureDeferred
async def test_session_without_cookies_is_tracked_by_connection(harness):
    phone = cpe(harness, use_cookies=False)
    assert (await phone.post(inform())).status == 200
    enqueue(harness.store, device().key, m.Reboot("r1"), created_by="operator:test")
    request = await phone.post(None)
    assert isinstance(request.envelope.body, m.Reboot)
    assert (await phone.post(Envelope(m.RebootResponse(), id=request.envelope.id))).status == 204
    await phone.close()


@pytest_twisted.ensureDeferred
async def test_transfer_complete_settles_the_download_task(harness):
    phone = cpe(harness)
    device_id = device().key
    await phone.post(inform())
    enqueue(harness.store, device_id, m.Download("dl-1", "3 Vendor Configuration File", "https://x.example/f"),
            created_by="operator:test")
    request = await phone.post(None)
    assert isinstance(request.envelope.body, m.Download)
    assert (await phone.post(Envelope(m.DownloadResponse(1), id=request.envelope.id))).status == 204
    assert harness.store.tasks.for_device(device_id)[0].status == "sent"

    await phone.post(inform(events=("7 TRANSFER COMPLETE", "M Download")))
    answer = await phone.post(Envelope(m.TransferComplete("dl-1", m.FaultStruct(9010, "nope")), id="t1"))
    assert isinstance(answer.envelope.body, m.TransferCompleteResponse)
    assert (await phone.post(None)).status == 204
    (task_row,) = harness.store.tasks.for_device(device_id)
    assert task_row.status == "failed" and "9010" in task_row.result
    assert harness.store.history.faults(device_id)[0].code == 9010
    await phone.close()


@pytest_twisted.ensureDeferred
async def test_device_fault_is_recorded_with_spv_details(harness):
    phone = cpe(harness)
    device_id = device().key
    await phone.post(inform())
    enqueue(harness.store, device_id,
            m.SetParameterValues([m.ParameterValueStruct("Device.UserInterface.X_GRANDSTREAM_Port", "0")], "k1"),
            created_by="operator:test")
    request = await phone.post(None)
    fault = m.Fault.of(9003, set_parameter_values_faults=[
        m.SetParameterValuesFault("Device.UserInterface.X_GRANDSTREAM_Port", 9007, "Invalid parameter value")])
    assert (await phone.post(Envelope(fault, id=request.envelope.id))).status == 204
    faults = harness.store.history.faults(device_id)
    assert {(f.code, f.parameter) for f in faults} == {(9003, None), (9007, "Device.UserInterface.X_GRANDSTREAM_Port")}
    assert harness.store.tasks.for_device(device_id)[0].status == "failed"
    await phone.close()


@pytest_twisted.ensureDeferred
async def test_reply_with_wrong_id_is_a_recorded_protocol_error(harness):
    phone = cpe(harness)
    await phone.post(inform())
    enqueue(harness.store, device().key, m.GetRPCMethods(), created_by="operator:test")
    await phone.post(None)
    reply = await phone.post(Envelope(m.GetRPCMethodsResponse(["Inform"]), id="not-the-id"))
    assert reply.status == 204
    faults = harness.store.history.faults(device().key)
    assert faults[0].source == "protocol" and "does not match" in faults[0].message
    assert harness.store.history.sessions(device().key)[0].outcome == "protocol-error"
    # The request was never answered: it is due again in the next session.
    await phone.post(inform())
    again = await phone.post(None)
    assert isinstance(again.envelope.body, m.GetRPCMethods)
    await phone.close()


@pytest_twisted.ensureDeferred
async def test_unsupported_cpe_request_gets_fault_8000(harness):
    phone = cpe(harness)
    await phone.post(inform())
    reply = await phone.post(Envelope(m.GetParameterValues(["Device."]), id="x"))
    assert reply.envelope.body.fault_code == 8000
    assert (await phone.post(None)).status == 204
    await phone.close()


@pytest_twisted.ensureDeferred
async def test_answers_in_the_device_namespace(harness):
    phone = cpe(harness)
    envelope = inform()
    envelope.namespace = NS_CWMP_1_0
    reply = await phone.post(envelope)
    assert reply.envelope.namespace == NS_CWMP_1_0
    assert b'xmlns:cwmp="urn:dslforum-org:cwmp-1-0"' in reply.body
    await phone.close()


# ---- authentication -------------------------------------------------------------------------------------------------


@pytest_twisted.ensureDeferred
async def test_unauthenticated_inform_is_challenged_with_digest(harness):
    enrol_device(harness.store, "c074ad000001", PASSWORD)
    anonymous = ScriptedCpe(harness.url)
    reply = await anonymous.post(inform(), authenticate=False)
    assert reply.status == 401
    challenges = reply.headers.getRawHeaders("www-authenticate")
    assert any("SHA-256" in c for c in challenges) and any("MD5" in c for c in challenges)
    assert all(f'realm="{REALM}"' in c for c in challenges)
    assert not any(c.startswith("Basic") for c in challenges)  # never offered over plain HTTP
    assert harness.store.devices.get(device().key) is None  # nothing recorded for an unauthenticated Inform
    await anonymous.close()


@pytest_twisted.ensureDeferred
async def test_wrong_password_is_refused(harness):
    enrol_device(harness.store, "c074ad000001", PASSWORD)
    phone = ScriptedCpe(harness.url, username="c074ad000001", password="wrong-password")
    assert (await phone.post(inform())).status == 401
    assert harness.resource.counters["auth_failed"] == 1
    await phone.close()


@pytest_twisted.ensureDeferred
async def test_replayed_authorization_is_refused(harness):
    phone = cpe(harness)
    assert (await phone.post(inform())).status == 200
    assert (await phone.post(None)).status == 204
    # Someone who captured that Authorization header sends it again: same nonce, same nonce-count.
    thief = ScriptedCpe(harness.url)
    replay = await thief.post(inform(), authorization=phone.last_authorization)
    assert replay.status == 401
    assert "stale=true" in " ".join(replay.headers.getRawHeaders("www-authenticate")).lower()
    await phone.close()
    await thief.close()


@pytest_twisted.ensureDeferred
async def test_basic_over_plain_http_is_refused(harness):
    enrol_device(harness.store, "c074ad000001", PASSWORD)
    phone = ScriptedCpe(harness.url, username="c074ad000001", password=PASSWORD, basic=True)
    assert (await phone.post(inform())).status == 401
    await phone.close()


@pytest_twisted.ensureDeferred
async def test_a_device_cannot_speak_for_another(harness):
    phone = cpe(harness, serial="c074ad000001")
    enrol_device(harness.store, "c074ad000002", "other-password-123")
    reply = await phone.post(inform(serial="c074ad000002"))
    assert reply.status == 403 and b"another device" in reply.body
    (entry,) = harness.store.audit.entries(action="session-refused")
    assert entry.device_id == device("c074ad000002").key and entry.reason == "credential belongs to another device"
    assert harness.store.devices.get(device("c074ad000002").key) is None
    await phone.close()


@pytest_twisted.ensureDeferred
async def test_unknown_devices_are_refused(harness):
    phone = ScriptedCpe(harness.url, username="nobody", password="x")
    assert (await phone.post(inform(serial="ffffffffffff"))).status == 401
    await phone.close()


@pytest_twisted.ensureDeferred
async def test_bootstrap_secret_works_once_per_device(tmp_path):
    h = build(tmp_path / "acs.sqlite", bootstrap=("bootstrap", "shared-secret-123"))
    try:
        h.store.credentials.enrol("c074ad000001", by="test")
        phone = ScriptedCpe(h.url, username="bootstrap", password="shared-secret-123")
        assert (await phone.post(inform())).status == 200
        assert (await phone.post(None)).status == 204
        # The phone now switches to its own credential; once it used it, the shared secret closes for it.
        enrol_device(h.store, "c074ad000001", PASSWORD)
        own = ScriptedCpe(h.url, username="c074ad000001", password=PASSWORD)
        assert (await own.post(inform())).status == 200
        assert (await own.post(None)).status == 204
        again = ScriptedCpe(h.url, username="bootstrap", password="shared-secret-123")
        refused = await again.post(inform())
        assert refused.status == 403 and b"already used" in refused.body
        # An unenrolled device may not bootstrap unless the operator allows it.
        stranger = ScriptedCpe(h.url, username="bootstrap", password="shared-secret-123")
        assert (await stranger.post(inform(serial="c074ad0000ff"))).status == 403
        for client in (phone, own, again, stranger):
            await client.close()
    finally:
        await h.stop()


@pytest_twisted.ensureDeferred
async def test_authentication_off_needs_the_explicit_switch_and_warns(tmp_path):
    # The switch is the explicit key auth.enabled = false (the configuration warns about it at start:
    # tests/test_config.py); every session then logs a warning too.
    h = build(tmp_path / "acs.sqlite", auth_enabled=False)
    try:
        with structlog.testing.capture_logs() as logs:
            phone = ScriptedCpe(h.url)
            assert (await phone.post(inform())).status == 200
            assert (await phone.post(None)).status == 204
            await phone.close()
        warnings = [e for e in logs if e["log_level"] == "warning" and "authentication is DISABLED" in e["event"]]
        assert len(warnings) == 1 and warnings[0]["device_id"] == device().key
    finally:
        await h.stop()


# ---- concurrency and overload ---------------------------------------------------------------------------------------


@pytest_twisted.ensureDeferred
async def test_second_session_for_the_same_device_gets_503(harness):
    first = cpe(harness)
    assert (await first.post(inform())).status == 200
    second = ScriptedCpe(harness.url, username="c074ad000001", password=PASSWORD)
    busy = await second.post(inform())
    assert busy.status == 503 and int(busy.header("retry-after")) >= 30
    assert (await first.post(None)).status == 204
    assert (await second.post(inform())).status == 200  # free again once the first ended
    await first.close()
    await second.close()


@pytest_twisted.ensureDeferred
async def test_overload_gives_503_with_jittered_retry_after_to_new_sessions_only(tmp_path):
    h = build(tmp_path / "acs.sqlite", limits=CwmpLimits(max_sessions=2, retry_after_min=10, retry_after_max=20))
    try:
        phones = [ScriptedCpe(h.url, username=enrol_device(h.store, f"c074ad00000{i}", PASSWORD), password=PASSWORD)
                  for i in range(4)]
        assert (await phones[0].post(inform("c074ad000000"))).status == 200
        assert (await phones[1].post(inform("c074ad000001"))).status == 200
        refused = [await phones[i].post(inform(f"c074ad00000{i}")) for i in (2, 3)]
        assert [r.status for r in refused] == [503, 503]
        assert all(10 <= int(r.header("retry-after")) <= 20 for r in refused)
        # Sessions already running continue.
        assert (await phones[0].post(None)).status == 204
        assert (await phones[2].post(inform("c074ad000002"))).status == 200
        for phone in phones:
            await phone.close()
    finally:
        await h.stop()


# ---- limits ---------------------------------------------------------------------------------------------------------


async def raw_http(port: int, data: bytes) -> bytes:
    """Send raw bytes and read the answer (for requests an HTTP client would not send)."""
    from twisted.internet.protocol import ClientCreator, Protocol
    from twisted.internet.defer import Deferred

    class Collect(Protocol):
        def __init__(self):
            self.done = Deferred()
            self.buf = b""

        def dataReceived(self, chunk):
            self.buf += chunk

        def connectionLost(self, reason):
            self.done.callback(self.buf)

    proto = await ClientCreator(reactor, Collect).connectTCP("127.0.0.1", port)
    proto.transport.write(data)
    timeout = reactor.callLater(5, proto.transport.loseConnection)
    result = await proto.done
    if timeout.active():
        timeout.cancel()
    return result


@pytest_twisted.ensureDeferred
async def test_oversized_body_by_content_length_is_refused_before_reading(tmp_path):
    h = build(tmp_path / "acs.sqlite", limits=CwmpLimits(max_body_bytes=1000))
    try:
        answer = await raw_http(
            h.port.getHost().port,
            # Only 10 body bytes follow: the refusal must come from the declared length alone.
            b"POST /cwmp HTTP/1.1\r\nHost: x\r\nContent-Length: 50000000\r\n\r\n" + b"x" * 10,
        )
        assert answer.startswith(b"HTTP/1.1 413")
        assert h.resource.counters["http_413"] == 1
    finally:
        await h.stop()


@pytest_twisted.ensureDeferred
async def test_oversized_chunked_body_is_refused(tmp_path):
    h = build(tmp_path / "acs.sqlite", limits=CwmpLimits(max_body_bytes=1000))
    try:
        chunk = b"x" * 600
        data = (b"POST /cwmp HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
                + (b"%x\r\n" % len(chunk) + chunk + b"\r\n") * 3 + b"0\r\n\r\n")
        assert (await raw_http(h.port.getHost().port, data)).startswith(b"HTTP/1.1 413")
    finally:
        await h.stop()


@pytest_twisted.ensureDeferred
async def test_gzip_and_deflate_bodies_are_accepted(harness):
    phone = cpe(harness)
    body = codec.serialize(inform())
    reply = await phone.post(gzip.compress(body), headers={"content-encoding": "gzip"})
    assert reply.status == 200 and isinstance(reply.envelope.body, m.InformResponse)
    assert (await phone.post(None)).status == 204
    other = ScriptedCpe(harness.url, username="c074ad000001", password=PASSWORD)
    reply = await other.post(zlib.compress(body), headers={"content-encoding": "deflate"})
    assert reply.status == 200
    await phone.close()
    await other.close()


@pytest_twisted.ensureDeferred
async def test_decompression_bomb_is_refused(tmp_path):
    h = build(tmp_path / "acs.sqlite", limits=CwmpLimits(max_decompressed_bytes=100_000))
    try:
        phone = cpe(h)
        reply = await phone.post(gzip.compress(b"<" * 10_000_000), headers={"content-encoding": "gzip"})
        assert reply.status == 413
        corrupt = await phone.post(b"not gzip at all", headers={"content-encoding": "gzip"})
        assert corrupt.status == 400
        unknown = await phone.post(b"x", headers={"content-encoding": "br"})
        assert unknown.status == 415
        await phone.close()
    finally:
        await h.stop()


@pytest_twisted.ensureDeferred
async def test_wrong_method_is_405(harness):
    answer = await raw_http(harness.port.getHost().port, b"GET /cwmp HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    assert answer.startswith(b"HTTP/1.1 405") and b"Allow: POST" in answer


@pytest_twisted.ensureDeferred
async def test_garbage_is_400_without_a_traceback(harness):
    phone = cpe(harness)
    for body in (b"\x00\xff garbage", b"<?xml version='1.0'?><!DOCTYPE x [<!ENTITY a 'b'>]><x>&a;</x>", b"<a><b></a>"):
        reply = await phone.post(body)
        assert reply.status == 400 and b"Traceback" not in reply.body
    no_session = await phone.post(None)
    assert no_session.status == 400 and b"starts with an Inform" in no_session.body
    await phone.close()


GARBAGE = [
    b"\x00\xff garbage",
    b"<?xml version='1.0'?><!DOCTYPE x [<!ENTITY a 'b'>]><x>&a;</x>",
    codec.serialize(inform()),
]


@pytest_twisted.ensureDeferred
async def test_nothing_a_stranger_sends_is_decompressed_or_parsed(harness):
    stranger = ScriptedCpe(harness.url)  # no credentials
    with structlog.testing.capture_logs() as logs:
        replies = [await stranger.post(body) for body in GARBAGE]
        bomb = await stranger.post(gzip.compress(b"<" * 10_000_000), headers={"content-encoding": "gzip"})
    for reply in [*replies, bomb]:
        assert reply.status == 401 and reply.header("www-authenticate").startswith("Digest ")
    # Had any body been read, the garbage would have been a 400 and the bomb a 413, each logged as refused.
    assert not [entry for entry in logs if entry["event"] == "request refused"]
    assert not {"http_400", "http_413"} & set(harness.resource.counters)
    assert harness.store.history.sessions(device().key) == []
    await stranger.close()


@pytest_twisted.ensureDeferred
async def test_garbage_mid_session_ends_it(harness):
    phone = cpe(harness)
    await phone.post(inform())
    assert (await phone.post(b"<not-soap/>")).status == 400
    assert harness.store.history.sessions(device().key)[0].outcome == "protocol-error"
    await phone.close()


# ---- timeouts and restarts ------------------------------------------------------------------------------------------


@pytest_twisted.ensureDeferred
async def test_abandoned_session_times_out_and_releases_everything(tmp_path):
    now = [1000.0]
    h = build(tmp_path / "acs.sqlite", clock=lambda: now[0])
    try:
        phone = ScriptedCpe(h.url, username=enrol_device(h.store, "c074ad000001", PASSWORD), password=PASSWORD)
        assert (await phone.post(inform(session_timeout=45))).status == 200
        enqueue(h.store, device().key, m.GetRPCMethods(), created_by="operator:test")
        await phone.post(None)  # the device now goes silent with our request outstanding
        now[0] += 44
        assert h.resource.expire_sessions() == 0  # the device asked for 45 s
        now[0] += 2
        assert h.resource.expire_sessions() == 1
        assert len(h.resource.registry) == 0
        assert h.store.history.sessions(device().key)[0].outcome == "timeout"
        # The device may open a new session at once, and gets the unanswered request again.
        await phone.close()
        again = ScriptedCpe(h.url, username="c074ad000001", password=PASSWORD)
        assert (await again.post(inform())).status == 200
        assert isinstance((await again.post(None)).envelope.body, m.GetRPCMethods)
        await again.close()
    finally:
        await h.stop()


@pytest_twisted.ensureDeferred
async def test_restart_keeps_all_stored_state(tmp_path):
    db = tmp_path / "acs.sqlite"
    h = build(db)
    phone = ScriptedCpe(h.url, username=enrol_device(h.store, "c074ad000001", PASSWORD), password=PASSWORD)
    await phone.post(inform(events=("1 BOOT",)))
    enqueue(h.store, device().key, m.Reboot("r2"), created_by="operator:test")
    await phone.post(None)  # Reboot sent, never answered: the server "dies" here
    await phone.close()
    await h.stop()

    h2 = build(db)
    try:
        assert h2.store.devices.get(device().key).software_version == "1.0.1.16"
        assert len(h2.store.history.events(device().key)) == 1
        assert h2.store.credentials.by_username("c074ad000001") is not None
        assert h2.store.audit.entries(action="task-created")
        phone = ScriptedCpe(h2.url, username="c074ad000001", password=PASSWORD)
        assert (await phone.post(inform())).status == 200
        assert isinstance((await phone.post(None)).envelope.body, m.Reboot)
        await phone.close()
    finally:
        await h2.stop()


def test_a_queued_request_with_a_password_is_never_stored_in_plaintext(tmp_path):
    import base64
    import os

    from acs.store import Store
    from acs.tasks import decode_request
    from acs.vault import Vault

    store = Store(tmp_path / "acs.sqlite")
    download = m.Download("fw-1", "1 Firmware Upgrade Image", "https://fw.example/x.bin", "user", "hunter2-secret")
    with pytest.raises(ValueError, match="needs the secrets vault"):
        enqueue(store, device().key, download, created_by="operator:test")
    vault = Vault(os.urandom(32))
    task_id = enqueue(store, device().key, download, created_by="operator:test", vault=vault)
    payload = store.tasks.get(task_id).payload
    assert "hunter2-secret" not in payload and base64.b64encode(b"hunter2-secret").decode() not in payload
    assert decode_request(payload, device_id=device().key, vault=vault) == download
    store.close()
    assert b"hunter2-secret" not in (tmp_path / "acs.sqlite").read_bytes()
