"""gicsim: a discrete-event co-simulator of the KVM arm64 vGICv3 ITS and its live migration."""

__version__ = "0.1.0"


def run(src):  # noqa: ANN001, ANN201
    """Run a scenario (path, dict or Scenario) and return a Result (.summary, .trace)."""
    from gicsim.sim.simulation import run as _run

    return _run(src)
