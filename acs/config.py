"""The server's configuration: one declarative schema, four sources, one frozen typed result.

Sources, in increasing priority: the schema's defaults < the TOML file < environment variables
``ACS_<SECTION>_<KEY>`` (``ACS_CWMP_MAX_SESSIONS=50``; lists comma-separated) < ``--set section.key=value``.

Every key is declared once, as a field of its section's dataclass below: default, kind (type and validation) and a
one-line doc. The schema (``SCHEMA``), the environment names, validation and ``Config.to_toml()`` all derive from
those declarations, so adding a key is one line. ``acs/data/acs.example.toml`` documents every key; a test holds it
to the schema.

Loading goes: merge the sources key by key (each value checked against its kind, unknown keys refused) -> resolve
paths (``credential:NAME`` = the file NAME in ``$CREDENTIALS_DIRECTORY``, systemd's ``LoadCredential=``) -> fill
derived defaults -> check the rules that involve several keys. Every error is a ``ConfigError`` whose message
starts with the dotted key it is about. Rules that only deserve a warning end up in ``Config.warnings``.

``ACS_*`` environment variables whose first word is not a section name (``ACS_DEBUG``) are left alone, so other
tools may use that prefix; within a known section an unknown key is an error, like a typo in the file.
"""

from __future__ import annotations

import dataclasses
import difflib
import ipaddress
import math
import os
import tomllib
import typing
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

CREDENTIAL_PREFIX = "credential:"


class ConfigError(ValueError):
    """The configuration cannot be used. The message names the key and never contains a file's contents."""


class _Rejected(Exception):
    """A value does not fit its kind. ``problem`` reads after the key name: "must be an integer >= 1"."""

    def __init__(self, problem: str, got: object) -> None:
        super().__init__(problem)
        self.problem = problem
        self.got = got


# -- value kinds ---------------------------------------------------------------------------------------------------
# A kind checks a value read from TOML (already typed) or from text (environment, --set) and returns the typed value.


@dataclass(frozen=True)
class Integer:
    low: int
    high: int | None = None
    forbidden: tuple[int, ...] = ()

    @property
    def expect(self) -> str:
        bounds = f">= {self.low}" if self.high is None else f"from {self.low} to {self.high}"
        excluded = "".join(f" other than {n}" for n in self.forbidden)
        return f"an integer {bounds}{excluded}"

    def from_toml(self, value: object) -> int:
        # bool is an int subclass in Python, but `max_sessions = true` is a mistake, not 1.
        if isinstance(value, bool) or not isinstance(value, int):
            raise _Rejected(f"must be {self.expect}", value)
        if value < self.low or (self.high is not None and value > self.high) or value in self.forbidden:
            raise _Rejected(f"must be {self.expect}", value)
        return value

    def from_text(self, text: str) -> int:
        try:
            number = int(text.strip(), 10)
        except ValueError:
            raise _Rejected(f"must be {self.expect}", text) from None
        return self.from_toml(number)

    def to_toml(self, value: int) -> str:
        return str(value)


@dataclass(frozen=True)
class Number:
    low: float
    high: float | None = None
    low_exclusive: bool = False

    @property
    def expect(self) -> str:
        low = f"> {self.low:g}" if self.low_exclusive else f">= {self.low:g}"
        return f"a number {low}" if self.high is None else f"a number {low} and <= {self.high:g}"

    def from_toml(self, value: object) -> float:
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
            raise _Rejected(f"must be {self.expect}", value)
        too_low = value <= self.low if self.low_exclusive else value < self.low
        if too_low or (self.high is not None and value > self.high):
            raise _Rejected(f"must be {self.expect}", value)
        return float(value)

    def from_text(self, text: str) -> float:
        try:
            number = float(text.strip())
        except ValueError:
            raise _Rejected(f"must be {self.expect}", text) from None
        return self.from_toml(number)

    def to_toml(self, value: float) -> str:
        return repr(float(value))


_TRUE_WORDS = frozenset({"true", "yes", "on", "1"})
_FALSE_WORDS = frozenset({"false", "no", "off", "0"})


@dataclass(frozen=True)
class Boolean:
    expect: str = "true or false"

    def from_toml(self, value: object) -> bool:
        if not isinstance(value, bool):
            raise _Rejected(f"must be {self.expect}", value)
        return value

    def from_text(self, text: str) -> bool:
        word = text.strip().lower()
        if word in _TRUE_WORDS:
            return True
        if word in _FALSE_WORDS:
            return False
        raise _Rejected(f"must be {self.expect}", text)

    def to_toml(self, value: bool) -> str:
        return "true" if value else "false"


class _StringKind:
    """A kind whose values are strings: written as TOML strings, read from the environment as they are."""

    def from_toml(self, value: object) -> str:
        raise NotImplementedError

    def from_text(self, text: str) -> str:
        return self.from_toml(text)

    def to_toml(self, value: str) -> str:
        return toml_string(value)


@dataclass(frozen=True)
class Text(_StringKind):
    """A string, optionally restricted by ``accepts`` (described by ``expect``). Empty means unset unless forbidden."""

    expect: str = "a string"
    accepts: Callable[[str], bool] | None = None
    allow_empty: bool = True

    def from_toml(self, value: object) -> str:
        if not isinstance(value, str) or "\x00" in value:
            raise _Rejected(f"must be {self.expect}", value)
        if value == "":
            if self.allow_empty:
                return value
            raise _Rejected(f"must be {self.expect}", value)
        if self.accepts is not None and not self.accepts(value):
            raise _Rejected(f"must be {self.expect}", value)
        return value


@dataclass(frozen=True)
class Choice(_StringKind):
    options: tuple[str, ...]

    @property
    def expect(self) -> str:
        return "one of " + ", ".join(f'"{option}"' for option in self.options)

    def from_toml(self, value: object) -> str:
        if value not in self.options or not isinstance(value, str):
            raise _Rejected(f"must be {self.expect}", value)
        return value

    def from_text(self, text: str) -> str:
        return self.from_toml(text.strip())


@dataclass(frozen=True)
class Path(_StringKind):
    """A file path, or ``credential:NAME`` for the file NAME in ``$CREDENTIALS_DIRECTORY``. Empty means unset.

    ``must_exist`` paths are files the server reads at start; a missing one is reported against its key.
    Credentials always must exist: systemd would not have started the service without them.
    """

    must_exist: bool = True
    allow_credential: bool = True

    @property
    def expect(self) -> str:
        return "a file path or credential:NAME" if self.allow_credential else "a file path"

    def from_toml(self, value: object) -> str:
        if not isinstance(value, str) or "\x00" in value:
            raise _Rejected(f"must be {self.expect}", value)
        if value.startswith(CREDENTIAL_PREFIX):
            name = value[len(CREDENTIAL_PREFIX) :]
            if not self.allow_credential or not _is_credential_name(name):
                raise _Rejected(f"must be {self.expect}", value)
        return value

    def resolve(self, value: str, env: Mapping[str, str]) -> str:
        if value == "":
            return value
        if value.startswith(CREDENTIAL_PREFIX):
            return resolve_path(value, env)
        if self.must_exist and not os.path.isfile(value):
            raise ConfigError(f"no such file: {value}")
        return value


@dataclass(frozen=True)
class TextList:
    """A TOML array of strings; in the environment and --set, comma-separated (empty text = empty list)."""

    item: Text | Choice | Path
    non_empty: bool = False

    @property
    def expect(self) -> str:
        return f"a list of {'one or more ' if self.non_empty else ''}strings, each {self.item.expect}"

    def from_toml(self, value: object) -> tuple[str, ...]:
        if not isinstance(value, (list, tuple)) or not all(isinstance(item, str) for item in value):
            raise _Rejected(f"must be {self.expect}", value)
        if self.non_empty and not value:
            raise _Rejected(f"must be {self.expect}", value)
        items = []
        for item in value:
            try:
                items.append(self.item.from_toml(item))
            except _Rejected as exc:
                raise _Rejected(f"each item {exc.problem}", item) from None
        if len(set(items)) != len(items):
            raise _Rejected("must not repeat an item", value)
        return tuple(items)

    def from_text(self, text: str) -> tuple[str, ...]:
        return self.from_toml([item.strip() for item in text.split(",") if item.strip()])

    def to_toml(self, value: Iterable[str]) -> str:
        return "[" + ", ".join(self.item.to_toml(item) for item in value) + "]"


Kind = Integer | Number | Boolean | Text | Choice | Path | TextList


# -- shape checks used by the kinds --------------------------------------------------------------------------------


def parse_listener(text: str) -> tuple[str, int]:
    """Split "host:port" (IPv4 literal) or "[IPv6]:port" into (host, port). Raises ValueError when malformed."""
    host, colon, port_text = text.rpartition(":")
    if not colon or not port_text.isdigit() or not 1 <= int(port_text) <= 65535:
        raise ValueError(f"not host:port with a port from 1 to 65535: {text!r}")
    if host.startswith("[") and host.endswith("]"):
        address = ipaddress.ip_address(host[1:-1])  # ValueError when not an address
        if address.version != 6:
            raise ValueError(f"brackets are for IPv6 addresses: {text!r}")
        return host[1:-1], int(port_text)
    if ipaddress.ip_address(host).version != 4:  # an unbracketed IPv6 address has ambiguous colons
        raise ValueError(f"IPv6 addresses must be written in brackets: {text!r}")
    return host, int(port_text)


def _is_listener(text: str) -> bool:
    try:
        parse_listener(text)
    except ValueError:
        return False
    return True


def _is_http_url(text: str) -> bool:
    try:
        parts = urlsplit(text)
        parts.port  # noqa: B018 - raises ValueError on a malformed port
    except ValueError:
        return False
    return parts.scheme in ("http", "https") and bool(parts.hostname) and not parts.fragment


def _is_url_path(text: str) -> bool:
    return text.startswith("/") and text.isprintable() and not any(c in text for c in " ?#")


def _is_header_token(text: str) -> bool:
    """Safe inside a quoted HTTP header value (Digest realm, Basic user name): printable ASCII, no quote/backslash."""
    return text.isascii() and text.isprintable() and not any(c in text for c in '"\\')


def _is_fd_name(text: str) -> bool:
    # systemd's rule for FileDescriptorName=: ASCII, no control characters, no colon, at most 255 characters.
    return len(text) <= 255 and text.isascii() and text.isprintable() and ":" not in text


def _is_host(text: str) -> bool:
    try:
        ipaddress.ip_address(text)
    except ValueError:
        labels = text.rstrip(".").split(".")
        return all(label and len(label) <= 63 and label.replace("-", "").isalnum() for label in labels)
    return True


def _is_credential_name(name: str) -> bool:
    return name not in ("", ".", "..") and "/" not in name


def _is_user_name(text: str) -> bool:
    return _is_header_token(text) and ":" not in text


# -- the schema ----------------------------------------------------------------------------------------------------

LISTENER_TEXT = '"host:port" (IPv4 address, or IPv6 in brackets; port 1-65535)'
LISTENERS = TextList(Text(LISTENER_TEXT, _is_listener))
LISTENER = Text(LISTENER_TEXT, _is_listener, allow_empty=False)
HTTP_URL = Text("an http:// or https:// URL with a host", _is_http_url)
FD_NAME = Text("a systemd FileDescriptorName (ASCII, no colon)", _is_fd_name)
URL_PATH = Text('a URL path starting with "/"', _is_url_path, allow_empty=False)
REALM = Text("printable ASCII without quotes or backslashes", _is_header_token, allow_empty=False)
USER_NAME = Text("printable ASCII without quotes, backslashes or colons", _is_user_name, allow_empty=False)
HOST = Text("a host name or IP address", _is_host)
LOG_LEVEL = Choice(("debug", "info", "warning", "error", "critical"))


def setting(default: Any, kind: Kind, doc: str) -> Any:
    """Declare one key: its default, its kind and a one-line doc (shown by `acs config show`)."""
    return field(default=default, metadata={"kind": kind, "doc": doc})


# One line per key: name = setting(default, kind, doc). Section classes are listed in Config below.


@dataclass(frozen=True)
class CwmpConfig:
    http: tuple[str, ...] = setting((), LISTENERS, 'plain-HTTP listeners, "host:port" ("[::]:7548" for IPv6)')
    https: tuple[str, ...] = setting(("0.0.0.0:7549",), LISTENERS, "HTTPS listeners (need tls.cert and tls.key)")
    systemd_socket: str = setting("", FD_NAME, 'FileDescriptorName of an activated socket ("cwmp"); gets TLS')
    path: str = setting("/cwmp", URL_PATH, "URL path of the CWMP endpoint")
    public_url: str = setting("", HTTP_URL, "the ACS URL phones are told to use (ManagementServer.URL)")
    backlog: int = setting(1024, Integer(1), "listen() backlog; below 1024, boot storms get connections dropped")
    max_sessions: int = setting(500, Integer(1), "concurrent CWMP sessions; beyond that, 503 with Retry-After")
    max_body_bytes: int = setting(1_048_576, Integer(1024), "largest HTTP request body accepted, in bytes")
    max_decompressed_bytes: int = setting(4_194_304, Integer(1024), "largest request body after gzip decoding")
    session_timeout: int = setting(30, Integer(5, 3600), "seconds a session may stay silent before it is dropped")
    max_rpcs_per_session: int = setting(64, Integer(1), "ACS requests in one session; the rest wait for the next")
    retry_after_min: int = setting(30, Integer(1), "lowest Retry-After (seconds) of a 503 when full")
    retry_after_max: int = setting(120, Integer(1), "highest Retry-After; each 503 draws between min and max")
    stop_grace: int = setting(20, Integer(0, 3600), "seconds running sessions get to finish on SIGTERM")


@dataclass(frozen=True)
class TlsConfig:
    cert: str = setting("", Path(), "PEM certificate (chain) of the ACS: path or credential:NAME")
    key: str = setting("", Path(), "PEM private key of that certificate: path or credential:NAME")
    min_version: str = setting("1.2", Choice(("1.2", "1.3")), 'oldest TLS version accepted: "1.2" or "1.3"')


@dataclass(frozen=True)
class AuthConfig:
    enabled: bool = setting(True, Boolean(), "devices must authenticate (HTTP Digest, or Basic over TLS)")
    realm: str = setting("wp820-acs", REALM, "HTTP authentication realm")
    algorithms: tuple[str, ...] = setting(
        ("SHA-256", "MD5"), TextList(Choice(("SHA-256", "MD5")), non_empty=True), "Digest algorithms offered, in order"
    )
    basic_over_tls: bool = setting(True, Boolean(), "accept Basic authentication on TLS connections")
    nonce_ttl: int = setting(300, Integer(10, 86400), "seconds a Digest nonce stays valid")
    bootstrap_enabled: bool = setting(False, Boolean(), "accept the shared bootstrap credential (first contact)")
    bootstrap_username: str = setting("bootstrap", USER_NAME, "user name of the bootstrap credential")
    bootstrap_secret_file: str = setting("", Path(), "file holding the bootstrap password: path or credential:NAME")
    bootstrap_allow_unenrolled: bool = setting(False, Boolean(), "bootstrap credential admits devices not enrolled")


@dataclass(frozen=True)
class StoreConfig:
    path: str = setting(
        "", Path(must_exist=False, allow_credential=False), '"" = $STATE_DIRECTORY/acs.sqlite, else ./var/acs.sqlite'
    )
    synchronous: str = setting("normal", Choice(("normal", "full")), '"full" also survives power loss (fsync/commit)')


@dataclass(frozen=True)
class SecretsConfig:
    key_file: str = setting("", Path(), "key sealing device secrets (acs secrets keygen): path or credential:NAME")


@dataclass(frozen=True)
class LogConfig:
    format: str = setting("auto", Choice(("auto", "json", "console")), '"auto": console on a terminal, else JSON')
    level: str = setting("info", LOG_LEVEL, "lowest level logged")


@dataclass(frozen=True)
class PolicyConfig:
    files: tuple[str, ...] = setting((), TextList(Path()), "policy files; none = the packaged wp820-hardening.toml")
    site: str = setting("", Path(), 'site-specific policy overlay (TOML file); "" = none')


@dataclass(frozen=True)
class FilesConfig:
    url_ttl: int = setting(900, Integer(10, 86400), "seconds a one-time config-file URL stays valid")
    base_url: str = setting("", HTTP_URL, 'base of config-file URLs; "" = scheme://host:port of cwmp.public_url')
    config_kdf: str = setting(
        "md5", Choice(("md5", "sha256", "pbkdf2-sha256")),
        "key derivation of encrypted config files (openssl enc -md md5|sha256, or -pbkdf2); must match the firmware",
    )


@dataclass(frozen=True)
class ConnreqConfig:
    timeout: float = setting(5.0, Number(0.0, 300.0, low_exclusive=True), "seconds to wait for a phone's answer")
    concurrency: int = setting(50, Integer(1), "connection requests in flight at once")
    min_interval: float = setting(30.0, Number(0.0), "seconds between two requests to the same phone")
    rate: float = setting(20.0, Number(0.0, low_exclusive=True), "connection requests per second in bulk")
    allow_basic: bool = setting(False, Boolean(), "answer a Basic challenge (password in clear on HTTP)")
    port: int = setting(58547, Integer(1025, 65535, forbidden=(7547,)), "connection-request port set on phones")
    udp_repeats: int = setting(3, Integer(1, 10), "copies sent of each UDP connection request")


@dataclass(frozen=True)
class StunConfig:
    enabled: bool = setting(False, Boolean(), "run the STUN server (TR-111) for phones behind NAT")
    listen: str = setting("0.0.0.0:3478", LISTENER, "UDP address of the STUN server")
    public_host: str = setting("", HOST, 'STUNServerAddress told to phones; "" = host of cwmp.public_url')


@dataclass(frozen=True)
class ApiConfig:
    # Reserved for the management REST API, which is not served yet: checked now so that configurations written today
    # (and the loopback advice) stay valid when it is.
    listen: str = setting("127.0.0.1:7550", LISTENER, "management REST API address (reserved: not served yet)")
    token_file: str = setting("", Path(), "API bearer token file (reserved: not served yet)")


@dataclass(frozen=True)
class Key:
    """One schema entry, derived from a section field."""

    section: str
    field: str
    kind: Kind
    default: Any
    doc: str

    @property
    def name(self) -> str:
        return f"{self.section}.{self.field}"

    @property
    def env_var(self) -> str:
        return f"ACS_{self.section.upper()}_{self.field.upper()}"


@dataclass(frozen=True)
class Config:
    cwmp: CwmpConfig = field(default_factory=CwmpConfig)
    tls: TlsConfig = field(default_factory=TlsConfig)
    auth: AuthConfig = field(default_factory=AuthConfig)
    store: StoreConfig = field(default_factory=StoreConfig)
    secrets: SecretsConfig = field(default_factory=SecretsConfig)
    log: LogConfig = field(default_factory=LogConfig)
    policy: PolicyConfig = field(default_factory=PolicyConfig)
    files: FilesConfig = field(default_factory=FilesConfig)
    connreq: ConnreqConfig = field(default_factory=ConnreqConfig)
    stun: StunConfig = field(default_factory=StunConfig)
    api: ApiConfig = field(default_factory=ApiConfig)
    # Advice that does not stop the server (api.listen off loopback, ...); the caller logs or prints it.
    warnings: tuple[str, ...] = field(default=(), compare=False)

    def value(self, name: str) -> Any:
        """The value of a dotted key: config.value("cwmp.max_sessions")."""
        section, _, key = name.partition(".")
        return getattr(getattr(self, section), key)

    def to_toml(self) -> str:
        """The effective configuration as TOML that loads back to an equal Config.

        Secret-bearing keys hold file paths, never secrets, so printing this is safe.
        """
        lines: list[str] = []
        for section in _SECTIONS:
            lines.append(f"[{section}]")
            for key in SCHEMA:
                if key.section == section:
                    lines.append(f"# {key.doc}")
                    lines.append(f"{key.field} = {key.kind.to_toml(self.value(key.name))}")
            lines.append("")
        return "\n".join(lines)


def _section_classes() -> dict[str, type]:
    hints = typing.get_type_hints(Config)
    return {f.name: hints[f.name] for f in dataclasses.fields(Config) if dataclasses.is_dataclass(hints[f.name])}


_SECTION_CLASSES = _section_classes()
_SECTIONS = tuple(_SECTION_CLASSES)
SCHEMA: tuple[Key, ...] = tuple(
    Key(section, f.name, f.metadata["kind"], f.default, f.metadata["doc"])
    for section, cls in _SECTION_CLASSES.items()
    for f in dataclasses.fields(cls)
)
_BY_NAME = {key.name: key for key in SCHEMA}


# -- rules involving several keys ----------------------------------------------------------------------------------


def _tls_files_needed(config: Config) -> str | None:
    needed_by = "cwmp.https" if config.cwmp.https else "cwmp.systemd_socket" if config.cwmp.systemd_socket else None
    for key in ("tls.cert", "tls.key"):
        if needed_by and not config.value(key):
            return f"{key}: required because {needed_by} is set"
    if bool(config.tls.cert) != bool(config.tls.key):
        return "tls.key: required with tls.cert" if config.tls.cert else "tls.cert: required with tls.key"
    return None


def _some_cwmp_listener(config: Config) -> str | None:
    if config.cwmp.http or config.cwmp.https or config.cwmp.systemd_socket:
        return None
    return "cwmp.https: no CWMP listener; set cwmp.https, cwmp.http or cwmp.systemd_socket"


def _retry_after_range(config: Config) -> str | None:
    low, high = config.cwmp.retry_after_min, config.cwmp.retry_after_max
    return f"cwmp.retry_after_min: must be <= cwmp.retry_after_max ({low} > {high})" if low > high else None


def _decompressed_cap(config: Config) -> str | None:
    if config.cwmp.max_decompressed_bytes >= config.cwmp.max_body_bytes:
        return None
    return "cwmp.max_decompressed_bytes: must be >= cwmp.max_body_bytes (a decoded body is never smaller)"


def _bootstrap_secret(config: Config) -> str | None:
    if config.auth.bootstrap_enabled and not config.auth.bootstrap_secret_file:
        return "auth.bootstrap_secret_file: required because auth.bootstrap_enabled is true"
    return None


_RULES: tuple[Callable[[Config], str | None], ...] = (
    _some_cwmp_listener,
    _tls_files_needed,
    _retry_after_range,
    _decompressed_cap,
    _bootstrap_secret,
)


def _api_off_loopback(config: Config) -> str | None:
    host, _ = parse_listener(config.api.listen)
    if ipaddress.ip_address(host).is_loopback:
        return None
    return f"api.listen: {config.api.listen} is not loopback; the management API is reachable from the network"


def _short_backlog(config: Config) -> str | None:
    if config.cwmp.backlog >= 1024:
        return None
    return f"cwmp.backlog: {config.cwmp.backlog} is below 1024; connections get dropped when many phones boot at once"


def _auth_off(config: Config) -> str | None:
    return None if config.auth.enabled else "auth.enabled: false; any device can connect and claim any identity"


def _basic_connreq(config: Config) -> str | None:
    if not config.connreq.allow_basic:
        return None
    return "connreq.allow_basic: true; connection-request passwords may be sent in clear text"


_ADVISORIES: tuple[Callable[[Config], str | None], ...] = (_api_off_loopback, _short_backlog, _auth_off, _basic_connreq)


# -- loading -------------------------------------------------------------------------------------------------------


def load_config(path: str | None, *, env: Mapping[str, str] = os.environ, overrides: Iterable[str] = ()) -> Config:
    """Defaults < TOML file at ``path`` (None: no file) < ``ACS_*`` in ``env`` < ``overrides`` ("section.key=value")."""
    values: dict[str, Any] = {key.name: key.default for key in SCHEMA}
    if path is not None:
        _merge_file(values, path)
    _merge_environment(values, env)
    for override in overrides:
        _merge_override(values, override)
    for key in SCHEMA:
        values[key.name] = _resolve(key, values[key.name], env)
    _derive_defaults(values, env)
    sections = {
        section: cls(**{key.field: values[key.name] for key in SCHEMA if key.section == section})
        for section, cls in _SECTION_CLASSES.items()
    }
    config = Config(**sections)
    for rule in _RULES:
        if problem := rule(config):
            raise ConfigError(problem)
    warnings = tuple(advice for advisory in _ADVISORIES if (advice := advisory(config)))
    return dataclasses.replace(config, warnings=warnings)


def resolve_path(value: str, env: Mapping[str, str] = os.environ) -> str:
    """``credential:NAME`` -> ``$CREDENTIALS_DIRECTORY/NAME``, which must exist; other paths pass as they are."""
    if not value.startswith(CREDENTIAL_PREFIX):
        return value
    name = value[len(CREDENTIAL_PREFIX) :]
    if not _is_credential_name(name):
        raise ConfigError(f"{value!r} is not credential:NAME with a plain file name")
    directory = env.get("CREDENTIALS_DIRECTORY")
    if not directory:
        raise ConfigError(f"{value} needs $CREDENTIALS_DIRECTORY (set by systemd's LoadCredential=), which is not set")
    resolved = os.path.join(directory, name)
    if not os.path.isfile(resolved):
        raise ConfigError(f"{value}: no file {name} in $CREDENTIALS_DIRECTORY ({directory})")
    return resolved


def _merge_file(values: dict[str, Any], path: str) -> None:
    try:
        with open(path, "rb") as handle:
            document = tomllib.load(handle)
    except FileNotFoundError:
        raise ConfigError(f"config file not found: {path}") from None
    except PermissionError:
        raise ConfigError(f"config file not readable (permission denied): {path}") from None
    except IsADirectoryError:
        raise ConfigError(f"config file is a directory: {path}") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"config file {path}: invalid TOML: {exc}") from None
    where = f" (in {path})"
    for section, table in document.items():
        if section not in _SECTION_CLASSES:
            if isinstance(table, dict):
                raise ConfigError(f"unknown section [{section}]{_suggest(section, _SECTIONS)}{where}")
            raise ConfigError(f"unknown key {section}: settings belong in a [section] table{where}")
        if not isinstance(table, dict):
            raise ConfigError(f"{section}: must be a table ([{section}]){where}")
        for field_name, raw in table.items():
            key = _key(f"{section}.{field_name}", where)
            values[key.name] = _check(key, raw, from_text=False, where=where)


def _merge_environment(values: dict[str, Any], env: Mapping[str, str]) -> None:
    for variable in sorted(env):
        if not variable.startswith("ACS_"):
            continue
        section, _, field_name = variable[4:].lower().partition("_")
        if section not in _SECTION_CLASSES:
            continue
        where = f" (from environment variable {variable})"
        key = _key(f"{section}.{field_name}", where)
        values[key.name] = _check(key, env[variable], from_text=True, where=where)


def _merge_override(values: dict[str, Any], override: str) -> None:
    name, equals, text = override.partition("=")
    name = name.strip()
    if not equals or "." not in name:
        raise ConfigError(f"--set: expected section.key=value, got {override!r}")
    where = " (from --set)"
    key = _key(name, where)
    values[key.name] = _check(key, text, from_text=True, where=where)


def _key(name: str, where: str) -> Key:
    try:
        return _BY_NAME[name]
    except KeyError:
        raise ConfigError(f"unknown key {name}{_suggest(name, _BY_NAME)}{where}") from None


def _suggest(name: str, known: Iterable[str]) -> str:
    close = difflib.get_close_matches(name, list(known), n=1)
    return f"; did you mean {close[0]}?" if close else ""


def _check(key: Key, raw: Any, *, from_text: bool, where: str) -> Any:
    try:
        return key.kind.from_text(raw) if from_text else key.kind.from_toml(raw)
    except _Rejected as exc:
        raise ConfigError(f"{key.name}: {exc.problem}, got {exc.got!r}{where}") from None


def _resolve(key: Key, value: Any, env: Mapping[str, str]) -> Any:
    kind = key.kind
    try:
        if isinstance(kind, Path):
            return kind.resolve(value, env)
        if isinstance(kind, TextList) and isinstance(kind.item, Path):
            return tuple(kind.item.resolve(item, env) for item in value)
    except ConfigError as exc:
        raise ConfigError(f"{key.name}: {exc}") from None
    return value


def _derive_defaults(values: dict[str, Any], env: Mapping[str, str]) -> None:
    """Fill the keys whose empty default means "derive from the environment or from another key"."""
    if not values["store.path"]:
        # systemd's StateDirectory= may list several directories, colon-separated; the first is ours.
        state_directory = env.get("STATE_DIRECTORY", "").split(":")[0]
        values["store.path"] = os.path.join(state_directory, "acs.sqlite") if state_directory else "./var/acs.sqlite"
    public = urlsplit(values["cwmp.public_url"]) if values["cwmp.public_url"] else None
    if public is not None and not values["files.base_url"]:
        values["files.base_url"] = f"{public.scheme}://{public.netloc}"
    if public is not None and not values["stun.public_host"]:
        values["stun.public_host"] = public.hostname or ""


# -- TOML output ---------------------------------------------------------------------------------------------------

_TOML_ESCAPES = {'"': '\\"', "\\": "\\\\", "\b": "\\b", "\t": "\\t", "\n": "\\n", "\f": "\\f", "\r": "\\r"}


def toml_string(text: str) -> str:
    """A TOML basic string. TOML forbids raw control characters (U+0000-U+001F except tab, and U+007F)."""
    out = []
    for char in text:
        if char in _TOML_ESCAPES:
            out.append(_TOML_ESCAPES[char])
        elif ord(char) < 0x20 or ord(char) == 0x7F:
            out.append(f"\\u{ord(char):04x}")
        else:
            out.append(char)
    return '"' + "".join(out) + '"'
