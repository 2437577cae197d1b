"""A real ``trialfinder serve`` on PostgreSQL: a write by another process (another node) is searchable
without a restart, PostgreSQL stopped under the server gives 503s in the API's error shape within 5 s,
and the server recovers by itself within 15 s of PostgreSQL's return.

This test stops and starts its server, so it uses a cluster of its own, not the session's.
"""

from __future__ import annotations

import copy
import os
import subprocess
import sys
import time
import urllib.error
import urllib.request
import zipfile
from pathlib import Path

import orjson
import pytest
from conftest import PG_BIN, PgCluster
from live_server import free_port


def _get(url: str, timeout: float = 10.0) -> tuple[int, str, str, float]:
    started = time.monotonic()
    try:
        with urllib.request.urlopen(url, timeout=timeout) as r:
            return r.status, r.headers.get("content-type", ""), r.read().decode(), time.monotonic() - started
    except urllib.error.HTTPError as exc:
        return exc.code, exc.headers.get("content-type", ""), exc.read().decode(), time.monotonic() - started


@pytest.fixture()
def own_cluster(pg_cluster: PgCluster) -> PgCluster:  # pg_cluster: the same skip when impossible
    assert (PG_BIN / "pg_ctl").exists()
    cluster = PgCluster()
    yield cluster
    cluster.close()


def test_serve_follows_other_writers_and_survives_postgresql_restart(own_cluster: PgCluster, tmp_path: Path) -> None:
    db = own_cluster.url(own_cluster.create_db())
    port = free_port()
    env = {**os.environ, "TRIALFINDER_INDEX_DIR": str(tmp_path / "node1-index"), "TRIALFINDER_WEB_FOLLOW_S": "1"}
    cli = [sys.executable, "-m", "trialfinder.cli"]
    # serve never loads the bundled sample into a PostgreSQL database (a shared server is a real mirror)
    subprocess.run([*cli, "ingest", "--sample", "--db", db], env=env, check=True, capture_output=True, timeout=300)
    server = subprocess.Popen([*cli, "serve", "--db", db, "--port", str(port), "--log-level", "warning"], env=env,
                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 180  # the server brings its index up to date first
        while True:
            try:
                if _get(base + "/api/v2/version", timeout=2)[0] == 200:
                    break
            except OSError:
                pass
            assert server.poll() is None, server.stderr.read().decode()[-2000:] if server.stderr else ""
            assert time.monotonic() < deadline, "server did not start"
            time.sleep(0.5)
        status, _ctype, body, _ = _get(base + "/api/v2/studies?query.cond=lupus&countTotal=true")
        assert status == 200 and orjson.loads(body)["totalCount"] > 0

        # another node (its own index directory) writes a new study: searchable here within 15 s
        with zipfile.ZipFile(Path(__file__).parent.parent / "src/trialfinder/data/sample.zip") as zf:
            name = next(n for n in sorted(zf.namelist()) if n.endswith(".json"))
            rec = orjson.loads(zf.read(name))
        rec = copy.deepcopy(rec)
        rec["protocolSection"]["identificationModule"]["nctId"] = "NCT99999901"
        rec["protocolSection"]["identificationModule"]["briefTitle"] = "Zyxwvutronic therapy for quokka fever"
        path = tmp_path / "NCT99999901.json"
        path.write_bytes(orjson.dumps(rec))
        other = {**os.environ, "TRIALFINDER_INDEX_DIR": str(tmp_path / "node2-index")}
        subprocess.run([*cli, "ingest", str(path), "--db", db], env=other, check=True, capture_output=True)
        written = time.monotonic()
        while True:
            status, _c, body, _ = _get(base + "/api/v2/studies?query.term=zyxwvutronic&countTotal=true")
            if status == 200 and orjson.loads(body).get("totalCount") == 1:
                break
            assert time.monotonic() - written < 15, (status, body[:300])
            time.sleep(0.25)

        # PostgreSQL goes away: 503 in the API's error shape, each within 5 s
        own_cluster.stop("fast")
        for i in range(4):
            status, ctype, body, took = _get(base + f"/api/v2/studies?query.cond=cancer{i}&countTotal=true")
            assert status == 503 and ctype.startswith("text/plain") and "unavailable" in body, (status, body[:300])
            assert took < 5, took
        status, ctype, body, took = _get(base + "/study/NCT05631717")
        assert status == 503 and "text/html" in ctype and "unavailable" in body and took < 5

        # ... and back: the server recovers by itself within 15 s
        own_cluster.start()
        back = time.monotonic()
        while True:
            status, _c, body, _ = _get(base + "/api/v2/studies?query.cond=lupus&countTotal=true")
            if status == 200:
                break
            assert status == 503, (status, body[:300])
            assert time.monotonic() - back < 15, "no recovery within 15 s"
            time.sleep(0.25)
        assert orjson.loads(body)["totalCount"] > 0
        assert _get(base + "/study/NCT99999901")[0] == 200
    finally:
        server.terminate()
        try:
            server.wait(timeout=15)
        except subprocess.TimeoutExpired:
            server.kill()
