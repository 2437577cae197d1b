"""Hostile record text never becomes markup or script; start-up fills an empty database; serve command."""

from __future__ import annotations

import argparse
import copy
import importlib
import json
import re
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from trialfinder.ingest import ingest
from trialfinder.store import open_store
from trialfinder.web import Settings, create_app
from trialfinder.web.db import prepare_database
from trialfinder.web.render import markdown_html, markdown_inline

DATA = Path(__file__).parent / "data"
EVIL = "<script>alert(1)</script>"


@pytest.fixture(scope="module")
def evil_db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    rec = json.loads((DATA / "NCT05631717.json").read_text(encoding="utf-8"))
    rec = copy.deepcopy(rec)
    ps = rec["protocolSection"]
    ps["identificationModule"]["nctId"] = "NCT09999991"
    ps["identificationModule"]["briefTitle"] = f"{EVIL} Lupus trial"
    ps["descriptionModule"]["briefSummary"] = (
        "[click me](javascript:alert(1)) <img src=x onerror=alert(1)> **bold** <a href='x' onclick='y'>a</a>")
    ps["conditionsModule"]["conditions"] = ["</script><script>alert(2)</script>", "Lupus Nephritis"]
    ps["eligibilityModule"]["eligibilityCriteria"] = (
        "Inclusion Criteria:\n\n* <iframe src=//evil></iframe> adults\n* [x](javascript:alert(3))\n\n"
        "Exclusion Criteria:\n\n* <svg onload=alert(4)>")
    ps["contactsLocationsModule"]["locations"] = [{
        "facility": "</script><script>alert(5)</script>", "city": "Nanjing", "country": "China",
        "status": "RECRUITING", "geoPoint": {"lat": 32.06, "lon": 118.78}}]
    path = tmp_path_factory.mktemp("evil")
    (path / "evil.json").write_text(json.dumps(rec), encoding="utf-8")
    db = path / "evil.sqlite"
    with open_store(db) as store:
        result = ingest(store, [path / "evil.json"])
    assert result.counts.added == 1, [str(r) for r in result.rejections]
    return db


@pytest.fixture(scope="module")
def client(evil_db: Path):
    with TestClient(create_app(Settings(db=str(evil_db), auto_load_sample=False, warm_up=False))) as c:
        yield c


def _assert_inert(html: str) -> None:
    scripts = re.findall(r"<script\b([^>]*)>(.*?)</script>", html, flags=re.S | re.I)
    for attrs, body in scripts:
        if 'type="application/json"' in attrs:
            assert "<" not in body and ">" not in body, body  # data only: it cannot close its element
        else:
            assert not body.strip() and 'src="/static/' in attrs, attrs  # only our own script files
    assert not re.search(r"<(iframe|img|svg|object|embed)\b", html, flags=re.I)
    assert not re.search(r"<[a-z][^>]*\son[a-z]+\s*=", html, flags=re.I)  # no event handler attributes
    assert not re.search(r"href\s*=\s*[\"']?\s*javascript:", html, flags=re.I)


def test_study_page_escapes_everything(client: TestClient) -> None:
    r = client.get("/study/NCT09999991")
    assert r.status_code == 200
    html = r.text
    _assert_inert(html)
    assert "&lt;script&gt;alert(1)&lt;/script&gt; Lupus trial" in html
    assert "<strong>bold</strong>" in html  # markdown still renders
    assert "\\u003c/script\\u003e" in html  # site names inside the map's JSON block cannot close it


def test_results_and_exports_escape_everything(client: TestClient) -> None:
    html = client.get("/search", params={"cond": "lupus", "near": "Nanjing", "dist": "50km"}).text
    assert "NCT09999991" in html
    _assert_inert(html)
    rss = client.get("/search.rss", params={"cond": "lupus"}).text
    assert "<script>" not in rss and "&lt;script&gt;" in rss
    conditions = client.get("/conditions?letter=L").text
    _assert_inert(conditions)


def test_sanitiser_units() -> None:
    assert str(markdown_html("<b>x</b>")) == "<p>&lt;b&gt;x&lt;/b&gt;</p>\n"
    assert "href" not in str(markdown_html("[a](javascript:alert(1))"))
    assert 'rel="nofollow noopener noreferrer"' in str(markdown_html("[a](https://example.org)"))
    assert str(markdown_inline("a *b*")) == "a <em>b</em>"
    assert "<h3>" in str(markdown_html("# Heading"))  # record headings never outrank the page's


def test_empty_database_loads_the_sample(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    ingest_mod = importlib.import_module("trialfinder.ingest")

    monkeypatch.setattr(ingest_mod, "sample_path", lambda: DATA / "NCT05631717.json")
    db = tmp_path / "new.sqlite"
    with TestClient(create_app(Settings(db=str(db), warm_up=False))) as c:
        assert c.get("/healthz").json()["studies"] == 1
        assert c.get("/study/NCT05631717").status_code == 200
    empty = tmp_path / "empty.sqlite"
    assert prepare_database(str(empty), load_sample=False) == str(empty)
    with open_store(empty) as store:
        assert store.count() == 0


def test_serve_command(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import uvicorn

    ingest_mod = importlib.import_module("trialfinder.ingest")
    from trialfinder.cli import build_parser

    monkeypatch.setattr(ingest_mod, "sample_path", lambda: DATA / "NCT05631717.json")
    calls: list[tuple] = []
    monkeypatch.setattr(uvicorn, "run", lambda app, **kw: calls.append((app, kw)))
    db = tmp_path / "serve.sqlite"
    # several workers: the database is prepared (the sample loaded) before uvicorn starts them
    args = build_parser().parse_args(["serve", "--db", str(db), "--workers", "2", "--port", "8123"])
    assert args.func(args) == 0
    target, kw = calls[0]
    assert target == "trialfinder.web.app:app_from_env" and kw["factory"] and kw["workers"] == 2
    assert kw["host"] == "127.0.0.1" and kw["port"] == 8123
    with open_store(db) as store:
        assert store.count() == 1  # loaded before the server started
    # one worker: the app prepares the database itself, behind a "loading" page
    args = build_parser().parse_args(["serve", "--db", str(db)])
    assert args.func(args) == 0
    app, kw = calls[1]
    assert app.state.settings.db == str(db) and app.state.settings.prepare_in_background
    assert kw["http"] == "trialfinder.web.server:LimitedH11Protocol" and kw["h11_max_incomplete_event_size"] > 0
    assert app.state.settings.allowed_hosts.split(",")[:3] == ["localhost", "127.0.0.1", "::1"]


def test_settings_round_trip_through_environment() -> None:
    s = Settings(db="/x/y.sqlite", auto_load_sample=False, html_page_size=50, request_budget_s=2.5)
    assert Settings.from_env(s.to_env()) == s
    assert Settings.from_env({"TRIALFINDER_DB": "/z.sqlite"}).db == "/z.sqlite"


def test_serve_rejects_bad_port() -> None:
    from trialfinder.cli.serve_cmd import cmd_serve
    from trialfinder.cli.subcommand import CLIError

    with pytest.raises(CLIError):
        cmd_serve(argparse.Namespace(port=0, workers=1, db=None, no_sample=False, host="127.0.0.1",
                                     log_level="info"))


def test_work_per_request_is_capped(sample_db_master: Path) -> None:
    """A request whose database work runs past its time budget is interrupted: 503 with Retry-After, never
    a hung worker. (Text search runs in the index, so the database work here is reading 1,000 records.)"""
    app = create_app(Settings(db=str(sample_db_master), auto_load_sample=False, warm_up=False,
                              request_budget_s=0.0))
    with TestClient(app) as c:
        r = c.get("/api/v2/studies", params={"query.term": "cancer", "countTotal": "true", "pageSize": "1000"})
        assert r.status_code == 503 and r.headers["retry-after"]
        assert r.headers["content-type"].startswith("text/plain")
        assert c.get("/conditions").status_code == 503
        # the connection survives the interruption: with a budget again, the same pool serves the request
        app.state.pool.budget_s = 10.0
        assert c.get("/api/v2/studies", params={"query.term": "lupus"}).status_code == 200
