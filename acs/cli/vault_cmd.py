"""``acs secrets keygen``: the key that seals per-device secrets at rest (acs.vault).

Other ``acs secrets`` subcommands belong in this group: add them to ``command`` (here or in a module that imports
it and is then the one listed in acs.cli._COMMANDS).
"""

from __future__ import annotations

import click


@click.group(name="secrets")
def command() -> None:
    """Manage the key that seals per-device secrets."""


@command.command()
@click.option("--out", required=True, type=click.Path(dir_okay=False), help="Key file to write (mode 0600).")
@click.option("--force", is_flag=True, help="Replace an existing key: secrets sealed with it become unreadable.")
def keygen(out: str, force: bool) -> None:
    """Write a new random 256-bit key, base64, readable by its owner only. Point secrets.key_file at it."""
    from acs.vault import generate_key_file

    try:
        path = generate_key_file(out, force=force)
    except FileExistsError:
        raise click.ClickException(
            f"{out} already exists; --force replaces it, and every secret sealed with the old key becomes unreadable"
        ) from None
    click.echo(f"wrote {path} (mode 0600)")
