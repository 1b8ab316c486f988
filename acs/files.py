"""One-time file transfers with a device: what the ACS offers for a Download (a vendor configuration file) or
accepts from an Upload, behind a URL that works once, until it expires, with credentials made for that transfer.

The policy decides what goes into a file and when; this service keeps the transfer durable and safe:

* ``offer_download`` / ``offer_upload`` make a transfer and return an :class:`Offer` with the URL, a fresh username
  and password, and the CommandKey: everything the Download/Upload RPC carries (``Offer.rpc()`` builds it). The
  password exists only in that Offer: the store keeps Digest HA1 values (acs.store.transfers). Make the offer when
  the RPC is about to be sent and put the RPC in no queue: a queued RPC would hold the password in plaintext.
* The file endpoint (acs.web.files) authenticates a fetch with :meth:`lookup_ha1` and then calls :meth:`serve` or
  :meth:`receive`; each works once and only before ``expires_at``. A served download's content leaves the vault
  seal only then, and is dropped from the store.
* ``transfer_complete`` matches the device's TransferComplete by CommandKey and records the outcome.

Content is sealed with the ``seal``/``open`` pair of acs.vault.Vault (``seal(device_id, name, text) -> bytes``,
``open(device_id, name, blob) -> text``), bytes carried as base64 text; the sealed name binds the blob to its transfer
row. ``detail`` is stored as plain JSON: put names there (policy keys, P-value names), never values.
"""

from __future__ import annotations

import base64
import hashlib
import re
import secrets
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import structlog

from cwmp_models import messages as m
from cwmp_models.gsconfig import is_encrypted
from cwmp_models.httpauth import ha1

from .store import Store
from .store.transfers import CommandKeyInUse, TransferCredentials, TransferRecord

DOWNLOAD_VENDOR_CONFIG = "3 Vendor Configuration File"
UPLOAD_VENDOR_CONFIG = "1 Vendor Configuration File"
DEFAULT_REALM = "wp820-acs-files"
DEFAULT_TTL = 600.0  # the phone fetches within seconds of the Download; ten minutes covers DelaySeconds and retries
MAX_FILE_BYTES = 1 << 20
MAX_COMMAND_KEY = 32  # TR-069's limit on CommandKey
MAX_URL = 256  # TR-069's limit on Download/Upload URL
ACTOR = "acs:files"

_TOKEN_BYTES = 32
_TOKEN = re.compile(r"[A-Za-z0-9_-]{43}")  # unpadded base64url of _TOKEN_BYTES

Seal = Callable[[str, str, str], bytes]
Open = Callable[[str, str, bytes], str]
UploadHook = Callable[[TransferRecord, bytes], None]


class TransferError(ValueError):
    """A transfer cannot be offered or used; ``reason`` says why, without secrets."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class TransferGone(TransferError):
    """The URL worked once already, expired, or its transfer is over (HTTP 410)."""


@dataclass(frozen=True, slots=True)
class Offer:
    transfer_id: int
    direction: str
    url: str
    username: str
    password: str = field(repr=False)
    command_key: str
    file_type: str
    file_size: int  # bytes of a download's content; 0 for an upload
    expires_at: float

    def rpc(self, *, delay_seconds: int = 0) -> m.Download | m.Upload:
        """The Download or Upload request that hands this offer to the device."""
        if self.direction == "download":
            return m.Download(
                command_key=self.command_key, file_type=self.file_type, url=self.url, username=self.username,
                password=self.password, file_size=self.file_size, delay_seconds=delay_seconds,
            )
        return m.Upload(
            command_key=self.command_key, file_type=self.file_type, url=self.url, username=self.username,
            password=self.password, delay_seconds=delay_seconds,
        )


class FileService:
    def __init__(
        self,
        store: Store,
        *,
        base_url: str,
        seal: Seal,
        open: Open,  # noqa: A002 - named after Vault.open, whose bound method is what is passed here
        ttl: float = DEFAULT_TTL,
        clock: Callable[[], float] | None = None,
        realm: str = DEFAULT_REALM,
        max_file_bytes: int = MAX_FILE_BYTES,
        on_upload: UploadHook | None = None,
    ) -> None:
        self.base_url = _check_base_url(base_url)
        if ttl <= 0:
            raise TransferError(f"ttl must be positive, got {ttl!r}")
        if max_file_bytes < 1:
            raise TransferError(f"max_file_bytes must be at least 1, got {max_file_bytes!r}")
        self.store = store
        self.ttl = ttl
        self.clock = clock or store.clock
        self.realm = realm
        self.max_file_bytes = max_file_bytes
        self.on_upload = on_upload
        self._seal = seal
        self._open = open
        self.log = structlog.get_logger("acs.files")

    # ---- offering ---------------------------------------------------------------------------------------------------

    def offer_download(
        self,
        device_id: str,
        content: bytes,
        *,
        command_key: str | None = None,
        file_type: str = DOWNLOAD_VENDOR_CONFIG,
        detail: dict[str, Any] | None = None,
        session_id: str | None = None,
        media_type: str | None = None,
    ) -> Offer:
        """Offer ``content`` (sent as is: encrypt it for the device first when it has a config password)."""
        if not isinstance(content, (bytes, bytearray)):
            raise TransferError(f"download content must be bytes, not {type(content).__name__}")
        if not content:
            raise TransferError("download content is empty")
        if len(content) > self.max_file_bytes:
            raise TransferError(
                f"download content is {len(content)} bytes, more than the {self.max_file_bytes} allowed"
            )
        return self._offer(
            "download", device_id, bytes(content), command_key=command_key, file_type=file_type, detail=detail,
            session_id=session_id, media_type=media_type or _media_type(bytes(content)),
        )

    def offer_upload(
        self,
        device_id: str,
        *,
        command_key: str | None = None,
        file_type: str = UPLOAD_VENDOR_CONFIG,
        detail: dict[str, Any] | None = None,
        session_id: str | None = None,
    ) -> Offer:
        return self._offer(
            "upload", device_id, None, command_key=command_key, file_type=file_type, detail=detail,
            session_id=session_id, media_type=None,
        )

    def _offer(
        self,
        direction: str,
        device_id: str,
        content: bytes | None,
        *,
        command_key: str | None,
        file_type: str,
        detail: dict[str, Any] | None,
        session_id: str | None,
        media_type: str | None,
    ) -> Offer:
        if not isinstance(device_id, str) or not device_id:
            raise TransferError("device_id must be a non-empty string")
        if not isinstance(file_type, str) or not file_type or len(file_type) > 64:
            raise TransferError("file_type must be a non-empty string of at most 64 characters")
        command_key = _check_command_key(command_key) if command_key is not None else _new_command_key()
        token = secrets.token_urlsafe(_TOKEN_BYTES)
        username = f"f{secrets.token_hex(8)}"
        password = secrets.token_urlsafe(24)
        credentials = TransferCredentials(
            username, self.realm, ha1(username, self.realm, password, "MD5"),
            ha1(username, self.realm, password, "SHA-256"),
        )
        now = self.clock()
        try:
            with self.store.transaction():
                record = self.store.transfers.add(
                    token_hash=_token_hash(token), device_id=device_id, direction=direction, file_type=file_type,
                    command_key=command_key, credentials=credentials, created_at=now, expires_at=now + self.ttl,
                    size=None if content is None else len(content), media_type=media_type, detail=detail,
                    session_id=session_id,
                )
                if content is not None:
                    self.store.transfers.set_content(record.id, self._seal_content(record, content))
                self.store.audit.record(
                    ACTOR, "file-offered", device_id=device_id,
                    detail={
                        "transfer": record.id, "direction": direction, "file_type": file_type,
                        "command": command_key, "size": record.size, "expires_at": record.expires_at,
                        "session": session_id, "detail": detail or {},
                    },
                )
        except CommandKeyInUse as exc:
            raise TransferError(str(exc)) from None
        self.log.info(
            "file offered", device_id=device_id, session_id=session_id, transfer=record.id, direction=direction,
            command=command_key, size=record.size,
        )
        return Offer(
            transfer_id=record.id, direction=direction, url=f"{self.base_url}/{token}", username=username,
            password=password, command_key=command_key, file_type=file_type, file_size=record.size or 0,
            expires_at=record.expires_at,
        )

    # ---- the endpoint's side ----------------------------------------------------------------------------------------

    def find(self, token: str) -> TransferRecord | None:
        """The transfer a URL token names; None for anything else, malformed tokens included."""
        if not isinstance(token, str) or not _TOKEN.fullmatch(token):
            return None
        return self.store.transfers.by_token_hash(_token_hash(token))

    def lookup_ha1(self, record: TransferRecord) -> Callable[[str, str], str | None]:
        """The ``lookup_ha1`` for DigestVerifier: only this transfer's own username is known."""
        credentials = self.store.transfers.credentials(record.id)

        def lookup(username: str, algorithm: str) -> str | None:
            if credentials is None or username != credentials.username or credentials.realm != self.realm:
                return None
            return credentials.ha1(algorithm)

        return lookup

    def serve(self, record: TransferRecord, *, remote_ip: str | None) -> bytes:
        """The content of an offered download, once: the transfer becomes 'served' and the content leaves the
        store. Raises TransferGone when it was served already, expired or is over."""
        if record.direction != "download":
            raise TransferError("not a download")
        now = self.clock()
        with self.store.transaction():
            gone = self._gone(record, now, remote_ip)
            if gone is None:
                sealed = self.store.transfers.mark_served(record.id, now=now, remote_ip=remote_ip)
                if sealed is None:
                    raise TransferError("download has no content")
                # Opened inside the transaction: if the seal does not open, the transfer stays offered.
                content = self._open_content(record, sealed)
                self._audit_transfer("file-served", record, len(content), remote_ip)
        if gone is not None:
            raise TransferGone(gone)
        self.log.info(
            "file served", device_id=record.device_id, transfer=record.id, command=record.command_key, ip=remote_ip
        )
        return content

    def _audit_transfer(self, action: str, record: TransferRecord, size: int, remote_ip: str | None) -> None:
        self.store.audit.record(
            f"remote:{remote_ip or '?'}", action, device_id=record.device_id,
            detail={"transfer": record.id, "command": record.command_key, "size": size, "remote_ip": remote_ip},
        )

    def receive(self, record: TransferRecord, content: bytes, *, remote_ip: str | None) -> TransferRecord:
        """Accept an upload, once; durable before the hook sees it and before the device gets its answer."""
        if record.direction != "upload":
            raise TransferError("not an upload")
        if len(content) > self.max_file_bytes:
            raise TransferError(f"upload is larger than {self.max_file_bytes} bytes")
        now = self.clock()
        with self.store.transaction():
            gone = self._gone(record, now, remote_ip)
            if gone is None:
                sealed = self._seal_content(record, content)
                if not self.store.transfers.mark_received(
                    record.id, sealed, size=len(content), now=now, remote_ip=remote_ip
                ):
                    raise TransferError("upload could not be stored")
                self._audit_transfer("file-received", record, len(content), remote_ip)
        if gone is not None:
            raise TransferGone(gone)
        received = self.store.transfers.get(record.id)
        assert received is not None
        self.log.info(
            "file received", device_id=record.device_id, transfer=record.id, command=record.command_key,
            size=len(content), ip=remote_ip,
        )
        if self.on_upload is not None:
            try:
                self.on_upload(received, content)
            except Exception:  # the upload is stored; a failing consumer must not turn it into an HTTP error
                self.log.exception("upload hook failed", device_id=record.device_id, transfer=record.id)
        return received

    def refused(self, record: TransferRecord, reason: str, *, remote_ip: str | None) -> None:
        """Audit a refused use of a known URL (wrong credentials, wrong method) the endpoint decided on."""
        self.store.audit.record(
            f"remote:{remote_ip or '?'}", "file-refused", device_id=record.device_id,
            detail={"transfer": record.id, "command": record.command_key, "remote_ip": remote_ip}, reason=reason,
        )

    def _gone(self, record: TransferRecord, now: float, remote_ip: str | None) -> str | None:
        """Why the transfer's URL no longer works (the refusal audited), or None while it does. Part of the
        caller's transaction, so the check and the claim that follows are one step."""
        current = self.store.transfers.get(record.id)
        assert current is not None
        reason = None
        if current.status == "offered" and current.expires_at <= now:
            self._expired(self.store.transfers.expire(now, current.id))
            reason = "expired"
        elif current.status != "offered":
            reason = _GONE_REASONS.get(current.status, "transfer is over")
        if reason is not None:
            self.refused(current, reason, remote_ip=remote_ip)
        return reason

    # ---- after the transfer -----------------------------------------------------------------------------------------

    def transfer_complete(
        self,
        device_id: str,
        command_key: str,
        fault_code: int,
        fault_text: str = "",
        *,
        session_id: str | None = None,
    ) -> TransferRecord | None:
        """Record the device's TransferComplete for the transfer with this CommandKey; None when there is none.

        A repeated TransferComplete (its response was lost) changes nothing. Success reported for a transfer that
        never reached this endpoint is recorded as a failure: the device cannot have the file we made.
        """
        now = self.clock()
        with self.store.transaction():  # read and update as one step: another process may see the same TC
            record = self.store.transfers.by_command_key(device_id, command_key)
            if record is None or record.status in ("completed", "failed"):
                finished = None
            else:
                finished = _outcome(record, fault_code, fault_text)
                status, text = finished
                self.store.transfers.finish(record.id, status, now=now, fault_code=fault_code, fault_text=text)
                self.store.audit.record(
                    f"device:{device_id}", f"file-transfer-{status}", device_id=device_id,
                    detail={"transfer": record.id, "command": command_key, "fault_code": fault_code,
                            "session": session_id, "direction": record.direction},
                    reason=text or "",
                )
        if record is None:
            self.log.warning("TransferComplete for no known transfer", device_id=device_id, command=command_key)
            return None
        if finished is None:
            return record  # a repeat
        log = self.log.info if finished[0] == "completed" else self.log.warning
        log("transfer complete", device_id=device_id, transfer=record.id, command=command_key, status=finished[0],
            fault_code=fault_code)
        return self.store.transfers.get(record.id)

    def received_upload(self, token: str) -> bytes:
        """The content a device uploaded to the URL with this token."""
        record = self.find(token)
        if record is None or record.direction != "upload":
            raise TransferError("no upload with this token")
        sealed = self.store.transfers.content(record.id)
        if sealed is None:
            raise TransferError("nothing was uploaded to this URL")
        return self._open_content(record, sealed)

    def pending_for(self, device_id: str) -> list[TransferRecord]:
        """Transfers of the device not finished yet: offered, or awaiting their TransferComplete."""
        return self.store.transfers.for_device(device_id, active_only=True)

    def expire(self, now: float | None = None) -> list[TransferRecord]:
        """Housekeeping: offers whose URL expired unused become 'expired' and their content is dropped."""
        with self.store.transaction():
            expired = self.store.transfers.expire(self.clock() if now is None else now)
            self._expired(expired)
        return expired

    def _expired(self, records: list[TransferRecord]) -> None:
        for record in records:
            self.store.audit.record(
                ACTOR, "file-expired", device_id=record.device_id,
                detail={"transfer": record.id, "command": record.command_key, "direction": record.direction},
                reason="URL not used before it expired",
            )
            self.log.info("file offer expired", device_id=record.device_id, transfer=record.id)

    # ---- sealing ----------------------------------------------------------------------------------------------------

    def _seal_content(self, record: TransferRecord, content: bytes) -> bytes:
        return self._seal(record.device_id, _sealed_name(record), base64.b64encode(content).decode("ascii"))

    def _open_content(self, record: TransferRecord, sealed: bytes) -> bytes:
        return base64.b64decode(self._open(record.device_id, _sealed_name(record), sealed), validate=True)


_GONE_REASONS = {
    "served": "already served",
    "received": "already received",
    "completed": "transfer is over",
    "failed": "transfer is over",
    "expired": "expired",
}


def _outcome(record: TransferRecord, fault_code: int, fault_text: str) -> tuple[str, str | None]:
    """The status and fault text a TransferComplete gives an unfinished transfer."""
    if fault_code != 0:
        return "failed", fault_text
    if record.status in ("served", "received"):
        return "completed", fault_text or None
    return "failed", "device reported success, but the file never went through this endpoint"


def _sealed_name(record: TransferRecord) -> str:
    return f"transfer:{record.id}:{record.direction}"


def _token_hash(token: str) -> str:
    return hashlib.sha256(token.encode("ascii")).hexdigest()


def _new_command_key() -> str:
    return f"cfg-{secrets.token_hex(8)}"


def _check_command_key(command_key: str) -> str:
    if not isinstance(command_key, str):
        raise TransferError(f"CommandKey must be a string, not {type(command_key).__name__}")
    if not command_key:
        raise TransferError("CommandKey must not be empty: it is how the TransferComplete is matched")
    if len(command_key) > MAX_COMMAND_KEY:
        raise TransferError(f"CommandKey is {len(command_key)} characters, more than {MAX_COMMAND_KEY}")
    return command_key


def _check_base_url(base_url: str) -> str:
    parts = urlsplit(base_url)
    if parts.scheme not in ("http", "https") or not parts.netloc or parts.query or parts.fragment:
        raise TransferError(f"base_url must be an http(s) URL without query or fragment, got {base_url!r}")
    base = base_url.rstrip("/")
    if len(base) + 1 + len(secrets.token_urlsafe(_TOKEN_BYTES)) > MAX_URL:
        raise TransferError(f"base_url is too long: file URLs must fit TR-069's {MAX_URL} characters")
    return base


def _media_type(content: bytes) -> str:
    if not is_encrypted(content) and content.lstrip().startswith(b"<"):
        return "application/xml"
    return "application/octet-stream"
