"""Shared helpers for the kernel-reference tests (tests/test_linux_*.py).

A test that needs a kernel library asks for it through ``kernel(release)``: if the
sources or the compiler are unavailable it is skipped with the reason, unless
``GICSIM_REQUIRE_KERNEL=1`` is set (CI), in which case it fails.
"""

from __future__ import annotations

import os

import pytest

from gicsim.linux.errors import KernelRefError

RELEASES = ("6.12", "6.1")
REQUIRED = os.environ.get("GICSIM_REQUIRE_KERNEL") == "1"


def unavailable(reason: str):
    if REQUIRED:
        pytest.fail(f"GICSIM_REQUIRE_KERNEL=1 but the kernel reference is unavailable: {reason}")
    pytest.skip(f"kernel reference unavailable: {reason}")


def kernel(release: str = "6.12", sanitize: bool = False):
    from gicsim.linux.lib import load

    try:
        return load(release, sanitize=sanitize)
    except KernelRefError as e:
        unavailable(str(e))


def tree(release: str = "6.12"):
    from gicsim.linux.fetch import fetch

    try:
        return fetch(release)
    except KernelRefError as e:
        unavailable(str(e))
