"""Readers for every format ClinicalTrials.gov records come in.

``iter_records(paths)`` walks files, directories (recursively) and archives (``.zip``, ``.tar.gz``,
``.tgz``, ``.tar``) and yields, in a stable order, either a :class:`SourceRecord` (a parsed API v2 study
dict) or a :class:`Rejection` (file, archive entry, NCT id if known, reason). A bad entry never stops the
walk: the caller stores the good records and reports the rejections.

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


def parse_ndjson(data: bytes, file: str, entry: str | None = None) -> Iterator[Item]:
    """Yield one study per non-empty line; a bad line is rejected with its line number."""
    for lineno, line in enumerate(data.splitlines(), 1):
        if not line.strip():
            continue
        where = f"line {lineno}"
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


def parse_bytes(data: bytes, name: str, file: str, entry: str | None, geocoder: Any = None) -> Iterator[Item]:
    """Dispatch one file's bytes on its name."""
    kind = document_kind(name)
    if kind == "json":
        yield from parse_json_document(data, file, entry)
    elif kind == "ndjson":
        yield from parse_ndjson(data, file, entry)
    elif kind == "xml":
        yield parse_xml_document(data, file, entry, geocoder)


@dataclass(slots=True)
class RawDocument:
    """The bytes of one file or archive entry, not parsed yet (so parsing can run in worker processes)."""

    data: bytes
    name: str
    file: str
    entry: str | None = None


def parse_raw(doc: RawDocument, geocoder: Any = None) -> list[Item]:
    """Parse one raw document into its studies or rejections."""
    return list(parse_bytes(doc.data, doc.name, doc.file, doc.entry, geocoder))


def _iter_zip(path: str) -> Iterator[RawDocument | Rejection]:
    try:
        zf = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError) as exc:
        yield Rejection(path, None, None, f"unreadable zip archive: {exc}")
        return
    with zf:
        for info in sorted(zf.infolist(), key=lambda i: i.filename):
            if info.is_dir() or document_kind(info.filename) in (None, "archive"):
                continue
            try:
                data = zf.read(info)
            except (zipfile.BadZipFile, zlib.error, OSError, EOFError) as exc:
                yield Rejection(path, info.filename, _nct_from_name(info.filename), f"corrupt archive entry: {exc}")
                continue
            yield RawDocument(data, info.filename, path, info.filename)


def _iter_tar(path: str) -> Iterator[RawDocument | Rejection]:
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


def _iter_path(path: Path) -> Iterator[RawDocument | Rejection]:
    name = str(path)
    low = name.lower()
    if low.endswith(".zip"):
        yield from _iter_zip(name)
    elif low.endswith((".tar.gz", ".tgz", ".tar")):
        yield from _iter_tar(name)
    else:
        try:
            data = path.read_bytes()
        except OSError as exc:
            yield Rejection(name, None, None, f"cannot read file: {exc.strerror or exc}")
            return
        yield RawDocument(data, name, name, None)


def iter_records(paths: Iterable[str | os.PathLike[str]], geocoder: Any = None) -> Iterator[Item]:
    """Yield every study (or rejection) found under ``paths``, in a stable order.

    Directories are walked recursively in sorted order, so that a re-run after an interruption visits
    records in the same order and its upserts are no-ops up to the point where the first run stopped.
    """
    for doc in iter_documents(paths):
        if isinstance(doc, Rejection):
            yield doc
        else:
            yield from parse_bytes(doc.data, doc.name, doc.file, doc.entry, geocoder)


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


def iter_documents(paths: Iterable[str | os.PathLike[str]]) -> Iterator[RawDocument | Rejection]:
    """Yield the raw documents (files and archive entries) under ``paths`` in a stable order."""
    for path in input_files(paths):
        if not path.exists():
            yield Rejection(str(path), None, None, "no such file or directory")
        elif document_kind(path.name) is None:
            yield Rejection(str(path), None, None, "unsupported file type (expected .json, .ndjson, .jsonl, .xml, .zip, .tar.gz)")
        else:
            yield from _iter_path(path)
