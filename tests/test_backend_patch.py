"""The "test my kernel patch" workflow end to end: copy the fetched 6.12 tree, patch
``vgic-its.c`` in a known way, run a shipped hazard scenario with ``--kernel-tree``.

The patch drops ``vgic_its_invalidate_cache()`` from ``vgic_its_cmd_handle_discard``: the
translation cache then keeps (and holds a reference to) a DISCARDed event's LPI. The
shipped ``stale-translation-cache`` scenario models exactly that kernel with the variant
``translation_cache: stale``; run without that override, stock 6.12 loses and spurs
nothing, the patched tree gives the variant's outcome -- the same trace, record for record.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner
from linux_helpers import tree as kernel_tree

import gicsim
from gicsim.cli import main
from gicsim.scenario import load_scenario, resolved_dict

ROOT = Path(__file__).parent.parent
HAZARD = ROOT / "scenarios" / "stale-translation-cache.yaml"
ITS_C = "arch/arm64/kvm/vgic/vgic-its.c"
INVALIDATE_ON_DISCARD = "\t\tvgic_its_invalidate_cache(its);\n\n\t\tits_free_ite(kvm, ite);\n"


@pytest.fixture(scope="module")
def patched(tmp_path_factory) -> Path:
    src = kernel_tree("6.12").root
    dst = tmp_path_factory.mktemp("kernel") / "linux-6.12-no-discard-invalidate"
    shutil.copytree(src, dst, ignore=shutil.ignore_patterns("build-*", "source.json"))
    its = dst / ITS_C
    text = its.read_text()
    assert text.count(INVALIDATE_ON_DISCARD) == 1  # the 6.12.117 code we patch
    its.write_text(text.replace(INVALIDATE_ON_DISCARD, "\t\tits_free_ite(kvm, ite);\n"))
    return dst


def hazard(**kernel) -> dict:
    d = resolved_dict(load_scenario(HAZARD))
    k = {key: v for key, v in d["kernel"].items() if key != "translation_cache"}
    return {**d, "kernel": {**k, **kernel}}


def test_patched_tree_brings_back_the_stale_translation(patched):
    stock = gicsim.run(hazard(backend="linux")).summary
    mine = gicsim.run(hazard(backend="linux", tree=str(patched)))
    s = mine.summary
    assert stock["kernel"]["source"].startswith("linux-source-6.12 ")
    assert s["kernel"] == {"backend": "linux", "release": "6.12.117",
                           "source": f"{patched} (6.12.117)"}  # fmt: skip
    assert (stock["lpis"]["spurious"], stock["lpis"]["lost"]) == (0, 0)
    assert stock["expect"]["passed"] is False  # 'spurious: >=1' needs the broken kernel
    assert s["lpis"]["spurious"] == s["lpis"]["lost"] == 42 and s["expect"]["passed"]
    assert {(d["lpi"], d["vcpu"], d["side"]) for d in s["delivered"]} == {
        (8192, 1, "source"),
        (8192, 1, "destination"),
    }  # 8200 never reaches vCPU 2
    # the model's hypothetical variant is this patch, record for record
    variant = gicsim.run(resolved_dict(load_scenario(HAZARD)))
    assert mine.records == variant.records


def test_cli_kernel_tree_runs_the_patch(patched, tmp_path):
    f = tmp_path / "hazard.yaml"
    d = yaml.safe_load(HAZARD.read_text())
    del d["kernel"]
    f.write_text(yaml.safe_dump(d))
    out = tmp_path / "out"
    r = CliRunner().invoke(main, ["run", str(f), "-o", str(out), "--kernel-tree", str(patched)])
    assert r.exit_code == 0, r.output
    assert f"  kernel: linux backend, 6.12.117 ({patched} (6.12.117))" in r.output.splitlines()
    s = json.loads((out / "stale-translation-cache" / "summary.json").read_text())
    assert s["kernel"]["source"] == f"{patched} (6.12.117)" and s["lpis"]["spurious"] == 42
    r = CliRunner().invoke(main, ["run", str(f), "-o", str(out), "--backend", "linux"])
    assert r.exit_code == 1  # stock 6.12: the expect (spurious >= 1) fails
    assert any(ln.startswith("  kernel: linux backend, 6.12 (linux-source-6.12 ") for ln in r.output.splitlines())
