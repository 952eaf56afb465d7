"""``gicsim sweep``: many runs of one base scenario with overrides (filled in by the sweep
issue)."""

from __future__ import annotations

import click

from gicsim.cli import main


@main.command()
@click.argument("sweep_file", type=click.Path(dir_okay=False))
@click.option("-j", "--jobs", type=int, default=1, show_default=True, help="Local worker processes.")
@click.option("--dask", "dask_address", default=None, help="Dask scheduler address (tcp://host:port).")
def sweep(sweep_file: str, jobs: int, dask_address: str | None) -> None:
    """Run a sweep: a base scenario plus a grid or random sample of overrides."""
    raise click.ClickException("sweep: not implemented yet")
