"""acs.tls: certificate generation, then real TLS handshakes on 127.0.0.1 against the server context."""

from __future__ import annotations

import socket
import ssl
import stat
import warnings
from pathlib import Path

import pytest
import pytest_twisted
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from twisted.internet import reactor, threads
from twisted.internet.protocol import Factory, Protocol
from twisted.protocols.tls import TLSMemoryBIOFactory
from twisted.web.client import Agent, ResponseNeverReceived, readBody
from twisted.web.resource import Resource
from twisted.web.server import Request, Site

from acs.tls import (
    CaAndServer,
    TlsError,
    client_context,
    generate_ca_and_server,
    generate_self_signed,
    server_context_factory,
)

HOSTS = ["acs.example.net", "127.0.0.1", "::1"]


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> CaAndServer:
    return generate_ca_and_server(HOSTS, tmp_path_factory.mktemp("pki"))


@pytest.fixture(scope="module")
def self_signed(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    return generate_self_signed(["acs.example.net", "192.0.2.10"], tmp_path_factory.mktemp("self"))


def _certificate(path: Path) -> x509.Certificate:
    return x509.load_pem_x509_certificate(path.read_bytes())


# -- generation ----------------------------------------------------------------------------------------------------


def test_server_certificate_names_every_host_and_is_signed_by_the_ca(pki: CaAndServer) -> None:
    cert, ca = _certificate(pki.cert), _certificate(pki.ca_cert)
    names = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert names.get_values_for_type(x509.DNSName) == ["acs.example.net"]
    assert [str(ip) for ip in names.get_values_for_type(x509.IPAddress)] == ["127.0.0.1", "::1"]
    assert cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == "acs.example.net"
    cert.verify_directly_issued_by(ca)
    assert cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca is False
    assert ca.extensions.get_extension_for_class(x509.BasicConstraints).value.ca is True
    usage = cert.extensions.get_extension_for_class(x509.KeyUsage).value
    assert usage.key_encipherment and usage.digital_signature and not usage.key_cert_sign
    eku = cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert list(eku) == [ExtendedKeyUsageOID.SERVER_AUTH]
    assert cert.not_valid_before_utc < ca.not_valid_after_utc and cert.not_valid_after_utc < ca.not_valid_after_utc


def test_keys_are_rsa_2048_and_private_to_the_owner(pki: CaAndServer, self_signed: tuple[Path, Path]) -> None:
    for key_path in (pki.key, pki.ca_key, self_signed[1]):
        key = serialization.load_pem_private_key(key_path.read_bytes(), password=None)
        assert isinstance(key, rsa.RSAPrivateKey) and key.key_size == 2048
        assert stat.S_IMODE(key_path.stat().st_mode) == 0o600
    assert stat.S_IMODE(pki.cert.stat().st_mode) & 0o044  # certificates are public


def test_self_signed_is_its_own_issuer(self_signed: tuple[Path, Path]) -> None:
    cert = _certificate(self_signed[0])
    assert cert.issuer == cert.subject
    cert.verify_directly_issued_by(cert)
    names = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert [str(ip) for ip in names.get_values_for_type(x509.IPAddress)] == ["192.0.2.10"]


def test_existing_files_are_not_overwritten_unless_asked(pki: CaAndServer, tmp_path: Path) -> None:
    (tmp_path / "tls.key").write_text("keep me")
    with pytest.raises(FileExistsError):
        generate_ca_and_server(["acs.example.net"], tmp_path)
    assert (tmp_path / "tls.key").read_text() == "keep me" and not (tmp_path / "ca.key").exists()
    cert_path, key_path = generate_self_signed(["acs.example.net"], tmp_path, overwrite=True)
    assert key_path.read_bytes().startswith(b"-----BEGIN PRIVATE KEY-----")
    assert stat.S_IMODE(key_path.stat().st_mode) == 0o600
    assert sorted(p.name for p in tmp_path.iterdir()) == ["tls.crt", "tls.key"]  # no temporary files left


@pytest.mark.parametrize("hosts", [[], ["bad host"], ["-acs.example.net"], ["acs..example.net"]])
def test_bad_host_names_are_refused(tmp_path: Path, hosts: list[str]) -> None:
    with pytest.raises(TlsError):
        generate_self_signed(hosts, tmp_path)
    assert list(tmp_path.iterdir()) == []


# -- loading -------------------------------------------------------------------------------------------------------


def test_mismatched_key_is_refused(pki: CaAndServer, self_signed: tuple[Path, Path]) -> None:
    with pytest.raises(TlsError, match="does not match the certificate"):
        server_context_factory(pki.cert, self_signed[1])


def test_encrypted_key_is_refused_with_a_hint(pki: CaAndServer, tmp_path: Path) -> None:
    key = serialization.load_pem_private_key(pki.key.read_bytes(), password=None)
    encrypted = tmp_path / "enc.key"
    encrypted.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.BestAvailableEncryption(b"passphrase"),
        )
    )
    with pytest.raises(TlsError, match="encrypted"):
        server_context_factory(pki.cert, encrypted)


def test_unusable_files_are_named_in_the_error(pki: CaAndServer, tmp_path: Path) -> None:
    junk = tmp_path / "junk.pem"
    junk.write_text("not pem")
    with pytest.raises(TlsError, match=f"certificate file {junk}: no PEM certificate"):
        server_context_factory(junk, pki.key)
    with pytest.raises(TlsError, match=f"key file {junk}: not a PEM private key"):
        server_context_factory(pki.cert, junk)
    with pytest.raises(TlsError, match="No such file"):
        server_context_factory(tmp_path / "missing.crt", pki.key)
    with pytest.raises(TlsError, match="minimum version"):
        server_context_factory(pki.cert, pki.key, min_version="1.1")


# -- handshakes over loopback --------------------------------------------------------------------------------------


class _Hello(Protocol):
    def connectionMade(self) -> None:
        self.transport.write(b"hello")


def _client(ca: Path | None, *, version: ssl.TLSVersion | None = None, ciphers: str | None = None) -> ssl.SSLContext:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    if ca is None:
        context.check_hostname, context.verify_mode = False, ssl.CERT_NONE
    else:
        context.load_verify_locations(cafile=str(ca))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # TLS 1.1 is deprecated: that is the point
        if version is not None:
            context.minimum_version = context.maximum_version = version
    if ciphers is not None:
        context.set_ciphers(ciphers)
    return context


def _handshake(port: int, context: ssl.SSLContext) -> tuple[str, str, bytes] | ssl.SSLError:
    """Runs in a thread: connect, handshake, read the server's greeting. Returns what was negotiated or the error."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as raw:
        try:
            with context.wrap_socket(raw, server_hostname="acs.example.net") as tls:
                return tls.version() or "", tls.cipher()[0], tls.recv(5)
        except ssl.SSLError as exc:
            return exc


async def _against_server(pki: CaAndServer, context: ssl.SSLContext, min_version: str = "1.2"):
    # TLSMemoryBIOFactory is how TLS gets layered on a socket-activated listener: the creator path, not listenSSL.
    creator = server_context_factory(pki.cert, pki.key, min_version=min_version)
    port = reactor.listenTCP(0, TLSMemoryBIOFactory(creator, False, Factory.forProtocol(_Hello)), interface="127.0.0.1")
    try:
        return await threads.deferToThread(_handshake, port.getHost().port, context)
    finally:
        await port.stopListening()


@pytest_twisted.ensureDeferred
async def test_a_modern_client_gets_tls13_and_verifies_the_certificate(pki: CaAndServer) -> None:
    assert await _against_server(pki, _client(pki.ca_cert)) == ("TLSv1.3", "TLS_AES_256_GCM_SHA384", b"hello")


@pytest_twisted.ensureDeferred
async def test_a_tls12_client_gets_forward_secret_aead(pki: CaAndServer) -> None:
    result = await _against_server(pki, _client(pki.ca_cert, version=ssl.TLSVersion.TLSv1_2))
    assert result == ("TLSv1.2", "ECDHE-RSA-AES256-GCM-SHA384", b"hello")


@pytest_twisted.ensureDeferred
async def test_a_client_offering_only_the_tr069_suite_completes_the_handshake(pki: CaAndServer) -> None:
    client = _client(pki.ca_cert, version=ssl.TLSVersion.TLSv1_2, ciphers="AES128-SHA")
    assert await _against_server(pki, client) == ("TLSv1.2", "AES128-SHA", b"hello")


@pytest_twisted.ensureDeferred
async def test_a_tls11_client_is_refused_by_the_server(pki: CaAndServer) -> None:
    # SECLEVEL=0 lets this client offer TLS 1.1; the protocol_version alert proves the refusal came from the server.
    client = _client(None, version=ssl.TLSVersion.TLSv1_1, ciphers="ALL:@SECLEVEL=0")
    result = await _against_server(pki, client)
    assert isinstance(result, ssl.SSLError) and result.reason == "TLSV1_ALERT_PROTOCOL_VERSION"


@pytest_twisted.ensureDeferred
async def test_minimum_tls13_refuses_tls12(pki: CaAndServer) -> None:
    refused = await _against_server(pki, _client(pki.ca_cert, version=ssl.TLSVersion.TLSv1_2), "1.3")
    assert isinstance(refused, ssl.SSLError) and refused.reason == "TLSV1_ALERT_PROTOCOL_VERSION"
    accepted = await _against_server(pki, _client(pki.ca_cert), "1.3")
    assert accepted[0] == "TLSv1.3"


# -- our own outbound HTTPS ----------------------------------------------------------------------------------------


class _Ok(Resource):
    isLeaf = True

    def render_GET(self, request: Request) -> bytes:
        return b"ok"


async def _get(pki: CaAndServer, ca: Path) -> bytes:
    creator = server_context_factory(pki.cert, pki.key)
    port = reactor.listenSSL(0, Site(_Ok()), creator, interface="127.0.0.1")
    try:
        agent = Agent(reactor, contextFactory=client_context(ca))
        response = await agent.request(b"GET", f"https://127.0.0.1:{port.getHost().port}/".encode())
        return await readBody(response)
    finally:
        await port.stopListening()


@pytest_twisted.ensureDeferred
async def test_client_context_trusts_the_given_ca(pki: CaAndServer) -> None:
    assert await _get(pki, pki.ca_cert) == b"ok"


@pytest_twisted.ensureDeferred
async def test_client_context_refuses_a_server_the_ca_did_not_sign(
    pki: CaAndServer, self_signed: tuple[Path, Path]
) -> None:
    with pytest.raises(ResponseNeverReceived):
        await _get(pki, self_signed[0])
