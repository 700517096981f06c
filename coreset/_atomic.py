"""Writing outputs: one check of an output path, and atomic writes.

Every file coreset writes (index files, stream checkpoints, embeddings, the
results and plots of ``compare``, caches) goes through :func:`atomic_write`,
which first runs :func:`check_output_path`; the CLI runs the same check up
front, before any work, naming the option (``--output``, ``--checkpoint``,
``--out``). See ``docs/index-files.md`` ("Writing is atomic").

The check refuses anything a write must not replace: a target that exists and
is not a regular file (a folder, a character or block device such as
``/dev/null``, a FIFO, a socket), a folder that does not exist or cannot be
written, a file name over the file system's ``NAME_MAX`` or a path over
``PATH_MAX``, a NUL character. A symbolic link is followed: the write replaces
the file it points to (which must be a regular file or not exist yet), and the
link stays a link.

The write itself: on Linux, an anonymous file (``O_TMPFILE``) in the target's
folder, linked under a temporary name and renamed over the target once it is
complete and flushed, so a writer killed before the end (SIGKILL, the OOM
killer) leaves nothing behind. Elsewhere (other OSes, file systems without
``O_TMPFILE``) a named temporary ``.NAME.HOST-PID-XXXXXXXX.tmp`` is renamed
instead, and each write first removes the temporaries of the same target whose
writer is gone (:func:`_remove_stale_temps`); the same clean-up covers the
microseconds in which the linked temporary of the first scheme has a name.
"""

from __future__ import annotations

import hashlib
import logging
import os
import re
import secrets
import socket
import stat
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path

from .exceptions import OutputPathError, OutputWriteError

__all__ = ["check_output_path", "same_file", "atomic_write", "STALE_TEMP_AGE_S"]

log = logging.getLogger(__name__)

#: a temporary whose writer cannot be asked (another host, an older coreset)
#: is stale once untouched for this long
STALE_TEMP_AGE_S = 600.0

#: write through an anonymous file (Linux ``O_TMPFILE``) where the folder's file
#: system supports it; False forces the named-temporary scheme (tests use it)
USE_O_TMPFILE = True

_NAME_MAX, _PATH_MAX = 255, 4096  # when the OS cannot say

_KINDS = ((stat.S_ISDIR, "a folder"), (stat.S_ISCHR, "a character device"), (stat.S_ISBLK, "a block device"),
          (stat.S_ISFIFO, "a FIFO (named pipe)"), (stat.S_ISSOCK, "a socket"))


# --------------------------------------------------------------------- the check


def _kind(mode: int) -> str:
    for test, name in _KINDS:
        if test(mode):
            return name
    return "a special file"


def _show(raw: str) -> str:
    """``repr`` of a path, its middle cut when it is long (a 5000-byte path in an error line helps no one)."""
    return repr(raw if len(raw) <= 120 else f"{raw[:70]}...{raw[-40:]}")


def _pathconf(folder: Path, name: str, default: int) -> int:
    try:
        value = os.pathconf(folder, name)
    except (OSError, ValueError, AttributeError):  # no such folder, or not on this OS
        return default
    return value if value and value > 0 else default


def check_output_path(path, *, param: str = "path", reserve: int = 0) -> Path:
    """Check that ``path`` can be written as a regular file, and return the file
    a write replaces (``path`` itself, or the target of a symbolic link).

    ``param`` names the path in the messages (``--output`` in the CLI, the
    parameter's name in the API); ``reserve`` is the number of bytes a caller
    appends to the file name for files of its own (``.partial``).
    Raises :class:`~coreset.exceptions.OutputPathError`."""
    try:
        raw = os.fspath(path)
    except TypeError:
        raise OutputPathError(f"{param} must be a path (str or os.PathLike); got {type(path).__name__}") from None
    if isinstance(raw, bytes):
        raw = os.fsdecode(raw)

    def bad(reason: str) -> OutputPathError:
        return OutputPathError(f"cannot write {param} {_show(raw)}: {reason}")

    if raw == "":
        raise bad("the path is empty")
    if "\0" in raw:
        raise bad("the path contains a NUL character")
    p = Path(raw)
    folder = p.parent
    name_max = _pathconf(folder, "PC_NAME_MAX", _NAME_MAX)
    n_name = len(os.fsencode(p.name))
    if n_name + reserve > name_max:
        extra = f" (+{reserve} for the files written beside it)" if reserve else ""
        raise bad(f"the file name is {n_name} bytes long{extra}; the file system allows at most "
                  f"{name_max} (NAME_MAX)")
    path_max = _pathconf(folder, "PC_PATH_MAX", _PATH_MAX)
    n_path = len(os.fsencode(raw))
    if n_path + reserve >= path_max:
        raise bad(f"the path is {n_path} bytes long; the OS allows at most {path_max - 1 - reserve} (PATH_MAX)")
    _check_folder(folder, bad, "folder")
    target, via = p, ""
    try:
        st = os.lstat(p)
    except FileNotFoundError:
        st = None
    except OSError as exc:
        raise bad(exc.strerror or str(exc)) from None
    if st is not None and stat.S_ISLNK(st.st_mode):
        target = Path(os.path.realpath(p))
        via = f"a symbolic link to {_show(str(target))}, which is "
        try:
            st = os.stat(target)
        except FileNotFoundError:  # a dangling link: the write creates its target
            st = None
            _check_folder(target.parent, bad, f"it is a symbolic link to {_show(str(target))}, whose folder")
        except OSError as exc:
            raise bad(f"it is a symbolic link that cannot be followed ({exc.strerror or exc})") from None
    if st is not None and not stat.S_ISREG(st.st_mode):
        raise bad(f"it is {via}{_kind(st.st_mode)}, not a regular file; give the path of a file to create or replace")
    if not os.access(target.parent, os.W_OK | os.X_OK):
        raise bad(f"folder {_show(str(target.parent))} is not writable")
    return target


def _check_folder(folder: Path, bad, what: str) -> None:
    try:
        st = os.stat(folder)
    except FileNotFoundError:
        raise bad(f"{what} {_show(str(folder))} does not exist") from None
    except NotADirectoryError:
        raise bad(f"{what} {_show(str(folder))} does not exist (a part of it is a file)") from None
    except OSError as exc:
        raise bad(f"{what} {_show(str(folder))}: {exc.strerror or exc}") from None
    if not stat.S_ISDIR(st.st_mode):
        raise bad(f"{what} {_show(str(folder))} is {_kind(st.st_mode) if not stat.S_ISREG(st.st_mode) else 'a file'}, "
                  "not a folder")


def same_file(a, b) -> bool:
    """True when ``a`` and ``b`` name one file: the same path once symbolic links
    and ``..`` are resolved (whether or not it exists yet), or two names of one
    inode (hard links)."""
    try:
        if os.path.realpath(a) == os.path.realpath(b):
            return True
        return os.path.samestat(os.stat(a), os.stat(b))
    except (OSError, ValueError):
        return False


# --------------------------------------------------------------------- temporaries


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _host_tag() -> str:
    """This machine's name, reduced to [A-Za-z0-9] and 16 characters, so that a
    temporary written from another host (a shared folder) is never judged by a
    local process id."""
    return re.sub(r"[^A-Za-z0-9]", "", socket.gethostname())[:16] or "host"


def _stem(name: str) -> str:
    """The target's name as it appears in its temporaries: the name itself, or,
    when ``.NAME.HOST-PID-XXXXXXXX.tmp`` would pass NAME_MAX, its head and a hash."""
    if len(os.fsencode(name)) <= _NAME_MAX - 40:
        return name
    digest = hashlib.sha256(os.fsencode(name)).hexdigest()[:12]
    head = os.fsencode(name)[:_NAME_MAX - 40 - 13].decode("utf-8", "ignore")
    return f"{head}~{digest}"


def _temp_prefix(name: str) -> str:
    return f".{_stem(name)}.{_host_tag()}-{os.getpid()}-"


# mkstemp's random part: 8 characters of [a-z0-9_]
_NEW_TEMP = re.compile(r"([A-Za-z0-9]+)-(\d+)-[a-z0-9_]{8}")
_OLD_TEMP = re.compile(r"[a-z0-9_]{8}")
_RANDOM_CHARS = "abcdefghijklmnopqrstuvwxyz0123456789_"


def _pid_alive(pid: int) -> bool | None:
    """True / False when this OS can tell, None when it cannot."""
    if os.name != "posix" or pid <= 0:
        return None  # on Windows os.kill(pid, 0) would send CTRL_C_EVENT
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # alive, owned by another user
        return True
    except OSError:
        return None
    return True


def _remove_stale_temps(folder: Path, name: str) -> None:
    """Remove temporaries of target ``name`` left in ``folder`` by a writer that
    is gone: ``.NAME.HOST-PID-XXXXXXXX.tmp`` written on this host by a process
    that no longer exists; and, when the writer cannot be asked (written on
    another host, or ``.NAME.XXXXXXXX.tmp`` by an older coreset), untouched for
    :data:`STALE_TEMP_AGE_S`. A temporary whose process id now belongs to a
    live process is kept. Best effort: errors are ignored."""
    head, host, now = f".{_stem(name)}.", _host_tag(), time.time()
    try:
        entries = [e for e in os.scandir(folder) if e.name.startswith(head) and e.name.endswith(".tmp")]
    except OSError:
        return
    for entry in entries:
        middle = entry.name[len(head):-len(".tmp")]
        new, old = _NEW_TEMP.fullmatch(middle), _OLD_TEMP.fullmatch(middle)
        if not (new or old):
            continue  # not one of ours (or a temporary of another target)
        try:
            if not entry.is_file(follow_symlinks=False):
                continue
            alive = None
            if new and new.group(1) == host:
                pid = int(new.group(2))
                alive = True if pid == os.getpid() else _pid_alive(pid)
            if alive is None:
                alive = now - entry.stat(follow_symlinks=False).st_mtime < STALE_TEMP_AGE_S
            if not alive:
                os.unlink(entry.path)
                log.info("removed %s, a temporary file left by an interrupted write", entry.path)
        except OSError:
            continue


# --------------------------------------------------------------------- the write


def _anonymous(folder: Path) -> tuple[int, int] | None:
    """``(file fd, folder fd)`` of a new anonymous file in ``folder``, or None
    where this OS or file system has no ``O_TMPFILE`` (the caller falls back)."""
    flag = getattr(os, "O_TMPFILE", None)
    if not USE_O_TMPFILE or flag is None or not os.path.isdir("/proc/self/fd"):
        return None
    try:
        dfd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
    except OSError:
        return None
    try:
        # 0o600 so that the writer can reopen it through /proc; the final mode is set before the link
        return os.open(".", flag | os.O_WRONLY, 0o600, dir_fd=dfd), dfd
    except OSError:  # EOPNOTSUPP (no support in this file system), EISDIR (kernel < 3.11), ...
        os.close(dfd)
        return None


def _link_into_place(fd: int, dfd: int, name: str) -> None:
    """Give the anonymous file ``fd`` a temporary name in the folder ``dfd``
    (``linkat`` through ``/proc/self/fd``, which cannot replace a file), then
    rename that over ``name`` in one step."""
    prefix = _temp_prefix(name)
    for _ in range(100):
        tmp = f"{prefix}{''.join(secrets.choice(_RANDOM_CHARS) for _ in range(8))}.tmp"
        try:  # an explicit dst_dir_fd makes os.link call linkat(..., AT_SYMLINK_FOLLOW)
            os.link(f"/proc/self/fd/{fd}", tmp, dst_dir_fd=dfd, follow_symlinks=True)
            break
        except FileExistsError:
            continue
    else:  # pragma: no cover - 100 collisions of 37**8 random names
        raise FileExistsError(f"no free temporary name beside {name!r}")
    try:
        os.replace(tmp, name, src_dir_fd=dfd, dst_dir_fd=dfd)
    except BaseException:
        try:
            os.unlink(tmp, dir_fd=dfd)
        except OSError:
            pass
        raise


def _fsync_folder(folder: Path) -> None:
    """Make a rename in ``folder`` durable; best effort (not every OS allows it)."""
    try:
        dfd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(dfd)
        finally:
            os.close(dfd)
    except OSError:
        pass


@contextmanager
def atomic_write(path, *, param: str = "path"):
    """Yield a path to write the new contents to; when the block ends without
    an error they replace ``path`` in one step, otherwise ``path`` is left as it
    was and nothing is left beside it.

    The yielded path is for opening by name (``open(tmp, "wb")``, a writer that
    takes a path): on Linux it is ``/proc/self/fd/N``, the anonymous file, so do
    not derive other names from it, rename it or hand it to another process.
    ``path`` is checked first (:func:`check_output_path`, an
    :class:`~coreset.exceptions.OutputPathError` naming ``param``); a symbolic
    link is written through. An :class:`OSError` while writing (a full disk, an
    I/O error at flush or fsync) becomes an
    :class:`~coreset.exceptions.OutputWriteError` (also an ``OSError``) naming
    ``param`` and the path."""
    target = check_output_path(path, param=param)
    folder, name = target.parent, target.name
    _remove_stale_temps(folder, name)
    anon = _anonymous(folder)
    try:
        if anon is not None:
            fd, dfd = anon
            try:
                yield f"/proc/self/fd/{fd}"
                os.fsync(fd)
                os.fchmod(fd, 0o666 & ~_umask())
                _link_into_place(fd, dfd, name)
                try:
                    os.fsync(dfd)
                except OSError:
                    pass
            finally:
                os.close(fd)
                os.close(dfd)
        else:
            yield from _named_temporary(folder, target)
    except OSError as exc:
        if isinstance(exc, OutputWriteError):
            raise
        raise OutputWriteError(f"cannot write {param} {_show(os.fspath(path))}: {exc.strerror or exc}",
                               exc.errno, exc.strerror or str(exc), os.fspath(path)) from exc


def _named_temporary(folder: Path, target: Path):
    """The fallback: ``.NAME.HOST-PID-XXXXXXXX.tmp`` beside the target, renamed over it."""
    fd, tmp = tempfile.mkstemp(dir=folder, prefix=_temp_prefix(target.name), suffix=".tmp")
    os.close(fd)
    try:
        yield tmp
        with open(tmp, "rb+") as fh:
            os.fsync(fh.fileno())
        os.chmod(tmp, 0o666 & ~_umask())
        os.replace(tmp, target)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise
    _fsync_folder(folder)
