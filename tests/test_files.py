"""The one-time file transfer service and its store (issue 5, vendor configuration channel), without sockets."""

from __future__ import annotations

import base64
import os

import pytest
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from acs.files import DOWNLOAD_VENDOR_CONFIG, UPLOAD_VENDOR_CONFIG, FileService, TransferError, TransferGone
from acs.store import Store
from cwmp_models import messages as m
from cwmp_models.gsconfig import build_config, encrypt_config
from cwmp_models.httpauth import ha1

DEVICE = "000B82-WP820-c074ad000001"
OTHER = "000B82-WP820-c074ad000002"
BASE = "https://acs.example.net:7548/files"
TTL = 600.0


class Clock:
    def __init__(self, now: float = 1_700_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


class TestVault:
    """AES-GCM bound to (device, name), with acs.vault.Vault's seal/open signatures."""

    __test__ = False

    def __init__(self) -> None:
        self._aead = AESGCM(AESGCM.generate_key(256))

    def seal(self, device_id: str, name: str, plaintext: str) -> bytes:
        nonce = os.urandom(12)
        return nonce + self._aead.encrypt(nonce, plaintext.encode(), f"{device_id}\0{name}".encode())

    def open(self, device_id: str, name: str, blob: bytes) -> str:
        return self._aead.decrypt(blob[:12], blob[12:], f"{device_id}\0{name}".encode()).decode()


@pytest.fixture
def clock():
    return Clock()


@pytest.fixture
def store(tmp_path):
    s = Store(tmp_path / "acs.sqlite")
    yield s
    s.close()


@pytest.fixture
def service(store, clock):
    vault = TestVault()
    return FileService(store, base_url=BASE, seal=vault.seal, open=vault.open, ttl=TTL, clock=clock)


def token_of(offer) -> str:
    return offer.url.rsplit("/", 1)[1]


CONFIG = build_config({"P276": "1", "P1650": "0"}, mac="c074ad000001")


# ---- offering -------------------------------------------------------------------------------------------------------


def test_offer_download_gives_everything_the_rpc_needs(service, store, clock):
    offer = service.offer_download(DEVICE, CONFIG, detail={"rules": ["web-https-only"]}, session_id="s1")
    assert offer.url.startswith(BASE + "/") and len(offer.url) <= 256
    assert offer.command_key.startswith("cfg-") and len(offer.command_key) <= 32
    assert offer.file_size == len(CONFIG) and offer.expires_at == clock.now + TTL
    assert offer.password not in repr(offer)

    rpc = offer.rpc(delay_seconds=5)
    assert isinstance(rpc, m.Download)
    assert (rpc.command_key, rpc.file_type, rpc.url, rpc.username, rpc.password, rpc.file_size, rpc.delay_seconds) == (
        offer.command_key, DOWNLOAD_VENDOR_CONFIG, offer.url, offer.username, offer.password, len(CONFIG), 5
    )

    record = store.transfers.get(offer.transfer_id)
    assert (record.status, record.direction, record.device_id, record.session_id) == (
        "offered", "download", DEVICE, "s1"
    )
    assert record.media_type == "application/xml" and record.size == len(CONFIG)
    assert record.detail == {"rules": ["web-https-only"]}
    [audit] = store.audit.entries(device_id=DEVICE, action="file-offered")
    assert audit.detail["command"] == offer.command_key and audit.detail["transfer"] == offer.transfer_id


def test_encrypted_content_is_served_as_octet_stream(service, store):
    offer = service.offer_download(DEVICE, encrypt_config(CONFIG, "xml-pass"))
    assert store.transfers.get(offer.transfer_id).media_type == "application/octet-stream"


def test_offer_upload_builds_an_upload_rpc(service, store):
    offer = service.offer_upload(DEVICE, command_key="verify-1")
    rpc = offer.rpc()
    assert isinstance(rpc, m.Upload)
    assert (rpc.command_key, rpc.file_type, rpc.url, rpc.username, rpc.password) == (
        "verify-1", UPLOAD_VENDOR_CONFIG, offer.url, offer.username, offer.password
    )
    assert offer.file_size == 0 and store.transfers.get(offer.transfer_id).direction == "upload"


def test_each_offer_has_its_own_url_credentials_and_command_key(service):
    offers = [service.offer_download(DEVICE, CONFIG) for _ in range(20)]
    for attribute in ("url", "username", "password", "command_key"):
        assert len({getattr(offer, attribute) for offer in offers}) == 20


@pytest.mark.parametrize(
    ("kwargs", "reason"),
    [
        ({"content": "text"}, "must be bytes"),
        ({"content": b""}, "empty"),
        ({"content": b"x" * ((1 << 20) + 1)}, "more than"),
        ({"command_key": "k" * 33}, "more than 32"),
        ({"command_key": ""}, "must not be empty"),
        ({"file_type": ""}, "file_type"),
    ],
)
def test_bad_offers_are_refused_with_a_reason(service, store, kwargs, reason):
    arguments = {"content": CONFIG} | kwargs
    content = arguments.pop("content")
    with pytest.raises(TransferError, match=reason):
        service.offer_download(DEVICE, content, **arguments)
    assert store.transfers.for_device(DEVICE) == []


@pytest.mark.parametrize(
    ("kwargs", "reason"),
    [
        ({"base_url": "ftp://acs/files"}, "http"),
        ({"base_url": "https://acs/files?x=1"}, "query"),
        ({"base_url": "https://acs/" + "f" * 220}, "too long"),
        ({"ttl": 0}, "ttl"),
    ],
)
def test_bad_configuration_is_refused(store, kwargs, reason):
    vault = TestVault()
    arguments = {"base_url": BASE} | kwargs
    with pytest.raises(TransferError, match=reason):
        FileService(store, seal=vault.seal, open=vault.open, **arguments)


def test_command_key_is_unique_per_device_while_active(service):
    first = service.offer_download(DEVICE, CONFIG, command_key="hardening-7")
    with pytest.raises(TransferError, match="already used"):
        service.offer_download(DEVICE, CONFIG, command_key="hardening-7")
    service.offer_download(OTHER, CONFIG, command_key="hardening-7")  # another device: no clash

    service.serve(service.find(token_of(first)), remote_ip="192.0.2.7")
    service.transfer_complete(DEVICE, "hardening-7", 0)
    again = service.offer_download(DEVICE, CONFIG, command_key="hardening-7")  # the first one is over
    assert service.transfer_complete(DEVICE, "hardening-7", 9010, "x").id == again.transfer_id


# ---- serving --------------------------------------------------------------------------------------------------------


def test_download_is_served_once_and_leaves_the_store(service, store, clock):
    offer = service.offer_download(DEVICE, CONFIG)
    record = service.find(token_of(offer))
    assert record.id == offer.transfer_id
    assert store.transfers.content(record.id) is not None

    clock.now += 3
    assert service.serve(record, remote_ip="192.0.2.7") == CONFIG
    served = store.transfers.get(record.id)
    assert (served.status, served.served_at, served.remote_ip) == ("served", clock.now, "192.0.2.7")
    assert store.transfers.content(record.id) is None

    with pytest.raises(TransferGone, match="already served"):
        service.serve(record, remote_ip="192.0.2.8")
    [refused] = store.audit.entries(device_id=DEVICE, action="file-refused")
    assert refused.reason == "already served" and refused.detail["remote_ip"] == "192.0.2.8"
    [audit] = store.audit.entries(device_id=DEVICE, action="file-served")
    assert audit.detail["remote_ip"] == "192.0.2.7" and audit.actor == "remote:192.0.2.7"


def test_expired_url_is_refused_and_its_content_dropped(service, store, clock):
    offer = service.offer_download(DEVICE, CONFIG)
    record = service.find(token_of(offer))
    clock.now += TTL - 1
    assert service.pending_for(DEVICE)[0].status == "offered"
    clock.now += 1
    with pytest.raises(TransferGone, match="expired"):
        service.serve(record, remote_ip="192.0.2.7")
    expired = store.transfers.get(record.id)
    assert expired.status == "expired" and store.transfers.content(record.id) is None
    assert [e.action for e in store.audit.entries(device_id=DEVICE)][:2] == ["file-refused", "file-expired"]
    with pytest.raises(TransferGone, match="expired"):
        service.serve(record, remote_ip="192.0.2.7")


def test_expire_housekeeping_touches_only_unused_offers_past_their_time(service, store, clock):
    unused = service.offer_download(DEVICE, CONFIG)
    served = service.offer_download(DEVICE, CONFIG)
    service.serve(service.find(token_of(served)), remote_ip="192.0.2.7")
    clock.now += 10
    later = service.offer_upload(DEVICE)
    assert service.expire(clock.now + TTL - 5) == [store.transfers.get(unused.transfer_id)]
    assert store.transfers.get(unused.transfer_id).status == "expired"
    assert store.transfers.get(served.transfer_id).status == "served"  # awaits its TransferComplete
    assert store.transfers.get(later.transfer_id).status == "offered"
    assert [r.id for r in service.pending_for(DEVICE)] == [served.transfer_id, later.transfer_id]
    assert len(store.audit.entries(device_id=DEVICE, action="file-expired")) == 1


def test_content_that_does_not_open_leaves_the_offer_intact(service, store):
    first = service.offer_download(DEVICE, CONFIG)
    second = service.offer_download(DEVICE, b"<other/>")
    # Content moved to another row does not open: the seal is bound to its transfer.
    store.transfers.set_content(first.transfer_id, store.transfers.content(second.transfer_id))
    with pytest.raises(InvalidTag):
        service.serve(service.find(token_of(first)), remote_ip="192.0.2.7")
    assert store.transfers.get(first.transfer_id).status == "offered"
    assert store.audit.entries(device_id=DEVICE, action="file-served") == []


def test_lookup_knows_only_the_transfers_own_username(service):
    offer = service.offer_download(DEVICE, CONFIG)
    other = service.offer_download(DEVICE, CONFIG)
    lookup = service.lookup_ha1(service.find(token_of(offer)))
    for algorithm in ("MD5", "SHA-256"):
        assert lookup(offer.username, algorithm) == ha1(offer.username, service.realm, offer.password, algorithm)
        assert lookup(other.username, algorithm) is None
    assert lookup(offer.username, "SHA-512-256") is None


@pytest.mark.parametrize("token", ["", "short", "A" * 43, "!" * 43, "A" * 44, None])
def test_unknown_or_malformed_tokens_find_nothing(service, token):
    service.offer_download(DEVICE, CONFIG)
    assert service.find(token) is None


# ---- uploads --------------------------------------------------------------------------------------------------------


def test_upload_is_received_once_and_handed_to_the_hook(service, store, clock):
    seen = []
    service.on_upload = lambda record, content: seen.append((record, content))
    offer = service.offer_upload(DEVICE, command_key="verify-1")
    record = service.find(token_of(offer))
    content = b"<gs_provision>\r\n\xff\x00</gs_provision>"

    received = service.receive(record, content, remote_ip="192.0.2.7")
    assert received.status == "received" and received.size == len(content)
    assert seen == [(received, content)]
    assert service.received_upload(token_of(offer)) == content
    with pytest.raises(TransferGone, match="already received"):
        service.receive(record, b"again", remote_ip="192.0.2.7")
    assert len(seen) == 1

    done = service.transfer_complete(DEVICE, "verify-1", 0)
    assert done.status == "completed"
    assert service.received_upload(token_of(offer)) == content  # still there for the verification


def test_a_failing_upload_hook_does_not_lose_the_upload(service, store):
    def broken(record, content):
        raise ValueError("cannot parse")

    service.on_upload = broken
    offer = service.offer_upload(DEVICE)
    assert service.receive(service.find(token_of(offer)), b"<x/>", remote_ip=None).status == "received"
    assert service.received_upload(token_of(offer)) == b"<x/>"


def test_received_upload_refuses_what_is_not_an_upload(service):
    download = service.offer_download(DEVICE, CONFIG)
    upload = service.offer_upload(DEVICE)
    with pytest.raises(TransferError, match="no upload"):
        service.received_upload(token_of(download))
    with pytest.raises(TransferError, match="nothing was uploaded"):
        service.received_upload(token_of(upload))


def test_directions_are_not_interchangeable(service):
    download = service.find(token_of(service.offer_download(DEVICE, CONFIG)))
    upload = service.find(token_of(service.offer_upload(DEVICE)))
    with pytest.raises(TransferError, match="not an upload"):
        service.receive(download, b"<x/>", remote_ip=None)
    with pytest.raises(TransferError, match="not a download"):
        service.serve(upload, remote_ip=None)


# ---- TransferComplete -----------------------------------------------------------------------------------------------


def test_transfer_complete_matches_by_device_and_command_key(service, store, clock):
    offer = service.offer_download(DEVICE, CONFIG, command_key="hardening-7")
    service.serve(service.find(token_of(offer)), remote_ip="192.0.2.7")
    assert service.transfer_complete(OTHER, "hardening-7", 0) is None
    assert service.transfer_complete(DEVICE, "other-key", 0) is None

    clock.now += 60
    done = service.transfer_complete(DEVICE, "hardening-7", 0, session_id="s2")
    assert (done.id, done.status, done.completed_at, done.fault_code) == (offer.transfer_id, "completed", clock.now, 0)
    assert service.pending_for(DEVICE) == []
    [audit] = store.audit.entries(device_id=DEVICE, action="file-transfer-completed")
    assert audit.detail["session"] == "s2"

    # A repeated TransferComplete (its response was lost) changes nothing.
    clock.now += 60
    assert service.transfer_complete(DEVICE, "hardening-7", 9010, "late") == done


def test_transfer_complete_with_a_fault_fails_the_transfer(service):
    offer = service.offer_download(DEVICE, CONFIG)
    service.serve(service.find(token_of(offer)), remote_ip="192.0.2.7")
    failed = service.transfer_complete(DEVICE, offer.command_key, 9018, "file corrupted")
    assert (failed.status, failed.fault_code, failed.fault_text) == ("failed", 9018, "file corrupted")


def test_success_for_a_file_never_fetched_is_a_failure(service):
    offer = service.offer_download(DEVICE, CONFIG)
    failed = service.transfer_complete(DEVICE, offer.command_key, 0)
    assert failed.status == "failed" and "never went through" in failed.fault_text
    with pytest.raises(TransferGone, match="over"):
        service.serve(service.find(token_of(offer)), remote_ip="192.0.2.7")


def test_a_failed_fetch_reported_after_expiry_is_recorded(service, clock):
    offer = service.offer_download(DEVICE, CONFIG)
    clock.now += TTL
    service.expire()
    failed = service.transfer_complete(DEVICE, offer.command_key, 9010, "download failed")
    assert (failed.status, failed.fault_code) == ("failed", 9010)


# ---- secrets at rest ------------------------------------------------------------------------------------------------


def test_nothing_secret_is_at_rest(tmp_path, clock):
    store = Store(tmp_path / "acs.sqlite")
    vault = TestVault()
    service = FileService(store, base_url=BASE, seal=vault.seal, open=vault.open, clock=clock)
    admin_password = "Adm1n-Secret-4711"
    download_content = build_config({"P2": admin_password, "P276": "1"})
    upload_content = build_config({"P2": "Uploaded-Secret-0815"})

    download = service.offer_download(DEVICE, download_content)
    upload = service.offer_upload(DEVICE)
    service.receive(service.find(token_of(upload)), upload_content, remote_ip="192.0.2.7")
    pending = service.offer_download(DEVICE, download_content)  # never served: its content stays sealed at rest

    secrets = {
        "download password": download.password.encode(),
        "upload password": upload.password.encode(),
        "pending password": pending.password.encode(),
        "download token": token_of(download).encode(),
        "pending token": token_of(pending).encode(),
        "admin password": admin_password.encode(),
        "uploaded password": b"Uploaded-Secret-0815",
        "config base64": base64.b64encode(download_content)[:40],
    }

    def at_rest() -> bytes:
        return b"".join(path.read_bytes() for path in sorted(tmp_path.iterdir()) if path.is_file())

    for moment in ("open", "closed"):
        data = at_rest()
        # The scan sees the rows: what is stored in the clear is found.
        assert pending.username.encode() in data and pending.command_key.encode() in data
        assert [name for name, secret in secrets.items() if secret in data] == [], moment
        if moment == "open":
            store.close()
