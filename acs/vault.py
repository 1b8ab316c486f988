"""Per-device secrets at rest: AES-256-GCM sealing bound to the device and the secret's name.

A sealed blob is ``version (1 byte) | nonce (12 bytes) | ciphertext and GCM tag``. The associated data binds the
version, the device id and the secret's name, each length-prefixed so that no two (device, name) pairs encode alike:
a blob copied to another device or another name does not open. The version byte says which key sealed the blob;
rotating keys later means a new version and a vault holding both keys while blobs are re-sealed.

The key is 32 random bytes, base64 on one line, in a file only its owner can read (``acs secrets keygen``); under
systemd it is a credential (``credential:secrets.key``). Nonces are random: at 2^32 seals per key the chance of a
repeated nonce stays below 2^-32, far beyond what a fleet of phones needs.

Errors are ``VaultError`` and never contain key material or plaintext.
"""

from __future__ import annotations

import base64
import binascii
import os
import secrets
import stat
import struct
from collections.abc import Mapping
from pathlib import Path

import structlog
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from .config import ConfigError, resolve_path

KEY_BYTES = 32
NONCE_BYTES = 12
VERSION = 1
_AAD_LABEL = b"wp820-acs vault"

log = structlog.get_logger(__name__)


class VaultError(Exception):
    """A key file is unusable, or a sealed secret does not open. Never carries secret material."""


class Vault:
    def __init__(self, key: bytes) -> None:
        if len(key) != KEY_BYTES:
            raise VaultError(f"a vault key is {KEY_BYTES} bytes, got {len(key)}")
        self._aead = AESGCM(key)

    @classmethod
    def from_key_file(cls, path_or_credential: str | os.PathLike, *, env: Mapping[str, str] = os.environ) -> Vault:
        """Load the key from a file (or ``credential:NAME``). Logs a warning when others may read the file."""
        try:
            path = resolve_path(os.fspath(path_or_credential), env)
        except ConfigError as exc:
            raise VaultError(f"secrets key: {exc}") from None
        try:
            text = Path(path).read_text("ascii")
            mode = os.stat(path).st_mode
        except FileNotFoundError:
            raise VaultError(f"secrets key file not found: {path}") from None
        except (OSError, UnicodeDecodeError) as exc:
            reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else "not a base64 text file"
            raise VaultError(f"secrets key file {path}: {reason}") from None
        try:
            key = base64.b64decode(text.strip(), validate=True)
        except binascii.Error:
            raise VaultError(f"secrets key file {path}: not base64") from None
        if len(key) != KEY_BYTES:
            raise VaultError(f"secrets key file {path}: expected {KEY_BYTES} bytes of base64, got {len(key)} bytes")
        if warning := permission_warning(path, mode):
            log.warning("secrets key file readable by others", path=path, problem=warning)
        return cls(key)

    def seal(self, device_id: str, name: str, plaintext: str) -> bytes:
        nonce = secrets.token_bytes(NONCE_BYTES)
        return bytes([VERSION]) + nonce + self._aead.encrypt(nonce, plaintext.encode(), _aad(VERSION, device_id, name))

    def open(self, device_id: str, name: str, blob: bytes) -> str:
        if len(blob) < 1 + NONCE_BYTES + 16:
            raise VaultError(f"sealed secret {name!r} of device {device_id!r} is truncated")
        if blob[0] != VERSION:
            raise VaultError(f"sealed secret {name!r} of device {device_id!r} has unknown version {blob[0]}")
        nonce, sealed = blob[1 : 1 + NONCE_BYTES], blob[1 + NONCE_BYTES :]
        try:
            plaintext = self._aead.decrypt(nonce, sealed, _aad(VERSION, device_id, name))
        except InvalidTag:
            raise VaultError(
                f"sealed secret {name!r} of device {device_id!r} does not open: "
                "another key, another device or name, or altered data"
            ) from None
        try:
            return plaintext.decode()
        except UnicodeDecodeError:
            raise VaultError(f"sealed secret {name!r} of device {device_id!r} is not UTF-8 text") from None


def _aad(version: int, device_id: str, name: str) -> bytes:
    device, label = device_id.encode(), name.encode()
    return _AAD_LABEL + struct.pack(">BI", version, len(device)) + device + struct.pack(">I", len(label)) + label


def permission_warning(path: str | os.PathLike, mode: int | None = None) -> str | None:
    """A sentence when the key file's group or others have any access to it, else None."""
    mode = os.stat(path).st_mode if mode is None else mode
    if stat.S_IMODE(mode) & 0o077 == 0:
        return None
    return f"{path} has mode {stat.S_IMODE(mode):04o}; its group or others have access (chmod 600 it)"


def generate_key_file(path: str | os.PathLike, *, force: bool = False) -> Path:
    """Write a new random key, base64, mode 0600. Refuses to replace an existing file unless ``force``.

    Replacing a key makes every secret sealed with the old one unreadable, hence the refusal by default.
    """
    target = Path(path)
    data = base64.b64encode(secrets.token_bytes(KEY_BYTES)) + b"\n"
    if not force:
        _write_new_private_file(target, data)  # O_EXCL: never replaces, even a file appearing meanwhile
        return target
    temporary = target.with_name(f".{target.name}.tmp-{os.getpid()}")
    try:
        _write_new_private_file(temporary, data)
        os.replace(temporary, target)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise
    return target


def _write_new_private_file(path: Path, data: bytes) -> None:
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(descriptor, "wb") as handle:
        handle.write(data)
