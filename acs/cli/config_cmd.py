"""``acs config check|show|example``, and the ``--config``/``--set`` options other commands (serve) share."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, TypeVar

import click

if TYPE_CHECKING:
    from acs.config import Config

F = TypeVar("F", bound=Callable[..., Any])


def config_options(function: F) -> F:
    """Add ``--config FILE`` and repeatable ``--set section.key=value``; pass them to ``load_from_options``."""
    function = click.option(
        "--set",
        "overrides",
        multiple=True,
        metavar="SECTION.KEY=VALUE",
        help="Override one key (repeatable); wins over the file and ACS_* environment variables.",
    )(function)
    return click.option(
        "--config",
        "config_path",
        metavar="FILE",
        help="TOML configuration file (see `acs config example`). Without it: defaults and overrides only.",
    )(function)


def load_from_options(config_path: str | None, overrides: Sequence[str]) -> Config:
    from acs.config import load_config

    return load_config(config_path, overrides=overrides)


def _echo_warnings(config: Config) -> None:
    for warning in config.warnings:
        click.echo(f"warning: {warning}", err=True)


@click.group(name="config")
def command() -> None:
    """Check, show and explain the configuration."""


@command.command()
@config_options
def check(config_path: str | None, overrides: tuple[str, ...]) -> None:
    """Load and validate the configuration: prints "ok", or the error naming the key (exit code 2)."""
    config = load_from_options(config_path, overrides)
    _echo_warnings(config)
    click.echo("ok")


@command.command()
@config_options
def show(config_path: str | None, overrides: tuple[str, ...]) -> None:
    """Print the effective configuration (defaults, file, environment, --set) as TOML. Shows no secrets."""
    config = load_from_options(config_path, overrides)
    _echo_warnings(config)
    click.echo(config.to_toml(), nl=False)


@command.command()
def example() -> None:
    """Print the documented example configuration (every key, at its default)."""
    from importlib import resources

    click.echo((resources.files("acs") / "data" / "acs.example.toml").read_text(), nl=False)
