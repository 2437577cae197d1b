"""Ingestion: sources -> validation and normalisation -> store, in atomic batches.

Why batches: each batch is one transaction, so a run killed at any point leaves the database as it was
after the last committed batch, and re-running the same command completes the job (upserts of what is
already stored are no-ops). Rejections never stop a run; they are counted, reported and optionally
written as JSON lines.

Why this shape (registry scale, see the "Ingest" section of ``benchmarks/README.md``): the database has
one writer, so everything that is not a database write runs in worker processes -- reading and
inflating archive members, parsing, validation, normalisation, synonyms, hashing, and turning each study
into the store's row tuples. The writer only assigns ids and runs one ``executemany`` per table and
batch. Work in flight is bounded, so memory stays flat whatever the input size, and results are consumed
in input order, so a re-run after an interruption sees the same sequence.
"""

from __future__ import annotations

import gc
import hashlib
import os
import queue
import sys
import threading
import time
import zipfile
import zlib
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import IO, Any, cast

import orjson
from isal import isal_zlib

from trialfinder.index.document import study_json
from trialfinder.index.follow import catch_up, index_for
from trialfinder.model.study import RecordError, normalize
from trialfinder.progress import Progress
from trialfinder.search.synonyms import extract_synonyms
from trialfinder.sources import (
    Limits,
    RawDocument,
    Rejection,
    SourceRecord,
    document_kind,
    input_files,
    iter_documents,
    parse_bytes,
)
from trialfinder.store.base import PreparedStudy, Store, UpsertCounts

#: ISA-L (a dependency) inflates zip members about twice as fast as zlib, with the same stream format.
_inflater: Any = isal_zlib.decompressobj
_INFLATE_ERRORS: tuple[type[BaseException], ...] = (zlib.error, cast("type[BaseException]", isal_zlib.error))

#: What reading one zip member with :func:`_read_member` can raise for a damaged archive.
_MEMBER_READ_ERRORS: tuple[type[BaseException], ...] = (zipfile.BadZipFile, *_INFLATE_ERRORS, OSError, EOFError)

#: Studies per transaction: large enough that the full-text index writes few, large segments; a run
#: killed mid-way loses at most this much work (never consistency).
BATCH_SIZE = 4000
#: Uncompressed bytes of documents handed to a worker at a time: large enough to amortise the
#: inter-process overhead, small enough to keep both workers busy and memory low.
CHUNK_BYTES = 1 << 20
CHUNK_DOCS = 256
#: Chunks in flight (queued, being prepared, or prepared and waiting for the writer): enough to cover
#: more than one batch, so the workers keep going while the writer commits; bounds memory whatever
#: the input size (a chunk's rows take about as much memory as its input).
INFLIGHT_CHUNKS = 160
#: Scheduling priority of the workers relative to the writer (see :func:`_worker_init`).
WORKER_NICE = 5
#: Longest time between two commits of the text index during an ingest (seconds).
INDEX_COMMIT_S = 10.0
#: How long an ingest waits for another writer of the text index (an ingest or a sync) to finish.
WRITER_WAIT_S = 3600.0
#: Below this many input bytes, worker processes cost more to start than they save.
PARALLEL_MIN_BYTES = 4 * 1024 * 1024


def sample_path() -> Path:
    """The bundled sample of real studies shipped inside the package."""
    return Path(str(resources.files("trialfinder") / "data" / "sample.zip"))


@dataclass
class IngestResult:
    """Totals of one ingest run, plus the rejections (kept so callers and tests can inspect them)."""

    counts: UpsertCounts = field(default_factory=UpsertCounts)
    rejections: list[Rejection] = field(default_factory=list)
    seconds: float = 0.0
    #: Where the wall time went, in seconds: ``write`` (store transactions), ``wait`` (the writer idle,
    #: waiting for workers), ``finish`` (end of ingest: deferred indexes), plus CPU seconds of this
    #: process (``cpu_writer``) and of the worker processes (``cpu_workers``). For benchmarks.
    timings: dict[str, float] = field(default_factory=dict)

    @property
    def studies_per_second(self) -> float:
        return self.counts.total / self.seconds if self.seconds else 0.0


def expected_studies(paths: list[str]) -> int | None:
    """How many study documents the inputs hold, where that is cheap to know (for the progress ETA).

    A zip's directory and a folder's file list are read; a tar archive or one big JSON file is not
    opened, so the total is unknown (None) and progress shows the rate only.
    """
    total = 0
    for p in paths:
        path = Path(p)
        name = path.name.lower()
        if path.is_dir():
            total += sum(1 for f in path.rglob("*") if f.suffix.lower() in (".json", ".xml"))
        elif name.endswith(".zip"):
            with zipfile.ZipFile(path) as zf:
                total += sum(1 for i in zf.infolist() if i.filename.lower().endswith((".json", ".xml")))
        elif name.endswith((".json", ".xml")) and path.is_file() and path.stat().st_size < (1 << 20):
            total += 1
        else:
            return None
    return total or None


def _counts_detail(counts: UpsertCounts) -> str:
    return (f"added {counts.added:,}  updated {counts.updated:,}  unchanged {counts.unchanged + counts.older:,}  "
            f"rejected {counts.rejected:,}")


def ingest(
    store: Store,
    paths: Iterable[str | os.PathLike[str]],
    *,
    errors: IO[bytes] | None = None,
    progress: IO[str] | None = None,
    on_rejection: Callable[[Rejection], None] | None = None,
    batch_size: int = BATCH_SIZE,
    workers: int | None = None,
    limits: Limits | None = None,
    mark_started: bool = True,
) -> IngestResult:
    """Read every study under ``paths`` and upsert it into ``store``.

    ``errors`` receives one JSON line per rejection; ``progress`` (a terminal) shows a live counter.
    ``workers``: processes that parse and normalise while this one writes (default: the number of CPUs
    for large inputs, none for small ones). Results are consumed in input order either way, so a re-run
    after an interruption sees the same sequence.
    ``limits``: record, document and compression-ratio limits (default: :meth:`Limits.from_env`); what
    exceeds them is rejected with the reason and the rest is kept.
    ``mark_started``: record in the database's metadata that an ingest has started, before anything
    else (waiting for another writer included), so ``serve`` never loads its sample into a database a
    first ingest is filling; only the sample load of ``serve`` itself passes False.
    """
    str_paths = [str(p) for p in paths]
    limits = limits if limits is not None else Limits.from_env()
    if mark_started and hasattr(store, "set_meta"):
        store.set_meta("ingest_started", time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()))
    result = IngestResult()
    start = time.monotonic()
    bar = Progress(progress, total=expected_studies(str_paths) if progress is not None else None, label="ingest")
    # one writer of the text index at a time: a second ingest (or a sync) waits for the first
    writer = index_for(store).writer(wait_s=WRITER_WAIT_S)
    try:
        catch_up(store, writer)  # an earlier run killed between its two commits left the index behind
        _run(store, str_paths, writer, result, bar, errors, on_rejection, batch_size, workers, limits)
    finally:
        writer.close()
    result.seconds = time.monotonic() - start
    return result


def ingest_records(store: Store, records: Iterable[Any], *, source: str, writer: Any,
                   result: IngestResult | None = None, commit_index: bool = True) -> UpsertCounts:
    """Upsert records already in memory (a page of the API) as one transaction, through the same
    validation, rejection and upsert rules as files; ``writer`` is the caller's text-index writer
    (``index_for(store).writer()``), held for a whole sync rather than reopened per page.

    Why here: sync must not grow a second write path. Rejections go into ``result``; the returned
    counts are this batch's.
    """
    rows_fn = getattr(store, "row_builder", None)
    prepared: list[Any] = []
    limits = Limits.from_env()  # a record from the API is held to the same size limit as one from a file
    for i, rec in enumerate(records):
        where = f"studies[{i}]"
        if not isinstance(rec, dict) or "protocolSection" not in rec:
            prepared.append(Rejection(source, where, None, "not a ClinicalTrials.gov study (no protocolSection)"))
            continue
        _prepare_one(SourceRecord(rec, source, where), None, None, rows_fn, prepared, limits)
    batch = [p for p in prepared if not isinstance(p, Rejection)]
    rejected = [p for p in prepared if isinstance(p, Rejection)]
    write: Callable[[list[Any]], UpsertCounts] = store.upsert_rows if rows_fn else store.upsert_many  # type: ignore[attr-defined]
    counts = write([rows for rows, _doc in batch]) if batch else UpsertCounts()
    counts.rejected += len(rejected)
    if counts.written:
        writer.upsert((batch[i][1] for i in counts.written if i in counts.new), new=True)
        writer.upsert(batch[i][1] for i in counts.written if i not in counts.new)
        if commit_index:
            writer.commit(counts.seq)
    if result is not None:
        result.counts += counts
        result.rejections.extend(rejected)
    return counts


def _run(store: Store, paths: list[str], writer: Any, result: IngestResult, bar: Progress,
         errors: IO[bytes] | None, on_rejection: Callable[[Rejection], None] | None, batch_size: int,
         workers: int | None, limits: Limits) -> None:
    ingest_id = store.begin_ingest(" ".join(paths))
    # Stores that take ready-made rows (SQLite) get them from the workers; others get PreparedStudy.
    rows_fn = getattr(store, "row_builder", None)
    write: Callable[[list[Any]], UpsertCounts] = store.upsert_rows if rows_fn else store.upsert_many  # type: ignore[attr-defined]

    def reject(r: Rejection) -> None:
        result.counts.rejected += 1
        result.rejections.append(r)
        if errors is not None:
            errors.write(orjson.dumps(r.to_dict()) + b"\n")
        if on_rejection is not None:
            on_rejection(r)

    timings = result.timings
    timings["write"] = timings["wait"] = 0.0
    cpu0 = _cpu()

    timings["index"] = 0.0
    state: dict[str, float] = {"seq": 0, "committed_at": time.monotonic()}

    def flush(batch: list[Any]) -> None:
        t0 = time.monotonic()
        counts = write([rows for rows, _doc in batch])
        result.counts += counts
        t1 = time.monotonic()
        timings["write"] += t1 - t0
        if counts.written:
            # the database committed first: a kill before the index commit leaves the index behind
            # (caught up on the next run), never ahead of the records
            new = counts.new
            writer.upsert((batch[i][1] for i in counts.written if i in new), new=True)
            writer.upsert(batch[i][1] for i in counts.written if i not in new)
            state["seq"] = counts.seq
            # A tantivy commit flushes segments and fsyncs: once per batch is most of the index time
            # of a large ingest. Commit at most every INDEX_COMMIT_S; searches meanwhile answer from
            # the last commit, resolved against the records (see index.follow), and a kill loses
            # nothing the next run's catch-up does not redo.
            if time.monotonic() - state["committed_at"] >= INDEX_COMMIT_S:
                writer.commit(counts.seq)
                state["committed_at"] = time.monotonic()
                state["seq"] = 0
        timings["index"] += time.monotonic() - t1
        bar.update(result.counts.total, detail=_counts_detail(result.counts))

    # The writer holds a few batches of plain tuples that never form cycles: collecting them as
    # garbage candidates again and again costs more than the whole write.
    threshold = gc.get_threshold()
    gc.set_threshold(200_000, 50, 100)
    try:
        batch: list[Any] = []
        for item in _prepared(paths, workers, rows_fn, timings, limits):
            if isinstance(item, Rejection):
                reject(item)
                continue
            batch.append(item)
            if len(batch) >= batch_size:
                flush(batch)
                batch = []
        if batch:
            flush(batch)
        if state["seq"]:
            t1 = time.monotonic()
            writer.commit(int(state["seq"]))
            timings["index"] += time.monotonic() - t1
    finally:
        gc.set_threshold(*threshold)
    bar.update(result.counts.total, detail=_counts_detail(result.counts), force=True)
    bar.finish()
    t0 = time.monotonic()
    store.finish_ingest(ingest_id, result.counts)
    timings["finish"] = time.monotonic() - t0
    cpu1 = _cpu()
    timings["cpu_writer"] = cpu1[0] - cpu0[0]
    timings["cpu_workers"] = cpu1[1] - cpu0[1]
    for table, seconds in (getattr(store, "write_timings", None) or {}).items():
        timings[f"sql_{table}"] = seconds


def _cpu() -> tuple[float, float]:
    """CPU seconds (user + system) of this process and of its finished child processes."""
    import resource

    me, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return me.ru_utime + me.ru_stime, kids.ru_utime + kids.ru_stime


# -- reading: what to hand to the workers ---------------------------------------------------------------

#: A zip member the worker reads itself: (name, local header offset, compressed size, size, CRC, method).
Member = tuple[str, int, int, int, int, int]


@dataclass(slots=True)
class _ZipTask:
    """Members of one zip archive, read, checked and inflated by the worker (not by the writer)."""

    path: str
    members: list[Member]


@dataclass(slots=True)
class _DocsTask:
    """Documents already read by the writer process (plain files, tar members, unusual zip members)."""

    docs: list[RawDocument]


Task = _ZipTask | _DocsTask


def _tasks(paths: list[str], limits: Limits) -> Iterator[Task | Rejection]:
    """Chunks of work in input order; rejections of whole files pass through in their place."""
    for path in map(str, input_files(paths)):
        if path.lower().endswith(".zip") and os.path.isfile(path):
            yield from _zip_tasks(path, limits)
            continue
        chunk: list[RawDocument] = []
        size = 0
        for doc in iter_documents([path], limits):
            if isinstance(doc, Rejection):
                if chunk:
                    yield _DocsTask(chunk)
                    chunk, size = [], 0
                yield doc
                continue
            chunk.append(doc)
            size += len(doc.data)
            if size >= CHUNK_BYTES or len(chunk) >= CHUNK_DOCS:
                yield _DocsTask(chunk)
                chunk, size = [], 0
        if chunk:
            yield _DocsTask(chunk)


def _zip_tasks(path: str, limits: Limits) -> Iterator[_ZipTask | Rejection]:
    """The members of a zip (sorted by name, as the readers do) as tasks of offsets, not bytes."""
    try:
        with zipfile.ZipFile(path) as zf:
            # plain tuples, not ZipInfo objects: 600,000 of those would take 400 MB for the whole run
            entries: list[Member] = sorted(
                ((i.filename, i.header_offset, i.compress_size, i.file_size, i.CRC,
                  i.compress_type if not i.flag_bits & 1 else -1)
                 for i in zf.infolist() if not i.is_dir() and document_kind(i.filename) not in (None, "archive")),
                key=lambda m: m[0])
    except (zipfile.BadZipFile, OSError) as exc:
        yield Rejection(path, None, None, f"unreadable zip archive: {exc}")
        return
    members: list[Member] = []
    size = 0
    for m in entries:
        too_big = limits.member_error(m[3], m[2])
        if too_big:  # refused on its declared sizes, before a byte of it is read
            if members:
                yield _ZipTask(path, members)
                members, size = [], 0
            yield Rejection(path, m[0], _nct_from_name(m[0]), too_big)
            continue
        members.append(m)
        size += m[3]
        if size >= CHUNK_BYTES or len(members) >= CHUNK_DOCS:
            yield _ZipTask(path, members)
            members, size = [], 0
    if members:
        yield _ZipTask(path, members)


def _input_bytes(paths: list[str]) -> int:
    total = 0
    for p in paths:
        path = Path(p)
        if path.is_file():
            total += path.stat().st_size
        elif path.is_dir():
            total += sum(f.stat().st_size for f in path.rglob("*") if f.is_file())
    return total


# -- the workers ------------------------------------------------------------------------------------------


class _LazyGazetteer:
    """Loads the gazetteer on first use, so JSON-only runs never pay for it."""

    def __init__(self) -> None:
        self._g: Any = None

    def __getattr__(self, name: str) -> Any:
        if self._g is None:
            from trialfinder.sources.geocode import Gazetteer

            self._g = Gazetteer()
        return getattr(self._g, name)


#: Per-process state: the gazetteer and open archive handles (a forked worker inherits the gazetteer
#: the writer loaded before forking, so it is built once).
_STATE: dict[str, Any] = {"geocoder": _LazyGazetteer(), "zips": {}}


def _nct_from_name(name: str) -> str | None:
    stem = os.path.basename(name).split(".")[0]
    return stem if stem.startswith("NCT") and len(stem) == 11 else None


def _read_member(path: str, m: Member) -> tuple[bytes, bytes | None]:
    """The bytes of one zip member and, when it is DEFLATE-compressed, its raw compressed stream.

    Reads with ``pread`` on a per-process descriptor (forked workers must not share a file offset) and
    checks size and CRC like :mod:`zipfile` does. Inflation stops one byte past the declared size (which
    the limits were checked against), so a member whose header lies about its size cannot inflate
    beyond it.
    """
    name, offset, csize, size, crc, method = m
    handles = _STATE["zips"]
    fd = handles.get(path)
    if fd is None:
        fd = handles[path] = os.open(path, os.O_RDONLY)
    header = os.pread(fd, 30, offset)
    if len(header) != 30 or header[:4] != b"PK\x03\x04":
        raise zipfile.BadZipFile("Bad magic number for file header")
    start = offset + 30 + int.from_bytes(header[26:28], "little") + int.from_bytes(header[28:30], "little")
    raw = os.pread(fd, csize, start)
    if len(raw) != csize:
        raise EOFError(f"entry truncated: {len(raw)} of {csize} bytes")
    data = _inflater(-15).decompress(raw, size + 1) if method == zipfile.ZIP_DEFLATED else raw
    if len(data) > size:
        raise zipfile.BadZipFile(f"{name!r} inflates to more than its declared {size:,} bytes")
    if len(data) != size or zlib.crc32(data) != crc:
        raise zipfile.BadZipFile(f"Bad CRC-32 for file {name!r}")
    return data, raw if method == zipfile.ZIP_DEFLATED else None


def _work(task: Task, rows_fn: Callable[..., Any] | None, limits: Limits) -> list[Any]:
    """Turn one chunk into ready-to-write studies and rejections (runs in a worker process or inline)."""
    out: list[Any] = []
    if isinstance(task, _DocsTask):
        for doc in task.docs:
            _parse_doc(doc.data, None, doc.name, doc.file, doc.entry, rows_fn, out, limits, doc.first_line)
        return out
    path = task.path
    for m in task.members:
        name = m[0]
        if m[5] not in (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED):  # encrypted, bzip2, lzma: let zipfile do it
            try:
                zf = _STATE.setdefault("zipfiles", {}).get(path) or zipfile.ZipFile(path)
                _STATE["zipfiles"][path] = zf
                data, raw = zf.read(name), None
            except (zipfile.BadZipFile, zlib.error, OSError, EOFError, RuntimeError, NotImplementedError) as exc:
                out.append(Rejection(path, name, _nct_from_name(name), f"corrupt archive entry: {exc}"))
                continue
        else:
            try:
                data, raw = _read_member(path, m)
            except _MEMBER_READ_ERRORS as exc:
                out.append(Rejection(path, name, _nct_from_name(name), f"corrupt archive entry: {exc}"))
                continue
        _parse_doc(data, raw, name, path, name, rows_fn, out, limits)
    return out


def _parse_doc(data: bytes, deflated: bytes | None, name: str, file: str, entry: str | None,
               rows_fn: Callable[..., Any] | None, out: list[Any], limits: Limits, first_line: int = 1) -> None:
    """Parse one document and append its studies (or rejections) to ``out``.

    A JSON document that is exactly one study is parsed once here and its own bytes become the stored
    record (they load back to the same dict), so it is neither re-serialised nor, for a zip member,
    re-compressed. Every other shape goes through :func:`trialfinder.sources.parse_bytes`.
    """
    doc: Any = None
    if document_kind(name) == "json":
        try:
            doc = orjson.loads(data)
        except orjson.JSONDecodeError:
            doc = None
    if isinstance(doc, dict) and "protocolSection" in doc:
        _prepare_one(SourceRecord(doc, file, entry), data, deflated, rows_fn, out, limits)
        return
    for item in parse_bytes(data, name, file, entry, _STATE["geocoder"], first_line, limits):
        if isinstance(item, Rejection):
            out.append(item)
        else:
            _prepare_one(item, None, None, rows_fn, out, limits)


def _prepare_one(item: SourceRecord, original: bytes | None, deflated: bytes | None,
                 rows_fn: Callable[..., Any] | None, out: list[Any], limits: Limits) -> None:
    blob = original if original is not None else orjson.dumps(item.record)
    too_big = limits.record_error(len(blob))
    if too_big:
        out.append(Rejection(item.file, item.entry, _record_id(item.record), too_big))
        return
    try:
        study = normalize(item.record)
    except RecordError as exc:
        out.append(Rejection(item.file, item.entry, exc.nct_id, exc.reason))
        return
    # the fingerprint of what is stored: for a zip member its compressed stream (a third of the bytes)
    digest = hashlib.blake2b(deflated if deflated is not None else blob, digest_size=16).hexdigest()
    source = item.file + (f"!{item.entry}" if item.entry else "")
    synonyms = extract_synonyms(study)
    doc = (int(study.nct_id[3:]), study_json(study))
    if rows_fn is None:
        out.append((PreparedStudy(study, blob, digest, source, {"synonyms": synonyms}), doc))
    elif deflated is not None:
        out.append((rows_fn(study, deflated, digest, source, synonyms, deflated=True, size=len(blob)), doc))
    else:
        out.append((rows_fn(study, blob, digest, source, synonyms), doc))


def _record_id(rec: dict) -> str | None:
    from trialfinder.model.study import record_nct_id

    return record_nct_id(rec)


def _worker_init() -> None:
    # Parsed records are trees of thousands of dicts and lists, freed study by study and never cyclic:
    # the default thresholds would scan them for cycles over and over.
    gc.set_threshold(100_000, 50, 100)
    gc.freeze()
    # The single writer is the pipeline's bottleneck: when CPUs are short, it should run first.
    try:
        os.nice(WORKER_NICE)
    except OSError:  # pragma: no cover - not permitted on this system
        pass


# -- running the workers -----------------------------------------------------------------------------------


def _prepared(paths: list[str], workers: int | None, rows_fn: Callable[..., Any] | None,
              timings: dict[str, float], limits: Limits) -> Iterator[Any]:
    if workers is None:
        workers = (os.cpu_count() or 1) if _input_bytes(paths) >= PARALLEL_MIN_BYTES else 1
    tasks = _tasks(paths, limits)
    if workers <= 1:
        for task in tasks:
            if isinstance(task, Rejection):
                yield task
            else:
                yield from _work(task, rows_fn, limits)
        return
    first = next(tasks, None)
    if first is None:
        return
    if _has_xml(first):
        _STATE["geocoder"].load()  # built once here and shared with the forked workers
    import multiprocessing as mp

    ctx = mp.get_context("fork" if sys.platform.startswith("linux") else "spawn")
    with ctx.Pool(workers, initializer=_worker_init) as pool:
        feeder = _Feeder(pool, _chain(first, tasks), rows_fn, limits)
        try:
            while True:
                entry = feeder.queue.get()
                if entry is _Feeder.DONE:
                    break
                if isinstance(entry, BaseException):
                    raise entry
                yield from _resolve(entry, timings)
        finally:
            feeder.stop()


class _Feeder(threading.Thread):
    """Hands chunks to the pool from a thread of its own, so the workers keep going while the writer
    is busy committing a batch (the writer's SQLite calls release the GIL).

    Its queue holds the pending results in input order (a rejection of a whole file waits in its
    place), and is bounded, which bounds the work in flight.
    """

    DONE = object()

    def __init__(self, pool: Any, tasks: Iterator[Task | Rejection], rows_fn: Callable[..., Any] | None,
                 limits: Limits) -> None:
        super().__init__(name="ingest-feeder", daemon=True)
        self.pool, self.tasks, self.rows_fn, self.limits = pool, tasks, rows_fn, limits
        self.queue: queue.Queue[Any] = queue.Queue(maxsize=INFLIGHT_CHUNKS)
        self.stopping = threading.Event()
        self.start()

    def run(self) -> None:
        try:
            for task in self.tasks:
                entry = task if isinstance(task, Rejection) else self.pool.apply_async(_work, (task, self.rows_fn, self.limits))
                if not self._put(entry):
                    return
        except BaseException as exc:  # handed to the consumer, which re-raises it
            self._put(exc)
        finally:
            self._put(self.DONE)

    def _put(self, entry: Any) -> bool:
        while not self.stopping.is_set():
            try:
                self.queue.put(entry, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def stop(self) -> None:
        self.stopping.set()
        self.join(timeout=5)


def _chain(first: Task | Rejection, rest: Iterator[Task | Rejection]) -> Iterator[Task | Rejection]:
    yield first
    yield from rest


def _resolve(entry: Any, timings: dict[str, float]) -> list[Any]:
    if isinstance(entry, Rejection):
        return [entry]
    t0 = time.monotonic()
    out = entry.get()
    timings["wait"] += time.monotonic() - t0
    return out


def _has_xml(task: Task | Rejection) -> bool:
    if isinstance(task, _ZipTask):
        return any(document_kind(m[0]) == "xml" for m in task.members)
    if isinstance(task, _DocsTask):
        return any(document_kind(d.name) == "xml" for d in task.docs)
    return False


def print_summary(result: IngestResult, stream: IO[str] | None = None) -> None:
    """The one summary line every ingest ends with."""
    stream = stream if stream is not None else sys.stdout
    stream.write(f"{result.counts.summary()} in {result.seconds:.1f}s "
                 f"({result.studies_per_second:,.0f} studies/s)\n")
