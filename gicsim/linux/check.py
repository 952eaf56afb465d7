"""``gicsim kernel check``: N hypothesis streams through model and kernel, counted by area;
the first disagreement shrunk to a minimal stream.

    summary = check("6.12", streams=2000, seed=12, progress=print)

Streams come from :func:`gicsim.linux.streams.streams` with hypothesis seeded by ``seed``
(``@seed``; no example database), so the same seed gives the same streams on every
machine. The kernel side runs in child processes (:mod:`gicsim.linux.worker`), ``chunk``
streams each: a kernel abort in one chunk is counted as a ``crash`` disagreement (with the
stub's name) and the check goes on with the next chunk.
"""

from __future__ import annotations

import time
from typing import Any

from gicsim.linux import differential as D
from gicsim.linux.errors import KernelCrash, KernelRefError

CHUNK = 500


def _hyp():
    try:
        from hypothesis import HealthCheck, Phase, given, settings
        from hypothesis import seed as hseed
    except ImportError:
        raise KernelRefError("the differential check needs hypothesis "
                             "(pip install 'gicsim[test]')") from None
    return HealthCheck, Phase, given, settings, hseed


def _lib(source: str):
    from gicsim.linux.lib import load

    return load(source)


def _streams(skip_known: bool):
    from gicsim.linux.streams import streams, without_known

    return without_known(streams()) if skip_known else streams()


def run_chunk(source: str, seed: int, n: int, model_cls=D.ModelSide,
              skip_known: bool = False) -> dict:
    """n streams (seeded) -> counts, and the first failing stream (not shrunk)."""
    HealthCheck, Phase, given, settings, hseed = _hyp()
    k = _lib(source)
    out: dict[str, Any] = dict(streams=0, disagreements=0, by_area={}, first=None,
                               first_index=None)

    @hseed(seed)
    @settings(max_examples=n, deadline=None, database=None, phases=[Phase.generate],
              suppress_health_check=list(HealthCheck), derandomize=False)
    @given(_streams(skip_known))
    def one(stream):
        res = D.run_stream(k, stream, model_cls=model_cls)
        out["streams"] += 1
        if res.disagreements:
            out["disagreements"] += 1
            a = res.area
            out["by_area"][a] = out["by_area"].get(a, 0) + 1
            if out["first"] is None:
                out["first"], out["first_index"] = stream, out["streams"] - 1

    one()
    return out


def shrink(source: str, seed: int, n: int, area: str, model_cls=D.ModelSide,
           skip_known: bool = False) -> list:
    """Re-run the same seeded generation, failing on a disagreement of ``area``; hypothesis
    then shrinks the first such stream. Returns the minimal stream."""
    HealthCheck, Phase, given, settings, hseed = _hyp()
    k = _lib(source)
    found: list = []

    @hseed(seed)
    @settings(max_examples=n, deadline=None, database=None,
              phases=[Phase.generate, Phase.shrink], suppress_health_check=list(HealthCheck),
              derandomize=False, report_multiple_bugs=False)
    @given(_streams(skip_known))
    def one(stream):
        res = D.run_stream(k, stream, model_cls=model_cls)
        if res.disagreements and res.area == area:
            found.append(stream)
            raise AssertionError(area)

    try:
        one()
    except AssertionError:
        pass
    return D.minimise(k, found[-1], area, model_cls=model_cls) if found else []


def minimise(source: str, stream, area: str, model_cls=D.ModelSide) -> list:
    return D.minimise(_lib(source), stream, area, model_cls=model_cls)


def explain(source: str, stream, model_cls=D.ModelSide) -> dict:
    res = D.run_stream(_lib(source), stream, model_cls=model_cls)
    d = res.disagreements[0] if res.disagreements else None
    return dict(stream=[D.describe(op) for op in stream], steps=[repr(op) for op in stream],
                disagreement=d.as_dict() if d else None)


def check(source: str, streams: int = 2000, seed: int = 12, progress=None,
          chunk: int = CHUNK, isolate: bool = True, model_cls=D.ModelSide,
          skip_known: bool = False) -> dict:
    """The whole check; returns the summary (what ``--json`` prints)."""
    from gicsim.linux.build import build
    from gicsim.linux.worker import run_isolated

    built = build(source)
    say = progress or (lambda msg: None)
    call = run_isolated if isolate else (lambda fn, *a, **kw: fn(*a, **kw))
    t0 = time.monotonic()
    total: dict[str, Any] = dict(streams=0, disagreements=0, by_area={}, first=None,
                                 crashes=[])
    first_chunk = None
    for c, start in enumerate(range(0, streams, chunk)):
        n = min(chunk, streams - start)
        cseed = seed * 1000 + c
        try:
            r = call(run_chunk, source, cseed, n, model_cls=model_cls, skip_known=skip_known)
        except KernelCrash as e:
            total["streams"] += n
            total["disagreements"] += 1
            total["by_area"]["crash"] = total["by_area"].get("crash", 0) + 1
            total["crashes"].append(dict(chunk=c, seed=cseed, error=str(e)))
            say(f"[{built.release}] chunk {c} (seed {cseed}): {e}")
            continue
        total["streams"] += r["streams"]
        total["disagreements"] += r["disagreements"]
        for a, x in r["by_area"].items():
            total["by_area"][a] = total["by_area"].get(a, 0) + x
        if r["first"] is not None and first_chunk is None:
            first_chunk = (cseed, r["first_index"] + 1, r["first"])
        dt = time.monotonic() - t0
        say(f"[{built.release}] {total['streams']}/{streams} streams, "
            f"{total['disagreements']} disagreements, {total['streams'] / dt:.0f} streams/s")
    if first_chunk is not None:
        cseed, upto, raw = first_chunk
        area = None
        try:
            area = call(explain, source, raw, model_cls=model_cls)["disagreement"]["area"]
            minimal = call(shrink, source, cseed, upto, area, model_cls=model_cls,
                           skip_known=skip_known)
            if not minimal:  # hypothesis did not meet it again: shrink it by deletion
                minimal = call(minimise, source, raw, area, model_cls=model_cls)
            ex = call(explain, source, minimal, model_cls=model_cls)
        except KernelCrash as e:
            ex = dict(stream=[D.describe(op) for op in raw], steps=[repr(op) for op in raw],
                      disagreement=dict(area=area or "crash", error=str(e)))
        ex["seed"] = cseed
        total["first"] = ex
    seconds = time.monotonic() - t0
    total.update(release=built.release, source=built.tree.label,
                 kernel_version=built.tree.kernel_version, library=str(built.path), seed=seed,
                 seconds=round(seconds, 2), skip_known=skip_known,
                 streams_per_second=round(total["streams"] / seconds, 1) if seconds else None)
    return total
