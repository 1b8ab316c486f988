"""What a simulated phone keeps in flash: its identity, its settings and the CWMP agent's durable bookkeeping.

:class:`PhoneState` is plain data (JSON-serialisable, no behaviour beyond building and persisting itself); the rules
that change it live in :mod:`wp820_sim.phone`. One JSON file per phone (:func:`state_path`), written atomically
(temporary file in the same directory, fsync, rename), so a simulator killed at any moment restarts with either the
old or the new state of each phone, never half of one.

What is kept, and why it must survive a restart like it survives a real phone's reboot:

* identity: ``serial``, ``mac`` (12 lower-case hex digits), ``oui``, ``product_class``, ``software_version``;
* settings: ``pvalues`` (P-value -> text, the configuration file's vocabulary) and ``agent_values`` (model key ->
  TR-069 text, for writable settings the model keeps outside the P-values); ``site_defaults`` (P-value -> text) are
  the operator's presets that a factory reset restores on top of the model's defaults (the ACS URL and credentials a
  provider-customised firmware or DHCP option 43 would give);
* ``pending_reboot``: model key -> the TR-069 text still *in effect* for a setting whose new value waits for a reboot;
* notification: ``notification`` (path -> attribute, where it differs from the model's default) and
  ``notified_values`` (path -> the text last delivered or set by the ACS: the VALUE CHANGE baseline);
* session bookkeeping: ``pending_events`` (undelivered ``(EventCode, CommandKey)``), ``bootstrapped``,
  ``retry_count``, ``reboot_command_key`` (an accepted Reboot's key, reported as ``M Reboot`` after the reboot);
* transfers: ``transfers`` (queued Download/Upload requests) and ``transfer_results`` (TransferComplete messages not
  yet acknowledged by the ACS), ``next_transfer_id``, ``pending_firmware`` (a downloaded image installed at the next
  reboot);
* ``deleted_objects``: table instances removed by DeleteObject.

``version`` guards the format: a file written by another format version is refused with :class:`StateError` rather
than misread. Error messages name the file and the problem, never a value (the state holds passwords).
"""

from __future__ import annotations

import functools
import json
import os
import re
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from types import MappingProxyType
from typing import Any

from cwmp_models.datamodel import DeviceModel
from cwmp_models.types import CwmpValue

__all__ = ["STATE_VERSION", "PhoneState", "StateError", "Transfer", "TransferResult", "state_path"]

STATE_VERSION = 1

_SERIAL = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")
_MAC = re.compile(r"[0-9a-f]{12}")


class StateError(ValueError):
    """A state file that cannot be read or written, or a state that is not well-formed."""


@dataclass(slots=True)
class Transfer:
    """A Download or Upload the ACS requested and the phone has not finished. ``state`` is TR-069's
    QueuedTransferStruct State: 1 not yet started, 2 in progress."""

    transfer_id: int
    is_download: bool
    command_key: str
    file_type: str
    url: str
    username: str
    password: str = field(repr=False)
    file_size: int = 0
    target_file_name: str = ""
    delay_seconds: int = 0
    state: int = 1


@dataclass(slots=True)
class TransferResult:
    """A finished transfer waiting for its TransferComplete to be acknowledged. Times are TR-069 dateTime text."""

    is_download: bool
    command_key: str
    fault_code: int
    fault_string: str
    start_time: str
    complete_time: str


@dataclass(slots=True)
class PhoneState:
    serial: str
    mac: str
    oui: str
    product_class: str
    software_version: str
    pvalues: dict[str, str]
    site_defaults: dict[str, str] = field(default_factory=dict)
    agent_values: dict[str, str] = field(default_factory=dict)
    pending_reboot: dict[str, str] = field(default_factory=dict)
    notification: dict[str, int] = field(default_factory=dict)
    notified_values: dict[str, str] = field(default_factory=dict)
    pending_events: list[tuple[str, str]] = field(default_factory=list)
    bootstrapped: bool = False
    retry_count: int = 0
    reboot_command_key: str | None = None
    transfers: list[Transfer] = field(default_factory=list)
    transfer_results: list[TransferResult] = field(default_factory=list)
    next_transfer_id: int = 1
    pending_firmware: str | None = None
    deleted_objects: list[str] = field(default_factory=list)
    version: int = STATE_VERSION

    def __post_init__(self) -> None:
        if not isinstance(self.serial, str) or _SERIAL.fullmatch(self.serial) is None:
            raise StateError("serial must be 1-64 letters, digits, '.', '_' or '-', starting with a letter or digit")
        if not isinstance(self.mac, str) or _MAC.fullmatch(self.mac) is None:
            raise StateError("mac must be 12 lower-case hexadecimal digits")

    @classmethod
    def factory(
        cls,
        model: DeviceModel,
        *,
        serial: str,
        mac: str,
        oui: str | None = None,
        software_version: str | None = None,
        settings: Mapping[str, CwmpValue] | None = None,
    ) -> "PhoneState":
        """A phone fresh from the factory: the model's defaults overlaid with the site ``settings`` (by model key,
        validated; kept as the site defaults a factory reset restores), this identity, never bootstrapped."""
        site_defaults = model.to_pvalues(settings or {})
        return cls._fresh(model, serial, mac, oui, software_version, site_defaults)

    @classmethod
    def _fresh(
        cls,
        model: DeviceModel,
        serial: str,
        mac: str,
        oui: str | None,
        software_version: str | None,
        site_defaults: dict[str, str],
    ) -> "PhoneState":
        return cls(
            serial=serial,
            mac=mac.lower().replace(":", "").replace("-", ""),
            oui=oui or model.oui,
            product_class=model.product_class,
            software_version=software_version or model.software_version,
            pvalues={**_pvalue_defaults(model), **site_defaults},
            site_defaults=dict(site_defaults),
        )

    def factory_reset(self, model: DeviceModel) -> "PhoneState":
        """Back to factory (and site) defaults, keeping what a reset does not touch: the identity and the installed
        firmware."""
        return PhoneState._fresh(model, self.serial, self.mac, self.oui, self.software_version, self.site_defaults)

    # --- JSON ---------------------------------------------------------------------------------------------------------

    def to_json(self) -> str:
        # Built field by field: dataclasses.asdict rebuilds every nested dict and list first, which was three quarters
        # of this method's cost (a fleet writes a state after every session). The values are plain JSON types already.
        document = {name: getattr(self, name) for name in _STATE_FIELDS}
        document["pending_events"] = [list(event) for event in self.pending_events]
        document["transfers"] = [_record(transfer, _TRANSFER_FIELDS) for transfer in self.transfers]
        document["transfer_results"] = [_record(result, _RESULT_FIELDS) for result in self.transfer_results]
        return json.dumps(document, sort_keys=True, separators=(",", ":"))

    @classmethod
    def from_json(cls, text: str) -> "PhoneState":
        try:
            document = json.loads(text)
        except json.JSONDecodeError as exc:
            raise StateError(f"not JSON (line {exc.lineno}, column {exc.colno})") from None
        if not isinstance(document, dict):
            raise StateError("not a JSON object")
        version = document.get("version")
        if version != STATE_VERSION:
            raise StateError(f"state format version {version!r} is not supported (expected {STATE_VERSION})")
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(document) - known)
        if unknown:
            raise StateError(f"unknown field(s) {', '.join(unknown)}")
        try:
            document["pending_events"] = [_event(item) for item in document.get("pending_events", [])]
            document["transfers"] = [Transfer(**item) for item in document.get("transfers", [])]
            document["transfer_results"] = [TransferResult(**item) for item in document.get("transfer_results", [])]
            state = cls(**document)
        except TypeError as exc:
            raise StateError(f"malformed state: {_describe_type_error(exc)}") from None
        _check_types(state)
        return state

    # --- Files --------------------------------------------------------------------------------------------------------

    def save(self, path: Path, *, fsync: bool = True) -> None:
        """Write atomically: a reader (or a restart after a crash) sees the old file or the new one, never a mix.

        ``fsync=False`` skips flushing to disk: the rename is still atomic, but a power cut may lose the newest state
        (enough for a simulator process that is merely killed).
        """
        path = Path(path)
        try:
            write_atomically(path, self.to_json().encode("utf-8"), fsync=fsync)
        except OSError as exc:
            raise StateError(f"{path}: cannot write state: {exc.strerror}") from None

    @classmethod
    def load(cls, path: Path) -> "PhoneState":
        path = Path(path)
        try:
            text = path.read_text(encoding="utf-8")
        except OSError as exc:
            raise StateError(f"{path}: cannot read state: {exc.strerror}") from None
        except UnicodeDecodeError:
            raise StateError(f"{path}: not UTF-8") from None
        try:
            return cls.from_json(text)
        except StateError as exc:
            raise StateError(f"{path}: {exc}") from None


_STATE_FIELDS = tuple(f.name for f in fields(PhoneState))
_TRANSFER_FIELDS = tuple(f.name for f in fields(Transfer))
_RESULT_FIELDS = tuple(f.name for f in fields(TransferResult))


def _record(item: object, names: tuple[str, ...]) -> dict[str, Any]:
    return {name: getattr(item, name) for name in names}


@functools.lru_cache(maxsize=16)
def _pvalue_defaults(model: DeviceModel) -> Mapping[str, str]:
    # Computed once per model: a fleet creates thousands of phones from the same defaults.
    return MappingProxyType(model.pvalue_defaults())


def state_path(directory: Path, serial: str) -> Path:
    """The file that holds the phone with this serial number in a state directory."""
    if not isinstance(serial, str) or _SERIAL.fullmatch(serial) is None:
        raise StateError("serial is not usable as a file name")
    return Path(directory) / f"{serial}.json"


def _event(item: Any) -> tuple[str, str]:
    if not (isinstance(item, list) and len(item) == 2 and all(isinstance(part, str) for part in item)):
        raise StateError("pending_events must hold [EventCode, CommandKey] pairs")
    return item[0], item[1]


_TEXT_MAPS = ("pvalues", "site_defaults", "agent_values", "pending_reboot", "notified_values")


def _check_types(state: PhoneState) -> None:
    """JSON gives the right shapes only if the file was written by us; check before anything relies on them."""
    for name in ("oui", "product_class", "software_version"):
        if not isinstance(getattr(state, name), str):
            raise StateError(f"{name} must be text")
    for name in _TEXT_MAPS:
        mapping = getattr(state, name)
        if not isinstance(mapping, dict) or not all(isinstance(v, str) for v in mapping.values()):
            raise StateError(f"{name} must map names to text")
    if not isinstance(state.notification, dict) or not all(v in (0, 1, 2) for v in state.notification.values()):
        raise StateError("notification must map paths to 0, 1 or 2")
    if not isinstance(state.deleted_objects, list) or not all(isinstance(p, str) for p in state.deleted_objects):
        raise StateError("deleted_objects must be a list of object paths")
    for name in ("retry_count", "next_transfer_id"):
        value = getattr(state, name)
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise StateError(f"{name} must be a non-negative integer")
    if not isinstance(state.bootstrapped, bool):
        raise StateError("bootstrapped must be true or false")
    for name in ("reboot_command_key", "pending_firmware"):
        if not isinstance(getattr(state, name), str | None):
            raise StateError(f"{name} must be text or null")


def _describe_type_error(exc: TypeError) -> str:
    # TypeError from a dataclass constructor names the argument, never its value.
    return str(exc).split("__init__() ", 1)[-1]


def write_atomically(path: Path, data: bytes, *, fsync: bool) -> None:
    """Temporary file + rename in the same directory: a reader (or a restart after a crash) sees the old file or the
    new one, never a mix. With ``fsync`` the data and the rename are also flushed to disk. Raises OSError."""
    descriptor, temporary = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(descriptor, "wb") as handle:
            handle.write(data)
            if fsync:
                handle.flush()
                os.fsync(handle.fileno())
        os.replace(temporary, path)
    except OSError:
        _remove_quietly(temporary)
        raise
    if fsync:
        _fsync_directory(path.parent)


def _remove_quietly(path: str) -> None:
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass


def _fsync_directory(directory: Path) -> None:
    descriptor = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)
