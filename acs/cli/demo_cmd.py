"""``acs demo``: the ACS and a simulated WP820 fleet, from factory defaults to verified compliance."""

from __future__ import annotations

from pathlib import Path

import click


@click.command(name="demo")
@click.option("--phones", default=20, show_default=True, type=click.IntRange(1, 2000), help="Simulated phones.")
@click.option("--dir", "workdir", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Keep the demo's store, keys and phone state here (default: a new temporary directory).")
@click.option("--periodic", default=5, show_default=True, type=click.IntRange(1, 3600),
              help="Periodic Inform interval of the phones, in seconds.")
def command(phones: int, workdir: Path | None, periodic: int) -> None:
    """Run the ACS with a simulated WP820 fleet on loopback: read the factory-default fleet, harden it, show
    compliance going to 100% (verified by read-back) and the summary table."""
    from acs.demo import main

    raise SystemExit(main(phones=phones, workdir=workdir, periodic=periodic, echo=click.echo))
