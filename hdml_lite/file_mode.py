"""The permissions of a new file: what ``open()`` would give it under the process's umask.

``tempfile.mkstemp`` creates its file with mode 0600 whatever the umask, so a file written
atomically (a temporary file, then ``os.replace``) would end up private: a results folder shared
with a group would be unreadable by it. The atomic writers give the temporary file this mode
before renaming it (0644 under the usual umask 022, 0664 under 002, 0600 under 077).

    os.fchmod(fd, new_file_mode())

Pure standard library: no import of the rest of the kit.
"""
from __future__ import annotations

import os
import threading

_LOCK = threading.Lock()


def umask() -> int:
    """The process's umask, read without changing it where the system says it (Linux
    ``/proc/self/status``), else by setting and restoring it (under a lock)."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    with _LOCK:
        mask = os.umask(0o022)
        os.umask(mask)
    return mask


def new_file_mode() -> int:
    """0o666 less the umask: the mode ``open(path, "w")`` gives a new file."""
    return 0o666 & ~umask()


def set_new_file_mode(fd: int, path: str | os.PathLike) -> None:
    """Give the file open as ``fd`` (at ``path``) the mode of a new file (``new_file_mode``);
    ``fchmod`` where the system has it, else ``chmod`` of the path."""
    mode = new_file_mode()
    if hasattr(os, "fchmod"):
        os.fchmod(fd, mode)
    else:                                   # Windows: only the read-only flag exists; a new file is writable
        os.chmod(path, mode)
