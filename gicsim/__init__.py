"""gicsim: a discrete-event co-simulator of the KVM arm64 vGICv3 ITS and its live migration."""

__version__ = "0.1.0"


def run(src, *, backend=None, kernel_tree=None):  # noqa: ANN001, ANN201
    """Run a scenario and return a Result (``.summary``, ``.trace``).

    ``src``: the path of a scenario file (``str`` or ``os.PathLike``), a dict in the YAML's
    shape, or a loaded ``Scenario``; anything else is a TypeError. ``backend`` (``"python"``
    or ``"linux"``) and ``kernel_tree`` (a kernel tree or tarball: its own code runs the
    kernel side) are ``gicsim run``'s ``--backend`` / ``--kernel-tree``; a bad choice is a
    ScenarioError, like a bad scenario."""
    import os

    from gicsim.scenario import Scenario
    from gicsim.sim.simulation import as_scenario
    from gicsim.sim.simulation import run as _run

    if isinstance(src, bool) or not isinstance(src, str | os.PathLike | dict | Scenario):
        raise TypeError(f"gicsim.run: expected a path, a dict or a Scenario, got {type(src).__name__}")
    for name, value in (("backend", backend), ("kernel_tree", kernel_tree)):
        if value is not None and not isinstance(value, str | os.PathLike):
            raise TypeError(f"gicsim.run: {name} must be a string, got {type(value).__name__}")
    if backend not in (None, "python", "linux"):
        raise ValueError(f"gicsim.run: backend must be 'python' or 'linux', got {backend!r}")
    if kernel_tree is not None and backend == "python":
        raise ValueError("gicsim.run: kernel_tree runs the kernel side on that tree's own code, "
                         "backend='python' on the Python model: give one of them")
    sc = as_scenario(os.fspath(src) if isinstance(src, os.PathLike) else src)
    if backend is not None or kernel_tree is not None:
        from gicsim.scenario.kernel_backend import with_kernel_backend

        tree = os.fspath(kernel_tree) if kernel_tree is not None else None
        sc = with_kernel_backend(sc, backend, tree)
    return _run(sc)
