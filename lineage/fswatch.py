"""inotify (Linux) through the C library, with no dependency: one instance watching
the directories an answer depends on, and whether anything that matters changed.

`lineage.capture_cache` keeps its cached git, code and agent answers valid with it
(see there for what is watched and why). Off Linux, in a sandbox that refuses
inotify, or out of watches, `open_inotify` raises `OSError` and the caller falls
back to ``lstat``. `open_inotify` is a documented hook: replacing it with a function
that raises shows that fallback (tests do this).
"""

from __future__ import annotations

import contextlib
import errno
import os
import struct
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

__all__ = ["OUT_OF_WATCHES", "Watcher", "add_watch", "open_inotify"]


_IN_MODIFY, _IN_ATTRIB, _IN_CLOSE_WRITE = 0x2, 0x4, 0x8
_IN_MOVED_FROM, _IN_MOVED_TO, _IN_CREATE, _IN_DELETE = 0x40, 0x80, 0x100, 0x200
_IN_DELETE_SELF, _IN_MOVE_SELF, _IN_UNMOUNT, _IN_Q_OVERFLOW, _IN_IGNORED = 0x400, 0x800, 0x2000, 0x4000, 0x8000
_IN_ONLYDIR, _IN_DONT_FOLLOW = 0x01000000, 0x02000000
_IN_NONBLOCK, _IN_CLOEXEC = os.O_NONBLOCK, getattr(os, "O_CLOEXEC", 0o2000000)  # (as O_*: they differ by arch)
# what a directory watch asks for: entries coming and going, a child's content or
# attributes, the directory itself going away (reads and opens are not asked for:
# git's own reads would be events)
_WATCH_MASK = (_IN_MODIFY | _IN_ATTRIB | _IN_CLOSE_WRITE | _IN_MOVED_FROM | _IN_MOVED_TO | _IN_CREATE
               | _IN_DELETE | _IN_DELETE_SELF | _IN_MOVE_SELF | _IN_ONLYDIR | _IN_DONT_FOLLOW)
_ENTRIES = _IN_CREATE | _IN_DELETE | _IN_MOVED_FROM | _IN_MOVED_TO
_GONE = _IN_Q_OVERFLOW | _IN_IGNORED | _IN_DELETE_SELF | _IN_MOVE_SELF | _IN_UNMOUNT
_EVENT = struct.Struct("iIII")  # struct inotify_event: wd, mask, cookie, len (then the name)
#: the errors of inotify_add_watch that mean "no more watches here", not "no such folder"
OUT_OF_WATCHES = (errno.ENOSPC, errno.EMFILE, errno.ENFILE, errno.ENOMEM)

_libc: Any = None


def _c_library() -> Any:
    """libc's inotify functions (ctypes, loaded on first use), or None off Linux."""
    global _libc
    if _libc is None:
        _libc = False
        if sys.platform.startswith("linux"):
            try:
                import ctypes

                lib = ctypes.CDLL(None, use_errno=True)
                init, add = lib.inotify_init1, lib.inotify_add_watch
            except (ImportError, OSError, AttributeError):  # (a Python built without ctypes, an old libc)
                return None
            init.argtypes, init.restype = [ctypes.c_int], ctypes.c_int
            add.argtypes, add.restype = [ctypes.c_int, ctypes.c_char_p, ctypes.c_uint32], ctypes.c_int
            _libc = (init, add, ctypes.get_errno)
    return _libc or None


def _libc_open_inotify() -> int:
    lib = _c_library()
    if lib is None:
        raise OSError(errno.ENOSYS, "inotify is Linux only")
    fd = int(lib[0](_IN_NONBLOCK | _IN_CLOEXEC))
    if fd < 0:
        err = lib[2]()
        raise OSError(err, os.strerror(err))
    return fd


#: makes a new non-blocking inotify instance and returns its file descriptor; raises
#: OSError when the kernel refuses (not Linux, a seccomp sandbox, max_user_instances).
#: Replace it with a function that raises to see the ``lstat`` fallback.
open_inotify: Callable[[], int] = _libc_open_inotify


def add_watch(fd: int, folder: bytes) -> int:
    """The watch descriptor of ``folder`` on the instance ``fd``; raises OSError."""
    lib = _c_library()
    if lib is None:
        raise OSError(errno.ENOSYS, "inotify is Linux only")
    wd = int(lib[1](fd, folder, _WATCH_MASK))
    if wd < 0:
        err = lib[2]()
        raise OSError(err, os.strerror(err))
    return wd


@dataclass
class Watcher:
    """One inotify instance watching the directories an answer depends on."""

    fd: int
    pid: int  # the process that made it: the only one that may read it
    # wd -> (a work-tree directory: any entry coming or going matters, the names in it that matter)
    folders: dict[int, tuple[bool, set[bytes]]] = field(default_factory=dict)
    stale: bool = False

    def add(self, folder: bytes, names: set[bytes], *, work_tree: bool) -> None:
        """Watch ``folder`` for ``names`` (and, in the work tree, any entry coming or
        going). Raises OSError when it cannot be watched."""
        wd = add_watch(self.fd, folder)
        if wd in self.folders:  # the same directory reached twice: one watch for both roles
            was_work, was_names = self.folders[wd]
            self.folders[wd] = (was_work or work_tree, was_names | names)
        else:
            self.folders[wd] = (work_tree, set(names))

    def unchanged(self) -> bool:
        """Read every pending event (one ``read`` when there are none); False once any
        of them changes the answer, and from then on. A caller sharing the watcher
        between threads holds its own lock around this: a read takes the events, and
        another thread may close it."""
        if self.stale or self.pid != os.getpid():
            return False
        while True:
            try:
                buf = os.read(self.fd, 65536)
            except BlockingIOError:
                return True
            except OSError:
                self.stale = True
                return False
            off = 0
            while off < len(buf):
                wd, mask, _cookie, size = _EVENT.unpack_from(buf, off)
                name = buf[off + _EVENT.size: off + _EVENT.size + size].rstrip(b"\0")
                off += _EVENT.size + size
                if self._matters(wd, mask, name):
                    self.stale = True
                    return False

    def _matters(self, wd: int, mask: int, name: bytes) -> bool:
        if mask & _GONE:
            return True  # overflow (events lost), or a watched folder removed/moved/unmounted
        folder = self.folders.get(wd)
        if folder is None:
            return True
        work_tree, names = folder
        if mask & _ENTRIES and work_tree:
            return True  # a new, removed or renamed entry: maybe an untracked file git would list
        return name in names  # a write to an ignored file, or to git's other files, does not

    def close(self) -> None:
        """Close the instance (in a forked child, only the child's copy of it)."""
        if self.fd >= 0:
            with contextlib.suppress(OSError):
                os.close(self.fd)
            self.fd = -1
        self.stale = True
