"""Compile the kernel's vGIC/ITS files + gicsim's shims and harness into a shared library.

The library lands in the source tree's cache directory, under a name keyed by a hash of
everything that goes into it (kernel files, shims, harness, flags, compiler version), so
a second ``build()`` is a stat() and a rebuild happens exactly when an input changes.

Three kinds of input headers are *generated* here, never committed:

* forwarding headers (``linux/list.h`` -> ``kref_base.h``, ...) so the kernel's own
  ``#include`` lines resolve to the shims;
* ``kref_sysreg.h``: the ``#define ICH_*`` lines of the tree's ``asm/sysreg.h``;
* ``kref_gen_uapi.h``: the KVM ABI structs/constants from the tree's uapi headers.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import subprocess
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from gicsim.linux.errors import KernelInputError, KernelRefError
from gicsim.linux.fetch import SourceTree, fetch

HERE = Path(__file__).resolve().parent
SHIM = HERE / "shim"
HARNESS = HERE / "harness"

#: kernel translation units compiled as they are (vgic-its.c is compiled through
#: harness/its_wrap.c, which #includes it to reach its static functions)
KERNEL_UNITS = (
    "arch/arm64/kvm/vgic/vgic.c",
    "arch/arm64/kvm/vgic/vgic-mmio.c",
    "arch/arm64/kvm/vgic/vgic-mmio-v3.c",
    "arch/arm64/kvm/vgic/vgic-v3.c",
    "arch/arm64/kvm/vgic/vgic-init.c",
    "arch/arm64/kvm/vgic/vgic-kvm-device.c",
    "lib/list_sort.c",
)
OWN_UNITS = (SHIM / "kref_runtime.c", HARNESS / "its_wrap.c", HARNESS / "harness.c")

#: the kernel headers reachable by the compiled files (nothing else of the tree is on
#: the include path: a kernel header that is not forwarded to a shim is an error)
KERNEL_HEADERS = (
    "include/kvm/arm_vgic.h",
    "include/kvm/iodev.h",
    "include/linux/irqchip/arm-gic-v3.h",
    "include/linux/irqchip/arm-gic-v4.h",
    "include/linux/irqchip/arm-gic-common.h",
    "include/linux/irqchip/arm-vgic-info.h",
)

#: forwarding headers: kernel header name -> shim header
FORWARD = {
    **{f"linux/{h}.h": "kref_base.h" for h in (
        "bitfield", "bitops", "bits", "bsearch", "bug", "compiler", "cpu", "export",
        "interrupt", "ioport", "irq", "irqdomain", "irqreturn", "jump_label", "kernel",
        "kref", "kstrtox", "kvm_types", "list", "list_sort", "mutex", "nospec", "spinlock",
        "static_key", "string", "types", "uaccess", "xarray")},
    "linux/kvm.h": "kref_uapi.h",
    "linux/kvm_host.h": "kref_kvm.h",
    **{f"asm/{h}.h": "kref_kvm.h" for h in (
        "cputype", "kvm_arm", "kvm_asm", "kvm_emulate", "kvm_hyp", "kvm_mmu")},
    "asm/arch_gicv3.h": "kref_base.h",
    "kvm/arm_arch_timer.h": "kref_base.h",
}

#: flags like the kernel's own (-fno-strict-aliasing/-overflow,
#: -fno-delete-null-pointer-checks), and errors for the mistakes a shim can hide
CFLAGS = (
    "-O1", "-g", "-fPIC", "-std=gnu11", "-Wall",
    "-Wno-unused-function", "-Wno-unused-variable", "-Wno-unused-but-set-variable",
    "-Wno-maybe-uninitialized", "-Wno-address-of-packed-member",
    "-Werror=implicit-function-declaration", "-Werror=int-conversion",
    "-Werror=incompatible-pointer-types", "-Werror=return-type",
    "-fno-strict-aliasing", "-fno-strict-overflow", "-fno-delete-null-pointer-checks",
    "-fvisibility=default",
)
SAN_FLAGS = ("-fsanitize=address,undefined", "-fno-sanitize-recover=undefined",
             "-fno-omit-frame-pointer")
LIB_NAME = "libkref.so"


@dataclass
class Library:
    """A built library and what it was built from."""

    path: Path
    tree: SourceTree
    sanitize: bool
    key: str
    seconds: float  # build time (0.0 if reused)
    reused: bool

    @property
    def release(self) -> str:
        return self.tree.identity.get("release") or self.tree.kernel_version

    def info(self) -> dict:
        return {
            "library": str(self.path), "sanitize": self.sanitize, "key": self.key,
            "kernel_version": self.tree.kernel_version, "source": self.tree.label,
            "build_seconds": round(self.seconds, 2), "reused": self.reused,
        }


def compiler() -> str:
    cc = os.environ.get("CC", "cc")
    path = shutil.which(cc)
    if not path:
        raise KernelRefError(f"no C compiler: {cc!r} is not on PATH (install gcc, or set CC)")
    return path


def _cc_version(cc: str) -> str:
    r = subprocess.run([cc, "--version"], capture_output=True, text=True)
    return (r.stdout.splitlines() or ["?"])[0]


def sanitizer_runtime(cc: str | None = None) -> list[str]:
    """Paths of libasan/libubsan for LD_PRELOAD when loading the sanitised library into
    an uninstrumented Python (ASan must be the first DSO loaded)."""
    cc = cc or compiler()
    out = []
    for name in ("libasan.so", "libubsan.so"):
        r = subprocess.run([cc, f"-print-file-name={name}"], capture_output=True, text=True)
        p = r.stdout.strip()
        if r.returncode == 0 and os.path.isabs(p) and os.path.exists(p):
            out.append(os.path.realpath(p))
    if not out:
        raise KernelRefError(f"{cc} has no libasan.so (install libasan for the ASan build)")
    return out


def _gen_sysreg(tree: SourceTree) -> str:
    src = tree.path("arch/arm64/include/asm/sysreg.h").read_text()
    lines = [ln for ln in src.splitlines()
             if re.match(r"#define\s+ICH_", ln) and not re.search(r"sys_reg|SYS_", ln)]
    if not lines:
        raise KernelRefError("asm/sysreg.h has no ICH_* definitions: not an arm64 tree?")
    return (f"/* generated by gicsim/linux/build.py from {tree.label}: "
            "arch/arm64/include/asm/sysreg.h, the ICH_* lines */\n" + "\n".join(lines) + "\n")


def _defines(text: str, pattern: str) -> list[str]:
    """#define lines (with their backslash continuations) whose name matches pattern."""
    out, lines, i = [], text.splitlines(), 0
    while i < len(lines):
        ln = lines[i]
        if re.match(rf"\s*#\s*define\s+({pattern})", ln):
            block = [ln]
            while block[-1].rstrip().endswith("\\") and i + 1 < len(lines):
                i += 1
                block.append(lines[i])
            out.append("\n".join(block))
        i += 1
    return out


def _block(text: str, head: str) -> str:
    m = re.search(rf"^{re.escape(head)}.*?^}};", text, re.M | re.S)
    if not m:
        raise KernelRefError(f"uapi header lacks {head!r}")
    return m.group(0)


def _gen_uapi(tree: SourceTree) -> str:
    kvm = tree.path("include/uapi/linux/kvm.h")
    arm = tree.path("arch/arm64/include/uapi/asm/kvm.h").read_text()
    if not kvm.is_file():
        raise KernelRefError(f"{tree.root} lacks include/uapi/linux/kvm.h")
    kvm_text = kvm.read_text()
    parts = [f"/* generated by gicsim/linux/build.py from {tree.label}: "
             "include/uapi/linux/kvm.h, arch/arm64/include/uapi/asm/kvm.h */"]
    parts += [_block(kvm_text, "struct kvm_msi {"), _block(kvm_text, "struct kvm_device_attr {"),
              _block(kvm_text, "struct kvm_arm_device_addr {"),
              _block(kvm_text, "enum kvm_device_type {")]
    parts += _defines(kvm_text, r"KVM_MSI_VALID_DEVID\b")
    parts += _defines(arm, r"KVM_ARM_DEVICE_|KVM_VGIC_|KVM_DEV_ARM_|VGIC_LEVEL_INFO_")
    return "\n".join(parts) + "\n"


def _inputs(tree: SourceTree) -> list[Path]:
    own = sorted(p for d in (SHIM, HARNESS) for p in d.rglob("*") if p.is_file()
                 and p.suffix in (".c", ".h"))
    kern = [tree.path(r) for r in (*KERNEL_UNITS, *KERNEL_HEADERS,
                                   "arch/arm64/kvm/vgic/vgic-its.c",
                                   "arch/arm64/kvm/vgic/vgic.h",
                                   "arch/arm64/kvm/vgic/vgic-mmio.h",
                                   "arch/arm64/include/asm/sysreg.h",
                                   "arch/arm64/include/uapi/asm/kvm.h",
                                   "include/uapi/linux/kvm.h")]
    return own + kern


def build_key(tree: SourceTree, sanitize: bool = False, cc: str | None = None) -> str:
    cc = cc or compiler()
    h = hashlib.sha256()
    for p in _inputs(tree):
        h.update(str(p.name).encode() + b"\0")
        h.update(p.read_bytes() if p.is_file() else b"<missing>")
    h.update(repr((CFLAGS, SAN_FLAGS if sanitize else (), FORWARD, _cc_version(cc))).encode())
    h.update(Path(__file__).read_bytes())
    return h.hexdigest()[:16]


def _first_error(log: str) -> str:
    for ln in log.splitlines():
        if re.search(r"\berror\b", ln):
            return ln.strip()
    lines = [ln for ln in log.splitlines() if ln.strip()]
    return lines[0].strip() if lines else "unknown error"


def _build_failed(tree: SourceTree, message: str) -> KernelRefError:
    """A failed compile or link. Of a tree or tarball the user named: that input does not
    compile (:class:`KernelInputError`, exit 2), told with the user's own paths instead of
    the cached copy's; of a release package: an environment error (exit 3)."""
    origin, user = tree.identity.get("origin"), tree.identity.get("path")
    if origin not in ("tree", "tarball") or not user:
        return KernelRefError(message)
    root = str(tree.root).rstrip("/") + "/"
    cited = message.split(" [log: ")
    # a tree: its own file; a tarball: the member's path inside it (the label names the tarball)
    cited[0] = cited[0].replace(root, user.rstrip("/") + "/" if origin == "tree" else "")
    return KernelInputError(" [log: ".join(cited))


def build(source: SourceTree | str = "6.12", *, sanitize: bool = False, force: bool = False,
          jobs: int | None = None, cache_dir: str | os.PathLike | None = None) -> Library:
    """Build (or reuse) the library for ``source``: a SourceTree, a release name or a path
    (fetched first if needed). ``sanitize=True`` builds the ASan+UBSan variant."""
    tree = source if isinstance(source, SourceTree) else fetch(source, cache_dir=cache_dir)
    cc = compiler()
    key = build_key(tree, sanitize, cc)
    out = tree.root / f"build-{'asan-' if sanitize else ''}{key}"
    lib = out / LIB_NAME
    if lib.is_file() and not force:
        return Library(lib, tree, sanitize, key, 0.0, True)

    t0 = time.monotonic()
    stage = out.with_name(out.name + ".tmp")
    shutil.rmtree(stage, ignore_errors=True)
    (stage / "obj").mkdir(parents=True)
    fwd = stage / "fwd"
    for name, target in FORWARD.items():
        p = fwd / name
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(f'/* generated: forwards <{name}> to the gicsim shim */\n'
                     f'#include "{target}"\n')
    # glibc's <errno.h> includes <linux/errno.h>: that one must reach the system's
    (fwd / "linux" / "errno.h").write_text("#include_next <linux/errno.h>\n")
    gen = stage / "gen"
    gen.mkdir()
    (gen / "kref_sysreg.h").write_text(_gen_sysreg(tree))
    (gen / "kref_gen_uapi.h").write_text(_gen_uapi(tree))
    kinc = stage / "kinc"
    for rel in KERNEL_HEADERS:
        dst = kinc / rel.removeprefix("include/")
        dst.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(tree.path(rel), dst)

    vgic_dir = tree.path("arch/arm64/kvm/vgic")
    flags = [*CFLAGS, *(SAN_FLAGS if sanitize else ()),
             f"-I{fwd}", f"-I{SHIM}", f"-I{gen}", f"-I{kinc}", f"-I{vgic_dir}", f"-I{HARNESS}",
             "-include", "kref_base.h"]
    units = [tree.path(r) for r in KERNEL_UNITS] + list(OWN_UNITS)

    def compile_one(src: Path) -> tuple[Path, int, str]:
        obj = stage / "obj" / (src.stem + ".o")
        r = subprocess.run([cc, *flags, "-c", str(src), "-o", str(obj)],
                           capture_output=True, text=True)
        return src, r.returncode, r.stderr

    with ThreadPoolExecutor(max_workers=jobs or min(8, os.cpu_count() or 2)) as ex:
        results = list(ex.map(compile_one, units))
    log = "".join(f"== {s}\n{err}" for s, _, err in results)
    (stage / "build.log").write_text(log)
    failed = [(s, err) for s, rc, err in results if rc]
    if failed:
        src, err = failed[0]
        raise _build_failed(tree, f"build of {src.name} ({tree.label}) failed: {_first_error(err)} "
                                  f"[log: {stage / 'build.log'}]")  # fmt: skip
    objs = sorted(str(p) for p in (stage / "obj").glob("*.o"))
    link = [cc, "-shared", "-Wl,--no-undefined", "-Wl,-Bsymbolic",
            *(SAN_FLAGS[:1] if sanitize else ()), "-o", str(stage / LIB_NAME), *objs]
    r = subprocess.run(link, capture_output=True, text=True)
    if r.returncode:
        raise _build_failed(tree, f"link of {LIB_NAME} ({tree.label}) failed: {_first_error(r.stderr)}")
    seconds = time.monotonic() - t0
    (stage / "build.json").write_text(json.dumps({
        "key": key, "sanitize": sanitize, "cc": _cc_version(cc), "cflags": flags,
        "units": [str(u) for u in units], "source": tree.identity.get("package") or
        tree.identity.get("path"), "version": tree.identity.get("version"),
        "kernel_version": tree.kernel_version, "seconds": round(seconds, 2),
    }, indent=1))
    if out.exists():
        shutil.rmtree(out)
    stage.rename(out)
    return Library(out / LIB_NAME, tree, sanitize, key, seconds, False)
