"""What the operator commands (compliance, exempt, secrets show/list) share: the existing store, the policy as the
ACS runs it, and a device named on the command line.

Imported by command functions only, never at module level of a command module (see acs.cli: ``acs --help`` loads
no Twisted); loading the policy files goes through acs.app, which does.
"""

from __future__ import annotations

import getpass
from pathlib import Path
from typing import TYPE_CHECKING

from . import CliError

if TYPE_CHECKING:
    from acs.config import Config
    from acs.policy.service import PolicyService
    from acs.store import DeviceRecord, Store


def open_store(config: Config) -> Store:
    """The ACS's store. Refuses a path with no database rather than creating an empty one: a report on a fresh file
    would say "no devices" about a fleet that is simply elsewhere."""
    from acs.store import Store

    path = config.store.path
    if not Path(path).is_file():
        raise CliError(f"no store at {path} (store.path): run this where the ACS runs, or pass its --config")
    return Store(path, synchronous=config.store.synchronous)


def policy_service(config: Config, store: Store) -> PolicyService:
    """The policy with the operator's overrides and the builtin settings the ACS itself uses (acs.app), so that an
    evaluation here concludes what the running ACS would. No vault: reports never open secrets."""
    from acs.policy.loading import acs_settings, load_policy_files
    from acs.policy.service import PolicyService

    policy, overrides = load_policy_files(config)
    return PolicyService(store, policy, vault=None, overrides=overrides, **acs_settings(config))


def device(store: Store, text: str) -> DeviceRecord:
    from acs.compliance_report import ReportError, find_device

    try:
        return find_device(store, text)
    except ReportError as exc:
        raise CliError(str(exc)) from None


def actor(operator: str | None) -> str:
    """The audit actor for an operator (default: the login name)."""
    return f"operator:{operator or getpass.getuser()}"


def required_text(value: str, option: str) -> str:
    text = value.strip()
    if not text:
        raise CliError(f"{option} must not be empty", 2)
    return text
