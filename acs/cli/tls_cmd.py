"""``acs tls selfsigned|ca``: certificates for tests, demos and small sites (RSA 2048, names in subjectAltName)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

import click

F = TypeVar("F", bound=Callable[..., Any])


def _certificate_options(function: F) -> F:
    for option in reversed(
        [
            click.option(
                "--host",
                "hosts",
                multiple=True,
                required=True,
                metavar="NAME",
                help="DNS name or IP address phones use to reach the ACS (repeatable; the first is the common name).",
            ),
            click.option("--out", required=True, type=click.Path(file_okay=False), help="Directory to write into."),
            click.option("--days", default=825, show_default=True, type=click.IntRange(1), help="Validity in days."),
            click.option("--force", is_flag=True, help="Replace existing files."),
        ]
    ):
        function = option(function)
    return function


def _exists(exc: FileExistsError) -> click.ClickException:
    return click.ClickException(f"{exc.filename} already exists; --force replaces it")


@click.group(name="tls")
def command() -> None:
    """Make TLS certificates for the ACS."""


@command.command()
@_certificate_options
def selfsigned(hosts: tuple[str, ...], out: str, days: int, force: bool) -> None:
    """Write a self-signed server certificate and key (tls.crt, tls.key) into --out."""
    from acs.tls import generate_self_signed

    try:
        cert, key = generate_self_signed(list(hosts), out, days=days, overwrite=force)
    except FileExistsError as exc:
        raise _exists(exc) from None
    click.echo(f"certificate: {cert}\nkey:         {key} (mode 0600)")


@command.command()
@_certificate_options
@click.option("--ca-days", default=3650, show_default=True, type=click.IntRange(1), help="CA validity in days.")
def ca(hosts: tuple[str, ...], out: str, days: int, force: bool, ca_days: int) -> None:
    """Write a small CA (ca.crt, ca.key) and a server certificate it signed (tls.crt, tls.key) into --out.

    Give ca.crt to the clients that must verify the ACS (the simulator, phones); keep ca.key offline.
    """
    from acs.tls import generate_ca_and_server

    try:
        paths = generate_ca_and_server(list(hosts), out, days=days, ca_days=ca_days, overwrite=force)
    except FileExistsError as exc:
        raise _exists(exc) from None
    click.echo(
        f"CA certificate: {paths.ca_cert}\nCA key:         {paths.ca_key} (mode 0600)\n"
        f"certificate:    {paths.cert}\nkey:            {paths.key} (mode 0600)"
    )
