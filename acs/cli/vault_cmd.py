"""``acs secrets``: the key that seals per-device secrets at rest (acs.vault), and the escrowed secrets themselves.

``keygen`` writes the key. ``list`` names a device's escrowed secrets and their states. ``show`` reveals them: it
needs a reason, and the audit record (who, which device, which secrets, why; never a value) is committed before
anything is printed, so no secret leaves the ACS unrecorded.

Other ``acs secrets`` subcommands belong in this group: add them to ``command`` (here or in a module that imports
it and is then the one listed in acs.cli._COMMANDS).
"""

from __future__ import annotations

import click

from .config_cmd import config_options, load_from_options

_STATE_LABELS = {"active": "active", "pending": "pending: sent, not yet confirmed by the device"}


@click.group(name="secrets")
def command() -> None:
    """Manage the key that seals per-device secrets, and reveal escrowed secrets (audited)."""


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


@command.command(name="list")
@config_options
@click.argument("device_name", metavar="DEVICE")
def list_secrets(config_path: str | None, overrides: tuple[str, ...], device_name: str) -> None:
    """Names and states of the secrets escrowed for DEVICE (id or serial number). Shows no value."""
    from .operator import device, open_store

    store = open_store(load_from_options(config_path, overrides))
    try:
        target = device(store, device_name)
        versions = store.secrets.names(target.id)
    finally:
        store.close()
    if not versions:
        click.echo(f"{target.id}: no escrowed secrets")
    for name, state in versions:
        click.echo(f"{name}\t{_STATE_LABELS.get(state, state)}")


@command.command()
@config_options
@click.argument("device_name", metavar="DEVICE")
@click.argument("name", required=False)
@click.option("--reason", required=True, help="Why the secret is needed (recorded in the audit log).")
@click.option("--operator", default=None, help="Who asks (for the audit log); default: the login name.")
def show(config_path: str | None, overrides: tuple[str, ...], device_name: str, name: str | None, reason: str,
         operator: str | None) -> None:
    """Reveal the secrets escrowed for DEVICE (id or serial number): all of them, or NAME (e.g. web.admin_password).

    The reveal is audited before anything is printed. Pending versions (sent to the device, not yet confirmed) are
    shown too, labelled: after an interrupted change the device holds one or the other.
    """
    from acs.vault import Vault

    from . import CliError
    from .operator import actor, device, open_store, required_text

    reason = required_text(reason, "--reason")
    who = actor(operator)
    config = load_from_options(config_path, overrides)
    if not config.secrets.key_file:
        raise CliError("secrets.key_file is not set: without the vault key no escrowed secret can be opened")
    vault = Vault.from_key_file(config.secrets.key_file)
    store = open_store(config)
    try:
        target = device(store, device_name)
        versions = store.secrets.names(target.id)
        if name is not None:
            versions = [(n, state) for n, state in versions if n == name]
            if not versions:
                held = ", ".join(sorted({n for n, _ in store.secrets.names(target.id)})) or "none"
                raise CliError(f"{target.id} has no escrowed secret {name!r} (escrowed: {held})")
        if not versions:
            raise CliError(f"{target.id} has no escrowed secrets")
        revealed = []
        for secret_name, state in versions:
            blob = store.secrets.get(target.id, secret_name, state=state)
            if blob is None:
                raise CliError(f"{secret_name} ({state}) of {target.id} changed while being read; run again")
            revealed.append((secret_name, state, vault.open(target.id, secret_name, blob)))
        audit_id = store.audit.record(
            who, "secret-revealed", device_id=target.id,
            detail={"names": sorted({n for n, _ in versions}), "versions": [f"{n} ({s})" for n, s in versions]},
            reason=reason,
        )
    finally:
        store.close()
    click.echo(f"revealed to {who}; audit record {audit_id}", err=True)
    for secret_name, state, value in revealed:
        click.echo(f"{secret_name} ({_STATE_LABELS.get(state, state)}): {value}")
