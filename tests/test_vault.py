"""acs.vault: sealing and opening per-device secrets, key files and their permissions."""

from __future__ import annotations

import base64
import os
import stat
from pathlib import Path

import pytest
from structlog.testing import capture_logs

from acs.vault import KEY_BYTES, Vault, VaultError, generate_key_file, permission_warning

DEVICE = "000B82-WP820-20A1B2C3"
PASSWORD = "Zk7#q2 päss"


@pytest.fixture
def vault() -> Vault:
    return Vault(bytes(range(KEY_BYTES)))


def _key_file(tmp_path: Path, content: bytes, mode: int = 0o600) -> Path:
    path = tmp_path / "secrets.key"
    path.write_bytes(content)
    path.chmod(mode)
    return path


# -- sealing -------------------------------------------------------------------------------------------------------


def test_round_trip(vault: Vault) -> None:
    blob = vault.seal(DEVICE, "admin_password", PASSWORD)
    assert vault.open(DEVICE, "admin_password", blob) == PASSWORD
    assert vault.open(DEVICE, "empty", vault.seal(DEVICE, "empty", "")) == ""


def test_blob_layout_and_fresh_nonces(vault: Vault) -> None:
    first, second = vault.seal(DEVICE, "n", PASSWORD), vault.seal(DEVICE, "n", PASSWORD)
    assert first[0] == 1 and len(first) == 1 + 12 + len(PASSWORD.encode()) + 16
    assert first[1:13] != second[1:13] and first != second
    assert PASSWORD.encode() not in first


@pytest.mark.parametrize("position", [0, 1, 12, 13, -1])
def test_any_altered_byte_is_refused(vault: Vault, position: int) -> None:
    blob = bytearray(vault.seal(DEVICE, "n", PASSWORD))
    blob[position] ^= 0x01
    with pytest.raises(VaultError) as raised:
        vault.open(DEVICE, "n", bytes(blob))
    assert PASSWORD not in str(raised.value)


@pytest.mark.parametrize(
    ("device_id", "name"),
    [
        ("000B82-WP820-20A1B2C4", "admin_password"),  # another device
        (DEVICE, "cr_password"),  # another secret of the same device
        (DEVICE + "a", "dmin_password"),  # same concatenation, other split: lengths are bound too
    ],
)
def test_a_blob_moved_to_another_device_or_name_does_not_open(vault: Vault, device_id: str, name: str) -> None:
    blob = vault.seal(DEVICE, "admin_password", PASSWORD)
    with pytest.raises(VaultError, match="does not open"):
        vault.open(device_id, name, blob)


def test_another_key_does_not_open(vault: Vault) -> None:
    blob = vault.seal(DEVICE, "n", PASSWORD)
    with pytest.raises(VaultError, match="does not open"):
        Vault(bytes(KEY_BYTES)).open(DEVICE, "n", blob)


@pytest.mark.parametrize("blob", [b"", b"\x01" + bytes(20), b"\x02" + bytes(40)])
def test_truncated_or_unknown_version_blobs_are_refused(vault: Vault, blob: bytes) -> None:
    with pytest.raises(VaultError, match="truncated|unknown version 2"):
        vault.open(DEVICE, "n", blob)


def test_key_must_be_32_bytes() -> None:
    with pytest.raises(VaultError, match="32 bytes, got 16"):
        Vault(bytes(16))


# -- key files -----------------------------------------------------------------------------------------------------


def test_generated_key_file_loads_and_is_private(tmp_path: Path) -> None:
    path = generate_key_file(tmp_path / "secrets.key")
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert len(base64.b64decode(path.read_text().strip(), validate=True)) == KEY_BYTES
    sealed = Vault.from_key_file(path).seal(DEVICE, "n", PASSWORD)
    assert Vault.from_key_file(str(path)).open(DEVICE, "n", sealed) == PASSWORD


def test_keygen_refuses_to_overwrite_without_force(tmp_path: Path) -> None:
    path = generate_key_file(tmp_path / "secrets.key")
    before = path.read_bytes()
    with pytest.raises(FileExistsError):
        generate_key_file(path)
    assert path.read_bytes() == before
    generate_key_file(path, force=True)
    assert path.read_bytes() != before and stat.S_IMODE(path.stat().st_mode) == 0o600
    assert sorted(os.listdir(tmp_path)) == ["secrets.key"]


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (base64.b64encode(bytes(16)), "expected 32 bytes of base64, got 16 bytes"),
        (b"not base64 at all!", "not base64"),
        (b"\xff\xfe", "not a base64 text file"),
    ],
)
def test_bad_key_files_are_refused(tmp_path: Path, content: bytes, message: str) -> None:
    with pytest.raises(VaultError, match=message) as raised:
        Vault.from_key_file(_key_file(tmp_path, content))
    assert content.decode("latin-1") not in str(raised.value)


def test_missing_key_file_and_credentials(tmp_path: Path) -> None:
    with pytest.raises(VaultError, match="secrets key file not found"):
        Vault.from_key_file(tmp_path / "absent.key")
    with pytest.raises(VaultError, match=r"needs \$CREDENTIALS_DIRECTORY"):
        Vault.from_key_file("credential:secrets.key", env={})


def test_key_file_from_a_credential(tmp_path: Path) -> None:
    generate_key_file(tmp_path / "secrets.key")
    vault = Vault.from_key_file("credential:secrets.key", env={"CREDENTIALS_DIRECTORY": str(tmp_path)})
    assert vault.open(DEVICE, "n", vault.seal(DEVICE, "n", PASSWORD)) == PASSWORD


def test_a_key_file_others_can_read_is_loaded_with_a_warning(tmp_path: Path) -> None:
    path = _key_file(tmp_path, base64.b64encode(bytes(KEY_BYTES)), mode=0o644)
    with capture_logs() as logs:
        Vault.from_key_file(path)
    [entry] = logs
    assert entry["log_level"] == "warning" and "0644" in entry["problem"] and str(path) in entry["problem"]
    assert base64.b64encode(bytes(KEY_BYTES)).decode() not in repr(entry)


def test_a_private_key_file_loads_silently(tmp_path: Path) -> None:
    path = _key_file(tmp_path, base64.b64encode(bytes(KEY_BYTES)), mode=0o400)
    with capture_logs() as logs:
        Vault.from_key_file(path)
    assert logs == []


@pytest.mark.parametrize(("mode", "warned"), [(0o600, False), (0o400, False), (0o640, True), (0o604, True)])
def test_permission_warning(tmp_path: Path, mode: int, warned: bool) -> None:
    path = _key_file(tmp_path, b"x", mode)
    assert (permission_warning(path) is not None) is warned
