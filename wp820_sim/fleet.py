"""A fleet: 1 to 20,000 simulated phones in one process, one reactor, one timer heap.

Each phone of index ``i`` (0-based, plus ``first_index``) gets a deterministic identity (``identity``):

* MAC ``C074AD`` + the 24-bit number ``i + 1`` (so ``C074AD000001`` first), serial number = the MAC in lower case,
  OUI ``000B82``, product class from the model (``WP820``);
* its own loopback address ``127.A.B.C``: the ``i + 1``-th address counting from 127.0.0.1 that ends in neither
  ``.0`` nor ``.255`` (127.0.0.1 itself, the usual ACS address, is skipped): ``127.0.0.2``, ..., ``127.0.0.254``,
  ``127.0.1.1``, ... On Linux all of 127/8 is local, so each phone's sessions come from an address of its own and
  its connection requests are taken at that address;
* its state file ``<state_dir>/<serial>.json`` (``wp820_sim.state``): created from factory defaults plus the site
  settings on first start, loaded afterwards, so a restarted fleet remembers every change and does not bootstrap
  again;
* ACS credentials from an enrolment CSV (``serial,username,password``, as ``acs enrol`` writes it) or one shared
  bootstrap username/password; like the ACS URL they are site defaults, written when a phone's state is created (and
  restored by a factory reset), not forced on a phone whose ACS has since changed them.

Start-up spreads the boots over ``ramp`` seconds. An idle phone holds no file descriptor: its connection-request
listener is an entry in its port's table, served by one shared socket per port (``wp820_sim.connreq``; only when
another process already uses a port do the phones on it fall back to a socket each), and its client connection lives
only as long as a session. A phone behind the simulated NAT holds its NAT's UDP socket all the time. So
RLIMIT_NOFILE bounds the sessions in flight at once (and, in NAT mode, the phones), not the fleet: ``start`` raises it
as far as the process may (the soft limit to the hard one, and the hard one too when privileged), warns when an
unramped boot storm could exceed it, and refuses a NAT fleet when even one socket per phone would not fit. State files
are written after each session by one worker thread (``StateWriter``). ``stop`` powers every phone off and waits for
its state to be on disk.

Measured on a 2-core machine (``bench/fleet.py``, mini ACS in another process; docs/performance.md, "Simulator
fleet"): 20,000 phones in one process under a hard limit of 20,000 open files, boots ramped over 120 s, every one
bootstrapped with no failed session; 7.7 KiB of memory per phone (209 MiB in all, 59 MiB of it the interpreter,
Twisted and the model), 13 open files once idle (at most 75 during the boot), 3.1-3.6 ms of CPU per bootstrap
session. What limits a fleet now is memory and the session rate the ramp asks for.

The in-process API for tests and benchmarks: ``phone(serial)``, ``agent(serial)``, ``await wait_sessions(n)``,
``await states_written()``, ``counters`` (``sessions_ok``, ``sessions_failed``, ``retries``, ``http_503``,
``connection_requests_accepted``, ``cr_*``, ``udp_cr_*``, ``stun_*``, ``nat_*``, ``transfers_*``).
"""

from __future__ import annotations

import csv
import io
import random
import resource
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NamedTuple

import structlog
from twisted.internet import defer

from cwmp_models.datamodel import DeviceModel, InvalidValue, load_model
from cwmp_models.types import CwmpValue
from wp820_sim.agent import AgentSettings, PhoneAgent, Scheduler, Stats, TlsPolicy
from wp820_sim.connreq import ConnectionRequestService
from wp820_sim.nat import SimulatedNat, StunBinding
from wp820_sim.phone import Credentials, Phone, PhoneError
from wp820_sim.quirks import Quirks
from wp820_sim.state import PhoneState, StateError, state_path, write_atomically

__all__ = [
    "MAC_PREFIX",
    "OUI",
    "MAX_INDEX",
    "Fleet",
    "FleetConfig",
    "FleetError",
    "Identity",
    "StateWriter",
    "identity",
    "load_credentials_csv",
    "raise_open_file_limit",
]

log = structlog.get_logger(__name__)

MAC_PREFIX = "C074AD"
OUI = "000B82"
_ADDRESSES_PER_B = 254  # last octets 1..254
# The MAC's last three bytes hold index + 1, and 127.A.B.C runs out at A = 255.
MAX_INDEX = min(0xFFFFFE, 256 * 256 * _ADDRESSES_PER_B - 2)
# Any phone in a session holds one socket (a boot storm has every phone in a session at once); a phone behind the
# simulated NAT also holds its NAT's UDP socket all the time. Idle phones reached through a shared
# connection-request socket hold none.
_FD_RESERVE = 256
_FDS_MINIMUM_RESERVE = 64


class FleetError(Exception):
    """A fleet that cannot start as configured; the message names the problem (never a secret)."""


class Identity(NamedTuple):
    index: int
    mac: str  # upper-case hex, no separators
    serial: str
    ip: str


def identity(index: int) -> Identity:
    if not 0 <= index <= MAX_INDEX:
        raise FleetError(f"phone index {index} is outside 0..{MAX_INDEX}")
    number = index + 1
    mac = f"{MAC_PREFIX}{number:06X}"
    # Counting from 127.0.0.1 (n = 0) over addresses whose last octet is 1..254; n = index + 1 skips 127.0.0.1.
    a, rest = divmod(number // _ADDRESSES_PER_B, 256)
    c = number % _ADDRESSES_PER_B + 1
    return Identity(index, mac, mac.lower(), f"127.{a}.{rest}.{c}")


def load_credentials_csv(path: str | Path) -> dict[str, Credentials]:
    """Read ``serial,username,password`` rows (header required, serials matched case-insensitively)."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise FleetError(f"cannot read credentials file {str(path)!r}: {exc.strerror or exc}") from None
    except UnicodeDecodeError:
        raise FleetError(f"credentials file {str(path)!r} is not UTF-8") from None
    reader = csv.DictReader(io.StringIO(text))
    columns = {(name or "").strip().lower() for name in reader.fieldnames or ()}
    missing = {"serial", "username", "password"} - columns
    if missing:
        raise FleetError(f"credentials file {str(path)!r} lacks column(s) {', '.join(sorted(missing))}")
    credentials: dict[str, Credentials] = {}
    for raw in reader:
        row = {(key or "").strip().lower(): (value or "").strip() for key, value in raw.items()}
        line = reader.line_num
        serial = row.get("serial", "").lower()
        if not serial or not row.get("username"):
            raise FleetError(f"credentials file {str(path)!r} line {line}: serial and username are required")
        if serial in credentials:
            raise FleetError(f"credentials file {str(path)!r} line {line}: serial {serial!r} appears twice")
        credentials[serial] = Credentials(row["username"], row.get("password", ""))
    return credentials


def raise_open_file_limit(wanted: int) -> int:
    """Raise RLIMIT_NOFILE's soft limit to ``wanted`` if the hard limit allows, else as far as it goes (and the hard
    limit too, when the process is privileged). Returns the soft limit in force."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard != resource.RLIM_INFINITY and hard < wanted:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (wanted, wanted))
            return wanted
        except (ValueError, OSError):
            pass  # unprivileged: the hard limit is the ceiling
    target = wanted if hard == resource.RLIM_INFINITY else min(max(wanted, soft), hard)
    if target > soft:
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
        return target
    return soft


@dataclass(frozen=True)
class FleetConfig:
    acs_url: str
    phones: int
    state_dir: Path
    ca_file: Path | None = None
    credentials: Mapping[str, Credentials] | None = None  # per serial (lower case): the enrolment CSV
    bootstrap: Credentials | None = None  # one shared username/password
    quirks: Quirks = Quirks()
    nat: bool = False
    stun_server: tuple[str, int] | None = None
    ramp: float = 0.0
    periodic_interval: int | None = None
    settings: Mapping[str, CwmpValue] = field(default_factory=dict)  # more site defaults, by model key
    first_index: int = 0
    agent: AgentSettings = AgentSettings()
    cr_min_interval: float = 5.0
    nat_mapping_timeout: float | None = None
    fsync: bool = False  # atomic rename is enough against a killed process; fsync also survives power loss
    seed: int = 0

    def __post_init__(self) -> None:
        if self.phones < 1:
            raise FleetError("a fleet needs at least one phone")
        if self.first_index < 0 or self.first_index + self.phones - 1 > MAX_INDEX:
            last = self.first_index + self.phones - 1
            raise FleetError(f"phone indexes {self.first_index}..{last} exceed {MAX_INDEX}")
        if self.ramp < 0:
            raise FleetError("the ramp must not be negative")
        if self.periodic_interval is not None and self.periodic_interval < 1:
            raise FleetError("the periodic inform interval must be at least 1 second")
        if self.credentials is not None and self.bootstrap is not None:
            raise FleetError("give either per-phone credentials or bootstrap credentials, not both")


class Fleet:
    """Many phones in one process. ``start`` and ``stop`` are coroutines; the rest is synchronous."""

    def __init__(
        self,
        config: FleetConfig,
        *,
        reactor: Any = None,
        clock: Any = None,
        model: DeviceModel | None = None,
    ) -> None:
        if reactor is None:
            from twisted.internet import reactor  # type: ignore[no-redef]
        self.config = config
        self._reactor = reactor
        self.model = model or load_model("wp820")
        self.scheduler = Scheduler(clock if clock is not None else reactor)
        self.stats = Stats()
        self._rng = random.Random(config.seed)
        self._tls_policy = TlsPolicy(config.ca_file)
        self._agents: dict[str, PhoneAgent] = {}
        self._paths: dict[str, Path] = {}
        self._states: dict[str, PhoneState] = {}
        self._dirty: set[str] = set()
        self._flush: Any = None
        self._writer = StateWriter(reactor, fsync=config.fsync, on_error=self._write_failed)
        self._cr_service = ConnectionRequestService(
            reactor, self.stats, self.scheduler.seconds, min_interval=config.cr_min_interval
        )
        self.open_file_limit: int | None = None
        self.started = False

    # -- inspection --------------------------------------------------------------------------------------------

    @property
    def counters(self) -> dict[str, int]:
        return dict(self.stats.counts)

    @property
    def serials(self) -> list[str]:
        return list(self._agents)

    def agent(self, serial: str) -> PhoneAgent:
        try:
            return self._agents[serial.lower()]
        except KeyError:
            raise FleetError(f"no phone with serial {serial!r} in this fleet") from None

    def phone(self, serial: str) -> Phone:
        return self.agent(serial).phone

    def wait_sessions(self, count: int) -> defer.Deferred[int]:
        """Fires once ``count`` sessions (over the whole fleet, since it started) have succeeded."""
        return self.stats.wait_for("sessions_ok", count)

    def states_written(self) -> defer.Deferred[None]:
        """Fires once every state changed so far is on disk."""
        if self._flush is not None and self._flush.active():
            self._flush.cancel()
        self._save_dirty()
        return self._writer.drain()

    def summary(self) -> list[dict[str, Any]]:
        return [
            {
                "serial": serial,
                "ip": agent.ip,
                "state": agent.state.value,
                "sessions_ok": agent.sessions_ok,
                "sessions_failed": agent.sessions_failed,
                "last_error": agent.last_error,
                "parameter_key": agent.phone.parameter_key,
            }
            for serial, agent in self._agents.items()
        ]

    # -- life cycle --------------------------------------------------------------------------------------------

    async def start(self) -> None:
        config = self.config
        if self.started:
            raise FleetError("the fleet is already running")
        always_open = config.phones if config.nat else 0
        wanted = always_open + config.phones + _FD_RESERVE
        self.open_file_limit = raise_open_file_limit(wanted)
        if self.open_file_limit < always_open + _FDS_MINIMUM_RESERVE:
            raise FleetError(
                f"{config.phones} phones behind the simulated NAT need at least {always_open + _FDS_MINIMUM_RESERVE} "
                f"open files (one UDP socket each, more during sessions) but this process may open only "
                f"{self.open_file_limit}: raise the hard limit (ulimit -Hn, or LimitNOFILE= in a systemd unit) or run "
                "fewer phones per process"
            )
        if self.open_file_limit < wanted and config.ramp == 0:
            log.warning(
                "sim.few_open_files",
                phones=config.phones,
                nofile=self.open_file_limit,
                advice="sessions may fail with EMFILE (and retry) if many phones talk at once: use --ramp",
            )
        try:
            config.state_dir.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise FleetError(f"cannot create state directory {str(config.state_dir)!r}: {exc.strerror}") from None
        agents = [self._create(identity(config.first_index + i)) for i in range(config.phones)]
        self.started = True
        for position, agent in enumerate(agents):
            agent.power_on(config.ramp * position / config.phones)
        log.info("sim.fleet_started", phones=config.phones, nofile=self.open_file_limit)

    async def stop(self) -> None:
        if not self.started:
            return
        self.started = False
        await defer.DeferredList([defer.ensureDeferred(agent.stop()) for agent in self._agents.values()])
        await self.states_written()
        await self._writer.close()
        self.scheduler.stop()
        log.info("sim.fleet_stopped", phones=len(self._agents))

    # -- building phones ---------------------------------------------------------------------------------------

    def _create(self, ident: Identity) -> PhoneAgent:
        config = self.config
        path = state_path(config.state_dir, ident.serial)
        if path.exists():
            try:
                state = PhoneState.load(path)
            except StateError as exc:
                raise FleetError(str(exc)) from None
            if state.serial != ident.serial:
                raise FleetError(f"{path}: holds serial {state.serial!r}, expected {ident.serial!r}")
            fresh = False
        else:
            state = self._factory_state(ident)
            fresh = True
        phone = Phone(self.model, state, clock=self.scheduler.seconds, ip=ident.ip, quirks=config.quirks)
        if fresh and config.stun_server is not None:
            phone.local_change("acs.stun_server_port", config.stun_server[1])  # an agent setting, not a P-value
        serial = ident.serial
        self._paths[serial] = path
        self._states[serial] = state
        agent = PhoneAgent(
            phone,
            reactor=self._reactor,
            scheduler=self.scheduler,
            settings=config.agent,
            stats=self.stats,
            tls_policy=self._tls_policy,
            rng=self._rng,
            persist=lambda: self._mark_dirty(serial),
        )
        if config.nat:
            nat = SimulatedNat(
                self._reactor,
                public_ip=ident.ip,
                stats=self.stats,
                clock=self.scheduler.seconds,
                mapping_timeout=config.nat_mapping_timeout,
            )
            StunBinding(
                agent, nat, scheduler=self.scheduler, stats=self.stats, rng=self._rng, wall_clock=self._reactor.seconds
            )
        else:
            self._cr_service.attach(agent)
        self._agents[serial] = agent
        return agent

    def _factory_state(self, ident: Identity) -> PhoneState:
        config = self.config
        settings: dict[str, CwmpValue] = {"acs.url": config.acs_url}
        credentials = config.bootstrap
        if config.credentials is not None:
            credentials = config.credentials.get(ident.serial)
            if credentials is None:
                raise FleetError(f"the credentials file has no row for serial {ident.serial!r}")
        if credentials is not None:
            settings["acs.username"] = credentials.username
            settings["acs.password"] = credentials.password
        if config.periodic_interval is not None:
            settings["acs.periodic_inform_enable"] = True
            settings["acs.periodic_inform_interval"] = config.periodic_interval
        if config.nat:
            settings["acs.stun_enable"] = True
        if config.stun_server is not None:
            settings["acs.stun_server_address"] = config.stun_server[0]
        settings.update(config.settings)
        try:
            return PhoneState.factory(self.model, serial=ident.serial, mac=ident.mac, oui=OUI, settings=settings)
        except (InvalidValue, PhoneError, StateError) as exc:
            raise FleetError(f"cannot create phone {ident.serial}: {exc}") from None

    def _mark_dirty(self, serial: str) -> None:
        # Several changes in one reactor turn (a session's end, its actions) cost one write.
        self._dirty.add(serial)
        if self._flush is None:
            self._flush = self._reactor.callLater(0, self._save_dirty)

    def _save_dirty(self) -> None:
        self._flush = None
        dirty, self._dirty = self._dirty, set()
        for serial in dirty:
            # Serialised here, in the reactor thread, so the snapshot is consistent; written by the writer thread.
            self._writer.submit(self._paths[serial], self._states[serial].to_json().encode("utf-8"))

    def _write_failed(self, path: Path, reason: str) -> None:
        self.stats.failure("state_save_failed", "sim.state_save_failed", path=str(path), error=reason)


class StateWriter:
    """Writes state files on one worker thread, so a boot storm's thousands of writes never stall the reactor.

    Replacing a file costs milliseconds of blocking I/O on ext4 (rename over an existing file forces its data out),
    which would stop every phone's timers and sockets meanwhile. Each write is atomic, like ``PhoneState.save``:
    a temporary file in the same directory, optionally fsync'd, then renamed over the old one. A phone with a write
    still queued has it replaced by the newer snapshot; writes of one phone never overtake each other.
    """

    def __init__(self, reactor: Any, *, fsync: bool, on_error: Callable[[Path, str], None]) -> None:
        self._reactor = reactor
        self._fsync = fsync
        self._on_error = on_error
        self._pending: dict[Path, bytes] = {}
        self._condition = threading.Condition()
        self._busy = False
        self._stopping = False
        self._thread: threading.Thread | None = None
        self._drained: list[defer.Deferred[None]] = []

    def submit(self, path: Path, data: bytes) -> None:
        with self._condition:
            self._pending[path] = data
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="wp820-sim-state-writer", daemon=True)
                self._thread.start()
            self._condition.notify()

    def drain(self) -> defer.Deferred[None]:
        """Fires once every submitted snapshot is on disk."""
        d: defer.Deferred[None] = defer.Deferred()
        with self._condition:
            if not self._pending and not self._busy:
                return defer.succeed(None)
            self._drained.append(d)
        return d

    async def close(self) -> None:
        await self.drain()
        with self._condition:
            self._stopping = True
            self._condition.notify()
        thread, self._thread = self._thread, None
        if thread is not None:
            thread.join()  # drained: the thread is only returning

    def _run(self) -> None:
        while True:
            with self._condition:
                while not self._pending and not self._stopping:
                    self._condition.wait()
                if not self._pending:
                    return
                path = next(iter(self._pending))
                data = self._pending.pop(path)
                self._busy = True
            problem = _write_atomically(path, data, fsync=self._fsync)
            with self._condition:
                self._busy = False
                drained = not self._pending
                waiters, self._drained = (self._drained, []) if drained else ([], self._drained)
            if problem is not None:
                self._reactor.callFromThread(self._on_error, path, problem)
            for waiter in waiters:
                self._reactor.callFromThread(waiter.callback, None)


def _write_atomically(path: Path, data: bytes, *, fsync: bool) -> str | None:
    """``state.write_atomically`` on the writer thread: returns what went wrong (for the reactor to log), or None."""
    try:
        write_atomically(path, data, fsync=fsync)
    except OSError as exc:
        return f"cannot write: {exc.strerror}"
    return None
