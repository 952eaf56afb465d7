"""Timing reports: numbers equal figures computed independently from the trace, the HTML is
self-contained, the CLI contract (outputs, comparison, bad input), and speed on 1 M rows."""

from __future__ import annotations

import json
import math
import re
import time
from collections import defaultdict
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner

import gicsim
from gicsim.cli import main
from gicsim.judge import analysis as A
from gicsim.judge.oracles import GuestIntent
from gicsim.present import report
from gicsim.present.rundata import from_result, read_run_dir
from gicsim.scenario.timing import profile_table

ROOT = Path(__file__).resolve().parent.parent
SC = ROOT / "scenarios"


@pytest.fixture(scope="module")
def retry_run():
    return from_result(gicsim.run(SC / "straggler-retry.yaml"))


def _nearest(vals: list[int], q: float) -> int:
    s = sorted(vals)
    return s[max(1, math.ceil(q / 100 * len(s))) - 1]


def _independent(records, migs):
    """Latency per delivery, by a plain loop over the records (the SPEC §6 definition)."""
    intent = GuestIntent()
    queue: dict[tuple[int, int], list[int]] = defaultdict(list)
    waiting: dict[int, list[int]] = defaultdict(list)
    lat = []  # (latency, vcpu, accept_t)
    for r in records:
        t, kind, info = r[0], r[1], r[8]
        if kind == "gcmd":
            intent.apply(r)
        elif kind == "raise":
            if info == "set_pending":
                waiting[r[4]].append(t)
            else:
                queue[(r[5], r[6])].append(intent.lpi_of(r[5], r[6]))
        elif kind in ("accept", "drop"):
            q = queue[(r[5], r[6])]
            lpi = q.pop(0) if q else -1
            if kind == "accept" and lpi >= 0:
                waiting[lpi].append(t)
        elif kind == "deliver":
            w = waiting.pop(r[4], [])
            if w:
                lat.append((t - w[0], r[3], w[0]))
    return lat


def test_report_numbers_equal_independent_figures(retry_run):
    run = retry_run
    an = report.analyse(run)
    rec = run.records()
    s = run.summary
    # -- steps: start/end of every step from the raw rows, and the summary's phases ---------
    starts, ends = {}, {}
    for r in rec:
        if r[1] == "step":
            name, what = r[8].rsplit(":", 1)
            if what == "start":
                starts.setdefault(name, r[0])
            elif what == "end":
                ends[name] = r[0]
    got = {x.step: (x.start_ns, x.end_ns, x.dur_ns) for x in an.steps.itertuples()}
    assert got == {k: (starts[k], ends[k], ends[k] - starts[k]) for k in starts}
    phases = s["migrations"][0]["phases"]
    for k, (a, b, _) in got.items():
        assert (a, b) == (phases[k]["start_ns"], phases[k]["end_ns"])
    m = an.migs[0]
    assert m.downtime_ns == phases["downtime"]["end_ns"] - phases["downtime"]["start_ns"]
    assert m.stop_ns == phases["downtime"]["start_ns"] and m.start_ns == phases["precopy"]["start_ns"]
    # -- errors: every failed KVM call with its step, as the summary lists them --------------
    assert [(e.step, e.errno, e.t) for e in an.errors.itertuples()] == [
        (e["step"], e["errno"], e["t_ns"]) for e in s["migrations"][0]["errors"]
    ]
    assert all(v == [3] for v in an.errors["in_kvm_run"])  # the straggler
    # -- latency: per period and per vCPU, nearest-rank percentiles -------------------------
    lat = _independent(rec, an.migs)
    assert len(lat) == len(an.deliveries)
    allv = [x[0] for x in lat]
    assert {"p50": _nearest(allv, 50), "p99": _nearest(allv, 99), "max": max(allv)} == s["lpis"]["latency_ns"]
    per_vcpu = defaultdict(list)
    per_period = defaultdict(list)
    for v, vc, ta in lat:
        per_vcpu[vc].append(v)
        p = "before" if ta < m.start_ns else "precopy" if ta < m.stop_ns else "downtime" if ta < m.end_ns else "after"
        per_period[p].append(v)
    for table, ref in ((an.by_vcpu, per_vcpu), (an.by_period, per_period)):
        assert set(table.index) == set(ref)
        for key, vals in ref.items():
            row = table.loc[key]
            assert row["n"] == len(vals)
            for q in (50, 90, 99):
                assert row[f"p{q}"] == _nearest(vals, q)
            assert row["max"] == max(vals)
            assert row["mean"] == pytest.approx(sum(vals) / len(vals))
    # -- outcomes per side ------------------------------------------------------------------
    cnt = defaultdict(int)
    for r in rec:
        if r[1] in ("raise", "accept", "deliver"):
            cnt[(r[2], r[1])] += 1
    for row in an.by_side.itertuples():
        assert (row.raised, row.accepted, row.delivered) == (
            cnt[(row.side, "raise")], cnt[(row.side, "accept")], cnt[(row.side, "deliver")])
    assert an.by_side["delivered"].sum() == s["lpis"]["delivered"]
    # -- the Markdown shows those numbers ---------------------------------------------------
    md = report.build(run, plots=False).markdown(figures=False)
    assert f"| `save_pending_tables` | source (vm0) | {report.us(starts['save_pending_tables'] - m.stop_ns)} | " \
           f"{report.us(ends['save_pending_tables'] - starts['save_pending_tables'])} |" in md
    assert f"downtime ({report.us(m.downtime_ns)} µs)" in md
    assert f"p99 {report.us(s['lpis']['latency_ns']['p99'])} µs" in md
    for e in s["migrations"][0]["errors"]:
        assert f"| {report.us(e['t_ns'])} | 1 | vm0 | `{e['step']}` | `SAVE_PENDING_TABLES` | EBUSY | 3 |" in md
    for f, _v, _unit, src in profile_table(run.scenario.timing, "altra-6.12"):
        assert f"`{f}`" in md and src.split(",")[0] in md


@pytest.mark.parametrize("name", ["devices-not-quiesced", "tables-before-memory", "stale-translation-cache",
                                  "ctlr-before-restore", "its-pending-migration"])
def test_drops_and_latency_match_the_oracle(name):
    run = from_result(gicsim.run(SC / f"{name}.yaml"))
    an = report.analyse(run)
    lp = run.summary["lpis"]
    dr = an.acc.loc[an.acc["kind"] == "drop", "drop_reason"].value_counts().to_dict()
    assert {k: dr.get(k, 0) for k in lp["dropped"]} == lp["dropped"]
    assert int((an.acc["kind"] == "accept").sum()) == lp["accepted"]
    if lp["latency_ns"]["p50"] is not None:
        o = an.overall.iloc[0]
        assert {"p50": o["p50"], "p99": o["p99"], "max": o["max"]} == lp["latency_ns"]


def test_html_is_self_contained_and_has_the_plots(retry_run, tmp_path):
    files = report.report_files(retry_run)
    html = files["report.html"].decode()
    refs = re.findall(r"""(?:src|href)\s*=\s*["']([^"']*)["']""", html, flags=re.I)
    assert not [r for r in refs if re.match(r"(?i)(https?:)?//", r)], refs
    assert not re.search(r"<(script|link|iframe|img)\b[^>]*\b(src|href)\s*=\s*[\"']?(https?:)?//", html, re.I)
    assert "@import" not in html
    assert not [u for u in re.findall(r"url\(([^)]*)\)", html) if not u.strip("'\"").startswith("#")]
    assert html.count("<svg") == 3
    for name in ("waterfall", "latency", "outcomes"):
        assert f'id="fig-{name}"' in html
        assert files[f"{name}.png"].startswith(b"\x89PNG\r\n\x1a\n")
        assert b"<svg" in files[f"{name}.svg"]
    md = files["report.md"].decode()
    for name in ("waterfall", "latency", "outcomes"):
        assert f"({name}.png)" in md and f"({name}.svg)" in md
    # deterministic: same run, same bytes
    again = report.report_files(retry_run)
    assert again["report.html"] == files["report.html"] and again["waterfall.svg"] == files["waterfall.svg"]


def test_cli_run_report_then_report_from_the_directory(tmp_path):
    r = CliRunner().invoke(main, ["run", str(SC / "straggler-retry.yaml"), "-o", str(tmp_path), "--report", "--perfetto"])
    assert r.exit_code == 0, r.output
    d = tmp_path / "straggler-retry"
    names = {p.name for p in d.iterdir()}
    assert {"resolved.yaml", "summary.json", "trace.parquet", "report.md", "report.html", "trace.perfetto.json.gz",
            "waterfall.png", "waterfall.svg", "latency.png", "latency.svg", "outcomes.png", "outcomes.svg"} <= names
    first = (d / "report.html").read_bytes()
    # the report is computable from the run directory alone
    out = tmp_path / "again"
    r = CliRunner().invoke(main, ["report", str(d), "-o", str(out)])
    assert r.exit_code == 0, r.output
    assert (out / "report.html").read_bytes() == first
    assert (out / "trace.parquet").read_bytes() == (d / "trace.parquet").read_bytes()
    # in place (no -o): the run files stay, the report is rewritten
    (d / "report.md").unlink()
    r = CliRunner().invoke(main, ["report", str(d)])
    assert r.exit_code == 0 and (d / "report.md").exists() and (d / "summary.json").exists()


def test_cli_report_of_a_scenario_and_a_comparison(tmp_path):
    r = CliRunner().invoke(main, ["report", str(SC / "v5-double-sync.yaml"), "-o", str(tmp_path / "one")])
    assert r.exit_code == 0, r.output
    run = read_run_dir(tmp_path / "one")
    assert run.name == "v5-double-sync" and (tmp_path / "one" / "report.html").exists()
    r = CliRunner().invoke(main, ["report", str(tmp_path / "one"), str(SC / "clean-migration.yaml"),
                                  "-o", str(tmp_path / "cmp")])  # fmt: skip
    assert r.exit_code == 0, r.output
    md = (tmp_path / "cmp" / "report.md").read_text()
    assert "| metric | v5-double-sync | clean-migration |" in md
    assert "| lost | 16 | 0 |" in md
    for f in ("compare-downtime.png", "compare-latency.svg", "report.html", "runs/clean-migration/trace.parquet"):
        assert (tmp_path / "cmp" / f).exists(), f


@pytest.mark.parametrize("args", [
    ["report", "does/not/exist"],
    ["report", "{empty}"],
    ["report", "{bad}"],
    ["report", "{bad}", str(SC / "clean-migration.yaml")],
    ["explain", "does/not/exist"],
    ["explain", "{bad}"],
    ["tables", str(SC / "clean-migration.yaml"), "--at", "nonsense"],
    ["tables", "{bad}", "--at", "memory"],
])  # fmt: skip
def test_bad_input_one_line_exit_2_nothing_written(tmp_path, monkeypatch, args):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "empty").mkdir()
    (tmp_path / "bad.yaml").write_text("name: x\nvm: {vcpus: 0}\n")
    args = [a.format(empty=tmp_path / "empty", bad=tmp_path / "bad.yaml") for a in args]
    r = CliRunner().invoke(main, args)
    assert r.exit_code == 2, r.output
    lines = [ln for ln in r.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1, lines
    assert "Traceback" not in r.output
    assert not (tmp_path / "reports").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bad.yaml", "empty"]


def _synthetic(n_msi: int, nvcpu: int = 8) -> pd.DataFrame:
    """A trace of n_msi MSIs (raise, accept, deliver, eoi each) around one migration."""
    rng = np.random.default_rng(1)
    t0 = np.sort(rng.integers(10_000, 1_000_000_000, n_msi))
    dev = rng.integers(1, 17, n_msi)
    ev = rng.integers(0, 16, n_msi)
    lpi = 8192 + (dev - 1) * 16 + ev
    vcpu = lpi % nvcpu
    rows = {
        "t": np.concatenate([t0, t0, t0 + 1500, t0 + 2500]),
        "kind": np.repeat(["raise", "accept", "deliver", "eoi"], n_msi),
        "vcpu": np.concatenate([np.full(n_msi, -1), vcpu, vcpu, vcpu]),
        "lpi": np.concatenate([np.full(n_msi, -1), lpi, lpi, lpi]),
        "device": np.concatenate([dev, dev, np.full(2 * n_msi, -1)]),
        "event": np.concatenate([ev, ev, np.full(2 * n_msi, -1)]),
        "order": np.concatenate([np.arange(n_msi) * 4 + k for k in range(4)]),
    }
    df = pd.DataFrame(rows)
    df["side"] = np.where(df["t"] < 500_000_000, "vm0", "vm1")
    df["icid"] = -1
    df["info"] = np.where(df["kind"].isin(["raise", "accept"]), "msi", "")
    gc = [(1, "gcmd", "vm0", -1, 8192 + (d - 1) * 16 + e, d, e, 0, "MAPTI") for d in range(1, 17) for e in range(16)]
    mig = [(499_000_000, "migration", "vm0", -1, -1, -1, -1, 0, "start"),
           (499_500_000, "step", "vm0", -1, -1, -1, -1, 0, "stop_vcpus:start"),
           (499_600_000, "step", "vm0", -1, -1, -1, -1, 0, "stop_vcpus:end"),
           (499_600_000, "kvm", "vm0", -1, -1, -1, -1, 0, "SAVE_PENDING_TABLES:EBUSY"),
           (499_900_000, "step", "vm1", -1, -1, -1, -1, 0, "resume:start"),
           (500_000_000, "migration", "vm1", -1, -1, -1, -1, 0, "resume"),
           (500_000_000, "step", "vm1", -1, -1, -1, -1, 0, "resume:end"),
           (500_000_000, "migration", "vm1", -1, -1, -1, -1, 0, "completed")]  # fmt: skip
    extra = pd.DataFrame(gc + mig, columns=["t", "kind", "side", "vcpu", "lpi", "device", "event", "icid", "info"])
    df = df.sort_values(["t", "order"], kind="stable").drop(columns="order")
    df = pd.concat([extra.iloc[:len(gc)], df, extra.iloc[len(gc):]], ignore_index=True).sort_values("t", kind="stable")
    from gicsim.judge.trace import CATEGORICAL, COLUMNS

    df = df[list(COLUMNS)].reset_index(drop=True)
    for c in CATEGORICAL:
        df[c] = df[c].astype("category")
    return df


def test_aggregation_of_a_million_rows_takes_seconds():
    df = _synthetic(250_000)
    assert len(df) > 1_000_000
    t = time.perf_counter()
    migs = A.migrations(df)
    acc = A.attribute(df)
    dl = A.deliveries(df, acc)
    lat = dl[dl["latency_ns"] >= 0]
    stats = report.nearest_rank(lat["latency_ns"], pd.Series(A.periods(migs, lat["accept_t"].to_numpy())))
    A.steps(df, migs)
    A.kvm_calls(df)
    A.drop_reasons(acc, df)
    elapsed = time.perf_counter() - t
    assert len(dl) == 250_000 and (lat["latency_ns"] >= 1500).all() and lat["latency_ns"].median() == 1500
    assert stats["n"].sum() == len(lat) > 240_000
    assert elapsed < 10, f"aggregation of {len(df):,} rows took {elapsed:.1f} s"


def test_markdown_only_report_keeps_the_run_fast(tmp_path):
    """`gicsim run` without --report writes the text report (no figures, no matplotlib)."""
    r = CliRunner().invoke(main, ["run", str(SC / "clean-migration.yaml"), "-o", str(tmp_path)])
    assert r.exit_code == 0
    md = (tmp_path / "clean-migration" / "report.md").read_text()
    assert "## Migration timeline and downtime" in md and ".png" not in md
    s = json.loads((tmp_path / "clean-migration" / "summary.json").read_text())
    assert f"{s['lpis']['delivered']} |" in md


def test_report_files_never_carry_terminal_escapes(tmp_path):
    """A description with ESC/BEL sequences (an OSC title change, a colour) is shown escaped
    in report.md and report.html, so `cat report.md` cannot drive the terminal."""
    from ruamel.yaml import YAML

    d = YAML(typ="safe").load((SC / "clean-migration.yaml").read_text())
    d["description"] = "\x1b[31mRED\x1b[0m \x1b]0;title\x07"
    sc = tmp_path / "esc.yaml"
    sc.write_text(json.dumps(d))  # JSON is YAML; the escapes arrive as real ESC/BEL
    out = tmp_path / "out"
    r = CliRunner().invoke(main, ["run", str(sc), "-o", str(out), "--report"])
    assert r.exit_code == 0, r.output
    for name in ("report.md", "report.html"):
        body = (out / "clean-migration" / name).read_text()
        assert "\x1b" not in body and "\x07" not in body
        assert "\\x1b[31mRED\\x1b[0m \\x1b]0;title\\x07" in body


def test_the_timing_table_says_where_every_charged_field_is_used():
    """Every field the simulation charges drives a figure ("used in"), and no reference-only
    field (timing.NOT_CHARGED) claims to."""
    from gicsim.scenario.timing import FIELDS, NOT_CHARGED

    used = {f for fields in report.FIGURE_FIELDS.values() for f in fields}
    assert used == set(FIELDS) - set(NOT_CHARGED)
