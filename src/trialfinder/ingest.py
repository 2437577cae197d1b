"""Ingestion: sources -> validation and normalisation -> store, in atomic batches.

Why batches: each batch is one transaction, so a run killed at any point leaves the database as it was
after the last committed batch, and re-running the same command completes the job (upserts of what is
already stored are no-ops). Rejections never stop a run; they are counted, reported and optionally
written as JSON lines.
"""

from __future__ import annotations

import hashlib
import os
import sys
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import IO, Any

import orjson

from trialfinder.model.study import RecordError, normalize
from trialfinder.search.synonyms import extract_synonyms
from trialfinder.sources import RawDocument, Rejection, SourceRecord, iter_documents, parse_raw
from trialfinder.store.base import PreparedStudy, Store, UpsertCounts

BATCH_SIZE = 500
#: Raw documents handed to a worker at a time: large enough to amortise inter-process overhead.
CHUNK_DOCS = 64
#: Below this many input bytes, worker processes cost more to start than they save.
PARALLEL_MIN_BYTES = 32 * 1024 * 1024


def sample_path() -> Path:
    """The bundled sample of real studies shipped inside the package."""
    return Path(str(resources.files("trialfinder") / "data" / "sample.zip"))


@dataclass
class IngestResult:
    """Totals of one ingest run, plus the rejections (kept so callers and tests can inspect them)."""

    counts: UpsertCounts = field(default_factory=UpsertCounts)
    rejections: list[Rejection] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def studies_per_second(self) -> float:
        return self.counts.total / self.seconds if self.seconds else 0.0


def _split_criteria(text: str) -> dict | None:
    if not text:
        return None
    try:
        from trialfinder.eligibility.criteria import split_criteria
    except ImportError:  # the eligibility package is optional for storage
        return None
    return split_criteria(text).to_dict()


def prepare(item: SourceRecord) -> PreparedStudy:
    """Validate and normalise one record and serialise it once; raises :class:`RecordError`."""
    study = normalize(item.record)
    blob = orjson.dumps(item.record)
    digest = hashlib.blake2b(blob, digest_size=16).hexdigest()
    source = item.file + (f"!{item.entry}" if item.entry else "")
    extra = {"criteria_split": _split_criteria(study.criteria), "synonyms": extract_synonyms(study)}
    return PreparedStudy(study, blob, digest, source, extra)


class Progress:
    """A one-line progress display on a terminal; silent otherwise (the caller prints a summary)."""

    def __init__(self, stream: IO[str] | None) -> None:
        self.stream = stream if stream is not None and stream.isatty() else None
        self.start = time.monotonic()
        self.last = 0.0

    def update(self, counts: UpsertCounts, force: bool = False) -> None:
        if self.stream is None:
            return
        now = time.monotonic()
        if not force and now - self.last < 0.25:
            return
        self.last = now
        rate = counts.total / max(now - self.start, 1e-9)
        self.stream.write(
            f"\r{counts.total:,} studies  {rate:,.0f}/s  added {counts.added:,}  updated {counts.updated:,}  "
            f"unchanged {counts.unchanged + counts.older:,}  rejected {counts.rejected:,}\x1b[K")
        self.stream.flush()

    def done(self) -> None:
        if self.stream is not None:
            self.stream.write("\n")
            self.stream.flush()


def ingest(
    store: Store,
    paths: Iterable[str | os.PathLike[str]],
    *,
    errors: IO[bytes] | None = None,
    progress: IO[str] | None = None,
    on_rejection: Callable[[Rejection], None] | None = None,
    batch_size: int = BATCH_SIZE,
    workers: int | None = None,
) -> IngestResult:
    """Read every study under ``paths`` and upsert it into ``store``.

    ``errors`` receives one JSON line per rejection; ``progress`` (a terminal) shows a live counter.
    ``workers``: processes that parse and normalise while this one writes (default: the number of CPUs
    for large inputs, none for small ones). Results are consumed in input order either way, so a re-run
    after an interruption sees the same sequence.
    """
    paths = [str(p) for p in paths]
    result = IngestResult()
    start = time.monotonic()
    bar = Progress(progress)
    ingest_id = store.begin_ingest(" ".join(paths))

    def reject(r: Rejection) -> None:
        result.counts.rejected += 1
        result.rejections.append(r)
        if errors is not None:
            errors.write(orjson.dumps(r.to_dict()) + b"\n")
        if on_rejection is not None:
            on_rejection(r)

    batch: list[PreparedStudy] = []
    for item in _prepared(paths, workers):
        if isinstance(item, Rejection):
            reject(item)
            continue
        batch.append(item)
        if len(batch) >= batch_size:
            result.counts += store.upsert_many(batch)
            batch = []
            bar.update(result.counts)
    if batch:
        result.counts += store.upsert_many(batch)
    bar.update(result.counts, force=True)
    bar.done()
    result.seconds = time.monotonic() - start
    store.finish_ingest(ingest_id, result.counts)
    return result


class _LazyGazetteer:
    """Loads the gazetteer on first use, so JSON-only runs never pay for it."""

    def __init__(self) -> None:
        self._g: Any = None

    def __getattr__(self, name: str) -> Any:
        if self._g is None:
            from trialfinder.sources.geocode import Gazetteer

            self._g = Gazetteer()
        return getattr(self._g, name)


_WORKER_GEO: dict[str, _LazyGazetteer] = {}


def _prepare_docs(docs: list[RawDocument]) -> list[PreparedStudy | Rejection]:
    """Parse, validate and normalise a chunk of raw documents (runs in a worker process or inline)."""
    geocoder = _WORKER_GEO.setdefault("g", _LazyGazetteer())
    out: list[PreparedStudy | Rejection] = []
    for doc in docs:
        for item in parse_raw(doc, geocoder):
            if isinstance(item, Rejection):
                out.append(item)
                continue
            try:
                out.append(prepare(item))
            except RecordError as exc:
                out.append(Rejection(item.file, item.entry, exc.nct_id, exc.reason))
    return out


def _chunks(paths: list[str]) -> Iterator[list[RawDocument] | Rejection]:
    chunk: list[RawDocument] = []
    for doc in iter_documents(paths):
        if isinstance(doc, Rejection):
            if chunk:
                yield chunk
                chunk = []
            yield doc
            continue
        chunk.append(doc)
        if len(chunk) >= CHUNK_DOCS:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def _input_bytes(paths: list[str]) -> int:
    total = 0
    for p in paths:
        path = Path(p)
        if path.is_file():
            total += path.stat().st_size
        elif path.is_dir():
            total += sum(f.stat().st_size for f in path.rglob("*") if f.is_file())
    return total


def _prepared(paths: list[str], workers: int | None) -> Iterator[PreparedStudy | Rejection]:
    if workers is None:
        workers = (os.cpu_count() or 1) if _input_bytes(paths) >= PARALLEL_MIN_BYTES else 1
    if workers <= 1:
        for chunk in _chunks(paths):
            yield from [chunk] if isinstance(chunk, Rejection) else _prepare_docs(chunk)
        return
    import multiprocessing as mp

    ctx = mp.get_context("fork" if sys.platform.startswith("linux") else "spawn")
    with ctx.Pool(workers) as pool:
        # rejections of whole archives pass straight through; chunks are prepared in order
        def work() -> Iterator[list[RawDocument]]:
            for chunk in _chunks(paths):
                if isinstance(chunk, Rejection):
                    pending.append(chunk)
                    yield []
                else:
                    yield chunk

        pending: list[Rejection] = []
        for prepared in pool.imap(_prepare_docs, work(), chunksize=1):
            while pending:
                yield pending.pop(0)
            yield from prepared
        yield from pending


def print_summary(result: IngestResult, stream: IO[str] | None = None) -> None:
    """The one summary line every ingest ends with."""
    stream = stream if stream is not None else sys.stdout
    stream.write(f"{result.counts.summary()} in {result.seconds:.1f}s "
                 f"({result.studies_per_second:,.0f} studies/s)\n")
