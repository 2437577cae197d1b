"""One sync at a time per database: the store's exclusive lock.

Why ``flock`` and advisory locks: the kernel (or the server) releases them when the holder dies, even by
``kill -9``, so a crashed sync never leaves a stale lock to clean up by hand -- the next run simply takes
it and resumes.
"""

from __future__ import annotations

from collections.abc import Callable
from types import TracebackType

from trialfinder.errors import TrialfinderError
from trialfinder.store.base import Store


class SyncBusy(TrialfinderError):
    """Another sync of the same database is running."""


class SyncLock:
    """``with SyncLock(store):`` -- raises :class:`SyncBusy` at once if another process holds it.

    The lock is the store's (:meth:`~trialfinder.store.base.Store.try_lock`): a file lock beside an
    SQLite database, an advisory lock on a PostgreSQL server (so two machines never sync at once)."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self._release: Callable[[], None] | None = None

    def acquire(self) -> None:
        release = self.store.try_lock("sync")
        if release is None:
            raise SyncBusy(f"another sync of this database ({self.store.url}) is running; wait for it to finish")
        self._release = release

    def release(self) -> None:
        if self._release is not None:
            self._release()
            self._release = None

    def __enter__(self) -> SyncLock:
        self.acquire()
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.release()
