"""Plan the fewest RPCs that bring a device to the policy, one action at a time. Pure.

Within a session the planner is asked again after every reply, with facts reloaded from the store, so each decision
sees the effect of the last one. The order is fixed and explicit:

1. **Discover** — GetParameterNames once per model and firmware (cached by the store), so the ACS never asks for a
   path the device does not have.
2. **Read** — one GetParameterValues batch of every policy path, when any value is missing or stale or the device
   (re)booted.
3. **Watch** — SetParameterAttributes (active notification) on policy paths, so a change on the keypad comes back as
   a ``4 VALUE CHANGE`` Inform.
4. **Write** — one SetParameterValues batch of every non-compliant TR-069 setting whose prerequisites hold
   (``requires``) and that is not backing off after a fault. A fault leaves its parameters in backoff and the next
   round writes the rest; at most :data:`MAX_WRITE_ROUNDS` rounds per session.
5. **Verify** — GetParameterValues of what was written: compliance comes only from values read back.
6. **Push config** — one Download of a vendor config file with every setting that has no TR-069 path and was read
   back wrong or never read (reading it first would cost a whole transfer cycle; it is verified right after).
7. **Pull config** — one Upload of the device's config file, queued behind the Download, to read back what has no
   TR-069 path; and on its own when those values are missing or stale.

Safety ordering comes from ``requires`` (Constraint Mode only after the admin password is in escrow) and from the
config-file rules: a file is pushed only when the ACS holds every secret the device will demand of it (the XML
config password to encrypt it, the admin password when "Authenticate config file" is on).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from cwmp_models.datamodel import ParameterSpec
from cwmp_models.types import XsdType

from .evaluate import (
    Channel,
    CheckResult,
    DeviceFacts,
    RuleResult,
    Status,
    applies,
    channel_for,
    evaluate,
    resolve,
    typed_for,
)
from .rules import Check, Generate, Policy

MAX_WRITE_ROUNDS = 3
REVERIFY_AFTER = 24 * 3600.0
BOOT_EVENTS = ("0 BOOTSTRAP", "1 BOOT")
ADMIN_PASSWORD = "web.admin_password"
XML_PASSWORD = "config.xml_password"
AUTHENTICATE_CONFIG = "config.authenticate"


@dataclass(frozen=True)
class Discover:
    root: str = "Device."


@dataclass(frozen=True)
class Read:
    paths: tuple[str, ...]
    verify: bool = False


@dataclass(frozen=True)
class Watch:
    paths: tuple[str, ...]


@dataclass(frozen=True)
class WriteItem:
    rule_id: str
    key: str
    path: str
    type: XsdType
    value: Any = None  # None with ``generate``: a fresh secret, made by the source
    generate: Generate | None = None
    reboot: bool = False


@dataclass(frozen=True)
class Write:
    items: tuple[WriteItem, ...]
    parameter_key: str


@dataclass(frozen=True)
class ConfigItem:
    rule_id: str
    key: str
    value: Any


@dataclass(frozen=True)
class PushConfig:
    items: tuple[ConfigItem, ...]
    include_admin_password: bool
    encrypt: bool


@dataclass(frozen=True)
class PullConfig:
    pass


Action = Discover | Read | Watch | Write | PushConfig | PullConfig


@dataclass
class Progress:
    """What this session has done so far (the planner's memory within one session)."""

    events: tuple[str, ...] = ()
    discovery_attempted: bool = False
    read_done: bool = False
    watch_done: bool = False
    write_rounds: int = 0
    written_keys: set[str] = field(default_factory=set)  # accepted by the device, awaiting read-back
    written_paths: set[str] = field(default_factory=set)
    verified: bool = False
    config_pushed: bool = False
    config_pulled: bool = False


@dataclass
class TransferState:
    download_in_flight: bool = False
    upload_in_flight: bool = False
    # When the newest successfully applied config file was fetched: readings older than that predate it.
    last_download_fetched_at: float | None = None


@dataclass
class PlanInput:
    facts: DeviceFacts
    notifications: dict[str, int] = field(default_factory=dict)
    transfers: TransferState = field(default_factory=TransferState)
    enforce: bool = True
    config_channel: bool = True  # a file endpoint exists to serve and receive vendor config files


def next_action(policy: Policy, data: PlanInput, progress: Progress) -> Action | None:
    facts = data.facts
    if facts.discovered is None:
        if progress.discovery_attempted:
            return None  # discovery failed this session; nothing can be planned safely
        return Discover()
    results = evaluate(policy, facts)
    keys = relevant_keys(policy, facts)
    readable = sorted(
        {spec.path for spec in keys if channel_for(spec, facts.discovered) is Channel.TR069 and not spec.secret}
    )
    if not progress.read_done and _needs_read(readable, policy, facts, progress):
        return Read(tuple(readable))
    if not data.enforce:
        return _pull_if_needed(policy, data, progress, keys)
    unwatched = tuple(p for p in readable if data.notifications.get(p, 0) < 2 and facts.discovered.get(p) is not None)
    if unwatched and not progress.watch_done:
        return Watch(unwatched)
    if progress.write_rounds < MAX_WRITE_ROUNDS:
        items = [item for item in _write_items(policy, results, facts) if item.key not in progress.written_keys]
        if items:
            return Write(tuple(items), policy.parameter_key(facts.settings))
    to_verify = tuple(sorted(p for p in progress.written_paths if p in readable))
    if to_verify and not progress.verified:
        return Read(to_verify, verify=True)
    if not data.config_channel:
        return None
    if not progress.config_pushed and not data.transfers.download_in_flight:
        push = _push_config(policy, results, data)
        if push is not None:
            return push
    return _pull_if_needed(policy, data, progress, keys)


def relevant_keys(policy: Policy, facts: DeviceFacts) -> list[ParameterSpec]:
    """Every parameter the policy looks at for this device: its checks and the keys its conditions read."""
    seen: dict[str, ParameterSpec] = {}
    for rule in policy.rules:
        if rule.kind != "setting" or rule.id in facts.exemptions:
            continue
        for n in policy.instance_numbers(rule):
            if rule.when is not None and rule.when.key is not None:
                key = rule.when.key.replace("{n}", str(n))
                seen[key] = policy.model.parameters[key]
            applicable, _ = applies(policy, rule, n, facts)
            if applicable is False:
                continue
            for check in rule.checks:
                key = check.for_instance(n).key
                seen[key] = policy.model.parameters[key]
    return list(seen.values())


def _needs_read(paths: list[str], policy: Policy, facts: DeviceFacts, progress: Progress) -> bool:
    if not paths:
        return False
    if any(event in progress.events for event in BOOT_EVENTS):
        return True
    by_path = {spec.path: spec.key for spec in policy.model.parameters.values() if spec.path}
    for path in paths:
        reading = facts.readings.get(by_path[path])
        if reading is None or reading.at < facts.now - REVERIFY_AFTER:
            return True
    return False


def _blocked(policy: Policy, result: RuleResult, results_by_id: dict[str, RuleResult]) -> bool:
    return any(results_by_id[required].status is not Status.COMPLIANT for required in result.rule.requires)


def _remediable(
    policy: Policy, results: list[RuleResult], facts: DeviceFacts, channel: Channel
) -> Iterator[tuple[RuleResult, CheckResult, ParameterSpec, Check]]:
    """Every check on ``channel`` the ACS may act on now: its rule is not compliant, its prerequisites hold, the
    check itself is not compliant, and (rule, parameter) is not backing off after a fault."""
    by_id = {r.rule_id: r for r in results}
    for result in results:
        if result.status not in (Status.NON_COMPLIANT, Status.UNKNOWN) or _blocked(policy, result, by_id):
            continue
        for instance in result.instances:
            for check_result in instance.checks:
                spec = policy.model.parameters[check_result.key]
                if check_result.status is Status.COMPLIANT or channel_for(spec, facts.discovered) is not channel:
                    continue
                if (result.rule_id, spec.key) in facts.backoff:
                    continue
                check = next(c.for_instance(instance.instance) for c in result.rule.checks
                             if c.for_instance(instance.instance).key == spec.key)
                yield result, check_result, spec, check


def _write_items(policy: Policy, results: list[RuleResult], facts: DeviceFacts) -> list[WriteItem]:
    items: dict[str, WriteItem] = {}
    for result, check_result, spec, check in _remediable(policy, results, facts, Channel.TR069):
        if not _wants_write(check_result, facts) or not facts.discovered.get(spec.path):
            continue  # not wrong (merely unread), or the device says the path is read-only
        item = _write_item(result.rule_id, spec, check, facts)
        if item is not None:
            items.setdefault(spec.key, item)
    return list(items.values())


def _wants_write(check_result, facts: DeviceFacts) -> bool:
    if check_result.status is Status.NON_COMPLIANT:
        return True
    # An escrowed secret the device may have lost track of (untrusted ParameterKey) is rewritten; a merely pending
    # one is not (its SetParameterValues is in flight or will be confirmed by the next ParameterKey).
    return check_result.status is Status.UNKNOWN and "ParameterKey" in check_result.note


def _write_item(rule_id: str, spec: ParameterSpec, check, facts: DeviceFacts) -> WriteItem | None:
    if check.generate is not None:
        return WriteItem(rule_id, spec.key, spec.path, spec.type, generate=check.generate, reboot=spec.reboot)
    if not check.has_set:
        return None
    value, problem = resolve(check.set, facts.settings)
    if problem:
        return None
    value = typed_for(spec, value)
    if check.prefix and not str(value).startswith(check.prefix):
        return None  # never write a value the check itself would refuse (e.g. an http:// ACS URL)
    return WriteItem(rule_id, spec.key, spec.path, spec.type, value=value, reboot=spec.reboot)


def _push_config(policy: Policy, results: list[RuleResult], data: PlanInput) -> PushConfig | None:
    facts = data.facts
    items: dict[str, ConfigItem] = {}
    # A value read back wrong is rewritten. A value never read is written too: reading it first would cost a whole
    # extra transfer cycle (Upload, then a new session), while writing the wanted value and reading it back right
    # after gives the same verified result. A value read back right is left alone.
    for result, _, spec, check in _remediable(policy, results, facts, Channel.CONFIG):
        if spec.secret or not check.has_set:
            continue
        value, problem = resolve(check.set, facts.settings)
        if problem:
            continue
        items.setdefault(spec.key, ConfigItem(result.rule_id, spec.key, typed_for(spec, value)))
    if not items:
        return None
    items = _complete_swap_groups(policy, items)
    if facts.escrow.get(XML_PASSWORD) == "pending":
        return None  # the device may or may not hold the new password yet: a file now could be unreadable to it
    authenticate = facts.readings.get(AUTHENTICATE_CONFIG)
    needs_admin = authenticate is not None and authenticate.value is True
    if needs_admin and facts.escrow.get(ADMIN_PASSWORD) != "active":
        return None  # the device would refuse a file without its admin password (P1)
    return PushConfig(tuple(items.values()), include_admin_password=needs_admin,
                      encrypt=facts.escrow.get(XML_PASSWORD) == "active")


def _complete_swap_groups(policy: Policy, items: dict[str, ConfigItem]) -> dict[str, ConfigItem]:
    """Per-account P-values whose account numbering is uncertain must be written for every account alike (the
    data model refuses anything else); add the missing siblings with the same value when the rule wants it."""
    completed = dict(items)
    for key, item in items.items():
        spec = policy.model.parameters[key]
        if not spec.swap_suspect or spec.template is None:
            continue
        for sibling in policy.model.instances_of(spec.template):
            completed.setdefault(sibling.key, ConfigItem(item.rule_id, sibling.key, item.value))
    return completed


def _pull_if_needed(policy: Policy, data: PlanInput, progress: Progress, keys: list[ParameterSpec]) -> Action | None:
    facts = data.facts
    if progress.config_pulled or data.transfers.upload_in_flight or not data.config_channel:
        return None
    config_keys = [spec for spec in keys if channel_for(spec, facts.discovered) is Channel.CONFIG and not spec.secret]
    if not config_keys:
        return None
    if progress.config_pushed:
        return PullConfig()  # read back what the file we just queued will change
    last_download = data.transfers.last_download_fetched_at
    for spec in config_keys:
        reading = facts.readings.get(spec.key)
        if reading is None or reading.at < facts.now - REVERIFY_AFTER:
            return PullConfig()
        if last_download is not None and reading.at < last_download:
            return PullConfig()
    return None
