"""Readers for every format ClinicalTrials.gov records come in.

``iter_records(paths)`` walks files, directories (recursively) and archives (``.zip``, ``.tar.gz``,
``.tgz``, ``.tar``) and yields, in a stable order, either a :class:`SourceRecord` (a parsed API v2 study
dict) or a :class:`Rejection` (file, archive entry, NCT id if known, reason). A bad entry never stops the
walk: the caller stores the good records and reports the rejections.

Size limits (:class:`Limits`: one record, one document, an archive member's compression ratio) are
checked before anything is inflated or parsed, so a zip bomb or a record with a 200 MB field is
rejected with the reason instead of filling memory; NDJSON files are read line by line whatever their
size.

Formats: API v2 JSON (one study, an API page ``{"studies": [...]}``, a JSON array, NDJSON), the bulk
``ctg-studies.json.zip``, and legacy ``<clinical_study>`` XML (converted to v2 by
:mod:`trialfinder.sources.legacy_xml`).
"""

from __future__ import annotations

import os
import tarfile
import zipfile
import zlib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

from trialfinder.model.study import RecordError, record_nct_id

JSON_SUFFIXES = (".json",)
NDJSON_SUFFIXES = (".ndjson", ".jsonl")
XML_SUFFIXES = (".xml",)
ARCHIVE_SUFFIXES = (".zip", ".tar.gz", ".tgz", ".tar")


@dataclass(slots=True)
class SourceRecord:
    """One study read from a source, as an API v2 dict."""

    record: dict
    file: str
    entry: str | None = None


@dataclass(slots=True)
class Rejection:
    """A record (or a whole file or archive entry) that could not be read, and why."""

    file: str
    entry: str | None
    nct_id: str | None
    reason: str

    def to_dict(self) -> dict[str, Any]:
        return {"file": self.file, "entry": self.entry, "nct_id": self.nct_id, "reason": self.reason}

    def __str__(self) -> str:
        where = self.file + (f"!{self.entry}" if self.entry else "")
        return f"{where}: {self.nct_id + ': ' if self.nct_id else ''}{self.reason}"


Item = SourceRecord | Rejection

MB = 1 << 20


@dataclass(frozen=True, slots=True)
class Limits:
    """How large one input may be, so that ingest memory stays bounded whatever the input.

    Why each: ``max_record_bytes`` bounds what is stored and inflated again on every read of a study
    (the largest real study record is about 5 MB); ``max_document_bytes`` bounds one file or archive
    member that must be parsed as a whole (a JSON page or array, an XML document; NDJSON files are
    streamed line by line instead); ``max_ratio`` catches zip bombs (JSON compresses 5-15:1, a bomb
    1000:1) on members above ``ratio_min_bytes`` (small members of repetitive text may compress well).
    Environment: ``TRIALFINDER_MAX_RECORD_MB``, ``TRIALFINDER_MAX_DOCUMENT_MB``, ``TRIALFINDER_MAX_RATIO``.
    """

    max_record_bytes: int = 16 * MB
    max_document_bytes: int = 64 * MB
    max_ratio: float = 100.0
    ratio_min_bytes: int = 1 * MB

    @classmethod
    def from_env(cls, environ: dict[str, str] | None = None, **overrides: float | None) -> Limits:
        """Defaults, then ``TRIALFINDER_MAX_*`` variables, then ``overrides`` (None: not given).

        Raises ``ValueError`` naming the variable for a value that is not a positive number."""
        env = os.environ if environ is None else environ
        values: dict[str, float] = {}
        for key, var, scale in (("max_record_bytes", "TRIALFINDER_MAX_RECORD_MB", MB),
                                ("max_document_bytes", "TRIALFINDER_MAX_DOCUMENT_MB", MB),
                                ("max_ratio", "TRIALFINDER_MAX_RATIO", 1)):
            raw: float | str | None = overrides.get(key.replace("_bytes", "_mb"), overrides.get(key))
            name = var
            if raw is None:
                raw = env.get(var)
            else:
                name = "--" + key.replace("_bytes", "_mb").replace("_", "-")
            if raw is None or raw == "":
                continue
            try:
                number = float(raw)
            except ValueError:
                raise ValueError(f"{name} must be a number, got {raw!r}") from None
            if not number > 0:
                raise ValueError(f"{name} must be positive, got {raw!r}")
            values[key] = number * scale
        default = cls()
        return cls(max_record_bytes=int(values.get("max_record_bytes", default.max_record_bytes)),
                   max_document_bytes=int(values.get("max_document_bytes", default.max_document_bytes)),
                   max_ratio=values.get("max_ratio", default.max_ratio))

    def record_error(self, size: int) -> str | None:
        """Why a record of ``size`` bytes is refused, or None."""
        if size > self.max_record_bytes:
            return (f"record is {_mb(size)}, larger than the {_mb(self.max_record_bytes)} limit for one record "
                    "(TRIALFINDER_MAX_RECORD_MB / --max-record-mb)")
        return None

    def document_error(self, size: int, what: str = "file") -> str | None:
        """Why a document (file or archive member) of ``size`` bytes, parsed as a whole, is refused."""
        if size > self.max_document_bytes:
            return (f"{what} is {_mb(size)}, larger than the {_mb(self.max_document_bytes)} limit for one "
                    "document (TRIALFINDER_MAX_DOCUMENT_MB / --max-document-mb; NDJSON files have no such limit)")
        return None

    def member_error(self, size: int, compressed: int) -> str | None:
        """Why an archive member declaring ``size`` bytes from ``compressed`` bytes is refused, or None."""
        if size > self.ratio_min_bytes and size > self.max_ratio * max(compressed, 1):
            return (f"archive member inflates {compressed:,} bytes to {_mb(size)} (ratio {size / max(compressed, 1):,.0f}:1, "
                    f"limit {self.max_ratio:,.0f}:1; a zip bomb?) (TRIALFINDER_MAX_RATIO / --max-ratio)")
        return self.document_error(size, "archive member")


DEFAULT_LIMITS = Limits()


def _mb(size: int) -> str:
    return f"{size / MB:,.1f} MB"


def document_kind(name: str) -> str | None:
    """What a file or archive member name holds: "archive", "ndjson", "json", "xml", or None (skipped)."""
    low = name.lower()
    if low.endswith(ARCHIVE_SUFFIXES):
        return "archive"
    if low.endswith(NDJSON_SUFFIXES):
        return "ndjson"
    if low.endswith(JSON_SUFFIXES):
        return "json"
    if low.endswith(XML_SUFFIXES):
        return "xml"
    return None


def parse_json_document(data: bytes, file: str, entry: str | None = None) -> Iterator[Item]:
    """Yield the studies of one JSON document: a study, an API page, an array, or NDJSON text."""
    try:
        doc = orjson.loads(data)
    except orjson.JSONDecodeError as exc:
        # Several JSON values one per line is NDJSON; anything else is a broken document.
        if data.lstrip().startswith(b"{") and b"\n" in data.strip():
            yield from parse_ndjson(data, file, entry)
            return
        yield Rejection(file, entry, None, f"invalid JSON: {exc}")
        return
    if isinstance(doc, dict) and "studies" in doc and "protocolSection" not in doc:
        studies = doc["studies"]
        if not isinstance(studies, list):
            yield Rejection(file, entry, None, "'studies' must be a list")
            return
        for i, rec in enumerate(studies):
            yield _record(rec, file, entry, f"studies[{i}]")
    elif isinstance(doc, list):
        for i, rec in enumerate(doc):
            yield _record(rec, file, entry, f"[{i}]")
    else:
        yield _record(doc, file, entry, None)


def parse_ndjson(data: bytes, file: str, entry: str | None = None, first_line: int = 1,
                 limits: Limits = DEFAULT_LIMITS) -> Iterator[Item]:
    """Yield one study per non-empty line; a bad line is rejected with its line number."""
    for lineno, line in enumerate(data.splitlines(), first_line):
        if not line.strip():
            continue
        where = f"line {lineno}"
        too_big = limits.record_error(len(line))
        if too_big:
            yield Rejection(file, entry, None, f"{where}: {too_big}")
            continue
        try:
            rec = orjson.loads(line)
        except orjson.JSONDecodeError as exc:
            yield Rejection(file, entry, None, f"{where}: invalid JSON: {exc}")
            continue
        yield _record(rec, file, entry, where)


def _record(rec: Any, file: str, entry: str | None, where: str | None) -> Item:
    if not isinstance(rec, dict):
        prefix = f"{where}: " if where else ""
        return Rejection(file, entry, None, f"{prefix}a study must be a JSON object, got {type(rec).__name__}")
    if "protocolSection" not in rec:
        prefix = f"{where}: " if where else ""
        return Rejection(file, entry, record_nct_id(rec), f"{prefix}not a ClinicalTrials.gov study (no protocolSection)")
    return SourceRecord(rec, file, entry)


def parse_xml_document(data: bytes, file: str, entry: str | None = None, geocoder: Any = None) -> Item:
    """Convert one legacy ``<clinical_study>`` XML document to a v2 record."""
    from trialfinder.sources import legacy_xml

    try:
        return SourceRecord(legacy_xml.convert(data, geocoder=geocoder), file, entry)
    except (RecordError, ValueError) as exc:
        reason = getattr(exc, "reason", None) or str(exc)
        return Rejection(file, entry, getattr(exc, "nct_id", None), reason)


def parse_bytes(data: bytes, name: str, file: str, entry: str | None, geocoder: Any = None,
                first_line: int = 1, limits: Limits = DEFAULT_LIMITS) -> Iterator[Item]:
    """Dispatch one file's bytes on its name."""
    kind = document_kind(name)
    if kind == "json":
        yield from parse_json_document(data, file, entry)
    elif kind == "ndjson":
        yield from parse_ndjson(data, file, entry, first_line, limits)
    elif kind == "xml":
        yield parse_xml_document(data, file, entry, geocoder)


@dataclass(slots=True)
class RawDocument:
    """The bytes of one file or archive entry, not parsed yet (so parsing can run in worker processes)."""

    data: bytes
    name: str
    file: str
    entry: str | None = None
    #: line number of the first line of ``data`` (an NDJSON file is read in pieces of whole lines)
    first_line: int = 1


def parse_raw(doc: RawDocument, geocoder: Any = None, limits: Limits = DEFAULT_LIMITS) -> list[Item]:
    """Parse one raw document into its studies or rejections."""
    return list(parse_bytes(doc.data, doc.name, doc.file, doc.entry, geocoder, doc.first_line, limits))


#: Bytes of whole NDJSON lines handed on at a time when an NDJSON file is streamed.
NDJSON_PIECE_BYTES = 1 << 20


def iter_ndjson_file(path: str, limits: Limits = DEFAULT_LIMITS) -> Iterator[RawDocument | Rejection]:
    """An NDJSON file as pieces of whole lines (about ``NDJSON_PIECE_BYTES`` each), never all at once.

    A line longer than the record limit is skipped as it is read (its bytes are never held) and
    rejected with its line number; the lines around it are kept."""
    cap = limits.max_record_bytes
    try:
        fh = open(path, "rb")  # noqa: SIM115 - closed below
    except OSError as exc:
        yield Rejection(path, None, None, f"cannot read file: {exc.strerror or exc}")
        return
    with fh:
        lines: list[bytes] = []
        size = 0
        first = lineno = 1
        while True:
            line = fh.readline(cap + 1)
            if not line:
                break
            if len(line) > cap and not line.endswith(b"\n"):
                total = len(line)
                while line and not line.endswith(b"\n"):  # skip the rest of the line in bounded reads
                    line = fh.readline(NDJSON_PIECE_BYTES)
                    total += len(line)
                if lines:
                    yield RawDocument(b"".join(lines), path, path, None, first)
                    lines, size = [], 0
                yield Rejection(path, None, None, f"line {lineno}: {limits.record_error(total)}")
                lineno += 1
                first = lineno
                continue
            lines.append(line)
            size += len(line)
            lineno += 1
            if size >= NDJSON_PIECE_BYTES:
                yield RawDocument(b"".join(lines), path, path, None, first)
                lines, size, first = [], 0, lineno
        if lines:
            yield RawDocument(b"".join(lines), path, path, None, first)


def _iter_zip(path: str, limits: Limits = DEFAULT_LIMITS) -> Iterator[RawDocument | Rejection]:
    try:
        zf = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError) as exc:
        yield Rejection(path, None, None, f"unreadable zip archive: {exc}")
        return
    with zf:
        for info in sorted(zf.infolist(), key=lambda i: i.filename):
            if info.is_dir() or document_kind(info.filename) in (None, "archive"):
                continue
            too_big = limits.member_error(info.file_size, info.compress_size)
            if too_big:
                yield Rejection(path, info.filename, _nct_from_name(info.filename), too_big)
                continue
            try:
                data = zf.read(info)  # bounded: zipfile stops at the declared size and checks the CRC
            except (zipfile.BadZipFile, zlib.error, OSError, EOFError) as exc:
                yield Rejection(path, info.filename, _nct_from_name(info.filename), f"corrupt archive entry: {exc}")
                continue
            yield RawDocument(data, info.filename, path, info.filename)


def _iter_tar(path: str, limits: Limits = DEFAULT_LIMITS) -> Iterator[RawDocument | Rejection]:
    try:
        tf = tarfile.open(path, mode="r:*")
    except (tarfile.TarError, OSError, EOFError, zlib.error) as exc:
        yield Rejection(path, None, None, f"unreadable tar archive: {exc}")
        return
    with tf:
        while True:
            try:
                member = tf.next()
            except (tarfile.TarError, OSError, EOFError, zlib.error) as exc:
                yield Rejection(path, None, None, f"truncated or corrupt tar archive: {exc}")
                return
            if member is None:
                return
            if not member.isfile() or document_kind(member.name) in (None, "archive"):
                continue
            too_big = limits.document_error(member.size, "archive member")
            if too_big:  # skipped by streaming past it, never held
                yield Rejection(path, member.name, _nct_from_name(member.name), too_big)
                continue
            try:
                fh = tf.extractfile(member)
                data = fh.read() if fh else b""
                if len(data) != member.size:
                    raise EOFError(f"entry truncated: {len(data)} of {member.size} bytes")
            except (tarfile.TarError, OSError, EOFError, zlib.error) as exc:
                yield Rejection(path, member.name, _nct_from_name(member.name), f"corrupt archive entry: {exc}")
                return
            yield RawDocument(data, member.name, path, member.name)


def _nct_from_name(name: str) -> str | None:
    stem = os.path.basename(name).split(".")[0]
    return stem if stem.startswith("NCT") and len(stem) == 11 else None


def _iter_path(path: Path, limits: Limits = DEFAULT_LIMITS) -> Iterator[RawDocument | Rejection]:
    name = str(path)
    low = name.lower()
    if low.endswith(".zip"):
        yield from _iter_zip(name, limits)
    elif low.endswith((".tar.gz", ".tgz", ".tar")):
        yield from _iter_tar(name, limits)
    elif document_kind(name) == "ndjson":
        yield from iter_ndjson_file(name, limits)
    else:
        try:
            too_big = limits.document_error(path.stat().st_size)
            if too_big:
                yield Rejection(name, None, None, too_big)
                return
            data = path.read_bytes()
        except OSError as exc:
            yield Rejection(name, None, None, f"cannot read file: {exc.strerror or exc}")
            return
        yield RawDocument(data, name, name, None)


def iter_records(paths: Iterable[str | os.PathLike[str]], geocoder: Any = None,
                 limits: Limits = DEFAULT_LIMITS) -> Iterator[Item]:
    """Yield every study (or rejection) found under ``paths``, in a stable order.

    Directories are walked recursively in sorted order, so that a re-run after an interruption visits
    records in the same order and its upserts are no-ops up to the point where the first run stopped.
    """
    for doc in iter_documents(paths, limits):
        if isinstance(doc, Rejection):
            yield doc
        else:
            yield from parse_bytes(doc.data, doc.name, doc.file, doc.entry, geocoder, doc.first_line, limits)


def input_files(paths: Iterable[str | os.PathLike[str]]) -> Iterator[Path]:
    """The files under ``paths`` in the order they are read: directories are walked in sorted order
    (files of a known kind only); other paths are passed on as given, to be read or rejected.

    A text-index directory met on the way (a database's derived ``.index`` beside it, recognised by
    tantivy's ``.managed.json``) is skipped: its ``meta.json`` is not a study.
    """
    for p in paths:
        path = Path(p)
        if path.is_dir():
            for root, dirs, files in os.walk(path):
                if ".managed.json" in files:
                    dirs.clear()
                    continue
                dirs.sort()
                for f in sorted(files):
                    if document_kind(f) is not None:
                        yield Path(root) / f
        else:
            yield path


def iter_documents(paths: Iterable[str | os.PathLike[str]],
                   limits: Limits = DEFAULT_LIMITS) -> Iterator[RawDocument | Rejection]:
    """Yield the raw documents (files and archive entries) under ``paths`` in a stable order."""
    for path in input_files(paths):
        if not path.exists():
            yield Rejection(str(path), None, None, "no such file or directory")
        elif document_kind(path.name) is None:
            yield Rejection(str(path), None, None, "unsupported file type (expected .json, .ndjson, .jsonl, .xml, .zip, .tar.gz)")
        else:
            yield from _iter_path(path, limits)
