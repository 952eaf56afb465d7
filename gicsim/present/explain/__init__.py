"""``gicsim explain``: a narrated, time-ordered account of a run, in plain words.

Everything here *describes* what the trace shows; nothing decides an outcome. Which raises
were lost, spurious or misrouted comes from the oracles (:func:`gicsim.judge.oracles.judge`, the
same verdict as ``summary.json``); this module then gathers, for each of them, the trace facts
around it — when and where it was raised and accepted, whether that was after
``SAVE_PENDING_TABLES`` had written the pending tables, what the destination's state held at
resume, which commands the destination replayed, which steps ran in a non-default order,
which kernel variant differs from mainline, which KVM call failed with which errno — and
prints them as a causal chain, grouping LPIs whose chains read the same.

The model knowledge used to say *why* (e.g. "a ``GITS_CBASER`` write resets ``CREADR``")
is the kernel behaviour of docs/01-its-and-lpis.md to docs/05-pending-state.md, quoted only when the trace shows the situation it is
about.
"""

# Modules, bottom to top: ``words`` (times, ID ranges, step and call descriptions),
# ``evidence`` (a trace as the cause rules read it; ``Cause``), ``rules`` (one function per
# cause rule over mechanisms), ``context`` (the frames read from a run), ``block`` (the
# verdict block and the cited causes), ``outcomes`` (per-LPI fact chains), ``narrative``
# (the text ``explain`` prints), ``verdict`` (the outcome as data, for reports and hazards).
from gicsim.present.explain.context import Ctx, context
from gicsim.present.explain.narrative import explain
from gicsim.present.explain.words import T, counts, ids, plural

__all__ = ["Ctx", "T", "context", "counts", "explain", "ids", "plural"]
