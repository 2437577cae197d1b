"""The derived text index: a tantivy index directory that follows one database.

How it stays consistent with the database (the system of record):

- the database numbers every write transaction that changes studies (its *data sequence*) and stamps
  each study row with the sequence that last wrote it;
- the index holds, besides one document per study, a metadata document whose ``seq`` says which data
  sequence the whole index reflects; it is replaced in the same tantivy commit as the documents, so a
  commit is all-or-nothing (tantivy publishes a commit atomically through ``meta.json``);
- writers commit the database first and the index after; a kill between the two leaves the index
  behind, never ahead, and the next writer (or reader that can take the writer lock) catches up by
  re-indexing the studies whose sequence is newer (:func:`trialfinder.index.follow.catch_up`);
- readers search one :class:`Snapshot` (a tantivy searcher plus its sequence) per request, so the
  total, the facets and the page always agree; page tokens carry that sequence.

One writer per directory across processes (tantivy's lock file): ingest, sync and catch-up take turns.
"""

from __future__ import annotations

import os
import shutil
import threading
import time
from collections import OrderedDict
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson
import tantivy

from trialfinder.errors import TrialfinderError
from trialfinder.index.schema import ANALYZER, KEY, META_KEY, SCHEMA_VERSION, analyzer, build_schema

#: Memory for the writer's in-flight documents, split between its threads.
WRITER_HEAP = 256 * 1024 * 1024
WRITER_THREADS = 2


class TextIndexError(TrialfinderError):
    """Base of the text index's errors."""


class IndexBusy(TextIndexError):
    """Another process holds the index's writer lock (an ingest or a sync is running)."""


@dataclass(frozen=True)
class Snapshot:
    """One consistent view of the index: every query of one request runs on the same snapshot."""

    searcher: Any
    seq: int
    schema: Any
    generation: str

    @property
    def num_docs(self) -> int:
        """Studies in this snapshot (the metadata document is not one)."""
        return max(0, int(self.searcher.num_docs) - 1)


def _read_seq(searcher: Any, schema: Any) -> tuple[int, int]:
    """(data sequence, schema version) recorded in the metadata document; (-1, 0) when there is none."""
    res = searcher.search(tantivy.Query.term_query(schema, KEY, META_KEY), limit=1, count=False)
    if not res.hits:
        return -1, 0
    addr = res.hits[0][1]
    seq = searcher.fast_field_values("seq", [addr])[0]
    version = searcher.fast_field_values("schema_version", [addr])[0]
    return int(seq if seq is not None else -1), int(version or 0)


class TextIndex:
    """A tantivy index directory (created on first open) and the searchers of this process."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        self._lock = threading.Lock()
        self._index: Any = None
        self._generation = ""
        self._current: Snapshot | None = None
        #: recent snapshots by sequence, so a page token made on one is answered from it
        self._recent: OrderedDict[int, Snapshot] = OrderedDict()
        self.schema_version = SCHEMA_VERSION
        self._open()

    # -- opening ------------------------------------------------------------------------------------

    def _gen(self) -> str:
        try:
            st = os.stat(self.path)
        except FileNotFoundError:
            return ""
        return f"{st.st_ino}:{st.st_dev}"

    def _open(self) -> None:
        self.path.mkdir(parents=True, exist_ok=True)
        schema = build_schema()
        if tantivy.Index.exists(str(self.path)):
            index = tantivy.Index.open(str(self.path))
        else:
            index = tantivy.Index(schema, path=str(self.path))
        index.register_tokenizer(ANALYZER, analyzer())
        index.config_reader(reload_policy="Manual")
        self._index = index
        self._generation = self._gen()
        self._current = None
        self._recent.clear()

    @property
    def schema(self) -> Any:
        return self._index.schema

    def snapshot(self, *, refresh: bool = True) -> Snapshot:
        """The newest committed state (reloaded when ``refresh``), or the one this process holds."""
        with self._lock:
            if self._gen() != self._generation:  # rebuilt and swapped in by another process
                self._open()
            if refresh or self._current is None:
                self._index.reload()
                searcher = self._index.searcher()
                seq, version = _read_seq(searcher, self._index.schema)
                if self._current is None or self._current.seq != seq or version != self.schema_version:
                    self._current = Snapshot(searcher, seq, self._index.schema, self._generation)
                    self.schema_version = version or SCHEMA_VERSION
                    self._recent[seq] = self._current
                    while len(self._recent) > 8:
                        self._recent.popitem(last=False)
            return self._current

    def snapshot_at(self, seq: int) -> Snapshot | None:
        """A snapshot of an earlier sequence this process still holds (for page tokens), or None."""
        with self._lock:
            return self._recent.get(seq)

    @property
    def compatible(self) -> bool:
        """False when the index was written with another schema (it must be rebuilt)."""
        snap = self.snapshot()
        return snap.seq < 0 or self.schema_version == SCHEMA_VERSION

    # -- writing ------------------------------------------------------------------------------------

    def writer(self, *, wait_s: float = 0.0) -> IndexWriter:
        """Take the writer lock (waiting up to ``wait_s`` seconds for another writer to finish)."""
        deadline = time.monotonic() + wait_s
        while True:
            try:
                w = self._index.writer(heap_size=WRITER_HEAP, num_threads=WRITER_THREADS)
                return IndexWriter(self, w)
            except ValueError as exc:
                if "LockBusy" not in str(exc) and "lock" not in str(exc).lower():
                    raise
                if time.monotonic() >= deadline:
                    raise IndexBusy(f"the text index {self.path} is being written by another process "
                                    "(an ingest or a sync); try again when it has finished") from None
                time.sleep(0.2)


class IndexWriter:
    """Adds, replaces and commits study documents; use as a context manager (releases the lock)."""

    def __init__(self, index: TextIndex, writer: Any) -> None:
        self.index = index
        self._w = writer
        self.pending = 0

    def upsert(self, docs: Iterable[tuple[int, bytes]], *, new: bool = False) -> int:
        """Replace (or add) documents given as (NCT number, JSON); returns how many.

        ``new`` says the caller knows none of these studies is in the index (they were new to the
        database, and the index is never ahead of it): the delete by key is skipped, which is most of
        the cost of a first ingest."""
        w = self._w
        schema = self.index.schema
        n = 0
        for key, doc in docs:
            if not new:
                # by query: delete_documents_by_term would build a signed term that never matches a u64 key
                w.delete_documents_by_query(tantivy.Query.term_query(schema, KEY, int(key)))
            w.add_json(doc if isinstance(doc, str) else doc.decode())
            n += 1
        self.pending += n
        return n

    def delete_all(self) -> None:
        self._w.delete_all_documents()

    def commit(self, seq: int) -> None:
        """Publish everything added so far as the state of data sequence ``seq`` (atomically)."""
        w = self._w
        w.delete_documents_by_query(tantivy.Query.term_query(self.index.schema, KEY, META_KEY))
        w.add_json(orjson.dumps({KEY: META_KEY, "seq": int(seq), "schema_version": SCHEMA_VERSION}).decode())
        w.commit()
        self.pending = 0

    def close(self) -> None:
        """Wait for background merges and release the writer lock (uncommitted work is dropped)."""
        if self._w is None:
            return
        w, self._w = self._w, None
        try:
            w.rollback()
            w.wait_merging_threads()
        except Exception:  # noqa: BLE001 - releasing the lock matters more than a failed merge
            pass

    def __enter__(self) -> IndexWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def replace_directory(built: Path, target: Path) -> None:
    """Swap a freshly built index directory in place of ``target`` (readers reopen on next use)."""
    old = target.with_name(target.name + ".old")
    if old.exists():
        shutil.rmtree(old, ignore_errors=True)
    if target.exists():
        os.replace(target, old)
    os.replace(built, target)
    shutil.rmtree(old, ignore_errors=True)
