"""The write path of the PostgreSQL backend: one batch, one transaction, bulk rows through ``COPY``.

Why ``COPY`` and ids assigned here: a batch of 4,000 studies is about 100,000 rows across the tables;
``COPY`` streams them in one round trip per table, where ``executemany`` would pay one per row. The
``sid``/``lid`` numbers are assigned by the writer (``max + 1``) under the write lock, exactly as the
SQLite backend does, so the same inputs give the same ids on both backends (and the same tie-breaks
wherever results are ordered by id).

The decision rules are the SQLite writer's: a newer last-update replaces, an identical record is a
no-op, an older one is ignored, and two different records with the same date keep the fuller one.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

from trialfinder.store.base import UpsertCounts, upsert_verdict
from trialfinder.store.postgres.history import archive_version
from trialfinder.store.postgres.schema import CHILD_COLUMNS, CHILD_TABLES, LOCATION_COLUMNS

#: ``studies`` columns in the row builder's order (the SQLite backend's ``STUDY_VALUE_COLUMNS``), plus
#: what the writer adds.
STUDY_VALUE_COLUMNS = (
    "nct_id", "last_update", "content_hash", "source", "brief_title", "official_title", "acronym",
    "org_study_id", "overall_status", "study_type", "phases", "allocation", "intervention_model", "masking",
    "primary_purpose", "lead_sponsor", "lead_class", "sex", "healthy_volunteers", "min_age", "max_age",
    "std_ages", "enrollment", "enrollment_type", "start_date", "first_posted", "last_update_posted",
    "completion_date", "primary_completion_date", "has_results", "n_locations", "n_geo", "record_size")
STUDY_COLUMNS = ("sid", *STUDY_VALUE_COLUMNS, "ingested_at", "seq")


def _now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


def clean_text(batch: Sequence[Any]) -> list[Any]:
    """The batch with NUL characters removed from every string (PostgreSQL ``text`` cannot hold them;
    the record itself is ``bytea`` and keeps them). Used only when a batch was refused for that."""

    def fix(v: Any) -> Any:
        if isinstance(v, str):
            return v.replace("\x00", "")
        if isinstance(v, tuple):
            return tuple(fix(x) for x in v)
        if isinstance(v, list):
            return [fix(x) for x in v]
        return v

    return [(fix(values), fix(kids), fix(locs), record) for values, kids, locs, record in batch]


class BatchWriter:
    """Writes one batch inside the caller's transaction (which holds the write lock)."""

    def __init__(self, conn: Any, timings: dict[str, float], seq: int,
                 ingested_at: Sequence[str | None] | None = None) -> None:
        self.conn = conn
        self.seq = seq
        self.timings = timings
        self.ingested_at = ingested_at
        self.studies: list[tuple] = []
        self.records: list[tuple[int, bytes]] = []
        self.children: tuple[list[tuple], ...] = tuple([] for _ in CHILD_TABLES)
        self.locations: list[tuple] = []
        self.queued: set[int] = set()
        self.deletes: set[int] = set()

    def write(self, batch: Sequence[Any], counts: UpsertCounts) -> None:
        existing = self._existing([r[0][0] for r in batch])
        next_sid = int(self.conn.execute("SELECT coalesce(max(sid), 0) FROM studies").fetchone()[0]) + 1
        next_lid = int(self.conn.execute("SELECT coalesce(max(lid), 0) FROM locations").fetchone()[0]) + 1
        now = _now()
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
                archive_version(self.conn, sid, now)  # history: same transaction, before the delete
                self.deletes.add(sid)
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
            self.studies.append((sid, *values, stamp, self.seq))
            self.records.append((sid, bytes(record)))
            for rows, kid in zip(self.children, kids, strict=True):
                if kid:
                    rows.extend([(sid, *r) for r in kid])
            for loc in locs:
                self.locations.append((next_lid, sid, *loc))
                next_lid += 1
        self.flush()

    def flush(self) -> None:
        if self.deletes:
            t0 = time.perf_counter()
            ids = sorted(self.deletes)
            for table in (*CHILD_TABLES, "locations", "study_records", "studies"):
                self.conn.execute(f"DELETE FROM {table} WHERE sid = ANY(%s)", (ids,))
            self.deletes.clear()
            self.timings["delete"] = self.timings.get("delete", 0.0) + time.perf_counter() - t0
        self._copy("studies", STUDY_COLUMNS, self.studies)
        self._copy("study_records", ("sid", "record"), self.records, binary_types=("int8", "bytea"))
        for table, rows in zip(CHILD_TABLES, self.children, strict=True):
            self._copy(table, CHILD_COLUMNS[table], rows)
        self._copy("locations", LOCATION_COLUMNS, self.locations)
        self.queued.clear()

    def _copy(self, table: str, columns: tuple[str, ...], rows: list[tuple],
              binary_types: tuple[str, ...] | None = None) -> None:
        if not rows:
            return
        t0 = time.perf_counter()
        options = " (FORMAT BINARY)" if binary_types else ""
        with self.conn.cursor() as cur, cur.copy(f"COPY {table} ({', '.join(columns)}) FROM STDIN{options}") as cp:
            if binary_types:
                cp.set_types(list(binary_types))
            write = cp.write_row
            for row in rows:
                write(row)
        rows.clear()
        self.timings[table] = self.timings.get(table, 0.0) + time.perf_counter() - t0

    def _existing(self, ncts: list[str]) -> dict[str, tuple[int, str, str, int | None]]:
        found: dict[str, tuple[int, str, str, int | None]] = {}
        for nct, sid, version, digest, size in self.conn.execute(
                "SELECT nct_id, sid, last_update, content_hash, record_size FROM studies WHERE nct_id = ANY(%s)",
                (ncts,)):
            found[nct] = (int(sid), version, digest, size)
        return found
