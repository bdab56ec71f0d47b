"""A minimal inotify binding on libc through ctypes, and the parser of its records."""

from __future__ import annotations

import ctypes
import os
import struct
from dataclasses import dataclass
from typing import Final

IN_ACCESS: Final = 0x00000001
IN_MODIFY: Final = 0x00000002
IN_ATTRIB: Final = 0x00000004
IN_CLOSE_WRITE: Final = 0x00000008
IN_MOVED_FROM: Final = 0x00000040
IN_MOVED_TO: Final = 0x00000080
IN_CREATE: Final = 0x00000100
IN_DELETE: Final = 0x00000200
IN_DELETE_SELF: Final = 0x00000400
IN_MOVE_SELF: Final = 0x00000800
IN_UNMOUNT: Final = 0x00002000
IN_Q_OVERFLOW: Final = 0x00004000
IN_IGNORED: Final = 0x00008000
IN_ONLYDIR: Final = 0x01000000
IN_DONT_FOLLOW: Final = 0x02000000
IN_ISDIR: Final = 0x40000000

IN_NONBLOCK: Final = os.O_NONBLOCK
IN_CLOEXEC: Final = os.O_CLOEXEC

# What a watched directory reports: changes of its entries, and its own removal or move.
DIR_MASK: Final = (
    IN_MODIFY
    | IN_ATTRIB
    | IN_CLOSE_WRITE
    | IN_MOVED_FROM
    | IN_MOVED_TO
    | IN_CREATE
    | IN_DELETE
    | IN_DELETE_SELF
    | IN_MOVE_SELF
    | IN_ONLYDIR
    | IN_DONT_FOLLOW
)

_HEADER: Final = struct.Struct("iIII")  # wd, mask, cookie, len (struct inotify_event)
# Room for many records per read; a record is 16 bytes plus a NUL-padded name.
READ_SIZE: Final = 64 * 1024


@dataclass(frozen=True)
class InotifyEvent:
    wd: int
    mask: int
    cookie: int
    name: str

    @property
    def is_dir(self) -> bool:
        return bool(self.mask & IN_ISDIR)


def parse_events(buf: bytes) -> list[InotifyEvent]:
    """Parse the records of one read(2) of an inotify fd.

    The kernel returns whole records only; a truncated tail (which a well-behaved kernel never
    produces) raises ValueError rather than yielding a made-up record. Names are NUL-padded
    and decoded with surrogateescape so any byte sequence maps back to the same path.
    """
    events: list[InotifyEvent] = []
    offset = 0
    end = len(buf)
    while offset < end:
        if end - offset < _HEADER.size:
            raise ValueError(f"truncated inotify record header at offset {offset}")
        wd, mask, cookie, length = _HEADER.unpack_from(buf, offset)
        offset += _HEADER.size
        if end - offset < length:
            raise ValueError(f"truncated inotify record name at offset {offset}")
        raw = buf[offset : offset + length].split(b"\0", 1)[0]
        offset += length
        events.append(InotifyEvent(wd, mask, cookie, os.fsdecode(raw)))
    return events


def _load_libc() -> ctypes.CDLL:
    # The symbols the process already has, the C library's among them: no ldconfig run and no
    # ctypes.util (which imports tempfile, shutil, bz2 and lzma: about 1 MB of agent memory).
    libc = ctypes.CDLL(None, use_errno=True)
    libc.inotify_init1.argtypes = [ctypes.c_int]
    libc.inotify_init1.restype = ctypes.c_int
    libc.inotify_add_watch.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_uint32]
    libc.inotify_add_watch.restype = ctypes.c_int
    libc.inotify_rm_watch.argtypes = [ctypes.c_int, ctypes.c_int]
    libc.inotify_rm_watch.restype = ctypes.c_int
    return libc


class Inotify:
    """One inotify instance (non-blocking, close-on-exec).

    Raises OSError (with errno) when the kernel refuses: on init (no inotify, EMFILE for
    max_user_instances) and on add_watch (ENOSPC when max_user_watches is reached, ENOENT,
    ENOTDIR for a path that is not a directory).
    """

    def __init__(self) -> None:
        try:
            self._libc = _load_libc()
        except (OSError, AttributeError) as exc:
            raise OSError(f"libc has no inotify: {exc}") from None
        fd = self._libc.inotify_init1(IN_NONBLOCK | IN_CLOEXEC)
        if fd < 0:
            err = ctypes.get_errno()
            raise OSError(err, f"inotify_init1: {os.strerror(err)}")
        self.fd: int = fd

    def add_watch(self, path: str, mask: int = DIR_MASK) -> int:
        wd = self._libc.inotify_add_watch(self.fd, os.fsencode(path), mask)
        if wd < 0:
            err = ctypes.get_errno()
            raise OSError(err, os.strerror(err), path)
        return int(wd)

    def rm_watch(self, wd: int) -> None:
        # EINVAL means the kernel already dropped it (IN_IGNORED is on its way): nothing to do.
        self._libc.inotify_rm_watch(self.fd, wd)

    def read(self, max_reads: int = 16) -> list[InotifyEvent]:
        """What is queued now, up to `max_reads` buffers; [] when nothing is (non-blocking).

        The cap keeps one call short under a flood; the fd stays readable for the rest.
        """
        events: list[InotifyEvent] = []
        for _ in range(max_reads):
            try:
                buf = os.read(self.fd, READ_SIZE)
            except BlockingIOError:
                return events
            if not buf:
                return events
            events.extend(parse_events(buf))
        return events

    def close(self) -> None:
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1
