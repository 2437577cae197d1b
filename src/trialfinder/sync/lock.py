"""One sync at a time per database: an advisory lock file beside it.

Why ``flock``: the kernel releases it when the holder dies, even by ``kill -9``, so a crashed sync never
leaves a stale lock that needs cleaning up by hand -- the next run simply takes it and resumes.
"""

from __future__ import annotations

import fcntl
import os
from pathlib import Path
from types import TracebackType

from trialfinder.errors import TrialfinderError


class SyncBusy(TrialfinderError):
    """Another sync of the same database is running."""


class SyncLock:
    """``with SyncLock(db_path):`` -- raises :class:`SyncBusy` at once if another process holds it."""

    def __init__(self, db_path: str | os.PathLike[str]) -> None:
        self.path = Path(str(db_path) + ".sync.lock")
        self._fd: int | None = None

    def acquire(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 64, 0).decode("ascii", "replace").strip()
            os.close(fd)
            raise SyncBusy(f"another sync of this database is running (process {holder or 'unknown'}); "
                           f"wait for it to finish (lock: {self.path})") from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, str(os.getpid()).encode(), 0)
        self._fd = fd

    def release(self) -> None:
        if self._fd is not None:
            fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
            self._fd = None

    def __enter__(self) -> SyncLock:
        self.acquire()
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.release()
