"""``gicsim sweep``: one base scenario, many runs.

A sweep file names a base scenario and overrides by key path (``migration.source.
stragglers.0.exit_us``), as a ``grid`` (cartesian product) and/or a random ``sample``. Each
run is seeded from the sweep seed with ``numpy.random.SeedSequence.spawn`` unless the
overrides set ``seed`` themselves (``seed: 0-99`` sweeps seeds). Runs go to local worker
processes (``concurrent.futures``) or to a Dask cluster (``Client.get_executor()``).

Every finished run is stored under a key of its resolved scenario
(``OUT/runs/<key>.json``, written atomically), so re-running a sweep only runs what is
missing. At the end all summaries are gathered into ``OUT/summaries.parquet`` and a
comparison report ``OUT/report.md``.

Example::

    name: straggler-vs-policy
    base: ../scenarios/straggler-retry.yaml
    seed: 1
    repeat: 2
    grid:
      migration.source.stragglers.0.exit_us: [50, 150, 300, 600]
      migration.source.on_ebusy: [abort, continue, {retry: 5, backoff_us: 100}]
    report: {x: migration.source.stragglers.0.exit_us, y: lost, group: migration.source.on_ebusy}
"""

from __future__ import annotations

import copy
import hashlib
import itertools
import json
import random
import sys
from collections.abc import Iterable
from concurrent.futures import Executor, Future, ProcessPoolExecutor, as_completed
from pathlib import Path
from typing import Any

import attrs
import click
import numpy as np

from gicsim.cli import main
from gicsim.present.output import write_json_atomic, write_text_atomic
from gicsim.scenario import (
    ScenarioError,
    load_scenario,
    parse_range,
    resolved_dict,
    scenario_from_dict,
)

SWEEP_KEYS = {"name", "description", "base", "seed", "repeat", "grid", "sample", "report"}
METRICS = ("status", "lost", "spurious", "misrouted", "ebusy", "accepted", "delivered",
           "downtime_ns", "latency_p50_ns", "latency_p99_ns", "state_match", "expect_passed",
           "events", "wall_s")  # fmt: skip


class SweepError(Exception):
    def __init__(self, problems: list[str]) -> None:
        super().__init__("\n".join(problems))
        self.problems = problems


@attrs.define
class Run:
    index: int
    overrides: dict[str, Any]
    scenario: dict[str, Any]  # resolved, in YAML units
    key: str


@attrs.define
class Sweep:
    name: str
    path: Path
    runs: list[Run]
    report: dict[str, str]


# ----------------------------------------------------------------------- loading ----
def _loc(node: Any, key: Any) -> tuple[int, int]:
    try:
        line, col = node.lc.key(key) if isinstance(key, str) else node.lc.item(key)
        return line + 1, col + 1
    except Exception:  # noqa: BLE001 - positions are best effort
        return 0, 0


def set_path(d: dict[str, Any], path: str, value: Any) -> None:
    """Set ``a.b.0.c`` in a resolved scenario dict; ``migration.x`` means the first
    migration when ``migration`` is a list."""
    node: Any = d
    parts = path.split(".")
    for i, p in enumerate(parts):
        last = i == len(parts) - 1
        if isinstance(node, list):
            if not p.isdigit():
                node = node[0]
            else:
                idx = int(p)
                if last:
                    node[idx] = value
                    return
                node = node[idx]
                continue
        if last:
            node[p] = value
            return
        if p not in node or node[p] is None:
            node[p] = {}
        node = node[p]


def _plain(v: Any) -> Any:
    if isinstance(v, dict):
        return {str(k): _plain(x) for k, x in v.items()}
    if isinstance(v, list | tuple):
        return [_plain(x) for x in v]
    return v


def scenario_key(d: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps(d, sort_keys=True, default=str).encode()).hexdigest()[:20]


def _sample_value(spec: Any, rng: random.Random) -> Any:
    if isinstance(spec, dict) and len(spec) == 1:
        (kind, arg), = spec.items()
        if kind == "uniform":
            return round(rng.uniform(float(arg[0]), float(arg[1])), 3)
        if kind == "int_uniform":
            return rng.randint(int(arg[0]), int(arg[1]))
        if kind == "choice":
            return rng.choice(list(arg))
    raise ValueError("a sample parameter is {uniform: [a, b]}, {int_uniform: [a, b]} or {choice: [...]}")


def load_sweep(path: str | Path) -> Sweep:
    from ruamel.yaml import YAML

    path = Path(path)
    where = str(path)
    try:
        doc = YAML(typ="rt").load(path.read_text(encoding="utf-8"))
    except OSError as e:
        raise SweepError([f"{where}:0:0: <file>: {e.strerror or e}"]) from None
    except UnicodeDecodeError:
        raise SweepError([f"{where}:0:0: <file>: not UTF-8 text"]) from None
    except Exception as e:  # noqa: BLE001 - ruamel's YAML errors
        mark = getattr(e, "problem_mark", None)
        line, col = (mark.line + 1, mark.column + 1) if mark else (0, 0)
        raise SweepError([f"{where}:{line}:{col}: <yaml>: {getattr(e, 'problem', e)}"]) from None
    if not isinstance(doc, dict):
        raise SweepError([f"{where}:1:1: <root>: a sweep file is a mapping"])
    problems = [f"{where}:{_loc(doc, k)[0]}:{_loc(doc, k)[1]}: {k}: unknown key; valid keys: "
                f"{', '.join(sorted(SWEEP_KEYS))}" for k in doc if k not in SWEEP_KEYS]  # fmt: skip
    if "base" not in doc:
        problems.append(f"{where}:1:1: base: missing (the base scenario file)")
    if problems:
        raise SweepError(problems)
    base_path = (path.parent / str(doc["base"])).resolve()
    try:
        base = resolved_dict(load_scenario(base_path))
    except ScenarioError as e:
        raise SweepError(e.problems) from None
    seed = int(doc.get("seed", 0))
    repeat = int(doc.get("repeat", 1))
    points: list[dict[str, Any]] = []
    grid = doc.get("grid") or {}
    keys = list(grid)
    values = []
    for k in keys:
        v = grid[k]
        if k == "seed" and not isinstance(v, list):
            v = list(parse_range(v))
        if not isinstance(v, list):
            line, col = _loc(grid, k)
            raise SweepError([f"{where}:{line}:{col}: grid.{k}: a list of values to try"])
        values.append([_plain(x) for x in v])
    for combo in itertools.product(*values) if keys else [()]:
        points.append(dict(zip(keys, combo, strict=True)))
    sample = doc.get("sample")
    if sample:
        rng = random.Random(seed)
        params = dict(sample.get("params") or {})
        out = []
        for p in points:
            for _ in range(int(sample.get("n", 1))):
                q = dict(p)
                for k, spec in params.items():
                    try:
                        q[k] = _sample_value(_plain(spec), rng)
                    except ValueError as e:
                        line, col = _loc(params, k)
                        raise SweepError([f"{where}:{line}:{col}: sample.params.{k}: {e}"]) from None
                out.append(q)
        points = out
    points = [dict(p) for p in points for _ in range(repeat)]
    children = np.random.SeedSequence(seed).spawn(len(points))
    runs = []
    problems = []
    for i, p in enumerate(points):
        d = copy.deepcopy(base)
        if "seed" not in p:
            d["seed"] = int(children[i].generate_state(1)[0] % (2**31))
        for k, v in p.items():
            set_path(d, k, v)
        d["name"] = f"{base['name']}-{i:04d}"
        try:
            d = resolved_dict(scenario_from_dict(d, filename=f"{where} (run {i})"))
        except ScenarioError as e:
            problems.extend(e.problems)
            continue
        key_src = {k: v for k, v in d.items() if k != "name"}
        runs.append(Run(i, p, d, scenario_key(key_src)))
    if problems:
        raise SweepError(problems[:20])
    rep = {k: str(v) for k, v in (doc.get("report") or {}).items()}
    return Sweep(str(doc.get("name") or path.stem), path, runs, rep)


# ----------------------------------------------------------------------- running ----
def run_one(scenario: dict[str, Any]) -> dict[str, Any]:
    """Worker entry point (picklable): run one resolved scenario, return its summary."""
    from gicsim.judge.trace import digest
    from gicsim.sim.simulation import run

    res = run(scenario)
    return {**res.summary, "trace_digest": digest(res.records)}


def flat_row(run: Run, summary: dict[str, Any]) -> dict[str, Any]:
    lp = summary["lpis"]
    m = summary["migrations"][0] if summary["migrations"] else {}
    row: dict[str, Any] = {"run": run.index, "key": run.key, "seed": summary["seed"]}
    for k, v in run.overrides.items():
        row[k] = json.dumps(v) if isinstance(v, dict | list) else v
    row.update(
        status=m.get("status", "none"),
        lost=lp["lost"],
        spurious=lp["spurious"],
        misrouted=lp["misrouted"],
        ebusy=sum(x["ebusy"] for x in summary["migrations"]),
        accepted=lp["accepted"],
        delivered=lp["delivered"],
        downtime_ns=m.get("downtime_ns"),
        latency_p50_ns=lp["latency_ns"]["p50"],
        latency_p99_ns=lp["latency_ns"]["p99"],
        state_match=summary["state_match"],
        expect_passed=summary["expect"]["passed"],
        events=summary["events"],
        wall_s=summary["wall_s"],
        trace_digest=summary.get("trace_digest"),
    )
    for reason, n in lp["dropped"].items():
        row[f"dropped_{reason}"] = n
    return row


def make_executor(jobs: int, dask_address: str | None) -> tuple[Executor | None, Any]:
    if dask_address:
        from dask.distributed import Client

        client = Client(dask_address)
        return client.get_executor(), client
    if jobs > 1:
        return ProcessPoolExecutor(max_workers=jobs), None
    return None, None


def execute(
    sweep: Sweep,
    outdir: Path,
    executor: Executor | None = None,
    progress: bool = True,
) -> tuple[list[dict[str, Any]], int]:
    """Run what is missing; returns (rows of every run, how many ran now)."""
    from tqdm import tqdm

    runs_dir = outdir / "runs"
    runs_dir.mkdir(parents=True, exist_ok=True)
    todo = [r for r in sweep.runs if not (runs_dir / f"{r.key}.json").exists()]
    bar = tqdm(total=len(sweep.runs), initial=len(sweep.runs) - len(todo), unit="run",
               disable=not progress, file=sys.stderr)  # fmt: skip

    def store(run: Run, summary: dict[str, Any]) -> None:
        write_json_atomic(runs_dir / f"{run.key}.json",
                          {"overrides": run.overrides, "summary": summary})  # fmt: skip
        bar.update(1)

    if executor is None:
        for r in todo:
            store(r, run_one(r.scenario))
    else:
        futs: dict[Future[Any], Run] = {executor.submit(run_one, r.scenario): r for r in todo}
        for f in as_completed(futs):
            store(futs[f], f.result())
    bar.close()
    rows = []
    for r in sweep.runs:
        saved = json.loads((runs_dir / f"{r.key}.json").read_text())
        rows.append(flat_row(r, saved["summary"]))
    return rows, len(todo)


def comparison(rows: Iterable[dict[str, Any]], report: dict[str, str]) -> str:
    import pandas as pd

    df = pd.DataFrame(list(rows))
    out = [f"# Sweep: {len(df)} runs", ""]
    y = report.get("y", "lost")
    x = report.get("x")
    g = report.get("group")
    if x and x in df and y in df:
        cols = g if g and g in df else None
        table = df.pivot_table(index=x, columns=cols, values=y, aggfunc="mean")
        out += [f"Mean `{y}` by `{x}`" + (f" and `{g}`" if cols else "") + ":", "", table.to_markdown(), ""]
    counts = df.groupby("status").size().to_dict()
    out += ["Migration outcomes: " + ", ".join(f"{k} {v}" for k, v in sorted(counts.items())), ""]
    shown = [c for c in df.columns if c not in ("key",)]
    out += ["| " + " | ".join(shown) + " |", "|" + "---|" * len(shown)]
    for _, r in df.iterrows():
        out.append("| " + " | ".join(str(r[c]) for c in shown) + " |")
    return "\n".join(out) + "\n"


def finish(rows: list[dict[str, Any]], outdir: Path, report: dict[str, str]) -> None:
    import pandas as pd

    df = pd.DataFrame(rows)
    tmp = outdir / ".summaries.parquet.tmp"
    df.to_parquet(tmp, index=False)
    tmp.replace(outdir / "summaries.parquet")
    write_text_atomic(outdir / "report.md", comparison(rows, report))


@main.command()
@click.argument("sweep_file", type=click.Path(dir_okay=True))
@click.option("-j", "--jobs", type=int, default=1, show_default=True, help="Local worker processes.")
@click.option("--dask", "dask_address", default=None, help="Run on a Dask cluster (scheduler address).")
@click.option("-o", "--output", "outdir", type=click.Path(file_okay=False), default=None,
              help="Default: reports/<sweep name>/.")  # fmt: skip
@click.option("--no-progress", is_flag=True, help="No progress bar.")
def sweep(sweep_file: str, jobs: int, dask_address: str | None, outdir: str | None, no_progress: bool) -> None:
    """Run a sweep: a base scenario plus a grid or random sample of overrides.

    Finished runs are kept under OUTPUT/runs/, so running the same sweep again only runs
    what is missing. Results: OUTPUT/summaries.parquet and OUTPUT/report.md.
    """
    try:
        sw = load_sweep(sweep_file)
    except SweepError as e:
        for p in e.problems:
            click.echo(p, err=True)
        sys.exit(2)
    out = Path(outdir) if outdir else Path("reports") / sw.name
    executor, client = make_executor(jobs, dask_address)
    try:
        rows, ran = execute(sw, out, executor, progress=not no_progress)
    except KeyboardInterrupt:
        click.echo("gicsim: sweep interrupted; finished runs are kept, run it again to resume", err=True)
        sys.exit(130)
    finally:
        if executor is not None:
            executor.shutdown(wait=True, cancel_futures=True)
        if client is not None:
            client.close()
    finish(rows, out, sw.report)
    click.echo(f"{sw.name}: {len(sw.runs)} runs ({ran} run now, {len(sw.runs) - ran} already done) -> {out}")
