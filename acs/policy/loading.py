"""From the ACS configuration to what the policy engine needs: the policy file, the operator's per-site and
per-group overrides, and the settings the ACS itself supplies. The server and the operator commands both use this,
so a report evaluates exactly as the running ACS does."""

from __future__ import annotations

import tomllib
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING

from .rules import Policy, PolicyError, load_policy
from .service import Overrides

if TYPE_CHECKING:
    from acs.config import Config


def load_overrides(path: str) -> Overrides:
    """The operator's per-site and per-group policy settings: ``[site.NAME]`` and ``[group.NAME]`` tables."""
    if not path:
        return Overrides()
    try:
        document = tomllib.loads(Path(path).read_text("utf-8"))
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise PolicyError(f"policy.site {path}: {exc}") from None
    unknown = set(document) - {"site", "group"}
    if unknown:
        raise PolicyError(
            f"policy.site {path}: unknown table(s) {', '.join(sorted(unknown))}; use [site.NAME] or [group.NAME]"
        )
    return Overrides(dict(document.get("site", {})), dict(document.get("group", {})))


def load_policy_files(config: "Config") -> tuple[Policy, Overrides]:
    files = config.policy.files
    if len(files) > 1:
        raise PolicyError("policy.files: one policy file per ACS is supported")
    policy = with_connection_request_port(load_policy(files[0] if files else None), config.connreq.port)
    overrides = load_overrides(config.policy.site)
    # Check every override against the policy now, not at a device's first session.
    for scope in (overrides.sites, overrides.groups):
        for values in scope.values():
            policy.resolve_settings(values, {})
    return policy, overrides


def with_connection_request_port(policy: Policy, port: int) -> Policy:
    """The policy with ``connreq.port`` as the default of its ``connection_request_port`` setting, so the port the
    operator configured is the one phones are moved to (site and group overrides still win)."""
    setting = policy.settings.get("connection_request_port")
    if setting is None:
        return policy
    if problem := setting.check(port):
        raise PolicyError(f"connreq.port {port}: the policy's connection_request_port {problem}")
    return replace(policy, settings={**policy.settings, "connection_request_port": replace(setting, default=port)})


def acs_settings(config: "Config") -> dict[str, str]:
    """The settings the ACS supplies to every device: its own HTTPS URL (never an http:// one: the policy must not
    downgrade a phone) and, when the STUN server runs, the address phones should bind to."""
    public_url = config.cwmp.public_url
    return {
        "acs_url": public_url if public_url.startswith("https://") else "",
        "stun_server": config.stun.public_host if config.stun.enabled else "",
    }
