"""The scenario's ``kernel`` key (docs/scenario-format.md) and its backend.

``Kernel`` is the model; on the ``linux`` backend it also checks what running needs and is
cheap to look at (no fetching, no building): no variant field set away from the release's
value (the kernel's own code has no such switch), and a ``tree`` that is a kernel tree (or a
tarball of one) -- so ``gicsim validate``, sweeps and hazard spaces refuse what ``gicsim run``
would. A ``tree`` path is made absolute here, relative to the current directory, so the
resolved scenario runs again from anywhere.

``with_kernel_backend`` chooses the backend from the command line (``gicsim run --backend
linux`` / ``--kernel-tree PATH``)."""

from __future__ import annotations

import os
import re
import stat
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BeforeValidator, Field, StrictBool, ValidationError, model_validator

from gicsim.kvm.releases import RELEASES, VARIANT_FIELDS
from gicsim.scenario.errors import ScenarioError, _fail
from gicsim.scenario.model import _Model, _put


def _release(v: Any) -> Any:
    """A release written as a YAML number (``6.1`` is a float) is named as such."""
    if isinstance(v, int | float) and not isinstance(v, bool):
        shown = repr(v)
        hint = f'; write it as a string: "{shown}"' if shown in RELEASES else ""
        raise ValueError(f"expected {' or '.join(map(repr, RELEASES))}, got the number "
                         f"{shown}{hint}")  # fmt: skip
    return v


class Kernel(_Model):
    """The kernel: a ``release`` (``"6.12"`` = Debian 6.12.117, the default; ``"6.1"`` =
    Debian 6.1.192) whose values fill every variant field, and variant fields given here as
    overrides on top of it (documented in ``gicsim.kvm.releases.KernelProfile``). The first
    five fields have the same value in both releases; the resolved scenario spells every
    field out."""

    release: Annotated[Literal["6.12", "6.1"], BeforeValidator(_release)] = "6.12"
    pending_sync_on_ctlr: StrictBool = False
    pending_sync_clears_ram: StrictBool = True
    clear_on_unmap: StrictBool = True
    restore_scan: Literal["full", "head_pointer"] = "full"
    translation_cache: Literal["correct", "stale"] = "correct"
    mapc_checks_rdbase_first: StrictBool | None = None
    save_ite_no_collection: Literal["zero", "oops"] | None = None
    baser_write_frees_on_change: StrictBool | None = None
    #: who runs the kernel side: the Python model (None: the default) or the release's own
    #: code as a library (``linux``, gicsim.linux.backend); ``tree``: a kernel tree instead
    backend: Literal["python", "linux"] | None = None
    tree: Annotated[str, Field(min_length=1)] | None = None

    @model_validator(mode="after")
    def _release_defaults(self) -> Kernel:
        rel = RELEASES[self.release]
        _put(self, **{k: rel[k] for k in ("mapc_checks_rdbase_first", "save_ite_no_collection",
                                                   "baser_write_frees_on_change")
                      if getattr(self, k) is None})  # fmt: skip
        problems: list[tuple[tuple[Any, ...], str, bool]] = []
        if self.tree is not None:
            try:
                if self.backend == "python":
                    raise ValueError("a tree runs on the linux backend, but backend is python "
                                     "(drop one of them)")  # fmt: skip
                _put(self, tree=_checked_tree(self.tree))
            except ValueError as e:
                problems.append((("tree",), str(e), False))
        if (self.backend or ("linux" if self.tree else "python")) == "linux":
            problems += [((f,), f"overrides release {self.release}'s behaviour; the linux "
                          "backend runs the kernel's own code (drop the override, or use "
                          "backend: python)", True)
                         for f in VARIANT_FIELDS if getattr(self, f) != rel[f]]  # fmt: skip
        if problems:
            _fail(*problems)
        return self


_TARBALL = re.compile(r"\.(tar|tar\.(gz|xz|bz2)|tgz|txz)$")  # what gicsim.linux.fetch unpacks


def _checked_tree(tree: str) -> str:
    """``tree`` as the linux backend will read it (absolute), or ValueError: what
    ``gicsim kernel fetch`` refuses, found without reading more than the tree's file list."""
    from gicsim.linux import fetch as F  # noqa: N812 - only when a tree is given

    if tree in F.RELEASES:
        return tree  # fetch reads a release name as the release
    shown = repr(tree) if len(tree) <= 160 else f"{tree[:80]!r}... ({len(tree):,} characters)"
    if "\0" in tree:
        raise ValueError(f"{shown} contains a NUL character, which no path has")
    try:
        path = Path(os.path.expanduser(tree)).absolute()
        st = os.stat(path)
        if stat.S_ISDIR(st.st_mode):
            missing = [r for r in F.REQUIRED if not os.path.isfile(path / r)]
            if F.MARKER in missing:
                raise ValueError(f"{shown} is not a kernel tree: no {F.MARKER}")
            if missing:
                raise ValueError(f"{shown} is a kernel tree but lacks {', '.join(missing)}")
        elif not stat.S_ISREG(st.st_mode) or not _TARBALL.search(path.name):
            raise ValueError(f"{shown} is not a directory or a .tar[.gz|.xz|.bz2] tarball "
                             "of a kernel tree")  # fmt: skip
    except FileNotFoundError:
        raise ValueError(f"{shown} is neither a release ({', '.join(F.RELEASES)}) nor an "
                         "existing path") from None  # fmt: skip
    except OSError as e:
        raise ValueError(f"cannot use {shown}: {e.strerror or type(e).__name__}") from None
    return str(path.resolve())


def with_kernel_backend(sc: Any, backend: str | None = None, tree: str | None = None) -> Any:
    """``sc`` (a ``Scenario``; not imported: the schema imports this module) run by ``backend`` (``python`` or ``linux``) and/or on the kernel ``tree``
    (a path: implies ``linux``). Neither given: ``sc`` unchanged. The kernel is checked as
    the loader checks it; a problem is a ScenarioError of one line each."""
    if backend is None and tree is None:
        return sc
    k = sc.kernel.model_dump()
    if tree is not None:
        k.update(tree=tree, backend=backend or "linux")
    else:
        k["backend"] = backend
        if backend == "python":
            k.pop("tree", None)  # --backend python: the Python model, whatever the tree
    try:
        kernel = Kernel.model_validate(k)
    except ValidationError as e:
        lines = []
        for err in e.errors():
            field = err["loc"][0] if err["loc"] else ""
            msg = (err.get("ctx") or {}).get("message") or err.get("msg")
            opt = "--kernel-tree" if field == "tree" else f"kernel.{field}"
            lines.append(f"{sc.name}: {opt}{':' if field == 'tree' else ''} {msg}")
        raise ScenarioError(lines) from None
    return sc.model_copy(update={"kernel": kernel})


def kernel_line(k: dict[str, str]) -> str:
    """The one line ``gicsim run`` prints about the kernel side (summary.json ``kernel``)."""
    if k.get("backend") == "python":
        return f"kernel: Python model of {k.get('release')}"
    return f"kernel: linux backend, {k.get('release')} ({k.get('source')})"
