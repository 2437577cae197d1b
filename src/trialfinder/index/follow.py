"""Keeping a text index in step with its database: catch-up, rebuild, and the per-process registry.

A process opens the index of a store through :func:`index_for` (one :class:`TextIndex` per directory
and process). Before it answers from the index, :func:`current_snapshot` compares the index's data
sequence with the database's: when the index is behind (a writer was killed between its database
commit and its index commit, or another machine wrote the database) and no other process is writing
it, this process catches up by re-indexing the studies written since; when another process holds the
writer lock, that writer is catching up and the snapshot is returned marked ``stale``.
"""

from __future__ import annotations

import multiprocessing as mp
import os
import sys
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from trialfinder.index.document import study_json
from trialfinder.index.text_index import IndexBusy, IndexWriter, Snapshot, TextIndex, replace_directory

_INDEXES: dict[str, TextIndex] = {}
_LOCK = threading.Lock()
#: How often (seconds) a reader re-reads the database's data sequence; requests in between reuse it.
SEQ_CHECK_S = 0.5


def index_for(store: Any) -> TextIndex:
    """The text index of a store, opened once per process."""
    path = str(store.index_path())
    idx = _INDEXES.get(path)
    if idx is None:
        with _LOCK:
            idx = _INDEXES.get(path)
            if idx is None:
                idx = _INDEXES[path] = TextIndex(path)
    return idx


def forget(path: str | os.PathLike[str]) -> None:
    """Drop this process's handle of an index directory (after it was deleted or moved)."""
    with _LOCK:
        idx = _INDEXES.pop(str(path), None)
        _SEQ_CACHE.pop((idx.path if idx is not None else Path(path)).as_posix(), None)


def recheck(store: Any) -> None:
    """Make the next search of ``store`` re-read the database's sequence instead of the cached one.

    For a process that has just written (a sync followed by its alert checks): within
    :data:`SEQ_CHECK_S` its searches would otherwise answer from the snapshot before its own write.
    """
    _SEQ_CACHE.pop(index_for(store).path.as_posix(), None)


@dataclass(frozen=True)
class Current:
    snapshot: Snapshot
    #: the database's sequence when it was checked; ``stale`` when the snapshot is behind it
    db_seq: int

    @property
    def stale(self) -> bool:
        return self.snapshot.seq < self.db_seq


_SEQ_CACHE: dict[str, tuple[float, int]] = {}


def current_snapshot(store: Any, *, catch_up_wait_s: float = 0.0) -> Current:
    """A snapshot no older than the database, catching up first when this process can."""
    idx = index_for(store)
    now = time.monotonic()
    cached = _SEQ_CACHE.get(idx.path.as_posix())
    if cached is not None and now - cached[0] < SEQ_CHECK_S:
        db_seq = cached[1]
        snap = idx.snapshot(refresh=False)
        if snap.seq >= db_seq:
            return Current(snap, db_seq)
    db_seq = store.data_seq()
    _SEQ_CACHE[idx.path.as_posix()] = (now, db_seq)
    snap = idx.snapshot()
    if snap.seq >= db_seq and idx.compatible:
        return Current(snap, db_seq)
    try:
        with idx.writer(wait_s=catch_up_wait_s) as w:
            catch_up(store, w)
    except IndexBusy:
        return Current(idx.snapshot(), db_seq)
    return Current(idx.snapshot(), db_seq)


def catch_up(store: Any, writer: IndexWriter, *, progress: Callable[[int, int], None] | None = None) -> int:
    """Index every study written after the index's sequence; returns how many were re-indexed.

    An index of another schema version, or one that never committed, is refilled from all records.
    """
    idx = writer.index
    snap = idx.snapshot()
    db_seq = store.data_seq()
    since = snap.seq
    if not idx.compatible or since < 0:
        writer.delete_all()
        since = -1
    if since >= db_seq:
        return 0
    total = store.count() if since < 0 else None
    done = 0
    for docs in _documents(store.changed_since(since)):
        done += writer.upsert(docs)
        if progress is not None:
            progress(done, total or done)
    writer.commit(db_seq)
    return done


def rebuild(store: Any, *, progress: Callable[[int, int], None] | None = None, workers: int | None = None) -> int:
    """Build the index afresh from every record, in a new directory swapped in when complete.

    Serving processes keep answering from the old index until the swap, then reopen the new one.
    """
    target = Path(store.index_path())
    built = target.with_name(target.name + ".build")
    if built.exists():
        import shutil

        shutil.rmtree(built)
    fresh = TextIndex(built)
    db_seq = store.data_seq()
    total = store.count()
    done = 0
    with fresh.writer() as w:
        w.delete_all()
        for docs in _documents(store.changed_since(-1), workers=workers):
            done += w.upsert(docs)
            if progress is not None:
                progress(done, total)
        w.commit(db_seq)
    del fresh
    forget(built)
    with _LOCK:
        replace_directory(built, target)
        _INDEXES.pop(str(target), None)
    return done


# -- documents from stored records, in worker processes for large runs -------------------------------

def _docs_of(chunk: list[tuple[str, bytes, int]]) -> list[tuple[int, bytes]]:
    from trialfinder.model.study import RecordError, normalize
    from trialfinder.store.base import decode_record

    out = []
    for nct, blob, seq in chunk:
        try:
            study = normalize(decode_record(blob))
        except RecordError:  # stored records were validated; a record that no longer is stays out
            continue
        out.append((int(nct[3:]), study_json(study, seq)))
    return out


def _documents(chunks: Iterable[list[tuple[str, bytes, int]]], workers: int | None = None
               ) -> Iterator[list[tuple[int, bytes]]]:
    it = iter(chunks)
    first = next(it, None)
    if first is None:
        return
    if workers is None:
        workers = os.cpu_count() or 1
    if workers <= 1 or len(first) < 1000:
        yield _docs_of(first)
        for chunk in it:
            yield _docs_of(chunk)
        return
    ctx = mp.get_context("fork" if sys.platform.startswith("linux") else "spawn")
    with ctx.Pool(workers) as pool:
        pending = [pool.apply_async(_docs_of, (first,))]
        for chunk in it:
            pending.append(pool.apply_async(_docs_of, (chunk,)))
            if len(pending) > workers * 3:
                yield pending.pop(0).get()
        for p in pending:
            yield p.get()
