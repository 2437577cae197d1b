"""The storage interface every backend implements.

Callers (ingest, the text index, search, matching, the web app, the CLI) only use this interface, so a
PostgreSQL backend can replace SQLite without any of them changing. All SQL lives in the backends;
nothing here or in a backend imports ``index``, ``search``, ``matching`` or ``web``.

What a backend keeps: every record as ingested (the system of record), normalised facts for browsing
and geography, the synonyms the data asserts, ingest runs, and a *data sequence*: a counter raised by
every write transaction that changes studies, stamped on the rows it wrote, so derived data (the text
index) can follow the database with :meth:`Store.changed_since`.
"""

from __future__ import annotations

import abc
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson
from isal import isal_zlib

from trialfinder.errors import TrialfinderError
from trialfinder.model.study import NormalizedStudy

#: First byte of a stored record that is a raw DEFLATE stream of the study's JSON (for instance the
#: member of a bulk ``.zip`` taken as it is, so it is neither re-serialised nor re-compressed). A plain
#: JSON record starts with ``{``. The same encoding in every backend, so records copy as bytes.
RECORD_DEFLATE = b"\x01"


def stored_json(blob: bytes | memoryview) -> bytes:
    """A stored record as JSON bytes, whichever way it was stored (plain JSON or DEFLATE-compressed).

    Why bytes and not always a dict: an API page copies its records into the response as they are
    stored, and parsing ten records only to serialise them again was a fifth of a search's time.
    """
    if bytes(blob[:1]) == RECORD_DEFLATE:
        return isal_zlib.decompress(memoryview(blob)[1:], -15)  # zlib's format, inflated twice as fast
    return bytes(blob)


#: The columns of the log of ingest runs, in the order ``ingest_runs()`` gives them and the keys of
#: ``stats()["last_ingest"]`` (the same on every backend, so a copied log compares equal).
INGEST_KEYS = ("source", "started_at", "finished_at", "added", "updated", "unchanged", "older", "rejected")


def json_meta(value: str | None) -> Any:
    """A metadata value that holds JSON (``last_sync``), decoded; None when unset or not valid JSON."""
    try:
        return orjson.loads(value) if value else None
    except orjson.JSONDecodeError:
        return None


def decode_record(blob: bytes | memoryview) -> dict:
    """A stored record as a dict, whichever way it was stored (plain JSON or DEFLATE-compressed)."""
    return orjson.loads(stored_json(blob))


class StoreError(TrialfinderError):
    """Base of storage errors (the library's ``TrialfinderError`` family includes it)."""


class BudgetExceeded(StoreError):
    """A request's database work ran past its time budget and was interrupted."""


class StoreUnavailable(StoreError):
    """The database server cannot be reached (or went away mid-operation); retrying later may work.

    Raised within a few seconds, never after an open-ended wait, so a web node can answer 503.
    """


@dataclass
class UpsertCounts:
    """What one batch (or a whole ingest) did, per record."""

    added: int = 0
    updated: int = 0
    unchanged: int = 0
    #: records older than the stored version; counted separately, they are also "unchanged" in summaries
    older: int = 0
    rejected: int = 0
    #: for one batch only (not summed): the data sequence it was written as (0 when nothing changed),
    #: and the positions in the batch of the studies it wrote (for the text index)
    seq: int = 0
    written: list[int] = field(default_factory=list)
    #: the subset of ``written`` that was new to the store (the text index can add them without a delete)
    new: set[int] = field(default_factory=set)

    def __iadd__(self, other: UpsertCounts) -> UpsertCounts:
        self.added += other.added
        self.updated += other.updated
        self.unchanged += other.unchanged
        self.older += other.older
        self.rejected += other.rejected
        return self

    @property
    def total(self) -> int:
        return self.added + self.updated + self.unchanged + self.older + self.rejected

    def summary(self) -> str:
        older = f" ({self.older} older ignored)" if self.older else ""
        return (f"added {self.added}, updated {self.updated}, unchanged {self.unchanged + self.older}{older}, "
                f"rejected {self.rejected}")


@dataclass
class PreparedStudy:
    """A normalised study plus its record serialised once, ready for a backend to write."""

    study: NormalizedStudy
    record_json: bytes
    content_hash: str
    source: str = ""
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class StoredVersion:
    """One stored version of a study: when the registry last updated it, when trialfinder stored it."""

    nct_id: str
    content_hash: str
    last_update: str | None
    stored_at: str | None
    record: dict[str, Any]
    #: True for the version the store holds now (the others were replaced)
    current: bool = False


class Store(abc.ABC):
    """A database of studies: the record as ingested plus normalised, indexed facts."""

    url: str

    @abc.abstractmethod
    def upsert_many(self, studies: Iterable[PreparedStudy]) -> UpsertCounts:
        """Store a batch atomically: newer versions replace, same version is a no-op, older is ignored.

        Two different records with the same last-update date (or none, as in API pages fetched with
        ``fields``): the fuller one is kept, so the result never depends on the order of the inputs.
        """

    @abc.abstractmethod
    def get(self, nct_id: str) -> dict | None:
        """The record as ingested, or None."""

    def get_many(self, nct_ids: list[str]) -> dict[str, dict]:
        """Records by NCT id in one round trip (missing ones are absent from the result)."""
        return {nct: orjson.loads(raw) for nct, raw in self.get_many_json(nct_ids).items()}

    @abc.abstractmethod
    def get_many_json(self, nct_ids: list[str]) -> dict[str, bytes]:
        """Records by NCT id as their stored JSON bytes, in one round trip (for result pages)."""

    @abc.abstractmethod
    def existing_ids(self, nct_ids: Iterable[str]) -> set[str]:
        """Which of these NCT ids are stored."""

    @abc.abstractmethod
    def data_seq(self) -> int:
        """The data sequence of the last write transaction that changed studies (0: none yet)."""

    @abc.abstractmethod
    def changed_since(self, seq: int, chunk: int = 2000) -> Iterator[list[tuple[str, bytes, int]]]:
        """(NCT id, stored record bytes, sequence) of every study written after ``seq``, in chunks.

        ``seq=-1`` gives every study. Bytes decode with :func:`decode_record`.
        """

    @abc.abstractmethod
    def index_path(self) -> Path:
        """Where this database's derived text index lives on this machine (rebuildable at any time)."""

    @abc.abstractmethod
    def site_points(self, chunk: int = 100_000, *, after_seq: int | None = None
                    ) -> Iterator[tuple[list[int], list[int], list[float], list[float], list[bool]]]:
        """Sites with coordinates, in chunks of columns: (location ids, NCT numbers, lat, lon, recruiting).

        With ``after_seq``, only the sites of studies written after that data sequence.
        """

    @abc.abstractmethod
    def studies_changed_after(self, seq: int, limit: int) -> list[int] | None:
        """NCT numbers of the studies written after data sequence ``seq``; None when more than ``limit``.

        Why: after a sync, the in-memory site coordinates are patched for these studies in milliseconds
        instead of all sites being read again (seconds at registry size, past a request's budget).
        """

    @abc.abstractmethod
    def locations_by_id(self, lids: Iterable[int]) -> dict[int, dict[str, Any]]:
        """Sites by location id: facility, city, state, zip, country, status, lat, lon, derived."""

    @abc.abstractmethod
    def synonyms(self, term: str, kinds: tuple[str, ...]) -> list[tuple[str, str, int]]:
        """(kind, expansion, number of studies asserting it) for a folded term, most supported first."""

    @abc.abstractmethod
    def location_counts(self, country: str | None = None, state: str | None = None) -> list[tuple[str, int]]:
        """Studies per country, per state of a country, or per city of a state (trials by location)."""

    @abc.abstractmethod
    def condition_counts(self, letter: str | None = None, limit: int = 2000) -> list[tuple[str, int]]:
        """Conditions with their number of studies, optionally those starting with ``letter``."""

    @abc.abstractmethod
    def field_values(self, column: str, limit: int = 100) -> list[tuple[str, int]]:
        """Distinct values of a normalised study column with counts (``/stats/field/values``)."""

    @abc.abstractmethod
    def meta(self, key: str) -> str | None:
        """A value of the database's metadata (``data_timestamp``, ``schema_version``, ...)."""

    def checkpoint(self) -> None:
        """Make everything committed durable in the main file(s) (a no-op where that is always so)."""
        return None

    def interrupt_after(self, seconds: float | None) -> None:
        """Cap the database work of the current request at ``seconds`` (None: no cap), where supported.

        The backend sets ``interrupted`` when it cut work short (its error is then a budget error).
        """
        return None

    @abc.abstractmethod
    def resolve_id(self, any_id: str) -> str | None:
        """The NCT id of a study given its NCT id or one of its alias NCT ids."""

    @abc.abstractmethod
    def stats(self) -> dict[str, Any]:
        """Counts: studies, by status, phase, study type, with locations, with coordinates, last ingest."""

    @abc.abstractmethod
    def begin_ingest(self, source: str) -> int:
        """Record the start of an ingest run; returns its id."""

    @abc.abstractmethod
    def finish_ingest(self, ingest_id: int, counts: UpsertCounts) -> None:
        """Record the end of an ingest run with its counts."""

    @abc.abstractmethod
    def count(self) -> int:
        """Number of studies stored."""

    @abc.abstractmethod
    def iter_records(self, nct_ids: Iterable[str] | None = None) -> Iterator[dict]:
        """Stored records, all of them or the given ones (in the given order, missing ones skipped)."""

    def record_sizes(self) -> Iterator[tuple[str, int]]:
        """(NCT id, bytes of the record as compact JSON) for every study, for ``/stats/size``.

        This generic version serialises every record; backends override it with sizes kept at ingest.
        """
        import orjson

        for rec in self.iter_records():
            nct = rec.get("protocolSection", {}).get("identificationModule", {}).get("nctId", "")
            yield nct, len(orjson.dumps(rec))

    # -- sync state, record history and saved searches (issue 12) ------------------------------------
    # Not abstract: a backend without them still stores and searches; ``trialfinder sync``, ``history``
    # and ``alerts`` then say clearly that this backend cannot do it. Ten methods, all small.

    def _unsupported(self, what: str) -> StoreError:
        return StoreError(f"{type(self).__name__} does not support {what} yet")

    def set_meta(self, key: str, value: str | None) -> None:
        """Set (or, with None, remove) a metadata value, committed at once: the sync cursor, the source's
        dataTimestamp, ``ingest_started`` (which ``serve`` reads before it would load its sample)."""
        raise self._unsupported("metadata writes")

    def newest_update(self) -> str | None:
        """The newest ``lastUpdatePostDate`` stored (ISO date), the basis of the sync watermark."""
        raise self._unsupported("sync")

    def version_keys(self, nct_ids: Iterable[str] | None = None) -> dict[str, tuple[str | None, str]]:
        """NCT id -> (stored ``lastUpdatePostDate``, content hash), of every study or of the given ones:
        reconcile compares the dates with the source, alerts the hashes with what they saw last."""
        raise self._unsupported("sync")

    def set_absent(self, nct_ids: Iterable[str], since: str | None) -> int:
        """Mark studies as absent at the source since ``since`` (None: present again); returns rows changed.

        A study once marked keeps its first ``since`` when marked again."""
        raise self._unsupported("reconcile")

    def absent(self) -> dict[str, str]:
        """NCT id -> since when the source no longer lists it (studies kept, flagged by reconcile)."""
        return {}

    def versions(self, nct_id: str) -> list[StoredVersion]:
        """Every version of a study ever stored, oldest first; the last one is the current record.

        Written in the same transaction as the upsert that replaced it, so history never misses a version.
        """
        raise self._unsupported("record history")

    def try_lock(self, name: str) -> Callable[[], None] | None:
        """Take the database-wide exclusive lock ``name`` (e.g. ``"sync"``) without waiting: a function
        that releases it, or None when another process holds it. The lock dies with its holder (even by
        ``kill -9``), so a crash never leaves it behind. Default: ``flock`` on a file beside the database."""
        import fcntl
        import os

        path = Path(f"{self.url}.{name}.lock")
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            return None

        def release() -> None:
            fcntl.flock(fd, fcntl.LOCK_UN)
            os.close(fd)
        return release

    def dump_versions(self) -> list[tuple[str, str, str | None, str | None, str | None, bytes]]:
        """Every archived (replaced) version as stored: (nct id, content hash, last update, stored at,
        replaced at, record blob), for ``trialfinder copy``."""
        raise self._unsupported("record history")

    def add_versions(self, rows: Iterable[tuple[str, str, str | None, str | None, str | None, bytes]]) -> None:
        """Store archived versions as dumped by :meth:`dump_versions` (one per study and content hash)."""
        raise self._unsupported("record history")

    def alert(self, name: str) -> dict[str, Any] | None:
        """A saved search (its JSON document: query, delivery, what its last check saw), or None."""
        raise self._unsupported("saved searches")

    def alerts(self) -> list[dict[str, Any]]:
        """Every saved search, by name."""
        raise self._unsupported("saved searches")

    def put_alert(self, name: str, doc: dict[str, Any]) -> None:
        """Create or replace a saved search's document."""
        raise self._unsupported("saved searches")

    def delete_alert(self, name: str) -> bool:
        """Remove a saved search; False when there was none of that name."""
        raise self._unsupported("saved searches")

    @abc.abstractmethod
    def close(self) -> None:
        """Release the connection."""

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def upsert_verdict(version: Any, digest: str, size: int | None,
                   old: tuple[int, Any, str, int | None] | None) -> str:
    """What an upsert does with an incoming version against the stored one (``(sid, version, hash,
    size)``, or None): ``"add"``, ``"replace"``, ``"unchanged"`` or ``"older"``. One rule for every
    backend: the newer last-update date wins; the same content is a no-op; equal dates (or none on either
    side, as in API pages fetched with ``fields``) but other content keep the fuller record, so the
    outcome does not depend on the order of the inputs and re-ingesting the same files changes nothing."""
    if old is None:
        return "add"
    _sid, old_version, old_hash, old_size = old
    if old_hash == digest:
        return "unchanged"
    if version > old_version or (version == old_version and (size or 0, digest) > (old_size or 0, old_hash)):
        return "replace"
    return "unchanged" if version == old_version else "older"
