"""Search benchmark: a published query mix, latency percentiles, a plain FTS5 baseline, and RSS.

    python benchmarks/search_bench.py --db /tmp/bench600k.sqlite [--queries benchmarks/queries/search-mix.jsonl]
    python benchmarks/search_bench.py --make-queries --db SOME.sqlite   # regenerate the published mix

The mix (``benchmarks/queries/search-mix.jsonl``, 240 queries) is built from real condition and
intervention names of the bundled sample: about half carry filters (status, phase, age, sex, funder
type, study type), a quarter a geographic radius around a real site city, and every query asks for facet
counts and the total. Each query runs once to warm up and then ``--repeat`` times in one process; the
median and 95th percentile are over all timed runs.

The timed runs are cold for the text: the full-text result cache (``TRIALFINDER_TEXT_CACHE_MB``) is
off, so every run ranks every match again. A second pass then measures what the cache is for, the
refinement of a search a user just made: each query runs once with the cache on, then again with a
different sort and one more filter (``--no-refine`` skips it).

Baseline: the same text of each query run the way a generic SQLite browser would, an unweighted
``SELECT rowid FROM study_text WHERE study_text MATCH ? ORDER BY bm25(study_text) LIMIT 10`` over the same
full-text index, without filters, geography or facets; reported as a latency ratio.
"""

from __future__ import annotations

import argparse
import json
import random
import re
import resource
import statistics
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
DEFAULT_QUERIES = HERE / "queries" / "search-mix.jsonl"


def make_queries(db: str, out: Path, n: int = 240, seed: int = 7) -> None:
    """Build the query mix from real names in a database (normally the bundled sample)."""
    import sqlite3

    conn = sqlite3.connect(db)
    conds = [r[0] for r in conn.execute(
        "SELECT term FROM conditions WHERE kind = 'condition' GROUP BY term COLLATE NOCASE "
        "HAVING count(*) >= 2 ORDER BY count(*) DESC LIMIT 400")]
    intrs = [r[0] for r in conn.execute(
        "SELECT name FROM interventions WHERE type IN ('DRUG', 'BIOLOGICAL') GROUP BY name COLLATE NOCASE "
        "HAVING count(*) >= 1 ORDER BY count(*) DESC LIMIT 300")]
    cities = [tuple(r) for r in conn.execute(
        "SELECT city, avg(lat), avg(lon), count(*) FROM locations WHERE lat IS NOT NULL AND geo_derived = 0 "
        "GROUP BY city, country HAVING count(*) >= 3 ORDER BY count(*) DESC LIMIT 80")]
    rng = random.Random(seed)
    clean = [c for c in conds if re.fullmatch(r"[A-Za-z0-9 ,'\-]{3,60}", c)]
    clean_i = [i for i in intrs if re.fullmatch(r"[A-Za-z0-9 \-]{3,40}", i)]
    filters = [
        {"filter.overallStatus": "RECRUITING"},
        {"aggFilters": "phase:2 3"},
        {"aggFilters": "sex:f"},
        {"aggFilters": "funderType:industry"},
        {"aggFilters": "studyType:int,status:rec"},
        {"aggFilters": "ages:older"},
    ]
    with out.open("w") as fh:
        for i in range(n):
            params: dict[str, str] = {"countTotal": "true"}
            if i % 3 == 2 and clean_i:
                params["query.intr"] = rng.choice(clean_i)
            else:
                params["query.cond"] = rng.choice(clean)
            if i % 2 == 0:
                params.update(rng.choice(filters))
            if i % 4 == 1:
                city, lat, lon, _n = rng.choice(cities)
                params["filter.geo"] = f"distance({lat:.4f},{lon:.4f},{rng.choice([25, 50, 100])}mi)"
            fh.write(json.dumps(params) + "\n")
    print(f"wrote {n} queries to {out}")


def percentile(values: list[float], p: float) -> float:
    values = sorted(values)
    k = max(0, min(len(values) - 1, round(p / 100 * (len(values) - 1))))
    return values[k]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--db", required=True)
    ap.add_argument("--queries", default=str(DEFAULT_QUERIES))
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--make-queries", action="store_true")
    ap.add_argument("--json", action="store_true")
    ap.add_argument("--no-refine", action="store_true", help="skip the refinement pass (text cache on)")
    args = ap.parse_args()
    if args.make_queries:
        DEFAULT_QUERIES.parent.mkdir(exist_ok=True)
        make_queries(args.db, Path(args.queries))
        return

    import dataclasses

    from trialfinder.search import from_api_params
    from trialfinder.search.engine import search
    from trialfinder.search.synonyms import fold
    from trialfinder.store import open_store

    queries = [json.loads(line) for line in Path(args.queries).read_text().splitlines() if line.strip()]
    store = open_store(args.db, readonly=True)
    conn = store.conn
    times: list[float] = []
    base_times: list[float] = []
    per_kind: dict[str, list[float]] = {"text": [], "filtered": [], "geo": []}
    errors = 0
    for q in queries:
        req = dataclasses.replace(from_api_params(q), facets=True)
        text = q.get("query.cond") or q.get("query.intr") or ""
        fts = " ".join(f'"{w}"' for w in re.findall(r"\w+", fold(text)))
        for i in range(args.repeat + 1):
            t0 = time.perf_counter()
            try:
                search(store, req)
            except Exception as exc:  # noqa: BLE001 - a benchmark reports failures, it does not stop
                errors += 1
                print(f"error: {q}: {exc}", file=sys.stderr)
                break
            dt = (time.perf_counter() - t0) * 1000
            if i:
                times.append(dt)
                kind = "geo" if "filter.geo" in q else "filtered" if len(q) > 2 else "text"
                per_kind[kind].append(dt)
            t0 = time.perf_counter()
            conn.execute("SELECT rowid FROM study_text WHERE study_text MATCH ? ORDER BY bm25(study_text) LIMIT 10",
                         (fts,)).fetchall()
            if i:
                base_times.append((time.perf_counter() - t0) * 1000)
    refine: list[float] = []
    if not args.no_refine:
        for q in queries:
            search(store, dataclasses.replace(from_api_params(q), facets=True))
            variant = {**q, "sort": "LastUpdatePostDate:desc",
                       "aggFilters": ",".join(x for x in (q.get("aggFilters"), "status:rec") if x)}
            t0 = time.perf_counter()
            search(store, dataclasses.replace(from_api_params(variant), facets=True))
            refine.append((time.perf_counter() - t0) * 1000)
    rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    result = {
        "db": args.db,
        "studies": store.count(),
        "queries": len(queries),
        "timed_runs": len(times),
        "errors": errors,
        "median_ms": round(statistics.median(times), 2),
        "p95_ms": round(percentile(times, 95), 2),
        "max_ms": round(max(times), 2),
        "by_kind_median_ms": {k: round(statistics.median(v), 2) for k, v in per_kind.items() if v},
        "by_kind_p95_ms": {k: round(percentile(v, 95), 2) for k, v in per_kind.items() if v},
        "baseline_median_ms": round(statistics.median(base_times), 2),
        "baseline_p95_ms": round(percentile(base_times, 95), 2),
        "ratio_median_vs_baseline": round(statistics.median(times) / max(statistics.median(base_times), 1e-6), 2),
        "refine_median_ms": round(statistics.median(refine), 2) if refine else None,
        "refine_p95_ms": round(percentile(refine, 95), 2) if refine else None,
        "peak_rss_mb": round(rss_mb, 1),
    }
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        for k, v in result.items():
            print(f"{k:>26}: {v}")


if __name__ == "__main__":
    main()
