"""Reports lead with the hazard: the outcome and its cause come before any table, the
waterfall marks lost / dropped MSIs and failed KVM calls, the timing profile is last and
collapsed in HTML, log-axis tick labels do not overlap, and a sweep's report has its plot."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest

import gicsim
from gicsim.present import plots, report
from gicsim.present.explain import explain
from gicsim.present.explain.verdict import outcome
from gicsim.present.rundata import from_result

ROOT = Path(__file__).resolve().parent.parent
SC = ROOT / "scenarios"


@pytest.fixture(scope="module")
def runs():
    return {n: from_result(gicsim.run(SC / f"{n}.yaml")) for n in
            ("devices-not-quiesced", "creadr-before-cbaser", "straggler-retry", "clean-migration", "straggler-abort")}


def _first_block(md: str) -> str:
    """From the first level-2 heading to the next one."""
    heads = [m.start() for m in re.finditer(r"^## ", md, re.M)]
    return md[heads[0]:heads[1]]


@pytest.mark.parametrize("name", ["devices-not-quiesced", "creadr-before-cbaser"])
def test_the_first_heading_block_of_a_lossy_run_has_its_lost_count(runs, name):
    run = runs[name]
    md = report.build(run, plots=False).markdown(figures=False)
    block = _first_block(md)
    lost = run.summary["lpis"]["lost"]
    assert lost > 0
    assert block.startswith("## Outcome\n")
    assert f"**{lost} LPI raises lost**" in block.splitlines()[2]  # the headline, first line under it
    assert f"LPIs: **{lost} lost** of {run.summary['lpis']['accepted']} accepted raises; 0 spurious and 0 misrouted" in block
    assert "|" not in md[:md.index("## The run")]  # no table before the outcome and its causes
    assert "Why, in the words of `gicsim explain`" in md[:md.index("## The run")]
    html = report.build(run, plots=False).html()
    assert html.index('<section id="outcome" class="bad">') < html.index("<table")
    assert re.search(r"<body>\s*<h1>[^<]*</h1>\s*<section id=\"outcome\"", html)


def test_drops_state_and_cause_lines_on_the_first_screen(runs):
    md = report.build(runs["devices-not-quiesced"], plots=False).markdown(figures=False)
    head = md[:md.index("## The run")]
    assert "**8 raises dropped**" in head and "Dropped: **8** (`not_restored` 8)." in head
    assert "State: **mismatch**" in head
    # explain's cause lines, word for word
    assert "after SAVE_PENDING_TABLES had written the pending tables" in head
    assert "an MSI to a disabled ITS is refused." in head


def test_kvm_errors_and_an_aborted_migration_lead(runs):
    md = report.build(runs["straggler-retry"], plots=False).markdown(figures=False)
    head = md[:md.index("## The run")]
    assert "**3 KVM errors** (EBUSY)" in head.splitlines()[4]
    assert "KVM errors: **3 × EBUSY** in `save_pending_tables`." in head
    assert "vCPU 3 still inside KVM_RUN" in head
    html = report.build(runs["straggler-retry"], plots=False).html()
    sec = html[html.index('<section id="outcome"'):html.index("</section>")]
    assert "**" not in sec and "<strong>3 × EBUSY</strong> in <code>save_pending_tables</code>" in sec
    md = report.build(runs["straggler-abort"], plots=False).markdown(figures=False)
    assert "**Migration 1 aborted** (EBUSY in `save_pending_tables`), the VM resumed on vm0" in _first_block(md)


def test_a_healthy_run_says_so_and_the_expectation_verdict_stands_apart(runs):
    run = runs["clean-migration"]
    md = report.build(run, plots=False).markdown(figures=False)
    block = _first_block(md)
    n = run.summary["lpis"]["accepted"]
    assert f"all {n} accepted LPI raises delivered, once each, on their vCPU; no KVM error; state matches." in block
    assert "Expectations: every expectation of the scenario holds (this says the scenario behaved" in block
    assert "Why" not in md[:md.index("## The run")]
    assert '<section id="outcome" class="ok">' in report.build(run, plots=False).html()


def test_the_cause_lines_are_explains_own(runs):
    for name in ("devices-not-quiesced", "creadr-before-cbaser", "straggler-retry"):
        run = runs[name]
        oc = outcome(run)
        text = " ".join(explain(run).split())
        kinds = [s.kind for s in oc.sections]
        assert kinds[0] == "migration"
        for s in oc.sections:
            assert f"### {s.title}" in explain(run)
            for f in s.facts():
                assert " ".join(f.split()) in text, f
        if run.summary["lpis"]["lost"]:
            assert "lost" in kinds and len(oc.lost_t) == run.summary["lpis"]["lost"]


def test_the_timing_profile_is_last_and_collapsed(runs):
    run = runs["straggler-retry"]
    html = report.build(run, plots=False).html()
    d0 = html.index('<details id="timing-profile"><summary>Timing profile</summary>')
    assert html.index('id="outcome"') < d0
    d1 = html.index("</details>", d0)
    assert "<code>vcpu_exit_ns</code>" in html[d0:d1]
    assert "<code>vcpu_exit_ns</code></td>" not in html[:d0]
    assert re.fullmatch(r"\s*</body></html>\s*", html[d1 + len("</details>"):])
    md = report.build(run, plots=False).markdown(figures=False)
    assert md.rindex("## ") == md.index("## Timing profile")  # the last section


def test_the_waterfall_marks_lost_and_dropped_msis_and_failed_calls(runs):
    svg = report.report_files(runs["devices-not-quiesced"])["waterfall.svg"].decode()
    assert "MSIs later lost" in svg and "MSIs dropped" in svg
    assert ">8 lost<" in svg
    assert "8 dropped (not_restored)" in svg
    assert "MSI accepted, later lost" in svg and "MSI dropped" in svg
    svg = report.report_files(runs["creadr-before-cbaser"])["waterfall.svg"].decode()
    assert re.search(r"16 lost, accepted [0-9.,]+ µs before the stop", svg)
    svg = report.report_files(runs["straggler-retry"])["waterfall.svg"].decode()
    assert "3× -EBUSY" in svg and "MSIs later lost" not in svg and "MSIs dropped" not in svg
    svg = report.report_files(runs["clean-migration"])["waterfall.svg"].decode()
    assert "MSIs" not in svg and "-EBUSY" not in svg


@pytest.mark.parametrize("name", ["tables-before-memory", "ctlr-before-restore", "stale-translation-cache"])
def test_every_lost_and_dropped_msi_is_counted_in_the_waterfall(name):
    """The marks' counts add up to the summary's, wherever the MSIs fell (before the stop,
    during the downtime, after it)."""
    run = from_result(gicsim.run(SC / f"{name}.yaml"))
    svg = report.report_files(run)["waterfall.svg"].decode()
    lp = run.summary["lpis"]
    def counted(what: str) -> int:
        pat = rf">([0-9,]+) {re.escape(what)}[^<;]*(?:; ([0-9,]+) more after the downtime)?<"
        return sum(int(a.replace(",", "")) + int((b or "0").replace(",", "")) for a, b in re.findall(pat, svg))

    assert counted("lost") == lp["lost"]
    for reason, n in lp["dropped"].items():
        assert counted(f"dropped ({reason})") == n, reason
    assert lp["lost"] + sum(lp["dropped"].values()) > 0


def _labels(fig, ax, which):
    r = fig.canvas.get_renderer()
    axis = ax.xaxis if which == "x" else ax.yaxis
    lo, hi = sorted(ax.get_xlim() if which == "x" else ax.get_ylim())
    out = []
    for t in axis.get_major_ticks():
        lab = t.label1
        if lab.get_visible() and lab.get_text() and lo <= t.get_loc() <= hi:
            out.append((lab.get_text(), lab.get_window_extent(r)))
    return out


@pytest.mark.parametrize(("lo", "hi"), [(1760.0, 2390.0), (1.5, 45.0), (1.2, 1.3e3), (0.8, 2.5e6), (40.0, 60.0)])
@pytest.mark.parametrize("which", ["x", "y"])
def test_log_axis_labels_are_plain_and_never_overlap(lo, hi, which):
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(5.2, 3.8))
    FigureCanvasAgg(fig)
    ax = fig.subplots()
    v = np.geomspace(lo, hi, 50)
    if which == "x":
        ax.plot(v, np.linspace(0, 1, 50))
        ax.set_xscale("log")
    else:
        ax.plot(np.linspace(0, 1, 50), v)
        ax.set_yscale("log")
    plots.log_ticks(ax, which)
    fig.tight_layout()
    fig.canvas.draw()
    labs = _labels(fig, ax, which)
    assert len(labs) >= 2, [t for t, _ in labs]
    for text, _ in labs:
        assert re.fullmatch(r"[0-9][0-9,]*(\.[0-9]+)?", text), text  # no 10^x mantissas
    boxes = sorted((b for _, b in labs), key=lambda b: b.x0 if which == "x" else b.y0)
    for a, b in zip(boxes, boxes[1:], strict=False):
        if which == "x":
            assert a.x1 + 2 <= b.x0, [t for t, _ in labs]
        else:
            assert a.y1 <= b.y0, [t for t, _ in labs]


def test_report_latency_figure_labels_do_not_overlap(runs):
    """The example that overlapped: its-pending-migration's narrow range (1.8–2.4 ms)."""
    run = from_result(gicsim.run(SC / "its-pending-migration.yaml"))
    svg = report.report_files(run)["latency.svg"].decode()
    assert "\\times" not in svg and "×10" not in svg and "$" not in re.sub(r"<(style|defs)>.*?</\1>", "", svg, flags=re.S)
    for t in ("1,800", "2,000", "2,200"):
        assert f">{t}<" in svg


def test_the_sweep_report_has_the_plot_of_its_report_spec(tmp_path):
    from gicsim.sweeps.runner import finish

    rows = [{"run": i, "seed": i, "exit_us": x, "policy": p, "lost": (x // 100) * (p == "continue"),
             "status": "completed"} for i, (x, p) in enumerate(
                 (x, p) for x in (50, 150, 300, 600) for p in ("abort", "continue", '{"retry": 5}'))]  # fmt: skip
    finish(rows, tmp_path, {"x": "exit_us", "y": "lost", "group": "policy"})
    md = (tmp_path / "report.md").read_text()
    table = md.index("Mean `lost` by `exit_us` and `policy`:")
    pic = md.index("![lost by exit_us](sweep.png)")
    assert table < pic < md.index("Migration outcomes:")  # right after the table of means
    assert "([SVG](sweep.svg))" in md
    png = (tmp_path / "sweep.png").read_bytes()
    assert png.startswith(b"\x89PNG\r\n\x1a\n")
    svg = (tmp_path / "sweep.svg").read_text()
    for s in ("abort", "continue", "retry", "exit_us", "policy"):
        assert s in svg, s
    # a categorical x, no group; and no x: no plot, no link
    rows2 = [{"run": i, "mode": m, "lost": i, "status": "completed"} for i, m in enumerate(["a", "b", "a"])]
    finish(rows2, tmp_path / "cat", {"x": "mode", "y": "lost"})
    assert (tmp_path / "cat" / "sweep.png").exists() and "](sweep.png)" in (tmp_path / "cat" / "report.md").read_text()
    finish(rows2, tmp_path / "none", {"y": "lost"})
    assert not (tmp_path / "none" / "sweep.png").exists() and "sweep.png" not in (tmp_path / "none" / "report.md").read_text()


def test_gicsim_sweep_writes_the_plot_beside_its_table(tmp_path):
    from click.testing import CliRunner

    from gicsim.cli import main

    f = tmp_path / "s.yaml"
    f.write_text(f"base: {SC / 'straggler-retry.yaml'}\nseed: 7\ngrid:\n"
                 "  migration.source.stragglers.0.exit_us: [50, 400]\n"
                 "  migration.source.on_ebusy: [abort, continue]\n"
                 "report: {x: migration.source.stragglers.0.exit_us, y: lost, group: migration.source.on_ebusy}\n")  # fmt: skip
    out = tmp_path / "out"
    r = CliRunner().invoke(main, ["sweep", str(f), "-o", str(out), "-j", "1"])
    assert r.exit_code == 0, r.output
    md = (out / "report.md").read_text()
    assert md.index("Mean `lost` by") < md.index("![lost by migration.source.stragglers.0.exit_us](sweep.png)")
    assert (out / "sweep.png").read_bytes().startswith(b"\x89PNG\r\n\x1a\n")
    svg = (out / "sweep.svg").read_text()
    assert "migration.source.on_ebusy" in svg and "continue" in svg and "abort" in svg
    again = tmp_path / "again"  # deterministic: the same sweep, the same plot
    assert CliRunner().invoke(main, ["sweep", str(f), "-o", str(again), "-j", "1"]).exit_code == 0
    assert (again / "sweep.svg").read_bytes() == (out / "sweep.svg").read_bytes()


def test_a_comparison_leads_with_each_runs_outcome(runs):
    names = ["clean-migration", "straggler-abort", "creadr-before-cbaser"]
    doc = report.build_comparison([runs[n] for n in names], names, plots=False)
    md = doc.markdown()
    block = _first_block(md)
    assert block.startswith("## Outcomes\n") and "|" not in block
    assert "- `creadr-before-cbaser`: **Migration 1 completed** (vm0 → vm1, downtime 199.129 µs) — " \
           "**16 LPI raises lost**, **state mismatch**." in block
    assert "- `straggler-abort`: **Migration 1 aborted** (EBUSY in `save_pending_tables`)" in block
    assert '<section id="outcome" class="bad">' in doc.html()
