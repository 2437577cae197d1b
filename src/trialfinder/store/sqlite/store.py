"""The SQLite backend: one file, the record as ingested plus normalised tables.

Text search runs on the derived text index (:mod:`trialfinder.index`), kept beside the file; this
backend numbers its write transactions (the *data sequence*, ``meta.data_seq``) and stamps every
study row with the sequence that wrote it, so the index can follow the database.

Every write happens in a transaction per batch, so a run killed at any point (even ``kill -9``) leaves
the database as it was after the last committed batch; running the same ingest again completes the job
because upserts of already stored versions are no-ops.

Write path (built for registry scale, see the "Ingest" section of ``benchmarks/README.md``): worker
processes turn each study into ready-to-insert row tuples with :func:`~trialfinder.store.batch.study_rows`,
and the writer only assigns ids and runs one ``executemany`` per table and batch
(:meth:`SQLiteStore.upsert_rows`). An ingest into an empty database is a *bulk load*: the secondary value
indexes are built once at the end instead of row by row; that is a plain ``CREATE INDEX IF NOT EXISTS``,
so a killed bulk load still leaves a consistent database and the next writable open re-creates any
missing index.
"""

from __future__ import annotations

import contextlib
import sqlite3
import time
import zlib
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any

from trialfinder.model.statuses import RECRUITING_SITE
from trialfinder.store.base import (
    INGEST_KEYS,
    RECORD_DEFLATE,
    PreparedStudy,
    Store,
    UpsertCounts,
    decode_record,
    json_meta,
    stored_json,
)
from trialfinder.store.batch import (
    CHILD_TABLES,
    STUDY_VALUE_COLUMNS,
    BatchWriter,
    StudyRows,
    study_rows,
    utc_now,
)
from trialfinder.store.sqlite.history import HistoryMixin, archive_version

SCHEMA_VERSION = 4

#: Page size of new databases: larger pages keep most compressed records inside their row (no
#: overflow chains) and make the B-trees shallower. Only applies when the file is created.
PAGE_SIZE = 8192

SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT);
CREATE TABLE IF NOT EXISTS studies (
  sid INTEGER PRIMARY KEY,
  nct_id TEXT NOT NULL UNIQUE,
  last_update TEXT NOT NULL,
  content_hash TEXT NOT NULL,
  source TEXT,
  ingested_at TEXT,
  brief_title TEXT, official_title TEXT, acronym TEXT, org_study_id TEXT,
  overall_status TEXT, study_type TEXT, phases TEXT,
  allocation TEXT, intervention_model TEXT, masking TEXT, primary_purpose TEXT,
  lead_sponsor TEXT, lead_class TEXT,
  sex TEXT, healthy_volunteers INTEGER, min_age REAL, max_age REAL, std_ages TEXT,
  enrollment INTEGER, enrollment_type TEXT,
  start_date TEXT, first_posted TEXT, last_update_posted TEXT, completion_date TEXT,
  primary_completion_date TEXT,
  has_results INTEGER NOT NULL DEFAULT 0,
  n_locations INTEGER NOT NULL DEFAULT 0,
  n_geo INTEGER NOT NULL DEFAULT 0,
  record_size INTEGER,
  seq INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE IF NOT EXISTS study_records (sid INTEGER PRIMARY KEY, record BLOB NOT NULL);
CREATE INDEX IF NOT EXISTS studies_status ON studies(overall_status);
CREATE INDEX IF NOT EXISTS studies_first_posted ON studies(first_posted);
CREATE INDEX IF NOT EXISTS studies_last_update ON studies(last_update_posted);
CREATE INDEX IF NOT EXISTS studies_start ON studies(start_date);
CREATE TABLE IF NOT EXISTS identifiers (sid INTEGER NOT NULL, kind TEXT NOT NULL, value TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS identifiers_sid ON identifiers(sid);
CREATE INDEX IF NOT EXISTS identifiers_value ON identifiers(value);
CREATE TABLE IF NOT EXISTS conditions (sid INTEGER NOT NULL, kind TEXT NOT NULL, term TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS conditions_sid ON conditions(sid);
CREATE TABLE IF NOT EXISTS interventions (
  sid INTEGER NOT NULL, type TEXT, name TEXT, other_names TEXT
);
CREATE INDEX IF NOT EXISTS interventions_sid ON interventions(sid);
CREATE TABLE IF NOT EXISTS intervention_meshes (sid INTEGER NOT NULL, kind TEXT NOT NULL, term TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS intervention_meshes_sid ON intervention_meshes(sid);
CREATE TABLE IF NOT EXISTS arms (
  sid INTEGER NOT NULL, label TEXT, type TEXT, description TEXT, intervention_names TEXT
);
CREATE INDEX IF NOT EXISTS arms_sid ON arms(sid);
CREATE TABLE IF NOT EXISTS sponsors (sid INTEGER NOT NULL, name TEXT, class TEXT, role TEXT);
CREATE INDEX IF NOT EXISTS sponsors_sid ON sponsors(sid);
CREATE TABLE IF NOT EXISTS locations (
  lid INTEGER PRIMARY KEY,
  sid INTEGER NOT NULL, facility TEXT, city TEXT, state TEXT, zip TEXT, country TEXT, status TEXT,
  lat REAL, lon REAL, geo_derived INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS locations_sid ON locations(sid);
CREATE INDEX IF NOT EXISTS locations_place ON locations(country, state, city);
CREATE TABLE IF NOT EXISTS contacts (
  sid INTEGER NOT NULL, kind TEXT, name TEXT, role TEXT, phone TEXT, email TEXT, affiliation TEXT
);
CREATE INDEX IF NOT EXISTS contacts_sid ON contacts(sid);
CREATE TABLE IF NOT EXISTS synonyms (sid INTEGER NOT NULL, kind TEXT NOT NULL, term TEXT NOT NULL,
  expansion TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS synonyms_sid ON synonyms(sid);
-- covering (term, kind, expansion): counting an expansion's support is an index-only scan in key order,
-- where an index on term alone fetched every row (65 ms for "nsclc" at 600,000 studies)
CREATE INDEX IF NOT EXISTS synonyms_term_kind ON synonyms(term, kind, expansion);
CREATE TABLE IF NOT EXISTS study_versions (
  vid INTEGER PRIMARY KEY, nct_id TEXT NOT NULL, content_hash TEXT NOT NULL, last_update TEXT,
  stored_at TEXT, replaced_at TEXT, record BLOB NOT NULL
);
CREATE UNIQUE INDEX IF NOT EXISTS study_versions_key ON study_versions(nct_id, content_hash);
CREATE TABLE IF NOT EXISTS study_absent (nct_id TEXT PRIMARY KEY, since TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS alerts (name TEXT PRIMARY KEY, doc TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS ingests (
  id INTEGER PRIMARY KEY, source TEXT, started_at TEXT, finished_at TEXT,
  added INTEGER, updated INTEGER, unchanged INTEGER, older INTEGER, rejected INTEGER
);
"""

#: Indexes on values (not on ``sid``) that a bulk load builds once at the end: inserting into them row
#: by row means random B-tree writes, while ``CREATE INDEX`` sorts once. The ``*_sid`` indexes stay,
#: because rows arrive in ``sid`` order (appends) and updates during the load need them.
DEFERRED_INDEXES = ("studies_status", "studies_first_posted", "studies_last_update", "studies_start",
                    "identifiers_value", "locations_place", "synonyms_term_kind")

_STUDY_INSERT = (f"INSERT INTO studies (sid, {', '.join(STUDY_VALUE_COLUMNS)}, ingested_at, seq) "
                 f"VALUES ({', '.join('?' * (len(STUDY_VALUE_COLUMNS) + 3))})")
#: Databases made before ``study_records`` keep the record in ``studies.record``.
_STUDY_INSERT_LEGACY = (f"INSERT INTO studies (sid, {', '.join(STUDY_VALUE_COLUMNS)}, ingested_at, seq, record) "
                        f"VALUES ({', '.join('?' * (len(STUDY_VALUE_COLUMNS) + 4))})")
_RECORD_INSERT = "INSERT INTO study_records (sid, record) VALUES (?, ?)"
_CHILD_INSERTS = {
    "identifiers": "INSERT INTO identifiers VALUES (?, ?, ?)",
    "conditions": "INSERT INTO conditions VALUES (?, ?, ?)",
    "interventions": "INSERT INTO interventions VALUES (?, ?, ?, ?)",
    "intervention_meshes": "INSERT INTO intervention_meshes VALUES (?, ?, ?)",
    "arms": "INSERT INTO arms VALUES (?, ?, ?, ?, ?)",
    "sponsors": "INSERT INTO sponsors VALUES (?, ?, ?, ?)",
    "contacts": "INSERT INTO contacts VALUES (?, ?, ?, ?, ?, ?, ?)",
    "synonyms": "INSERT INTO synonyms VALUES (?, ?, ?, ?)",
}
_LOCATION_INSERT = ("INSERT INTO locations (lid, sid, facility, city, state, zip, country, status, lat, lon, "
                    "geo_derived) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)")

class SQLiteStore(HistoryMixin, Store):
    """A :class:`Store` in one SQLite file."""

    #: Builds the rows :meth:`upsert_rows` takes; the ingest runs it in its worker processes.
    row_builder = staticmethod(study_rows)

    #: WAL pages between checkpoints while ingesting (SQLite's default is 1,000).
    INGEST_WAL_AUTOCHECKPOINT = 4096
    #: Page cache of each read-only connection, in KiB (see __init__).
    READ_CACHE_KB = 8192

    def __init__(self, path: str | Path, *, readonly: bool = False) -> None:
        self.path = Path(path)
        self.url = str(self.path)
        self.readonly = readonly
        self._bulk = False
        if readonly:
            if not self.path.exists():
                raise FileNotFoundError(f"no database at {self.path}")
            self.conn = sqlite3.connect(f"file:{self.path}?mode=ro", uri=True, check_same_thread=False)
        else:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self.conn = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None)
        self.conn.execute("PRAGMA busy_timeout = 10000")
        if not readonly:
            if self.conn.execute("PRAGMA page_count").fetchone()[0] == 0:
                self.conn.execute(f"PRAGMA page_size = {PAGE_SIZE}")  # a new file: before WAL fixes it
            self.conn.execute("PRAGMA journal_mode = WAL")
            self.conn.execute("PRAGMA synchronous = NORMAL")
            # re-creates anything missing, including indexes a killed bulk load had not built yet
            self.conn.executescript(SCHEMA)
            self.conn.execute("INSERT OR IGNORE INTO meta(key, value) VALUES ('schema_version', ?)",
                              (str(SCHEMA_VERSION),))
            self._migrate()
        # Where the record lives: its own table (so scans of the indexed columns never read records),
        # or, in databases made before that table, the last column of ``studies``.
        self._legacy_record = "record" in {r[1] for r in self.conn.execute("PRAGMA table_info(studies)")}
        self._rec, self._rec_from = (("s.record", "studies s") if self._legacy_record else
                                     ("r.record", "studies s JOIN study_records r ON r.sid = s.sid"))
        #: True when :meth:`interrupt_after` cut the last statement short
        self.interrupted = False
        #: Seconds spent per table (and in COMMIT) by :meth:`upsert_rows`, for benchmarks.
        self.write_timings: dict[str, float] = {}
        # Read-only connections come in pools (8 per web worker): a private 64 MB page cache each would
        # be most of a server's memory, for pages the OS page cache already holds once for all of them.
        self.conn.execute(f"PRAGMA cache_size = -{self.READ_CACHE_KB if readonly else 65536}")
        self.conn.execute("PRAGMA temp_store = MEMORY")

    def _migrate(self) -> None:
        """Bring a file made by an earlier version up to :data:`SCHEMA_VERSION` (metadata-only changes)."""
        cols = {r[1] for r in self.conn.execute("PRAGMA table_info(studies)")}
        if "record_size" not in cols:  # their rows read as NULL; sizes are then computed on demand
            self.conn.execute("ALTER TABLE studies ADD COLUMN record_size INTEGER")
        if "seq" not in cols:  # every existing row belongs to sequence 0; the text index is rebuilt
            self.conn.execute("ALTER TABLE studies ADD COLUMN seq INTEGER NOT NULL DEFAULT 0")
        self.conn.execute("CREATE INDEX IF NOT EXISTS studies_seq ON studies(seq)")
        # radius search reads the site coordinates into memory (search.geo.Sites, from site_points):
        # the R*Tree of schema 3 was written by every ingest and read by nothing (up to a sixth of the
        # writer's SQLite time), so schema 4 drops it
        if self.conn.execute("SELECT 1 FROM sqlite_master WHERE name = 'location_points'").fetchone():
            self.conn.execute("DROP TABLE location_points")
        # text search moved to the derived index: the FTS5 table of schema 2 is dropped
        if self.conn.execute("SELECT 1 FROM sqlite_master WHERE name = 'study_text'").fetchone():
            self.conn.execute("DROP TABLE study_text")
        self.conn.execute("DROP INDEX IF EXISTS synonyms_term")  # replaced by the covering synonyms_term_kind
        self.conn.execute("UPDATE meta SET value = ? WHERE key = 'schema_version'", (str(SCHEMA_VERSION),))

    # -- writing -------------------------------------------------------------------------------------

    def upsert_many(self, studies: Iterable[PreparedStudy]) -> UpsertCounts:
        return self.upsert_rows([
            study_rows(p.study, p.record_json, p.content_hash, p.source, p.extra.get("synonyms") or ())
            for p in studies])

    def upsert_rows(self, batch: Sequence[StudyRows], *, ingested_at: Sequence[str | None] | None = None
                    ) -> UpsertCounts:
        """Store a batch of :func:`study_rows` results atomically, with the same rules as :meth:`upsert_many`:
        a newer version replaces the stored one, the same version is a no-op, an older one is ignored.

        ``ingested_at`` (one timestamp per batch position, None for "now") keeps the original times when
        copying a database."""
        counts = UpsertCounts()
        if not batch:
            return counts
        cur = self.conn.cursor()
        cur.execute("BEGIN IMMEDIATE")
        try:
            seq = int(cur.execute("SELECT coalesce((SELECT value FROM meta WHERE key = 'data_seq'), 0)")
                      .fetchone()[0]) + 1
            _BatchWriter(cur, self._legacy_record, self.write_timings, seq, ingested_at).write(batch, counts)
            if counts.written:
                cur.execute("INSERT OR REPLACE INTO meta(key, value) VALUES ('data_seq', ?)", (str(seq),))
                counts.seq = seq
            t0 = time.perf_counter()
            cur.execute("COMMIT")
            self.write_timings["commit"] = self.write_timings.get("commit", 0.0) + time.perf_counter() - t0
        except BaseException:
            if self.conn.in_transaction:
                cur.execute("ROLLBACK")
            raise
        return counts

    def begin_ingest(self, source: str) -> int:
        cur = self.conn.execute("INSERT INTO ingests (source, started_at) VALUES (?, ?)", (source, utc_now()))
        if cur.lastrowid is None:  # sqlite3 sets it after every successful single-row INSERT
            raise RuntimeError("INSERT INTO ingests returned no rowid")
        ingest_id = int(cur.lastrowid)
        self.conn.execute("PRAGMA cache_size = -262144")
        self.conn.execute(f"PRAGMA wal_autocheckpoint = {self.INGEST_WAL_AUTOCHECKPOINT}")
        if self.conn.execute("SELECT 1 FROM studies LIMIT 1").fetchone() is None:
            self._begin_bulk()
        return ingest_id

    def finish_ingest(self, ingest_id: int, counts: UpsertCounts) -> None:
        self._end_bulk()
        self.conn.execute("PRAGMA cache_size = -65536")
        self.conn.execute("PRAGMA wal_autocheckpoint = 1000")
        self.conn.execute(
            "UPDATE ingests SET finished_at = ?, added = ?, updated = ?, unchanged = ?, older = ?, rejected = ? "
            "WHERE id = ?",
            (utc_now(), counts.added, counts.updated, counts.unchanged, counts.older, counts.rejected, ingest_id),
        )
        # Freshness of a file ingest: the newest registry update it holds (a sync then stores the source's
        # own dataTimestamp instead), never the local clock, so copies of the same data agree.
        newest = self.newest_update()
        stamp = f"{newest[:10]}T00:00:00" if newest and len(newest) >= 10 else utc_now()
        self.conn.execute("INSERT OR REPLACE INTO meta(key, value) VALUES ('data_timestamp', ?)", (stamp,))

    def _begin_bulk(self) -> None:
        """An ingest into an empty database: build the value indexes once at the end."""
        for name in DEFERRED_INDEXES:
            self.conn.execute(f"DROP INDEX IF EXISTS {name}")
        self._bulk = True

    def _end_bulk(self) -> None:
        if not self._bulk:
            return
        self._bulk = False
        self.conn.executescript(SCHEMA)  # CREATE INDEX IF NOT EXISTS: one sort per deferred index

    # -- reading -------------------------------------------------------------------------------------

    def get(self, nct_id: str) -> dict | None:
        row = self.conn.execute(f"SELECT {self._rec} FROM {self._rec_from} WHERE s.nct_id = ?",
                                (nct_id,)).fetchone()
        return decode_record(row[0]) if row else None

    def resolve_id(self, any_id: str) -> str | None:
        row = self.conn.execute("SELECT nct_id FROM studies WHERE nct_id = ?", (any_id,)).fetchone()
        if row:
            return row[0]
        row = self.conn.execute(
            "SELECT s.nct_id FROM identifiers i JOIN studies s ON s.sid = i.sid "
            "WHERE i.kind = 'alias' AND i.value = ? LIMIT 1", (any_id,)).fetchone()
        return row[0] if row else None

    def count(self) -> int:
        return int(self.conn.execute("SELECT count(*) FROM studies").fetchone()[0])

    def iter_records(self, nct_ids: Iterable[str] | None = None) -> Iterator[dict]:
        if nct_ids is None:
            for (blob,) in self.conn.execute(f"SELECT {self._rec} FROM {self._rec_from} ORDER BY s.nct_id"):
                yield decode_record(blob)
            return
        for nct in nct_ids:
            rec = self.get(nct)
            if rec is not None:
                yield rec

    def record_sizes(self) -> Iterator[tuple[str, int]]:
        """(NCT id, bytes of the stored JSON record) for every study, for ``/stats/size``.

        Reads the size kept at ingest; only rows stored before that column existed are inflated.
        """
        has_column = "record_size" in {r[1] for r in self.conn.execute("PRAGMA table_info(studies)")}
        size = "s.record_size" if has_column else "NULL"
        # the sizes first, without touching the records' pages; records only where no size was kept
        missing = False
        cur = self.conn.execute(f"SELECT s.nct_id, {size} FROM studies s ORDER BY s.sid")
        while rows := cur.fetchmany(5000):
            for nct, n in rows:
                if n is None:
                    missing = True
                else:
                    yield nct, n
        if not missing:
            return
        cur = self.conn.execute(f"SELECT s.nct_id, {self._rec} FROM {self._rec_from} WHERE {size} IS NULL "
                                "ORDER BY s.sid")
        while rows := cur.fetchmany(2000):
            for nct, blob in rows:
                yield nct, (len(zlib.decompress(memoryview(blob)[1:], -15)) if blob[:1] == RECORD_DEFLATE
                            else len(blob))

    def meta(self, key: str) -> str | None:
        row = self.conn.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return row[0] if row else None

    def stats(self) -> dict[str, Any]:
        c = self.conn
        total = self.count()
        by_status = dict(c.execute(
            "SELECT overall_status, count(*) FROM studies GROUP BY 1 ORDER BY 2 DESC").fetchall())
        by_type = dict(c.execute("SELECT study_type, count(*) FROM studies GROUP BY 1 ORDER BY 2 DESC").fetchall())
        by_phase: dict[str, int] = {}
        for phases, n in c.execute("SELECT phases, count(*) FROM studies GROUP BY 1"):
            for p in (phases or "").split() or ["(none)"]:
                by_phase[p] = by_phase.get(p, 0) + n
        with_loc = c.execute("SELECT count(*) FROM studies WHERE n_locations > 0").fetchone()[0]
        with_geo = c.execute("SELECT count(*) FROM studies WHERE n_geo > 0").fetchone()[0]
        derived = c.execute(
            "SELECT count(DISTINCT sid) FROM locations WHERE geo_derived = 1").fetchone()[0]
        last = c.execute(f"SELECT {', '.join(INGEST_KEYS)} FROM ingests WHERE finished_at IS NOT NULL "
                         "ORDER BY id DESC LIMIT 1").fetchone()
        last_ingest = dict(zip(INGEST_KEYS, last, strict=True)) if last else None
        return {
            "studies": total,
            "by_overall_status": {k or "(none)": v for k, v in by_status.items()},
            "by_phase": dict(sorted(by_phase.items(), key=lambda kv: -kv[1])),
            "by_study_type": {k or "(none)": v for k, v in by_type.items()},
            "with_locations": with_loc,
            "with_coordinates": with_geo,
            "with_derived_coordinates": derived,
            "last_ingest": last_ingest,
            "database": self.url,
            "data_timestamp": self.meta("data_timestamp"),
            "last_sync": json_meta(self.meta("last_sync")),
            "absent_at_source": len(self.absent()),
        }

    # -- what the text index and search read ---------------------------------------------------------

    def data_seq(self) -> int:
        row = self.conn.execute("SELECT value FROM meta WHERE key = 'data_seq'").fetchone()
        return int(row[0]) if row else 0

    def changed_since(self, seq: int, chunk: int = 2000) -> Iterator[list[tuple[str, bytes, int]]]:
        # by sid, in pages (keyset), so a long catch-up never holds one read transaction open
        last = 0
        while True:
            rows = self.conn.execute(
                f"SELECT s.sid, s.nct_id, {self._rec}, s.seq FROM {self._rec_from} WHERE s.seq > ? AND s.sid > ? "
                "ORDER BY s.sid LIMIT ?", (seq, last, chunk)).fetchall()
            if not rows:
                return
            last = rows[-1][0]
            yield [(nct, bytes(blob), q) for _sid, nct, blob, q in rows]

    def index_path(self) -> Path:
        return Path(str(self.path) + ".index")

    def site_points(self, chunk: int = 100_000, *, after_seq: int | None = None
                    ) -> Iterator[tuple[list[int], list[int], list[float], list[float], list[bool]]]:
        where, params = ("", [RECRUITING_SITE]) if after_seq is None else (" AND s.seq > ?", [RECRUITING_SITE, after_seq])
        cur = self.conn.execute(
            "SELECT l.lid, CAST(substr(s.nct_id, 4) AS INTEGER), l.lat, l.lon, l.status = ? FROM locations l "
            "JOIN studies s ON s.sid = l.sid WHERE l.lat IS NOT NULL AND l.lon IS NOT NULL" + where, params)
        while rows := cur.fetchmany(chunk):
            lids, ncts, lats, lons, rec = zip(*rows, strict=True)
            yield list(lids), list(ncts), list(lats), list(lons), [bool(r) for r in rec]

    def studies_changed_after(self, seq: int, limit: int) -> list[int] | None:
        rows = self.conn.execute("SELECT CAST(substr(nct_id, 4) AS INTEGER) FROM studies WHERE seq > ? LIMIT ?",
                                 (seq, limit + 1)).fetchall()
        return None if len(rows) > limit else [r[0] for r in rows]

    def locations_by_id(self, lids: Iterable[int]) -> dict[int, dict[str, Any]]:
        ids = sorted({int(x) for x in lids})
        out: dict[int, dict[str, Any]] = {}
        keys = ("facility", "city", "state", "zip", "country", "status", "lat", "lon", "derived")
        for i in range(0, len(ids), 500):
            part = ids[i:i + 500]
            for row in self.conn.execute(
                    "SELECT lid, facility, city, state, zip, country, status, lat, lon, geo_derived FROM locations "
                    f"WHERE lid IN ({', '.join('?' * len(part))})", part):
                loc = dict(zip(keys, row[1:], strict=True))
                loc["derived"] = bool(loc["derived"])
                out[int(row[0])] = loc
        return out

    def synonyms(self, term: str, kinds: tuple[str, ...]) -> list[tuple[str, str, int]]:
        marks = ", ".join("?" * len(kinds))
        return [(str(k), str(e), int(n)) for k, e, n in self.conn.execute(
            f"SELECT kind, expansion, count(*) FROM synonyms WHERE term = ? AND kind IN ({marks}) "
            "GROUP BY 1, 2 ORDER BY 3 DESC, 2 LIMIT 12", (term, *kinds))]

    def existing_ids(self, nct_ids: Iterable[str]) -> set[str]:
        ids = list(dict.fromkeys(nct_ids))
        found: set[str] = set()
        for i in range(0, len(ids), 500):
            part = ids[i:i + 500]
            found.update(r[0] for r in self.conn.execute(
                f"SELECT nct_id FROM studies WHERE nct_id IN ({', '.join('?' * len(part))})", part))
        return found

    def checkpoint(self) -> None:
        with contextlib.suppress(sqlite3.Error):
            self.conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")

    def interrupt_after(self, seconds: float | None) -> None:
        if seconds is None:
            self.conn.set_progress_handler(None, 0)
            return
        deadline = time.monotonic() + seconds

        self.interrupted = False

        def check() -> int:
            if time.monotonic() > deadline:
                self.interrupted = True
                return 1
            return 0

        self.conn.set_progress_handler(check, 1_000)

    def get_many_json(self, nct_ids: list[str]) -> dict[str, bytes]:
        if not nct_ids:
            return {}
        marks = ", ".join("?" * len(nct_ids))
        return {nct: stored_json(blob) for nct, blob in self.conn.execute(
            f"SELECT s.nct_id, {self._rec} FROM {self._rec_from} WHERE s.nct_id IN ({marks})", nct_ids)}

    def location_counts(self, country: str | None = None, state: str | None = None) -> list[tuple[str, int]]:
        """Studies per country, per state of a country, or per city of a state (trials by location)."""
        if country is None:
            sql, params = "SELECT country, count(DISTINCT sid) FROM locations WHERE country != '' GROUP BY 1", []
        elif state is None:
            sql = ("SELECT CASE WHEN state = '' THEN city ELSE state END, count(DISTINCT sid) FROM locations "
                   "WHERE country = ? GROUP BY 1")
            params = [country]
        else:
            sql = "SELECT city, count(DISTINCT sid) FROM locations WHERE country = ? AND state = ? GROUP BY 1"
            params = [country, state]
        rows = [(k, n) for k, n in self.conn.execute(sql, params) if k]
        return sorted(rows, key=lambda r: (-r[1], r[0]))

    def condition_counts(self, letter: str | None = None, limit: int = 2000) -> list[tuple[str, int]]:
        """Conditions with their number of studies, optionally those starting with ``letter``."""
        sql = "SELECT term, count(DISTINCT sid) FROM conditions WHERE kind = 'condition'"
        params: list[Any] = []
        if letter:
            sql += " AND upper(substr(term, 1, 1)) = ?"
            params.append(letter.upper()[:1])
        sql += " GROUP BY term COLLATE NOCASE ORDER BY term COLLATE NOCASE LIMIT ?"
        params.append(limit)
        return [(t, n) for t, n in self.conn.execute(sql, params)]

    def field_values(self, column: str, limit: int = 100) -> list[tuple[str, int]]:
        """Distinct values of an indexed study column with counts (for ``/stats/field/values``)."""
        allowed = {"overall_status", "study_type", "lead_class", "sex", "phases", "allocation",
                   "intervention_model", "masking", "primary_purpose", "enrollment_type"}
        if column not in allowed:
            raise ValueError(f"unknown field column {column!r}")
        return [(v, n) for v, n in self.conn.execute(
            f"SELECT {column}, count(*) FROM studies GROUP BY 1 ORDER BY 2 DESC LIMIT ?", (limit,))]

    # -- copying between databases (``trialfinder copy``) ----------------------------------------------

    def dump_studies(self, chunk: int = 2000) -> Iterator[list[tuple[str, bytes, str, str | None, str | None,
                                                                     int | None]]]:
        """Every study as stored: (NCT id, record bytes, content hash, source, ingested at, JSON size), by sid."""
        cols = {r[1] for r in self.conn.execute("PRAGMA table_info(studies)")}
        size = "s.record_size" if "record_size" in cols else "NULL"
        last = 0
        while True:
            rows = self.conn.execute(
                f"SELECT s.sid, s.nct_id, {self._rec}, s.content_hash, s.source, s.ingested_at, {size} "
                f"FROM {self._rec_from} WHERE s.sid > ? ORDER BY s.sid LIMIT ?", (last, chunk)).fetchall()
            if not rows:
                return
            last = rows[-1][0]
            yield [(n, bytes(b), h, src, at, sz) for _s, n, b, h, src, at, sz in rows]

    def ingest_runs(self) -> list[dict[str, Any]]:
        """The log of ingest runs, oldest first."""
        return [dict(zip(INGEST_KEYS, r, strict=True)) for r in self.conn.execute(
            f"SELECT {', '.join(INGEST_KEYS)} FROM ingests ORDER BY id")]

    def add_ingest_runs(self, runs: Iterable[dict[str, Any]]) -> None:
        """Append ingest runs to the log (a copied database keeps its history)."""
        with self.conn:
            self.conn.executemany(
                f"INSERT INTO ingests ({', '.join(INGEST_KEYS)}) VALUES ({', '.join('?' * len(INGEST_KEYS))})",
                [tuple(r.get(k) for k in INGEST_KEYS) for r in runs])

    def close(self) -> None:
        if self._bulk and not self.readonly:
            self._end_bulk()  # an interrupted bulk load still leaves every index in place
        self.conn.close()


class _BatchWriter(BatchWriter):
    """The SQLite side of :class:`~trialfinder.store.batch.BatchWriter`: one ``executemany`` per table,
    replaced rows deleted at once (in old files the record is the last column of ``studies``)."""

    def __init__(self, cur: sqlite3.Cursor, legacy_record: bool, timings: dict[str, float], seq: int,
                 ingested_at: Sequence[str | None] | None = None) -> None:
        super().__init__(cur, timings, seq, ingested_at)
        self.legacy_record = legacy_record

    def _queue_study(self, sid: int, values: tuple, ingested_at: str, record: bytes) -> None:
        if self.legacy_record:
            self.studies.append((sid, *values, ingested_at, self.seq, record))
        else:
            super()._queue_study(sid, values, ingested_at, record)

    def flush(self) -> None:
        self._insert("studies", _STUDY_INSERT_LEGACY if self.legacy_record else _STUDY_INSERT, self.studies)
        self._insert("study_records", _RECORD_INSERT, self.records)
        for table, rows in zip(CHILD_TABLES, self.children, strict=True):
            self._insert(table, _CHILD_INSERTS[table], rows)
        self._insert("locations", _LOCATION_INSERT, self.locations)
        self.queued.clear()

    def _insert(self, table: str, sql: str, rows: list[tuple]) -> None:
        if rows:
            t0 = time.perf_counter()
            self.db.executemany(sql, rows)
            self._timed(table, t0)
            rows.clear()

    def _existing(self, ncts: list[str]) -> dict[str, tuple[int, str, str, int | None]]:
        found: dict[str, tuple[int, str, str, int | None]] = {}
        for i in range(0, len(ncts), 500):
            chunk = ncts[i:i + 500]
            marks = ", ".join("?" * len(chunk))
            for nct, sid, version, digest, size in self.db.execute(
                    "SELECT nct_id, sid, last_update, content_hash, record_size FROM studies "
                    f"WHERE nct_id IN ({marks})", chunk):
                found[nct] = (sid, version, digest, size)
        return found

    def _archive(self, sid: int, now: str) -> None:
        archive_version(self.db, sid, self.legacy_record, now)

    def _remove(self, sid: int) -> None:
        cur = self.db
        for table in CHILD_TABLES:
            cur.execute(f"DELETE FROM {table} WHERE sid = ?", (sid,))
        cur.execute("DELETE FROM locations WHERE sid = ?", (sid,))
        if not self.legacy_record:
            cur.execute("DELETE FROM study_records WHERE sid = ?", (sid,))
        cur.execute("DELETE FROM studies WHERE sid = ?", (sid,))
