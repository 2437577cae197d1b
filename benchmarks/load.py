"""Load benchmark of the web server: N concurrent clients for T seconds over a mixed request set.

    python benchmarks/load.py                       # bundled sample, 32 clients, 60 s, 2 workers
    python benchmarks/load.py --db /tmp/bench600k.sqlite --clients 32 --seconds 60 --workers 2
    python benchmarks/load.py --url http://127.0.0.1:8000   # an already running server

The server is started as it is in production (``trialfinder serve`` on loopback, on a free port) in its
own process; the clients run in this process on asyncio with a minimal keep-alive HTTP/1.1 client, so
the load generator costs as little CPU as possible on the same machine. The mix:

* 70% search API calls, ``GET /api/v2/studies`` with the published search query mix
  (``benchmarks/queries/search-mix.jsonl``: conditions and interventions, half with filters, a quarter
  with a radius, all with ``countTotal``), full records, default page size;
* 10% single-study API calls, ``GET /api/v2/studies/{nctId}``;
* 10% result pages (``/search?cond=...``, HTML with facets) and 10% study pages (``/study/NCT...``).

Distinct-query mode (``--queries FILE``, JSON lines of API parameters as written by
``benchmarks/search_bench.py --write-queries``): the search API calls are those queries and the result
pages their texts, each request sent **once** (cold: no cache can help), until all are done or the time
is up. ``--latency`` is the single-client form of it (``--clients 1``), and also times a bare tantivy
index of the same corpus (``benchmarks/bare_tantivy.py``, in ``<db>.bare``) on the same texts in the same
run, so the ratio holds whatever the machine's load. The server's peak RSS (all its processes) is
sampled throughout.

    python benchmarks/search_bench.py --db /tmp/bench600k.sqlite --distinct 5000 --write-queries /tmp/q.jsonl
    python benchmarks/load.py --db /tmp/bench600k.sqlite --queries /tmp/q.jsonl --latency
    python benchmarks/load.py --db /tmp/bench600k.sqlite --queries /tmp/q.jsonl --clients 32 --workers 2

Reported: requests, errors (any non-200, timeout or connection error), throughput, and latency
percentiles per kind. Target on a 2-core machine: no errors and p95 <= 100 ms for search API calls.
The exit status is 1 when there were errors.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path
from urllib.parse import urlencode, urlsplit

HERE = Path(__file__).resolve().parent
QUERIES = HERE / "queries" / "search-mix.jsonl"
FALLBACK_CONDITIONS = ["lupus nephritis", "breast cancer", "asthma", "diabetes", "depression", "covid-19",
                       "heart failure", "stroke", "obesity", "hypertension", "melanoma", "NSCLC", "LN"]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _get_json(url: str) -> dict:
    with urllib.request.urlopen(url, timeout=30) as r:  # noqa: S310 - loopback only
        return json.loads(r.read())


def distinct_mix(path: Path, with_pages: bool = True) -> list[tuple[str, str]]:
    """Each drawn query once as an API call (with countTotal) and its text once as a result page."""
    mix: list[tuple[str, str]] = []
    seen_texts: set[str] = set()
    for line in path.read_text().splitlines():
        if not line.strip():
            continue
        q = {k: v for k, v in json.loads(line).items() if not k.startswith("_")}
        q.setdefault("countTotal", "true")
        mix.append(("search_api", "/api/v2/studies?" + urlencode(q)))
        text = q.get("query.cond") or q.get("query.term") or q.get("query.intr")
        if with_pages and text and text not in seen_texts:
            seen_texts.add(text)
            mix.append(("search_page", "/search?" + urlencode({"cond": text})))
    return mix


def build_mix(base: str, seed: int) -> list[tuple[str, str]]:
    """(kind, path) requests, shuffled; kinds: search_api, study_api, search_page, study_page."""
    rng = random.Random(seed)
    if QUERIES.exists():
        searches = [json.loads(line) for line in QUERIES.read_text().splitlines() if line.strip()]
    else:
        searches = [{"query.cond": c, "countTotal": "true"} for c in FALLBACK_CONDITIONS]
    ids: list[str] = []
    for cond in ("cancer", "lupus", "diabetes", "pain", "covid"):
        page = _get_json(f"{base}/api/v2/studies?{urlencode({'query.cond': cond, 'pageSize': 50, 'fields': 'NCTId'})}")
        ids += [s["protocolSection"]["identificationModule"]["nctId"] for s in page["studies"]]
    ids = sorted(set(ids)) or ["NCT05631717"]
    conds = [q.get("query.cond") or q.get("query.intr") or "cancer" for q in searches]
    mix: list[tuple[str, str]] = []
    for q in searches:
        mix.append(("search_api", "/api/v2/studies?" + urlencode(q)))
    n = len(searches)
    for _ in range(max(1, n // 7)):
        mix.append(("study_api", f"/api/v2/studies/{rng.choice(ids)}"))
        mix.append(("search_page", "/search?" + urlencode({"cond": rng.choice(conds)})))
        mix.append(("study_page", f"/study/{rng.choice(ids)}"))
    rng.shuffle(mix)
    return mix


class Conn:
    """One keep-alive HTTP/1.1 connection (Content-Length or chunked responses)."""

    def __init__(self, host: str, port: int) -> None:
        self.host, self.port = host, port
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def get(self, path: str) -> tuple[int, int]:
        if self.writer is None:
            self.reader, self.writer = await asyncio.open_connection(self.host, self.port)
        assert self.reader is not None
        self.writer.write(f"GET {path} HTTP/1.1\r\nHost: {self.host}\r\nAccept-Encoding: identity\r\n\r\n".encode())
        await self.writer.drain()
        status_line = await self.reader.readline()
        if not status_line:
            raise ConnectionError("connection closed")
        status = int(status_line.split()[1])
        length, chunked, close = None, False, False
        while True:
            line = await self.reader.readline()
            if line in (b"\r\n", b""):
                break
            name, _, value = line.decode("latin-1").partition(":")
            name = name.strip().lower()
            if name == "content-length":
                length = int(value)
            elif name == "transfer-encoding" and "chunked" in value.lower():
                chunked = True
            elif name == "connection" and "close" in value.lower():
                close = True
        size = 0
        if chunked:
            while True:
                n = int((await self.reader.readline()).split(b";")[0], 16)
                if n == 0:
                    await self.reader.readline()
                    break
                size += len(await self.reader.readexactly(n + 2)) - 2
        elif length is not None:
            size = len(await self.reader.readexactly(length))
        if close:
            await self.close()
        return status, size

    async def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
            try:
                await self.writer.wait_closed()
            except (ConnectionError, OSError):
                pass
        self.reader = self.writer = None


async def run_load(base: str, mix: list[tuple[str, str]], clients: int, seconds: float,
                   timeout: float, once: bool = False) -> dict:
    """``once``: every request of the mix is sent exactly once across all clients (cold mode)."""
    nodes = []
    for one in base.split(","):  # several nodes: clients are spread over them round-robin
        parts = urlsplit(one)
        nodes.append((parts.hostname or "127.0.0.1", parts.port or 80))
    results: dict[str, list[float]] = {}
    errors: list[str] = []
    sizes: list[int] = []
    stop_at = time.perf_counter() + seconds
    shared = {"next": 0}

    async def client(i: int) -> None:
        conn = Conn(*nodes[i % len(nodes)])
        k = i * 7919 % len(mix)
        while time.perf_counter() < stop_at:
            if once:
                if shared["next"] >= len(mix):
                    break
                kind, path = mix[shared["next"]]
                shared["next"] += 1
            else:
                kind, path = mix[k % len(mix)]
                k += 1
            started = time.perf_counter()
            try:
                status, size = await asyncio.wait_for(conn.get(path), timeout)
            except (TimeoutError, ConnectionError, OSError, ValueError, asyncio.IncompleteReadError) as exc:
                errors.append(f"{kind} {path}: {type(exc).__name__} {exc}")
                await conn.close()
                continue
            elapsed = time.perf_counter() - started
            if status != 200:
                errors.append(f"{kind} {path}: HTTP {status}")
            results.setdefault(kind, []).append(elapsed)
            sizes.append(size)
        await conn.close()

    began = time.perf_counter()
    await asyncio.gather(*(client(i) for i in range(clients)))
    wall = time.perf_counter() - began
    return {"results": results, "errors": errors, "wall": wall, "bytes": sum(sizes)}


def _pct(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(p / 100 * (len(ordered) - 1))))]


def report(out: dict, clients: int) -> dict:
    rows = {}
    total = sum(len(v) for v in out["results"].values())
    for kind, times in sorted(out["results"].items()):
        ms = [t * 1000 for t in times]
        rows[kind] = {"requests": len(ms), "per_s": len(ms) / out["wall"], "p50_ms": statistics.median(ms),
                      "p95_ms": _pct(ms, 95), "p99_ms": _pct(ms, 99), "max_ms": max(ms)}
    summary = {"clients": clients, "seconds": round(out["wall"], 1), "requests": total,
               "errors": len(out["errors"]), "throughput_per_s": round(total / out["wall"], 1),
               "mb_per_s": round(out["bytes"] / out["wall"] / 1e6, 2), "kinds": rows}
    print(f"{total:,} requests in {out['wall']:.1f} s with {clients} clients: "
          f"{total / out['wall']:.1f} req/s, {summary['mb_per_s']} MB/s, errors: {len(out['errors'])}")
    print(f"{'kind':<14}{'requests':>10}{'req/s':>9}{'p50 ms':>9}{'p95 ms':>9}{'p99 ms':>9}{'max ms':>9}")
    for kind, r in rows.items():
        print(f"{kind:<14}{r['requests']:>10,}{r['per_s']:>9.1f}{r['p50_ms']:>9.1f}{r['p95_ms']:>9.1f}"
              f"{r['p99_ms']:>9.1f}{r['max_ms']:>9.1f}")
    for err in out["errors"][:10]:
        print("error:", err)
    search = rows.get("search_api")
    if search and clients == 1:
        page = rows.get("search_page")
        ok = search["p50_ms"] <= 5 and search["p95_ms"] <= 25 and not out["errors"]
        print(f"search API p50 {search['p50_ms']:.1f} ms, p95 {search['p95_ms']:.1f} ms: "
              f"{'meets' if ok else 'misses'} the single-client target (p50 <= 5 ms, p95 <= 25 ms)")
        if page:
            print(f"search page p95 {page['p95_ms']:.1f} ms: "
                  f"{'meets' if page['p95_ms'] <= 50 else 'misses'} the target (p95 <= 50 ms)")
    elif search:
        verdict = "meets" if search["p95_ms"] <= 100 and not out["errors"] else "misses"
        print(f"search API p95 {search['p95_ms']:.1f} ms: {verdict} the target (p95 <= 100 ms, no errors)")
    return summary


def _sample_rss(proc: subprocess.Popen, out: dict[str, float]) -> None:
    """Peak memory of the server and its worker processes (Linux /proc), every 0.5 s: the sum of RSS,
    and the sum of PSS, which counts a page shared by several processes (the memory-mapped text index,
    read by every worker) once in all, split between them -- what the processes cost the machine."""
    while proc.poll() is None:
        pids, total, pss = [proc.pid], 0, 0
        while pids:
            pid = pids.pop()
            try:
                with open(f"/proc/{pid}/status") as f:
                    total += next(int(line.split()[1]) for line in f if line.startswith("VmRSS:")) * 1024
                with open(f"/proc/{pid}/smaps_rollup") as f:
                    pss += next((int(line.split()[1]) for line in f if line.startswith("Pss:")), 0) * 1024
                with open(f"/proc/{pid}/task/{pid}/children") as f:
                    pids += [int(c) for c in f.read().split()]
            except (OSError, StopIteration, ValueError):
                continue
        out["peak_mb"] = max(out["peak_mb"], total / 1e6)
        out["peak_pss_mb"] = max(out.get("peak_pss_mb", 0.0), pss / 1e6)
        time.sleep(0.5)


def baseline(queries: Path, directory: Path, api: dict | None) -> dict:
    """The bare tantivy top-10 + count on the same texts, in this process, and the ratios to the API."""
    sys.path.insert(0, str(HERE))
    import bare_tantivy

    if not directory.exists():
        raise SystemExit(f"no baseline index at {directory}: run benchmarks/search_bench.py --db ... first")
    bare = bare_tantivy.Bare(directory)
    ms = []
    for line in queries.read_text().splitlines():
        if line.strip():
            q = json.loads(line)
            text = q.get("query.cond") or q.get("query.term") or q.get("query.intr") or ""
            t0 = time.perf_counter()
            bare.query(text)
            ms.append((time.perf_counter() - t0) * 1000)
    out = {"bare_p50_ms": round(statistics.median(ms), 3), "bare_p95_ms": round(_pct(ms, 95), 3)}
    if api:
        out["ratio_p50"] = round(api["p50_ms"] / max(out["bare_p50_ms"], 1e-6), 1)
        out["ratio_p95"] = round(api["p95_ms"] / max(out["bare_p95_ms"], 1e-6), 1)
    print(f"bare tantivy on the same texts: p50 {out['bare_p50_ms']} ms, p95 {out['bare_p95_ms']} ms; "
          f"API/bare: p50 {out.get('ratio_p50')}x, p95 {out.get('ratio_p95')}x")
    return out


def start_server(db: str | None, workers: int) -> tuple[subprocess.Popen, str, str]:
    """``trialfinder serve`` on a free loopback port; returns (process, base URL, database)."""
    if db is None:
        db = str(Path(tempfile.mkdtemp(prefix="tf-load-")) / "sample.sqlite")  # filled from the sample
    port = _free_port()
    cmd = [sys.executable, "-m", "trialfinder.cli", "serve", "--db", db, "--host", "127.0.0.1",
           "--port", str(port), "--workers", str(workers), "--log-level", "warning"]
    proc = subprocess.Popen(cmd, env={**os.environ, "PYTHONUNBUFFERED": "1"})
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"server exited with status {proc.returncode}")
        try:
            if _get_json(base + "/healthz").get("status") == "ok":
                return proc, base, db
        except OSError:
            time.sleep(0.3)
    proc.terminate()
    raise SystemExit("server did not start within 300 s")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--db", help="database (default: a fresh copy of the bundled sample)")
    ap.add_argument("--url", help="benchmark already running server(s) instead of starting one; several "
                    "nodes as a comma-separated list (clients spread round-robin)")
    ap.add_argument("--clients", type=int, default=32)
    ap.add_argument("--seconds", type=float, default=60.0)
    ap.add_argument("--workers", type=int, default=2, help="server worker processes (default 2)")
    ap.add_argument("--warmup", type=float, default=5.0, help="seconds of unmeasured load first")
    ap.add_argument("--timeout", type=float, default=30.0, help="per-request timeout, seconds")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--json", metavar="FILE", help="also write the summary as JSON")
    ap.add_argument("--queries", type=Path, help="distinct-query mode: JSON lines of API parameters, each sent once")
    ap.add_argument("--latency", action="store_true",
                    help="one client, distinct queries, and the bare tantivy baseline on the same texts")
    ap.add_argument("--baseline-dir", help="bare tantivy index for --latency (default: <db>.bare)")
    args = ap.parse_args(argv)
    if args.latency:
        if not args.queries or not args.db:
            ap.error("--latency needs --queries and --db")
        args.clients = 1

    proc = None
    made_db = None
    if args.url:
        base = ",".join(u.rstrip("/") for u in args.url.split(","))
    else:
        proc, base, db = start_server(args.db, args.workers)
        made_db = None if args.db else Path(db).parent
        print(f"server: {base} ({args.workers} workers) on {db}")
    rss = {"peak_mb": 0.0}
    if proc is not None:
        threading.Thread(target=_sample_rss, args=(proc, rss), daemon=True).start()
    try:
        once = args.queries is not None
        if once:
            # warm up on the published mix (other texts), so worker start-up is not measured
            warm = build_mix(base.split(",")[0], args.seed)
            mix = distinct_mix(args.queries)
        else:
            mix = warm = build_mix(base.split(",")[0], args.seed)
        print(f"mix: {len(mix)} {'distinct requests, each once' if once else 'requests'}; {args.clients} "
              f"clients for up to {args.seconds:g} s after {args.warmup:g} s warm-up; {os.cpu_count()} CPUs")
        if args.warmup > 0:
            asyncio.run(run_load(base, warm, args.clients, args.warmup, args.timeout))
        out = asyncio.run(run_load(base, mix, args.clients, args.seconds, args.timeout, once=once))
        summary = report(out, args.clients)
        summary["server_peak_rss_mb"] = round(rss["peak_mb"], 1) if proc is not None else None
        summary["server_peak_pss_mb"] = round(rss.get("peak_pss_mb", 0.0), 1) if proc is not None else None
        print(f"server peak memory (all processes): RSS {summary['server_peak_rss_mb']} MB, "
              f"PSS {summary['server_peak_pss_mb']} MB")
        if args.latency:
            summary["baseline"] = baseline(args.queries, Path(args.baseline_dir or args.db + ".bare"),
                                           summary["kinds"].get("search_api"))
        if args.json:
            Path(args.json).write_text(json.dumps(summary, indent=2) + "\n")
        return 1 if out["errors"] else 0
    finally:
        if proc is not None:
            proc.terminate()
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                proc.kill()
        if made_db is not None:
            shutil.rmtree(made_db, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
