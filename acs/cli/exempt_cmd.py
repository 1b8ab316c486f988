"""``acs exempt``: exempt one device from one rule (or remove the exemption), audited.

An exempt rule is reported ``exempt`` from the moment it is recorded and is no longer remediated on that device; the
evidence the ACS last stored for it stays, for the record.
"""

from __future__ import annotations

import click

from .config_cmd import config_options, load_from_options


@click.command(name="exempt")
@config_options
@click.argument("device_name", metavar="DEVICE")
@click.argument("rule_id", metavar="RULE")
@click.option("--reason", help="Why the device is exempt (required to exempt; recorded in the audit log).")
@click.option("--remove", is_flag=True, help="Remove the exemption instead.")
@click.option("--operator", default=None, help="Who decides (for the audit log); default: the login name.")
def command(config_path: str | None, overrides: tuple[str, ...], device_name: str, rule_id: str, reason: str | None,
            remove: bool, operator: str | None) -> None:
    """Exempt DEVICE (id or serial number) from RULE, or with --remove end that exemption."""
    from acs.compliance_report import ReportError, find_rule

    from . import CliError
    from .operator import actor, device, open_store, policy_service, required_text

    if remove:
        reason = (reason or "").strip()
    elif reason is None:
        raise CliError("--reason is required to exempt a device from a rule", 2)
    else:
        reason = required_text(reason, "--reason")
    config = load_from_options(config_path, overrides)
    store = open_store(config)
    try:
        policy = policy_service(config, store).policy
        try:
            rule = find_rule(policy, rule_id)
        except ReportError as exc:
            raise CliError(str(exc), 2) from None
        if rule.kind == "advisory":
            raise CliError(f"{rule.id} is an advisory: it has no status to exempt", 2)
        target = device(store, device_name)
        who = actor(operator)
        with store.transaction():
            if remove:
                removed = store.policy_state.unexempt(target.id, rule.id)
                if removed:
                    store.audit.record(who, "rule-exemption-removed", device_id=target.id,
                                       detail={"rule": rule.id}, reason=reason)
            else:
                store.policy_state.exempt(target.id, rule.id, reason=reason, by=who)
                store.audit.record(who, "rule-exempted", device_id=target.id,
                                   detail={"rule": rule.id, "policy": policy.id, "revision": policy.revision},
                                   reason=reason)
    finally:
        store.close()
    if remove:
        click.echo(f"{target.id}: exemption from {rule.id} removed" if removed
                   else f"{target.id} was not exempt from {rule.id}; nothing changed")
    else:
        click.echo(f"{target.id}: exempt from {rule.id}")
