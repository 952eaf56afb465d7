"""Get the kernel's vGIC/ITS sources into the user's cache (never into the repository).

Sources come from one of:

* a release name, ``"6.12"`` or ``"6.1"``: Debian's ``linux-source-<release>`` package,
  fetched with ``apt-get download`` (pinned version first, else the archive's candidate);
* a path: an extracted kernel tree, or a ``.tar``/``.tar.gz``/``.tar.xz``/``.tar.bz2``
  tarball of one (e.g. the user's own patched kernel).

Only the files the reference compiles (plus a few it was transcribed from, for review) are
extracted, into ``<cache>/kernel/<release-or-hash>/``, with ``source.json`` recording where
they came from: package name and version (from ``dpkg-deb -f``), or the path, plus the
sha256 of every extracted file. ``<cache>`` is ``$GICSIM_CACHE_DIR``, else
``$XDG_CACHE_HOME/gicsim``, else ``~/.cache/gicsim``.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import subprocess
import tarfile
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from gicsim.linux.errors import KernelInputError, KernelRefError

#: release -> (Debian package, pinned version). The pinned version is what the project's
#: reference figures are for; if the archive no longer has it, the candidate is used and
#: ``source.json`` says ``"pinned": false``.
RELEASES: dict[str, tuple[str, str]] = {
    "6.12": ("linux-source-6.12", "6.12.117-1~deb12u1"),
    "6.1": ("linux-source-6.1", "6.1.192-3"),
}

#: Files compiled into the library (paths relative to the kernel tree's root).
COMPILED = (
    "arch/arm64/kvm/vgic/vgic-its.c",
    "arch/arm64/kvm/vgic/vgic.c",
    "arch/arm64/kvm/vgic/vgic.h",
    "arch/arm64/kvm/vgic/vgic-mmio.c",
    "arch/arm64/kvm/vgic/vgic-mmio.h",
    "arch/arm64/kvm/vgic/vgic-mmio-v3.c",
    "arch/arm64/kvm/vgic/vgic-v3.c",
    "arch/arm64/kvm/vgic/vgic-init.c",
    "arch/arm64/kvm/vgic/vgic-kvm-device.c",
    "lib/list_sort.c",
    "include/kvm/arm_vgic.h",
    "include/kvm/iodev.h",
    "include/linux/irqchip/arm-gic-v3.h",
    "include/linux/irqchip/arm-gic-v4.h",
    "include/linux/irqchip/arm-gic-common.h",
    "include/linux/irqchip/arm-vgic-info.h",
)
#: Files constants are generated from at build time (see build.py).
GENERATED_FROM = (
    "arch/arm64/include/asm/sysreg.h",
    "arch/arm64/include/uapi/asm/kvm.h",
)
#: Files the shim's "kernel:" transcriptions come from; extracted so a reviewer can diff.
REFERENCE = (
    "Makefile",
    "virt/kvm/kvm_main.c",
    "arch/arm64/kvm/arm.c",
    "arch/arm64/kvm/mmio.c",
    "arch/arm64/kvm/sys_regs.c",
    "arch/arm64/kvm/vgic/vgic-v4.c",
    "include/linux/kvm_host.h",
    "include/uapi/linux/kvm.h",
    "lib/bsearch.c",
    "include/linux/bsearch.h",
    "arch/arm64/kvm/vgic/vgic-irqfd.c",
    "virt/kvm/irqchip.c",
)
REQUIRED = COMPILED + GENERATED_FROM
WANTED = REQUIRED + REFERENCE
MARKER = "arch/arm64/kvm/vgic/vgic-its.c"


def cache_root() -> Path:
    env = os.environ.get("GICSIM_CACHE_DIR")
    if env:
        return Path(env).expanduser()
    xdg = os.environ.get("XDG_CACHE_HOME")
    return (Path(xdg).expanduser() if xdg else Path.home() / ".cache") / "gicsim"


@dataclass
class SourceTree:
    """Extracted kernel files plus where they came from."""

    root: Path
    identity: dict = field(default_factory=dict)

    @property
    def key(self) -> str:
        return self.root.name

    @property
    def kernel_version(self) -> str:
        return self.identity.get("kernel_version", "?")

    @property
    def label(self) -> str:
        i = self.identity
        if i.get("package"):
            return f"{i['package']} {i['version']}"
        return f"{i.get('path', self.root)} ({self.kernel_version})"

    def path(self, rel: str) -> Path:
        return self.root / rel


def _sha256(p: Path) -> str:
    return hashlib.sha256(p.read_bytes()).hexdigest()


def _kernel_version(makefile: Path) -> str:
    try:
        text = makefile.read_text(errors="replace")
    except OSError:
        return "?"
    parts = {}
    for k in ("VERSION", "PATCHLEVEL", "SUBLEVEL"):
        m = re.search(rf"^{k}\s*=\s*(\d+)", text, re.M)
        parts[k] = m.group(1) if m else "?"
    return f"{parts['VERSION']}.{parts['PATCHLEVEL']}.{parts['SUBLEVEL']}"


def _write_identity(root: Path, identity: dict) -> SourceTree:
    identity = dict(identity)
    identity["kernel_version"] = _kernel_version(root / "Makefile")
    identity["files"] = {
        rel: _sha256(root / rel) for rel in WANTED if (root / rel).is_file()
    }
    (root / "source.json").write_text(json.dumps(identity, indent=1, sort_keys=True))
    return SourceTree(root, identity)


def _load(root: Path) -> SourceTree | None:
    meta = root / "source.json"
    if not meta.is_file() or not all((root / r).is_file() for r in REQUIRED):
        return None
    try:
        return SourceTree(root, json.loads(meta.read_text()))
    except ValueError:
        return None


def _check_tree(root: Path, what: str) -> None:
    missing = [r for r in REQUIRED if not (root / r).is_file()]
    if not (root / MARKER).is_file():
        raise KernelInputError(f"{what} is not a kernel tree: no {MARKER}")
    if missing:
        raise KernelInputError(f"{what} is a kernel tree but lacks {', '.join(missing)}")


def _extract_stream(tf: tarfile.TarFile, dest: Path) -> int:
    """Extract the WANTED members of a streamed tarball whose members sit under one
    top-level directory (``linux-6.12.117/...``) or none. Returns the count."""
    wanted = set(WANTED)
    n = 0
    for m in tf:
        if not m.isfile():
            continue
        name = m.name.lstrip("./")
        rel = name if name in wanted else name.split("/", 1)[1] if "/" in name else ""
        if rel not in wanted:
            continue
        src = tf.extractfile(m)
        if src is None:
            continue
        out = dest / rel
        out.parent.mkdir(parents=True, exist_ok=True)
        with open(out, "wb") as f:
            shutil.copyfileobj(src, f)
        n += 1
        if n == len(wanted):
            break
    return n


def _need(tool: str, why: str) -> str:
    path = shutil.which(tool)
    if not path:
        raise KernelRefError(f"no {tool} on PATH ({why})")
    return path


def _apt_download(package: str, version: str, workdir: Path) -> tuple[Path, bool]:
    _need("apt-get", f"needed to download {package}; or pass a kernel tree/tarball path")
    for spec, pinned in ((f"{package}={version}", True), (package, False)):
        r = subprocess.run(
            ["apt-get", "download", spec], cwd=workdir, capture_output=True, text=True
        )
        debs = sorted(workdir.glob(f"{package}_*.deb"))
        if r.returncode == 0 and debs:
            return debs[-1], pinned
        last = (r.stderr or r.stdout).strip().splitlines()
    reason = last[-1] if last else "unknown error"
    raise KernelRefError(f"apt-get download {package} failed: {reason}")


def _deb_field(deb: Path, name: str) -> str:
    r = subprocess.run(["dpkg-deb", "-f", str(deb), name], capture_output=True, text=True)
    if r.returncode:
        raise KernelRefError(f"dpkg-deb -f {deb.name} {name} failed: {r.stderr.strip()}")
    return r.stdout.strip()


def _extract_deb(deb: Path, dest: Path) -> None:
    """``dpkg-deb --fsys-tarfile`` -> the inner ``usr/src/linux-source-X.tar.xz`` ->
    only the WANTED files, all streamed (the 1.4 GB tree never lands on disk)."""
    _need("dpkg-deb", "needed to unpack the linux-source package")
    proc = subprocess.Popen(
        ["dpkg-deb", "--fsys-tarfile", str(deb)], stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    found = False
    try:
        assert proc.stdout is not None
        with tarfile.open(fileobj=proc.stdout, mode="r|") as outer:
            for m in outer:
                if re.search(r"usr/src/linux-source-[^/]*\.tar\.(xz|gz|bz2)$", m.name):
                    inner = outer.extractfile(m)
                    assert inner is not None
                    with tarfile.open(fileobj=inner, mode="r|*") as tf:
                        _extract_stream(tf, dest)
                    found = True
                    break
    finally:
        proc.stdout.close() if proc.stdout else None
        proc.kill()
        proc.wait()
    if not found:
        raise KernelRefError(f"{deb.name} holds no usr/src/linux-source-*.tar.* tarball")


def _tree_hash(paths: dict[str, Path]) -> str:
    h = hashlib.sha256()
    for rel in sorted(paths):
        h.update(rel.encode() + b"\0" + paths[rel].read_bytes() + b"\0")
    return h.hexdigest()


def _named(t: SourceTree, src: Path) -> SourceTree:
    """A cached tree or tarball as the path the user named now (the cache is keyed by
    content: its ``source.json`` may name an earlier path of the same files)."""
    return SourceTree(t.root, {**t.identity, "path": str(src)})


def fetch(what: str, *, cache_dir: str | os.PathLike | None = None, force: bool = False,
          log=None) -> SourceTree:
    """Return the extracted sources for ``what`` (a release name or a path), fetching and
    extracting them into the cache unless already there."""
    base = (Path(cache_dir) if cache_dir else cache_root()) / "kernel"
    say = log or (lambda msg: None)
    if what in RELEASES:
        package, version = RELEASES[what]
        root = base / what
        if not force and (t := _load(root)) is not None:
            return t
        t0 = time.monotonic()
        base.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(dir=base, prefix=".fetch-") as tmp:
            tmpd = Path(tmp)
            say(f"apt-get download {package}")
            deb, pinned = _apt_download(package, version, tmpd)
            stage = tmpd / "tree"
            stage.mkdir()
            say(f"extracting {len(WANTED)} files from {deb.name}")
            _extract_deb(deb, stage)
            _check_tree(stage, f"{deb.name}")
            ident = {
                "origin": "debian-package",
                "release": what,
                "package": _deb_field(deb, "Package"),
                "version": _deb_field(deb, "Version"),
                "pinned_version": version,
                "pinned": pinned,
                "fetch_seconds": None,
            }
            if root.exists():
                shutil.rmtree(root)
            stage.rename(root)
        ident["fetch_seconds"] = round(time.monotonic() - t0, 1)
        return _write_identity(root, ident)

    src = Path(what).expanduser()
    try:
        there = what != "" and src.exists()  # "" is no path (Path("") would be ".")
        src = src.resolve()
    except OSError as e:  # ENAMETOOLONG, EACCES, ...: the name the user gave is unusable
        raise KernelInputError(f"cannot use {what!r}: {e.strerror or type(e).__name__}") from None
    if not there:
        raise KernelInputError(
            f"{what!r} is neither a release ({', '.join(RELEASES)}) nor an existing path"
        )
    base.mkdir(parents=True, exist_ok=True)
    if src.is_dir():
        _check_tree(src, str(src))
        paths = {rel: src / rel for rel in WANTED if (src / rel).is_file()}
        root = base / f"tree-{_tree_hash(paths)[:16]}"
        if not force and (t := _load(root)) is not None:
            return _named(t, src)
        with tempfile.TemporaryDirectory(dir=base, prefix=".fetch-") as tmp:
            stage = Path(tmp) / "tree"
            for rel, p in paths.items():
                (stage / rel).parent.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(p, stage / rel)
            if root.exists():
                shutil.rmtree(root)
            stage.rename(root)
        return _write_identity(root, {"origin": "tree", "path": str(src)})

    # a tarball
    if not re.search(r"\.(tar|tar\.(gz|xz|bz2)|tgz|txz)$", src.name):
        raise KernelInputError(f"{src} is not a directory or a .tar[.gz|.xz|.bz2] tarball")
    digest = hashlib.sha256()
    with open(src, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    root = base / f"tarball-{digest.hexdigest()[:16]}"
    if not force and (t := _load(root)) is not None:
        return _named(t, src)
    with tempfile.TemporaryDirectory(dir=base, prefix=".fetch-") as tmp:
        stage = Path(tmp) / "tree"
        stage.mkdir()
        try:
            with tarfile.open(src, mode="r|*") as tf:
                _extract_stream(tf, stage)
        except (tarfile.TarError, OSError, EOFError) as e:
            raise KernelInputError(f"cannot read tarball {src}: {e}") from None
        _check_tree(stage, str(src))
        if root.exists():
            shutil.rmtree(root)
        stage.rename(root)
    return _write_identity(
        root, {"origin": "tarball", "path": str(src), "sha256": digest.hexdigest()}
    )
