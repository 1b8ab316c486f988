"""``acs enrol``: admit devices and issue their per-device CWMP credentials."""

from __future__ import annotations

import getpass
import os
from pathlib import Path

import click

from .config_cmd import config_options, load_from_options


@click.command(name="enrol")
@config_options
@click.argument("csv_file", type=click.Path(dir_okay=False))
@click.option("--out", "out_path", required=True, type=click.Path(dir_okay=False),
              help="Where to write serial,username,password for provisioning the phones (created mode 0600).")
@click.option("--operator", default=None, help="Who is enrolling (for the audit log); default: the login name.")
def command(config_path: str | None, overrides: tuple[str, ...], csv_file: str, out_path: str,
            operator: str | None) -> None:
    """Enrol the devices listed in CSV_FILE (columns: serial or mac; optional oui, product_class, site, group) and
    issue each its own credential. The passwords are written once, to --out, and stored only as digests."""
    from acs.credentials import credentials_csv, enrol, read_enrolment_csv
    from acs.store import Store

    config = load_from_options(config_path, overrides)
    rows = read_enrolment_csv(Path(csv_file).read_text("utf-8"))
    out = Path(out_path)
    if out.exists():
        raise click.ClickException(f"{out} exists; refusing to overwrite issued credentials")
    store = Store(config.store.path, synchronous=config.store.synchronous)
    try:
        issued = enrol(store, rows, realm=config.auth.realm, operator=f"operator:{operator or getpass.getuser()}")
    finally:
        store.close()
    fd = os.open(out, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write(credentials_csv(issued))
    click.echo(f"enrolled {len(issued)} device(s); credentials in {out}")
