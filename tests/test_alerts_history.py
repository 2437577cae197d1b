"""History and saved-search alerts end to end: sync day 0, change the source, sync day 1, then
``history --json``, ``alerts check``, the RSS feed, the study page, ``/api/v2/version`` and delivery to
loopback receivers (a webhook and an SMTP server on 127.0.0.1)."""

from __future__ import annotations

import asyncio
import threading
import xml.etree.ElementTree as ET
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import orjson
import pytest
from fastapi.testclient import TestClient
from standin_api import StandinAPI, StandinRegistry, apply_day_of_changes, seed_records

import trialfinder
from trialfinder.alerts import AlertError, add_alert, check_alert, matching_ids
from trialfinder.cli import main
from trialfinder.sources.ctgov_api import CtgovClient
from trialfinder.store import open_store
from trialfinder.sync import sync
from trialfinder.web import Settings, create_app

QUERY = "filter.overallStatus=RECRUITING"


def _ids(store, query: dict) -> set[str]:
    """trialfinder's own search, independently of the alerts module."""
    from trialfinder.index.follow import recheck

    recheck(store)  # right after this process's own sync
    page = trialfinder.search(store, {**query, "pageSize": "1000"})
    return {h.nct_id for h in page.hits}


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    """Day 0 synced, a saved search, day 1 changes synced; what the search matched before and after."""
    db = tmp_path_factory.mktemp("live") / "m.sqlite"
    with StandinAPI(StandinRegistry(seed_records(), max_page_size=4)) as api:
        client = CtgovClient(api.base_url, rate=0)
        with open_store(db) as store:
            sync(store, client)
            add_alert(store, "recruiting", QUERY)
            before = _ids(store, {"filter.overallStatus": "RECRUITING"})
            old = {n: store.get(n) for n in before}
        day = apply_day_of_changes(api.registry)
        with open_store(db) as store:
            sync(store, CtgovClient(api.base_url, rate=0))
            after = _ids(store, {"filter.overallStatus": "RECRUITING"})
            changed = {n for n in before & after if store.get(n) != old[n]}
        yield {"db": db, "before": before, "after": after, "changed": changed, "day": day,
               "data_timestamp": api.registry.data_timestamp}


def test_history_json_shows_the_field_level_change(world, capsys):
    assert main(["history", "NCT06470217", "--json", "--db", str(world["db"])]) == 0
    out = orjson.loads(capsys.readouterr().out)
    assert out["nctId"] == "NCT06470217" and len(out["versions"]) == 2
    first, second = out["versions"]
    assert first["changes"] == [] and first["lastUpdatePostDate"] == "2024-06-24"
    assert second["lastUpdatePostDate"] == world["day"]["day"] and second["current"]
    assert {"path": "protocolSection.statusModule.overallStatus", "old": "RECRUITING",
            "new": "ACTIVE_NOT_RECRUITING", "op": "changed"} in second["changes"]
    assert second["materiality"] == "major"
    assert second["summary"].startswith("Status: Recruiting → Active, not recruiting")
    assert main(["history", "NCT06470256", "--db", str(world["db"])]) == 0
    text = capsys.readouterr().out
    assert "1 site added: Lyon Sud Hospital (Lyon, France)" in text


def test_alert_reports_exactly_new_changed_and_gone_then_marks_them_seen(world, tmp_path):
    import shutil

    db = tmp_path / "copy.sqlite"
    shutil.copy(world["db"], db)  # this test marks things seen; the module's database stays unchecked
    with open_store(db) as store:
        report = check_alert(store, "recruiting")
        assert set(report["new"]) == world["after"] - world["before"] and report["new"]
        assert set(report["gone"]) == world["before"] - world["after"] and report["gone"]
        assert {c["nctId"] for c in report["changed"]} == world["changed"] and world["changed"]
        by_id = {c["nctId"]: c for c in report["changed"]}
        assert by_id["NCT06470256"]["description"].startswith("1 site added: Lyon Sud Hospital")
        assert any(c["path"].endswith("enrollmentInfo.count") for c in by_id["NCT06470230"]["changes"])
        again = check_alert(store, "recruiting")
        assert (again["new"], again["changed"], again["gone"]) == ([], [], [])
        assert again["since"] == report["checkedAt"]


def test_alert_cli_add_list_check_remove(world, tmp_path, capsys):
    import shutil

    db = tmp_path / "copy.sqlite"
    shutil.copy(world["db"], db)
    assert main(["alerts", "add", "lung", "--query", "query.cond=carcinoma", "--db", str(db)]) == 0
    assert main(["alerts", "list", "--json", "--db", str(db)]) == 0
    capsys.readouterr()
    assert main(["alerts", "check", "recruiting", "--json", "--db", str(db)]) == 0
    out = orjson.loads(capsys.readouterr().out)
    assert set(out) >= {"name", "since", "new", "changed", "gone"}
    assert set(out["gone"]) == world["before"] - world["after"]
    assert main(["alerts", "remove", "lung", "--db", str(db)]) == 0
    assert main(["alerts", "remove", "lung", "--db", str(db)]) == 2
    assert "no saved search named 'lung'" in capsys.readouterr().err
    assert main(["alerts", "add", "bad", "--query", "query.nope=1", "--db", str(db)]) == 2
    assert "query.nope" in capsys.readouterr().err


def test_alert_names_and_queries_are_validated(world):
    with open_store(world["db"]) as store:
        with pytest.raises(AlertError):
            add_alert(store, "../x", QUERY)
        with pytest.raises(AlertError):
            add_alert(store, "x", "")
        assert set(matching_ids(store, QUERY)) == world["after"]


@pytest.fixture(scope="module")
def web(world):
    app = create_app(Settings(db=str(world["db"]), auto_load_sample=False, warm_up=False))
    with TestClient(app) as client:
        yield client


def test_rss_feed_lists_every_new_changed_and_gone_study(world, web):
    resp = web.get("/alerts/recruiting/rss")
    assert resp.status_code == 200 and resp.headers["content-type"].startswith("application/rss+xml")
    channel = ET.fromstring(resp.text).find("channel")
    assert channel is not None
    items = channel.findall("item")
    kinds: dict[str, set[str]] = {"new": set(), "changed": set(), "gone": set()}
    for item in items:
        link = item.findtext("link") or ""
        kinds[item.findtext("category") or ""].add(link.rsplit("/", 1)[-1])
        assert link.startswith("http://testserver/study/NCT")
    assert kinds["new"] == world["after"] - world["before"]
    assert kinds["gone"] == world["before"] - world["after"]
    assert kinds["changed"] == world["changed"]
    described = {i.findtext("link", "").rsplit("/", 1)[-1]: i.findtext("description") for i in items}
    assert described["NCT06470217"] == "No longer matches; Status: Active, not recruiting"
    assert described["NCT06470256"].startswith("1 site added: Lyon Sud Hospital (Lyon, France)")
    assert web.get("/alerts/nope/rss").status_code == 404


def test_version_carries_the_source_timestamp(world, web):
    assert web.get("/api/v2/version").json()["dataTimestamp"] == world["data_timestamp"]


def test_history_api_is_documented_and_answers(web):
    body = web.get("/api/v2/studies/NCT06470217/history").json()
    assert body["versions"][-1]["changes"]
    assert web.get("/api/v2/studies/NCT09999999/history").status_code == 404
    spec = web.get("/openapi.json").json()
    assert "/api/v2/studies/{nctId}/history" in spec["paths"]


def test_study_page_shows_history_and_freshness(world, web):
    html = web.get("/study/NCT06470217").text
    assert "History of changes" in html
    assert "Status: Recruiting → Active, not recruiting" in html
    assert f"Last updated at the registry: {world['day']['day']}" in html and "synced: " in html
    assert 'class="badge stale"' not in html
    absent = web.get("/study/NCT06470100").text  # withdrawn at the source, kept here
    assert "No longer listed at the registry" not in absent  # only reconcile flags it


def test_stale_badge_after_48_hours(world, tmp_path):
    import shutil

    db = tmp_path / "stale.sqlite"
    shutil.copy(world["db"], db)
    with open_store(db) as store:
        last = orjson.loads(store.meta("last_sync") or "{}")
        store.set_meta("last_sync", orjson.dumps({**last, "finishedAt": "2020-01-01T00:00:00Z"}).decode())
        store.set_absent(["NCT06470100"], "2024-06-29")
    app = create_app(Settings(db=str(db), auto_load_sample=False, warm_up=False))
    with TestClient(app) as client:
        html = client.get("/study/NCT06470100").text
    assert 'class="badge stale"' in html and "more than 48 h" in html
    assert "No longer listed at the registry (noticed 2024-06-29)" in html


def test_save_this_search_from_the_results_page(world, tmp_path):
    import shutil

    db = tmp_path / "save.sqlite"
    shutil.copy(world["db"], db)
    app = create_app(Settings(db=str(db), auto_load_sample=False, warm_up=False))
    with TestClient(app) as client:
        page = client.get("/search?cond=carcinoma&recruiting=1").text
        assert 'action="/alerts"' in page and "Save this search" in page
        resp = client.post("/alerts", content="alert_name=crc&cond=carcinoma&recruiting=1",
                           headers={"content-type": "application/x-www-form-urlencoded"}, follow_redirects=False)
        assert resp.status_code == 303 and resp.headers["location"] == "/alerts/crc"
        assert "query.cond=carcinoma" in client.get("/alerts/crc").text
        again = client.post("/alerts", content="alert_name=crc&cond=other",
                            headers={"content-type": "application/x-www-form-urlencoded"})
        assert again.status_code == 400 and "already exists" in again.text
        bad = client.post("/alerts", content="alert_name=x&phase=PHASE2",
                          headers={"content-type": "application/x-www-form-urlencoded"})
        assert bad.status_code == 400 and "phase" in bad.text
    with open_store(db) as store:
        doc = store.alert("crc")
    assert doc is not None and doc["query"] == "query.cond=carcinoma&filter.overallStatus=RECRUITING"


# ------------------------------------------------------------------------------- delivery receivers


class _Hook(BaseHTTPRequestHandler):
    received: list[bytes] = []

    def do_POST(self) -> None:  # noqa: N802 - http.server's naming
        self.received.append(self.rfile.read(int(self.headers["Content-Length"])))
        self.send_response(204)
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


class _Smtp:
    """A minimal SMTP receiver on loopback (enough of RFC 5321 for smtplib)."""

    def __init__(self) -> None:
        self.messages: list[bytes] = []
        self.loop = asyncio.new_event_loop()
        ready = threading.Event()
        self.port = 0

        async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            writer.write(b"220 localhost ESMTP\r\n")
            while line := await reader.readline():
                cmd = line.strip().upper()
                if cmd.startswith((b"EHLO", b"HELO")):
                    writer.write(b"250 localhost\r\n")
                elif cmd == b"DATA":
                    writer.write(b"354 go ahead\r\n")
                    await writer.drain()
                    data = b""
                    while (part := await reader.readline()) not in (b".\r\n", b""):
                        data += part
                    self.messages.append(data)
                    writer.write(b"250 queued\r\n")
                elif cmd == b"QUIT":
                    writer.write(b"221 bye\r\n")
                    await writer.drain()
                    break
                else:
                    writer.write(b"250 ok\r\n")
                await writer.drain()
            writer.close()

        async def start() -> None:
            server = await asyncio.start_server(handle, "127.0.0.1", 0)
            self.port = server.sockets[0].getsockname()[1]
            ready.set()

        threading.Thread(target=lambda: (self.loop.run_until_complete(start()), self.loop.run_forever()),
                         daemon=True).start()
        ready.wait(5)

    def stop(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)


def test_webhook_and_email_delivery_after_a_sync(tmp_path, monkeypatch, capsys):
    hook = ThreadingHTTPServer(("127.0.0.1", 0), _Hook)
    threading.Thread(target=hook.serve_forever, daemon=True).start()
    smtp = _Smtp()
    monkeypatch.setenv("TRIALFINDER_SMTP_HOST", "127.0.0.1")
    monkeypatch.setenv("TRIALFINDER_SMTP_PORT", str(smtp.port))
    db = tmp_path / "d.sqlite"
    try:
        with StandinAPI(StandinRegistry(seed_records(), max_page_size=4)) as api:
            args = ["sync", "--api", api.base_url, "--db", str(db), "--rate", "0"]
            assert main(args) == 0
            hook_url = f"http://127.0.0.1:{hook.server_address[1]}/hook"
            assert main(["alerts", "add", "r", "--query", QUERY, "--webhook", hook_url,
                         "--email", "coordinator@example.org", "--db", str(db)]) == 0
            apply_day_of_changes(api.registry)
            capsys.readouterr()
            assert main(args) == 0
            err = capsys.readouterr().err
    finally:
        hook.shutdown()
        smtp.stop()
    assert "alert r: 1 new, 2 changed, 1 gone; webhook ok; email ok" in err
    assert len(_Hook.received) == 1
    payload = orjson.loads(_Hook.received[0])
    assert payload["name"] == "r" and payload["gone"] == ["NCT06470217"]
    assert len(smtp.messages) == 1 and b"NCT06470217" in smtp.messages[0]
    assert b"Subject: trialfinder: 4 updates for r" in smtp.messages[0]
