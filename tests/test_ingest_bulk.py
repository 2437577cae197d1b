"""The registry-scale write path: bulk load into an empty database, records kept compressed, workers."""

from __future__ import annotations

import copy
import json
import sqlite3
import zipfile
from pathlib import Path

import orjson

from trialfinder.index.follow import current_snapshot
from trialfinder.ingest import ingest
from trialfinder.store import open_store
from trialfinder.store.base import RECORD_DEFLATE
from trialfinder.store.sqlite.store import DEFERRED_INDEXES

DATA = Path(__file__).parent / "data"


def _studies(n: int, start: int = 1) -> list[dict]:
    ref = json.loads((DATA / "NCT05631717.json").read_text())
    out = []
    for i in range(start, start + n):
        rec = copy.deepcopy(ref)
        rec["protocolSection"]["identificationModule"]["nctId"] = f"NCT{i:08d}"
        out.append(rec)
    return out


def _zip(path: Path, records: list[dict]) -> Path:
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        for rec in records:
            zf.writestr(rec["protocolSection"]["identificationModule"]["nctId"] + ".json", orjson.dumps(rec))
    return path


def _indexes(db: Path) -> set[str]:
    conn = sqlite3.connect(db)
    try:
        return {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'index'")}
    finally:
        conn.close()


def test_bulk_zip_ingest_with_workers_round_trips_and_builds_every_index(tmp_path: Path) -> None:
    records = _studies(300)
    zpath = _zip(tmp_path / "bulk.zip", records)
    db = tmp_path / "db.sqlite"
    with open_store(db) as store:
        result = ingest(store, [zpath], workers=2, batch_size=64)
        assert result.counts.added == 300 and result.counts.rejected == 0
        # the zip member's DEFLATE stream is the stored record, and it loads back to the same dict
        blob = store.conn.execute("SELECT r.record FROM study_records r JOIN studies s ON s.sid = r.sid WHERE s.nct_id = 'NCT00000007'").fetchone()[0]
        assert blob[:1] == RECORD_DEFLATE
        assert store.get("NCT00000007") == records[6]
        assert store.get_many(["NCT00000001", "NCT00000300"])["NCT00000300"] == records[-1]
        assert [r["protocolSection"]["identificationModule"]["nctId"] for r in store.iter_records()] == [
            f"NCT{i:08d}" for i in range(1, 301)]
        # every row of every table arrived, ids are dense and in input order
        sids = [r[0] for r in store.conn.execute("SELECT sid FROM studies ORDER BY nct_id")]
        assert sids == list(range(1, 301))
        n_loc = store.conn.execute("SELECT sum(n_locations) FROM studies").fetchone()[0]
        assert store.conn.execute("SELECT count(*) FROM locations").fetchone()[0] == n_loc
        n_geo = store.conn.execute("SELECT sum(n_geo) FROM studies").fetchone()[0]
        assert store.conn.execute("SELECT count(*) FROM locations WHERE lat IS NOT NULL").fetchone()[0] == n_geo
        assert current_snapshot(store).snapshot.num_docs == 300  # the text index holds every study
    assert set(DEFERRED_INDEXES) <= _indexes(db)
    # a second run is a no-op
    with open_store(db) as store:
        again = ingest(store, [zpath], workers=2)
    assert (again.counts.added, again.counts.updated, again.counts.unchanged) == (0, 0, 300)


def test_duplicates_and_updates_inside_one_batch_behave_like_one_by_one(tmp_path: Path) -> None:
    first, second = _studies(2)
    newer = copy.deepcopy(first)
    newer["protocolSection"]["statusModule"]["lastUpdatePostDateStruct"] = {"date": "2099-01-01"}
    newer["protocolSection"]["identificationModule"]["briefTitle"] = "Newer"
    d = tmp_path / "in"
    d.mkdir()
    (d / "a.json").write_bytes(orjson.dumps(first))
    (d / "b.json").write_bytes(orjson.dumps(second))
    (d / "c.json").write_bytes(orjson.dumps(newer))
    (d / "d.json").write_bytes(orjson.dumps(first))  # older than the stored version now
    with open_store(tmp_path / "db.sqlite") as store:
        result = ingest(store, [d])
        assert (result.counts.added, result.counts.updated, result.counts.older) == (2, 1, 1)
        assert store.get("NCT00000001")["protocolSection"]["identificationModule"]["briefTitle"] == "Newer"
        conn = store.conn
        assert current_snapshot(store).snapshot.num_docs == 2
        per_study = dict(conn.execute("SELECT sid, count(*) FROM conditions GROUP BY sid"))
        assert len(set(per_study.values())) == 1  # the replaced study's rows were not duplicated
        n_loc = conn.execute("SELECT sum(n_locations) FROM studies").fetchone()[0]
        assert conn.execute("SELECT count(*) FROM locations").fetchone()[0] == n_loc


def test_interrupted_bulk_load_gets_its_indexes_back_on_next_open(tmp_path: Path) -> None:
    db = tmp_path / "db.sqlite"
    store = open_store(db)
    store.begin_ingest("x")  # empty database: bulk mode drops the value indexes
    assert not set(DEFERRED_INDEXES) & _indexes(db)
    store.conn.close()  # as if killed: no finish_ingest, no close()
    with open_store(db):
        pass
    assert set(DEFERRED_INDEXES) <= _indexes(db)


def test_records_from_non_zip_sources_are_plain_json(tmp_path: Path) -> None:
    rec = _studies(1)[0]
    (tmp_path / "r.json").write_bytes(orjson.dumps(rec, option=orjson.OPT_INDENT_2))
    with open_store(tmp_path / "db.sqlite") as store:
        ingest(store, [tmp_path / "r.json"])
        blob = store.conn.execute("SELECT record FROM study_records").fetchone()[0]
        assert blob[:1] == b"{" and store.get("NCT00000001") == rec


def test_databases_with_the_record_in_studies_still_read_and_write(tmp_path: Path) -> None:
    """Files made before ``study_records`` existed keep their records in ``studies.record``."""
    db = tmp_path / "old.sqlite"
    conn = sqlite3.connect(db)
    from trialfinder.store.sqlite.store import SCHEMA

    conn.executescript(SCHEMA.replace("  record_size INTEGER,\n  seq INTEGER NOT NULL DEFAULT 0\n);",
                                  "  record BLOB NOT NULL\n);"))
    conn.close()
    first, second = _studies(2)
    (tmp_path / "a.json").write_bytes(orjson.dumps(first))
    with open_store(db) as store:
        ingest(store, [tmp_path / "a.json"])
    newer = copy.deepcopy(first)
    newer["protocolSection"]["statusModule"]["lastUpdatePostDateStruct"] = {"date": "2099-01-01"}
    (tmp_path / "b.json").write_bytes(orjson.dumps(newer))
    (tmp_path / "c.json").write_bytes(orjson.dumps(second))
    with open_store(db) as store:
        result = ingest(store, [tmp_path / "b.json", tmp_path / "c.json"])
        assert (result.counts.added, result.counts.updated) == (1, 1)
        assert store.get("NCT00000001") == newer and store.get_many(["NCT00000002"])["NCT00000002"] == second
        assert store.conn.execute("SELECT count(*) FROM study_records").fetchone()[0] == 0
        assert dict(store.record_sizes()) == {"NCT00000001": len(orjson.dumps(newer)),
                                              "NCT00000002": len(orjson.dumps(second))}


def test_a_schema_3_file_drops_its_unused_rtree_and_keeps_its_studies(tmp_path: Path) -> None:
    """Schema 4 no longer writes the ``location_points`` R*Tree (nothing read it); a file made before
    drops it on its first writable open, and its studies and sites stay as they were."""
    db = tmp_path / "old.sqlite"
    with open_store(db) as store:
        ingest(store, [str(DATA / "NCT05631717.json")])
    conn = sqlite3.connect(db)
    conn.execute("CREATE VIRTUAL TABLE location_points USING rtree(lid, min_lat, max_lat, min_lon, max_lon)")
    conn.execute("UPDATE meta SET value = '3' WHERE key = 'schema_version'")
    conn.commit()
    n_loc = conn.execute("SELECT count(*) FROM locations").fetchone()[0]
    conn.close()
    with open_store(db) as store:
        names = {r[0] for r in store.conn.execute("SELECT name FROM sqlite_master")}
        assert "location_points" not in names
        assert store.meta("schema_version") == "4"
        assert store.count() == 1
        assert store.conn.execute("SELECT count(*) FROM locations").fetchone()[0] == n_loc
