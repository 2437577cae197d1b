"""One batch of studies on its way into a backend: the rows both backends store, and the writer's loop.

Why one module for both backends: SQLite and PostgreSQL keep the same tables with the same columns, and
must give the same ids and make the same upsert decisions for the same inputs (docs/postgresql.md,
"Same answers"). The row builder (:func:`study_rows`, run in the ingest's worker processes), the
column order and the loop that decides, per study, between add, replace and skip are therefore written
once here; a backend's :class:`BatchWriter` subclass only says how it finds stored versions, archives
and removes a replaced one, and sends the queued rows (``executemany`` for SQLite, ``COPY`` for
PostgreSQL).
"""

from __future__ import annotations

import abc
import time
from collections.abc import Sequence
from typing import Any

from trialfinder.store.base import RECORD_DEFLATE, UpsertCounts, upsert_verdict

#: ``studies`` columns filled from :func:`study_rows`, in row order (``sid``, ``ingested_at``, ``seq``
#: and, in old SQLite files, ``record`` are added by the writer).
STUDY_VALUE_COLUMNS = (
    "nct_id", "last_update", "content_hash", "source", "brief_title", "official_title", "acronym",
    "org_study_id", "overall_status", "study_type", "phases", "allocation", "intervention_model", "masking",
    "primary_purpose", "lead_sponsor", "lead_class", "sex", "healthy_volunteers", "min_age", "max_age",
    "std_ages", "enrollment", "enrollment_type", "start_date", "first_posted", "last_update_posted",
    "completion_date", "primary_completion_date", "has_results", "n_locations", "n_geo", "record_size")

#: Child tables keyed by ``sid``, in the order of :func:`study_rows`'s child tuples.
CHILD_TABLES = ("identifiers", "conditions", "interventions", "intervention_meshes", "arms", "sponsors",
                "contacts", "synonyms")

#: One study ready for a backend's ``upsert_rows``: (``studies`` values in :data:`STUDY_VALUE_COLUMNS`
#: order, child rows per :data:`CHILD_TABLES` without ``sid``, locations ``(facility, city, state, zip,
#: country, status, lat, lon, derived)``, record blob).
StudyRows = tuple[tuple, tuple[list, ...], list, bytes]


def utc_now() -> str:
    """The time stamp every backend writes (ingest runs, ingest times, history): UTC, to the second."""
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


def study_rows(s: Any, record: bytes, content_hash: str, source: str,
               synonyms: Sequence[tuple[str, str, str]] = (), *, deflated: bool = False,
               size: int | None = None) -> StudyRows:
    """The rows of one normalised study, as plain tuples.

    Why tuples built here: this runs in the ingest worker processes, so the single writer process only
    binds ready values; tuples of strings and numbers are also the cheapest thing to pickle back.
    ``record`` is the study's JSON, or with ``deflated`` a raw DEFLATE stream of it (stored as it is)
    whose JSON is ``size`` bytes long (kept so ``/stats/size`` never has to inflate every record).
    """
    if not deflated:
        size = len(record)
    if deflated:
        record = RECORD_DEFLATE + record
    locs = s.locations
    n_geo = 0
    locations = []
    for loc in locs:
        if loc[6] is not None:
            n_geo += 1
        locations.append((*loc[:8], 1 if loc[8] else 0))
    hv = s.healthy_volunteers
    values = (
        s.nct_id, s.last_update, content_hash, source, s.brief_title, s.official_title, s.acronym,
        s.org_study_id, s.overall_status, s.study_type, " ".join(s.phases), s.allocation,
        s.intervention_model, s.masking, s.primary_purpose, s.lead_sponsor, s.lead_class, s.sex,
        None if hv is None else int(hv), s.min_age, s.max_age, " ".join(s.std_ages), s.enrollment,
        s.enrollment_type, s.start_date, s.first_posted, s.last_update_posted, s.completion_date,
        s.primary_completion_date, int(s.has_results), len(locs), n_geo, size,
    )
    children = (
        s.identifiers,
        s.conditions,
        [(t, n, "\t".join(o)) for t, n, o in s.interventions],
        s.intervention_meshes,
        [(a, b, c, "\t".join(d)) for a, b, c, d in s.arms],
        s.sponsors,
        s.contacts,
        list(synonyms),
    )
    return values, children, locations, record


class BatchWriter(abc.ABC):
    """Writes one batch inside the caller's transaction (which holds the backend's write lock).

    Ids are assigned here (``max + 1``), so the same inputs give the same ``sid``/``lid`` on every
    backend. Rows are queued and sent together by :meth:`flush`; a study that replaces one queued earlier
    in the same batch flushes the queue first, so the result is the same as writing the studies one by one.
    """

    def __init__(self, db: Any, timings: dict[str, float], seq: int,
                 ingested_at: Sequence[str | None] | None = None) -> None:
        #: what runs the statements: a cursor (SQLite) or a connection (PostgreSQL)
        self.db = db
        self.seq = seq
        self.timings = timings
        #: one ingest time per batch position (None: now), as ``trialfinder copy`` passes them
        self.ingested_at = ingested_at
        self.studies: list[tuple] = []
        self.records: list[tuple[int, bytes]] = []
        self.children: tuple[list[tuple], ...] = tuple([] for _ in CHILD_TABLES)
        self.locations: list[tuple] = []
        self.queued: set[int] = set()

    def write(self, batch: Sequence[StudyRows], counts: UpsertCounts) -> None:
        existing = self._existing([r[0][0] for r in batch])
        next_sid = int(self.db.execute("SELECT coalesce(max(sid), 0) FROM studies").fetchone()[0]) + 1
        next_lid = int(self.db.execute("SELECT coalesce(max(lid), 0) FROM locations").fetchone()[0]) + 1
        now = utc_now()
        for position, (values, kids, locs, record) in enumerate(batch):
            nct, version, digest = values[0], values[1], values[2]
            old = existing.get(nct)
            verdict = upsert_verdict(version, digest, values[-1], old)
            if verdict == "add":
                sid = next_sid
                next_sid += 1
                counts.added += 1
            elif verdict == "replace" and old is not None:
                sid = old[0]
                if sid in self.queued:
                    self.flush()
                self._archive(sid, now)  # history: same transaction, before the old rows go
                self._remove(sid)
                counts.updated += 1
            else:
                if verdict == "older":
                    counts.older += 1
                else:
                    counts.unchanged += 1
                continue
            existing[nct] = (sid, version, digest, values[-1])
            self.queued.add(sid)
            counts.written.append(position)
            if old is None:
                counts.new.add(position)
            stamp = (self.ingested_at[position] if self.ingested_at is not None else None) or now
            self._queue_study(sid, values, stamp, bytes(record))
            for rows, kid in zip(self.children, kids, strict=True):
                if kid:
                    rows.extend([(sid, *r) for r in kid])
            for loc in locs:
                self.locations.append((next_lid, sid, *loc))
                next_lid += 1
        self.flush()

    def _queue_study(self, sid: int, values: tuple, ingested_at: str, record: bytes) -> None:
        """Queue the ``studies`` row and the record of one study."""
        self.studies.append((sid, *values, ingested_at, self.seq))
        self.records.append((sid, record))

    def _timed(self, table: str, started: float) -> None:
        self.timings[table] = self.timings.get(table, 0.0) + time.perf_counter() - started

    @abc.abstractmethod
    def _existing(self, ncts: list[str]) -> dict[str, tuple[int, str, str, int | None]]:
        """NCT id -> (sid, last update, content hash, record size) of the stored ones among ``ncts``."""

    @abc.abstractmethod
    def _archive(self, sid: int, now: str) -> None:
        """Keep the stored version of ``sid`` in the record history (it is about to be replaced)."""

    @abc.abstractmethod
    def _remove(self, sid: int) -> None:
        """Remove (now, or before the next queued rows are sent) every row of ``sid``."""

    @abc.abstractmethod
    def flush(self) -> None:
        """Send the queued rows and clear the queue."""
