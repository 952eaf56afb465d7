"""report.html as a person sees it: headless Chromium renders it at 1280×900 and the first
screen holds the outcome block; every figure (inline SVG, and each PNG beside the report)
loads with a size.

Needs a chromium binary (Debian's ``chromium`` package; ``.ci/run`` installs it). Outside CI
the test is skipped, saying why, unless ``GICSIM_REQUIRE_CHROMIUM=1`` (CI sets it)."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

import gicsim
from gicsim.present import report
from gicsim.present.rundata import from_result

ROOT = Path(__file__).resolve().parent.parent
W, H = 1280, 900
MAGENTA = (255, 0, 255)


def _chromium() -> str:
    for name in ("chromium", "chromium-browser", "google-chrome"):
        path = shutil.which(name)
        if path:
            return path
    if os.environ.get("GICSIM_REQUIRE_CHROMIUM") == "1":
        pytest.fail("GICSIM_REQUIRE_CHROMIUM=1 but no chromium, chromium-browser or google-chrome on PATH")
    pytest.skip("no chromium binary on PATH (apt-get install chromium; CI installs it and sets "
                "GICSIM_REQUIRE_CHROMIUM=1)")  # fmt: skip


def _run(browser: str, *args: str) -> str:
    cmd = [browser, "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
           "--hide-scrollbars", f"--window-size={W},{H}", *args]  # fmt: skip
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=120, env=os.environ | {"HOME": "/tmp"})
    assert r.returncode == 0, r.stderr[-2000:]
    return r.stdout


PROBE = """<script>
window.addEventListener('load', () => {
  const box = e => { const r = e.getBoundingClientRect(); return [r.top, r.bottom, r.width, r.height]; };
  const o = document.getElementById('outcome');
  const out = {
    outcome: o ? box(o) : null,
    outcome_text: o ? o.innerText : '',
    first: document.body.children[1] ? document.body.children[1].id : '',
    view: [window.innerWidth, window.innerHeight],
    svgs: [...document.querySelectorAll('figure svg')].map(box),
    imgs: [...document.images].map(i => [i.getAttribute('src'), i.complete, i.naturalWidth, i.naturalHeight]),
    details: [...document.querySelectorAll('details')].map(d => [d.id, d.open]),
  };
  const pre = document.createElement('pre'); pre.id = 'probe'; pre.textContent = JSON.stringify(out);
  document.body.appendChild(pre);
});
</script>"""


@pytest.fixture(scope="module")
def lossy(tmp_path_factory):
    """devices-not-quiesced: 8 lost, 8 dropped, written as `gicsim report` writes it."""
    d = tmp_path_factory.mktemp("lossy")
    run = from_result(gicsim.run(ROOT / "scenarios" / "devices-not-quiesced.yaml"))
    for name, data in report.report_files(run).items():
        (d / name).write_bytes(data)
    return run, d


def _probe(browser: str, page: Path) -> dict:
    dom = _run(browser, "--dump-dom", page.as_uri())
    m = re.search(r'<pre id="probe">(.*?)</pre>', dom, re.S)
    assert m, dom[-2000:]
    import html

    return json.loads(html.unescape(m.group(1)))


def test_first_screen_holds_the_outcome_and_every_figure_loads(lossy):
    browser = _chromium()
    run, d = lossy
    page = d / "probe.html"
    # the report, plus the PNGs beside it as <img> (they are what report.md shows)
    imgs = "".join(f'<img src="{n}.png" alt="{n}">' for n in ("waterfall", "latency", "outcomes") if (d / f"{n}.png").exists())
    src = (d / "report.html").read_text()
    page.write_text(src.replace("</body>", imgs + PROBE + "</body>"))
    p = _probe(browser, page)
    vw, vh = p["view"]
    assert vw == W and 0 < vh <= H
    top, bottom, width, height = p["outcome"]
    assert p["first"] == "outcome"  # right after the title
    assert 0 <= top and bottom <= vh and width > 0 and height > 0, p["outcome"]
    lp = run.summary["lpis"]
    assert f"{lp['lost']} lost" in p["outcome_text"] and f"{lp['dropped']['not_restored']} raises dropped" in p["outcome_text"]
    assert "mismatch" in p["outcome_text"]
    assert len(p["svgs"]) == 2 and all(w > 100 and h > 100 for _, _, w, h in p["svgs"]), p["svgs"]
    assert len(p["imgs"]) == 2 and all(ok and w > 0 and h > 0 for _, ok, w, h in p["imgs"]), p["imgs"]
    assert p["details"] == [["timing-profile", False]]  # collapsed


def _magenta_rows(browser: str, d: Path, src: str, tag: str) -> tuple[np.ndarray, np.ndarray]:
    from matplotlib.image import imread

    page = d / f"shot-{tag}.html"
    css = "<style>#outcome { background: rgb(255, 0, 255) !important; }</style>"
    page.write_text(src.replace("</head>", css + "</head>"))
    shot = d / f"shot-{tag}.png"
    _run(browser, f"--screenshot={shot}", page.as_uri())
    img = (imread(shot)[..., :3] * 255).round().astype(np.uint8)
    assert img.shape[:2] == (H, W)
    return img, np.all(img == MAGENTA, axis=-1)


def test_screenshot_shows_the_outcome_block_on_the_first_screen(lossy):
    """The block painted magenta: the 1280×900 screenshot must show it, whole, with text in it."""
    browser = _chromium()
    _, d = lossy
    img, mag = _magenta_rows(browser, d, (d / "report.html").read_text(), "report")
    rows = np.flatnonzero(mag.any(axis=1))
    assert len(rows) > 100, "the outcome block is not on the first screen"
    # the block ends on screen (a non-magenta row below it) and holds text (dark pixels in it)
    assert rows[-1] < H - 1
    cols = np.flatnonzero(mag.any(axis=0))
    inside = img[rows[0]:rows[-1] + 1, cols[0]:cols[-1] + 1]
    assert (inside.max(axis=-1) < 90).sum() > 500


def test_the_checks_fail_when_the_outcome_is_below_the_first_screen(lossy):
    """The same probes on the report with one screen of other content put before the outcome."""
    browser = _chromium()
    _, d = lossy
    src = (d / "report.html").read_text().replace('<section id="outcome"', '<div style="height:1000px"></div><section id="outcome"', 1)
    _, mag = _magenta_rows(browser, d, src, "pushed")
    assert not mag.any()
    page = d / "pushed.html"
    page.write_text(src.replace("</body>", PROBE + "</body>"))
    p = _probe(browser, page)
    assert p["first"] != "outcome" and p["outcome"][1] > p["view"][1]
