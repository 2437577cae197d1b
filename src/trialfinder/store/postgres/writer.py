"""The write path of the PostgreSQL backend: one batch, one transaction, bulk rows through ``COPY``.

Why ``COPY`` and ids assigned here: a batch of 4,000 studies is about 100,000 rows across the tables;
``COPY`` streams them in one round trip per table, where ``executemany`` would pay one per row. The
``sid``/``lid`` numbers are assigned by the writer (``max + 1``) under the write lock, exactly as the
SQLite backend does, so the same inputs give the same ids on both backends (and the same tie-breaks
wherever results are ordered by id).

The decision loop is the SQLite writer's (:class:`trialfinder.store.batch.BatchWriter`): a newer
last-update replaces, an identical record is a no-op, an older one is ignored, and two different records
with the same date keep the fuller one.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

from trialfinder.store.batch import CHILD_TABLES, STUDY_VALUE_COLUMNS, BatchWriter
from trialfinder.store.postgres.history import archive_version
from trialfinder.store.postgres.schema import CHILD_COLUMNS, LOCATION_COLUMNS

#: ``studies`` columns in the order the shared writer queues them.
STUDY_COLUMNS = ("sid", *STUDY_VALUE_COLUMNS, "ingested_at", "seq")


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


class PgBatchWriter(BatchWriter):
    """The PostgreSQL side of :class:`~trialfinder.store.batch.BatchWriter`: one ``COPY`` per table, the
    rows of replaced studies deleted together (``sid = ANY``) just before the queued rows are sent."""

    def __init__(self, conn: Any, timings: dict[str, float], seq: int,
                 ingested_at: Sequence[str | None] | None = None) -> None:
        super().__init__(conn, timings, seq, ingested_at)
        self.deletes: set[int] = set()

    def flush(self) -> None:
        if self.deletes:
            t0 = time.perf_counter()
            ids = sorted(self.deletes)
            for table in (*CHILD_TABLES, "locations", "study_records", "studies"):
                self.db.execute(f"DELETE FROM {table} WHERE sid = ANY(%s)", (ids,))
            self.deletes.clear()
            self._timed("delete", t0)
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
        with self.db.cursor() as cur, cur.copy(f"COPY {table} ({', '.join(columns)}) FROM STDIN{options}") as cp:
            if binary_types:
                cp.set_types(list(binary_types))
            write = cp.write_row
            for row in rows:
                write(row)
        rows.clear()
        self._timed(table, t0)

    def _existing(self, ncts: list[str]) -> dict[str, tuple[int, str, str, int | None]]:
        found: dict[str, tuple[int, str, str, int | None]] = {}
        for nct, sid, version, digest, size in self.db.execute(
                "SELECT nct_id, sid, last_update, content_hash, record_size FROM studies WHERE nct_id = ANY(%s)",
                (ncts,)):
            found[nct] = (int(sid), version, digest, size)
        return found

    def _archive(self, sid: int, now: str) -> None:
        archive_version(self.db, sid, now)

    def _remove(self, sid: int) -> None:
        self.deletes.add(sid)  # deleted by the next flush, before any queued row is sent
