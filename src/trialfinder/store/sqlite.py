"""The SQLite backend: one file, the record as ingested plus normalised tables and a full-text index.

Every write happens in a transaction per batch, so a run killed at any point (even ``kill -9``) leaves
the database as it was after the last committed batch; running the same ingest again completes the job
because upserts of already stored versions are no-ops.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import orjson

from trialfinder.store.base import PreparedStudy, Store, UpsertCounts

SCHEMA_VERSION = 1

SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT);
CREATE TABLE IF NOT EXISTS studies (
  sid INTEGER PRIMARY KEY,
  nct_id TEXT NOT NULL UNIQUE,
  last_update TEXT NOT NULL,
  content_hash TEXT NOT NULL,
  record BLOB NOT NULL,
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
  criteria_split BLOB
);
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
CREATE VIRTUAL TABLE IF NOT EXISTS location_points USING rtree(lid, min_lat, max_lat, min_lon, max_lon);
CREATE TABLE IF NOT EXISTS contacts (
  sid INTEGER NOT NULL, kind TEXT, name TEXT, role TEXT, phone TEXT, email TEXT, affiliation TEXT
);
CREATE INDEX IF NOT EXISTS contacts_sid ON contacts(sid);
CREATE TABLE IF NOT EXISTS synonyms (sid INTEGER NOT NULL, kind TEXT NOT NULL, term TEXT NOT NULL,
  expansion TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS synonyms_sid ON synonyms(sid);
CREATE INDEX IF NOT EXISTS synonyms_term ON synonyms(term);
CREATE VIRTUAL TABLE IF NOT EXISTS study_text USING fts5(
  title, conditions, keywords, cond_mesh, interventions, intr_mesh, summary, description, eligibility,
  outcomes, sponsors, places,
  tokenize = 'porter unicode61 remove_diacritics 2'
);
CREATE TABLE IF NOT EXISTS ingests (
  id INTEGER PRIMARY KEY, source TEXT, started_at TEXT, finished_at TEXT,
  added INTEGER, updated INTEGER, unchanged INTEGER, older INTEGER, rejected INTEGER
);
"""

CHILD_TABLES = ("identifiers", "conditions", "interventions", "intervention_meshes", "arms", "sponsors",
                "contacts", "synonyms")

#: The full-text columns, in index order; weights for ranking live in the search module.
FTS_COLUMNS = ("title", "conditions", "keywords", "cond_mesh", "interventions", "intr_mesh", "summary",
               "description", "eligibility", "outcomes", "sponsors", "places")


def _now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


class SQLiteStore(Store):
    """A :class:`Store` in one SQLite file."""

    def __init__(self, path: str | Path, *, readonly: bool = False) -> None:
        self.path = Path(path)
        self.url = str(self.path)
        self.readonly = readonly
        if readonly:
            if not self.path.exists():
                raise FileNotFoundError(f"no database at {self.path}")
            self.conn = sqlite3.connect(f"file:{self.path}?mode=ro", uri=True, check_same_thread=False)
        else:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self.conn = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None)
        self.conn.execute("PRAGMA busy_timeout = 10000")
        if not readonly:
            self.conn.execute("PRAGMA journal_mode = WAL")
            self.conn.execute("PRAGMA synchronous = NORMAL")
            self.conn.executescript(SCHEMA)
            self.conn.execute("INSERT OR IGNORE INTO meta(key, value) VALUES ('schema_version', ?)",
                              (str(SCHEMA_VERSION),))
        from trialfinder.store.sqlite_search import install_functions

        install_functions(self.conn)
        self.conn.execute("PRAGMA cache_size = -65536")
        self.conn.execute("PRAGMA temp_store = MEMORY")

    # -- writing -------------------------------------------------------------------------------------

    def upsert_many(self, studies: Iterable[PreparedStudy]) -> UpsertCounts:
        counts = UpsertCounts()
        cur = self.conn.cursor()
        cur.execute("BEGIN IMMEDIATE")
        try:
            for p in studies:
                s = p.study
                row = cur.execute("SELECT sid, last_update, content_hash FROM studies WHERE nct_id = ?",
                                  (s.nct_id,)).fetchone()
                if row is None:
                    self._insert(cur, p, None)
                    counts.added += 1
                    continue
                sid, old_version, old_hash = row
                if old_hash == p.content_hash:
                    counts.unchanged += 1
                elif s.last_update > old_version or (not s.last_update and not old_version):
                    self._delete_children(cur, sid)
                    self._insert(cur, p, sid)
                    counts.updated += 1
                elif s.last_update == old_version:
                    counts.unchanged += 1
                else:
                    counts.older += 1
            cur.execute("COMMIT")
        except BaseException:
            cur.execute("ROLLBACK")
            raise
        return counts

    def _delete_children(self, cur: sqlite3.Cursor, sid: int) -> None:
        for table in CHILD_TABLES:
            cur.execute(f"DELETE FROM {table} WHERE sid = ?", (sid,))
        cur.execute("DELETE FROM location_points WHERE lid IN (SELECT lid FROM locations WHERE sid = ?)", (sid,))
        cur.execute("DELETE FROM locations WHERE sid = ?", (sid,))
        cur.execute("DELETE FROM study_text WHERE rowid = ?", (sid,))

    def _insert(self, cur: sqlite3.Cursor, p: PreparedStudy, sid: int | None) -> None:
        s = p.study
        n_geo = sum(1 for loc in s.locations if loc[6] is not None)
        split = p.extra.get("criteria_split")
        values = (
            s.nct_id, s.last_update, p.content_hash, p.record_json, p.source, _now(),
            s.brief_title, s.official_title, s.acronym, s.org_study_id,
            s.overall_status, s.study_type, " ".join(s.phases),
            s.allocation, s.intervention_model, s.masking, s.primary_purpose,
            s.lead_sponsor, s.lead_class,
            s.sex, None if s.healthy_volunteers is None else int(s.healthy_volunteers), s.min_age, s.max_age,
            " ".join(s.std_ages), s.enrollment, s.enrollment_type,
            s.start_date, s.first_posted, s.last_update_posted, s.completion_date, s.primary_completion_date,
            int(s.has_results), len(s.locations), n_geo,
            orjson.dumps(split) if split is not None else None,
        )
        cols = ("nct_id, last_update, content_hash, record, source, ingested_at, brief_title, official_title, "
                "acronym, org_study_id, overall_status, study_type, phases, allocation, intervention_model, "
                "masking, primary_purpose, lead_sponsor, lead_class, sex, healthy_volunteers, min_age, max_age, "
                "std_ages, enrollment, enrollment_type, start_date, first_posted, last_update_posted, "
                "completion_date, primary_completion_date, has_results, n_locations, n_geo, criteria_split")
        marks = ", ".join("?" * len(values))
        if sid is None:
            cur.execute(f"INSERT INTO studies ({cols}) VALUES ({marks})", values)
            sid = cur.lastrowid
        else:
            cur.execute(f"INSERT OR REPLACE INTO studies (sid, {cols}) VALUES (?, {marks})", (sid, *values))
        cur.executemany("INSERT INTO identifiers VALUES (?, ?, ?)", [(sid, k, v) for k, v in s.identifiers])
        cur.executemany("INSERT INTO conditions VALUES (?, ?, ?)", [(sid, k, t) for k, t in s.conditions])
        cur.executemany("INSERT INTO interventions VALUES (?, ?, ?, ?)",
                        [(sid, t, n, "\t".join(o)) for t, n, o in s.interventions])
        cur.executemany("INSERT INTO intervention_meshes VALUES (?, ?, ?)",
                        [(sid, k, t) for k, t in s.intervention_meshes])
        cur.executemany("INSERT INTO arms VALUES (?, ?, ?, ?, ?)",
                        [(sid, a, b, c, "\t".join(d)) for a, b, c, d in s.arms])
        cur.executemany("INSERT INTO sponsors VALUES (?, ?, ?, ?)", [(sid, *sp) for sp in s.sponsors])
        cur.executemany("INSERT INTO contacts VALUES (?, ?, ?, ?, ?, ?, ?)", [(sid, *c) for c in s.contacts])
        for loc in s.locations:
            cur.execute(
                "INSERT INTO locations (sid, facility, city, state, zip, country, status, lat, lon, geo_derived)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", (sid, *loc[:8], int(loc[8])))
            if loc[6] is not None:
                cur.execute("INSERT INTO location_points VALUES (?, ?, ?, ?, ?)",
                            (cur.lastrowid, loc[6], loc[6], loc[7], loc[7]))
        cur.executemany("INSERT INTO synonyms VALUES (?, ?, ?, ?)",
                        [(sid, *row) for row in p.extra.get("synonyms") or ()])
        cur.execute(
            f"INSERT INTO study_text (rowid, {', '.join(FTS_COLUMNS)}) VALUES (?{', ?' * len(FTS_COLUMNS)})",
            (sid, *fts_columns(s)),
        )

    def begin_ingest(self, source: str) -> int:
        cur = self.conn.execute("INSERT INTO ingests (source, started_at) VALUES (?, ?)", (source, _now()))
        return int(cur.lastrowid)

    def finish_ingest(self, ingest_id: int, counts: UpsertCounts) -> None:
        self.conn.execute(
            "UPDATE ingests SET finished_at = ?, added = ?, updated = ?, unchanged = ?, older = ?, rejected = ? "
            "WHERE id = ?",
            (_now(), counts.added, counts.updated, counts.unchanged, counts.older, counts.rejected, ingest_id),
        )
        self.conn.execute("INSERT OR REPLACE INTO meta(key, value) VALUES ('data_timestamp', ?)", (_now(),))

    # -- reading -------------------------------------------------------------------------------------

    def get(self, nct_id: str) -> dict | None:
        row = self.conn.execute("SELECT record FROM studies WHERE nct_id = ?", (nct_id,)).fetchone()
        return orjson.loads(row[0]) if row else None

    def get_criteria_split(self, nct_id: str) -> dict | None:
        """The stored split of the study's eligibility criteria (see :mod:`trialfinder.eligibility`)."""
        row = self.conn.execute("SELECT criteria_split FROM studies WHERE nct_id = ?", (nct_id,)).fetchone()
        return orjson.loads(row[0]) if row and row[0] else None

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
            for (blob,) in self.conn.execute("SELECT record FROM studies ORDER BY nct_id"):
                yield orjson.loads(blob)
            return
        for nct in nct_ids:
            rec = self.get(nct)
            if rec is not None:
                yield rec

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
        last = c.execute(
            "SELECT source, started_at, finished_at, added, updated, unchanged, older, rejected FROM ingests "
            "WHERE finished_at IS NOT NULL ORDER BY id DESC LIMIT 1").fetchone()
        last_ingest = None
        if last:
            keys = ("source", "started_at", "finished_at", "added", "updated", "unchanged", "older", "rejected")
            last_ingest = dict(zip(keys, last, strict=True))
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
        }

    # -- search and browsing ---------------------------------------------------------------------------

    def run_search(self, plan: Any) -> Any:
        from trialfinder.store.sqlite_search import run_search

        return run_search(self.conn, plan)

    def synonyms(self, term: str, kinds: tuple[str, ...]) -> list[tuple[str, str, int]]:
        from trialfinder.store.sqlite_search import lookup_synonyms

        return lookup_synonyms(self.conn, term, kinds)

    def get_many(self, nct_ids: list[str]) -> dict[str, dict]:
        """Records by NCT id, in one query (for result pages)."""
        if not nct_ids:
            return {}
        marks = ", ".join("?" * len(nct_ids))
        return {nct: orjson.loads(blob) for nct, blob in self.conn.execute(
            f"SELECT nct_id, record FROM studies WHERE nct_id IN ({marks})", nct_ids)}

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

    def close(self) -> None:
        self.conn.close()


def fts_columns(s: Any) -> tuple[str, ...]:
    """The texts of one normalised study for the full-text index, one per weighted field."""
    title = " ".join(x for x in (s.brief_title, s.official_title, s.acronym) if x)
    conds = " ; ".join(t for k, t in s.conditions if k == "condition")
    keywords = " ; ".join(t for k, t in s.conditions if k == "keyword")
    cond_mesh = " ; ".join(t for k, t in s.conditions if k in ("mesh", "mesh_ancestor"))
    ivs = " ; ".join(" ; ".join([n, *o]) for _t, n, o in s.interventions)
    arms = " ; ".join(a[0] for a in s.arms)
    intr_mesh = " ; ".join(t for _k, t in s.intervention_meshes)
    sponsors = " ; ".join(sp[0] for sp in s.sponsors)
    places = " ; ".join(sorted({" ".join(x for x in (loc[0], loc[1], loc[2], loc[4]) if x) for loc in s.locations}))
    return (title, conds, keywords, cond_mesh, (ivs + " ; " + arms) if arms else ivs, intr_mesh,
            s.brief_summary, s.detailed_description, s.criteria, " ; ".join(s.outcomes), sponsors, places)
