"""The policy file as typed data, loaded and checked against the device data model.

A policy is read by auditors, so the loader is strict: every key must exist in the model, every literal value must
pass the model's validator, every ``${setting}`` must be declared, every ``requires`` must name a rule. Errors name
the rule and the field.
"""

from __future__ import annotations

import hashlib
import json
import re
import tomllib
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any, Mapping

from cwmp_models.datamodel import DeviceModel, InvalidValue, ParameterSpec, load_model

SEVERITIES = ("critical", "high", "medium", "low", "info")
KINDS = ("setting", "advisory")
ALPHABETS = {
    "alnum": "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789",
    "ascii": "".join(chr(c) for c in range(33, 127)),
}
# Settings every device has without an operator declaring them.
BUILTIN_SETTINGS = ("device_username", "acs_url", "stun_server")
_VARIABLE = re.compile(r"^\$\{([a-z_][a-z0-9_]*)\}$")
_PREDICATES = ("equals", "one_of", "not_in", "min", "max", "nonempty", "escrowed", "prefix")


class PolicyError(ValueError):
    """The policy file is wrong; the message names the rule and field."""


@dataclass(frozen=True)
class Generate:
    length: int
    alphabet: str  # the characters themselves


@dataclass(frozen=True)
class Check:
    key: str  # may contain {n} for per-instance rules
    equals: Any = None
    one_of: tuple | None = None
    not_in: tuple | None = None
    min: int | None = None
    max: int | None = None
    nonempty: bool = False
    escrowed: bool = False
    prefix: str | None = None
    set: Any = None
    generate: Generate | None = None
    has_equals: bool = False
    has_set: bool = False

    def for_instance(self, n: int | None) -> "Check":
        if n is None or "{n}" not in self.key:
            return self
        return _replace(self, key=self.key.replace("{n}", str(n)))

    def describe(self) -> str:
        """The expectation in words, for reports."""
        if self.escrowed:
            return "set by the ACS and held in escrow"
        parts = []
        if self.has_equals:
            parts.append(f"= {_show(self.equals)}")
        if self.one_of is not None:
            parts.append(f"one of {', '.join(map(_show, self.one_of))}")
        if self.not_in is not None:
            parts.append(f"not {', '.join(map(_show, self.not_in))}")
        if self.min is not None:
            parts.append(f">= {self.min}")
        if self.max is not None:
            parts.append(f"<= {self.max}")
        if self.nonempty:
            parts.append("not empty")
        if self.prefix:
            parts.append(f"starts with {self.prefix}")
        return " and ".join(parts) or "any"


@dataclass(frozen=True)
class Condition:
    setting: str | None = None
    key: str | None = None
    equals: Any = None
    instance_not_in_setting: str | None = None


@dataclass(frozen=True)
class Rule:
    id: str
    title: str
    section: str
    severity: str
    kind: str = "setting"
    checks: tuple[Check, ...] = ()
    when: Condition | None = None
    requires: tuple[str, ...] = ()
    instances: str | None = None
    overridable: tuple[str, ...] = ()
    rationale: str = ""
    advice: str = ""
    data: str | None = None


@dataclass(frozen=True)
class Setting:
    name: str
    default: Any
    doc: str = ""
    type: str | None = None
    one_of: tuple | None = None
    not_in: tuple | None = None
    min: int | None = None

    def check(self, value: Any) -> str | None:
        """Why ``value`` is not acceptable for this setting, or None."""
        if self.type == "port" and (not isinstance(value, int) or isinstance(value, bool) or not 1 <= value <= 65535):
            return "must be a port number 1-65535"
        if self.one_of is not None and value not in self.one_of:
            return f"must be one of {', '.join(map(str, self.one_of))}"
        if self.not_in is not None and value in self.not_in:
            return f"must not be {value}"
        if self.min is not None and isinstance(value, int) and value < self.min:
            return f"must be at least {self.min}"
        if self.default is not None and type(value) is not type(self.default):
            return f"must be a {type(self.default).__name__}"
        return None


@dataclass(frozen=True)
class Policy:
    id: str
    title: str
    revision: str
    model: DeviceModel
    guide: str
    settings: Mapping[str, Setting]
    rules: tuple[Rule, ...]
    source: str = ""
    _by_id: dict = field(default_factory=dict, compare=False, repr=False)

    def rule(self, rule_id: str) -> Rule:
        return self._by_id[rule_id]

    @property
    def digest(self) -> str:
        """Identifies this policy revision (and its text): the basis of the ParameterKey the ACS writes."""
        return hashlib.sha256(f"{self.id}\n{self.revision}\n{self.source}".encode()).hexdigest()

    def parameter_key(self, settings: Mapping[str, Any]) -> str:
        """ParameterKey (<= 32 characters) for writes under this policy and these resolved settings."""
        blob = json.dumps({k: settings[k] for k in sorted(settings)}, sort_keys=True, default=str)
        digest = hashlib.sha256(f"{self.digest}\n{blob}".encode()).hexdigest()
        return f"pol-{self.revision[:10]}-{digest[:16]}"[:32]

    def instance_numbers(self, rule: Rule) -> list[int | None]:
        if rule.instances is None:
            return [None]
        template = next((c.key for c in rule.checks if "{n}" in c.key), None)
        specs = self.model.instances_of(template) if template else []
        return sorted(spec.instance for spec in specs if spec.instance is not None)

    def resolve_settings(self, overrides: Mapping[str, Any], builtins: Mapping[str, Any]) -> dict[str, Any]:
        resolved = {name: setting.default for name, setting in self.settings.items()}
        for name, value in overrides.items():
            if name not in self.settings:
                raise PolicyError(f"override {name!r}: no such setting in policy {self.id}")
            problem = self.settings[name].check(value)
            if problem:
                raise PolicyError(f"override {name}: {problem}")
            resolved[name] = value
        resolved.update(builtins)
        return resolved


def load_policy(path: str | Path | None = None, *, model: DeviceModel | None = None) -> Policy:
    if path is None:
        text = resources.files("policies").joinpath("wp820-hardening.toml").read_text("utf-8")
        where = "policies/wp820-hardening.toml"
    else:
        try:
            text = Path(path).read_text("utf-8")
        except OSError as exc:
            raise PolicyError(f"cannot read policy {path}: {exc.strerror}") from None
        where = str(path)
    return parse_policy(text, where, model=model)


def parse_policy(text: str, where: str = "<policy>", *, model: DeviceModel | None = None) -> Policy:
    try:
        document = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise PolicyError(f"{where}: {exc}") from None
    header = _table(document, "policy", where)
    _fields(header, {"id", "title", "revision", "model", "guide"}, f"{where} [policy]")
    model = model or load_model(str(header.get("model", "wp820")))
    settings = {
        name: _setting(name, spec, f"{where} [settings.{name}]")
        for name, spec in _table(document, "settings", where, required=False).items()
    }
    rules = tuple(_rule(entry, model, settings, f"{where} rule #{i + 1}") for i, entry in enumerate(document.get("rule", [])))
    ids = [rule.id for rule in rules]
    duplicates = {rule_id for rule_id in ids if ids.count(rule_id) > 1}
    if duplicates:
        raise PolicyError(f"{where}: duplicate rule ids {sorted(duplicates)}")
    for rule in rules:
        for required in rule.requires:
            if required not in ids:
                raise PolicyError(f"{where} rule {rule.id}: requires unknown rule {required!r}")
    policy = Policy(
        id=str(header["id"]),
        title=str(header.get("title", header["id"])),
        revision=str(header.get("revision", "0")),
        model=model,
        guide=str(header.get("guide", "")),
        settings=settings,
        rules=rules,
        source=text,
    )
    policy._by_id.update({rule.id: rule for rule in rules})
    return policy


def _setting(name: str, spec: Any, where: str) -> Setting:
    if not isinstance(spec, dict) or "default" not in spec:
        raise PolicyError(f"{where}: a setting needs a default")
    _fields(spec, {"default", "doc", "type", "one_of", "not_in", "min"}, where)
    setting = Setting(
        name,
        spec["default"],
        spec.get("doc", ""),
        spec.get("type"),
        tuple(spec["one_of"]) if "one_of" in spec else None,
        tuple(spec["not_in"]) if "not_in" in spec else None,
        spec.get("min"),
    )
    problem = setting.check(setting.default)
    if problem:
        raise PolicyError(f"{where}: default {problem}")
    return setting


def _rule(entry: Any, model: DeviceModel, settings: Mapping[str, Setting], where: str) -> Rule:
    if not isinstance(entry, dict):
        raise PolicyError(f"{where}: not a table")
    _fields(
        entry,
        {"id", "title", "section", "severity", "kind", "check", "when", "requires", "instances", "overridable",
         "rationale", "advice", "data"},
        where,
    )
    for required in ("id", "title", "section", "severity"):
        if required not in entry:
            raise PolicyError(f"{where}: missing {required}")
    where = f"{where.rsplit(' rule #', 1)[0]} rule {entry['id']}"
    if entry["severity"] not in SEVERITIES:
        raise PolicyError(f"{where}: severity must be one of {', '.join(SEVERITIES)}")
    kind = entry.get("kind", "setting")
    if kind not in KINDS:
        raise PolicyError(f"{where}: kind must be one of {', '.join(KINDS)}")
    instances = entry.get("instances")
    if instances is not None and instances != "sip_accounts":
        raise PolicyError(f"{where}: instances must be \"sip_accounts\"")
    checks = tuple(_check(c, model, settings, f"{where} check {c.get('key', '?') if isinstance(c, dict) else '?'}",
                          per_instance=instances is not None)
                   for c in entry.get("check", []))
    if kind == "setting" and not checks:
        raise PolicyError(f"{where}: a setting rule needs at least one check")
    if kind == "advisory" and not entry.get("advice"):
        raise PolicyError(f"{where}: an advisory rule needs advice")
    when = _condition(entry["when"], model, settings, f"{where} when") if "when" in entry else None
    overridable = tuple(entry.get("overridable", ()))
    for name in overridable:
        if name not in settings:
            raise PolicyError(f"{where}: overridable names unknown setting {name!r}")
    return Rule(
        id=str(entry["id"]),
        title=str(entry["title"]),
        section=str(entry["section"]),
        severity=entry["severity"],
        kind=kind,
        checks=checks,
        when=when,
        requires=tuple(entry.get("requires", ())),
        instances=instances,
        overridable=overridable,
        rationale=str(entry.get("rationale", "")),
        advice=str(entry.get("advice", "")),
        data=entry.get("data"),
    )


def _check(spec: Any, model: DeviceModel, settings: Mapping[str, Setting], where: str, *, per_instance: bool) -> Check:
    if not isinstance(spec, dict) or "key" not in spec:
        raise PolicyError(f"{where}: a check needs a key")
    _fields(spec, {"key", "set", "generate", *_PREDICATES}, where)
    key = spec["key"]
    if per_instance != ("{n}" in key):
        raise PolicyError(f"{where}: per-account rules use {{n}} in keys, and only they do")
    sample = _spec_for(model, key, where)
    if not any(p in spec for p in _PREDICATES):
        raise PolicyError(f"{where}: no predicate ({', '.join(_PREDICATES)})")
    generate = None
    if "generate" in spec:
        options = spec["generate"]
        if not isinstance(options, dict) or options.get("alphabet") not in ALPHABETS:
            raise PolicyError(f"{where}: generate needs an alphabet ({', '.join(ALPHABETS)}) and a length")
        generate = Generate(int(options.get("length", 0)), ALPHABETS[options["alphabet"]])
        if not spec.get("escrowed"):
            raise PolicyError(f"{where}: generated values must be escrowed")
        _validate_literal(sample, "x" * generate.length if sample.pattern is None else "A" * generate.length, where,
                          "generated length")
    if spec.get("escrowed") and not sample.secret:
        raise PolicyError(f"{where}: escrowed applies to secrets only")
    for literal_field in ("equals", "set"):
        value = spec.get(literal_field)
        if isinstance(value, str) and value.startswith("${"):
            _variable(value, settings, where)
        elif literal_field in spec:
            _validate_literal(sample, value, where, literal_field)
    return Check(
        key=key,
        equals=spec.get("equals"),
        one_of=tuple(spec["one_of"]) if "one_of" in spec else None,
        not_in=tuple(spec["not_in"]) if "not_in" in spec else None,
        min=spec.get("min"),
        max=spec.get("max"),
        nonempty=bool(spec.get("nonempty", False)),
        escrowed=bool(spec.get("escrowed", False)),
        prefix=spec.get("prefix"),
        set=spec.get("set"),
        generate=generate,
        has_equals="equals" in spec,
        has_set="set" in spec,
    )


def _condition(spec: Any, model: DeviceModel, settings: Mapping[str, Setting], where: str) -> Condition:
    if not isinstance(spec, dict):
        raise PolicyError(f"{where}: not a table")
    _fields(spec, {"setting", "key", "equals", "instance_not_in_setting"}, where)
    condition = Condition(spec.get("setting"), spec.get("key"), spec.get("equals"), spec.get("instance_not_in_setting"))
    named = condition.setting or condition.instance_not_in_setting
    if named is not None and named not in settings:
        raise PolicyError(f"{where}: unknown setting {named!r}")
    if condition.key is not None:
        _spec_for(model, condition.key, where)
    if sum(x is not None for x in (condition.setting, condition.key, condition.instance_not_in_setting)) != 1:
        raise PolicyError(f"{where}: name exactly one of setting, key, instance_not_in_setting")
    return condition


def _spec_for(model: DeviceModel, key: str, where: str) -> ParameterSpec:
    concrete = key.replace("{n}", "1")
    spec = model.parameters.get(concrete)
    if spec is None:
        raise PolicyError(f"{where}: {key!r} is not a parameter of model {model.name}")
    return spec


def _variable(text: str, settings: Mapping[str, Setting], where: str) -> str:
    match = _VARIABLE.match(text)
    if match is None:
        raise PolicyError(f"{where}: malformed variable {text!r}")
    name = match.group(1)
    if name not in settings and name not in BUILTIN_SETTINGS:
        raise PolicyError(f"{where}: unknown setting ${{{name}}}")
    return name


def _validate_literal(spec: ParameterSpec, value: Any, where: str, what: str) -> None:
    try:
        spec.validate(value)
    except InvalidValue as exc:
        raise PolicyError(f"{where}: {what} {exc.reason}") from None


def _table(document: Mapping[str, Any], name: str, where: str, *, required: bool = True) -> dict:
    value = document.get(name)
    if value is None:
        if required:
            raise PolicyError(f"{where}: missing [{name}]")
        return {}
    if not isinstance(value, dict):
        raise PolicyError(f"{where}: [{name}] must be a table")
    return value


def _fields(table: Mapping[str, Any], allowed: set[str], where: str) -> None:
    unknown = set(table) - allowed
    if unknown:
        raise PolicyError(f"{where}: unknown field(s) {', '.join(sorted(unknown))}")


def _replace(check: Check, **changes: Any) -> Check:
    from dataclasses import replace

    return replace(check, **changes)


def _show(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def variable_name(value: Any) -> str | None:
    if isinstance(value, str):
        match = _VARIABLE.match(value)
        if match:
            return match.group(1)
    return None
