"""One simulated phone's CWMP behaviour, without I/O: feed it messages and events, read back messages and actions.

Like h11, this module never touches a socket or a timer. The network layer (:mod:`wp820_sim.agent`) owns HTTP, TLS,
authentication and time; it asks a :class:`Phone` what to send and tells it what happened::

    phone = Phone(load_model("wp820"), state, clock=reactor.seconds, ip="127.0.0.5")
    phone.reboot()                               # power on: queues 1 BOOT (and 0 BOOTSTRAP until bootstrapped)
    inform = phone.start_session(["2 PERIODIC"])  # the Inform to POST
    phone.inform_delivered()                     # InformResponse received: events are delivered
    for request in phone.pending_cpe_requests(): # TransferComplete messages, one POST each
        ...; phone.cpe_request_acknowledged(request)
    reply = phone.handle(acs_request)            # every ACS request -> its response or a Fault
    phone.session_ended(succeeded=True)          # HTTP 204 (or failure: RetryCount and the backoff window grow)
    for action in phone.take_actions(): ...      # Reboot, FactoryReset, Download, Upload, ScheduleInform

Nothing here is specific to the WP820: every parameter, P-value, default, validator, reboot flag and table comes from
the :class:`~cwmp_models.datamodel.DeviceModel`. The settings the CWMP agent itself relies on (ACS URL, connection
request port, ParameterKey, STUN, ...) are found by the project's stable model keys (the constants below); a model
without one simply lacks that feature.

Theory of operation and the choices made where TR-069 or Grandstream leave room
---------------------------------------------------------------------------------
**Values.** A parameter's value comes from where the model's ``source`` says: the P-value state (``pvalue``), the
phone's identity (``identity``), a live computation (``runtime``: UpTime, ConnectionRequestURL =
``http://<ip>:<connection request port>/`` built on every read, the STUN binding the network layer reports, table
counters), the model's constant (``static``) or the agent's own store (``agent``). Reads report the *configured* value.
Secrets (``spec.secret``) read back as empty strings through TR-069, as TR-069 requires of passwords;
:meth:`Phone.value` (the simulator's own introspection) returns them.

**Reboot-bound settings.** A change to a parameter marked ``reboot`` is stored at once and reported at once
(GetParameterValues shows the configured value), but the value *in effect* stays the old one until the next reboot:
``PhoneState.pending_reboot`` keeps it, the facts the network layer uses (:attr:`Phone.connection_request_port`,
:attr:`Phone.cwmp_enabled`, ...) read it, and SetParameterValues answers Status 1. Setting the value back before the
reboot cancels the pending change.

**Writable constants.** A ``static`` parameter the model marks writable (the daemon accepts the write but has no
setter) accepts a valid write and keeps its value. ``LAN.IPAddress`` writes are stored and reported, but the simulated
phone keeps its loopback address (the ConnectionRequestURL is built from the address it really has).

**Events.** ``0 BOOTSTRAP`` is queued on first boot, after a factory reset and when the ACS URL changes, and repeated
until an Inform carrying it is acknowledged. Every queued event stays until an InformResponse confirms delivery, so a
failed session repeats it. Numbered events are single (queued once), ``M`` events are per CommandKey. At a reboot an
undelivered ``6 CONNECTION REQUEST`` is dropped (it answered a request the ACS made before the reboot); everything else
is kept. ``7 TRANSFER COMPLETE`` with ``M Download``/``M Upload`` is not queued but derived from the transfer results
whose TransferComplete the ACS has not yet acknowledged: they repeat until TransferCompleteResponse, as TR-069 asks.

**VALUE CHANGE.** For every parameter whose notification attribute is 1 or 2 the phone remembers the value last
delivered in an Inform (or set by the ACS). An Inform carries ``4 VALUE CHANGE`` and every such parameter whose value
differs. Changes made by the ACS's own SetParameterValues update that memory and so never notify (TR-069 3.2.1);
changes from any other cause do: the keypad (:meth:`Phone.local_change`), a vendor configuration file, a firmware
upgrade, a side effect of an ACS change on another parameter (the ConnectionRequestURL after its port changed), a new
STUN binding. :meth:`Phone.value_change_pending` returns 2 when an active notification waits, so the network layer can
open a session at once.

**SetParameterAttributes.** All-or-nothing. On a full path, turning a ``forceEnabled`` parameter's notification off,
or asking active notification of a ``canDeny`` parameter, is refused with 9009; on a partial path such parameters are
skipped and the rest are set (a request for ``Device.`` must not fail because one parameter below is forced).
AccessList is accepted and ignored.

**SetParameterValues.** All-or-nothing. A repeated name is 9003 outright. Otherwise each failing parameter gets a
SetParameterValuesFault inside fault 9003: 9005 unknown (or an object path), 9008 not writable, 9006 ``xsi:type``
other than the parameter's type (no coercion, a real validator's strictness), 9007 a value the model's validator
refuses (or one that cannot be read as its type, or two parameters sharing one P-value given different values).

**Transfers.** ``Download`` of ``3 Vendor Configuration File`` and ``1 Firmware Upgrade Image`` and ``Upload`` of
``1 Vendor Configuration File`` answer Status 1 and become actions; any other FileType is refused with 9003 (a valid
argument the phone does not support), a URL that is not HTTP(S) with 9013, and a transfer beyond 16 queued or not yet
acknowledged ones with 9004.
CancelTransfer removes a transfer not yet started; one in progress gives 9021, an unknown CommandKey 9003. A reboot
puts every unfinished transfer back to "not yet started" and offers it again through :meth:`Phone.take_actions`.
``ScheduleInform`` with DelaySeconds 0 is 9003. Every other RPC (ChangeDUState, ScheduleDownload, anything the phone's
CWMP namespace lacks) gets 9000.

**Configuration files** (:meth:`Phone.complete_download`), with their TransferComplete fault codes:

* encrypted (``Salted__``) and the XML config password (the model's ``config.xml_password``) is set: decrypted with
  it, using the key derivation of ``Quirks.config_kdf``; a wrong password -> 9018 (file unusable). Encrypted and no
  password set -> 9018. *Not* encrypted although a password is set: applied. The guide describes the password as what
  the phone needs "so it can decrypt" an encrypted file; it never says plaintext is refused, and authenticity is the
  job of the next rule;
* "Authenticate Config File" (``config.authenticate``) on: the file must carry P1 equal to the admin password, else
  9019 (file authentication failure; 9012 is the *server's* authentication);
* unparseable, or addressed by ``<mac>`` to another phone -> 9018;
* P-values the model does not know are ignored (a real phone ignores them; P1 is one), and so is the ParameterKey's
  (only SetParameterValues, AddObject and DeleteObject set it);
* a known P-value with a value the model refuses -> the whole file is rejected with 9018 and nothing is applied.
  A value equal to the phone's current one or to the factory default is always accepted, so a file exported by
  :meth:`Phone.export_config` (which carries the factory ``admin`` password) restores;
* otherwise applied atomically; reboot-bound values wait for a reboot (the phone does not reboot by itself).

**Firmware images.** The simulator cannot verify a real signed WP820 image, and the guide says the phone runs only
authentic ones: a file that is not a simulator image (:func:`firmware_image`) -> 9019; an image for another product
class -> 9018. A good image is reported successful and installed at the reboot the phone performs at once
(:class:`RebootAction`), so the next Inform carries ``1 BOOT``, ``7 TRANSFER COMPLETE``, ``M Download`` and the new
SoftwareVersion (a VALUE CHANGE of a forced-active parameter).

**Uploads** (:meth:`Phone.export_config`): the configured P-values as a Grandstream XML file, secrets included as a
real configuration backup has them, encrypted with the XML config password when one is set.

**Factory reset.** Back to the model's defaults plus the *site defaults* the phone was created with
(``PhoneState.factory(..., settings=...)``: the ACS URL and credentials an operator has preset, as DHCP option 43 or
a provider-customised firmware would); the identity and installed firmware stay. Then ``0 BOOTSTRAP`` and ``1 BOOT``.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field, fields
from datetime import datetime, timezone
from typing import NamedTuple, Union
from urllib.parse import urlsplit

from cwmp_models import gsconfig
from cwmp_models import messages as m
from cwmp_models.datamodel import ActiveNotify, DeviceModel, InvalidValue, ParameterSpec, Source
from cwmp_models.envelope import schema_defines
from cwmp_models.types import (
    UNKNOWN_TIME,
    CwmpValue,
    XsdType,
    format_datetime,
    format_value,
    parse_datetime,
    parse_value,
)

from .quirks import Quirks, serialize_for
from .state import PhoneState, Transfer, TransferResult

__all__ = [
    "Action",
    "Credentials",
    "DownloadAction",
    "FactoryResetAction",
    "PeriodicInform",
    "Phone",
    "PhoneError",
    "RebootAction",
    "ScheduleInformAction",
    "StunSettings",
    "UploadAction",
    "firmware_image",
    "serialize_for",  # the phone's bytes on the wire; defined with the quirks it applies
]

# --- The settings the CWMP agent itself uses, by model key ----------------------------------------------------------

SERIAL_NUMBER = "device.serial_number"
MANUFACTURER_OUI = "device.manufacturer_oui"
PRODUCT_CLASS = "device.product_class"
SOFTWARE_VERSION = "device.software_version"
MAC_ADDRESS = "lan.mac_address"
IP_ADDRESS = "lan.ip_address"
UP_TIME = "device.up_time"
CWMP_ENABLED = "tr069.enabled"
ACS_URL = "acs.url"
ACS_USERNAME = "acs.username"
ACS_PASSWORD = "acs.password"
PERIODIC_INFORM_ENABLE = "acs.periodic_inform_enable"
PERIODIC_INFORM_INTERVAL = "acs.periodic_inform_interval"
PERIODIC_INFORM_TIME = "acs.periodic_inform_time"
PARAMETER_KEY = "acs.parameter_key"
CONNECTION_REQUEST_URL = "acs.connection_request_url"
CONNECTION_REQUEST_USERNAME = "acs.connection_request_username"
CONNECTION_REQUEST_PASSWORD = "acs.connection_request_password"
CONNECTION_REQUEST_PORT = "acs.connection_request_port"
UDP_CONNECTION_REQUEST_ADDRESS = "acs.udp_connection_request_address"
NAT_DETECTED = "acs.nat_detected"
STUN_ENABLE = "acs.stun_enable"
STUN_SERVER_ADDRESS = "acs.stun_server_address"
STUN_SERVER_PORT = "acs.stun_server_port"
STUN_USERNAME = "acs.stun_username"
STUN_PASSWORD = "acs.stun_password"
STUN_MAXIMUM_KEEPALIVE = "acs.stun_maximum_keepalive_period"
STUN_MINIMUM_KEEPALIVE = "acs.stun_minimum_keepalive_period"
RETRY_MINIMUM_WAIT = "acs.cwmp_retry_minimum_wait_interval"
RETRY_MULTIPLIER = "acs.cwmp_retry_interval_multiplier"
ADMIN_PASSWORD = "web.admin_password"
CONFIG_AUTHENTICATE = "config.authenticate"
CONFIG_PASSWORD = "config.xml_password"

# Identity parameters answered from the state's identity fields.
_IDENTITY_FIELDS = {
    SERIAL_NUMBER: "serial",
    MANUFACTURER_OUI: "oui",
    PRODUCT_CLASS: "product_class",
    SOFTWARE_VERSION: "software_version",
}

# --- TR-069 vocabulary ------------------------------------------------------------------------------------------------

BOOTSTRAP = "0 BOOTSTRAP"
BOOT = "1 BOOT"
PERIODIC = "2 PERIODIC"
SCHEDULED = "3 SCHEDULED"
VALUE_CHANGE = "4 VALUE CHANGE"
CONNECTION_REQUEST = "6 CONNECTION REQUEST"
TRANSFER_COMPLETE = "7 TRANSFER COMPLETE"
M_REBOOT = "M Reboot"
M_SCHEDULE_INFORM = "M ScheduleInform"
M_DOWNLOAD = "M Download"
M_UPLOAD = "M Upload"

FIRMWARE_IMAGE = "1 Firmware Upgrade Image"
VENDOR_CONFIGURATION_FILE = "3 Vendor Configuration File"
UPLOAD_VENDOR_CONFIGURATION_FILE = "1 Vendor Configuration File"

MAX_QUEUED_TRANSFERS = 16  # the schema's limit on a TransferList
_RETRY_DEFAULTS = (5, 2000)  # TR-069 3.2.1.1: CWMPRetryMinimumWaitInterval, CWMPRetryIntervalMultiplier
_RETRY_EXPONENT_CAP = 10
_FAULT_STRING_MAX = 256
_FIRMWARE_MAGIC = b"CWMP-SIM-FIRMWARE"  # the simulator's image format, see firmware_image()
_PVALUE_NAME = re.compile(r"P?[1-9][0-9]*")

# A storage slot: ("p", P-value) in PhoneState.pvalues or ("a", model key) in PhoneState.agent_values.
Slot = tuple[str, str]


class PhoneError(ValueError):
    """The network layer or a test used a Phone wrongly (an unknown setting, an unknown transfer, ...)."""


# --- What the network layer reads -------------------------------------------------------------------------------------


class Credentials(NamedTuple):
    username: str
    password: str

    def __repr__(self) -> str:
        return f"Credentials(username={self.username!r}, password=<{'set' if self.password else 'empty'}>)"


class PeriodicInform(NamedTuple):
    enabled: bool
    interval: int
    phase: float | None  # PeriodicInformTime in epoch seconds; None for the unknown time (phase = boot time)


class StunSettings(NamedTuple):
    enabled: bool
    server_address: str
    server_port: int
    username: str
    password: str
    maximum_keepalive: int
    minimum_keepalive: int

    def __repr__(self) -> str:
        shown = self._replace(password="<set>" if self.password else "")
        return "StunSettings" + repr(tuple(shown))


@dataclass(frozen=True, slots=True)
class RebootAction:
    """Reboot now: call :meth:`Phone.reboot` once the session is over."""

    reason: str


@dataclass(frozen=True, slots=True)
class FactoryResetAction:
    """Reset to factory defaults: call :meth:`Phone.factory_reset` once the session is over."""


@dataclass(frozen=True, slots=True)
class DownloadAction:
    """After ``delay_seconds``: if :meth:`Phone.begin_transfer` agrees, fetch ``url`` (HTTP(S), these credentials)
    and report with :meth:`Phone.complete_download`."""

    transfer_id: int
    command_key: str
    file_type: str
    url: str
    username: str
    password: str = field(repr=False)
    file_size: int = 0
    target_file_name: str = ""
    delay_seconds: int = 0


@dataclass(frozen=True, slots=True)
class UploadAction:
    """After ``delay_seconds``: if :meth:`Phone.begin_transfer` agrees, PUT :meth:`Phone.export_config` to ``url``
    and report with :meth:`Phone.complete_upload`."""

    transfer_id: int
    command_key: str
    file_type: str
    url: str
    username: str
    password: str = field(repr=False)
    delay_seconds: int = 0


@dataclass(frozen=True, slots=True)
class ScheduleInformAction:
    """After ``delay_seconds``, open a session with :attr:`events`."""

    delay_seconds: int
    command_key: str

    @property
    def events(self) -> list[m.EventStruct]:
        return [m.EventStruct(SCHEDULED), m.EventStruct(M_SCHEDULE_INFORM, self.command_key)]


Action = Union[RebootAction, FactoryResetAction, DownloadAction, UploadAction, ScheduleInformAction]


def firmware_image(product_class: str, version: str) -> bytes:
    """A firmware image the simulator accepts: a one-line header naming the product class and the version."""
    if not re.fullmatch(r"[!-~]{1,64}", product_class) or not re.fullmatch(r"[!-~]{1,64}", version):
        raise PhoneError("product class and version must be 1-64 printable ASCII characters without spaces")
    return _FIRMWARE_MAGIC + f" {product_class} {version}\n".encode("ascii")


# --- The model, indexed once per model for every phone that shares it -------------------------------------------------


class _ModelIndex:
    """Lookups every phone of one model needs, computed once (a fleet of 20,000 phones shares one)."""

    ROOT = "Device."

    def __init__(self, model: DeviceModel) -> None:
        self.model = model
        self.order: list[str] = []  # every object and parameter, depth first, objects before their children
        self._walk(self.ROOT)
        self.position = {node: i for i, node in enumerate(self.order)}
        self.subtree_end: dict[str, int] = {}
        for i, node in enumerate(self.order):
            if node.endswith("."):
                end = i + 1
                while end < len(self.order) and self.order[end].startswith(node):
                    end += 1
                self.subtree_end[node] = end
        self.specs: dict[str, ParameterSpec] = {
            p.path: p for p in model.parameters.values() if p.path is not None
        }
        self.counters = {t.count_path: t for t in model.tables.values() if t.count_path is not None}
        self.forced = model.forced_inform()
        # An ordered set: the parameters whose notification attribute is on unless the ACS turns it off.
        self.notified_by_default = {p.path: None for p in model.parameters.values() if p.path and p.notification}
        self.slots: dict[str, Slot | None] = {key: _slot(spec) for key, spec in model.parameters.items()}
        self.by_slot: dict[Slot, list[ParameterSpec]] = {}
        for key, slot in self.slots.items():
            if slot is not None:
                self.by_slot.setdefault(slot, []).append(model.parameters[key])

    def _walk(self, node: str) -> None:
        self.order.append(node)
        for child in self.model.children(node):
            if child.endswith("."):
                self._walk(child)
            else:
                self.order.append(child)

    def subtree(self, object_path: str) -> list[str]:
        """The object and every node below it."""
        start = self.position[object_path]
        return self.order[start : self.subtree_end[object_path]]

    def spec(self, key: str) -> ParameterSpec | None:
        return self.model.parameters.get(key)


@functools.lru_cache(maxsize=16)
def _index(model: DeviceModel) -> _ModelIndex:
    return _ModelIndex(model)


def _slot(spec: ParameterSpec) -> Slot | None:
    """Where a setting is stored, or None for a value the phone computes or is built with."""
    if spec.source is Source.PVALUE and spec.pvalue is not None:
        return ("p", spec.pvalue)
    if spec.writable and spec.source is not Source.STATIC:
        return ("a", spec.key)
    return None


@dataclass(slots=True)
class _Inflight:
    """What the Inform of the open session reported, to be marked delivered when the InformResponse comes."""

    events: list[tuple[str, str]]
    values: dict[str, str]


class Phone:
    """One phone. Every method is synchronous and does no I/O; see the module docstring for the protocol."""

    def __init__(
        self,
        model: DeviceModel,
        state: PhoneState,
        *,
        clock: Callable[[], float],
        ip: str,
        quirks: Quirks = Quirks(),
    ) -> None:
        self.model = model
        self.state = state
        self.clock = clock
        self.ip = ip
        self.quirks = quirks
        self._index = _index(model)
        self._booted_at = clock()
        self._runtime: dict[str, CwmpValue] = {}  # live values the network layer reports (the STUN binding)
        self._actions: list[Action] = []
        self._inflight: _Inflight | None = None

    def __repr__(self) -> str:
        return f"<Phone {self.state.serial} at {self.ip}>"

    # --- Values -------------------------------------------------------------------------------------------------------

    def value(self, key_or_path: str) -> CwmpValue:
        """The configured value of a parameter, by model key or TR-069 path, secrets included (introspection for the
        simulator and its tests; the ACS sees secrets as empty strings)."""
        spec = self._index.specs.get(key_or_path) or self.model.parameters.get(key_or_path)
        if spec is None:
            raise PhoneError(f"unknown parameter {key_or_path!r}")
        return self._read(spec)

    def _read(self, spec: ParameterSpec) -> CwmpValue:
        table = self._index.counters.get(spec.path) if spec.path is not None else None
        if table is not None:
            return sum(1 for n in table.instances if self._present(table.instance_path(n)))
        field_name = _IDENTITY_FIELDS.get(spec.key)
        if field_name is not None:
            return getattr(self.state, field_name)
        if spec.key == MAC_ADDRESS:
            return ":".join(self.state.mac[i : i + 2] for i in range(0, 12, 2)).upper()
        slot = self._index.slots[spec.key]
        if slot is not None:
            kind, name = slot
            if kind == "p":
                text = self.state.pvalues.get(name)
                if text is not None:
                    return spec.from_pvalue(text)
            else:
                text = self.state.agent_values.get(name)
                if text is not None:
                    return parse_value(spec.type, text)
        if spec.source is Source.RUNTIME:
            return self._runtime_value(spec)
        return spec.default

    def _runtime_value(self, spec: ParameterSpec) -> CwmpValue:
        if spec.key == UP_TIME:
            return max(0, int(self.clock() - self._booted_at))
        if spec.key == IP_ADDRESS:
            return self.ip
        if spec.key == CONNECTION_REQUEST_URL:
            return self.connection_request_url
        return self._runtime.get(spec.key, spec.default)

    def _effective(self, spec: ParameterSpec) -> CwmpValue:
        """The value in effect: the configured one, unless it waits for a reboot."""
        running = self.state.pending_reboot.get(spec.key)
        if running is not None:
            return parse_value(spec.type, running)
        return self._read(spec)

    def _setting(self, key: str, fallback: CwmpValue) -> CwmpValue:
        spec = self._index.spec(key)
        return fallback if spec is None else self._effective(spec)

    def _text(self, spec: ParameterSpec) -> str:
        return format_value(spec.type, self._read(spec))

    def _present(self, node: str) -> bool:
        """Whether a node exists: a DeleteObject may have removed the instance it belongs to."""
        deleted_objects = self.state.deleted_objects
        return not deleted_objects or not any(node.startswith(deleted) for deleted in deleted_objects)

    def _exists(self, node: str) -> bool:
        return node in self._index.position and self._present(node)

    # --- Facts for the network layer --------------------------------------------------------------------------------

    @property
    def acs_url(self) -> str:
        return str(self._setting(ACS_URL, ""))

    @property
    def acs_credentials(self) -> Credentials:
        return Credentials(str(self._setting(ACS_USERNAME, "")), str(self._setting(ACS_PASSWORD, "")))

    @property
    def cwmp_enabled(self) -> bool:
        return bool(self._setting(CWMP_ENABLED, True))

    @property
    def connection_request_port(self) -> int:
        return int(self._setting(CONNECTION_REQUEST_PORT, 7547))

    @property
    def connection_request_url(self) -> str:
        host = f"[{self.ip}]" if ":" in self.ip else self.ip
        return f"http://{host}:{self.connection_request_port}/"

    @property
    def connection_request_credentials(self) -> Credentials:
        return Credentials(
            str(self._setting(CONNECTION_REQUEST_USERNAME, "")), str(self._setting(CONNECTION_REQUEST_PASSWORD, ""))
        )

    @property
    def periodic_inform(self) -> PeriodicInform:
        time = self._setting(PERIODIC_INFORM_TIME, UNKNOWN_TIME)
        assert isinstance(time, datetime)
        phase = None
        if time != UNKNOWN_TIME:
            # TR-069: a time without a zone is the phone's local time; the simulated phones live in UTC.
            phase = (time if time.tzinfo else time.replace(tzinfo=timezone.utc)).timestamp()
        return PeriodicInform(
            enabled=bool(self._setting(PERIODIC_INFORM_ENABLE, False)),
            interval=int(self._setting(PERIODIC_INFORM_INTERVAL, 86400)),
            phase=phase,
        )

    @property
    def stun(self) -> StunSettings:
        return StunSettings(
            enabled=bool(self._setting(STUN_ENABLE, False)),
            server_address=str(self._setting(STUN_SERVER_ADDRESS, "")),
            server_port=int(self._setting(STUN_SERVER_PORT, 3478)),
            username=str(self._setting(STUN_USERNAME, "")),
            password=str(self._setting(STUN_PASSWORD, "")),
            maximum_keepalive=int(self._setting(STUN_MAXIMUM_KEEPALIVE, -1)),
            minimum_keepalive=int(self._setting(STUN_MINIMUM_KEEPALIVE, 0)),
        )

    @property
    def parameter_key(self) -> str:
        return str(self._setting(PARAMETER_KEY, ""))

    def next_periodic_inform(self, now: float) -> float | None:
        """Seconds from ``now`` to the next periodic Inform, or None when periodic Informs are off.

        Informs fall on PeriodicInformTime + k x PeriodicInformInterval (TR-069: the time sets the phase, not the
        first Inform); with the unknown time the phase is the boot time.
        """
        periodic = self.periodic_inform
        if not periodic.enabled or periodic.interval <= 0:
            return None
        reference = self._booted_at if periodic.phase is None else periodic.phase
        return periodic.interval - (now - reference) % periodic.interval

    def retry_window(self) -> tuple[float, float]:
        """TR-069 3.2.1.1: the window to draw the wait before the next retry from, after ``retry_count`` failed
        sessions (5-10 s, then doubling up to 2560-5120 s with the default settings); (0, 0) when none failed."""
        failures = min(self.state.retry_count, _RETRY_EXPONENT_CAP)
        if failures == 0:
            return (0.0, 0.0)
        minimum = int(self._setting(RETRY_MINIMUM_WAIT, _RETRY_DEFAULTS[0]))
        factor = int(self._setting(RETRY_MULTIPLIER, _RETRY_DEFAULTS[1])) / 1000
        return (minimum * factor ** (failures - 1), minimum * factor**failures)

    # --- Power --------------------------------------------------------------------------------------------------------

    def reboot(self) -> None:
        """The phone (re)starts: call it at power-on (the simulator starting a phone) and to perform a
        :class:`RebootAction`. Settings waiting for a reboot take effect, a downloaded firmware is installed, and
        ``1 BOOT`` is queued, with ``M Reboot`` when a Reboot RPC asked for it and ``0 BOOTSTRAP`` until bootstrapped.
        Unfinished transfers are offered again by :meth:`take_actions`."""
        state = self.state
        self._booted_at = self.clock()
        self._runtime.clear()
        self._inflight = None
        state.pending_reboot.clear()
        if state.pending_firmware is not None:
            state.software_version = state.pending_firmware
            state.pending_firmware = None
        state.pending_events = [e for e in state.pending_events if e[0] != CONNECTION_REQUEST]
        if not state.bootstrapped:
            self._queue_event(BOOTSTRAP)
        self._queue_event(BOOT)
        if state.reboot_command_key is not None:
            self._queue_event(M_REBOOT, state.reboot_command_key)
            state.reboot_command_key = None
        for transfer in state.transfers:
            transfer.state = 1
        self._actions = [_action_for(transfer) for transfer in state.transfers]

    def factory_reset(self) -> None:
        """Perform a :class:`FactoryResetAction`: factory (and site) defaults, identity and firmware kept, then boot."""
        fresh = self.state.factory_reset(self.model)
        for f in fields(PhoneState):
            setattr(self.state, f.name, getattr(fresh, f.name))
        self.reboot()

    # --- Sessions -----------------------------------------------------------------------------------------------------

    def start_session(self, events: Iterable[str | m.EventStruct] = ()) -> m.Inform:
        """Queue the events that open this session (``"2 PERIODIC"``, ``"6 CONNECTION REQUEST"``,
        :attr:`ScheduleInformAction.events`) and build the Inform: every undelivered event, the model's forced
        Inform parameters and the notified parameters that changed."""
        for event in events:
            if isinstance(event, m.EventStruct):
                self._queue_event(event.event_code, event.command_key)
            else:
                self._queue_event(event)
        if not self.state.bootstrapped:
            self._queue_event(BOOTSTRAP)
        changes = self._changes()
        queued = list(self.state.pending_events)
        derived = self._transfer_events()
        if changes:
            derived.append((VALUE_CHANGE, ""))
        self._inflight = _Inflight(queued, {spec.path: text for spec, text, _ in changes if spec.path})
        reported = [spec for spec in self._index.forced if spec.path is not None and self._exists(spec.path)]
        reported += [spec for spec, _, _ in changes if spec not in reported]
        return m.Inform(
            device_id=m.DeviceId(
                self.model.manufacturer, self.state.oui, self.state.product_class, self.state.serial
            ),
            event=[m.EventStruct(code, key) for code, key in sorted(queued + derived, key=_event_order)],
            max_envelopes=1,
            current_time=datetime.fromtimestamp(self.clock(), timezone.utc),
            retry_count=self.state.retry_count,
            parameter_list=[self._reported_value(spec) for spec in reported],
        )

    def inform_delivered(self) -> None:
        """The InformResponse arrived: the Inform's events are delivered and its values are the new baseline."""
        inflight = self._inflight
        if inflight is None:
            raise PhoneError("no Inform is waiting for its InformResponse")
        self._inflight = None
        delivered = set(inflight.events)
        self.state.pending_events = [e for e in self.state.pending_events if e not in delivered]
        self.state.notified_values.update(inflight.values)
        self.state.bootstrapped = True

    def session_ended(self, *, succeeded: bool) -> None:
        """The session is over: HTTP 204 after everything was exchanged (succeeded), or any failure, which counts
        toward RetryCount and :meth:`retry_window`."""
        self._inflight = None
        self.state.retry_count = 0 if succeeded else self.state.retry_count + 1

    def session_wanted(self) -> bool:
        """Whether the phone has something to deliver now: queued events, unacknowledged transfer results or an
        active notification. After a failed session, retry (within :meth:`retry_window`) while this holds."""
        return bool(self.state.pending_events or self.state.transfer_results) or self.value_change_pending() == 2

    def value_change_pending(self) -> int:
        """The highest notification attribute among the changed notified parameters: 0 none, 1 passive (reported in
        the next Inform), 2 active (the phone opens a session for it)."""
        return max((level for _, _, level in self._changes()), default=0)

    def pending_cpe_requests(self) -> list[m.TransferComplete]:
        """The TransferComplete messages to send after the InformResponse, oldest first."""
        return [_transfer_complete(result) for result in self.state.transfer_results]

    def cpe_request_acknowledged(self, message: m.Message) -> None:
        """The ACS answered this TransferComplete with TransferCompleteResponse: forget it (and its events)."""
        for i, result in enumerate(self.state.transfer_results):
            if _transfer_complete(result) == message:
                del self.state.transfer_results[i]
                return
        raise PhoneError("no such TransferComplete is waiting for acknowledgement")

    def take_actions(self) -> list[Action]:
        """What the phone must do now that the session is over (also after :meth:`complete_download` and
        :meth:`reboot`); each action is handed out once."""
        actions, self._actions = self._actions, []
        return actions

    def _queue_event(self, code: str, command_key: str = "") -> None:
        events = self.state.pending_events
        if code.startswith("M "):
            if (code, command_key) not in events:
                events.append((code, command_key))
            return
        events[:] = [e for e in events if e[0] != code]
        events.append((code, command_key))

    def _transfer_events(self) -> list[tuple[str, str]]:
        results = self.state.transfer_results
        if not results:
            return []
        return [(TRANSFER_COMPLETE, "")] + [(M_DOWNLOAD if r.is_download else M_UPLOAD, r.command_key) for r in results]

    def _notification(self, spec: ParameterSpec) -> int:
        assert spec.path is not None
        return self.state.notification.get(spec.path, spec.notification)

    def _changes(self) -> list[tuple[ParameterSpec, str, int]]:
        """Notified parameters whose value differs from the baseline: (spec, current text, notification)."""
        by_default = self._index.notified_by_default
        paths = list(by_default)
        paths += [p for p, level in self.state.notification.items() if level and p not in by_default]
        changes = []
        for path in paths:
            spec = self._index.specs.get(path)
            if spec is None or not self._present(path):
                continue
            level = self._notification(spec)
            if not level:
                continue
            text = self._text(spec)
            baseline = self.state.notified_values.setdefault(path, text)
            if text != baseline:
                changes.append((spec, text, level))
        return changes

    def _reported_value(self, spec: ParameterSpec) -> m.ParameterValueStruct:
        assert spec.path is not None
        if spec.secret:
            return m.ParameterValueStruct(spec.path, "", XsdType.STRING)
        return m.ParameterValueStruct(spec.path, self._read(spec), spec.type)

    # --- ACS requests ----------------------------------------------------------------------------------------------

    def handle(self, request: m.Message) -> m.Message:
        """Answer one ACS request: its response, or a Fault (9000 for anything this phone does not implement or its
        CWMP namespace does not define)."""
        handler = _HANDLERS.get(type(request))
        if handler is None or not schema_defines(self.quirks.namespace, type(request)):
            return m.Fault.of(9000)
        return handler(self, request)

    def _get_rpc_methods(self, request: m.GetRPCMethods) -> m.Message:
        names = [cls.NAME for cls in _HANDLERS if schema_defines(self.quirks.namespace, cls)]
        return m.GetRPCMethodsResponse(names)

    def _get_parameter_names(self, request: m.GetParameterNames) -> m.Message:
        path = request.parameter_path
        root = _ModelIndex.ROOT
        if path == "":
            names = [root] if request.next_level else self._present_subtree(root)
        elif path.endswith("."):
            if not self._exists(path):
                return m.Fault.of(9005, f"no object {path}")
            if request.next_level:
                names = [child for child in self.model.children(path) if self._present(child)]
            else:
                names = self._present_subtree(path)
        else:
            if not self._exists(path):
                return m.Fault.of(9005, f"no parameter {path}")
            if request.next_level:
                return m.Fault.of(9003, "NextLevel true needs a partial path (ending in '.')")
            names = [path]
        return m.GetParameterNamesResponse([m.ParameterInfoStruct(name, self._writable(name)) for name in names])

    def _present_subtree(self, object_path: str) -> list[str]:
        return [node for node in self._index.subtree(object_path) if self._present(node)]

    def _writable(self, node: str) -> bool:
        if not node.endswith("."):
            return self._index.specs[node].writable
        table = self.model.table_of(node)
        return table is not None and table.writable

    def _parameters_named(self, name: str) -> list[ParameterSpec] | None:
        """The parameters a name in a Get/Set request covers (a full path, a partial path or ""), or None if unknown."""
        if name == "":
            name = _ModelIndex.ROOT
        if not self._exists(name):
            return None
        if not name.endswith("."):
            return [self._index.specs[name]]
        return [self._index.specs[node] for node in self._present_subtree(name) if not node.endswith(".")]

    def _get_parameter_values(self, request: m.GetParameterValues) -> m.Message:
        result = []
        for name in request.parameter_names:
            specs = self._parameters_named(name)
            if specs is None:
                return m.Fault.of(9005, f"no parameter or object {name}")
            result += [self._reported_value(spec) for spec in specs]
        return m.GetParameterValuesResponse(result)

    def _set_parameter_values(self, request: m.SetParameterValues) -> m.Message:
        names = [item.name for item in request.parameter_list]
        if len(set(names)) != len(names):
            return m.Fault.of(9003, "a parameter is named more than once")
        if len(request.parameter_key) > 32:
            return m.Fault.of(9003, "ParameterKey longer than 32 characters")
        faults: list[m.SetParameterValuesFault] = []
        writes: dict[Slot, str] = {}
        specs: list[ParameterSpec] = []
        for item in request.parameter_list:
            spec = self._index.specs.get(item.name) if self._exists(item.name) else None
            problem = self._check_set(item, spec, writes)
            if problem is not None:
                code, detail = problem
                faults.append(m.SetParameterValuesFault(item.name, code, _clip(detail)))
            else:
                assert spec is not None
                specs.append(spec)
        if faults:
            return m.Fault.of(9003, set_parameter_values_faults=faults)
        self._commit(writes)
        for spec in specs:
            self._acs_set(spec)
        self._set_parameter_key(request.parameter_key)
        waiting = any(spec.key in self.state.pending_reboot for spec in specs)
        return m.SetParameterValuesResponse(status=1 if waiting else 0)

    def _check_set(
        self, item: m.ParameterValueStruct, spec: ParameterSpec | None, writes: dict[Slot, str]
    ) -> tuple[int, str] | None:
        """Why one SetParameterValues item fails, or None after adding its write to ``writes``."""
        if spec is None:
            return 9005, "no such parameter"
        if not spec.writable:
            return 9008, "parameter is read-only"
        if item.type is not spec.type:
            return 9006, f"expected xsd:{spec.type.wire_name}"
        value = item.value
        if isinstance(value, str) and spec.type is not XsdType.STRING:
            return 9007, f"not a valid {spec.type.value}"
        try:
            spec.validate(value)
        except InvalidValue as exc:
            return 9007, exc.reason
        slot = self._index.slots[spec.key]
        if slot is None:
            return None  # a writable constant: the write is accepted and changes nothing
        text = _slot_text(spec, slot, value)
        if writes.setdefault(slot, text) != text:
            return 9007, "shares its setting with another parameter of this request, which sets it differently"
        return None

    def _acs_set(self, spec: ParameterSpec) -> None:
        """The ACS set this parameter itself: its new value is not a change to notify (TR-069 3.2.1)."""
        if spec.path is not None and spec.path in self.state.notified_values:
            self.state.notified_values[spec.path] = self._text(spec)

    def _set_parameter_key(self, key: str) -> None:
        spec = self._index.spec(PARAMETER_KEY)
        slot = self._index.slots[spec.key] if spec is not None else None
        if spec is None or slot is None:
            return
        self._commit({slot: _slot_text(spec, slot, key)})
        self._acs_set(spec)

    def _get_parameter_attributes(self, request: m.GetParameterAttributes) -> m.Message:
        result = []
        for name in request.parameter_names:
            specs = self._parameters_named(name)
            if specs is None:
                return m.Fault.of(9005, f"no parameter or object {name}")
            result += [m.ParameterAttributeStruct(spec.path, self._notification(spec), []) for spec in specs]
        return m.GetParameterAttributesResponse(result)

    def _set_parameter_attributes(self, request: m.SetParameterAttributes) -> m.Message:
        changes: dict[str, int] = {}
        for item in request.parameter_list:
            specs = self._parameters_named(item.name)
            if specs is None:
                return m.Fault.of(9005, f"no parameter or object {item.name}")
            if not item.notification_change:
                continue
            level = item.notification
            if level not in (0, 1, 2):
                return m.Fault.of(9003, f"Notification {level} is not 0, 1 or 2")
            partial = item.name == "" or item.name.endswith(".")
            for spec in specs:
                refusal = _notification_refusal(spec, level)
                if refusal is None:
                    assert spec.path is not None
                    changes[spec.path] = level
                elif not partial:
                    return m.Fault.of(9009, f"{spec.path}: {refusal}")
        for path, level in changes.items():
            spec = self._index.specs[path]
            was = self._notification(spec)
            if level == spec.notification:
                self.state.notification.pop(path, None)
            else:
                self.state.notification[path] = level
            if not level:
                self.state.notified_values.pop(path, None)
            elif not was:
                self.state.notified_values[path] = self._text(spec)
        return m.SetParameterAttributesResponse()

    def _add_object(self, request: m.AddObject) -> m.Message:
        name = request.object_name
        table = self.model.tables.get(name)
        if table is None or not table.writable or not self._exists(name):
            return m.Fault.of(9005, f"{name} is not a table the phone can add to")
        missing = [n for n in table.instances if not self._present(table.instance_path(n))]
        if not missing:
            return m.Fault.of(9004, f"{name} already holds every instance the phone supports")
        number = missing[0]
        instance = table.instance_path(number)
        self.state.deleted_objects = [d for d in self.state.deleted_objects if not d.startswith(instance)]
        defaults: dict[Slot, str] = {}
        for node in self._index.subtree(instance):
            spec = self._index.specs.get(node)
            slot = self._index.slots[spec.key] if spec is not None else None
            if spec is not None and slot is not None:
                defaults[slot] = _slot_text(spec, slot, spec.default)
        self._commit(defaults)
        self._set_parameter_key(request.parameter_key)
        return m.AddObjectResponse(instance_number=number, status=0)

    def _delete_object(self, request: m.DeleteObject) -> m.Message:
        name = request.object_name
        table = self.model.table_of(name)
        if table is None or name == table.path or not table.writable or not self._exists(name):
            return m.Fault.of(9005, f"{name} is not an instance the phone can delete")
        kept = [d for d in self.state.deleted_objects if not d.startswith(name)]
        self.state.deleted_objects = kept + [name]
        self._set_parameter_key(request.parameter_key)
        return m.DeleteObjectResponse(status=0)

    def _reboot_rpc(self, request: m.Reboot) -> m.Message:
        # Written to flash before rebooting, so M Reboot is reported even if the simulator dies in between.
        self.state.reboot_command_key = request.command_key
        self._actions.append(RebootAction("Reboot RPC"))
        return m.RebootResponse()

    def _factory_reset_rpc(self, request: m.FactoryReset) -> m.Message:
        self._actions.append(FactoryResetAction())
        return m.FactoryResetResponse()

    def _schedule_inform(self, request: m.ScheduleInform) -> m.Message:
        if request.delay_seconds < 1:
            return m.Fault.of(9003, "DelaySeconds must be at least 1")
        self._actions.append(ScheduleInformAction(request.delay_seconds, request.command_key))
        return m.ScheduleInformResponse()

    def _download(self, request: m.Download) -> m.Message:
        return self._accept_transfer(request, (VENDOR_CONFIGURATION_FILE, FIRMWARE_IMAGE), m.DownloadResponse)

    def _upload(self, request: m.Upload) -> m.Message:
        return self._accept_transfer(request, (UPLOAD_VENDOR_CONFIGURATION_FILE,), m.UploadResponse)

    def _accept_transfer(
        self, request: m.Download | m.Upload, file_types: tuple[str, ...], response: type[m.Message]
    ) -> m.Message:
        """Queue a Download or Upload the phone supports (answered Status 1: it completes after the session)."""
        if request.file_type not in file_types:
            return m.Fault.of(9003, f"FileType {request.file_type!r} is not supported")
        problem = self._transfer_refusal(request.url)
        if problem is not None:
            return problem
        self._queue_transfer(
            Transfer(
                transfer_id=self.state.next_transfer_id,
                is_download=isinstance(request, m.Download),
                command_key=request.command_key,
                file_type=request.file_type,
                url=request.url,
                username=request.username,
                password=request.password,
                file_size=getattr(request, "file_size", 0),
                target_file_name=getattr(request, "target_file_name", ""),
                delay_seconds=request.delay_seconds,
            )
        )
        return response(status=1)

    def _transfer_refusal(self, url: str) -> m.Fault | None:
        try:
            parts = urlsplit(url)
        except ValueError:
            return m.Fault.of(9003, "URL is malformed")
        if parts.scheme.lower() not in ("http", "https"):
            return m.Fault.of(9013, "only HTTP and HTTPS transfers are supported")
        if not parts.hostname:
            return m.Fault.of(9003, "URL has no host")
        # Unacknowledged results count too: each one adds an event to every Inform, and an Inform holds at most 64.
        if len(self.state.transfers) + len(self.state.transfer_results) >= MAX_QUEUED_TRANSFERS:
            return m.Fault.of(9004, f"{MAX_QUEUED_TRANSFERS} transfers are already queued or unreported")
        return None

    def _queue_transfer(self, transfer: Transfer) -> None:
        self.state.next_transfer_id += 1
        self.state.transfers.append(transfer)
        self._actions.append(_action_for(transfer))

    def _get_queued_transfers(self, request: m.GetQueuedTransfers) -> m.Message:
        return m.GetQueuedTransfersResponse(
            [m.QueuedTransferStruct(t.command_key, t.state) for t in self.state.transfers]
        )

    def _get_all_queued_transfers(self, request: m.GetAllQueuedTransfers) -> m.Message:
        return m.GetAllQueuedTransfersResponse(
            [
                m.AllQueuedTransferStruct(
                    t.command_key, t.state, t.is_download, t.file_type, t.file_size, t.target_file_name
                )
                for t in self.state.transfers
            ]
        )

    def _cancel_transfer(self, request: m.CancelTransfer) -> m.Message:
        matching = [t for t in self.state.transfers if t.command_key == request.command_key]
        if not matching:
            return m.Fault.of(9003, "no queued transfer has this CommandKey")
        if any(t.state != 1 for t in matching):
            return m.Fault.of(9021)
        self.state.transfers = [t for t in self.state.transfers if t.command_key != request.command_key]
        return m.CancelTransferResponse()

    # --- Transfers ----------------------------------------------------------------------------------------------------

    def begin_transfer(self, transfer_id: int) -> bool:
        """The network layer is about to perform a Download/Upload action. False: it was cancelled meanwhile."""
        transfer = self._transfer(transfer_id)
        if transfer is None or transfer.state != 1:
            return False
        transfer.state = 2
        return True

    def complete_download(
        self,
        transfer_id: int,
        data: bytes | None,
        fault: tuple[int, str] | None = None,
        start: datetime | None = None,
        end: datetime | None = None,
    ) -> m.FaultStruct:
        """Finish a Download: ``data`` is the fetched file, or ``fault`` the transfer's own failure (9010, 9012,
        9015, 9016, 9017, ...). Applies a configuration file or stages a firmware image (rules in the module
        docstring) and queues the TransferComplete. Returns its FaultStruct (code 0 = success)."""
        transfer = self._finish(transfer_id, is_download=True)
        if fault is None:
            if data is None:
                raise PhoneError("complete_download needs the fetched data or a fault")
            if transfer.file_type == FIRMWARE_IMAGE:
                fault = self._stage_firmware(data)
            else:
                fault = self._apply_config(data)
        return self._record_result(transfer, fault, start, end)

    def complete_upload(
        self,
        transfer_id: int,
        fault: tuple[int, str] | None = None,
        start: datetime | None = None,
        end: datetime | None = None,
    ) -> m.FaultStruct:
        """Finish an Upload (``fault`` None: the ACS accepted the file) and queue its TransferComplete."""
        return self._record_result(self._finish(transfer_id, is_download=False), fault, start, end)

    def export_config(self) -> bytes:
        """The phone's configuration as a Grandstream XML file, encrypted with the XML config password if set."""
        data = gsconfig.build_config(self.state.pvalues, mac=self.state.mac)
        password = str(self._setting(CONFIG_PASSWORD, ""))
        if password:
            data = gsconfig.encrypt_config(data, password, kdf=self.quirks.config_kdf)
        return data

    def _transfer(self, transfer_id: int) -> Transfer | None:
        return next((t for t in self.state.transfers if t.transfer_id == transfer_id), None)

    def _finish(self, transfer_id: int, *, is_download: bool) -> Transfer:
        transfer = self._transfer(transfer_id)
        if transfer is None or transfer.is_download is not is_download:
            kind = "download" if is_download else "upload"
            raise PhoneError(f"no queued {kind} with transfer id {transfer_id}")
        self.state.transfers.remove(transfer)
        return transfer

    def _record_result(
        self, transfer: Transfer, fault: tuple[int, str] | None, start: datetime | None, end: datetime | None
    ) -> m.FaultStruct:
        now = datetime.fromtimestamp(self.clock(), timezone.utc)
        code, text = fault if fault is not None else (0, "")
        self.state.transfer_results.append(
            TransferResult(
                is_download=transfer.is_download,
                command_key=transfer.command_key,
                fault_code=code,
                fault_string=_clip(text),
                start_time=format_datetime(start or now),
                complete_time=format_datetime(end or now),
            )
        )
        return m.FaultStruct(code, _clip(text))

    def _stage_firmware(self, data: bytes) -> tuple[int, str] | None:
        header = data.split(b"\n", 1)[0].split(b" ")
        if len(header) != 3 or header[0] != _FIRMWARE_MAGIC:
            return 9019, "not an authentic firmware image"
        product_class, version = (part.decode("ascii", "replace") for part in header[1:])
        if product_class != self.state.product_class:
            return 9018, f"firmware image is for {product_class[:64]}"
        self.state.pending_firmware = version
        self._actions.append(RebootAction("firmware upgrade"))
        return None

    def _apply_config(self, data: bytes) -> tuple[int, str] | None:
        password = str(self._setting(CONFIG_PASSWORD, ""))
        try:
            if gsconfig.is_encrypted(data):
                if not password:
                    return 9018, "file is encrypted and no XML config file password is set"
                data = gsconfig.decrypt_config(data, password, kdf=self.quirks.config_kdf)
            config = gsconfig.parse_config(data)
        except gsconfig.ConfigFileError as exc:
            return 9018, exc.reason
        if config.mac is not None and config.mac != self.state.mac:
            return 9018, "file is addressed to another device"
        if self._setting(CONFIG_AUTHENTICATE, False) is True:
            if not gsconfig.check_authentication(config, str(self._setting(ADMIN_PASSWORD, ""))):
                return 9019, "P1 is missing or does not match the admin password"
        writes: dict[Slot, str] = {}
        for pvalue, text in config.pvalues.items():
            for spec in self.model.by_pvalue(pvalue):
                if spec.key == PARAMETER_KEY:
                    continue  # only SetParameterValues, AddObject and DeleteObject set it (TR-069)
                try:
                    value = spec.from_pvalue(text)
                    self._check_acceptable(spec, value)
                except InvalidValue as exc:
                    return 9018, f"{pvalue}: {exc.reason}"
                writes[("p", pvalue)] = spec.to_pvalue(value)
        self._commit(writes)
        return None

    def _check_acceptable(self, spec: ParameterSpec, value: CwmpValue) -> None:
        """Settings from the keypad or a configuration file pass the model's validator, except that the current value
        and the factory default are always accepted (restoring a backup restores them)."""
        if value == spec.default or value == self._read(spec):
            return
        spec.validate(value)

    # --- The keypad and the network layer's live values ------------------------------------------------------------

    def local_change(self, target: str, value: CwmpValue) -> int:
        """Change a setting "on the phone's keypad": ``target`` is a model key or TR-069 path (``value`` typed, or
        its TR-069 text) or a P-value such as ``"P276"`` (``value`` the P-value text). Returns
        :meth:`value_change_pending`. Raises :class:`PhoneError` or :class:`InvalidValue` naming the problem."""
        by_pvalue = _PVALUE_NAME.fullmatch(target) is not None
        if by_pvalue:
            specs = self.model.by_pvalue(target)
        else:
            spec = self._index.specs.get(target) or self.model.parameters.get(target)
            specs = [spec] if spec is not None else []
        if not specs:
            raise PhoneError(f"unknown setting {target!r}")
        writes: dict[Slot, str] = {}
        for spec in specs:
            slot = self._index.slots[spec.key]
            if slot is None or spec.key == PARAMETER_KEY:
                raise PhoneError(f"{spec.key} is not a setting the keypad can change")
            typed = _typed(spec, value, by_pvalue)
            self._check_acceptable(spec, typed)
            writes[slot] = _slot_text(spec, slot, typed)
        self._commit(writes)
        return self.value_change_pending()

    def set_udp_connection_request_address(self, address: str | None, *, nat_detected: bool) -> int:
        """The STUN client's binding (``host:port`` as seen by the STUN server, or None without one) and whether it
        differs from the local address. Returns :meth:`value_change_pending` (the ACS usually asks for active
        notification of UDPConnectionRequestAddress)."""
        self._runtime[UDP_CONNECTION_REQUEST_ADDRESS] = address or ""
        self._runtime[NAT_DETECTED] = nat_detected
        return self.value_change_pending()

    # --- Changing settings -------------------------------------------------------------------------------------------

    def _commit(self, writes: Mapping[Slot, str]) -> None:
        """Store settings, keeping reboot-bound ones' running values and noticing an ACS URL change."""
        affected = {spec.key: spec for slot in writes for spec in self._index.by_slot.get(slot, ())}
        before = {key: self._text(spec) for key, spec in affected.items() if spec.reboot}
        acs_url = self.acs_url
        for (kind, name), text in writes.items():
            (self.state.pvalues if kind == "p" else self.state.agent_values)[name] = text
        pending = self.state.pending_reboot
        for key, old in before.items():
            new = self._text(affected[key])
            if key in pending:
                if new == pending[key]:
                    del pending[key]
            elif new != old:
                pending[key] = old
        if self.acs_url != acs_url:
            self.state.bootstrapped = False
            self._queue_event(BOOTSTRAP)


# --- Helpers ----------------------------------------------------------------------------------------------------------


def _slot_text(spec: ParameterSpec, slot: Slot, value: CwmpValue) -> str:
    return spec.to_pvalue(value) if slot[0] == "p" else format_value(spec.type, value)


def _typed(spec: ParameterSpec, value: CwmpValue, as_pvalue: bool) -> CwmpValue:
    if not isinstance(value, str):
        return value
    if as_pvalue:
        return spec.from_pvalue(value)
    try:
        return parse_value(spec.type, value)
    except ValueError:
        raise InvalidValue(spec.key, f"not a valid {spec.type.value}") from None


def _notification_refusal(spec: ParameterSpec, level: int) -> str | None:
    if spec.active_notify is ActiveNotify.FORCE_ENABLED and level != 2:
        return "active notification is forced"
    if spec.active_notify is ActiveNotify.CAN_DENY and level == 2:
        return "active notification is refused for this parameter"
    return None


def _event_order(event: tuple[str, str]) -> tuple[int, int]:
    code = event[0]
    number = code.split(" ", 1)[0]
    return (0, int(number)) if number.isdigit() else (1, 0)


def _action_for(transfer: Transfer) -> Action:
    if transfer.is_download:
        return DownloadAction(
            transfer.transfer_id,
            transfer.command_key,
            transfer.file_type,
            transfer.url,
            transfer.username,
            transfer.password,
            transfer.file_size,
            transfer.target_file_name,
            transfer.delay_seconds,
        )
    return UploadAction(
        transfer.transfer_id,
        transfer.command_key,
        transfer.file_type,
        transfer.url,
        transfer.username,
        transfer.password,
        transfer.delay_seconds,
    )


def _transfer_complete(result: TransferResult) -> m.TransferComplete:
    return m.TransferComplete(
        command_key=result.command_key,
        fault_struct=m.FaultStruct(result.fault_code, result.fault_string),
        start_time=parse_datetime(result.start_time),
        complete_time=parse_datetime(result.complete_time),
    )


def _clip(text: str) -> str:
    return text if len(text) <= _FAULT_STRING_MAX else text[: _FAULT_STRING_MAX - 3] + "..."


_HANDLERS: dict[type[m.Message], Callable[[Phone, m.Message], m.Message]] = {  # type: ignore[dict-item]
    m.GetRPCMethods: Phone._get_rpc_methods,
    m.GetParameterNames: Phone._get_parameter_names,
    m.GetParameterValues: Phone._get_parameter_values,
    m.SetParameterValues: Phone._set_parameter_values,
    m.GetParameterAttributes: Phone._get_parameter_attributes,
    m.SetParameterAttributes: Phone._set_parameter_attributes,
    m.AddObject: Phone._add_object,
    m.DeleteObject: Phone._delete_object,
    m.Reboot: Phone._reboot_rpc,
    m.FactoryReset: Phone._factory_reset_rpc,
    m.ScheduleInform: Phone._schedule_inform,
    m.Download: Phone._download,
    m.Upload: Phone._upload,
    m.GetQueuedTransfers: Phone._get_queued_transfers,
    m.GetAllQueuedTransfers: Phone._get_all_queued_transfers,
    m.CancelTransfer: Phone._cancel_transfer,
}
