"""Report benchmark: ``python bench/report.py [RUN_DIR] [--scenario FILE] [--json]``.

Times, on one large run (default: ``scenarios/scale-512.yaml``, ~2.4 M SimPy events, ~3 M trace
rows, simulated first into a temporary directory unless a RUN_DIR is given):

 1. loading the run directory (Parquet + JSON + YAML);
 2. the vectorised aggregation behind the report (``gicsim.present.report.analyse``);
 3. the whole ``gicsim report`` (aggregation, plots, Markdown, HTML, files written);
 4. the Perfetto export;
 5. ``gicsim explain`` (which also re-judges the trace with the oracles).
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from gicsim.present import explain, perfetto, report  # noqa: E402
from gicsim.present.rundata import read_run_dir  # noqa: E402


def timed(fn):  # noqa: ANN001, ANN201
    t = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - t


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("run_dir", nargs="?", help="an existing RUN_DIR (default: simulate --scenario)")
    ap.add_argument("--scenario", default=str(ROOT / "scenarios" / "scale-512.yaml"))
    ap.add_argument("--json", action="store_true", help="print the figures as JSON")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        fig: dict[str, float | int | str] = {}
        if args.run_dir:
            run_dir = Path(args.run_dir)
        else:
            from click.testing import CliRunner

            from gicsim.cli import main as cli

            _, fig["simulate_s"] = timed(lambda: CliRunner().invoke(cli, ["run", args.scenario, "-o", tmp, "-q"]))
            run_dir = next(p for p in Path(tmp).iterdir() if p.is_dir())
        run, fig["load_s"] = timed(lambda: read_run_dir(run_dir))
        fig["rows"] = len(run.trace)
        fig["events"] = run.summary.get("events", 0)
        _, fig["analyse_s"] = timed(lambda: report.analyse(run))
        _, fig["report_s"] = timed(lambda: report.report_command([str(run_dir)], str(Path(tmp) / "report")))
        _, fig["perfetto_s"] = timed(lambda: perfetto.to_json(run))
        _, fig["explain_s"] = timed(lambda: explain.explain(run))
    if args.json:
        print(json.dumps({k: round(v, 3) if isinstance(v, float) else v for k, v in fig.items()}))
    else:
        print(f"{fig['rows']:,} trace rows ({fig['events']:,} SimPy events)")
        for k, v in fig.items():
            if k.endswith("_s"):
                print(f"  {k[:-2]:9} {v:6.2f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
