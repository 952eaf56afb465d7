"""Fetching and building the kernel reference: identity, caching, and one-line errors."""

from __future__ import annotations

import json
import re
import shutil
import tarfile
import time

import pytest
from linux_helpers import RELEASES, kernel, tree

from gicsim.linux import lib as L
from gicsim.linux.build import build
from gicsim.linux.errors import KernelRefError
from gicsim.linux.fetch import REQUIRED, fetch


def _copy_tree(src, dst):
    for rel in REQUIRED + ("Makefile", "include/uapi/linux/kvm.h"):
        (dst / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(src.path(rel), dst / rel)
    return dst


@pytest.mark.parametrize("release", RELEASES)
def test_release_identity_is_recorded(release):
    t = tree(release)
    ident = json.loads((t.root / "source.json").read_text())
    assert ident["package"] == f"linux-source-{release}"
    assert ident["version"].startswith(release + ".")
    assert t.kernel_version.startswith(release + ".")
    assert re.fullmatch(r"[0-9a-f]{64}", ident["files"]["arch/arm64/kvm/vgic/vgic-its.c"])
    assert set(REQUIRED) <= set(ident["files"])


@pytest.mark.parametrize("release", RELEASES)
def test_build_is_cached_and_keyed(release):
    t = tree(release)
    first = build(t)
    t0 = time.monotonic()
    again = build(t)
    assert again.reused and again.path == first.path and time.monotonic() - t0 < 1.0
    assert first.path.is_file() and (first.path.parent / "build.json").is_file()


def test_e_its_codes_match_the_kernel_header():
    t = tree("6.12")
    text = t.path("include/linux/irqchip/arm-gic-v3.h").read_text()
    found = {name: int(v, 16) for name, v in
             re.findall(r"#define\s+(E_ITS_\w+)\s+(0x[0-9a-fA-F]+)", text)}
    assert found == L.E_ITS_BY_NAME


def test_user_tree_and_tarball(tmp_path, monkeypatch):
    t = tree("6.12")
    monkeypatch.setenv("GICSIM_CACHE_DIR", str(tmp_path / "cache"))
    src = _copy_tree(t, tmp_path / "linux-6.12-mine")
    got = fetch(str(src))
    assert got.identity["origin"] == "tree" and got.identity["path"] == str(src)
    assert got.root.parent == tmp_path / "cache" / "kernel"
    assert got.identity["files"]["arch/arm64/kvm/vgic/vgic-its.c"] == \
        t.identity["files"]["arch/arm64/kvm/vgic/vgic-its.c"]
    tgz = tmp_path / "linux-mine.tar.gz"
    with tarfile.open(tgz, "w:gz") as tf:
        tf.add(src, arcname="linux-mine")
    got2 = fetch(str(tgz))
    assert got2.identity["origin"] == "tarball" and len(got2.identity["sha256"]) == 64
    assert (got2.root / "arch/arm64/kvm/vgic/vgic-its.c").is_file()


def test_not_a_kernel_tree(tmp_path):
    (tmp_path / "README").write_text("hello")
    with pytest.raises(KernelRefError, match="is not a kernel tree"):
        fetch(str(tmp_path))
    with pytest.raises(KernelRefError, match="neither a release"):
        fetch(str(tmp_path / "missing"))
    bad = tmp_path / "x.zip"
    bad.write_text("")
    with pytest.raises(KernelRefError, match="not a directory or a .tar"):
        fetch(str(bad))


def test_no_compiler(tmp_path, monkeypatch):
    t = tree("6.12")
    monkeypatch.setenv("CC", "no-such-cc-gicsim")
    with pytest.raises(KernelRefError, match="no C compiler"):
        build(t, force=True)


def test_no_apt_get(tmp_path, monkeypatch):
    monkeypatch.setenv("GICSIM_CACHE_DIR", str(tmp_path))
    monkeypatch.setenv("PATH", str(tmp_path))       # no apt-get, no dpkg-deb
    with pytest.raises(KernelRefError, match="no apt-get on PATH"):
        fetch("6.1")


def test_build_failure_reports_first_error_line(tmp_path, monkeypatch):
    t = tree("6.12")
    monkeypatch.setenv("GICSIM_CACHE_DIR", str(tmp_path / "cache"))
    src = _copy_tree(t, tmp_path / "broken")
    f = src / "arch/arm64/kvm/vgic/vgic.c"
    f.write_text(f.read_text() + "\n#error deliberately broken for a test\n")
    with pytest.raises(KernelRefError) as ei:
        build(fetch(str(src)))
    msg = str(ei.value)
    assert "vgic.c" in msg and "deliberately broken" in msg and "\n" not in msg


def test_load_smoke():
    k = kernel("6.12")
    with L.VM(k, 2) as vm:
        vm.boot_lpis()
        assert vm.its_read(L.GITS_TYPER) & 1          # Physical LPIs


def test_required_kernel_turns_skips_into_failures(monkeypatch):
    import linux_helpers

    monkeypatch.setattr(linux_helpers, "REQUIRED", True)
    with pytest.raises(pytest.fail.Exception, match="GICSIM_REQUIRE_KERNEL=1"):
        linux_helpers.unavailable("no sources")
    monkeypatch.setattr(linux_helpers, "REQUIRED", False)
    with pytest.raises(pytest.skip.Exception, match="no sources"):
        linux_helpers.unavailable("no sources")
