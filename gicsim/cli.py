"""``gicsim`` command line: run and validate scenarios."""

from __future__ import annotations

import json
import signal
import sys
from pathlib import Path
from typing import Any

import click

from gicsim.scenario import Scenario, ScenarioError, load_scenario, resolved_dict


class Interrupted(Exception):
    pass


def _on_signal(signum: int, frame: Any) -> None:
    raise Interrupted(signal.Signals(signum).name)


def _load_all(files: tuple[str, ...]) -> list[Scenario]:
    """Validate every file first; any problem -> one line each on stderr, exit 2."""
    problems: list[str] = []
    out = []
    for f in files:
        try:
            out.append(load_scenario(f))
        except ScenarioError as e:
            problems.extend(e.problems)
    if problems:
        for p in problems:
            click.echo(p, err=True)
        sys.exit(2)
    return out


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="gicsim")
def main() -> None:
    """gicsim: co-simulate the KVM arm64 vGICv3 ITS and its save/restore during live
    migration. Run scenario files and see what happens to every LPI."""


@main.command()
@click.argument("files", nargs=-1, required=True, type=click.Path(dir_okay=True))
def validate(files: tuple[str, ...]) -> None:
    """Check scenario FILES without running them (exit 2 on any problem)."""
    for sc in _load_all(files):
        click.echo(f"{sc.name}: ok")


@main.command()
@click.argument("files", nargs=-1, required=True, type=click.Path(dir_okay=True))
@click.option("-o", "--output", "outdir", type=click.Path(file_okay=False), default="reports",
              show_default=True, help="Results go to OUTPUT/<scenario name>/.")  # fmt: skip
@click.option("--summary", "summary_path", type=click.Path(dir_okay=False),
              help="Also write the summary JSON here (a list when several files run).")  # fmt: skip
@click.option("--quiet", "-q", is_flag=True, help="Only print failures.")
def run(files: tuple[str, ...], outdir: str, summary_path: str | None, quiet: bool) -> None:
    """Run scenario FILES; exit 0 when every expect holds, 1 when one fails, 2 on bad input.

    Each run writes resolved.yaml, summary.json, trace.parquet and report.md to
    OUTPUT/<name>/, atomically.
    """
    from gicsim.output import AtomicDir, dump_yaml, write_json_atomic
    from gicsim.report import write_markdown
    from gicsim.simulation import run as run_scenario

    scenarios = _load_all(files)
    signal.signal(signal.SIGTERM, _on_signal)
    summaries = []
    failed = False
    try:
        for sc in scenarios:
            res = run_scenario(sc)
            s = res.summary
            summaries.append(s)
            with AtomicDir(Path(outdir) / sc.name) as tmp:
                (tmp / "resolved.yaml").write_text(dump_yaml(resolved_dict(sc)))
                (tmp / "summary.json").write_text(json.dumps(s, indent=2, default=str) + "\n")
                res.trace.to_parquet(tmp / "trace.parquet", index=False)
                write_markdown(res, tmp / "report.md")
            _print_verdict(s, quiet)
            failed |= not s["expect"]["passed"]
        if summary_path:
            write_json_atomic(Path(summary_path), summaries[0] if len(summaries) == 1 else summaries)
    except (KeyboardInterrupt, Interrupted) as e:
        click.echo(f"gicsim: interrupted ({e or 'SIGINT'}); no partial results were written", err=True)
        sys.exit(130)
    sys.exit(1 if failed else 0)


def _print_verdict(s: dict[str, Any], quiet: bool) -> None:
    ok = s["expect"]["passed"]
    if quiet and ok:
        return
    migs = ", ".join(m["status"] for m in s["migrations"]) or "no migration"
    lp = s["lpis"]
    click.echo(
        f"{'PASS' if ok else 'FAIL'} {s['scenario']}: {migs}; delivered {lp['delivered']}, "
        f"lost {lp['lost']}, spurious {lp['spurious']}, misrouted {lp['misrouted']}, "
        f"ebusy {sum(m['ebusy'] for m in s['migrations'])}, state_match {s['state_match']} "
        f"({s['events']} events, {s['wall_s']} s)"
    )
    for f in s["expect"]["failures"]:
        click.echo(f"  expect.{f['key']}: wanted {f['wanted']}, got {f['got']}")


def _register_optional() -> None:
    """Commands that live in their own modules (each adds itself to ``main``)."""
    from gicsim import sweep  # noqa: F401


_register_optional()

if __name__ == "__main__":  # pragma: no cover
    # run the package's instance of the group (the one optional commands registered on)
    from gicsim.cli import main as _main

    _main()
