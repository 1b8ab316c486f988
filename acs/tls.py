"""TLS for the ACS: the server context, certificates for tests and small sites, and a client policy.

Server side (``server_context_factory``): TLS 1.2 or 1.3 only, forward-secret AEAD suites preferred (the server
chooses), and TLS_RSA_WITH_AES_128_CBC_SHA (OpenSSL's ``AES128-SHA``) still offered: TR-069 mandates that one TLS 1.2
suite and some embedded stacks offer nothing else (FIELD-NOTES, "Authentication and TLS"). The certificate should be
RSA for the same reason. The result is a Twisted ``CertificateOptions``: an ``IOpenSSLServerConnectionCreator`` for
``TLSMemoryBIOFactory`` (TLS layered on a socket-activated listener) and a context factory for ``listenSSL`` and
``SSL4ServerEndpoint``. The server-side session cache is on, so a phone reconnecting within minutes (every CWMP
session is a new connection) skips the RSA operation; session tickets stay off (their key would never rotate).

Certificates (``generate_self_signed``, ``generate_ca_and_server``): RSA 2048, SHA-256, names in the
subjectAltName (DNS names and IP addresses) and the first one also as the common name for stacks that only read
that, validity starting a day back for phones whose clock is not yet set. Private keys are written mode 0600.
"""

from __future__ import annotations

import datetime
import errno
import ipaddress
import os
import re
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, NamedTuple

from cryptography import x509
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.asymmetric.types import PrivateKeyTypes, PublicKeyTypes
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from OpenSSL import crypto
from twisted.internet import ssl

if TYPE_CHECKING:
    from twisted.web.iweb import IPolicyForHTTPS

# Server preference order. Forward-secret AEAD first; ECDHE with CBC for older stacks; then RSA key exchange, only
# AES-GCM and the TR-069 suite. TLS 1.3 suites are configured separately by OpenSSL (its defaults are all AEAD).
SERVER_CIPHERS = (
    "ECDHE+AESGCM:ECDHE+CHACHA20:ECDHE+AES:RSA+AESGCM:AES128-SHA:"
    "!aNULL:!eNULL:!MD5:!DSS:!3DES:!RC4:!PSK:!SRP:!CAMELLIA:!ARIA:!SEED:!AESCCM8"
)
_MIN_VERSIONS = {"1.2": ssl.TLSVersion.TLSv1_2, "1.3": ssl.TLSVersion.TLSv1_3}
_DNS_LABEL = re.compile(r"(?!-)[A-Za-z0-9-]{1,63}(?<!-)")
# Phones may check the certificate before NTP has set their clock; start validity a day back.
_BACKDATE = datetime.timedelta(days=1)


class TlsError(ValueError):
    """A certificate or key cannot be used. The message names the file, never key material."""


class CaAndServer(NamedTuple):
    ca_cert: Path
    ca_key: Path
    cert: Path
    key: Path


# -- server --------------------------------------------------------------------------------------------------------


def server_context_factory(
    cert_path: str | os.PathLike, key_path: str | os.PathLike, *, min_version: str = "1.2"
) -> ssl.CertificateOptions:
    """Twisted TLS options for the CWMP listeners, from a PEM certificate (leaf first, then its chain) and key."""
    if min_version not in _MIN_VERSIONS:
        raise TlsError(f"TLS minimum version must be one of {', '.join(_MIN_VERSIONS)}, got {min_version!r}")
    chain = load_certificates(cert_path)
    key = load_private_key(key_path)
    if _public_der(chain[0].public_key()) != _public_der(key.public_key()):
        raise TlsError(f"key file {key_path} does not match the certificate in {cert_path}")
    # cryptography objects, not pyOpenSSL's PKey/X509: pyOpenSSL deprecates those, and Twisted passes them through.
    return ssl.CertificateOptions(
        privateKey=key,
        certificate=chain[0],
        extraCertChain=chain[1:],
        raiseMinimumTo=_MIN_VERSIONS[min_version],
        acceptableCiphers=ssl.AcceptableCiphers.fromOpenSSLCipherString(SERVER_CIPHERS),
        enableSessions=True,
    )


def load_certificates(path: str | os.PathLike) -> list[x509.Certificate]:
    """All certificates of a PEM file, in file order."""
    data = _read(path, "certificate")
    try:
        return x509.load_pem_x509_certificates(data)
    except ValueError:
        raise TlsError(f"certificate file {path}: no PEM certificate in it") from None


def load_private_key(path: str | os.PathLike) -> PrivateKeyTypes:
    data = _read(path, "key")
    try:
        return serialization.load_pem_private_key(data, password=None)
    except TypeError:
        raise TlsError(
            f"key file {path}: the key is encrypted; give it unencrypted and protect the file instead "
            "(mode 0600, or systemd LoadCredential=)"
        ) from None
    except (ValueError, UnsupportedAlgorithm):
        raise TlsError(f"key file {path}: not a PEM private key") from None


def _read(path: str | os.PathLike, what: str) -> bytes:
    try:
        return Path(path).read_bytes()
    except OSError as exc:
        raise TlsError(f"{what} file {path}: {exc.strerror or exc}") from None


def _public_der(public_key: PublicKeyTypes) -> bytes:
    return public_key.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)


# -- client --------------------------------------------------------------------------------------------------------


def client_context(ca_path: str | os.PathLike | None = None) -> IPolicyForHTTPS:
    """An ``IPolicyForHTTPS`` for ``twisted.web.client.Agent``: verify servers against the CA certificates in
    ``ca_path`` (PEM), or against the platform's trust store when None. Host names and IPs are checked."""
    from twisted.web.client import BrowserLikePolicyForHTTPS

    if ca_path is None:
        return BrowserLikePolicyForHTTPS()
    authorities = [ssl.Certificate(crypto.X509.from_cryptography(cert)) for cert in load_certificates(ca_path)]
    return BrowserLikePolicyForHTTPS(trustRoot=ssl.trustRootFromCertificates(authorities))


# -- certificate generation ----------------------------------------------------------------------------------------


def generate_self_signed(
    hostnames: Sequence[str], out_dir: str | os.PathLike, *, days: int = 825, overwrite: bool = False
) -> tuple[Path, Path]:
    """Write ``tls.crt`` and ``tls.key`` (0600) in ``out_dir``: a self-signed server certificate for ``hostnames``."""
    names = _subject_alt_names(hostnames)
    out = Path(out_dir)
    cert_path, key_path = out / "tls.crt", out / "tls.key"
    _refuse_existing([cert_path, key_path], overwrite)
    key = _new_key()
    subject = _name(hostnames[0])
    cert = _server_certificate(subject, key, issuer=subject, issuer_key=key, names=names, days=days)
    out.mkdir(parents=True, exist_ok=True)
    _write(key_path, _key_pem(key), private=True)
    _write(cert_path, cert.public_bytes(serialization.Encoding.PEM), private=False)
    return cert_path, key_path


def generate_ca_and_server(
    hostnames: Sequence[str],
    out_dir: str | os.PathLike,
    *,
    days: int = 825,
    ca_days: int = 3650,
    overwrite: bool = False,
) -> CaAndServer:
    """Write a small CA (``ca.crt``, ``ca.key``) and a server certificate it signed (``tls.crt``, ``tls.key``).

    Clients that validate the ACS (the simulator, real phones given ``ca.crt``) trust the CA, not the server cert.
    """
    names = _subject_alt_names(hostnames)
    out = Path(out_dir)
    paths = CaAndServer(out / "ca.crt", out / "ca.key", out / "tls.crt", out / "tls.key")
    _refuse_existing(list(paths), overwrite)
    ca_key, server_key = _new_key(), _new_key()
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, f"wp820-acs CA for {hostnames[0]}")])
    now = datetime.datetime.now(datetime.timezone.utc)
    ca_cert = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - _BACKDATE)
        .not_valid_after(now + datetime.timedelta(days=ca_days))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(_key_usage(cert_sign=True), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    server_cert = _server_certificate(
        _name(hostnames[0]), server_key, issuer=ca_name, issuer_key=ca_key, names=names, days=days
    )
    out.mkdir(parents=True, exist_ok=True)
    _write(paths.ca_key, _key_pem(ca_key), private=True)
    _write(paths.key, _key_pem(server_key), private=True)
    _write(paths.ca_cert, ca_cert.public_bytes(serialization.Encoding.PEM), private=False)
    _write(paths.cert, server_cert.public_bytes(serialization.Encoding.PEM), private=False)
    return paths


def _subject_alt_names(hostnames: Sequence[str]) -> list[x509.GeneralName]:
    if not hostnames:
        raise TlsError("at least one host name or IP address is needed")
    names: list[x509.GeneralName] = []
    for hostname in hostnames:
        try:
            names.append(x509.IPAddress(ipaddress.ip_address(hostname)))
        except ValueError:
            labels = hostname.rstrip(".").split(".")
            if labels[0] == "*" and len(labels) > 2:
                labels = labels[1:]
            if not all(_DNS_LABEL.fullmatch(label) for label in labels):
                raise TlsError(f"not a host name or IP address: {hostname!r}") from None
            names.append(x509.DNSName(hostname.rstrip(".").lower()))
    return names


def _name(common_name: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


def _new_key() -> rsa.RSAPrivateKey:
    # RSA rather than ECDSA: embedded phones do RSA, and TLS_RSA_WITH_AES_128_CBC_SHA needs an RSA key.
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def _key_usage(*, cert_sign: bool) -> x509.KeyUsage:
    return x509.KeyUsage(
        digital_signature=not cert_sign,
        key_encipherment=not cert_sign,  # RSA key exchange (the TR-069 suite) encrypts to the server key
        content_commitment=False,
        data_encipherment=False,
        key_agreement=False,
        key_cert_sign=cert_sign,
        crl_sign=cert_sign,
        encipher_only=False,
        decipher_only=False,
    )


def _server_certificate(
    subject: x509.Name,
    key: rsa.RSAPrivateKey,
    *,
    issuer: x509.Name,
    issuer_key: rsa.RSAPrivateKey,
    names: list[x509.GeneralName],
    days: int,
) -> x509.Certificate:
    if days < 1:
        raise TlsError(f"validity must be at least 1 day, got {days}")
    now = datetime.datetime.now(datetime.timezone.utc)
    return (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - _BACKDATE)
        .not_valid_after(now + datetime.timedelta(days=days))
        .add_extension(x509.SubjectAlternativeName(names), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(_key_usage(cert_sign=False), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer_key.public_key()), critical=False)
        .sign(issuer_key, hashes.SHA256())
    )


def _key_pem(key: rsa.RSAPrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


def _refuse_existing(paths: list[Path], overwrite: bool) -> None:
    # Checked for all files before any is written, so a refusal leaves no half-written set.
    for path in paths:
        if not overwrite and path.exists():
            raise FileExistsError(errno.EEXIST, os.strerror(errno.EEXIST), str(path))


def _write(path: Path, data: bytes, *, private: bool) -> None:
    """Write through a temporary file and rename, so the file never exists with wider permissions or half content."""
    temporary = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600 if private else 0o644)
    try:
        with os.fdopen(descriptor, "wb") as handle:
            handle.write(data)
        os.replace(temporary, path)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise

