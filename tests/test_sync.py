"""``trialfinder sync`` against the loopback stand-in: two days of changes, faults, resume, reconcile, lock.

Real parts only: a real SQLite file, a real HTTP server on loopback, the real client. Time is fake where
the retry policy waits (the client's clock and sleep are injected), so ``Retry-After`` is asserted
exactly; the kill -9 test runs the real command in a subprocess and kills it mid-sync.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import orjson
import pytest
from standin_api import (
    FakeTime,
    StandinAPI,
    StandinRegistry,
    apply_day_of_changes,
    nct_of,
    seed_records,
    standin_client,
)

from trialfinder.sources.ctgov_api import RetryPolicy
from trialfinder.store import open_store
from trialfinder.sync import SyncBusy, SyncLock, SyncStopped, freshness, sync

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture()
def api():
    with StandinAPI(StandinRegistry(seed_records(), max_page_size=4)) as server:
        yield server


def stored(db: Path) -> dict[str, dict]:
    with open_store(db) as store:
        return {nct_of(r): r for r in store.iter_records()}


def assert_equal_to_source(db: Path, registry: StandinRegistry, kept: tuple[str, ...] = ()) -> None:
    mirror = stored(db)
    source = registry.snapshot()
    assert set(mirror) - set(kept) == set(source)
    for nct, rec in source.items():
        assert mirror[nct] == rec, nct


def run_sync(db: Path, api: StandinAPI, fake: FakeTime | None = None, client_kw: dict | None = None, **kw):
    with open_store(db) as store:
        return sync(store, standin_client(api, fake, **(client_kw or {})), **kw)


def test_two_days_end_equal_to_source_and_the_second_fetches_only_changes(tmp_path: Path, api: StandinAPI):
    db = tmp_path / "m.sqlite"
    first = run_sync(db, api)
    assert first.mode == "full" and first.counts.added == len(seed_records())
    assert first.pages == 3  # 11 studies, pages of 4 (the server clamps pageSize=1000)
    assert api.registry.requests("/studies")[0].params["pageSize"] == "1000"
    assert_equal_to_source(db, api.registry)

    day = apply_day_of_changes(api.registry)
    api.registry.clear_log()
    second = run_sync(db, api)
    sent = api.registry.requests("/studies")
    assert {r.params["filter.advanced"] for r in sent} == {"AREA[LastUpdatePostDate]RANGE[2024-06-26,MAX]"}
    assert {r.params["sort"] for r in sent} == {"LastUpdatePostDate:asc"}
    # only the day's changes (and the one study inside the deliberate one-day overlap) were fetched
    assert second.counts.added == len(day["new"])
    assert second.counts.updated == len(day["changed"])
    assert second.counts.unchanged == 0  # NCT06470230, in the overlap, changed today too
    assert second.summary() == f"added {len(day['new'])}, updated {len(day['changed'])}, unchanged 0, rejected 0"
    assert_equal_to_source(db, api.registry, kept=tuple(day["removed"]))  # a withdrawn study is kept
    with open_store(db) as store:
        assert store.meta("data_timestamp") == api.registry.data_timestamp
        assert store.meta("sync_state") is None  # finished: nothing to resume
        fresh = freshness(store)
    assert fresh["lastSync"]["dataTimestamp"] == api.registry.data_timestamp and not fresh["stale"]


def test_retry_after_is_honoured_and_transient_faults_are_retried(tmp_path: Path, api: StandinAPI):
    reg = api.registry
    reg.inject("status", path="/studies", status=429, headers={"Retry-After": "7"}, after=1)
    reg.inject("status", path="/studies", status=503)
    reg.inject("drop", path="/studies")
    reg.inject("truncate", path="/studies")
    fake = FakeTime()
    result = run_sync(tmp_path / "m.sqlite", api, fake, client_kw={"retry": RetryPolicy(max_attempts=6)})
    assert 7.0 in fake.sleeps  # waited exactly as told
    assert fake.sleeps.count(7.0) == 1
    assert result.counts.added == len(seed_records())
    assert [r.fault for r in reg.requests("/studies")].count(None) == 3  # 3 good pages
    assert_equal_to_source(tmp_path / "m.sqlite", reg)


def test_403_stops_at_once_with_advice_and_keeps_what_was_committed(tmp_path: Path, api: StandinAPI):
    db = tmp_path / "m.sqlite"
    api.registry.inject("status", path="/studies", status=403, after=1)
    with pytest.raises(SyncStopped) as info:
        run_sync(db, api)
    assert "403" in str(info.value) and "--rate" in str(info.value)
    assert "Wait a while" in str(info.value)
    assert info.value.result.counts.added == 4
    assert len(api.registry.requests("/studies")) == 2  # never retried
    assert len(stored(db)) == 4
    again = run_sync(db, api)
    assert again.resumed and again.counts.added == len(seed_records()) - 4
    assert api.registry.requests("/studies")[-2].params.get("pageToken")  # resumed from the saved token
    assert_equal_to_source(db, api.registry)


def test_retries_run_out_then_the_next_run_resumes(tmp_path: Path, api: StandinAPI):
    db = tmp_path / "m.sqlite"
    api.registry.inject("status", path="/studies", status=502, times=4, after=2)
    fake = FakeTime()
    with pytest.raises(SyncStopped) as info:
        run_sync(db, api, fake)
    assert "Giving up" in str(info.value) and "run the sync again" in str(info.value)
    assert fake.sleeps == [1.0, 2.0, 4.0]  # exponential backoff, equal jitter pinned to its low half
    assert len(stored(db)) == 8
    with open_store(db) as store:
        assert orjson.loads(store.meta("sync_state") or "{}")["page"] == 3
        assert store.meta("last_sync") is None  # only a completed run counts as a sync
    assert run_sync(db, api).resumed
    assert_equal_to_source(db, api.registry)


def test_kill_9_mid_sync_resumes_with_nothing_lost_or_duplicated(tmp_path: Path, api: StandinAPI):
    db = tmp_path / "m.sqlite"
    api.registry.inject("slow", path="/studies", delay=30.0, after=1)  # page 2 hangs
    cmd = [sys.executable, "-m", "trialfinder", "sync", "--api", api.base_url, "--db", str(db), "--rate", "0",
           "--timeout", "60"]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=ROOT)
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if len(api.registry.requests("/studies")) >= 2 and db.exists():
                with open_store(db, readonly=True) as store:
                    if store.count() == 4:
                        break
            time.sleep(0.05)
        else:
            pytest.fail("the sync never committed its first page")
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(10)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == -signal.SIGKILL
    api.registry.faults.clear()
    done = subprocess.run(cmd + ["--json"], capture_output=True, cwd=ROOT, timeout=120)
    assert done.returncode == 0, done.stderr.decode()
    out = orjson.loads(done.stdout)
    assert out["resumed"] is True and out["added"] == len(seed_records()) - 4
    assert_equal_to_source(db, api.registry)
    with open_store(db) as store:
        assert store.count() == len(seed_records())  # nothing duplicated


def test_reconcile_flags_studies_absent_at_the_source_and_fetches_missed_ones(tmp_path: Path, api: StandinAPI):
    db = tmp_path / "m.sqlite"
    run_sync(db, api)
    api.registry.remove("NCT06470113")
    # a change posted with an old date: a date query never sees it; reconcile's id walk does
    api.registry.update("NCT00777179", lambda r: r["protocolSection"]["statusModule"].__setitem__(
        "whyStopped", "funding"), day="2016-10-11")
    result = run_sync(db, api, reconcile=True)
    assert result.reconcile is not None
    assert result.reconcile["absent"] == ["NCT06470113"] and result.reconcile["newly_marked"] == 1
    assert result.reconcile["fetched"] == ["NCT00777179"]
    with open_store(db) as store:
        assert set(store.absent()) == {"NCT06470113"}
        assert store.get("NCT06470113") is not None  # kept
    assert_equal_to_source(db, api.registry, kept=("NCT06470113",))
    sent = [r for r in api.registry.requests("/studies") if "fields" in r.params]
    assert sent and {r.params["fields"] for r in sent} == {"NCTId,LastUpdatePostDate"}
    api.registry.add(seed_by_id("NCT06470113"), touch=False)  # back again: the flag is cleared
    run_sync(db, api, reconcile=True)
    with open_store(db) as store:
        assert store.absent() == {}


def seed_by_id(nct: str) -> dict:
    return next(r for r in seed_records() if nct_of(r) == nct)


def test_two_syncs_never_overlap(tmp_path: Path):
    db = tmp_path / "m.sqlite"
    with open_store(db) as one, open_store(db) as two:
        with SyncLock(one):
            with pytest.raises(SyncBusy) as info:
                SyncLock(two).acquire()
            assert "another sync" in str(info.value)
        with SyncLock(two):  # released: the next sync takes it
            pass


def test_cli_sync_prints_the_summary_line_and_refuses_a_concurrent_run(tmp_path: Path, api: StandinAPI, capsys):
    from trialfinder.cli import main

    db = tmp_path / "m.sqlite"
    assert main(["sync", "--api", api.base_url, "--db", str(db), "--rate", "0"]) == 0
    captured = capsys.readouterr()
    assert captured.out == f"added {len(seed_records())}, updated 0, unchanged 0, rejected 0\n"
    assert "sync: 3 pages, 4 requests" in captured.err
    with open_store(db) as holder, SyncLock(holder):
        assert main(["sync", "--api", api.base_url, "--db", str(db), "--rate", "0"]) == 3
    assert "another sync" in capsys.readouterr().err
    assert main(["stats", "--db", str(db)]) == 0
    text = capsys.readouterr().out
    assert f"data timestamp: {api.registry.data_timestamp}" in text and "last sync: " in text


def test_a_slow_answer_times_out_and_is_retried(tmp_path: Path, api: StandinAPI):
    api.registry.inject("slow", path="/studies", delay=1.0, after=1)
    fake = FakeTime()
    result = run_sync(tmp_path / "m.sqlite", api, fake, client_kw={"timeout": 0.3})
    assert result.counts.added == len(seed_records())
    assert fake.sleeps == [1.0]  # one backoff after the timeout
    assert [r.fault for r in api.registry.requests("/studies")].count("slow") == 1


def test_bulk_fills_an_empty_database_then_sync_fetches_only_changes(tmp_path: Path, api: StandinAPI, capsys):
    import zipfile

    from trialfinder.cli import main

    bulk = tmp_path / "ctg-studies.json.zip"
    with zipfile.ZipFile(bulk, "w", zipfile.ZIP_DEFLATED) as zf:
        for rec in seed_records():
            zf.writestr(f"{nct_of(rec)}.json", orjson.dumps(rec))
    day = apply_day_of_changes(api.registry)
    db = tmp_path / "m.sqlite"
    assert main(["sync", "--bulk", str(bulk), "--api", api.base_url, "--db", str(db), "--rate", "0", "--json"]) == 0
    out = orjson.loads(capsys.readouterr().out)
    assert out["bulk"]["summary"].startswith(f"added {len(seed_records())},")
    assert out["mode"] == "changes" and out["since"] == "2024-06-26"
    assert out["added"] == len(day["new"]) and out["updated"] == len(day["changed"])
    assert_equal_to_source(db, api.registry, kept=tuple(day["removed"]))


def test_every_takes_durations():
    from trialfinder.cli.sync_cmd import _interval

    assert (_interval("24h"), _interval("30m"), _interval("90"), _interval("1d")) == (86400, 1800, 90, 86400)
    with pytest.raises(Exception, match="duration"):
        _interval("soon")


def test_killed_after_the_last_page_resumes_without_fetching_again(tmp_path: Path, api: StandinAPI):
    db = tmp_path / "m.sqlite"
    run_sync(db, api)
    with open_store(db) as store:  # as if killed between the last page's commit and the end of the run
        store.set_meta("sync_state", orjson.dumps({"source": api.base_url, "mode": "full", "since": None,
                                                   "token": None, "page": 4,
                                                   "dataTimestamp": "2024-06-28T09:00:06"}).decode())
    api.registry.clear_log()
    result = run_sync(db, api)
    assert result.resumed and result.pages == 0 and api.registry.requests("/studies") == []
    with open_store(db) as store:
        assert store.meta("sync_state") is None and store.meta("data_timestamp") == "2024-06-28T09:00:06"


def test_a_bad_record_at_the_source_is_rejected_with_its_reason_and_the_rest_is_stored(
        tmp_path: Path, api: StandinAPI):
    api.registry.update("NCT06470139", lambda r: r["protocolSection"]["statusModule"].__setitem__(
        "overallStatus", "BOGUS"), day="2024-06-20")
    result = run_sync(tmp_path / "m.sqlite", api)
    assert result.counts.rejected == 1 and result.counts.added == len(seed_records()) - 1
    rejection = result.ingest.rejections[0]
    assert rejection.nct_id == "NCT06470139" and "BOGUS" in rejection.reason
    assert result.summary() == f"added {len(seed_records()) - 1}, updated 0, unchanged 0, rejected 1"


def test_a_stopped_sync_keeps_the_timestamp_of_the_last_completed_one(tmp_path: Path, api: StandinAPI):
    db = tmp_path / "m.sqlite"
    run_sync(db, api)
    apply_day_of_changes(api.registry)
    api.registry.inject("status", path="/studies", status=403)
    with pytest.raises(SyncStopped):
        run_sync(db, api)
    with open_store(db) as store:
        assert store.meta("data_timestamp") == "2024-06-28T09:00:06"  # day 0's, not day 1's
    run_sync(db, api)
    with open_store(db) as store:
        assert store.meta("data_timestamp") == api.registry.data_timestamp == "2024-06-29T09:00:06"


def test_bulk_from_a_url_is_downloaded_whole_then_ingested(tmp_path: Path):
    import functools
    import threading
    import zipfile
    from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer

    from trialfinder.sources.ctgov_api import SourceUnavailable
    from trialfinder.sync.bulk import load_bulk

    served = tmp_path / "www"
    served.mkdir()
    with zipfile.ZipFile(served / "ctg-studies.json.zip", "w", zipfile.ZIP_DEFLATED) as zf:
        for rec in seed_records():
            zf.writestr(f"{nct_of(rec)}.json", orjson.dumps(rec))

    class Quiet(SimpleHTTPRequestHandler):
        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(Quiet, directory=str(served)))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    base = f"http://127.0.0.1:{server.server_address[1]}"
    work = tmp_path / "work"
    work.mkdir()
    try:
        with open_store(tmp_path / "m.sqlite") as store:
            result = load_bulk(store, f"{base}/ctg-studies.json.zip", work_dir=work)
            assert result.counts.added == len(seed_records())
            with pytest.raises(SourceUnavailable, match="Nothing was stored"):
                load_bulk(store, f"{base}/missing.zip", work_dir=work)
    finally:
        server.shutdown()
    assert sorted(p.name for p in work.iterdir()) == ["ctg-studies.json.zip"]  # no partial file left


def test_sync_into_postgresql_equals_the_source_and_locks_across_processes(pg_db: str, api: StandinAPI):
    """The same sync into PostgreSQL: two days end equal to the source (history kept), and the sync lock
    is the server's advisory lock, so a sync on another machine would be refused too."""
    first = run_sync(pg_db, api)  # type: ignore[arg-type]
    assert first.counts.added == len(seed_records())
    day = apply_day_of_changes(api.registry)
    second = run_sync(pg_db, api)  # type: ignore[arg-type]
    assert second.counts.added == len(day["new"]) and second.counts.updated == len(day["changed"])
    assert_equal_to_source(pg_db, api.registry, kept=tuple(day["removed"]))  # type: ignore[arg-type]
    with open_store(pg_db) as store:
        assert store.meta("data_timestamp") == api.registry.data_timestamp
        changed = next(iter(day["changed"]))
        assert len(store.versions(changed)) >= 2
        with SyncLock(store):
            probe = subprocess.run([sys.executable, "-m", "trialfinder", "sync", "--api", api.base_url,
                                    "--db", pg_db, "--rate", "0"], capture_output=True, text=True, timeout=120)
            assert probe.returncode == 3 and "another sync" in probe.stderr, probe.stderr
