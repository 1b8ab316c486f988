"""Device data models: every parameter the ACS, the vendor config-file generator and the simulator know about a model.

A model is data, not code: ``cwmp_models/data/<name>.toml`` (``wp820.toml``). This module loads it, checks it and
answers questions about it. Nothing here knows about any particular device.

Theory of operation
-------------------
Each setting is a :class:`ParameterSpec` with a stable *key* (``"web.access_method"``, ``"sip.1.transport"``) that
policies use. A setting reaches the device through one or both channels:

* its TR-069 ``path`` (GetParameterValues / SetParameterValues), when the device exposes one;
* its vendor ``pvalue`` (``"P130"``), written through a vendor configuration file (``Download`` FileType 3).

Values are typed Python values as in :mod:`cwmp_models.types` (``bool``, ``int``, ``str``, ``datetime``). Their TR-069
text is :meth:`ParameterSpec.format`; their P-value text is :meth:`ParameterSpec.to_pvalue`. Enumerations are named on
the TR-069 side (``"TLS"``) and numbered on the P-value side (``"2"``): ``pvalue_map`` holds the translation; booleans
translate to ``1``/``0`` without one. For a setting with no TR-069 path the type is its natural one (a 0/1 switch is a
boolean, a 0/1/2 choice is a named enumeration).

Conversions convert; validation validates. :meth:`ParameterSpec.to_pvalue` and :meth:`ParameterSpec.from_pvalue`
only demand the right type (and a known enumeration member), so they can carry any state a device can be in: a web UI
password with symbols, the factory ``admin``. :meth:`ParameterSpec.validate` applies the write constraints (``enum``,
``range``, ``multiple_of``, ``min_length``, ``max_length``, ``pattern``) and is what a write must pass. A factory
default must pass them too, unless the spec says ``weak_default`` (the default itself is a finding, e.g. ``admin``).

``source`` says where a simulator finds the value: ``pvalue`` (its P-value state), ``identity`` (per device: serial
number, MAC, firmware), ``runtime`` (computed live: up time, addresses; ``depends_on`` names what it is computed
from), ``static`` (a constant of the model), ``agent`` (kept by the CWMP agent itself, outside the P-values).

Per-instance settings are written once in the TOML with ``instances = [1, 2]`` and ``{n}`` in key, title, path and
notes; ``pvalue`` and ``default`` may then be lists, one entry per instance. Expansion gives one spec per instance
(``instance`` = the number, ``template`` = the unexpanded key).

Uncertain per-instance P-values: a spec marked ``swap_suspect`` has P-values whose instance numbering is not
confirmed on this model (the WP820 template lists some account-1/account-2 pairs swapped). Writing the same value to
every instance is correct either way, so :meth:`DeviceModel.to_pvalues` refuses to write such a setting for only some
instances, or with different values; the result must be verified by reading back. TR-069 paths are unaffected.

Secrets (``secret``) read back empty through TR-069 and must never be logged; :class:`InvalidValue` messages never
quote their values. ``exposed = false`` marks a setting the device is not known to offer at all (no path, no known
P-value): policies treat it as advisory.

TOML layout: a ``[device]`` table (``name``, ``title``, ``manufacturer``, ``oui``, ``oui_aliases``, ``product_class``,
``software_version``), ``[[table]]`` entries for multi-instance objects (``path`` ending in ``.``, ``instances``,
``writable``, ``count_path``) and ``[[parameter]]`` entries with the fields of :class:`ParameterSpec`. ``writable``
defaults to true for ``source = "pvalue"`` and false otherwise; ``notification`` defaults to 2 (active) for
``active_notify = "forceEnabled"`` and 0 otherwise. Unknown fields are errors.

API::

    model = load_model("wp820")                 # cached
    spec = model.parameters["sip.1.transport"]  # or model.by_path(path), model.by_pvalue("P130")
    spec.validate("TLS"); spec.to_pvalue("TLS") == "2"; spec.from_pvalue("2") == "TLS"
    model.to_pvalues({"sip.1.srtp_mode": ..., "sip.2.srtp_mode": ...})   # -> {"P183": "2", "P443": "2"}
    model.pvalue_defaults()                     # full factory P-value state
    model.objects(), model.children("Device."), model.tables, model.forced_inform()
"""

from __future__ import annotations

import enum
import functools
import re
import tomllib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from importlib import resources
from types import MappingProxyType
from typing import Any

from cwmp_models.types import CwmpValue, XsdType, ValueRangeError, format_value, parse_value

__all__ = [
    "ActiveNotify",
    "DeviceModel",
    "InvalidValue",
    "ModelDefinitionError",
    "ParameterSpec",
    "Source",
    "TableSpec",
    "load_model",
    "parse_model",
]


class InvalidValue(ValueError):
    """A value a parameter cannot take. Never quotes the value of a secret."""

    def __init__(self, key: str, reason: str) -> None:
        super().__init__(f"{key}: {reason}")
        self.key = key
        self.reason = reason


class ModelDefinitionError(ValueError):
    """A model file that is missing, malformed or inconsistent."""


class Source(str, enum.Enum):
    PVALUE = "pvalue"
    IDENTITY = "identity"
    RUNTIME = "runtime"
    STATIC = "static"
    AGENT = "agent"


class ActiveNotify(str, enum.Enum):
    """TR-106 ``activeNotify``: whether the ACS may change the notification attribute."""

    NORMAL = "normal"
    CAN_DENY = "canDeny"  # the CPE may refuse active notification (fault 9009)
    FORCE_ENABLED = "forceEnabled"  # always active; the ACS cannot turn it off


_INT_TYPES = frozenset({XsdType.INT, XsdType.UNSIGNED_INT, XsdType.LONG, XsdType.UNSIGNED_LONG})
_PYTHON_TYPES: dict[XsdType, type] = {
    XsdType.STRING: str,
    XsdType.BOOLEAN: bool,
    XsdType.DATETIME: datetime,
    XsdType.BASE64: bytes,
    XsdType.HEXBINARY: bytes,
    **{t: int for t in _INT_TYPES},
}
_PVALUE_TRUE, _PVALUE_FALSE = "1", "0"


@dataclass(frozen=True, kw_only=True)
class ParameterSpec:
    """One setting of a model. Field meanings are in the module docstring and the model file's header."""

    key: str
    title: str
    path: str | None
    type: XsdType
    writable: bool
    default: CwmpValue
    source: Source
    pvalue: str | None = None
    pvalue_map: Mapping[str, str] | None = field(default=None, hash=False)
    enum: tuple[str, ...] | None = None
    range: tuple[int, int] | None = None
    multiple_of: int | None = None
    min_length: int | None = None
    max_length: int | None = None
    pattern: str | None = None
    reboot: bool = False
    secret: bool = False
    weak_default: bool = False
    notification: int = 0
    active_notify: ActiveNotify = ActiveNotify.NORMAL
    forced_inform: bool = False
    instance: int | None = None
    template: str | None = None
    swap_suspect: bool = False
    depends_on: tuple[str, ...] = ()
    exposed: bool = True
    notes: str = ""

    def validate(self, value: CwmpValue) -> None:
        """Raise :class:`InvalidValue` unless ``value`` may be written: type, then every write constraint."""
        self._check_type(value)
        if isinstance(value, str):
            self._check_text(value)
        elif isinstance(value, int) and not isinstance(value, bool):
            self._check_number(value)

    def parse(self, text: str) -> CwmpValue:
        """TR-069 wire text (as in SetParameterValues) to a validated typed value."""
        try:
            value = parse_value(self.type, text)
        except ValueError:
            raise self._invalid(f"not a valid {self.type.value}", text) from None
        self.validate(value)
        return value

    def format(self, value: CwmpValue) -> str:
        """A validated typed value to its TR-069 wire text."""
        self.validate(value)
        return format_value(self.type, value)

    def to_pvalue(self, value: CwmpValue) -> str:
        """A typed value to its P-value text. Checks the type and the enumeration, not the write constraints."""
        self._check_type(value)
        canonical = format_value(self.type, value)
        if self.pvalue_map is not None:
            try:
                return self.pvalue_map[canonical]
            except KeyError:
                raise self._invalid("has no P-value equivalent", canonical) from None
        if self.type is XsdType.BOOLEAN:
            return _PVALUE_TRUE if value else _PVALUE_FALSE
        return canonical

    def from_pvalue(self, text: str) -> CwmpValue:
        """P-value text (from a config file or the device's state) to a typed value. Checks the type only."""
        if self.pvalue_map is not None:
            stripped = text.strip()
            canonical = next((name for name, number in self.pvalue_map.items() if number == stripped), None)
            if canonical is None:
                raise self._invalid("is not a known P-value setting", text)
            text = canonical
        try:
            return parse_value(self.type, text)
        except ValueError:
            raise self._invalid(f"not a valid {self.type.value} P-value", text) from None

    def _check_type(self, value: CwmpValue) -> None:
        expected = _PYTHON_TYPES[self.type]
        if isinstance(value, bool) is not (expected is bool) or not isinstance(value, expected):
            raise InvalidValue(self.key, f"expected {self.type.value}, got {type(value).__name__}")
        if self.type in _INT_TYPES:
            try:
                format_value(self.type, value)
            except ValueRangeError:
                raise self._invalid(f"outside {self.type.value}", value) from None

    def _check_text(self, value: str) -> None:
        if self.enum is not None and value not in self.enum:
            raise self._invalid(f"not one of {', '.join(self.enum)}", value)
        if self.min_length is not None and len(value) < self.min_length:
            raise self._invalid(f"shorter than {self.min_length} characters", value)
        if self.max_length is not None and len(value) > self.max_length:
            raise self._invalid(f"longer than {self.max_length} characters", value)
        if self.pattern is not None and re.fullmatch(self.pattern, value) is None:
            raise self._invalid(f"does not match {self.pattern}", value)

    def _check_number(self, value: int) -> None:
        if self.range is not None and not self.range[0] <= value <= self.range[1]:
            raise self._invalid(f"outside {self.range[0]}..{self.range[1]}", value)
        if self.multiple_of is not None and value % self.multiple_of:
            raise self._invalid(f"not a multiple of {self.multiple_of}", value)

    def _invalid(self, reason: str, value: object) -> InvalidValue:
        return InvalidValue(self.key, reason if self.secret else f"{value!r} {reason}")


@dataclass(frozen=True)
class TableSpec:
    """A multi-instance object: ``path`` is the object named in AddObject (``...VoiceProfile.``)."""

    path: str
    instances: tuple[int, ...]
    writable: bool
    count_path: str | None

    def instance_path(self, number: int) -> str:
        return f"{self.path}{number}."


class DeviceModel:
    """A loaded model. Build it with :func:`load_model` or :func:`parse_model`."""

    def __init__(
        self,
        *,
        name: str,
        title: str,
        manufacturer: str,
        oui: str,
        oui_aliases: tuple[str, ...],
        product_class: str,
        software_version: str,
        parameters: Iterable[ParameterSpec],
        tables: Iterable[TableSpec],
    ) -> None:
        self.name = name
        self.title = title
        self.manufacturer = manufacturer
        self.oui = oui
        self.oui_aliases = oui_aliases
        self.product_class = product_class
        self.software_version = software_version
        self.parameters: Mapping[str, ParameterSpec] = MappingProxyType({p.key: p for p in parameters})
        self.tables: Mapping[str, TableSpec] = MappingProxyType({t.path: t for t in tables})
        self._by_path = {p.path: p for p in self.parameters.values() if p.path is not None}
        by_pvalue: dict[str, list[ParameterSpec]] = {}
        for spec in self.parameters.values():
            if spec.pvalue is not None:
                by_pvalue.setdefault(spec.pvalue, []).append(spec)
        self._by_pvalue = {pvalue: tuple(specs) for pvalue, specs in by_pvalue.items()}
        self._by_template: dict[str, list[ParameterSpec]] = {}
        for spec in self.parameters.values():
            if spec.template is not None:
                self._by_template.setdefault(spec.template, []).append(spec)
        self._children = _build_tree(
            [p.path for p in self.parameters.values() if p.path is not None]
            + [t.instance_path(i) for t in self.tables.values() for i in t.instances]
        )

    def __repr__(self) -> str:
        return f"<DeviceModel {self.name}: {len(self.parameters)} parameters>"

    def by_path(self, path: str) -> ParameterSpec | None:
        return self._by_path.get(path)

    def by_pvalue(self, pvalue: str) -> list[ParameterSpec]:
        """Every spec behind a P-value, given as ``"P130"`` or ``"130"``."""
        name = pvalue if pvalue.startswith("P") else f"P{pvalue}"
        return list(self._by_pvalue.get(name, ()))

    def instances_of(self, template: str) -> list[ParameterSpec]:
        """The per-instance specs expanded from one template key (``"sip.{n}.srtp_mode"``), in instance order."""
        return list(self._by_template.get(template, ()))

    def objects(self) -> list[str]:
        """Every object path, parents before children, in model order."""
        return [node for node in self._walk("Device.") if node.endswith(".")]

    def children(self, object_path: str) -> list[str]:
        """The objects and parameters directly under an object (for GetParameterNames with NextLevel)."""
        return list(self._children.get(object_path, ()))

    def table_of(self, object_path: str) -> TableSpec | None:
        """The table an AddObject target (``...VoiceProfile.``) or one of its instances belongs to."""
        table = self.tables.get(object_path)
        if table is None:
            head, _, number = object_path[:-1].rpartition(".")
            table = self.tables.get(head + ".") if number.isdigit() else None
        return table

    def forced_inform(self) -> list[ParameterSpec]:
        """Parameters every Inform carries, in model order."""
        return [p for p in self.parameters.values() if p.forced_inform]

    def pvalue_defaults(self) -> dict[str, str]:
        """Every P-value the model knows -> its factory default text."""
        return {p.pvalue: p.to_pvalue(p.default) for p in self.parameters.values() if p.pvalue is not None}

    def to_pvalues(self, values: Mapping[str, CwmpValue]) -> dict[str, str]:
        """Settings by key -> P-value texts for a vendor configuration file, each value validated.

        Refuses (InvalidValue) a key without a P-value, two keys giving one P-value different texts, and a
        ``swap_suspect`` setting not written with one value to all of its instances.
        """
        result: dict[str, str] = {}
        for key, value in values.items():
            spec = self.parameters.get(key)
            if spec is None:
                raise InvalidValue(key, "unknown parameter")
            if spec.pvalue is None:
                raise InvalidValue(key, "has no P-value: it cannot be set through a configuration file")
            spec.validate(value)
            if spec.swap_suspect:
                self._check_swap_group(spec, values)
            text = spec.to_pvalue(value)
            if result.setdefault(spec.pvalue, text) != text:
                raise InvalidValue(key, f"{spec.pvalue} is also set to a different value by another parameter")
        return result

    def _check_swap_group(self, spec: ParameterSpec, values: Mapping[str, CwmpValue]) -> None:
        assert spec.template is not None  # the loader allows swap_suspect only on instanced specs
        siblings = [s.key for s in self.instances_of(spec.template)]
        if any(key not in values or values[key] != values[spec.key] for key in siblings):
            raise InvalidValue(
                spec.key,
                "P-value numbering of its instances is unconfirmed on this model: "
                f"write one value to all of {', '.join(siblings)}, then read back",
            )

    def _walk(self, node: str) -> Iterable[str]:
        yield node
        for child in self._children.get(node, ()):
            yield from self._walk(child)


def _build_tree(paths: Iterable[str]) -> dict[str, list[str]]:
    """Object path -> its direct children (objects end in '.', parameters do not), in first-seen order."""
    children: dict[str, list[str]] = {}
    for path in paths:
        parts = path.split(".")
        node = ""
        for part in parts[:-1]:
            parent, node = node, f"{node}{part}."
            if node not in children:
                children[node] = []
                if parent:
                    children[parent].append(node)
        if parts[-1]:
            children[node].append(path)
    return children


# --- Loading ----------------------------------------------------------------------------------------------------------

_MODEL_NAME_RE = re.compile(r"[a-z0-9][a-z0-9_-]*")
_KEY_RE = re.compile(r"[a-z][a-z0-9_]*(\.[a-z0-9_]+)+")
_PATH_RE = re.compile(r"Device(\.([A-Za-z_][A-Za-z0-9_]*|[1-9][0-9]*))*\.[A-Za-z_][A-Za-z0-9_]*")
_OBJECT_RE = re.compile(r"Device\.(([A-Za-z_][A-Za-z0-9_]*|[1-9][0-9]*)\.)*")
_PVALUE_RE = re.compile(r"P[1-9][0-9]*")
_INSTANCE = "{n}"

_DEVICE_FIELDS = {"name", "title", "manufacturer", "oui", "oui_aliases", "product_class", "software_version"}
_TABLE_FIELDS = {"path", "instances", "writable", "count_path"}
_PARAMETER_FIELDS = {
    "key", "title", "path", "type", "source", "writable", "default", "pvalue", "pvalue_map", "enum", "range",
    "multiple_of", "min_length", "max_length", "pattern", "reboot", "secret", "weak_default", "notification",
    "active_notify", "forced_inform", "instances", "swap_suspect", "depends_on", "exposed", "notes",
}  # fmt: skip
_REQUIRED_PARAMETER_FIELDS = {"key", "title", "type", "default"}


@functools.lru_cache(maxsize=None)
def load_model(name: str = "wp820") -> DeviceModel:
    """The packaged model ``cwmp_models/data/<name>.toml``, loaded once per process."""
    if not _MODEL_NAME_RE.fullmatch(name):
        raise ModelDefinitionError(f"invalid model name {name!r}")
    resource = resources.files("cwmp_models.data").joinpath(f"{name}.toml")
    if not resource.is_file():
        raise ModelDefinitionError(f"no model named {name!r}")
    return parse_model(resource.read_text(encoding="utf-8"), source=f"{name}.toml")


def parse_model(text: str, source: str = "<model>") -> DeviceModel:
    """Build and check a model from TOML text. Raises :class:`ModelDefinitionError` naming the problem."""
    try:
        document = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ModelDefinitionError(f"{source}: not valid TOML: {exc}") from None
    _check_fields(document, {"device", "table", "parameter"}, f"{source}: top level")
    device = document.get("device")
    if not isinstance(device, dict):
        raise ModelDefinitionError(f"{source}: missing [device] table")
    _check_fields(device, _DEVICE_FIELDS, f"{source}: [device]", required=_DEVICE_FIELDS)
    tables = [_table(entry, f"{source}: table #{i + 1}") for i, entry in enumerate(_entries(document, "table", source))]
    parameters: list[ParameterSpec] = []
    for i, entry in enumerate(_entries(document, "parameter", source)):
        parameters.extend(_expand(entry, f"{source}: parameter #{i + 1}"))
    model = DeviceModel(
        name=_text(device, "name", source),
        title=_text(device, "title", source),
        manufacturer=_text(device, "manufacturer", source),
        oui=_text(device, "oui", source),
        oui_aliases=tuple(_text_list(device, "oui_aliases", source)),
        product_class=_text(device, "product_class", source),
        software_version=_text(device, "software_version", source),
        parameters=parameters,
        tables=tables,
    )
    _check_model(model, parameters, tables, source)
    return model


def _entries(document: Mapping[str, Any], name: str, source: str) -> list[dict[str, Any]]:
    entries = document.get(name, [])
    if not isinstance(entries, list) or not all(isinstance(e, dict) for e in entries):
        raise ModelDefinitionError(f"{source}: [[{name}]] must be an array of tables")
    return entries


def _check_fields(table: Mapping[str, Any], allowed: set[str], where: str, required: Iterable[str] = ()) -> None:
    unknown = sorted(set(table) - allowed)
    if unknown:
        raise ModelDefinitionError(f"{where}: unknown field(s) {', '.join(unknown)}")
    missing = sorted(set(required) - set(table))
    if missing:
        raise ModelDefinitionError(f"{where}: missing field(s) {', '.join(missing)}")


def _text(table: Mapping[str, Any], name: str, where: str) -> str:
    value = table[name]
    if not isinstance(value, str):
        raise ModelDefinitionError(f"{where}: {name} must be a string")
    return value


def _text_list(table: Mapping[str, Any], name: str, where: str) -> list[str]:
    value = table.get(name, [])
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise ModelDefinitionError(f"{where}: {name} must be a list of strings")
    return value


def _flag(table: Mapping[str, Any], name: str, where: str, default: bool = False) -> bool:
    value = table.get(name, default)
    if not isinstance(value, bool):
        raise ModelDefinitionError(f"{where}: {name} must be true or false")
    return value


def _optional_int(table: Mapping[str, Any], name: str, where: str) -> int | None:
    value = table.get(name)
    if value is not None and (isinstance(value, bool) or not isinstance(value, int)):
        raise ModelDefinitionError(f"{where}: {name} must be an integer")
    return value


def _instances(table: Mapping[str, Any], where: str) -> tuple[int, ...]:
    value = table["instances"]
    if (
        not isinstance(value, list)
        or not value
        or not all(isinstance(v, int) and not isinstance(v, bool) and v >= 1 for v in value)
        or len(set(value)) != len(value)
    ):
        raise ModelDefinitionError(f"{where}: instances must be a non-empty list of distinct positive integers")
    return tuple(value)


def _table(entry: Mapping[str, Any], where: str) -> TableSpec:
    _check_fields(entry, _TABLE_FIELDS, where, required={"path", "instances"})
    path = _text(entry, "path", where)
    if not _OBJECT_RE.fullmatch(path) or path == "Device.":
        raise ModelDefinitionError(f"{where}: {path!r} is not an object path")
    count_path = entry.get("count_path")
    if count_path is not None and not isinstance(count_path, str):
        raise ModelDefinitionError(f"{where}: count_path must be a string")
    return TableSpec(path, _instances(entry, where), _flag(entry, "writable", where), count_path)


def _expand(entry: Mapping[str, Any], where: str) -> list[ParameterSpec]:
    """One TOML parameter entry -> one spec, or one per instance when it has ``instances``."""
    _check_fields(entry, _PARAMETER_FIELDS, where, required=_REQUIRED_PARAMETER_FIELDS)
    template = _text(entry, "key", where)
    where = f"{where} ({template})"
    if "instances" not in entry:
        if _INSTANCE in template or isinstance(entry.get("pvalue"), list) or isinstance(entry["default"], list):
            raise ModelDefinitionError(f"{where}: {{n}} and per-instance lists need instances")
        return [_spec(entry, where, instance=None, template=None, pvalue=entry.get("pvalue"), default=entry["default"])]
    instances = _instances(entry, where)
    if _INSTANCE not in template or (entry.get("path") is not None and _INSTANCE not in entry["path"]):
        raise ModelDefinitionError(f"{where}: key and path of an instanced parameter must contain {{n}}")
    pvalues = _per_instance(entry, "pvalue", instances, where)
    defaults = _per_instance(entry, "default", instances, where)
    return [
        _spec(entry, where, instance=n, template=template, pvalue=pvalue, default=default)
        for n, pvalue, default in zip(instances, pvalues, defaults)
    ]


def _per_instance(entry: Mapping[str, Any], name: str, instances: tuple[int, ...], where: str) -> list[Any]:
    value = entry.get(name)
    if not isinstance(value, list):
        return [value] * len(instances)
    if len(value) != len(instances):
        raise ModelDefinitionError(f"{where}: {name} needs one entry per instance ({len(instances)})")
    return value


def _spec(
    entry: Mapping[str, Any], where: str, *, instance: int | None, template: str | None, pvalue: Any, default: Any
) -> ParameterSpec:
    def expand(text: str) -> str:
        return text.replace(_INSTANCE, str(instance)) if instance is not None else text

    try:
        xsd_type = XsdType(entry["type"])
        source = Source(entry.get("source", Source.PVALUE.value))
        active_notify = ActiveNotify(entry.get("active_notify", ActiveNotify.NORMAL.value))
    except ValueError as exc:
        raise ModelDefinitionError(f"{where}: {exc}") from None
    path = entry.get("path")
    if path is not None and not isinstance(path, str):
        raise ModelDefinitionError(f"{where}: path must be a string")
    if pvalue is not None and not (isinstance(pvalue, str) and _PVALUE_RE.fullmatch(pvalue)):
        raise ModelDefinitionError(f"{where}: pvalue must look like P130")
    pvalue_map = entry.get("pvalue_map")
    if pvalue_map is not None and (
        not isinstance(pvalue_map, dict) or not all(isinstance(v, str) for v in pvalue_map.values())
    ):
        raise ModelDefinitionError(f"{where}: pvalue_map must map TR-069 text to P-value text")
    enum_values = entry.get("enum")
    if enum_values is not None:
        enum_values = tuple(_text_list(entry, "enum", where))
    value_range = entry.get("range")
    if value_range is not None:
        if not (
            isinstance(value_range, list)
            and len(value_range) == 2
            and all(isinstance(v, int) and not isinstance(v, bool) for v in value_range)
        ):
            raise ModelDefinitionError(f"{where}: range must be [low, high]")
        value_range = (value_range[0], value_range[1])
    notes = entry.get("notes", "")
    pattern = entry.get("pattern")
    if not isinstance(notes, str) or not isinstance(pattern, str | None):
        raise ModelDefinitionError(f"{where}: notes and pattern must be strings")
    notification = _optional_int(entry, "notification", where)
    if notification is None:
        notification = 2 if active_notify is ActiveNotify.FORCE_ENABLED else 0
    spec = ParameterSpec(
        key=expand(entry["key"]),
        title=expand(_text(entry, "title", where)),
        path=expand(path) if path is not None else None,
        type=xsd_type,
        writable=_flag(entry, "writable", where, default=source is Source.PVALUE),
        default=default,
        source=source,
        pvalue=pvalue,
        pvalue_map=MappingProxyType(dict(pvalue_map)) if pvalue_map is not None else None,
        enum=enum_values,
        range=value_range,
        multiple_of=_optional_int(entry, "multiple_of", where),
        min_length=_optional_int(entry, "min_length", where),
        max_length=_optional_int(entry, "max_length", where),
        pattern=pattern,
        reboot=_flag(entry, "reboot", where),
        secret=_flag(entry, "secret", where),
        weak_default=_flag(entry, "weak_default", where),
        notification=notification,
        active_notify=active_notify,
        forced_inform=_flag(entry, "forced_inform", where),
        instance=instance,
        template=template,
        swap_suspect=_flag(entry, "swap_suspect", where),
        depends_on=tuple(_text_list(entry, "depends_on", where)),
        exposed=_flag(entry, "exposed", where, default=True),
        notes=expand(notes),
    )
    _check_spec(spec, f"{where} [{spec.key}]")
    return spec


def _check_spec(spec: ParameterSpec, where: str) -> None:
    """Consistency of one spec with itself."""

    def fail(problem: str) -> None:
        raise ModelDefinitionError(f"{where}: {problem}")

    if not _KEY_RE.fullmatch(spec.key):
        fail("key must be dotted lower-case words")
    if spec.path is not None and not _PATH_RE.fullmatch(spec.path):
        fail(f"malformed path {spec.path!r}")
    if spec.source is Source.PVALUE and spec.pvalue is None and spec.exposed:
        fail("source pvalue needs a pvalue (or exposed = false)")
    if spec.source is not Source.PVALUE and spec.pvalue is not None:
        fail(f"a {spec.source.value} parameter has no pvalue")
    if spec.path is None and (spec.forced_inform or spec.notification or spec.active_notify is not ActiveNotify.NORMAL):
        fail("Inform and notification attributes need a TR-069 path")
    if spec.notification not in (0, 1, 2):
        fail("notification must be 0, 1 or 2")
    if spec.active_notify is ActiveNotify.FORCE_ENABLED and spec.notification != 2:
        fail("forceEnabled parameters are always active (notification 2)")
    is_text = spec.type is XsdType.STRING
    if not is_text and any(
        x is not None for x in (spec.enum, spec.pattern, spec.min_length, spec.max_length)
    ):
        fail("enum, pattern and lengths apply to strings only")
    if spec.type not in _INT_TYPES and (spec.range is not None or spec.multiple_of is not None):
        fail("range and multiple_of apply to integers only")
    if spec.secret and not is_text:
        fail("only strings can be secret")
    if spec.swap_suspect and spec.instance is None:
        fail("swap_suspect applies to instanced parameters only")
    if spec.pattern is not None:
        try:
            re.compile(spec.pattern)
        except re.error as exc:
            fail(f"bad pattern: {exc}")
    if spec.range is not None and spec.range[0] > spec.range[1]:
        fail("range low is above high")
    if spec.pvalue_map is not None:
        if spec.pvalue is None:
            fail("pvalue_map without a pvalue")
        if len(set(spec.pvalue_map.values())) != len(spec.pvalue_map):
            fail("pvalue_map gives two values one P-value text")
        if set(spec.pvalue_map) != set(spec.enum or ()):
            fail("pvalue_map must name exactly the enum values (string enumerations only)")
    elif spec.enum is not None and spec.pvalue is not None:
        fail("an enumeration with a P-value needs a pvalue_map")
    try:
        if spec.weak_default:
            spec.to_pvalue(spec.default)
        else:
            spec.validate(spec.default)
    except InvalidValue as exc:
        fail(f"default: {exc.reason}")


def _check_model(
    model: DeviceModel, parameters: list[ParameterSpec], tables: list[TableSpec], source: str
) -> None:
    """Consistency across specs and tables."""

    def fail(problem: str) -> None:
        raise ModelDefinitionError(f"{source}: {problem}")

    for attribute, items in (("key", [p.key for p in parameters]), ("path", [p.path for p in parameters if p.path])):
        duplicates = sorted({x for x in items if items.count(x) > 1})
        if duplicates:
            fail(f"duplicate {attribute}(s): {', '.join(duplicates)}")
    if len({t.path for t in tables}) != len(tables):
        fail("duplicate table path")
    for spec in parameters:
        unknown = [key for key in spec.depends_on if key not in model.parameters]
        if unknown:
            fail(f"{spec.key}: depends_on names unknown parameter(s) {', '.join(unknown)}")
    for pvalue, texts in _group((p.pvalue, p.to_pvalue(p.default)) for p in parameters if p.pvalue is not None):
        if len(set(texts)) > 1:
            fail(f"{pvalue} is shared by parameters with different defaults")
    for table in tables:
        if table.count_path is not None:
            counter = model.by_path(table.count_path)
            if counter is None or counter.type not in _INT_TYPES:
                fail(f"table {table.path}: count_path {table.count_path} is not a known integer parameter")
    for node in model.objects():
        head, _, number = node[:-1].rpartition(".")
        if number.isdigit():
            table = model.tables.get(head + ".")
            if table is None or int(number) not in table.instances:
                fail(f"object {node} is an instance of no declared table")


def _group(pairs: Iterable[tuple[str, str]]) -> Iterable[tuple[str, list[str]]]:
    groups: dict[str, list[str]] = {}
    for name, value in pairs:
        groups.setdefault(name, []).append(value)
    return groups.items()
