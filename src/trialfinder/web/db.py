"""Database access for the web app: start-up preparation and a small pool of read-only stores.

Why a pool of read-only connections: requests never write, so a read-only connection makes the "no
request can change the database" rule a property of the connection, not of code review; and reusing a
handful of open connections per process avoids paying SQLite's open and cache warm-up on every request.
Nothing about a request survives it: the pool holds connections, never request state, so any number of
workers and machines can serve one database file.
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import queue
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from trialfinder.store import BudgetExceeded, StoreError, StoreUnavailable, open_store, resolve_db

log = logging.getLogger("trialfinder.web")

__all__ = ["BudgetExceeded", "IndexFollower", "StorePool", "StoreUnavailable", "prepare_database"]


#: Metadata keys: who created the database, when an ingest started (set by every ingest before it
#: writes or waits), and when ``serve`` finished loading its sample.
CREATED_BY, CREATED_BY_SERVE, INGEST_STARTED, SAMPLE_LOADED = "created_by", "trialfinder serve", \
    "ingest_started", "sample_loaded"


def prepare_database(db: str | None, *, load_sample: bool = True, progress: Any = None) -> str:
    """Create the database if needed and load the bundled sample into it when ``serve`` may; then bring
    the text index up to date. Returns the resolved database location.

    Why so careful: the sample must never land in a user's real mirror. It is loaded only into a
    database this function itself created (marked ``created_by`` in its metadata when it did) and
    that no ingest has touched (``ingest_started``, which every ingest records before anything else,
    even while it waits for another writer). A start killed mid-load resumes the load on the next
    start (upserts are idempotent). A file lock next to the database makes concurrent starts (several
    workers) prepare it once. ``progress`` (a terminal) shows the load.
    """
    target = resolve_db(db)
    lock_path = Path(target + ".sample-lock") if "://" not in target else None
    with _file_lock(lock_path):
        created = lock_path is not None and not Path(target).exists()
        with open_store(target) as store:
            if created:
                store.set_meta(CREATED_BY, CREATED_BY_SERVE)
            ours = (store.meta(CREATED_BY) == CREATED_BY_SERVE and store.meta(INGEST_STARTED) is None
                    and store.meta(SAMPLE_LOADED) is None)
            if load_sample and ours:
                from trialfinder.ingest import ingest, sample_path

                log.warning("new database %s: loading the bundled sample", target)
                started = time.monotonic()
                # one process: forking workers from the server's background thread can deadlock
                result = ingest(store, [sample_path()], progress=progress, mark_started=False, workers=1)
                store.set_meta(SAMPLE_LOADED, time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()))
                log.warning("loaded the bundled sample (%s) in %.1f s", result.counts.summary(),
                            time.monotonic() - started)
            elif load_sample and store.count() == 0:
                why = ("an ingest into it has started" if store.meta(INGEST_STARTED)
                       else "it was not created by 'trialfinder serve'")
                log.warning("database %s is empty, and %s: not loading the sample (run "
                            "'trialfinder ingest --sample' to load it)", target, why)
            store.checkpoint()  # self-contained, so read-only connections see everything
    if lock_path is not None:
        with contextlib.suppress(OSError):
            lock_path.unlink()
    with open_store(target) as store:
        prepare_index(store, progress)
    return target


class Readiness:
    """Whether the database is ready to serve, for the "loading" page shown while it is prepared in
    the background (the quick start answers the browser at once instead of refusing connections)."""

    def __init__(self) -> None:
        self.ready = threading.Event()
        self.started = time.monotonic()
        self.error: BaseException | None = None

    def run(self, db: str | None, load_sample: bool, progress: Any = None) -> None:
        """Prepare the database (in a background thread) and mark it ready, or record the failure."""
        try:
            prepare_database(db, load_sample=load_sample, progress=progress)
        except BaseException as exc:  # noqa: BLE001 - shown on the loading page and logged
            log.exception("preparing the database failed")
            self.error = exc
        finally:
            self.ready.set()

    def start(self, db: str | None, load_sample: bool, progress: Any = None) -> threading.Thread:
        thread = threading.Thread(target=self.run, args=(db, load_sample, progress),
                                  name="trialfinder-prepare", daemon=True)
        thread.start()
        return thread


def prepare_index(store: Any, stream: Any = None) -> None:
    """Bring the text index up to the database before serving, with progress on ``stream`` (stderr).

    Why at start-up: a missing or old index (a copied database, a new schema version, a node joining a
    shared database) would otherwise be rebuilt inside the first request. When another process holds
    the index writer (an ingest or a sync is running), that process keeps the index current, and the
    server starts at once on the index as it is.
    """
    import sys

    from trialfinder.index.follow import catch_up, index_for
    from trialfinder.index.text_index import IndexBusy
    from trialfinder.progress import Progress

    idx = index_for(store)
    if idx.snapshot().seq >= store.data_seq() and idx.compatible:
        return
    bar = Progress(stream if stream is not None else sys.stderr, label="text index catch-up")
    try:
        with idx.writer(wait_s=0.0) as w:
            n = catch_up(store, w, progress=lambda done, total: _show(bar, done, total))
    except IndexBusy:
        log.warning("the text index is being written by another process (an ingest or sync): serving as it is")
        return
    bar.update(n, force=True)
    bar.finish()


def _show(bar: Any, done: int, total: int) -> None:
    bar.total = total or None
    bar.update(done)


@contextlib.contextmanager
def _file_lock(path: Path | None) -> Iterator[None]:
    if path is None:
        yield
        return
    with open(path, "a+b") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


class StorePool:
    """Up to ``size`` open read-only stores, handed out one per request and returned afterwards."""

    def __init__(self, db: str, size: int = 8, budget_s: float = 10.0) -> None:
        self.db = db
        self.size = max(1, size)
        self.budget_s = budget_s
        self._idle: queue.LifoQueue[Any] = queue.LifoQueue()
        self._lock = threading.Lock()
        self._open = 0
        self._closed = False

    def _new_store(self) -> Any:
        try:
            return open_store(self.db, readonly=True)
        except StoreUnavailable:  # the server is away: say so now (503), not after a second attempt
            raise
        except (StoreError, OSError, Exception):  # noqa: B014 - any backend's "cannot open read-only"
            # e.g. a WAL database whose -shm file cannot be created read-only: fall back to a normal
            # connection; requests still never write through it
            return open_store(self.db)

    def _take(self) -> Any:
        with contextlib.suppress(queue.Empty):
            return self._idle.get_nowait()
        with self._lock:
            if self._open < self.size:
                self._open += 1
                create = True
            else:
                create = False
        if create:
            try:
                return self._new_store()
            except BaseException:
                with self._lock:
                    self._open -= 1
                raise
        return self._idle.get(timeout=max(self.budget_s, 1.0) * 3)

    @contextlib.contextmanager
    def store(self) -> Iterator[Any]:
        """A store for the duration of one request, with its work capped at the time budget."""
        if self._closed:
            raise RuntimeError("the store pool is closed")
        store = self._take()
        store.interrupt_after(self.budget_s)
        broken = False
        try:
            yield store
        except BudgetExceeded:
            raise
        except Exception as exc:
            if getattr(store, "interrupted", False):
                raise BudgetExceeded(str(exc)) from exc
            broken = type(exc).__module__.startswith(("sqlite3", "psycopg"))  # a database error
            raise
        finally:
            with contextlib.suppress(Exception):
                store.interrupt_after(None)
            if broken or self._closed:
                with contextlib.suppress(Exception):
                    store.close()
                with self._lock:
                    self._open -= 1
            else:
                self._idle.put(store)

    def close(self) -> None:
        """Close every idle connection (at application shutdown)."""
        self._closed = True
        while True:
            try:
                store = self._idle.get_nowait()
            except queue.Empty:
                break
            with contextlib.suppress(Exception):
                store.close()
            with self._lock:
                self._open -= 1


class IndexFollower:
    """A daemon thread that keeps this process's text index up with the database every ``interval_s``.

    Why: with a shared database (PostgreSQL, several nodes) studies are written by processes on other
    machines; requests would catch up too, but the first one after a large write would pay for it, and
    a node nobody asks would fall behind. While the database is unreachable the thread logs once and
    keeps trying, so the node recovers by itself.
    """

    def __init__(self, pool: StorePool, interval_s: float) -> None:
        self.pool = pool
        self.interval_s = max(0.2, interval_s)
        self._stop = threading.Event()
        self._down = False
        self.thread = threading.Thread(target=self._run, name="trialfinder-index-follower", daemon=True)
        self.thread.start()

    def _run(self) -> None:
        from trialfinder.index.follow import current_snapshot

        while not self._stop.wait(self.interval_s):
            try:
                with self.pool.store() as store:
                    store.interrupt_after(None)  # catching up may take longer than one request may
                    current_snapshot(store)
                if self._down:
                    log.warning("database reachable again")
                    self._down = False
            except StoreUnavailable as exc:
                if not self._down:
                    log.warning("database unavailable (will keep trying): %s", exc)
                self._down = True
            except Exception as exc:  # noqa: BLE001 - the follower must never die
                if self._pool_closed():
                    return
                log.warning("text index follow-up failed: %s", exc)

    def _pool_closed(self) -> bool:
        return self.pool._closed

    def stop(self) -> None:
        self._stop.set()
        self.thread.join(timeout=5)
