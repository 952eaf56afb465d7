"""Choosing the kernel backend of a loaded scenario from the command line
(``gicsim run --backend linux`` / ``--kernel-tree PATH``): the scenario's ``kernel`` key
gains ``backend`` / ``tree`` (docs/scenario-format.md), everything else stays as loaded."""

from __future__ import annotations

from pathlib import Path

from gicsim.scenario.schema import Scenario


def with_kernel_backend(
    sc: Scenario, backend: str | None = None, tree: str | None = None
) -> Scenario:
    """``sc`` run by ``backend`` (``python`` or ``linux``) and/or on the kernel ``tree``
    (a path: implies ``linux``). Neither given: ``sc`` unchanged."""
    if backend is None and tree is None:
        return sc
    upd: dict[str, object] = {}
    if tree is not None:
        upd["tree"] = str(Path(tree).expanduser())
        upd["backend"] = backend or "linux"
    else:
        upd["backend"] = backend
    return sc.model_copy(update={"kernel": sc.kernel.model_copy(update=upd)})


def kernel_line(k: dict[str, str]) -> str:
    """The one line ``gicsim run`` prints about the kernel side (summary.json ``kernel``)."""
    if k.get("backend") == "python":
        return f"kernel: Python model of {k.get('release')}"
    return f"kernel: linux backend, {k.get('release')} ({k.get('source')})"
