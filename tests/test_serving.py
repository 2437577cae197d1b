"""Operator-facing hardening: where the sample may go, the loading page, Host, caching, header limits.

Real parts only: SQLite files, a real ``trialfinder ingest`` process racing ``serve``'s preparation, and
a real uvicorn server on loopback for the request-head limit.
"""

from __future__ import annotations

import importlib
import json
import select
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from live_server import live_server

from trialfinder.ingest import ingest, sample_path
from trialfinder.store import open_store
from trialfinder.web import Settings, create_app
from trialfinder.web.db import prepare_database
from trialfinder.web.server import uvicorn_options

DATA = Path(__file__).parent / "data"
SAMPLE_ONLY = "NCT09999990"  # a study only the stand-in "sample" has
REAL_SAMPLE = sample_path()


@pytest.fixture()
def tiny_sample(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The bundled sample replaced by one study no real input has."""
    rec = json.loads((DATA / "NCT05631717.json").read_text(encoding="utf-8"))
    rec["protocolSection"]["identificationModule"]["nctId"] = SAMPLE_ONLY
    path = tmp_path / "sample" / f"{SAMPLE_ONLY}.json"
    path.parent.mkdir()
    path.write_text(json.dumps(rec), encoding="utf-8")
    monkeypatch.setattr(importlib.import_module("trialfinder.ingest"), "sample_path", lambda: path)
    return path


def _ids(db: Path) -> set[str]:
    with open_store(db) as store:
        return {r["protocolSection"]["identificationModule"]["nctId"] for r in store.iter_records()}


def test_sample_goes_only_into_a_database_serve_created(tiny_sample: Path, tmp_path: Path) -> None:
    new = tmp_path / "new.sqlite"
    prepare_database(str(new))
    assert _ids(new) == {SAMPLE_ONLY}
    # an existing empty database (made by something else) is left empty
    other = tmp_path / "other.sqlite"
    with open_store(other):
        pass
    prepare_database(str(other))
    assert _ids(other) == set()
    # a database serve created but that has seen an ingest since never gets the sample
    fresh = tmp_path / "fresh.sqlite"
    prepare_database(str(fresh), load_sample=False)
    with open_store(fresh) as store:
        ingest(store, [DATA / "NCT05631717.json"])
    prepare_database(str(fresh))
    assert _ids(fresh) == {"NCT05631717"}


def test_a_start_killed_while_loading_the_sample_resumes(tiny_sample: Path, tmp_path: Path) -> None:
    db = tmp_path / "killed.sqlite"
    prepare_database(str(db), load_sample=False)  # created by serve, sample not loaded yet
    prepare_database(str(db))
    assert _ids(db) == {SAMPLE_ONLY}


def test_serve_started_during_a_first_ingest_leaves_it_alone(tiny_sample: Path, tmp_path: Path) -> None:
    """A real first ingest (the whole bundled sample, in another process) and serve's start race."""
    db = tmp_path / "mirror.sqlite"
    source = str(REAL_SAMPLE)
    proc = subprocess.Popen([sys.executable, "-m", "trialfinder", "ingest", "--db", str(db), source],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 60
        while not db.exists():  # serve starts the moment the ingest has created the file
            assert time.monotonic() < deadline and proc.poll() is None
            time.sleep(0.005)
        prepare_database(str(db))
        assert proc.wait(timeout=300) == 0, proc.stderr.read().decode()[-2000:] if proc.stderr else ""
    finally:
        if proc.poll() is None:
            proc.kill()
    ids = _ids(db)
    assert len(ids) > 1800 and SAMPLE_ONLY not in ids
    with open_store(db) as store:
        assert store.meta("ingest_started") and store.meta("created_by") is None


def test_loading_page_while_the_database_is_prepared(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    release = threading.Event()
    db_mod = importlib.import_module("trialfinder.web.db")
    real = db_mod.prepare_database

    def slow(db: str | None, *, load_sample: bool = True, progress: object = None) -> str:
        release.wait(30)
        return real(db, load_sample=False)

    monkeypatch.setattr(db_mod, "prepare_database", slow)
    app = create_app(Settings(db=str(tmp_path / "l.sqlite"), prepare_in_background=True, warm_up=False))
    with TestClient(app) as c:
        r = c.get("/search?cond=lupus")
        assert r.status_code == 503 and r.headers["retry-after"]
        assert '<meta http-equiv="refresh"' in r.text and "Loading the bundled sample" in r.text
        assert r.headers["cache-control"] == "no-store"
        assert c.get("/api/v2/version").status_code == 503
        assert c.get("/healthz").status_code == 503
        assert c.get("/static/app.css").status_code == 200
        release.set()
        assert app.state.readiness.ready.wait(30)
        assert c.get("/healthz").status_code == 200
        assert c.get("/").status_code == 200


@pytest.fixture(scope="module")
def guarded(sample_db_master: Path):
    settings = Settings(db=str(sample_db_master), auto_load_sample=False, warm_up=False,
                        base_url="https://trials.example.org", allowed_hosts="localhost,*.example.net")
    with TestClient(create_app(settings), base_url="http://localhost") as c:
        yield c


def test_unknown_hosts_are_refused_and_never_reflected(guarded: TestClient) -> None:
    r = guarded.get("/", headers={"host": "evil.example.com"})
    assert r.status_code == 400 and "evil" not in r.text and r.headers["cache-control"] == "no-store"
    assert guarded.get("/", headers={"host": "localhost:8000"}).status_code == 200
    assert guarded.get("/", headers={"host": "www.example.net"}).status_code == 200
    assert guarded.get("/", headers={"host": "trials.example.org"}).status_code == 200  # the base URL's


def test_absolute_links_use_the_base_url(guarded: TestClient, sample_db_master: Path) -> None:
    rss = guarded.get("/search.rss", params={"cond": "lupus"}, headers={"host": "www.example.net"}).text
    assert "<link>https://trials.example.org/study/NCT" in rss and "example.net" not in rss
    # without a base URL: the address the server listens on, still never the Host header
    app = create_app(Settings(db=str(sample_db_master), auto_load_sample=False, warm_up=False))
    with TestClient(app) as c:
        rss = c.get("/search.rss", params={"cond": "lupus"}, headers={"host": "evil.example.com"}).text
    assert "evil" not in rss and "<link>http://testserver/study/NCT" in rss


def test_responses_with_patient_input_are_no_store(guarded: TestClient) -> None:
    assert guarded.get("/").headers["cache-control"] == "no-cache"
    assert guarded.get("/static/app.css").headers["cache-control"].startswith("public")
    for r in (guarded.get("/search", params={"cond": "lupus", "near": "Boston"}),
              guarded.get("/search", params={"cond": "lupus", "advanced": "(lupus"}),  # a 400 repeating it
              guarded.get("/api/v2/studies", params={"query.cond": "lupus", "pageSize": "x"}),
              guarded.get("/study/not-a-study"),
              guarded.post("/api/match", json={"patient": "45-year-old woman with lupus nephritis"})):
        assert r.headers["cache-control"] == "no-store", (r.request.url, r.status_code)
    assert guarded.get("/search", params={"cond": "lupus", "advanced": "(lupus"}).status_code == 400


def test_oversized_request_heads_get_431_from_a_real_server(sample_db_master: Path) -> None:
    settings = Settings(db=str(sample_db_master), auto_load_sample=False, warm_up=False)
    with live_server(create_app(settings), start_timeout=30, log_level="error",
                     **uvicorn_options(settings)) as (_url, port):

        def exchange(request: bytes) -> bytes:
            """Send like a client that stops once the server has answered (as browsers and curl do)."""
            with socket.create_connection(("127.0.0.1", port), timeout=10) as conn:
                for i in range(0, len(request), 8192):
                    if select.select([conn], [], [], 0)[0]:
                        break
                    try:
                        conn.sendall(request[i:i + 8192])
                    except (BrokenPipeError, ConnectionResetError):
                        break
                chunks: list[bytes] = []
                try:
                    while chunk := conn.recv(65536):
                        chunks.append(chunk)
                except ConnectionResetError:
                    pass  # closed with the rest of our megabyte unread: the answer came first
                return b"".join(chunks)

        big_header = b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Big: " + b"a" * (1 << 20) + b"\r\n\r\n"
        assert exchange(big_header).startswith(b"HTTP/1.1 431 ")
        long_line = b"GET /?" + b"q=" + b"a" * (1 << 20) + b" HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"
        assert exchange(long_line).startswith(b"HTTP/1.1 431 ")
        ok = exchange(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
        assert ok.startswith(b"HTTP/1.1 200 ")
