"""The PostgreSQL schema: every table, index and migration of the backend, in one place.

Why one module: the tables mirror the SQLite backend's (same names, same columns, same meaning), so a
table added there (a record history, say) is ported by adding one :class:`Migration` here and nothing
else. Migrations are numbered and recorded in ``schema_migrations``; :func:`migrate` applies the missing
ones in order, each in its own transaction, under an advisory lock so several processes starting at
once (web nodes, an ingest) never race. A migration marked ``auto`` is additive and runs whenever a
writable store opens; one that is not (a rewrite of a large table, say) waits for ``trialfinder db
upgrade``, so a web node never starts a long rewrite by itself.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

#: Advisory lock keys (``pg_advisory_*lock``): schema changes, and the one-writer-at-a-time rule for
#: write transactions that number the data sequence.
MIGRATION_LOCK = 0x7472_6961_6C00  # "trial\0"
WRITE_LOCK = 0x7472_6961_6C01


@dataclass(frozen=True)
class Migration:
    version: int
    name: str
    sql: str
    #: safe to run automatically when a writable store opens (additive, quick)
    auto: bool = True


#: Indexes on values that a bulk load into an empty database builds once at the end (``CREATE INDEX``
#: sorts once instead of inserting row by row); re-created by every writable open if a killed bulk load
#: left them out. The same set as the SQLite backend's ``DEFERRED_INDEXES``.
DEFERRED_INDEXES: dict[str, str] = {
    "studies_status": "CREATE INDEX IF NOT EXISTS studies_status ON studies (overall_status)",
    "studies_first_posted": "CREATE INDEX IF NOT EXISTS studies_first_posted ON studies (first_posted)",
    "studies_last_update": "CREATE INDEX IF NOT EXISTS studies_last_update ON studies (last_update_posted)",
    "studies_start": "CREATE INDEX IF NOT EXISTS studies_start ON studies (start_date)",
    "identifiers_value": "CREATE INDEX IF NOT EXISTS identifiers_value ON identifiers (value)",
    "locations_place": "CREATE INDEX IF NOT EXISTS locations_place ON locations (country, state, city)",
    "synonyms_term_kind": "CREATE INDEX IF NOT EXISTS synonyms_term_kind ON synonyms (term, kind, expansion)",
}

_BASE = """
CREATE TABLE IF NOT EXISTS meta (key text PRIMARY KEY, value text);
CREATE TABLE IF NOT EXISTS studies (
  sid bigint PRIMARY KEY,
  nct_id text NOT NULL UNIQUE,
  last_update text NOT NULL,
  content_hash text NOT NULL,
  source text,
  ingested_at text,
  brief_title text, official_title text, acronym text, org_study_id text,
  overall_status text, study_type text, phases text,
  allocation text, intervention_model text, masking text, primary_purpose text,
  lead_sponsor text, lead_class text,
  sex text, healthy_volunteers integer, min_age double precision, max_age double precision, std_ages text,
  enrollment bigint, enrollment_type text,
  start_date text, first_posted text, last_update_posted text, completion_date text,
  primary_completion_date text,
  has_results integer NOT NULL DEFAULT 0,
  n_locations integer NOT NULL DEFAULT 0,
  n_geo integer NOT NULL DEFAULT 0,
  record_size bigint,
  seq bigint NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS studies_seq ON studies (seq);
CREATE TABLE IF NOT EXISTS study_records (sid bigint PRIMARY KEY, record bytea NOT NULL);
CREATE TABLE IF NOT EXISTS identifiers (sid bigint NOT NULL, kind text NOT NULL, value text NOT NULL);
CREATE INDEX IF NOT EXISTS identifiers_sid ON identifiers (sid);
CREATE TABLE IF NOT EXISTS conditions (sid bigint NOT NULL, kind text NOT NULL, term text NOT NULL);
CREATE INDEX IF NOT EXISTS conditions_sid ON conditions (sid);
CREATE TABLE IF NOT EXISTS interventions (sid bigint NOT NULL, type text, name text, other_names text);
CREATE INDEX IF NOT EXISTS interventions_sid ON interventions (sid);
CREATE TABLE IF NOT EXISTS intervention_meshes (sid bigint NOT NULL, kind text NOT NULL, term text NOT NULL);
CREATE INDEX IF NOT EXISTS intervention_meshes_sid ON intervention_meshes (sid);
CREATE TABLE IF NOT EXISTS arms (sid bigint NOT NULL, label text, type text, description text,
  intervention_names text);
CREATE INDEX IF NOT EXISTS arms_sid ON arms (sid);
CREATE TABLE IF NOT EXISTS sponsors (sid bigint NOT NULL, name text, class text, role text);
CREATE INDEX IF NOT EXISTS sponsors_sid ON sponsors (sid);
CREATE TABLE IF NOT EXISTS locations (
  lid bigint PRIMARY KEY,
  sid bigint NOT NULL, facility text, city text, state text, zip text, country text, status text,
  lat double precision, lon double precision, geo_derived integer NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS locations_sid ON locations (sid);
CREATE TABLE IF NOT EXISTS contacts (sid bigint NOT NULL, kind text, name text, role text, phone text,
  email text, affiliation text);
CREATE INDEX IF NOT EXISTS contacts_sid ON contacts (sid);
CREATE TABLE IF NOT EXISTS synonyms (sid bigint NOT NULL, kind text NOT NULL, term text NOT NULL,
  expansion text NOT NULL);
CREATE INDEX IF NOT EXISTS synonyms_sid ON synonyms (sid);
CREATE TABLE IF NOT EXISTS ingests (
  id bigint GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY, source text, started_at text, finished_at text,
  added bigint, updated bigint, unchanged bigint, older bigint, rejected bigint
);
""" + ";\n".join(DEFERRED_INDEXES.values()) + ";\n"

#: Every migration, oldest first. Append; never edit one that has shipped.
MIGRATIONS: tuple[Migration, ...] = (
    Migration(1, "base schema: studies, records, normalised facts, ingest runs", _BASE),
    Migration(2, "record history, studies absent at the source, saved searches", """
CREATE TABLE IF NOT EXISTS study_versions (
  vid bigint GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY, nct_id text NOT NULL, content_hash text NOT NULL,
  last_update text, stored_at text, replaced_at text, record bytea NOT NULL
);
CREATE UNIQUE INDEX IF NOT EXISTS study_versions_key ON study_versions (nct_id, content_hash);
CREATE TABLE IF NOT EXISTS study_absent (nct_id text PRIMARY KEY, since text NOT NULL);
CREATE TABLE IF NOT EXISTS alerts (name text PRIMARY KEY, doc text NOT NULL);
"""),
    # counting an expansion's support becomes an index-only scan (the index on term alone fetched every row)
    Migration(3, "covering index of synonyms by term, kind and expansion", """
DROP INDEX IF EXISTS synonyms_term;
CREATE INDEX IF NOT EXISTS synonyms_term_kind ON synonyms (term, kind, expansion);
"""),
)

LATEST = MIGRATIONS[-1].version

#: Columns of the child tables (:data:`trialfinder.store.batch.CHILD_TABLES`), ``sid`` first.
CHILD_COLUMNS: dict[str, tuple[str, ...]] = {
    "identifiers": ("sid", "kind", "value"),
    "conditions": ("sid", "kind", "term"),
    "interventions": ("sid", "type", "name", "other_names"),
    "intervention_meshes": ("sid", "kind", "term"),
    "arms": ("sid", "label", "type", "description", "intervention_names"),
    "sponsors": ("sid", "name", "class", "role"),
    "contacts": ("sid", "kind", "name", "role", "phone", "email", "affiliation"),
    "synonyms": ("sid", "kind", "term", "expansion"),
}
LOCATION_COLUMNS = ("lid", "sid", "facility", "city", "state", "zip", "country", "status", "lat", "lon",
                    "geo_derived")


class SchemaError(Exception):
    """Raised by :func:`migrate`/:func:`check` with a message for the user (wrapped by the store)."""


def applied_version(conn: Any) -> int:
    """The newest migration recorded in the database (0: none, a fresh database)."""
    row = conn.execute("SELECT to_regclass('schema_migrations') IS NOT NULL").fetchone()
    if not row or not row[0]:
        return 0
    row = conn.execute("SELECT coalesce(max(version), 0) FROM schema_migrations").fetchone()
    return int(row[0]) if row else 0


def check(conn: Any) -> int:
    """The schema version, or :class:`SchemaError` when it is not the one this code needs."""
    version = applied_version(conn)
    if version > LATEST:
        raise SchemaError(f"the database has schema version {version}, newer than this trialfinder knows "
                          f"({LATEST}): upgrade trialfinder")
    if version < LATEST:
        what = "is not initialised" if version == 0 else f"has schema version {version}"
        raise SchemaError(f"the database {what}; this trialfinder needs {LATEST}: run 'trialfinder db upgrade' "
                          "(or open it once for writing, e.g. 'trialfinder ingest')")
    return version


def pending(conn: Any) -> list[Migration]:
    version = applied_version(conn)
    return [m for m in MIGRATIONS if m.version > version]


def migrate(conn: Any, *, auto_only: bool = False) -> list[Migration]:
    """Apply the missing migrations in order (only ``auto`` ones with ``auto_only``); returns those applied.

    ``conn`` is an autocommit connection. Stops before the first migration that may not run
    automatically when ``auto_only`` (the store then reports that ``db upgrade`` is needed).
    """
    done: list[Migration] = []
    conn.execute("SELECT pg_advisory_lock(%s)", (MIGRATION_LOCK,))
    try:
        version = applied_version(conn)
        if version > LATEST:
            raise SchemaError(f"the database has schema version {version}, newer than this trialfinder knows "
                              f"({LATEST}): upgrade trialfinder")
        for m in MIGRATIONS:
            if m.version <= version:
                continue
            if auto_only and not m.auto:
                break
            with conn.transaction():
                conn.execute("CREATE TABLE IF NOT EXISTS schema_migrations (version integer PRIMARY KEY, "
                             "name text NOT NULL, applied_at timestamptz NOT NULL DEFAULT now())")
                conn.execute(m.sql)
                conn.execute("INSERT INTO schema_migrations (version, name) VALUES (%s, %s)", (m.version, m.name))
                conn.execute("INSERT INTO meta (key, value) VALUES ('schema_version', %s) "
                             "ON CONFLICT (key) DO UPDATE SET value = excluded.value", (str(m.version),))
            done.append(m)
        if applied_version(conn) == LATEST:
            # a killed bulk load may have left the deferred value indexes out
            for sql in DEFERRED_INDEXES.values():
                conn.execute(sql)
    finally:
        conn.execute("SELECT pg_advisory_unlock(%s)", (MIGRATION_LOCK,))
    return done
