"""Copying a whole database between backends (``trialfinder copy SRC DST``), losslessly.

What is copied as it is: every stored record (the same bytes, DEFLATE-encoded ones included, so
``show --json`` is byte-identical), its content hash (so a later ingest of the same files finds every
study unchanged), its source and its ingest time; the log of ingest runs (with their start and finish
times); the record history (with its stored and replaced times); saved searches; absent-at-source flags;
the data timestamp and last sync. Every timestamp is kept as the source has it, in both directions.
What is rebuilt on the way: every normalised fact (browsing columns, sites, synonyms) from the records
by the current code, and the destination's text index.

Why rebuild instead of copying tables: the tables are derived from the records; deriving them again
in the destination is both simpler and safer than mapping two backends' column types, and it makes a
copy also an upgrade of the derived data.
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

from trialfinder.model.study import RecordError, normalize
from trialfinder.search.synonyms import extract_synonyms
from trialfinder.store.base import RECORD_DEFLATE, Store, StoreError, UpsertCounts, decode_record
from trialfinder.store.batch import study_rows

#: Studies per destination transaction (as an ingest).
BATCH_SIZE = 4000

DumpRow = tuple[str, bytes, str, "str | None", "str | None", "int | None"]


@dataclass
class CopyResult:
    studies: int = 0
    ingest_runs: int = 0
    versions: int = 0
    indexed: int = 0
    seconds: float = 0.0
    #: records the current code no longer accepts (kept out of the destination, listed here)
    skipped: list[str] = field(default_factory=list)
    counts: UpsertCounts = field(default_factory=UpsertCounts)


def _rows_of(chunk: list[DumpRow]) -> list[tuple[Any, str | None] | str]:
    """Destination rows of one chunk of stored studies (runs in worker processes for large copies)."""
    out: list[tuple[Any, str | None] | str] = []
    for nct, blob, digest, source, ingested_at, size in chunk:
        try:
            study = normalize(decode_record(blob))
        except RecordError as exc:
            out.append(f"{nct}: {exc.reason}")
            continue
        synonyms = extract_synonyms(study)
        if blob[:1] == RECORD_DEFLATE:
            rows = study_rows(study, blob[1:], digest, source or "", synonyms, deflated=True, size=size)
        else:
            rows = study_rows(study, blob, digest, source or "", synonyms)
        out.append((rows, ingested_at))
    return out


def _prepared(chunks: Iterable[list[DumpRow]], workers: int) -> Iterator[list[Any]]:
    if workers <= 1:
        for chunk in chunks:
            yield _rows_of(chunk)
        return
    import multiprocessing as mp

    ctx = mp.get_context("fork" if sys.platform.startswith("linux") else "spawn")
    with ctx.Pool(workers) as pool:
        yield from pool.imap(_rows_of, chunks)


def copy_database(src: Store, dst: Store, *, workers: int | None = None,
                  progress: Callable[[int, int], None] | None = None, rebuild_index: bool = True) -> CopyResult:
    """Copy every study, its history of versions, the ingest log, saved searches, absent-at-source flags
    and the data timestamp from ``src`` into the empty ``dst``.

    Raises :class:`~trialfinder.store.base.StoreError` when ``dst`` already holds studies (a copy is not
    a merge: use ``ingest`` for that) or when either backend cannot dump or restore what it stores.
    """
    for store, role in ((src, "source"), (dst, "destination")):
        if not hasattr(store, "dump_studies") or not hasattr(store, "upsert_rows"):
            raise StoreError(f"the {role} backend ({type(store).__name__}) cannot be copied")
    if dst.count():
        raise StoreError(f"the destination {dst.url} already holds {dst.count():,} studies; copy needs an empty "
                         "database (to merge studies into a database, use 'trialfinder ingest')")
    started = time.monotonic()
    result = CopyResult()
    total = src.count()
    workers = workers if workers is not None else (os.cpu_count() or 1) if total >= 5000 else 1
    bulk = getattr(dst, "bulk_load", None)
    if bulk is not None:
        bulk()
    try:
        batch: list[Any] = []
        times: list[str | None] = []

        def flush() -> None:
            counts = dst.upsert_rows(batch, ingested_at=times)  # type: ignore[attr-defined]
            result.counts += counts
            result.studies += len(counts.written)
            batch.clear()
            times.clear()
            if progress is not None:
                progress(result.studies, total)

        for prepared in _prepared(src.dump_studies(), workers):  # type: ignore[attr-defined]
            for item in prepared:
                if isinstance(item, str):
                    result.skipped.append(item)
                    continue
                batch.append(item[0])
                times.append(item[1])
                if len(batch) >= BATCH_SIZE:
                    flush()
        if batch:
            flush()
    finally:
        end = getattr(dst, "end_bulk_load", None)
        if end is not None:
            end()
    runs = src.ingest_runs()  # type: ignore[attr-defined]
    dst.add_ingest_runs(runs)  # type: ignore[attr-defined]
    result.ingest_runs = len(runs)
    for key in ("data_timestamp", "last_sync"):
        value = src.meta(key)
        if value:
            dst.set_meta(key, value)
    # record history, studies flagged absent at the source, saved searches: copied as stored
    versions = src.dump_versions()
    dst.add_versions(versions)
    result.versions = len(versions)
    by_since: dict[str, list[str]] = {}
    for nct, since in src.absent().items():
        by_since.setdefault(since, []).append(nct)
    for since, ids in by_since.items():
        dst.set_absent(ids, since)
    for doc in src.alerts():
        dst.put_alert(doc["name"], doc)
    if rebuild_index:
        from trialfinder.index.follow import rebuild

        result.indexed = rebuild(dst, workers=workers)
    result.seconds = time.monotonic() - started
    return result
