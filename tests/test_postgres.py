"""The PostgreSQL backend on a real server: same semantics and same answers as SQLite, migrations,
settings, copy between backends, and a kill -9 of an ingest.

The server is the session's throwaway cluster (``pg_cluster`` in conftest); these tests skip with the
reason where it cannot be started.
"""

from __future__ import annotations

import copy
import os
import signal
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import orjson
import pytest

import trialfinder
from trialfinder.cli import main
from trialfinder.index.follow import current_snapshot
from trialfinder.ingest import ingest, sample_path
from trialfinder.search.request import from_api_params
from trialfinder.store import BudgetExceeded, StoreError, open_store
from trialfinder.store.postgres.config import index_dir, parse_url

DATA = Path(__file__).parent / "data"


def _sample_record() -> dict:
    with zipfile.ZipFile(sample_path()) as zf:
        name = next(n for n in sorted(zf.namelist()) if n.endswith(".json"))
        return orjson.loads(zf.read(name))


def _dated(rec: dict, date: str, title: str | None = None) -> dict:
    rec = copy.deepcopy(rec)
    rec["protocolSection"].setdefault("statusModule", {})["lastUpdatePostDateStruct"] = {"date": date}
    if title:
        rec["protocolSection"]["identificationModule"]["briefTitle"] = title
    return rec


def _write(path: Path, rec: dict) -> str:
    path.write_bytes(orjson.dumps(rec))
    return str(path)


# ------------------------------------------------------------------------------------------ semantics


def test_upsert_semantics_match_sqlite(pg_db: str, tmp_path: Path) -> None:
    ref = _sample_record()
    nct = ref["protocolSection"]["identificationModule"]["nctId"]
    v1 = _write(tmp_path / "v1.json", _dated(ref, "2020-01-01", "first version"))
    v2 = _write(tmp_path / "v2.json", _dated(ref, "2021-06-01", "second version"))
    outcomes: dict[str, list] = {}
    for name, db in (("sqlite", str(tmp_path / "x.sqlite")), ("postgresql", pg_db)):
        steps = []
        with open_store(db) as store:
            for path in (v2, v1, v2, v1):  # newer first: the older one is ignored, the same one a no-op
                before = store.data_seq()
                c = ingest(store, [path]).counts
                steps.append(((c.added, c.updated, c.unchanged, c.older), store.data_seq() - before))
            changed = [row[0] for chunk in store.changed_since(0) for row in chunk]
            steps.append(("title", store.get(nct)["protocolSection"]["identificationModule"]["briefTitle"]))
            steps.append(("changed", changed, store.count()))
        outcomes[name] = steps
    assert outcomes["postgresql"] == outcomes["sqlite"]
    assert outcomes["sqlite"][0] == ((1, 0, 0, 0), 1)
    assert outcomes["sqlite"][1] == ((0, 0, 0, 1), 0)  # older: ignored, no new data sequence
    assert outcomes["sqlite"][2] == ((0, 0, 1, 0), 0)
    assert outcomes["sqlite"][4] == ("title", "second version")


def test_sites_changed_after_a_sequence_match_sqlite(pg_db: str, tmp_path: Path) -> None:
    """What radius search patches its site arrays from after a write: the studies written after a
    data sequence, and only their sites, the same on both backends."""
    with zipfile.ZipFile(sample_path()) as zf:
        recs = [orjson.loads(zf.read(n)) for n in sorted(zf.namelist()) if n.endswith(".json")]
    sited = [r for r in recs if any(loc.get("geoPoint") for loc in
                                    r["protocolSection"].get("contactsLocationsModule", {}).get("locations") or [])]
    first, second = sited[:5], sited[5:7]
    a = [_write(tmp_path / f"a{i}.json", r) for i, r in enumerate(first)]
    b = [_write(tmp_path / f"b{i}.json", _dated(r, "2031-01-01")) for i, r in enumerate(first[:1] + second)]
    seen = {}
    for name, db in (("sqlite", str(tmp_path / "s.sqlite")), ("postgresql", pg_db)):
        with open_store(db) as store:
            ingest(store, a)
            mark = store.data_seq()
            ingest(store, b)
            changed = sorted(store.studies_changed_after(mark, 10) or [])
            pts = sorted(n for chunk in store.site_points(after_seq=mark) for n in chunk[1])
            seen[name] = (changed, sorted(set(pts)), store.studies_changed_after(0, 3), len(pts))
    want = sorted(int(r["protocolSection"]["identificationModule"]["nctId"][3:]) for r in first[:1] + second)
    assert seen["sqlite"][0] == want and seen["sqlite"][1] == want
    assert seen["sqlite"][2] is None  # 7 studies changed after sequence 0: more than the limit of 3
    assert seen["postgresql"] == seen["sqlite"]


def test_concurrent_writers_number_sequences_in_commit_order(pg_db: str, tmp_path: Path) -> None:
    """Two processes writing at once: every study ends up stamped with a sequence the index follows."""
    ref = _sample_record()
    files = []
    for i in range(2):
        d = tmp_path / f"set{i}"
        d.mkdir()
        for j in range(40):
            rec = copy.deepcopy(ref)
            rec["protocolSection"]["identificationModule"]["nctId"] = f"NCT9{i}{j:06d}"
            _write(d / f"NCT9{i}{j:06d}.json", rec)
        files.append(str(d))
    code = ("import sys, trialfinder\nfrom trialfinder.ingest import ingest\n"
            "s = trialfinder.open_store(sys.argv[1])\ningest(s, [sys.argv[2]], batch_size=5)\ns.close()\n")
    procs = [subprocess.Popen([sys.executable, "-c", code, pg_db, f], env={**os.environ,
                              "TRIALFINDER_INDEX_DIR": str(tmp_path / f"index{i}")}) for i, f in enumerate(files)]
    assert [p.wait(timeout=120) for p in procs] == [0, 0]
    with open_store(pg_db) as store:
        assert store.count() == 80
        assert store.data_seq() == 16  # 2 x 8 batches, each its own sequence
        seqs = sorted(row[2] for chunk in store.changed_since(-1) for row in chunk)
        assert sorted(set(seqs)) == list(range(1, 17))
        # a third node's index follows the database from nothing
        os.environ["TRIALFINDER_INDEX_DIR"] = str(tmp_path / "index-third")
        try:
            current = current_snapshot(store)
            assert current.snapshot.num_docs == 80 and not current.stale
        finally:
            del os.environ["TRIALFINDER_INDEX_DIR"]


QUERIES = [
    {"query.cond": "lung cancer"},
    {"query.term": "lupus"},
    {"query.cond": "breast cancer", "filter.overallStatus": "RECRUITING"},
    {"query.intr": "pembrolizumab"},
    {"query.cond": "diabetes", "aggFilters": "phase:3"},
    {"query.term": "AREA[Phase]PHASE2 AND heart"},
    {"filter.geo": "distance(41.8781,-87.6298,100mi)"},
    {"query.cond": "cancer", "sort": "LastUpdatePostDate:desc"},
    {"query.locn": "Germany"},
    {},
]


def test_same_totals_facets_and_first_page_on_both_backends(sqlite_sample_master: Path, pg_cluster,
                                                             pg_sample_template: str) -> None:
    pg_url = pg_cluster.url(pg_sample_template)
    with open_store(sqlite_sample_master, readonly=True) as lite, open_store(pg_url, readonly=True) as pg:
        overlaps: list[float] = []
        for params in QUERIES:
            answers = []
            for store in (lite, pg):
                req = from_api_params({**params, "countTotal": "true", "pageSize": "20"})
                import dataclasses

                page = trialfinder.search(store, dataclasses.replace(req, facets=True))
                answers.append((page.total_count, page.facets, [h.nct_id for h in page.hits]))
            assert answers[0][0] and answers[0][0] > 0 or params.get("query.intr"), params
            assert answers[1][:2] == answers[0][:2], params  # totals and facet counts: identical
            first, second = answers[0][2], answers[1][2]
            # the first page: the same studies (equal scores may tie-break in another order, as the
            # two text indexes were built by separate runs); the floor is 90% on average
            overlaps.append(len(set(first) & set(second)) / max(1, len(first)))
            assert first[:5] == second[:5] or overlaps[-1] >= 0.9, params
        assert sum(overlaps) / len(overlaps) >= 0.95, overlaps
        a, b = lite.stats(), pg.stats()
        for s in (a, b):
            s.pop("database")
            s.pop("last_ingest")
        assert a == b
        assert lite.location_counts() == pg.location_counts()
        assert lite.location_counts("United States") == pg.location_counts("United States")
        assert [(t.lower(), n) for t, n in lite.condition_counts("L")] == \
            [(t.lower(), n) for t, n in pg.condition_counts("L")]
        assert lite.field_values("phases") == pg.field_values("phases")
        assert lite.synonyms("ln", ("acronym",)) == pg.synonyms("ln", ("acronym",))
        assert dict(lite.record_sizes()) == dict(pg.record_sizes())
        assert lite.resolve_id("NCT05631717") == pg.resolve_id("NCT05631717")


def test_show_json_is_byte_identical(sqlite_sample_master: Path, pg_cluster, pg_sample_template: str,
                                     capsysbinary: pytest.CaptureFixture[bytes]) -> None:
    pg_url = pg_cluster.url(pg_sample_template)
    with open_store(sqlite_sample_master, readonly=True) as lite:
        ids = [r[0] for chunk in lite.changed_since(-1, chunk=500) for r in chunk][::97]
    assert len(ids) > 10
    for nct in ids:
        outs = []
        for db in (str(sqlite_sample_master), pg_url):
            assert main(["show", nct, "--json", "--db", db]) == 0
            outs.append(capsysbinary.readouterr().out)
        assert outs[0] == outs[1] and outs[0].startswith(b"{"), nct


# ------------------------------------------------------------------------------ schema and settings


def test_migrations_versioned_and_upgrade_command(pg_db: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(StoreError, match="db upgrade"):
        open_store(pg_db, readonly=True)  # a reader never changes the schema
    assert main(["db", "status", "--db", pg_db]) == 1
    from trialfinder.store.postgres.schema import MIGRATIONS

    assert f"pending: {len(MIGRATIONS)}" in capsys.readouterr().out
    assert main(["db", "upgrade", "--db", pg_db, "--json"]) == 0
    out = orjson.loads(capsys.readouterr().out)
    assert out["before"] == 0 and out["after"] >= 1 and out["applied"]
    assert main(["db", "upgrade", "--db", pg_db, "--json"]) == 0
    assert orjson.loads(capsys.readouterr().out)["applied"] == []
    with open_store(pg_db, readonly=True) as store:
        assert store.count() == 0
        assert store._rows("SELECT version FROM schema_migrations ORDER BY 1") == [(m.version,) for m in MIGRATIONS]
        with pytest.raises(StoreError):
            store.upsert_rows([("x",)])


def test_settings_from_url_and_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    cfg = parse_url("postgresql://u:secret@db.example:6543/trials?pool_size=4&connect_timeout=2.5"
                    "&statement_timeout=7&sslmode=disable")
    assert (cfg.pool_size, cfg.connect_timeout, cfg.statement_timeout) == (4, 2.5, 7.0)
    assert "pool_size" not in cfg.conninfo and "statement_timeout" not in cfg.conninfo
    assert "sslmode=disable" in cfg.conninfo and "connect_timeout=2" in cfg.conninfo
    assert "secret" not in cfg.display()
    monkeypatch.setenv("TRIALFINDER_PG_POOL_SIZE", "3")
    monkeypatch.setenv("TRIALFINDER_PG_STATEMENT_TIMEOUT", "0")
    cfg = parse_url("postgres://u@h/d")
    assert (cfg.pool_size, cfg.statement_timeout, cfg.port) == (3, 0.0, 5432)
    with pytest.raises(StoreError, match="pool_size"):
        parse_url("postgresql://u@h/d?pool_size=lots")
    with pytest.raises(StoreError, match="connect_timeout"):
        parse_url("postgresql://u@h/d?connect_timeout=0")
    # the node-local index: per database under the cache, or where the operator says
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    monkeypatch.delenv("TRIALFINDER_INDEX_DIR", raising=False)
    a, b = index_dir(parse_url("postgresql://u@h:1/one")), index_dir(parse_url("postgresql://u@h:1/two"))
    assert a != b and a.parent == tmp_path / "trialfinder" / "index"
    assert index_dir(parse_url("postgresql://other@h:1/one")) == a  # the user does not change the data
    monkeypatch.setenv("TRIALFINDER_INDEX_DIR", str(tmp_path / "mine"))
    assert index_dir(parse_url("postgresql://u@h:1/one")) == tmp_path / "mine"


def test_statement_timeout_is_a_budget_error(pg_cluster, pg_sample_template: str) -> None:
    with open_store(pg_cluster.url(pg_sample_template, statement_timeout="0.2"), readonly=True) as store:
        started = time.monotonic()
        with pytest.raises(BudgetExceeded):
            store._rows("SELECT pg_sleep(3)")
        assert time.monotonic() - started < 2
        assert store.interrupted
        assert store.count() > 0  # the connection is usable afterwards


def test_unreachable_server_is_store_unavailable_quickly() -> None:
    import socket

    from trialfinder.store.base import StoreUnavailable

    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    started = time.monotonic()
    with pytest.raises(StoreUnavailable, match="PostgreSQL at 127.0.0.1"):
        open_store(f"postgresql://postgres@127.0.0.1:{port}/x?connect_timeout=2", readonly=True)
    assert time.monotonic() - started < 5


# ------------------------------------------------------------------------------------- copy and kill


def _stamp_old_times(db: Path) -> None:
    """Give every study its own ingest time and the run log a second, older run, all years in the past,
    so a copy that stamped its own clock (or one time for all) could not match them by accident."""
    import sqlite3

    conn = sqlite3.connect(db)
    with conn:
        conn.execute("UPDATE studies SET ingested_at = "
                     "strftime('%Y-%m-%dT%H:%M:%SZ', '2019-03-04 05:06:07', '+' || sid || ' minutes')")
        conn.execute("UPDATE ingests SET started_at = '2019-03-04T05:00:00Z', finished_at = '2019-03-04T05:59:59Z'")
        conn.execute("INSERT INTO ingests (source, started_at, finished_at, added, updated, unchanged, older, "
                     "rejected) VALUES ('old.zip', '2018-01-02T03:04:05Z', '2018-01-02T03:09:00Z', 7, 1, 2, 0, 3)")
        conn.execute("INSERT OR REPLACE INTO meta (key, value) VALUES ('last_sync', '{\"finishedAt\": "
                     "\"2019-05-06T07:08:09Z\"}')")
    conn.close()


def test_copy_sqlite_to_postgresql_and_back_is_lossless(sample_db: Path, pg_db: str, tmp_path: Path,
                                                         capsys: pytest.CaptureFixture[str]) -> None:
    back = tmp_path / "back.sqlite"
    _stamp_old_times(sample_db)
    assert main(["copy", str(sample_db), pg_db, "--json"]) == 0
    first = orjson.loads(capsys.readouterr().out)
    assert main(["copy", pg_db, str(back), "--json"]) == 0
    orjson.loads(capsys.readouterr().out)
    with open_store(sample_db) as a, open_store(pg_db) as b, open_store(back) as c:
        assert first["studies"] == a.count() == b.count() == c.count()
        # NCT id, record bytes, content hash, source, ingest time, JSON size: exactly, in both directions
        dumps = [[row for chunk in s.dump_studies() for row in chunk] for s in (a, b, c)]
        assert dumps[0] == dumps[1] == dumps[2]
        times = [row[4] for row in dumps[0]]
        assert len(set(times)) == len(times) and all(t.startswith("2019-") for t in times)
        runs = a.ingest_runs()
        assert {r["started_at"][:4] for r in runs} == {"2018", "2019"}
        assert runs == b.ingest_runs() == c.ingest_runs()
        for key in ("data_timestamp", "last_sync"):
            assert a.meta(key) == b.meta(key) == c.meta(key) is not None
        for s in (b, c):  # derived data rebuilt: the text index is current and searchable
            current = current_snapshot(s)
            assert not current.stale and current.snapshot.num_docs == a.count()
            assert trialfinder.search(s, {"query.cond": "lupus", "countTotal": "true"}).total_count == \
                trialfinder.search(a, {"query.cond": "lupus", "countTotal": "true"}).total_count
        again = ingest(b, [sample_path()])  # same content hashes: the copy knows every study
        assert again.counts.added == again.counts.updated == 0
    assert main(["copy", str(sample_db), pg_db]) == 2  # never into a database that has studies
    assert "already holds" in capsys.readouterr().err


def test_copy_sqlite_to_sqlite_keeps_every_timestamp(sample_db: Path, tmp_path: Path) -> None:
    _stamp_old_times(sample_db)
    dst_path = tmp_path / "copy.sqlite"
    with open_store(sample_db) as src, open_store(dst_path) as dst:
        trialfinder.copy_database(src, dst, rebuild_index=False)
        assert [r for ch in dst.dump_studies() for r in ch] == [r for ch in src.dump_studies() for r in ch]
        assert dst.ingest_runs() == src.ingest_runs()
        assert {r["started_at"][:4] for r in dst.ingest_runs()} == {"2018", "2019"}
        assert dst.meta("last_sync") == src.meta("last_sync") is not None


def _orphans(url: str) -> int:
    import psycopg

    with psycopg.connect(parse_url(url).conninfo) as conn:
        n = 0
        for table in ("conditions", "locations", "sponsors", "interventions", "arms", "identifiers", "study_records"):
            n += conn.execute(f"SELECT count(*) FROM {table} WHERE sid NOT IN (SELECT sid FROM studies)").fetchone()[0]
        n += conn.execute("SELECT count(*) FROM studies s WHERE n_locations != "
                          "(SELECT count(*) FROM locations l WHERE l.sid = s.sid)").fetchone()[0]
        return int(n)


def test_kill_9_mid_ingest_keeps_committed_batches_and_rerun_completes(pg_db: str, tmp_path: Path) -> None:
    code = ("import sys, trialfinder\nfrom trialfinder.ingest import ingest, sample_path\n"
            "s = trialfinder.open_store(sys.argv[1])\nr = ingest(s, [sample_path()], batch_size=150, workers=1)\n"
            "print(r.counts.summary())\ns.close()\n")
    env = {**os.environ, "TRIALFINDER_INDEX_DIR": str(tmp_path / "index")}
    assert main(["db", "upgrade", "--db", pg_db]) == 0
    proc = subprocess.Popen([sys.executable, "-c", code, pg_db], env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE)
    deadline = time.monotonic() + 120
    with open_store(pg_db, readonly=True) as store:
        while store.data_seq() < 3 and time.monotonic() < deadline and proc.poll() is None:
            time.sleep(0.05)
        assert proc.poll() is None, "the ingest finished before it could be killed"
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
        partial = store.count()
        seq = store.data_seq()
    assert seq >= 3 and partial == 150 * seq  # every committed batch is there, nothing of the next one
    assert _orphans(pg_db) == 0
    done = subprocess.run([sys.executable, "-c", code, pg_db], env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    with zipfile.ZipFile(sample_path()) as zf:
        expected = len({Path(n).stem for n in zf.namelist() if n.endswith((".json", ".xml"))})
    assert f"added {expected - partial}," in done.stdout and "rejected 0" in done.stdout
    assert _orphans(pg_db) == 0
    os.environ["TRIALFINDER_INDEX_DIR"] = str(tmp_path / "index")
    try:
        with open_store(pg_db) as store:
            assert store.count() == expected
            current = current_snapshot(store)
            assert not current.stale and current.snapshot.num_docs == expected
    finally:
        del os.environ["TRIALFINDER_INDEX_DIR"]


def test_history_alerts_and_absent_flags_on_both_backends_and_through_copy(pg_cluster, pg_db: str,
                                                                          tmp_path: Path) -> None:
    """Record history (written in the upsert's transaction), saved searches and absent-at-source flags
    behave alike on both backends, and ``copy`` carries them across."""
    from trialfinder.history import study_history

    ref = _sample_record()
    nct = ref["protocolSection"]["identificationModule"]["nctId"]
    v1 = _write(tmp_path / "v1.json", _dated(ref, "2020-01-01", "first version"))
    v2 = _write(tmp_path / "v2.json", _dated(ref, "2021-06-01", "second version"))
    seen = {}
    sqlite_db = str(tmp_path / "h.sqlite")
    for name, db in (("sqlite", sqlite_db), ("postgresql", pg_db)):
        with open_store(db) as store:
            ingest(store, [v1])
            ingest(store, [v2])
            ingest(store, [v2])  # same version again: no new history entry
            versions = store.versions(nct)
            store.put_alert("lupus", {"query": "query.cond=lupus", "seen": {}})
            store.set_absent([nct], "2021-07-01")
            seen[name] = ([(v.last_update, v.current) for v in versions],
                          [c["path"] for v in study_history(store, nct)["versions"][1:] for c in v["changes"]],
                          store.alert("lupus"), store.absent(), store.stats()["absent_at_source"],
                          store.newest_update())
    assert seen["postgresql"] == seen["sqlite"]
    assert [cur for _u, cur in seen["sqlite"][0]] == [False, True]
    assert "protocolSection.identificationModule.briefTitle" in seen["sqlite"][1]
    assert seen["sqlite"][3] == {nct: "2021-07-01"}
    copied = str(tmp_path / "copied.sqlite")
    with open_store(pg_db) as src, open_store(copied) as dst:
        trialfinder.copy_database(src, dst)
        assert [(v.last_update, v.content_hash, v.stored_at) for v in dst.versions(nct)] == \
            [(v.last_update, v.content_hash, v.stored_at) for v in src.versions(nct)]
        assert dst.dump_versions() == src.dump_versions() != []  # stored and replaced times as they were
        assert dst.alerts() == src.alerts() and dst.absent() == src.absent()
