"""Several stateless web nodes on one PostgreSQL: a write is searchable on every node, then load on all.

    python benchmarks/nodes_bench.py CORPUS [--nodes 2] [--workers 2] [--clients 32] [--seconds 60]
                                     [--queries FILE] [--json OUT]

What it does, the way an operator would (every step is a ``trialfinder`` command in its own process):

1. starts a throwaway PostgreSQL 15 cluster in a temporary directory on loopback (``initdb`` and
   ``pg_ctl``, as the ``postgres`` user when run as root), or uses ``--db URL``;
2. ingests CORPUS into it (``trialfinder ingest --db URL``), timed;
3. starts ``--nodes`` servers (``trialfinder serve --db URL --workers W --index-dir DIR_i``), each with
   its own, initially empty, index directory: a node builds its text index from the database when it
   starts, so nothing on a node's disk is needed that it cannot rebuild; timed until every node answers;
4. writes one new study through the command line and measures how long until every node finds it by
   a word only that study has (the issue's bound is 15 s);
5. runs ``benchmarks/load.py --url NODE1,NODE2,...`` (clients spread round-robin over the nodes).

Why a script and not a test: it loads the machine for minutes. The test suite covers the same behaviour
on small data (``tests/test_postgres_serve.py``).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

PG_BIN = Path("/usr/lib/postgresql/15/bin")
HERE = Path(__file__).resolve().parent
BIN = Path(sys.executable).parent / "trialfinder"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Cluster:
    """A PostgreSQL cluster of this run only (durability off: a benchmark, not a store of record)."""

    def __init__(self, shared_buffers: str) -> None:
        self.base = Path(tempfile.mkdtemp(prefix="tf-nodes-pg-"))
        self.data = self.base / "data"
        self.port = free_port()
        self.as_postgres = os.geteuid() == 0
        if self.as_postgres:
            import pwd

            pw = pwd.getpwnam("postgres")
            os.chown(self.base, pw.pw_uid, pw.pw_gid)
        self._run([str(PG_BIN / "initdb"), "-D", str(self.data), "-A", "trust", "-U", "postgres", "--no-sync",
                   "-E", "UTF8", "--locale=C.UTF-8"])
        opts = (f"-c listen_addresses=127.0.0.1 -p {self.port} -k {self.base} -c fsync=off "
                f"-c synchronous_commit=off -c full_page_writes=off -c max_connections=300 "
                f"-c shared_buffers={shared_buffers} -c max_wal_size=8GB")
        self._run([str(PG_BIN / "pg_ctl"), "-D", str(self.data), "-l", str(self.base / "log"), "-w", "-t", "60",
                   "-o", opts, "start"])
        self.url = f"postgresql://postgres@127.0.0.1:{self.port}/postgres"

    def _run(self, cmd: list[str]) -> None:
        if self.as_postgres:
            cmd = ["runuser", "-u", "postgres", "--", *cmd]
        subprocess.run(cmd, check=True, capture_output=True, text=True, timeout=120, cwd=self.base)

    def close(self) -> None:
        try:
            self._run([str(PG_BIN / "pg_ctl"), "-D", str(self.data), "-m", "immediate", "-w", "stop"])
        finally:
            shutil.rmtree(self.base, ignore_errors=True)


def get(url: str, timeout: float = 5.0) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as r:
            return r.status, r.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()
    except OSError:
        return 0, b""


def total(base: str, term: str) -> int:
    status, body = get(f"{base}/api/v2/studies?query.term={term}&countTotal=true&pageSize=1")
    return int(json.loads(body).get("totalCount", 0)) if status == 200 else -1


def marker_study(word: str) -> dict:
    """A minimal valid API v2 study whose title holds ``word`` (a word no generated study has)."""
    return {"protocolSection": {
        "identificationModule": {"nctId": "NCT89999999", "briefTitle": f"Study of {word} in volunteers"},
        "statusModule": {"overallStatus": "RECRUITING", "lastUpdatePostDateStruct": {"date": "2026-12-01"}},
        "conditionsModule": {"conditions": ["Healthy"]},
        "designModule": {"studyType": "INTERVENTIONAL"}}}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("corpus", help="studies to ingest first (file, directory or archive)")
    ap.add_argument("--db", help="an existing PostgreSQL database URL (default: a throwaway cluster)")
    ap.add_argument("--nodes", type=int, default=2)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--clients", type=int, default=32)
    ap.add_argument("--seconds", type=float, default=60)
    ap.add_argument("--queries", help="distinct-query mode of load.py (JSON lines of API parameters)")
    ap.add_argument("--shared-buffers", default="1GB")
    ap.add_argument("--json", help="write the summary here")
    args = ap.parse_args()

    cluster = None if args.db else Cluster(args.shared_buffers)
    url = args.db or (cluster.url if cluster else "")
    work = Path(tempfile.mkdtemp(prefix="tf-nodes-"))
    nodes: list[subprocess.Popen] = []
    summary: dict = {"nodes": args.nodes, "workers": args.workers, "clients": args.clients}
    try:
        t = time.perf_counter()
        subprocess.run([str(BIN), "ingest", args.corpus, "--db", url], check=True)
        summary["ingest_s"] = round(time.perf_counter() - t, 1)
        bases = []
        t = time.perf_counter()
        for i in range(args.nodes):
            port = free_port()
            log = open(work / f"node{i}.log", "w")  # noqa: SIM115 - closed with the process
            nodes.append(subprocess.Popen(
                [str(BIN), "serve", "--db", url, "--host", "127.0.0.1", "--port", str(port), "--workers",
                 str(args.workers), "--no-sample", "--index-dir", str(work / f"index{i}")],
                stdout=log, stderr=subprocess.STDOUT))
            bases.append(f"http://127.0.0.1:{port}")
        deadline = time.monotonic() + 3600
        while time.monotonic() < deadline and not all(total(b, "cancer") > 0 for b in bases):
            time.sleep(2)
        summary["nodes_ready_s"] = round(time.perf_counter() - t, 1)
        print(f"{args.nodes} nodes ready in {summary['nodes_ready_s']} s: {', '.join(bases)}", flush=True)

        word = "zyxquokkabench"
        doc = work / "marker.json"
        doc.write_text(json.dumps(marker_study(word)))
        t = time.perf_counter()
        subprocess.run([str(BIN), "ingest", str(doc), "--db", url], check=True, capture_output=True)
        seen: dict[str, float] = {}
        while len(seen) < len(bases) and time.perf_counter() - t < 120:
            for b in bases:
                if b not in seen and total(b, word) == 1:
                    seen[b] = round(time.perf_counter() - t, 2)
            time.sleep(0.25)
        summary["write_visible_s"] = seen
        print(f"a study written by `trialfinder ingest` was found on the nodes after {seen} s", flush=True)

        out = work / "load.json"
        cmd = [sys.executable, str(HERE / "load.py"), "--url", ",".join(bases), "--clients", str(args.clients),
               "--seconds", str(args.seconds), "--json", str(out)]
        if args.queries:
            cmd += ["--queries", args.queries]
        subprocess.run(cmd, check=False)
        if out.exists():
            summary["load"] = json.loads(out.read_text())
    finally:
        for p in nodes:
            p.terminate()
        for p in nodes:
            try:
                p.wait(30)
            except subprocess.TimeoutExpired:
                p.kill()
        if cluster is not None:
            cluster.close()
        shutil.rmtree(work, ignore_errors=True)
    text = json.dumps(summary, indent=2)
    print(text)
    if args.json:
        Path(args.json).write_text(text + "\n")


if __name__ == "__main__":
    main()
