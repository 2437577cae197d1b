"""The storage interface every backend implements.

Callers (ingest, search, the web app, the CLI) only use this interface, so a PostgreSQL backend can
replace SQLite without any of them changing. All SQL lives in the backends.
"""

from __future__ import annotations

import abc
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

from trialfinder.model.study import NormalizedStudy


@dataclass
class UpsertCounts:
    """What one batch (or a whole ingest) did, per record."""

    added: int = 0
    updated: int = 0
    unchanged: int = 0
    #: records older than the stored version; counted separately, they are also "unchanged" in summaries
    older: int = 0
    rejected: int = 0

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

    @abc.abstractmethod
    def close(self) -> None:
        """Release the connection."""

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
