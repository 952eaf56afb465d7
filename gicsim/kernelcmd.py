"""``gicsim kernel``: the kernel reference from the command line.

    gicsim kernel fetch 6.12|6.1|PATH
    gicsim kernel check 6.12|6.1|PATH [--streams N] [--seed S] [--json] [--skip-known]

``fetch`` gets the sources (Debian's ``linux-source-X`` package, or the user's tree or
tarball) into the cache and builds the library, one line per step. ``check`` runs the
differential (:mod:`gicsim.linux.check`): N hypothesis streams through the Python model and
the kernel library, the kernel side in child processes. Exit codes: 0 done (``check``: the
model and the kernel agree; 1 they disagree), 2 a bad argument, not a kernel tree, or a tree
or tarball the user named that does not compile, 3 the environment (no compiler, no
apt-get/package/network, a release package that does not build, no hypothesis).
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
#: the seed is a hypothesis seed; chunk c of a check runs on SEED * 1000 + c
SEED_MAX = 2**31 - 1
_EXITS = ("2 a bad SOURCE (not a release, no such path, not a kernel tree, an unreadable "
          "tarball, a tree that does not compile), 3 the environment (no C compiler, no "
          "apt-get or package or network, a release package that does not build).")  # fmt: skip
FETCH_EPILOG = f"""\b
Examples:
  gicsim kernel fetch 6.12
  gicsim kernel fetch ~/src/linux
  gicsim kernel fetch linux-6.12.117.tar.xz

SOURCE is a release (Debian's linux-source-6.12 / linux-source-6.1, fetched with apt-get
download), a kernel tree (a directory with arch/arm64/kvm/vgic/vgic-its.c), or a tarball of
one: .tar, .tar.gz/.tgz, .tar.xz/.txz, .tar.bz2. Only the vGIC/ITS files are copied, into
the cache: $GICSIM_CACHE_DIR/kernel/, else $XDG_CACHE_HOME/gicsim/kernel/, else
~/.cache/gicsim/kernel/ (a tree or tarball under a name keyed by its contents).

Exit status: 0 done, {_EXITS}"""
CHECK_EPILOG = f"""\b
Examples:
  gicsim kernel check 6.12
  gicsim kernel check 6.1 --streams 20000 --seed 7 --json
  gicsim kernel check ~/src/linux --skip-known

Exit status: 0 the model and the kernel agree on every stream, 1 they disagree (the first
disagreement is printed, minimised), {_EXITS}"""


def _fail(e: KernelRefError) -> None:
    click.echo(f"gicsim kernel: {e}", err=True)
    sys.exit(2 if isinstance(e, KernelInputError) else 3)


@kernel.command("fetch", epilog=FETCH_EPILOG)
@click.argument("source", metavar="6.12|6.1|PATH", type=click.Path())
@click.option("--force", is_flag=True, help="fetch and rebuild even if cached")
def fetch_cmd(source: str, force: bool) -> None:
    """Fetch the sources of SOURCE (a release, a kernel tree or a tarball) into the cache
    and build the kernel library from them (reused when nothing changed)."""
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


@kernel.command("check", epilog=CHECK_EPILOG)
@click.argument("source", metavar="6.12|6.1|PATH", type=click.Path())
@click.option("--streams", "n", type=click.IntRange(1, 10_000_000), default=2000,
              show_default=True, help="how many random streams")
@click.option("--seed", type=click.IntRange(0, SEED_MAX), default=12, show_default=True,
              help=f"hypothesis seed, 0 to {SEED_MAX} (2**31 - 1: a non-negative 32-bit "
                   "integer, so it can be passed on to any tool as is; chunk c of the check "
                   "runs on hypothesis seed SEED*1000+c); same seed, same streams")  # fmt: skip
@click.option("--json", "as_json", is_flag=True, help="print one JSON object")
@click.option("--skip-known", is_flag=True,
              help="leave out steps that reach the known, pinned disagreements")
def check_cmd(source: str, n: int, seed: int, as_json: bool, skip_known: bool) -> None:
    """Run N random streams of ITS commands and MMIO accesses through the Python model and
    the kernel library of SOURCE (fetched and built first if needed); count disagreements."""
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
