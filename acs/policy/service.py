"""The policy engine's edge: gathers facts from the store for the pure evaluator and planner, turns planned actions
into CWMP requests, and records what comes back (readings, escrow, backoff, compliance, audit)."""

from __future__ import annotations

import secrets as random_secrets
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any, Callable

import structlog

from cwmp_models import gsconfig
from cwmp_models import messages as m
from cwmp_models.datamodel import InvalidValue
from cwmp_models.types import XsdType

from ..store import DeviceRecord, Store
from ..work import DeviceContext, Step
from . import plan as p
from .evaluate import Backoff, DeviceFacts, Reading, RuleResult, evaluate
from .rules import Generate, Policy

CONFIG_PREFIX = "gs:"  # parameters-table rows holding P-values read from an uploaded config file


def pvalue_path(pvalue: str) -> str:
    return f"{CONFIG_PREFIX}{pvalue}"


@dataclass
class Overrides:
    """Operator settings per site and per group (group wins over site)."""

    sites: dict[str, dict[str, Any]] = field(default_factory=dict)
    groups: dict[str, dict[str, Any]] = field(default_factory=dict)

    def for_device(self, device: DeviceRecord) -> dict[str, Any]:
        merged: dict[str, Any] = {}
        if device.site:
            merged.update(self.sites.get(device.site, {}))
        if device.device_group:
            merged.update(self.groups.get(device.device_group, {}))
        return merged


def generate_secret(spec: Generate) -> str:
    return "".join(random_secrets.choice(spec.alphabet) for _ in range(spec.length))


def next_window_start(window: str, now: float) -> float:
    """Start of the next maintenance window "HH:MM-HH:MM" (UTC) at or after ``now`` (now if inside it)."""
    start_text, _, end_text = window.partition("-")
    start_h, start_m = (int(x) for x in start_text.split(":"))
    end_h, end_m = (int(x) for x in end_text.split(":"))
    moment = datetime.fromtimestamp(now, timezone.utc)
    start = moment.replace(hour=start_h, minute=start_m, second=0, microsecond=0)
    end = moment.replace(hour=end_h, minute=end_m, second=0, microsecond=0)
    if end <= start:
        end += timedelta(days=1)
    if start <= moment < end or start - timedelta(days=1) <= moment < end - timedelta(days=1):
        return now
    if start < moment:
        start += timedelta(days=1)
    return start.timestamp()


class PolicyService:
    """One per ACS process: owns the policy and builds a :class:`PolicySource` for each session."""

    def __init__(
        self,
        store: Store,
        policy: Policy,
        *,
        vault: Any,
        files: Any = None,
        overrides: Overrides | None = None,
        acs_url: str = "",
        stun_server: str = "",
        enforce: bool = True,
        config_kdf: str = "md5",
        clock: Callable[[], float] | None = None,
    ) -> None:
        self.store = store
        self.config_kdf = config_kdf
        self.policy = policy
        self.vault = vault
        self.files = files
        self.overrides = overrides or Overrides()
        self.acs_url = acs_url
        self.stun_server = stun_server
        self.enforce = enforce
        self.clock = clock or store.clock
        self.log = structlog.get_logger("acs.policy")
        if files is not None:
            files.on_upload = self.on_upload

    # ---- facts ------------------------------------------------------------------------------------------------------

    def settings_for(self, device: DeviceRecord) -> dict[str, Any]:
        builtins = {"device_username": device.serial_number, "acs_url": self.acs_url, "stun_server": self.stun_server}
        return self.policy.resolve_settings(self.overrides.for_device(device), builtins)

    def facts(self, device: DeviceRecord) -> DeviceFacts:
        model = self.policy.model
        stored = self.store.parameters.get(device.id)
        readings: dict[str, Reading] = {}
        for spec in model.parameters.values():
            if spec.path and spec.path in stored and stored[spec.path].value is not None:
                row = stored[spec.path]
                readings[spec.key] = Reading(_typed(spec, row), row.observed_at, row.session_id, "TR-069")
            elif spec.pvalue and pvalue_path(spec.pvalue) in stored:
                row = stored[pvalue_path(spec.pvalue)]
                try:
                    value = spec.from_pvalue(row.value or "")
                except InvalidValue:
                    value = row.value
                readings[spec.key] = Reading(value, row.observed_at, row.session_id, "config upload")
        escrow: dict[str, str] = {}
        for name, state in self.store.secrets.names(device.id):
            if state == "active" or name not in escrow:
                escrow[name] = state
        state = self.store.policy_state
        return DeviceFacts(
            device_id=device.id,
            now=self.clock(),
            settings=self.settings_for(device),
            readings=readings,
            discovered=self.store.discovery.names(device.model_key),
            escrow=escrow,
            secrets_trusted=(device.parameter_key or "") in state.issued_parameter_keys(device.id),
            backoff={
                (row.rule_id, row.key): Backoff(row.next_attempt_at, row.attempts, row.fault_code, row.fault_text)
                for row in state.backoff(device.id)
                if row.next_attempt_at > self.clock()
            },
            exemptions={e.rule_id: e.reason for e in state.exemptions(device.id)},
        )

    def plan_input(self, device: DeviceRecord) -> p.PlanInput:
        return p.PlanInput(
            self.facts(device), self.store.parameters.notifications(device.id), self.transfer_state(device.id),
            self.enforce, config_channel=self.files is not None,
        )

    def transfer_state(self, device_id: str) -> p.TransferState:
        """Config files on their way to or from the device (an offered URL that expired unused no longer counts)."""
        now = self.clock()
        state = p.TransferState()
        for transfer in self.store.transfers.for_device(device_id):
            in_flight = transfer.active and (transfer.status != "offered" or transfer.expires_at > now)
            if transfer.direction == "download":
                state.download_in_flight |= in_flight
                if transfer.status == "completed" and transfer.served_at:
                    state.last_download_fetched_at = max(state.last_download_fetched_at or 0.0, transfer.served_at)
            else:
                state.upload_in_flight |= in_flight
        return state

    # ---- compliance -------------------------------------------------------------------------------------------------

    def evaluate_device(self, device_id: str) -> list[RuleResult]:
        device = self.store.devices.get(device_id)
        if device is None:
            return []
        return evaluate(self.policy, self.facts(device))

    def record_compliance(self, device_id: str, session_id: str | None = None) -> list[RuleResult]:
        results = self.evaluate_device(device_id)
        self.store.policy_state.record_compliance(
            device_id, [(r.rule_id, r.status.value, result_detail(r)) for r in results], session_id=session_id
        )
        return results

    # ---- uploads (outside sessions) ---------------------------------------------------------------------------------

    def on_upload(self, record: Any, content: bytes) -> None:
        """A device uploaded its config file: record every P-value the model knows as a reading."""
        device_id = record.device_id
        try:
            data = content
            if gsconfig.is_encrypted(content):
                data = gsconfig.decrypt_config(content, self._secret(device_id, p.XML_PASSWORD), kdf=self.config_kdf)
            config = gsconfig.parse_config(data)
        except (gsconfig.ConfigFileError, LookupError) as exc:
            reason = getattr(exc, "reason", str(exc))
            self.store.history.record_fault(device_id, session_id=None, source="Upload", code=None,
                                            message=f"unreadable config upload: {reason}", at=self.clock())
            return
        model = self.policy.model
        rows = [(pvalue_path(name), text, XsdType.STRING) for name, text in config.pvalues.items()
                if model.by_pvalue(name)]
        with self.store.transaction():
            self.store.parameters.record_values(device_id, rows, at=self.clock(), session_id=None)
        self.record_compliance(device_id)
        self.log.info("config upload read back", device_id=device_id, pvalues=len(rows))

    def _secret(self, device_id: str, key: str, state: str = "active") -> str:
        blob = self.store.secrets.get(device_id, key, state=state)
        if blob is None:
            raise LookupError(f"no {state} {key} in escrow")
        return self.vault.open(device_id, key, blob)

    # ---- sessions ---------------------------------------------------------------------------------------------------

    def source(self, ctx: DeviceContext) -> "PolicySource":
        return PolicySource(self, ctx)


def _typed(spec, row) -> Any:
    value = row.typed
    if isinstance(value, str) and spec.type is not XsdType.STRING:
        try:
            return spec.parse(value)
        except InvalidValue:
            return value
    return value


def result_detail(result: RuleResult) -> dict:
    """The evidence behind a verdict, for the store and for auditors (never a secret's value)."""
    return {
        "title": result.rule.title,
        "severity": result.rule.severity,
        "note": result.note,
        "instances": [
            {
                "instance": instance.instance,
                "status": instance.status.value,
                "note": instance.note,
                "checks": [
                    {
                        "key": c.key,
                        "status": c.status.value,
                        "expected": c.expected,
                        "value": c.value,
                        "read_at": c.at,
                        "session_id": c.session_id,
                        "via": c.via,
                        "channel": c.channel.value,
                        "note": c.note,
                    }
                    for c in instance.checks
                ],
            }
            for instance in result.instances
        ],
    }


class PolicySource:
    """The policy as a work source for one session."""

    name = "policy"

    def __init__(self, service: PolicyService, ctx: DeviceContext) -> None:
        self.service = service
        self.progress = p.Progress(events=tuple(ctx.inform.event_codes))
        self.ctx = ctx

    @property
    def store(self) -> Store:
        return self.service.store

    def _device(self, ctx: DeviceContext) -> DeviceRecord:
        device = self.store.devices.get(ctx.device.id)
        assert device is not None
        return device

    def next_step(self, ctx: DeviceContext) -> Step | None:
        device = self._device(ctx)
        action = p.next_action(self.service.policy, self.service.plan_input(device), self.progress)
        if action is None:
            self.service.record_compliance(device.id, ctx.session_id)
            return None
        builder = {
            p.Discover: self._discover,
            p.Read: self._read,
            p.Watch: self._watch,
            p.Write: self._write,
            p.PushConfig: self._push_config,
            p.PullConfig: self._pull_config,
        }[type(action)]
        return builder(ctx, device, action)

    def on_transfer_complete(self, ctx: DeviceContext, message: m.TransferComplete) -> bool:
        files = self.service.files
        if files is None:
            return False
        record = files.transfer_complete(ctx.device.id, message.command_key, message.fault_struct.fault_code,
                                         message.fault_struct.fault_string)
        if record is None:
            return False
        if message.fault_struct.fault_code and record.direction == "download":
            for rule_id, key in (record.detail or {}).get("items", []):
                self.store.policy_state.record_fault(ctx.device.id, rule_id, key, message.fault_struct.fault_code,
                                                     message.fault_struct.fault_string)
        self.service.record_compliance(ctx.device.id, ctx.session_id)
        return True

    # ---- steps ------------------------------------------------------------------------------------------------------

    def _discover(self, ctx: DeviceContext, device: DeviceRecord, action: p.Discover) -> Step:
        self.progress.discovery_attempted = True

        def replied(reply: m.Message) -> None:
            if isinstance(reply, m.GetParameterNamesResponse):
                names = [(item.name, item.writable) for item in reply.parameter_list if not item.name.endswith(".")]
                self.store.discovery.record(device.model_key, action.root, names, at=ctx.now)

        return Step(m.GetParameterNames(action.root, False), on_reply=replied, purpose="policy: discover")

    def _read(self, ctx: DeviceContext, device: DeviceRecord, action: p.Read) -> Step:
        if action.verify:
            self.progress.verified = True
        else:
            self.progress.read_done = True

        def replied(reply: m.Message) -> None:
            if isinstance(reply, m.GetParameterValuesResponse):
                self.store.parameters.record_values(
                    device.id, [(i.name, i.value, i.type) for i in reply.parameter_list], at=self.service.clock(),
                    session_id=ctx.session_id,
                )
            elif isinstance(reply, m.Fault) and reply.fault_code == 9005:
                # The device does not have a path its model said it had: rediscover instead of asking again.
                self.store.discovery.invalidate(device.model_key)
            self.service.record_compliance(device.id, ctx.session_id)

        purpose = "policy: verify by read-back" if action.verify else "policy: read"
        return Step(m.GetParameterValues(list(action.paths)), on_reply=replied, purpose=purpose)

    def _watch(self, ctx: DeviceContext, device: DeviceRecord, action: p.Watch) -> Step:
        self.progress.watch_done = True
        request = m.SetParameterAttributes(
            [m.SetParameterAttributesStruct(path, True, 2, False, []) for path in action.paths]
        )

        def replied(reply: m.Message) -> None:
            if not isinstance(reply, m.Fault):
                self.store.parameters.record_notifications(device.id, action.paths, 2)

        return Step(request, on_reply=replied, purpose="policy: watch for local changes")

    def _write(self, ctx: DeviceContext, device: DeviceRecord, action: p.Write) -> Step:
        self.progress.write_rounds += 1
        model = self.service.policy.model
        values: list[tuple[p.WriteItem, Any]] = [
            (item, generate_secret(item.generate) if item.generate else item.value) for item in action.items
        ]
        request = m.SetParameterValues(
            [m.ParameterValueStruct(item.path, model.parameters[item.key].format(value), item.type)
             for item, value in values],
            action.parameter_key,
        )
        secret_keys = [item.key for item, _ in values if item.generate]

        def sent(request_id: str) -> None:
            # New secrets are durable (sealed, pending) before the device ever sees them.
            for item, value in values:
                if item.generate:
                    self.store.secrets.put(device.id, item.key, self.service.vault.seal(device.id, item.key, value),
                                           state="pending")
            self.store.policy_state.issue_parameter_key(device.id, action.parameter_key)
            self.store.audit.record(
                "acs:policy", "set-parameter-values", device_id=device.id,
                detail={"rules": sorted({i.rule_id for i in action.items}),
                        "values": {item.key: ("(generated secret)" if item.generate
                                              else "***" if model.parameters[item.key].secret else value)
                                   for item, value in values},
                        "parameter_key": action.parameter_key, "request": request_id},
                reason=f"policy {self.service.policy.id} {self.service.policy.revision}",
            )

        def replied(reply: m.Message) -> None:
            if isinstance(reply, m.Fault):
                self._write_failed(device, action, reply, secret_keys)
            else:
                for key in secret_keys:
                    self.store.secrets.promote(device.id, key)
                self.store.devices.set_parameter_key(device.id, action.parameter_key)
                self.store.policy_state.clear_backoff(device.id, [(i.rule_id, i.key) for i in action.items])
                self.progress.written_keys.update(i.key for i in action.items)
                self.progress.written_paths.update(i.path for i in action.items)
                if reply.status == 1 or any(i.reboot for i in action.items):
                    self._schedule_reboot(device, "a written setting takes effect after a reboot")
            self.service.record_compliance(device.id, ctx.session_id)

        return Step(request, on_sent=sent, on_reply=replied,
                    purpose=f"policy: {', '.join(sorted({i.rule_id for i in action.items}))}")

    def _write_failed(self, device: DeviceRecord, action: p.Write, fault: m.Fault, secret_keys: list[str]) -> None:
        for key in secret_keys:
            self.store.secrets.discard_pending(device.id, key)
        by_path = {item.path: item for item in action.items}
        named = [(by_path[f.parameter_name], f) for f in fault.set_parameter_values_faults if f.parameter_name in by_path]
        if named:
            for item, detail in named:
                self.store.policy_state.record_fault(device.id, item.rule_id, item.key, detail.fault_code,
                                                     detail.fault_string)
        else:
            # No per-parameter detail: the device refused the batch as a whole; every item waits.
            for item in action.items:
                self.store.policy_state.record_fault(device.id, item.rule_id, item.key, fault.fault_code,
                                                     fault.fault_string)

    def _push_config(self, ctx: DeviceContext, device: DeviceRecord, action: p.PushConfig) -> Step | None:
        self.progress.config_pushed = True
        service = self.service
        model = service.policy.model
        pvalues = model.to_pvalues({item.key: item.value for item in action.items})
        if action.include_admin_password:
            pvalues[gsconfig.AUTHENTICATION_PVALUE] = service._secret(device.id, p.ADMIN_PASSWORD)
        content = gsconfig.build_config(pvalues, mac=device.serial_number if _is_mac(device.serial_number) else None)
        if action.encrypt:
            content = gsconfig.encrypt_config(content, service._secret(device.id, p.XML_PASSWORD),
                                              kdf=service.config_kdf)
        offer = service.files.offer_download(
            device.id, content, detail={"items": [[i.rule_id, i.key] for i in action.items]},
            session_id=ctx.session_id,
        )
        request = offer.rpc()

        def sent(request_id: str) -> None:
            self.store.audit.record(
                "acs:policy", "download-config", device_id=device.id,
                detail={"rules": sorted({i.rule_id for i in action.items}), "command_key": offer.command_key,
                        "keys": sorted(i.key for i in action.items), "encrypted": action.encrypt,
                        "authenticated": action.include_admin_password},
                reason=f"policy {service.policy.id} {service.policy.revision}",
            )

        def replied(reply: m.Message) -> None:
            if isinstance(reply, m.Fault):
                service.files.transfer_complete(device.id, offer.command_key, reply.fault_code, reply.fault_string)
                for item in action.items:
                    self.store.policy_state.record_fault(device.id, item.rule_id, item.key, reply.fault_code,
                                                         reply.fault_string)

        return Step(request, on_sent=sent, on_reply=replied, purpose="policy: vendor config file")

    def _pull_config(self, ctx: DeviceContext, device: DeviceRecord, action: p.PullConfig) -> Step:
        self.progress.config_pulled = True
        offer = self.service.files.offer_upload(device.id, session_id=ctx.session_id)
        request = offer.rpc()

        def replied(reply: m.Message) -> None:
            if isinstance(reply, m.Fault):
                self.service.files.transfer_complete(device.id, offer.command_key, reply.fault_code,
                                                     reply.fault_string)

        return Step(request, on_reply=replied, purpose="policy: read back the config file")

    def _schedule_reboot(self, device: DeviceRecord, reason: str) -> None:
        from ..tasks import enqueue

        pending = [t for t in self.store.tasks.for_device(device.id, active_only=True) if t.created_by == "acs:policy"
                   and t.command_key == "policy-reboot"]
        if pending:
            return
        window = self.service.settings_for(device).get("maintenance_window", "02:00-04:00")
        when = next_window_start(window, self.service.clock())
        enqueue(self.store, device.id, m.Reboot("policy-reboot"), created_by="acs:policy", reason=reason,
                not_before=when)


def _is_mac(serial: str) -> bool:
    return len(serial) == 12 and all(c in "0123456789abcdefABCDEF" for c in serial)
