"""One run per ``train.out_dir``: a lock file holding the owner's PID.

    with out_dir_lock(out, "train.out_dir"):      # what train() does around a run
        ...

The lock is ``<out_dir>/.lock``: a small text file (``pid``, host, start time, command) held
with ``fcntl.flock`` while the run lasts. The kernel drops a flock when its process dies, so
a lock left by a killed run (SIGKILL, power loss) is stale by construction: the next run
takes it over and says whose it was. A second run while the first is alive gets
``OutDirLockedError``, one line naming the process that holds it. On a clean exit (an error
and Ctrl-C included) the file is removed.

Where ``fcntl`` does not exist (Windows), the PID in the file is checked instead: a lock
whose process no longer runs is taken over.
"""
from __future__ import annotations

import errno
import os
import socket
import sys
import time
from contextlib import contextmanager
from pathlib import Path

try:
    import fcntl
except ImportError:                       # Windows: PID check only
    fcntl = None

LOCK_NAME = ".lock"


class OutDirLockedError(RuntimeError):
    """Another live process holds the out_dir's lock (one line naming it)."""


def pid_alive(pid: int) -> bool:
    """Whether a process with this PID exists (on this machine)."""
    if pid <= 0:
        return False
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:               # exists, owned by another user
        return True
    except OSError:
        return False
    return True


def read_lock(path: Path) -> dict:
    """The fields of a lock file (``key=value`` lines); {} when unreadable or empty."""
    try:
        text = Path(path).read_text(errors="replace")
    except OSError:
        return {}
    info = {}
    for line in text.splitlines():
        k, sep, v = line.partition("=")
        if sep:
            info[k.strip()] = v.strip()
    return info


def _owner(info: dict) -> str:
    """``process 123 (python -m hdml_lite train ..., started 2024-05-01 10:00:00)``."""
    host = info.get("host", "")
    where = f" on {host}" if host and host != socket.gethostname() else ""
    details = [x for x in (info.get("command", ""), "started " + info["started"] if info.get("started") else "") if x]
    return f"process {info.get('pid', '?')}{where}" + (f" ({', '.join(details)})" if details else "")


def _contents() -> str:
    argv = list(sys.argv) or ["python"]
    if Path(argv[0]).name == "__main__.py":   # python -m hdml_lite ...
        argv[0] = "python -m " + Path(argv[0]).parent.name
    cmd = " ".join(" ".join(argv).split())[:160]
    return (f"pid={os.getpid()}\nhost={socket.gethostname()}\n"
            f"started={time.strftime('%Y-%m-%d %H:%M:%S')}\ncommand={cmd}\n")


def _refuse(path: Path, what: str, info: dict) -> OutDirLockedError:
    return OutDirLockedError(
        f"{what}={str(path.parent)!r} is in use by {_owner(info)}, which holds {path}; wait for it to "
        f"finish or stop it, or use another {what} (two runs in one folder overwrite each other)")


def _acquire_flock(path: Path, what: str) -> tuple[int, dict]:
    """Open and flock ``path``; returns (fd, info of the stale lock taken over or {})."""
    for _ in range(20):
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            os.close(fd)
            if exc.errno not in (errno.EAGAIN, errno.EACCES, errno.EWOULDBLOCK):
                raise
            info = read_lock(path)
            for _ in range(10):           # the holder may not have written its PID yet
                if info.get("pid"):
                    break
                time.sleep(0.05)
                info = read_lock(path)
            raise _refuse(path, what, info) from None
        try:                              # the holder may have removed the file meanwhile: retry
            same = os.fstat(fd).st_ino == os.stat(path).st_ino
        except FileNotFoundError:
            same = False
        if same:
            return fd, read_lock(path)
        os.close(fd)
    raise OutDirLockedError(f"{what}={str(path.parent)!r}: could not take the lock {path} (it keeps changing)")


def _acquire_pidfile(path: Path, what: str) -> tuple[int, dict]:
    """No flock: create the file exclusively; a file whose PID is dead is stale and replaced."""
    stale: dict = {}
    for _ in range(20):
        try:
            return os.open(path, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o644), stale
        except FileExistsError:
            info = read_lock(path)
            try:
                pid = int(info.get("pid", "0"))
            except ValueError:
                pid = 0
            if pid_alive(pid) and info.get("host", socket.gethostname()) == socket.gethostname():
                raise _refuse(path, what, info) from None
            stale = info
            try:
                path.unlink()
            except FileNotFoundError:
                pass
    raise OutDirLockedError(f"{what}={str(path.parent)!r}: could not take the lock {path} (it keeps changing)")


@contextmanager
def out_dir_lock(out_dir, what: str = "train.out_dir", announce=print):
    """Hold ``<out_dir>/.lock`` for the duration of the block (the folder is created).

    Raises ``OutDirLockedError`` when a live process holds it. A stale lock (its process
    is gone) is taken over, with one line through ``announce``."""
    from .checkpoint import ensure_writable_dir

    path = ensure_writable_dir(Path(out_dir), what) / LOCK_NAME
    fd, stale = (_acquire_flock if fcntl is not None else _acquire_pidfile)(path, what)
    try:
        if stale.get("pid") and stale.get("pid") != str(os.getpid()):
            announce(f"note: took over the lock of {_owner(stale)}, which no longer runs ({path})")
        os.ftruncate(fd, 0)
        os.lseek(fd, 0, os.SEEK_SET)
        os.write(fd, _contents().encode())
        os.fsync(fd)
    except BaseException:
        os.close(fd)
        raise
    try:
        yield path
    finally:
        try:
            path.unlink()                 # while still holding the flock: see _acquire_flock's check
        except OSError:
            pass
        if fcntl is not None:             # explicitly: a forked child (DataLoader worker) shares the lock
            fcntl.flock(fd, fcntl.LOCK_UN)
        os.close(fd)
