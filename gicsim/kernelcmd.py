"""``gicsim kernel``: the kernel reference from the command line.

    gicsim kernel fetch 6.12|6.1|PATH
    gicsim kernel check 6.12|6.1|PATH [--streams N] [--seed S] [--json] [--skip-known]

``fetch`` gets the sources (Debian's ``linux-source-X`` package, or the user's tree or
tarball) into the cache and builds the library, one line per step. ``check`` runs the
differential (:mod:`gicsim.linux.check`): N hypothesis streams through the Python model and
the kernel library, the kernel side in child processes. Exit codes: 0 done (even with
disagreements: they are the report), 2 a bad argument or not a kernel tree, 3 the
environment (no compiler, no apt-get/package/network, a build failure, no hypothesis).
Registered in ``gicsim.cli`` with ``main.add_command(kernel)``.
"""

from __future__ import annotations

import json
import sys
import time

import click

from gicsim.linux.errors import KernelInputError, KernelRefError

kernel = click.Group("kernel", help="The kernel's own vGIC/ITS code as gicsim's reference: "
                     "fetch and build it, check the model against it.")

SOURCE_HELP = "a release (6.12, 6.1) or the path of a kernel tree or tarball"


def _fail(e: KernelRefError) -> None:
    click.echo(f"gicsim kernel: {e}", err=True)
    sys.exit(2 if isinstance(e, KernelInputError) else 3)


@kernel.command("fetch")
@click.argument("source", metavar="6.12|6.1|PATH")
@click.option("--force", is_flag=True, help="fetch and rebuild even if cached")
def fetch_cmd(source: str, force: bool) -> None:
    """Fetch the sources of SOURCE (a release or a path) and build the library."""
    from gicsim.linux.build import build
    from gicsim.linux.fetch import fetch

    try:
        t0 = time.monotonic()
        tree = fetch(source, force=force, log=lambda m: click.echo(f"  {m}"))
        ident = tree.identity
        click.echo(f"source: {tree.label} (kernel {tree.kernel_version}"
                   f"{', pinned' if ident.get('pinned') else ''}) in {tree.root} "
                   f"[{time.monotonic() - t0:.1f} s]")
        built = build(tree, force=force)
        click.echo(f"library: {built.path} "
                   f"[{'reused' if built.reused else f'built in {built.seconds:.1f} s'}]")
    except KernelRefError as e:
        _fail(e)


@kernel.command("check")
@click.argument("source", metavar="6.12|6.1|PATH")
@click.option("--streams", "n", type=click.IntRange(1, 10_000_000), default=2000,
              show_default=True, help="how many random streams")
@click.option("--seed", type=click.IntRange(0, 2**31), default=12, show_default=True,
              help="hypothesis seed (same seed, same streams)")
@click.option("--json", "as_json", is_flag=True, help="print one JSON object")
@click.option("--skip-known", is_flag=True,
              help="leave out steps that reach the known, pinned disagreements")
def check_cmd(source: str, n: int, seed: int, as_json: bool, skip_known: bool) -> None:
    """Run N streams through the model and the kernel library; count disagreements.

    Exit 0 when the model and the kernel agree on every stream, 1 when they disagree (the
    first disagreement is printed, minimised), 2 for a bad SOURCE, 3 when the kernel cannot
    be fetched or built."""
    from gicsim.linux.check import check

    def progress(msg: str) -> None:
        click.echo(msg, err=as_json)

    from gicsim.linux.build import build

    try:
        built = build(source)  # a bad source fails here, before any output
        click.echo(f"differential check of {built.tree.label}: {n} streams, seed {seed}",
                   err=as_json)
        out = check(source, streams=n, seed=seed, progress=progress, skip_known=skip_known)
    except KernelRefError as e:
        _fail(e)
        return
    if as_json:
        click.echo(json.dumps(out, sort_keys=True, default=repr))
        sys.exit(1 if out["disagreements"] else 0)
    areas = ", ".join(f"{a} {c}" for a, c in sorted(out["by_area"].items())) or "none"
    click.echo(f"{out['release']} ({out['source']}): {out['streams']} streams, "
               f"{out['disagreements']} disagreements (by area: {areas}), "
               f"{out['streams_per_second']} streams/s")
    first = out.get("first")
    if first:
        d = first.get("disagreement") or {}
        click.echo(f"first disagreement (seed {first['seed']}), minimal stream of "
                   f"{len(first['stream'])} steps:")
        for s in first["stream"]:
            click.echo(f"  {s}")
        if "error" in d:
            click.echo(f"  -> {d['area']}: {d['error']}")
        else:
            click.echo(f"  -> step {d.get('step')} [{d.get('area')}] {d.get('what')}: "
                       f"kernel={d.get('kernel')} model={d.get('model')}")
    sys.exit(1 if out["disagreements"] else 0)
