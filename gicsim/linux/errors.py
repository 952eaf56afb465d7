"""The one exception type of the kernel reference."""

from __future__ import annotations


class KernelRefError(Exception):
    """Something the kernel reference could not do, with a one-line reason.

    Raised for: no C compiler, no ``apt-get``/no package, a tree that is not a kernel,
    a build failure (first compiler error line), a crashed worker process.
    """

    def __init__(self, message: str) -> None:
        # keep it one line: callers print it as-is (CLI, pytest skip reasons)
        super().__init__(" ".join(str(message).split()))


class KernelCrash(KernelRefError):
    """The kernel library aborted (e.g. an aborting stub or ``BUG_ON``) in a worker process."""

    def __init__(self, message: str, signal: int | None = None, stderr: str = "") -> None:
        super().__init__(message)
        self.signal = signal
        self.stderr = stderr


class KernelInputError(KernelRefError):
    """The user named something that is not a kernel source: not a release, no such path,
    not a kernel tree, an unreadable tarball (the CLI exits 2; other errors exit 3)."""
