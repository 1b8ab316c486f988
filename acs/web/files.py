"""The file endpoint devices fetch Download files from and send Upload files to: a thin twisted.web adapter around
acs.files.FileService, mounted by the server at ``/files/``.

Per request: find the transfer by the URL token (404 for anything unknown, so a token's existence is never revealed
to whoever lacks it) -> authenticate with the transfer's own credentials (Digest MD5/SHA-256; Basic only over TLS) ->
check the method fits the transfer's direction -> serve the download (GET) or store the upload (PUT, or POST with a
raw or multipart/form-data body) once, before expiry; a second use or a late one gets 410 Gone.

Every refusal is an HTTP status with a short plain-text reason, logged once with the device (when the token named
one) and the reason; refusals on a known URL are audited too. A bare request without credentials is the first leg of
Digest, answered with a challenge and not logged as a refusal. No traceback ever reaches a device.

The body of a PUT/POST is buffered by the Site before this resource sees it, bounded by the Site's
``max_body_bytes`` (acs.web.limits.LimitedRequest refuses more with 413 before buffering); the upload cap here applies
on top of it, after decompression.
"""

from __future__ import annotations

import email.parser
import email.policy
import time
from typing import Callable

import structlog
from twisted.web import resource, server

from cwmp_models.httpauth_server import DigestVerifier

from ..files import MAX_FILE_BYTES, FileService, TransferGone
from ..store.transfers import TransferRecord
from .limits import BodyError, read_body

_METHODS = (b"GET", b"HEAD", b"PUT", b"POST")
_ALLOWED = {"download": (b"GET", b"HEAD"), "upload": (b"PUT", b"POST")}


class MultipartError(ValueError):
    """A multipart/form-data upload does not hold exactly one file."""


class FileResource(resource.Resource):
    isLeaf = True

    def __init__(
        self,
        service: FileService,
        *,
        algorithms: tuple[str, ...] = ("SHA-256", "MD5"),
        basic_over_tls: bool = True,
        max_upload_bytes: int = MAX_FILE_BYTES,
        nonce_ttl: float = 300.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        super().__init__()
        self.service = service
        self.basic_over_tls = basic_over_tls
        self.max_upload_bytes = min(max_upload_bytes, service.max_file_bytes)
        self.verifier = DigestVerifier(service.realm, algorithms=algorithms, nonce_ttl=nonce_ttl, clock=clock)
        self.log = structlog.get_logger("acs.files")
        self.counters: dict[str, int] = {}

    def render(self, request: server.Request) -> bytes:
        request.setHeader(b"cache-control", b"no-store")
        if request.method not in _METHODS:
            request.setHeader(b"allow", b", ".join(_METHODS))
            return self._refuse(request, 405, "method not allowed", None)
        try:
            return self._render(request)
        except Exception:  # a bug must not leak a traceback to a device or kill the listener
            self.log.exception("internal error in the file endpoint", ip=_peer_ip(request))
            self._count("http_500")
            return _plain(request, 500, "internal error")

    def _render(self, request: server.Request) -> bytes:
        token = request.postpath[0].decode("ascii", "replace") if len(request.postpath) == 1 else ""
        record = self.service.find(token)
        if record is None:
            return self._refuse(request, 404, "no such file", None)
        denied = self._authenticate(request, record)
        if denied is not None:
            return denied
        if request.method not in _ALLOWED[record.direction]:
            request.setHeader(b"allow", b", ".join(_ALLOWED[record.direction]))
            return self._refuse(request, 405, f"method not allowed for an {record.direction}", record)
        if request.method == b"HEAD":
            return self._head(request, record)
        if record.direction == "download":
            return self._download(request, record)
        return self._upload(request, record)

    # ---- authentication ---------------------------------------------------------------------------------------------

    def _authenticate(self, request: server.Request, record: TransferRecord) -> bytes | None:
        is_tls = request.isSecure()
        authorization = request.getHeader(b"authorization")
        result = self.verifier.verify(
            request.method.decode("ascii"),
            request.uri.decode("utf-8", "surrogateescape"),
            None if authorization is None else authorization.decode("utf-8", "surrogateescape"),
            self.service.lookup_ha1(record),
            is_tls=is_tls,
            allow_basic=self.basic_over_tls,
        )
        if result.ok:
            return None
        for value in self.verifier.challenge(stale=result.stale, basic=is_tls and self.basic_over_tls):
            request.responseHeaders.addRawHeader(b"www-authenticate", value.encode("utf-8"))
        if authorization is None or result.stale:
            # The first leg of Digest, or a right password on an old nonce: the client retries, nothing refused.
            self._count("challenge")
            return _plain(request, 401, "authentication required")
        self._count("auth_failed")
        return self._refuse(request, 401, f"authentication failed: {result.reason}", record)

    # ---- the transfers ----------------------------------------------------------------------------------------------

    def _head(self, request: server.Request, record: TransferRecord) -> bytes:
        """What a GET would return, without using up the URL."""
        if record.status != "offered" or record.expires_at <= self.service.clock():
            return self._refuse(request, 410, "gone", record, audit=False)
        request.setHeader(b"content-type", (record.media_type or "application/octet-stream").encode("ascii"))
        request.setHeader(b"content-length", str(record.size or 0).encode("ascii"))
        return b""

    def _download(self, request: server.Request, record: TransferRecord) -> bytes:
        try:
            content = self.service.serve(record, remote_ip=_peer_ip(request))
        except TransferGone as exc:
            return self._refuse(request, 410, exc.reason, record, audit=False)  # the service audited it
        self._count("served")
        request.setResponseCode(200)
        request.setHeader(b"content-type", (record.media_type or "application/octet-stream").encode("ascii"))
        request.setHeader(b"x-content-type-options", b"nosniff")
        return content

    def _upload(self, request: server.Request, record: TransferRecord) -> bytes:
        try:
            body = read_body(request, max_decompressed=self.max_upload_bytes)
        except BodyError as exc:
            return self._refuse(request, exc.status, exc.reason, record)
        if len(body) > self.max_upload_bytes:
            return self._refuse(request, 413, f"upload larger than {self.max_upload_bytes} bytes", record)
        content_type = (request.getHeader(b"content-type") or b"").decode("latin-1")
        if request.method == b"POST" and content_type.lower().startswith("multipart/form-data"):
            try:
                body = multipart_file(body, content_type)
            except MultipartError as exc:
                return self._refuse(request, 400, str(exc), record)
        try:
            self.service.receive(record, body, remote_ip=_peer_ip(request))
        except TransferGone as exc:
            return self._refuse(request, 410, exc.reason, record, audit=False)
        self._count("received")
        return _plain(request, 200, "received")

    # ---- refusals ---------------------------------------------------------------------------------------------------

    def _refuse(
        self, request: server.Request, status: int, reason: str, record: TransferRecord | None, *, audit: bool = True
    ) -> bytes:
        self._count(f"http_{status}")
        remote_ip = _peer_ip(request)
        self.log.warning(
            "file request refused", status=status, reason=reason, ip=remote_ip,
            device_id=None if record is None else record.device_id, transfer=None if record is None else record.id,
        )
        if record is not None and audit:
            self.service.refused(record, reason, remote_ip=remote_ip)
        return _plain(request, status, reason)

    def _count(self, name: str) -> None:
        self.counters[name] = self.counters.get(name, 0) + 1


def multipart_file(body: bytes, content_type: str) -> bytes:
    """The one file in a multipart/form-data body (the part with a filename, or the only part)."""
    parser = email.parser.BytesParser(policy=email.policy.HTTP)
    message = parser.parsebytes(b"Content-Type: " + content_type.encode("latin-1") + b"\r\n\r\n" + body)
    if not message.is_multipart() or message.defects:
        raise MultipartError("malformed multipart/form-data body")
    parts = list(message.iter_parts())
    files = [part for part in parts if part.get_filename() is not None] or parts
    if len(files) != 1:
        raise MultipartError(f"multipart/form-data body holds {len(files)} files, not one")
    payload = files[0].get_payload(decode=True)
    if not isinstance(payload, bytes):
        raise MultipartError("multipart/form-data file part is not a single body")
    return payload


def _plain(request: server.Request, status: int, text: str) -> bytes:
    request.setResponseCode(status)
    request.setHeader(b"content-type", b"text/plain; charset=utf-8")
    return (text + "\n").encode("utf-8")


def _peer_ip(request: server.Request) -> str:
    peer = request.getClientAddress()
    return getattr(peer, "host", None) or "?"
