"""Run kernel-library work in a child process, so that a kernel abort (an aborting stub,
``BUG_ON``, a lock-tracking error, a segfault) becomes a :class:`KernelCrash` in the
caller instead of killing it.

    from gicsim.linux.worker import run_isolated
    result = run_isolated(fn, arg1, arg2)        # fn(arg1, arg2) in a child

``fn`` and its arguments/result must be picklable (a module-level function). The child's
C-level stderr (kernel WARNINGs, the stub's name) is captured; on a crash its tail is in
the exception message and in ``exc.stderr``. ``fork`` is used where available (cheap, the
parent's loaded library is inherited); ``spawn`` can be forced with ``method="spawn"``.
"""

from __future__ import annotations

import faulthandler
import multiprocessing as mp
import os
import signal
import tempfile
import traceback

from gicsim.linux.errors import KernelCrash, KernelRefError


def _child(conn, fn, args, kwargs, errpath):
    faulthandler.disable()  # an expected abort must not dump a traceback on the parent's tty
    fd = os.open(errpath, os.O_WRONLY | os.O_TRUNC)
    os.dup2(fd, 2)
    os.close(fd)
    try:
        res = ("ok", fn(*args, **kwargs))
    except BaseException as e:  # reported to the parent, which re-raises
        res = ("exc", (type(e).__name__, str(e), traceback.format_exc()))
    try:
        conn.send(res)
    except Exception as e:  # unpicklable result
        conn.send(("exc", ("PicklingError", str(e), "")))
    conn.close()
    os._exit(0)


def run_isolated_ex(fn, *args, timeout: float = 600.0, method: str | None = None,
                    **kwargs):
    """Like :func:`run_isolated` but returns ``(result, child_stderr)``."""
    ctx = mp.get_context(method or ("fork" if "fork" in mp.get_all_start_methods() else "spawn"))
    with tempfile.NamedTemporaryFile(prefix="gicsim-kref-", suffix=".stderr",
                                     delete=False) as tf:
        errpath = tf.name
    parent, child = ctx.Pipe(duplex=False)
    proc = ctx.Process(target=_child, args=(child, fn, args, kwargs, errpath), daemon=True)
    try:
        proc.start()
        child.close()
        res = None
        if parent.poll(timeout):
            try:
                res = parent.recv()
            except EOFError:
                res = None
        proc.join(5 if res is not None else timeout)
        if proc.is_alive():
            proc.kill()
            proc.join()
            if res is None:
                raise KernelCrash(f"kernel worker timed out after {timeout:.0f} s", None,
                                  _read(errpath))
        err = _read(errpath)
        if res is None:
            code = proc.exitcode
            sig = -code if code is not None and code < 0 else None
            name = signal.Signals(sig).name if sig else f"exit code {code}"
            tail = " | ".join(ln for ln in err.strip().splitlines()[-3:])
            raise KernelCrash(f"kernel worker died ({name}): {tail or 'no output'}", sig, err)
        kind, payload = res
        if kind == "exc":
            name, msg, tb = payload
            raise KernelRefError(f"{name} in kernel worker: {msg}") from RuntimeError(tb)
        return payload, err
    finally:
        parent.close()
        try:
            os.unlink(errpath)
        except OSError:
            pass


def run_isolated(fn, *args, timeout: float = 600.0, method: str | None = None, **kwargs):
    """Run ``fn(*args, **kwargs)`` in a child process and return its result."""
    return run_isolated_ex(fn, *args, timeout=timeout, method=method, **kwargs)[0]


def _read(path: str) -> str:
    try:
        with open(path, errors="replace") as f:
            return f.read()
    except OSError:
        return ""
