"""The PostgreSQL backend: one shared database, the system of record for any number of nodes.

The tables and their meaning are the SQLite backend's (see :mod:`trialfinder.store.postgres.schema`):
the record as ingested (``bytea``, the same bytes, so ``show --json`` is byte-identical across
backends), normalised facts, the data sequence. Text search does not run here: each node keeps the
derived tantivy index of :mod:`trialfinder.index` on its own disk and follows this database through
:meth:`PostgresStore.data_seq` / :meth:`PostgresStore.changed_since` (why: ``docs/postgresql.md``).

Consistency of the data sequence across processes: every write transaction takes one advisory lock
(``WRITE_LOCK``) before it reads and raises ``meta.data_seq``, so sequences are handed out in commit
order and a reader that has seen sequence N has seen every study stamped N or lower -- the property
``index.follow.catch_up`` relies on.

Faults: a connection problem (server down, network gone, pool exhausted) surfaces as
:class:`~trialfinder.store.base.StoreUnavailable` within ``connect_timeout`` seconds, never as an
open-ended wait; a statement cut by ``statement_timeout`` (or a request past its budget) as
:class:`~trialfinder.store.base.BudgetExceeded`. Dead pooled connections are dropped and replaced, so a
node recovers by itself when the server is back.
"""

from __future__ import annotations

import contextlib
import time
import zlib
from collections.abc import Callable, Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any, TypeVar

from trialfinder.model.statuses import RECRUITING_SITE
from trialfinder.store.base import (
    INGEST_KEYS,
    RECORD_DEFLATE,
    BudgetExceeded,
    PreparedStudy,
    Store,
    StoreError,
    StoreUnavailable,
    UpsertCounts,
    decode_record,
    json_meta,
    stored_json,
)
from trialfinder.store.batch import study_rows, utc_now
from trialfinder.store.postgres import schema
from trialfinder.store.postgres.config import acquire_pool, index_dir, parse_url, release_pool
from trialfinder.store.postgres.history import PgHistoryMixin
from trialfinder.store.postgres.writer import PgBatchWriter, clean_text

T = TypeVar("T")

_FIELD_COLUMNS = frozenset({"overall_status", "study_type", "lead_class", "sex", "phases", "allocation",
                            "intervention_model", "masking", "primary_purpose", "enrollment_type"})
#: SQLite's NOCASE folds ASCII letters only; so do these comparisons, so both backends group alike.
_FOLD = "translate({}, 'ABCDEFGHIJKLMNOPQRSTUVWXYZ', 'abcdefghijklmnopqrstuvwxyz')"
_REC_FROM = "studies s JOIN study_records r ON r.sid = s.sid"


class PostgresStore(PgHistoryMixin, Store):
    """A :class:`Store` in a PostgreSQL database (``postgresql://user@host:port/dbname``)."""

    #: Builds the rows :meth:`upsert_rows` takes (the SQLite backend's builder: same rows, same ids).
    row_builder = staticmethod(study_rows)

    def __init__(self, url: str, *, readonly: bool = False, migrate: bool = True) -> None:
        import psycopg  # noqa: F401 - fail here, with the import error, if the driver is missing

        self.cfg = parse_url(url)
        self.url = self.cfg.display()
        self.readonly = readonly
        self.interrupted = False
        self._deadline: float | None = None
        self._bulk = False
        self._closed = False
        #: Seconds spent per table (and in COMMIT) by :meth:`upsert_rows`, for benchmarks.
        self.write_timings: dict[str, float] = {}
        self._pool = acquire_pool(self.cfg, readonly)
        try:
            with self._conn() as conn:
                try:
                    if not readonly and migrate:
                        schema.migrate(conn, auto_only=True)
                    if migrate or readonly:
                        schema.check(conn)
                except schema.SchemaError as exc:
                    raise StoreError(f"{self.url}: {exc}") from None
        except BaseException:
            release_pool(self._pool)
            raise

    # -- connections and errors ----------------------------------------------------------------------

    def _where(self) -> str:
        return f"PostgreSQL at {self.cfg.host}:{self.cfg.port}/{self.cfg.dbname}"

    @contextlib.contextmanager
    def _conn(self) -> Iterator[Any]:
        """A pooled connection, with every driver error turned into a store error."""
        import psycopg
        from psycopg_pool import PoolClosed, PoolTimeout

        if self._closed:
            raise StoreError("the store is closed")
        if self._deadline is not None and time.monotonic() > self._deadline:
            self.interrupted = True
            raise BudgetExceeded("the request's database time budget is spent")
        try:
            with self._pool.connection() as conn:
                yield conn
        except PoolTimeout as exc:
            raise StoreUnavailable(f"{self._where()} did not answer within {self.cfg.connect_timeout:g} s") from exc
        except PoolClosed as exc:
            raise StoreError("the store is closed") from exc
        except psycopg.errors.QueryCanceled as exc:
            self.interrupted = True
            raise BudgetExceeded(f"a statement ran past its time limit: {exc}") from exc
        except (psycopg.OperationalError, psycopg.InterfaceError) as exc:
            raise StoreUnavailable(f"{self._where()} is unavailable: {str(exc).strip() or type(exc).__name__}") \
                from exc

    def _read(self, fn: Callable[[Any], T]) -> T:
        """Run a read; once more on a fresh connection if a pooled one turned out dead (a server restart)."""
        try:
            with self._conn() as conn:
                return fn(conn)
        except StoreUnavailable as exc:
            if isinstance(exc.__cause__, Exception) and type(exc.__cause__).__name__ == "PoolTimeout":
                raise
            with contextlib.suppress(Exception):
                self._pool.check()  # drop every dead idle connection, not just this one
            with self._conn() as conn:
                return fn(conn)

    def _rows(self, sql: str, params: Sequence[Any] | None = None) -> list[tuple]:
        return self._read(lambda c: c.execute(sql, params).fetchall())

    def _one(self, sql: str, params: Sequence[Any] | None = None) -> tuple | None:
        return self._read(lambda c: c.execute(sql, params).fetchone())

    def interrupt_after(self, seconds: float | None) -> None:
        self.interrupted = False
        self._deadline = None if seconds is None else time.monotonic() + seconds

    # -- writing -------------------------------------------------------------------------------------

    def upsert_many(self, studies: Iterable[PreparedStudy]) -> UpsertCounts:
        return self.upsert_rows([
            study_rows(p.study, p.record_json, p.content_hash, p.source, p.extra.get("synonyms") or ())
            for p in studies])

    def upsert_rows(self, batch: Sequence[Any], *, ingested_at: Sequence[str | None] | None = None) -> UpsertCounts:
        """Store a batch of row-builder results atomically (rules as in :meth:`upsert_many`).

        ``ingested_at`` (one timestamp per batch position) keeps the original times when copying a database.
        """
        import psycopg

        if self.readonly:
            raise StoreError("this store was opened read-only")
        if not batch:
            return UpsertCounts()
        try:
            return self._write_batch(batch, ingested_at)
        except psycopg.errors.DataError as exc:  # NUL in text: PostgreSQL's text cannot hold it
            if "0x00" not in str(exc):
                raise StoreError(f"PostgreSQL refused a batch: {exc}") from exc
            return self._write_batch(clean_text(batch), ingested_at)

    def _write_batch(self, batch: Sequence[Any], ingested_at: Sequence[str | None] | None) -> UpsertCounts:
        counts = UpsertCounts()
        with self._conn() as conn:
            tx = conn.transaction()
            tx.__enter__()
            try:
                conn.execute("SELECT pg_advisory_xact_lock(%s)", (schema.WRITE_LOCK,))
                row = conn.execute("SELECT value FROM meta WHERE key = 'data_seq'").fetchone()
                seq = (int(row[0]) if row else 0) + 1
                PgBatchWriter(conn, self.write_timings, seq, ingested_at).write(batch, counts)
                if counts.written:
                    conn.execute("INSERT INTO meta (key, value) VALUES ('data_seq', %s) "
                                 "ON CONFLICT (key) DO UPDATE SET value = excluded.value", (str(seq),))
                    counts.seq = seq
            except BaseException as exc:
                tx.__exit__(type(exc), exc, exc.__traceback__)
                raise
            t0 = time.perf_counter()
            tx.__exit__(None, None, None)
            self.write_timings["commit"] = self.write_timings.get("commit", 0.0) + time.perf_counter() - t0
        return counts

    @staticmethod
    @contextlib.contextmanager
    def _ddl_lock(conn: Any) -> Iterator[None]:
        """Schema changes (migrations, the bulk load's index drops and builds) one process at a time:
        two ingests starting on an empty database at once would otherwise race in the catalog."""
        conn.execute("SELECT pg_advisory_lock(%s)", (schema.MIGRATION_LOCK,))
        try:
            yield
        finally:
            conn.execute("SELECT pg_advisory_unlock(%s)", (schema.MIGRATION_LOCK,))

    def begin_ingest(self, source: str) -> int:
        with self._conn() as c:
            ingest_id = int(c.execute("INSERT INTO ingests (source, started_at) VALUES (%s, %s) RETURNING id",
                                      (source, utc_now())).fetchone()[0])
        self.bulk_load()  # an ingest into an empty database: the value indexes are built once at the end
        return ingest_id

    def finish_ingest(self, ingest_id: int, counts: UpsertCounts) -> None:
        self._end_bulk()
        with self._conn() as c:
            c.execute("UPDATE ingests SET finished_at = %s, added = %s, updated = %s, unchanged = %s, older = %s, "
                      "rejected = %s WHERE id = %s",
                      (utc_now(), counts.added, counts.updated, counts.unchanged, counts.older, counts.rejected,
                       ingest_id))
            # as SQLite: a file ingest's freshness is the newest registry update it holds, not the clock
            row = c.execute("SELECT max(last_update_posted) FROM studies").fetchone()
            newest = row[0] if row else None
            stamp = f"{newest[:10]}T00:00:00" if newest and len(newest) >= 10 else utc_now()
            c.execute("INSERT INTO meta (key, value) VALUES ('data_timestamp', %s) "
                      "ON CONFLICT (key) DO UPDATE SET value = excluded.value", (stamp,))

    def bulk_load(self) -> None:
        """Start loading an empty database (``copy``): value indexes are built once, by :meth:`end_bulk_load`."""
        with self._conn() as c, self._ddl_lock(c):
            if c.execute("SELECT 1 FROM studies LIMIT 1").fetchone() is None:
                for name in schema.DEFERRED_INDEXES:
                    c.execute(f"DROP INDEX IF EXISTS {name}")
                self._bulk = True

    def end_bulk_load(self) -> None:
        self._end_bulk()

    def _end_bulk(self) -> None:
        if not self._bulk:
            return
        self._bulk = False
        with self._conn() as c:
            with self._ddl_lock(c):
                for sql in schema.DEFERRED_INDEXES.values():
                    c.execute(sql)
            c.execute("ANALYZE")

    # -- reading -------------------------------------------------------------------------------------

    def get(self, nct_id: str) -> dict | None:
        row = self._one(f"SELECT r.record FROM {_REC_FROM} WHERE s.nct_id = %s", (nct_id,))
        return decode_record(row[0]) if row else None

    def get_many_json(self, nct_ids: list[str]) -> dict[str, bytes]:
        if not nct_ids:
            return {}
        return {nct: stored_json(blob) for nct, blob in self._rows(
            f"SELECT s.nct_id, r.record FROM {_REC_FROM} WHERE s.nct_id = ANY(%s)", (list(nct_ids),))}

    def existing_ids(self, nct_ids: Iterable[str]) -> set[str]:
        ids = list(dict.fromkeys(nct_ids))
        if not ids:
            return set()
        return {r[0] for r in self._rows("SELECT nct_id FROM studies WHERE nct_id = ANY(%s)", (ids,))}

    def resolve_id(self, any_id: str) -> str | None:
        row = self._one("SELECT nct_id FROM studies WHERE nct_id = %s", (any_id,))
        if row:
            return str(row[0])
        row = self._one("SELECT s.nct_id FROM identifiers i JOIN studies s ON s.sid = i.sid "
                        "WHERE i.kind = 'alias' AND i.value = %s ORDER BY s.sid LIMIT 1", (any_id,))
        return str(row[0]) if row else None

    def count(self) -> int:
        row = self._one("SELECT count(*) FROM studies")
        return int(row[0]) if row else 0

    def iter_records(self, nct_ids: Iterable[str] | None = None) -> Iterator[dict]:
        if nct_ids is not None:
            for nct in nct_ids:
                rec = self.get(nct)
                if rec is not None:
                    yield rec
            return
        last = ""
        while True:  # keyset pages: no transaction stays open while the caller works
            rows = self._rows(f"SELECT s.nct_id, r.record FROM {_REC_FROM} WHERE s.nct_id COLLATE \"C\" > %s "
                              "ORDER BY s.nct_id COLLATE \"C\" LIMIT 1000", (last,))
            if not rows:
                return
            last = rows[-1][0]
            for _nct, blob in rows:
                yield decode_record(blob)

    def record_sizes(self) -> Iterator[tuple[str, int]]:
        for nct, size, blob in self._rows(
                f"SELECT s.nct_id, s.record_size, CASE WHEN s.record_size IS NULL THEN r.record END FROM {_REC_FROM} "
                "ORDER BY s.sid"):
            if size is not None:
                yield nct, int(size)
            else:
                blob = bytes(blob)
                yield nct, (len(zlib.decompress(blob[1:], -15)) if blob[:1] == RECORD_DEFLATE else len(blob))

    def meta(self, key: str) -> str | None:
        row = self._one("SELECT value FROM meta WHERE key = %s", (key,))
        return row[0] if row else None

    def stats(self) -> dict[str, Any]:
        def run(c: Any) -> dict[str, Any]:
            def q(sql: str) -> list[tuple]:
                return c.execute(sql).fetchall()

            def meta(key: str) -> str | None:
                row = c.execute("SELECT value FROM meta WHERE key = %s", (key,)).fetchone()
                return row[0] if row else None

            total = int(q("SELECT count(*) FROM studies")[0][0])
            def by(col: str) -> dict[str, int]:
                return dict(q(f'SELECT {col}, count(*) FROM studies GROUP BY 1 '
                              f'ORDER BY 2 DESC, {col} COLLATE "C" NULLS FIRST'))

            by_status, by_type = by("overall_status"), by("study_type")
            by_phase: dict[str, int] = {}
            for phases, n in q('SELECT phases, count(*) FROM studies GROUP BY 1 ORDER BY phases COLLATE "C" NULLS FIRST'):
                for p in (phases or "").split() or ["(none)"]:
                    by_phase[p] = by_phase.get(p, 0) + int(n)
            with_loc = int(q("SELECT count(*) FROM studies WHERE n_locations > 0")[0][0])
            with_geo = int(q("SELECT count(*) FROM studies WHERE n_geo > 0")[0][0])
            derived = int(q("SELECT count(DISTINCT sid) FROM locations WHERE geo_derived = 1")[0][0])
            last = q(f"SELECT {', '.join(INGEST_KEYS)} FROM ingests WHERE finished_at IS NOT NULL "
                     "ORDER BY id DESC LIMIT 1")
            last_ingest = dict(zip(INGEST_KEYS, last[0], strict=True)) if last else None
            return {
                "studies": total,
                "by_overall_status": {k or "(none)": int(v) for k, v in by_status.items()},
                "by_phase": dict(sorted(by_phase.items(), key=lambda kv: -kv[1])),
                "by_study_type": {k or "(none)": int(v) for k, v in by_type.items()},
                "with_locations": with_loc,
                "with_coordinates": with_geo,
                "with_derived_coordinates": derived,
                "last_ingest": last_ingest,
                "database": self.url,
                "data_timestamp": meta("data_timestamp"),
                "last_sync": json_meta(meta("last_sync")),
                "absent_at_source": int(q("SELECT count(*) FROM study_absent")[0][0]),
            }

        return self._read(run)

    # -- what the text index and search read ---------------------------------------------------------

    def data_seq(self) -> int:
        row = self._one("SELECT value FROM meta WHERE key = 'data_seq'")
        return int(row[0]) if row else 0

    def changed_since(self, seq: int, chunk: int = 2000) -> Iterator[list[tuple[str, bytes, int]]]:
        last = 0
        while True:  # keyset pages by sid, each its own short read
            rows = self._rows(f"SELECT s.sid, s.nct_id, r.record, s.seq FROM {_REC_FROM} "
                              "WHERE s.seq > %s AND s.sid > %s ORDER BY s.sid LIMIT %s", (seq, last, chunk))
            if not rows:
                return
            last = int(rows[-1][0])
            yield [(nct, bytes(blob), int(q)) for _sid, nct, blob, q in rows]

    def index_path(self) -> Path:
        return index_dir(self.cfg)

    def site_points(self, chunk: int = 100_000, *, after_seq: int | None = None
                    ) -> Iterator[tuple[list[int], list[int], list[float], list[float], list[bool]]]:
        last = 0
        since = "" if after_seq is None else " AND s.seq > %s"
        while True:
            rows = self._rows(
                "SELECT l.lid, substr(s.nct_id, 4)::bigint, l.lat, l.lon, coalesce(l.status = %s, false) "
                "FROM locations l JOIN studies s ON s.sid = l.sid "
                f"WHERE l.lat IS NOT NULL AND l.lon IS NOT NULL AND l.lid > %s{since} ORDER BY l.lid LIMIT %s",
                (RECRUITING_SITE, last, *([] if after_seq is None else [after_seq]), chunk))
            if not rows:
                return
            last = int(rows[-1][0])
            lids, ncts, lats, lons, rec = zip(*rows, strict=True)
            yield [int(x) for x in lids], [int(x) for x in ncts], list(lats), list(lons), [bool(r) for r in rec]

    def studies_changed_after(self, seq: int, limit: int) -> list[int] | None:
        rows = self._rows("SELECT substr(nct_id, 4)::bigint FROM studies WHERE seq > %s LIMIT %s", (seq, limit + 1))
        return None if len(rows) > limit else [int(r[0]) for r in rows]

    def locations_by_id(self, lids: Iterable[int]) -> dict[int, dict[str, Any]]:
        ids = sorted({int(x) for x in lids})
        if not ids:
            return {}
        keys = ("facility", "city", "state", "zip", "country", "status", "lat", "lon", "derived")
        out: dict[int, dict[str, Any]] = {}
        for row in self._rows("SELECT lid, facility, city, state, zip, country, status, lat, lon, geo_derived "
                              "FROM locations WHERE lid = ANY(%s)", (ids,)):
            loc = dict(zip(keys, row[1:], strict=True))
            loc["derived"] = bool(loc["derived"])
            out[int(row[0])] = loc
        return out

    def synonyms(self, term: str, kinds: tuple[str, ...]) -> list[tuple[str, str, int]]:
        return [(str(k), str(e), int(n)) for k, e, n in self._rows(
            "SELECT kind, expansion, count(*) FROM synonyms WHERE term = %s AND kind = ANY(%s) "
            'GROUP BY 1, 2 ORDER BY 3 DESC, expansion COLLATE "C", kind COLLATE "C" LIMIT 12', (term, list(kinds)))]

    # -- browsing ------------------------------------------------------------------------------------

    def location_counts(self, country: str | None = None, state: str | None = None) -> list[tuple[str, int]]:
        if country is None:
            sql, params = "SELECT country, count(DISTINCT sid) FROM locations WHERE country != '' GROUP BY 1", []
        elif state is None:
            sql = ("SELECT CASE WHEN state = '' THEN city ELSE state END, count(DISTINCT sid) FROM locations "
                   "WHERE country = %s GROUP BY 1")
            params = [country]
        else:
            sql = "SELECT city, count(DISTINCT sid) FROM locations WHERE country = %s AND state = %s GROUP BY 1"
            params = [country, state]
        rows = [(k, int(n)) for k, n in self._rows(sql, params) if k]
        return sorted(rows, key=lambda r: (-r[1], r[0]))

    def condition_counts(self, letter: str | None = None, limit: int = 2000) -> list[tuple[str, int]]:
        folded = _FOLD.format("term")
        sql = "SELECT min(term COLLATE \"C\"), count(DISTINCT sid) FROM conditions WHERE kind = 'condition'"
        params: list[Any] = []
        if letter:
            sql += f" AND {_FOLD.format('substr(term, 1, 1)')} = %s"
            params.append(letter.lower()[:1])
        sql += f' GROUP BY {folded} ORDER BY {folded} COLLATE "C" LIMIT %s'
        params.append(limit)
        return [(str(t), int(n)) for t, n in self._rows(sql, params)]

    def field_values(self, column: str, limit: int = 100) -> list[tuple[str, int]]:
        if column not in _FIELD_COLUMNS:
            raise ValueError(f"unknown field column {column!r}")
        return [(v, int(n)) for v, n in self._rows(
            f'SELECT {column}, count(*) FROM studies GROUP BY 1 ORDER BY 2 DESC, {column} COLLATE "C" NULLS FIRST '
            'LIMIT %s',
            (limit,))]

    # -- copying between databases -------------------------------------------------------------------

    def dump_studies(self, chunk: int = 2000) -> Iterator[list[tuple[str, bytes, str, str | None, str | None,
                                                                     int | None]]]:
        """Every study as stored: (NCT id, record bytes, content hash, source, ingested at, JSON size), by sid."""
        last = 0
        while True:
            rows = self._rows(
                f"SELECT s.sid, s.nct_id, r.record, s.content_hash, s.source, s.ingested_at, s.record_size "
                f"FROM {_REC_FROM} WHERE s.sid > %s ORDER BY s.sid LIMIT %s", (last, chunk))
            if not rows:
                return
            last = int(rows[-1][0])
            yield [(n, bytes(b), h, src, at, None if sz is None else int(sz)) for _s, n, b, h, src, at, sz in rows]

    def ingest_runs(self) -> list[dict[str, Any]]:
        """The log of ingest runs, oldest first."""
        return [dict(zip(INGEST_KEYS, r, strict=True)) for r in self._rows(
            f"SELECT {', '.join(INGEST_KEYS)} FROM ingests ORDER BY id")]

    def add_ingest_runs(self, runs: Iterable[dict[str, Any]]) -> None:
        """Append ingest runs to the log (a copied database keeps its history)."""
        with self._conn() as c, c.transaction(), c.cursor() as cur:
            cur.executemany(f"INSERT INTO ingests ({', '.join(INGEST_KEYS)}) "
                            f"VALUES ({', '.join(['%s'] * len(INGEST_KEYS))})",
                            [tuple(r.get(k) for k in INGEST_KEYS) for r in runs])


    def close(self) -> None:
        if self._closed:
            return
        try:
            if self._bulk and not self.readonly:
                with contextlib.suppress(StoreError):
                    self._end_bulk()  # an interrupted bulk load still leaves every index in place
        finally:
            self._closed = True
            release_pool(self._pool)


def upgrade(url: str) -> tuple[int, int, list[str]]:
    """Apply every pending migration (``trialfinder db upgrade``): (version before, after, names applied)."""
    store = PostgresStore(url, migrate=False)
    try:
        with store._conn() as conn:
            before = schema.applied_version(conn)
            try:
                done = schema.migrate(conn)
            except schema.SchemaError as exc:
                raise StoreError(f"{store.url}: {exc}") from None
            after = schema.applied_version(conn)
    finally:
        store.close()
    return before, after, [f"{m.version}: {m.name}" for m in done]


def status(url: str) -> dict[str, Any]:
    """The schema version of a database and the migrations it lacks (``trialfinder db status``)."""
    store = PostgresStore(url, migrate=False)
    try:
        with store._conn() as conn:
            version = schema.applied_version(conn)
            todo = [f"{m.version}: {m.name}" for m in schema.pending(conn)]
    finally:
        store.close()
    return {"database": store.url, "schema_version": version, "latest": schema.LATEST, "pending": todo}
