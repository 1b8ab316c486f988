"""The file endpoint over real sockets on loopback (issue 5): one-time URLs with per-transfer credentials, the vendor
configuration file path end to end, uploads, refusals."""

from __future__ import annotations

import base64
import datetime
import gzip
import ipaddress
import os
from dataclasses import dataclass
from io import BytesIO

import pytest
import pytest_twisted
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from structlog.testing import capture_logs
from twisted.internet import defer, reactor, ssl
from twisted.web import resource
from twisted.web.client import Agent, BrowserLikePolicyForHTTPS, FileBodyProducer, HTTPConnectionPool, readBody
from twisted.web.http_headers import Headers
from twisted.web.iweb import UNKNOWN_LENGTH

from acs.files import FileService
from acs.store import Store
from acs.web.cwmp import CwmpSite
from acs.web.files import FileResource
from cwmp_models import messages as m
from cwmp_models.gsconfig import build_config, decrypt_config, encrypt_config, parse_config
from cwmp_models.httpauth_client import DigestClient
from tests.test_files import Clock, TestVault

DEVICE = "000B82-WP820-c074ad000001"
MAC = "c074ad000001"
TTL = 600.0
UPLOAD_CAP = 4096


@dataclass
class Reply:
    status: int
    headers: Headers
    body: bytes
    length: int | None  # the Content-Length (Twisted's client takes it out of the headers)

    def header(self, name: str) -> str | None:
        values = self.headers.getRawHeaders(name)
        return values[0] if values else None


class Client:
    """An HTTP client answering one 401 with Digest (or sending a fixed Authorization), one connection per request."""

    def __init__(self, username: str | None = None, password: str | None = None, *, tls_policy=None) -> None:
        self.pool = HTTPConnectionPool(reactor, persistent=False)
        kwargs = {"pool": self.pool} | ({"contextFactory": tls_policy} if tls_policy is not None else {})
        self.agent = Agent(reactor, **kwargs)
        self.digest = DigestClient(username, password) if username is not None else None

    async def request(
        self, method: str, url: str, body: bytes | None = None, *, headers: dict[str, str] | None = None,
        authorization: str | None = None,
    ) -> Reply:
        reply = await self._send(method, url, body, headers or {}, authorization)
        if reply.status == 401 and self.digest is not None and authorization is None:
            challenges = reply.headers.getRawHeaders("www-authenticate") or []
            path = "/" + url.split("://", 1)[1].split("/", 1)[1]
            reply = await self._send(
                method, url, body, headers or {}, self.digest.authorization(method, path, challenges)
            )
        return reply

    async def _send(self, method, url, body, extra, authorization) -> Reply:
        headers = Headers()
        for name, value in extra.items():
            headers.setRawHeaders(name, [value])
        if authorization:
            headers.setRawHeaders("authorization", [authorization])
        producer = FileBodyProducer(BytesIO(body)) if body is not None else None
        response = await self.agent.request(method.encode(), url.encode(), headers, producer)
        length = None if response.length is UNKNOWN_LENGTH else response.length
        return Reply(response.code, response.headers, await readBody(response), length)

    async def close(self) -> None:
        await self.pool.closeCachedConnections()


@dataclass
class Endpoint:
    store: Store
    service: FileService
    files: FileResource
    clock: Clock
    port: object


def start(tmp_path, *, tls: ssl.CertificateOptions | None = None) -> Endpoint:
    store = Store(tmp_path / "acs.sqlite")
    clock = Clock()
    root = resource.Resource()
    site = CwmpSite(root, max_body_bytes=1 << 20)
    if tls is None:
        port = reactor.listenTCP(0, site, interface="127.0.0.1")
    else:
        port = reactor.listenSSL(0, site, tls, interface="127.0.0.1")
    scheme = "https" if tls else "http"
    vault = TestVault()
    service = FileService(
        store, base_url=f"{scheme}://127.0.0.1:{port.getHost().port}/files", seal=vault.seal, open=vault.open,
        ttl=TTL, clock=clock,
    )
    files = FileResource(service, max_upload_bytes=UPLOAD_CAP)
    root.putChild(b"files", files)
    return Endpoint(store, service, files, clock, port)


async def stop(endpoint: Endpoint) -> None:
    await endpoint.port.stopListening()
    endpoint.store.close()


@pytest.fixture
def endpoint(tmp_path):
    e = start(tmp_path)
    yield e
    pytest_twisted.blockon(defer.ensureDeferred(stop(e)))


def client_for(offer) -> Client:
    return Client(offer.username, offer.password)


def status_of(endpoint: Endpoint, offer) -> str:
    return endpoint.store.transfers.get(offer.transfer_id).status


def basic(username: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{username}:{password}".encode()).decode()


# ---- the vendor configuration file, end to end -----------------------------------------------------------------------


class Phone:
    """The device side of the vendor configuration channel, as far as the file endpoint sees it: fetch the Download
    with its credentials, decrypt with the XML config password, refuse a file for another MAC, apply the P-values;
    Upload the configuration, encrypted the same way."""

    def __init__(self, mac: str, xml_password: str, pvalues: dict[str, str]) -> None:
        self.mac = mac
        self.xml_password = xml_password
        self.pvalues = dict(pvalues)

    async def download(self, rpc: m.Download) -> m.FaultStruct:
        client = Client(rpc.username, rpc.password)
        try:
            reply = await client.request("GET", rpc.url)
        finally:
            await client.close()
        if reply.status != 200:
            return m.FaultStruct(9010, f"HTTP {reply.status}")
        config = parse_config(decrypt_config(reply.body, self.xml_password))
        if config.mac not in (None, self.mac):
            return m.FaultStruct(9018, "file for another device")
        self.pvalues.update(config.pvalues)
        return m.FaultStruct(0)

    async def upload(self, rpc: m.Upload) -> m.FaultStruct:
        client = Client(rpc.username, rpc.password)
        body = encrypt_config(build_config(self.pvalues, mac=self.mac), self.xml_password)
        try:
            reply = await client.request("PUT", rpc.url, body)
        finally:
            await client.close()
        return m.FaultStruct(0) if reply.status == 200 else m.FaultStruct(9011, f"HTTP {reply.status}")


@pytest_twisted.ensureDeferred
async def test_vendor_config_file_end_to_end(endpoint):
    service, store = endpoint.service, endpoint.store
    phone = Phone(MAC, "xml-Pass-9", {"P276": "0", "P1650": "1", "P2": "old-admin", "P64": "UTC"})
    desired = {"P276": "1", "P1650": "0", "P2": "N3w-Admin!"}

    # The ACS makes the file for this device, encrypted with its XML config password, and offers it.
    blob = encrypt_config(build_config(desired, mac=MAC), phone.xml_password)
    offer = service.offer_download(DEVICE, blob, detail={"pvalues": sorted(desired)})
    download = offer.rpc()

    # The phone fetches it with the credentials from the Download RPC, decrypts, parses and applies it.
    assert await phone.download(download) == m.FaultStruct(0)
    assert phone.pvalues == {"P276": "1", "P1650": "0", "P2": "N3w-Admin!", "P64": "UTC"}
    assert status_of(endpoint, offer) == "served"

    # The TransferComplete names the transfer by CommandKey.
    done = service.transfer_complete(DEVICE, download.command_key, 0)
    assert (done.id, done.status) == (offer.transfer_id, "completed")

    # Verification: read the settings back through an Upload of the configuration file.
    uploads: list[tuple[int, bytes]] = []
    service.on_upload = lambda record, content: uploads.append((record.id, content))
    verify = service.offer_upload(DEVICE, detail={"verifies": offer.transfer_id})
    assert await phone.upload(verify.rpc()) == m.FaultStruct(0)
    [(upload_id, uploaded)] = uploads
    assert upload_id == verify.transfer_id
    read_back = parse_config(decrypt_config(uploaded, phone.xml_password))
    assert read_back.mac == MAC
    assert {name: read_back.pvalues[name] for name in desired} == desired
    assert service.transfer_complete(DEVICE, verify.command_key, 0).status == "completed"

    # The one-time URLs are spent.
    assert await phone.download(download) == m.FaultStruct(9010, "HTTP 410")
    assert await phone.upload(verify.rpc()) == m.FaultStruct(9011, "HTTP 410")
    actions = [entry.action for entry in reversed(store.audit.entries(device_id=DEVICE))]
    assert actions == [
        "file-offered", "file-served", "file-transfer-completed", "file-offered", "file-received",
        "file-transfer-completed", "file-refused", "file-refused",
    ]
    assert endpoint.files.counters["served"] == 1 and endpoint.files.counters["received"] == 1


# ---- downloads -------------------------------------------------------------------------------------------------------


@pytest_twisted.ensureDeferred
async def test_download_once_with_digest_then_gone(endpoint):
    content = build_config({"P276": "1"})
    offer = endpoint.service.offer_download(DEVICE, content)
    client = client_for(offer)
    try:
        first = await client.request("GET", offer.url)
        assert first.status == 200 and first.body == content
        assert first.header("content-type") == "application/xml"
        assert first.length == len(content)
        assert first.header("cache-control") == "no-store"

        second = await client.request("GET", offer.url)
        assert second.status == 410 and second.body == b"already served\n"
    finally:
        await client.close()
    assert endpoint.files.counters["http_410"] == 1
    [refused] = endpoint.store.audit.entries(device_id=DEVICE, action="file-refused")
    assert refused.reason == "already served" and refused.detail["remote_ip"] == "127.0.0.1"
    [served] = endpoint.store.audit.entries(device_id=DEVICE, action="file-served")
    assert served.detail["remote_ip"] == "127.0.0.1"


@pytest_twisted.ensureDeferred
async def test_encrypted_download_is_octet_stream(endpoint):
    blob = encrypt_config(build_config({"P276": "1"}), "pw")
    offer = endpoint.service.offer_download(DEVICE, blob)
    client = client_for(offer)
    try:
        reply = await client.request("GET", offer.url)
    finally:
        await client.close()
    assert (reply.status, reply.body, reply.header("content-type")) == (200, blob, "application/octet-stream")


@pytest.mark.parametrize("algorithm", ["MD5", "SHA-256"])
@pytest_twisted.ensureDeferred
async def test_both_digest_algorithms_are_accepted(endpoint, algorithm):
    offer = endpoint.service.offer_download(DEVICE, b"<x/>")
    client = Client()
    try:
        challenge = await client.request("GET", offer.url)
        assert challenge.status == 401
        # Answer only the challenge of the algorithm under test.
        offered = [value for value in challenge.headers.getRawHeaders("www-authenticate")
                   if value.endswith(f"algorithm={algorithm}")]
        authorization = DigestClient(offer.username, offer.password).authorization(
            "GET", "/files/" + offer.url.rsplit("/", 1)[1], offered
        )
        assert f"algorithm={algorithm}" in authorization
        reply = await client.request("GET", offer.url, authorization=authorization)
    finally:
        await client.close()
    assert (reply.status, reply.body) == (200, b"<x/>")


@pytest_twisted.ensureDeferred
async def test_expired_url_is_gone(endpoint):
    offer = endpoint.service.offer_download(DEVICE, b"<x/>")
    endpoint.clock.now += TTL
    client = client_for(offer)
    try:
        reply = await client.request("GET", offer.url)
    finally:
        await client.close()
    assert (reply.status, reply.body) == (410, b"expired\n")
    assert status_of(endpoint, offer) == "expired"
    assert endpoint.store.transfers.content(offer.transfer_id) is None


@pytest_twisted.ensureDeferred
async def test_wrong_credentials_are_refused_and_logged_once(endpoint):
    offer = endpoint.service.offer_download(DEVICE, b"<x/>")
    other = endpoint.service.offer_download(DEVICE, b"<y/>")
    wrong_password = Client(offer.username, offer.password + "x")
    other_transfer = Client(other.username, other.password)  # valid credentials, but for another URL
    try:
        with capture_logs() as logs:
            first = await wrong_password.request("GET", offer.url)
            second = await other_transfer.request("GET", offer.url)
    finally:
        await wrong_password.close()
        await other_transfer.close()
    assert (first.status, first.body) == (401, b"authentication failed: wrong credentials\n")
    assert (second.status, second.body) == (401, b"authentication failed: unknown user\n")
    assert first.headers.getRawHeaders("www-authenticate")
    refusals = [entry for entry in logs if entry["log_level"] == "warning"]
    assert [(r["status"], r["device_id"], r["reason"]) for r in refusals] == [
        (401, DEVICE, "authentication failed: wrong credentials"),
        (401, DEVICE, "authentication failed: unknown user"),
    ]
    assert endpoint.files.counters["auth_failed"] == 2
    assert len(endpoint.store.audit.entries(device_id=DEVICE, action="file-refused")) == 2

    # Failed attempts do not use the URL up.
    assert status_of(endpoint, offer) == "offered"
    right = client_for(offer)
    try:
        assert (await right.request("GET", offer.url)).status == 200
    finally:
        await right.close()


@pytest_twisted.ensureDeferred
async def test_basic_is_refused_over_plain_http(endpoint):
    offer = endpoint.service.offer_download(DEVICE, b"<x/>")
    client = Client()
    try:
        bare = await client.request("GET", offer.url)
        reply = await client.request("GET", offer.url, authorization=basic(offer.username, offer.password))
    finally:
        await client.close()
    assert not any(v.startswith("Basic") for v in bare.headers.getRawHeaders("www-authenticate"))
    assert (reply.status, reply.body) == (401, b"authentication failed: basic auth refused without tls\n")
    assert status_of(endpoint, offer) == "offered"


@pytest_twisted.ensureDeferred
async def test_unknown_and_malformed_tokens_are_not_found(endpoint):
    offer = endpoint.service.offer_download(DEVICE, b"<x/>")
    base = offer.url.rsplit("/", 1)[0]
    client = Client(offer.username, offer.password)
    try:
        replies = [
            await client.request("GET", f"{base}/{os.urandom(32).hex()[:43]}"),
            await client.request("GET", f"{base}/not-a-token"),
            await client.request("GET", f"{base}/"),
            await client.request("GET", f"{offer.url}/extra"),
        ]
    finally:
        await client.close()
    assert [(r.status, r.body) for r in replies] == [(404, b"no such file\n")] * 4
    assert not any(r.headers.hasHeader("www-authenticate") for r in replies)
    assert status_of(endpoint, offer) == "offered"


@pytest_twisted.ensureDeferred
async def test_head_does_not_use_the_url_up(endpoint):
    offer = endpoint.service.offer_download(DEVICE, b"<config/>")
    client = client_for(offer)
    try:
        head = await client.request("HEAD", offer.url)
        # (Twisted's client reports no length for a HEAD response, so only the headers it keeps are checked.)
        assert (head.status, head.header("content-type"), head.body) == (200, "application/xml", b"")
        get = await client.request("GET", offer.url)
        assert (get.status, get.body) == (200, b"<config/>")
        assert (await client.request("HEAD", offer.url)).status == 410
    finally:
        await client.close()


@pytest_twisted.ensureDeferred
async def test_methods_must_fit_the_direction(endpoint):
    download = endpoint.service.offer_download(DEVICE, b"<x/>")
    upload = endpoint.service.offer_upload(DEVICE)
    down, up = client_for(download), client_for(upload)
    try:
        put = await down.request("PUT", download.url, b"<x/>")
        get = await up.request("GET", upload.url)
        delete = await down.request("DELETE", download.url)
    finally:
        await down.close()
        await up.close()
    assert (put.status, put.header("allow")) == (405, "GET, HEAD")
    assert (get.status, get.header("allow")) == (405, "PUT, POST")
    assert (delete.status, delete.header("allow")) == (405, "GET, HEAD, PUT, POST")
    assert status_of(endpoint, download) == status_of(endpoint, upload) == "offered"


# ---- uploads ---------------------------------------------------------------------------------------------------------


UPLOADED = b"<gs_provision>\r\n\xff\x00\n--boundary-lookalike\r\n</gs_provision>"


def multipart(content: bytes, boundary: str = "XyZ0815") -> tuple[bytes, dict[str, str]]:
    body = (
        f"--{boundary}\r\n"
        'Content-Disposition: form-data; name="file"; filename="config.xml"\r\n'
        "Content-Type: application/octet-stream\r\n\r\n"
    ).encode() + content + f"\r\n--{boundary}--\r\n".encode()
    return body, {"content-type": f"multipart/form-data; boundary={boundary}"}


@pytest.mark.parametrize("how", ["PUT", "POST raw", "POST multipart"])
@pytest_twisted.ensureDeferred
async def test_upload_once(endpoint, how):
    received = []
    endpoint.service.on_upload = lambda record, content: received.append((record.id, record.status, content))
    offer = endpoint.service.offer_upload(DEVICE)
    method = how.split()[0]
    body, headers = multipart(UPLOADED) if how == "POST multipart" else (UPLOADED, {})
    client = client_for(offer)
    try:
        first = await client.request(method, offer.url, body, headers=headers)
        second = await client.request(method, offer.url, body, headers=headers)
    finally:
        await client.close()
    assert (first.status, first.body) == (200, b"received\n")
    assert received == [(offer.transfer_id, "received", UPLOADED)]
    assert (second.status, second.body) == (410, b"already received\n")
    assert endpoint.service.received_upload(offer.url.rsplit("/", 1)[1]) == UPLOADED
    record = endpoint.store.transfers.get(offer.transfer_id)
    assert (record.size, record.remote_ip) == (len(UPLOADED), "127.0.0.1")


@pytest_twisted.ensureDeferred
async def test_upload_size_cap(endpoint):
    offer = endpoint.service.offer_upload(DEVICE)
    client = client_for(offer)
    try:
        too_large = await client.request("PUT", offer.url, b"x" * (UPLOAD_CAP + 1))
        assert status_of(endpoint, offer) == "offered"
        bomb = await client.request(
            "PUT", offer.url, gzip.compress(b"x" * (UPLOAD_CAP + 1)), headers={"content-encoding": "gzip"}
        )
        assert status_of(endpoint, offer) == "offered"
        at_cap = await client.request("PUT", offer.url, b"x" * UPLOAD_CAP)
    finally:
        await client.close()
    assert too_large.status == 413 and bomb.status == 413
    assert at_cap.status == 200
    assert endpoint.files.counters["http_413"] == 2
    reasons = [entry.reason for entry in endpoint.store.audit.entries(device_id=DEVICE, action="file-refused")]
    assert len(reasons) == 2 and all("larger than" in reason for reason in reasons)


@pytest_twisted.ensureDeferred
async def test_multipart_with_two_files_is_refused(endpoint):
    offer = endpoint.service.offer_upload(DEVICE)
    one, headers = multipart(b"<a/>")
    two = one.replace(b"--XyZ0815--\r\n", b"") + multipart(b"<b/>")[0]
    client = client_for(offer)
    try:
        reply = await client.request("POST", offer.url, two, headers=headers)
    finally:
        await client.close()
    assert (reply.status, reply.body) == (400, b"multipart/form-data body holds 2 files, not one\n")
    assert status_of(endpoint, offer) == "offered"


# ---- TLS -------------------------------------------------------------------------------------------------------------


def self_signed() -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name).issuer_name(name).public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1)).not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), True)
        .sign(key, hashes.SHA256())
    )
    return cert, key


@pytest_twisted.ensureDeferred
async def test_basic_is_accepted_over_tls(tmp_path):
    cert, key = self_signed()
    endpoint = start(tmp_path, tls=ssl.CertificateOptions(privateKey=key, certificate=cert))
    policy = BrowserLikePolicyForHTTPS(
        trustRoot=ssl.Certificate.loadPEM(cert.public_bytes(serialization.Encoding.PEM))
    )
    offer = endpoint.service.offer_download(DEVICE, b"<x/>")
    client = Client(tls_policy=policy)
    try:
        bare = await client.request("GET", offer.url)
        wrong = await client.request("GET", offer.url, authorization=basic(offer.username, "nope"))
        right = await client.request("GET", offer.url, authorization=basic(offer.username, offer.password))
    finally:
        await client.close()
        await stop(endpoint)
    assert any(v.startswith("Basic") for v in bare.headers.getRawHeaders("www-authenticate"))
    assert wrong.status == 401
    assert (right.status, right.body) == (200, b"<x/>")
    assert offer.url.startswith("https://")
