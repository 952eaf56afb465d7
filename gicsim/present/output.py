"""Writing outputs safely: the one writer every command uses.

* Files: :func:`write_bytes_atomic` / :func:`atomic_file` create a temporary file with an
  unpredictable name (``O_CREAT | O_EXCL | O_NOFOLLOW``) beside the target, write it, then
  ``rename`` it over the target: readers see the old file or the new one, never half of one,
  and a symlink planted at the temporary or the final name is never followed (the rename
  replaces the link itself).
* Directories of results: :class:`AtomicDir` writes the new set into a fresh temporary
  directory beside the target and switches it in with one atomic ``renameat2(RENAME_EXCHANGE)``
  (the old set is then removed). At every instant the target is the old complete set or the
  new complete set, whatever kills the process when (see :meth:`AtomicDir.commit`).
* Report directories the user names: :func:`write_report_dir` writes into the directory,
  each file atomically, and only ever replaces files gicsim wrote there (listed in a small
  manifest, :data:`MANIFEST`); a non-empty directory that is not a gicsim report is refused.
* Permissions follow the umask, as with ``open()``/``mkdir``: files ``0666 & ~umask``,
  directories ``0777 & ~umask``.
* Temporary names are ``.<name>.tmp-<pid>-<16 hex>``; the ones a killed process left behind
  (its pid is gone, or they are over a day old, and they belong to this user) are removed by
  :func:`clean_stale_temps`, which :class:`AtomicDir` and :func:`write_report_dir` call.
* :func:`printable` makes text that came from the user safe to print in a one-line message
  (no terminal control characters, bounded length).
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import errno
import io
import json
import os
import re
import secrets
import shutil
import stat
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from pathlib import Path
from typing import IO, Any

from ruamel.yaml import YAML

#: The file that marks a directory as a gicsim report and lists the files gicsim wrote in it.
MANIFEST = ".gicsim-report.json"
MANIFEST_MAX_BYTES = 1 << 20
#: Temporary entries older than this are stale even if their pid is alive (pid reuse).
STALE_AGE_S = 24 * 3600

_TMP_RE = re.compile(r"^\..+\.(tmp|old)-(\d+)-[0-9a-f]{16}$")


def is_temp_name(name: str) -> bool:
    """Whether ``name`` is one of this writer's temporary names."""
    return bool(_TMP_RE.match(name))


class OutputError(Exception):
    """The output location is not acceptable (input error: the user chose it); ``lines``
    holds one message per problem."""

    def __init__(self, lines: list[str]) -> None:
        super().__init__("\n".join(lines))
        self.lines = list(lines)


# ======================================================================= printable text ====
def _escape(ch: str) -> str:
    if ch.isprintable():
        return ch
    return repr(ch)[1:-1]  # '\x1b', '\n', '\u202e', '\udc80': visible, never interpreted


def printable(s: Any, limit: int | None = 60) -> str:
    """``s`` as text safe for a one-line message: every control, format (bidi), surrogate or
    other non-printable character escaped as Python does (``\\x1b``, ``\\n``, ``\\u202e``),
    and cut to ``limit`` characters (the escapes counted) followed by ``…``."""
    s = s if isinstance(s, str) else str(s)
    if s.isprintable() and (limit is None or len(s) <= limit):
        return s  # nearly every string: no per-character pass
    out: list[str] = []
    n = 0
    for ch in s:
        e = _escape(ch)
        if limit is not None and n + len(e) > limit:
            out.append("…")
            break
        out.append(e)
        n += len(e)
    return "".join(out)


def terminal_safe(text: str) -> str:
    """Multi-line text for a terminal: like :func:`printable` line by line (no length cap),
    keeping newlines and tabs."""
    return "\n".join(
        "\t".join(printable(part, None) for part in line.split("\t")) for line in text.split("\n")
    )


# ================================================================================ YAML ====
def dump_yaml(data: Any) -> str:
    y = YAML()
    y.default_flow_style = None
    buf = io.StringIO()
    y.dump(data, buf)
    return buf.getvalue()


# ===================================================================== low-level pieces ====
_O_DIR = os.O_RDONLY | os.O_DIRECTORY | getattr(os, "O_CLOEXEC", 0)
_O_TMP = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_CLOEXEC", 0)


def _tmp_name(base: str, kind: str = "tmp") -> str:
    # the base is cut so that the whole name stays well under NAME_MAX (255)
    return f".{base[:120]}.{kind}-{os.getpid()}-{secrets.token_hex(8)}"


@contextlib.contextmanager
def _dir_fd(path: Path, create: bool = True) -> Iterator[int]:
    """An fd on directory ``path`` (made, with parents, if missing and ``create``)."""
    if create:
        path.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, _O_DIR)
    try:
        yield fd
    finally:
        os.close(fd)


def _check_component(name: str) -> None:
    if not name or name in (".", "..") or "/" in name or "\0" in name:
        raise ValueError(f"unsafe file name {printable(name)!r}")


def _create_temp(dfd: int, name: str) -> tuple[int, str]:
    """A new temporary file beside ``name`` in ``dfd``: (its fd, its name)."""
    _check_component(name)
    for _ in range(100):
        tmp = _tmp_name(name)
        try:
            return os.open(tmp, _O_TMP, 0o666, dir_fd=dfd), tmp
        except FileExistsError:  # pragma: no cover - 64 random bits
            continue
    raise FileExistsError(errno.EEXIST, "cannot create a temporary file", name)  # pragma: no cover


@contextlib.contextmanager
def _atomic_in(dfd: int, name: str) -> Iterator[IO[bytes]]:
    """Write ``name`` inside directory fd ``dfd`` atomically (temp file, then rename)."""
    fd, tmp = _create_temp(dfd, name)
    try:
        with os.fdopen(fd, "wb") as f:
            yield f
        os.replace(tmp, name, src_dir_fd=dfd, dst_dir_fd=dfd)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp, dir_fd=dfd)
        raise


# ========================================================================= single files ====
@contextlib.contextmanager
def atomic_file(path: str | os.PathLike[str]) -> Iterator[IO[bytes]]:
    """``with atomic_file(p) as f: f.write(...)`` (or ``df.to_parquet(f)``): ``p`` appears
    complete or not at all; the parent directories are made if missing."""
    path = Path(path)
    with _dir_fd(path.parent) as dfd, _atomic_in(dfd, path.name) as f:
        yield f


def write_bytes_atomic(path: str | os.PathLike[str], data: bytes) -> None:
    """Temporary file beside ``path``, then rename: readers never see half a file."""
    with atomic_file(path) as f:
        f.write(data)


def write_text_atomic(path: str | os.PathLike[str], text: str) -> None:
    write_bytes_atomic(path, text.encode())


def write_json_atomic(path: str | os.PathLike[str], obj: Any) -> None:
    write_text_atomic(path, json.dumps(obj, indent=2, default=str) + "\n")


# ========================================================================== stale temps ====
def _pid_alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    except OverflowError:
        return False
    return True


def _remove_entry(dfd: int, name: str) -> None:
    """Remove ``name`` in ``dfd``: a directory with its contents, anything else (a symlink
    too) by unlinking it; never follows a symlink."""
    try:
        st = os.stat(name, dir_fd=dfd, follow_symlinks=False)
    except FileNotFoundError:
        return
    if stat.S_ISDIR(st.st_mode):
        shutil.rmtree(name, dir_fd=dfd, ignore_errors=True)
    else:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(name, dir_fd=dfd)


def _stale(dfd: int, name: str, now: float) -> bool:
    m = _TMP_RE.match(name)
    if not m:
        return False
    try:
        st = os.stat(name, dir_fd=dfd, follow_symlinks=False)
    except FileNotFoundError:
        return False
    if st.st_uid != os.getuid():
        return False  # somebody else's: not ours to touch
    return not _pid_alive(int(m.group(2))) or now - st.st_mtime > STALE_AGE_S


def clean_stale_temps(directory: str | os.PathLike[str]) -> list[str]:
    """Remove the temporary entries (``.<name>.tmp-<pid>-<hex>``) a killed gicsim process
    left in ``directory``: only this user's, and only when their process is gone (or they
    are over :data:`STALE_AGE_S` old). Returns the names removed. A directory of results a
    kill left half-switched (the fallback without ``RENAME_EXCHANGE``) is put back first."""
    try:
        dfd = os.open(directory, _O_DIR)
    except OSError:
        return []
    removed = []
    try:
        now = time.time()
        names = os.listdir(dfd)
        present = set(names)
        for name in sorted(names):
            if not _stale(dfd, name, now):
                continue
            m = _TMP_RE.match(name)
            assert m is not None
            if m.group(1) == "old":
                # ".<target>.old-…": the fallback's first rename happened, the second did not
                target = name[1 : m.start(1) - 1]
                if len(target) < 120 and target not in present and _lexists(dfd, name):
                    with contextlib.suppress(OSError):
                        os.rename(name, target, src_dir_fd=dfd, dst_dir_fd=dfd)
                        present.add(target)
                        continue
            _remove_entry(dfd, name)
            removed.append(name)
    finally:
        os.close(dfd)
    return removed


def _lexists(dfd: int, name: str) -> bool:
    try:
        os.stat(name, dir_fd=dfd, follow_symlinks=False)
    except FileNotFoundError:
        return False
    return True


# ================================================================ atomic directory swap ====
_RENAME_NOREPLACE = 1
_RENAME_EXCHANGE = 2


def _load_renameat2() -> Any:
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or None, use_errno=True)
        f = libc.renameat2
    except (OSError, AttributeError):
        return None
    f.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p, ctypes.c_uint]
    f.restype = ctypes.c_int
    return f


_renameat2 = _load_renameat2()


def renameat2(dfd: int, src: str, dst: str, flags: int) -> None:
    """``renameat2(dfd, src, dfd, dst, flags)``; OSError(ENOSYS) when the C library lacks it."""
    if _renameat2 is None:
        raise OSError(errno.ENOSYS, "renameat2 is not available", src)
    if _renameat2(dfd, os.fsencode(src), dfd, os.fsencode(dst), flags) != 0:
        e = ctypes.get_errno()
        raise OSError(e, os.strerror(e), src, None, dst)


_NO_EXCHANGE = (errno.ENOSYS, errno.EINVAL, errno.ENOTSUP, errno.EOPNOTSUPP)


def exchange(dfd: int, a: str, b: str) -> bool:
    """Swap entries ``a`` and ``b`` of directory ``dfd`` atomically. False (nothing done) when
    the system or the file system cannot."""
    try:
        renameat2(dfd, a, b, _RENAME_EXCHANGE)
    except OSError as e:
        if e.errno in _NO_EXCHANGE:
            return False
        raise
    return True


def rename_noreplace(dfd: int, src: str, dst: str) -> bool:
    """Rename ``src`` to ``dst`` in ``dfd`` unless ``dst`` exists (FileExistsError). False
    (nothing done) when the system cannot say "unless it exists"."""
    try:
        renameat2(dfd, src, dst, _RENAME_NOREPLACE)
    except OSError as e:
        if e.errno in _NO_EXCHANGE:
            return False
        raise
    return True


class AtomicDir:
    """``with AtomicDir(target) as tmp:`` write into ``tmp``; on success it becomes ``target``.

    ``tmp`` is a fresh directory ``.<name>.tmp-<pid>-<hex>`` beside ``target`` (made with
    ``mkdir``: exclusive, mode ``0777 & ~umask``). On an exception it is removed and
    ``target`` is untouched. ``check(path)``, if given, is called on an existing ``target``
    just before the switch and may raise to refuse replacing it. A symlink at ``target`` is
    never followed: it is replaced (the link, not what it points to).
    """

    def __init__(self, target: str | os.PathLike[str], check: Callable[[Path], None] | None = None) -> None:
        self.target = Path(target)
        _check_component(self.target.name)
        self.check = check
        self.tmp: Path | None = None

    def __enter__(self) -> Path:
        parent = self.target.parent
        parent.mkdir(parents=True, exist_ok=True)
        clean_stale_temps(parent)
        with _dir_fd(parent, create=False) as dfd:
            _clean_legacy(dfd, self.target.name)
            for _ in range(100):
                name = _tmp_name(self.target.name)
                try:
                    os.mkdir(name, 0o777, dir_fd=dfd)
                    break
                except FileExistsError:  # pragma: no cover - 64 random bits
                    continue
        self.tmp = parent / name
        return self.tmp

    def __exit__(self, exc_type: Any, exc: Any, tb: Any) -> None:
        assert self.tmp is not None
        if exc_type is not None:
            shutil.rmtree(self.tmp, ignore_errors=True)
            return
        try:
            self.commit()
        except BaseException:
            shutil.rmtree(self.tmp, ignore_errors=True)
            raise

    def commit(self) -> None:
        """Switch the new set in. With ``RENAME_EXCHANGE`` (Linux >= 3.15 on ext4, xfs, btrfs,
        tmpfs, ...) one system call swaps the two directories: before it ``target`` is the old
        set, after it the new one; the old set then sits at the temporary name and is removed
        (a kill before that leaves it for :func:`clean_stale_temps`). Without it (another OS
        or file system) the fallback renames the old set to ``.<name>.old-<pid>-<hex>`` and
        the new one into place; a kill between the two renames leaves no ``target`` until the
        next write beside it, which puts the old set back first."""
        assert self.tmp is not None
        tmp, name = self.tmp.name, self.target.name
        with _dir_fd(self.target.parent, create=False) as dfd:
            if not _lexists(dfd, name) and rename_noreplace(dfd, tmp, name):
                return
            if _lexists(dfd, name) and self.check is not None:
                self.check(self.target)
            if _lexists(dfd, name) and exchange(dfd, tmp, name):
                with contextlib.suppress(OSError):  # the old set (or the link that was there)
                    _remove_entry(dfd, tmp)
                return
            # fallback: two renames
            old = None
            if _lexists(dfd, name):
                old = _tmp_name(name, "old")
                os.rename(name, old, src_dir_fd=dfd, dst_dir_fd=dfd)
            os.rename(tmp, name, src_dir_fd=dfd, dst_dir_fd=dfd)
            if old is not None:
                with contextlib.suppress(OSError):
                    _remove_entry(dfd, old)


_LEGACY_TMP_RE = re.compile(r"[a-z0-9_]{8}")


def _clean_legacy(dfd: int, name: str) -> None:
    """What gicsim before this writer left after a kill beside ``name``: ``.<name>.old``
    (the old set, moved away; put back when ``name`` is missing) and ``.<name>.<8 chars>``
    (``mkdtemp``; removed when this user's and over an hour old)."""
    now = time.time()
    for entry in os.listdir(dfd):
        if not entry.startswith(f".{name}."):
            continue
        tail = entry[len(name) + 2 :]
        try:
            st = os.stat(entry, dir_fd=dfd, follow_symlinks=False)
        except FileNotFoundError:
            continue
        if st.st_uid != os.getuid() or not stat.S_ISDIR(st.st_mode):
            continue
        with contextlib.suppress(OSError):
            if tail == "old" and not _lexists(dfd, name):
                os.rename(entry, name, src_dir_fd=dfd, dst_dir_fd=dfd)
            elif tail == "old" or (_LEGACY_TMP_RE.fullmatch(tail) and now - st.st_mtime > 3600):
                shutil.rmtree(entry, dir_fd=dfd, ignore_errors=True)


# ================================================================ report directories ====
def _safe_relpath(rel: str) -> tuple[str, ...]:
    parts = tuple(rel.split("/"))
    if rel.startswith("/") or not parts:
        raise ValueError(f"unsafe path {printable(rel)!r}")
    for p in parts:
        _check_component(p)
    return parts


#: What a manifest may say a directory is (``"gicsim"``), and how messages name it: one kind
#: of results never writes into another's directory.
KINDS = {"report": "report", "hazards": "hazard map", "sweep": "sweep"}


def read_manifest(directory: Path, kind: str = "report") -> list[str] | None:
    """The files a gicsim ``kind`` directory lists in ``directory`` (None: no manifest). A
    manifest that is unreadable or malformed, or of another kind, is an :class:`OutputError`."""
    p = directory / MANIFEST
    try:
        st = p.lstat()
    except FileNotFoundError:
        return None
    shown = printable(directory, 200)
    bad = OutputError([f"{shown}/{MANIFEST}: not a gicsim report manifest; "
                       "remove it or choose another output directory"])  # fmt: skip
    if not stat.S_ISREG(st.st_mode) or st.st_size > MANIFEST_MAX_BYTES:
        raise bad
    try:
        data = json.loads(p.read_bytes())
        files = data["files"]
        if data.get("gicsim") not in KINDS or not isinstance(files, list):
            raise TypeError
        for f in files:
            if not isinstance(f, str):
                raise TypeError
            _safe_relpath(f)
    except (OSError, ValueError, TypeError, KeyError, AttributeError):
        raise bad from None
    if data["gicsim"] != kind:
        raise OutputError([f"{shown}: holds a gicsim {KINDS[data['gicsim']]}, not a {KINDS[kind]}; "
                           "choose another output directory"])  # fmt: skip
    return list(files)


def _exists_rel(dfd: int, parts: tuple[str, ...]) -> bool:
    """Whether ``parts`` exists below ``dfd`` (no symlink followed on the way)."""
    fd = dfd
    opened: list[int] = []
    try:
        for p in parts[:-1]:
            try:
                fd = os.open(p, _O_DIR | os.O_NOFOLLOW, dir_fd=fd)
            except (FileNotFoundError, NotADirectoryError):
                return False
            except OSError as e:
                if e.errno == errno.ELOOP:
                    return True  # a symlink where a directory of ours would go: a conflict
                raise
            opened.append(fd)
        return _lexists(fd, parts[-1])
    finally:
        for x in opened:
            os.close(x)


def _blocked(dfd: int, parts: tuple[str, ...]) -> bool:
    """Whether a directory on the way to ``parts`` exists as something else (a symlink)."""
    fd = dfd
    opened: list[int] = []
    try:
        for p in parts[:-1]:
            try:
                st = os.stat(p, dir_fd=fd, follow_symlinks=False)
            except FileNotFoundError:
                return False
            if not stat.S_ISDIR(st.st_mode):
                return True
            fd = os.open(p, _O_DIR | os.O_NOFOLLOW, dir_fd=fd)
            opened.append(fd)
        return False
    finally:
        for x in opened:
            os.close(x)


@contextlib.contextmanager
def _subdir_fd(dfd: int, parts: tuple[str, ...], made: list[tuple[str, ...]] | None = None) -> Iterator[int]:
    """An fd on ``parts`` below ``dfd``, made if missing (each one made is appended to
    ``made``); a symlink on the way is refused."""
    fd = dfd
    opened: list[int] = []
    try:
        for i, p in enumerate(parts):
            try:
                os.mkdir(p, 0o777, dir_fd=fd)
                if made is not None:
                    made.append(parts[: i + 1])
            except FileExistsError:
                pass
            fd = os.open(p, _O_DIR | os.O_NOFOLLOW, dir_fd=fd)
            opened.append(fd)
        yield fd
    finally:
        for x in opened:
            os.close(x)


def _legacy_ok(entries: set[str], also_ours: Iterable[str], stores: Iterable[str]) -> bool:
    return bool(entries) and entries <= set(also_ours) | set(stores)


def _check_target(target: Path, kind: str, also_ours: Iterable[str], fixed: Iterable[str],
                  stores: Iterable[str]) -> tuple[list[str] | None, set[str]]:  # fmt: skip
    """(the manifest's files or None, every name that is gicsim's in ``target``), or
    :class:`OutputError` when ``target`` may not be written into (see :func:`write_report_dir`)."""
    shown = printable(target, 200)
    if target.exists() and not target.is_dir():
        raise OutputError([f"{shown}: exists and is not a directory"])
    listed = read_manifest(target, kind) if target.is_dir() else None
    # the manifest, when there is one, is the word on which files are ours
    ours = (set(also_ours) if listed is None else set(listed) | set(fixed)) | {MANIFEST} | set(stores)
    if target.is_dir():
        entries = {e for e in os.listdir(target) if not is_temp_name(e)}
        if entries and listed is None and not entries <= ours:
            what = "a gicsim report" if kind == "report" else f"a gicsim {KINDS[kind]}"
            raise OutputError([f"{shown}: not empty and not {what} directory; "
                               "choose a new or empty directory"])  # fmt: skip
    return listed, ours


def claim_dir(target: str | os.PathLike[str], kind: str, also_ours: Iterable[str] = (),
              fixed: Iterable[str] = (), stores: Iterable[str] = (), write: bool = True) -> None:  # fmt: skip
    """Before a command starts filling ``target`` (e.g. its run store): check it may write
    there (as :func:`write_report_dir` does), make it, and give it a ``kind`` manifest (listing
    the files of an older gicsim's directory it adopts), so that a kill at any later point
    leaves a directory the next run recognises as its own. ``write=False``: only check."""
    target = Path(target)
    listed, _ = _check_target(target, kind, also_ours, fixed, stores)
    if listed is not None or not write:
        return
    with _dir_fd(target) as dfd:
        adopted = set(also_ours) & set(fixed) if fixed else set(also_ours)
        present = sorted(n for n in adopted if _lexists(dfd, n))
        _write_manifest(dfd, present, kind)


def mark_written(target: str | os.PathLike[str], kind: str, names: Iterable[str]) -> None:
    """Add ``names`` (written into ``target``) to its ``kind`` manifest, which then lists
    exactly the files of it that exist."""
    target = Path(target)
    listed = read_manifest(target, kind) or []
    with _dir_fd(target, create=False) as dfd:
        keep = sorted(n for n in set(listed) | set(names) if _exists_rel(dfd, _safe_relpath(n)))
        _write_manifest(dfd, keep, kind)


def write_report_dir(
    target: str | os.PathLike[str],
    files: Mapping[str, bytes],
    also_ours: Iterable[str] = (),
    guard: Callable[[], contextlib.AbstractContextManager[Any]] = contextlib.nullcontext,
    kind: str = "report",
    fixed: Iterable[str] = (),
    stores: Iterable[str] = (),
) -> None:
    """Write ``files`` (relative path -> bytes) into directory ``target``, never replacing
    the directory itself and never touching a file gicsim did not write.

    ``target`` may be missing or empty (made / used), or a gicsim ``kind`` directory (its
    :data:`MANIFEST` says so: the files it lists, and the names in ``fixed``, are ours), or,
    without a manifest, hold only ``also_ours`` (names the caller recognises as an older
    gicsim's, e.g. a run directory's files). ``stores`` are subdirectories the command keeps
    there itself (its ``runs/``). Otherwise, or when a file to write exists and is not ours,
    or the manifest is of another kind, :class:`OutputError` and nothing is written.

    Every file is first written in full to a temporary file beside its target; a failure
    then (a full disk) removes them and leaves the old files as they were (or, in a
    directory made here, nothing). Then the manifest lists the old and the new files, each
    file is renamed into place, the previous report's files this one no longer has are
    removed, and the manifest lists exactly the files written: after a kill at any point the
    manifest covers every file written. ``guard()`` wraps the writing (the CLI defers
    signals in it)."""
    target = Path(target)
    rels = _rels(files)
    listed, ours = _check_target(target, kind, also_ours, fixed, stores)
    created = not target.exists()
    with _dir_fd(target) as dfd:
        try:
            _check_files(target, dfd, rels, ours)
        except OutputError:
            if created:
                with contextlib.suppress(OSError):
                    target.rmdir()
            raise
        clean_stale_temps(target)
        before = sorted(set(listed or ()) | set(rels))
        with guard():
            staged = _stage_all(dfd, {parts: files[rel] for rel, parts in rels.items()},
                                {(MANIFEST, "before"): _manifest_bytes(before, kind),
                                 (MANIFEST, "after"): _manifest_bytes(sorted(rels), kind)},  # fmt: skip
                                target if created else None)
            _rename_in(dfd, (MANIFEST,), staged.pop((MANIFEST, "before")))
            after = staged.pop((MANIFEST, "after"))
            for parts, tmp in sorted(staged.items()):
                _rename_in(dfd, parts, tmp)
            for rel in sorted(set(listed or ()) - set(rels)):
                _remove_rel(dfd, _safe_relpath(rel))
            _rename_in(dfd, (MANIFEST,), after)


def check_report_dir(target: str | os.PathLike[str], files: Mapping[str, bytes] | Iterable[str],
                     also_ours: Iterable[str] = (), kind: str = "report", fixed: Iterable[str] = (),
                     stores: Iterable[str] = ()) -> None:  # fmt: skip
    """Every refusal :func:`write_report_dir` would make for these arguments, writing nothing
    (a command checks all its outputs before it writes the first)."""
    target = Path(target)
    rels = _rels(files)
    _, ours = _check_target(target, kind, also_ours, fixed, stores)
    if target.is_dir():
        with _dir_fd(target, create=False) as dfd:
            _check_files(target, dfd, rels, ours)


def _rels(files: Iterable[str]) -> dict[str, tuple[str, ...]]:
    rels = {rel: _safe_relpath(rel) for rel in files}
    if any(parts[0] == MANIFEST for parts in rels.values()):
        raise ValueError(f"{MANIFEST} is reserved")
    return rels


def _check_files(target: Path, dfd: int, rels: Mapping[str, tuple[str, ...]], ours: set[str]) -> None:
    shown = printable(target, 200)
    blocked = sorted(rel for rel, parts in rels.items() if _blocked(dfd, parts))
    if blocked:
        raise OutputError([f"{shown}: {printable(blocked[0])}: something that is not a directory "
                           "(a symlink?) is where gicsim makes one; remove it"])  # fmt: skip
    conflicts = [rel for rel, parts in rels.items() if rel not in ours and _exists_rel(dfd, parts)]
    if conflicts:
        some = ", ".join(printable(c) for c in sorted(conflicts)[:3])
        more = f" and {len(conflicts) - 3} more" if len(conflicts) > 3 else ""
        raise OutputError([f"{shown}: would overwrite files gicsim did not write there ({some}{more}); "
                           "choose another output directory"])  # fmt: skip


def _stage_all(dfd: int, files: Mapping[tuple[str, ...], bytes], manifests: Mapping[tuple[str, str], bytes],
               created: Path | None) -> dict[tuple[str, ...], str]:  # fmt: skip
    """Write every file to a temporary file beside its target: {key: temporary name}. On a
    failure, nothing of it is left (the temporary files, the directories made, ``created``)."""
    staged: dict[tuple[str, ...], str] = {}
    made: list[tuple[str, ...]] = []
    items = [(k, k[:-1] if k[0] != MANIFEST else (), k[-1] if k[0] != MANIFEST else MANIFEST, v)
             for k, v in (*sorted(files.items()), *manifests.items())]  # fmt: skip
    try:
        for key, sub_parts, name, data in items:
            with _subdir_fd(dfd, sub_parts, made) as sub:
                fd, tmp = _create_temp(sub, name)
                staged[key] = tmp
                with os.fdopen(fd, "wb") as f:
                    f.write(data)
    except BaseException:
        for key, tmp in staged.items():
            sub_parts = key[:-1] if key[0] != MANIFEST else ()
            with contextlib.suppress(OSError), _subdir_fd_existing(dfd, sub_parts) as sub:
                os.unlink(tmp, dir_fd=sub)
        for parts in reversed(made):
            with contextlib.suppress(OSError), _subdir_fd_existing(dfd, parts[:-1]) as sub:
                os.rmdir(parts[-1], dir_fd=sub)
        if created is not None:
            with contextlib.suppress(OSError):
                created.rmdir()
        raise
    return staged


def _rename_in(dfd: int, parts: tuple[str, ...], tmp: str) -> None:
    with _subdir_fd_existing(dfd, parts[:-1]) as sub:
        os.replace(tmp, parts[-1], src_dir_fd=sub, dst_dir_fd=sub)


def _manifest_bytes(names: list[str], kind: str) -> bytes:
    return (json.dumps({"gicsim": kind, "files": names}, indent=1) + "\n").encode()


def _write_manifest(dfd: int, names: list[str], kind: str = "report") -> None:
    with _atomic_in(dfd, MANIFEST) as f:
        f.write(_manifest_bytes(names, kind))


def _remove_rel(dfd: int, parts: tuple[str, ...]) -> None:
    """Unlink a file below ``dfd`` (no symlink followed), then its directories if empty."""
    try:
        with _subdir_fd_existing(dfd, parts[:-1]) as sub:
            st = os.stat(parts[-1], dir_fd=sub, follow_symlinks=False)
            if not stat.S_ISDIR(st.st_mode):
                os.unlink(parts[-1], dir_fd=sub)
    except OSError:
        return
    for i in range(len(parts) - 1, 0, -1):
        try:
            with _subdir_fd_existing(dfd, parts[: i - 1]) as sub:
                os.rmdir(parts[i - 1], dir_fd=sub)
        except OSError:
            return


@contextlib.contextmanager
def _subdir_fd_existing(dfd: int, parts: tuple[str, ...]) -> Iterator[int]:
    fd = dfd
    opened: list[int] = []
    try:
        for p in parts:
            fd = os.open(p, _O_DIR | os.O_NOFOLLOW, dir_fd=fd)
            opened.append(fd)
        yield fd
    finally:
        for x in opened:
            os.close(x)
