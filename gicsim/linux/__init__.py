"""The kernel reference: Linux's own, unmodified vGIC/ITS C files (fetched at build time,
never stored in this repository) compiled with gicsim's shims into a userspace library.

    fetch("6.12" | "6.1" | PATH) -> SourceTree      gicsim.linux.fetch
    build(tree_or_release, sanitize=False) -> Library gicsim.linux.build
    load(release) -> KernelLib; VM(lib, nr_vcpus)   gicsim.linux.lib
    run_isolated(fn, *args)                          gicsim.linux.worker
    run_stream(lib, stream)                          gicsim.linux.differential
    streams(), KNOWN                                 gicsim.linux.streams (hypothesis)
    check(source, streams=N, seed=S)                 gicsim.linux.check (gicsim kernel check)

Every failure to fetch/build/load is a :class:`KernelRefError` with a one-line message.
"""

from gicsim.linux.errors import KernelCrash, KernelInputError, KernelRefError

__all__ = ["KernelCrash", "KernelInputError", "KernelRefError"]
