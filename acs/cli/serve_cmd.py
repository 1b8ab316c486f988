"""``acs serve``: run the ACS in the foreground (systemd runs exactly this)."""

from __future__ import annotations

import click

from .config_cmd import config_options, load_from_options


@click.command(name="serve")
@config_options
def command(config_path: str | None, overrides: tuple[str, ...]) -> None:
    """Run the ACS until SIGTERM. SIGHUP re-reads the policy files."""
    config = load_from_options(config_path, overrides)
    from acs.app import run

    raise SystemExit(run(config))
