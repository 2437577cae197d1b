"""Search benchmark: cold, distinct queries drawn from the database, beside a bare tantivy baseline.

    python benchmarks/search_bench.py --db /tmp/bench600k.sqlite --distinct 2000
    python benchmarks/search_bench.py --db DB --distinct 5000 --write-queries benchmarks/out/distinct.jsonl
    python benchmarks/search_bench.py --db DB --queries benchmarks/queries/search-mix.jsonl --repeat 3

How users load a finder: most queries are new. ``--distinct N`` draws N different queries from the
studies in the database itself (seeded, so a rerun draws the same ones): a third are frequent
conditions ("Breast Cancer", "HIV Infections": the most common conditions of a sample of studies), a
third single words from titles ("cancer", "vaccine", "pain"...), a third the long tail (a condition or
intervention name of a random study). Half of them carry a filter (status, phase, sex, age group,
funder type, study type) and a tenth a radius around a real site of a random study. Every query asks
for the total (``countTotal``); each runs exactly once, so no cache of any kind helps (there is no
result cache; the text index's pages are in the OS cache as they would be on a serving machine).

Measured in this process, for each query: trialfinder's search as the API runs it (top 10 +
total), the search page's work (the same with facets), and the baseline -- a bare tantivy index of
the same texts (``benchmarks/bare_tantivy.py``) answering top-10 + count for the same text -- in the
same run, so the ratio holds whatever else the machine is doing. The baseline index is built from
the database's records on first use into ``--baseline-dir`` (its build time is printed) and reused.
The HTTP figures (the user-facing targets) come from ``benchmarks/load.py --latency`` on the same
query file.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import random
import re
import resource
import statistics
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import bare_tantivy  # noqa: E402

FILTERS: list[dict[str, str]] = [
    {"filter.overallStatus": "RECRUITING"},
    {"aggFilters": "phase:2 3"},
    {"aggFilters": "sex:f"},
    {"aggFilters": "funderType:industry"},
    {"aggFilters": "studyType:int,status:rec"},
    {"aggFilters": "ages:older"},
    {"filter.overallStatus": "RECRUITING,NOT_YET_RECRUITING"},
]
STOP = {"with", "and", "the", "for", "study", "trial", "of", "in", "to", "a", "an", "on", "or", "versus", "phase",
        "patients", "after", "from", "among", "during", "effect", "effects", "using", "clinical", "randomized"}


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[max(0, min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1))))]


def _sample_records(store: Any, n: int, rng: random.Random) -> list[dict[str, Any]]:
    ids = [nct for nct, _size in store.record_sizes()]
    pick = rng.sample(ids, min(n, len(ids)))
    recs: list[dict[str, Any]] = []
    for i in range(0, len(pick), 500):
        got = store.get_many(pick[i:i + 500])
        recs += [got[x] for x in pick[i:i + 500] if x in got]
    return recs


def distinct_queries(store: Any, n: int, seed: int = 1) -> list[dict[str, str]]:
    """N different API parameter sets drawn from the stored studies (see the module docstring)."""
    rng = random.Random(seed)
    recs = _sample_records(store, max(3000, n), rng)
    conds = Counter(c for r in recs for c in (r["protocolSection"].get("conditionsModule") or {}).get("conditions", []))
    frequent = [c for c, _k in conds.most_common(150)]
    words: list[str] = []
    tail: list[str] = []
    sites: list[tuple[float, float]] = []
    for r in recs:
        p = r["protocolSection"]
        title = p["identificationModule"].get("briefTitle") or ""
        words += [w for w in re.findall(r"[A-Za-z][a-z]{3,}", title) if w.lower() not in STOP]
        names = list((p.get("conditionsModule") or {}).get("conditions", []))
        names += [iv.get("name", "") for iv in (p.get("armsInterventionsModule") or {}).get("interventions", [])]
        tail += [x for x in names if x and len(x) <= 80]
        for loc in (p.get("contactsLocationsModule") or {}).get("locations", [])[:3]:
            gp = loc.get("geoPoint")
            if gp and "lat" in gp:
                sites.append((gp["lat"], gp["lon"]))
    out: list[dict[str, str]] = []
    seen: set[str] = set()
    tries = 0
    while len(out) < n and tries < n * 50:
        tries += 1
        kind = ("frequent", "word", "tail")[len(out) % 3]
        pool = frequent if kind == "frequent" else words if kind == "word" else tail
        text = rng.choice(pool)
        q: dict[str, str] = {"_kind": kind, "countTotal": "true"}
        q["query.term" if kind == "word" else "query.cond" if rng.random() < 0.7 else "query.term"] = text
        if rng.random() < 0.5:
            q.update(rng.choice(FILTERS))
        if sites and rng.random() < 0.1:
            lat, lon = rng.choice(sites)
            q["filter.geo"] = f"distance({lat:.4f},{lon:.4f},{rng.choice([25, 50, 100])}mi)"
        key = json.dumps({k: v.lower() for k, v in q.items() if k != "_kind"}, sort_keys=True)
        if key not in seen:
            seen.add(key)
            out.append(q)
    return out


def query_text(q: dict[str, str]) -> str:
    return q.get("query.cond") or q.get("query.term") or q.get("query.intr") or ""


def ensure_baseline(store: Any, directory: Path) -> tuple[bare_tantivy.Bare, float | None]:
    """Open the baseline index, building it from the store's records when absent or of another size."""
    n = store.count()
    built = None
    if directory.exists():
        try:
            bare = bare_tantivy.Bare(directory)
            if bare.num_docs == n:
                return bare, None
        except ValueError:
            pass
    _n, built = bare_tantivy.build(store.iter_records(), directory)
    return bare_tantivy.Bare(directory), built


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--db", required=True)
    ap.add_argument("--distinct", type=int, default=2000, help="draw N distinct queries from the database")
    ap.add_argument("--queries", help="a JSON-lines file of API parameters instead of drawing")
    ap.add_argument("--write-queries", help="write the drawn queries here (for benchmarks/load.py)")
    ap.add_argument("--repeat", type=int, default=1, help="runs per query (1 = cold, the default)")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--baseline-dir", default=None, help="bare tantivy index (default: <db>.bare)")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()

    from trialfinder.index.follow import current_snapshot
    from trialfinder.search import from_api_params
    from trialfinder.search.engine import search
    from trialfinder.store import open_store

    store = open_store(args.db, readonly=True)
    cur = current_snapshot(store)
    if cur.stale:
        raise SystemExit(f"the text index of {args.db} is behind the database: run `trialfinder index rebuild`")
    if args.queries:
        queries = [json.loads(line) for line in Path(args.queries).read_text().splitlines() if line.strip()]
    else:
        queries = distinct_queries(store, args.distinct, args.seed)
    if args.write_queries:
        Path(args.write_queries).parent.mkdir(parents=True, exist_ok=True)
        Path(args.write_queries).write_text("".join(json.dumps(q) + "\n" for q in queries))
    bare, built_s = ensure_baseline(store, Path(args.baseline_dir or args.db + ".bare"))

    api_ms: list[float] = []
    page_ms: list[float] = []
    base_ms: list[float] = []
    by_kind: dict[str, list[float]] = {}
    errors = 0
    for q in queries:
        params = {k: v for k, v in q.items() if not k.startswith("_")}
        kind = q.get("_kind", "given") + ("+geo" if "filter.geo" in q else "+filter" if len(params) > 2 else "")
        for _ in range(args.repeat):
            try:
                req = from_api_params(params)
                t0 = time.perf_counter()
                search(store, req, explain=False).to_api_bytes()  # what GET /api/v2/studies does
                t1 = time.perf_counter()
                search(store, dataclasses.replace(req, facets=True))  # the search page: facets, explained hits
                t2 = time.perf_counter()
            except Exception as exc:  # noqa: BLE001 - a benchmark reports failures, it does not stop
                errors += 1
                print(f"error: {params}: {exc}", file=sys.stderr)
                break
            bare.query(query_text(q))
            t3 = time.perf_counter()
            api, page, base = (t1 - t0) * 1000, (t2 - t1) * 1000, (t3 - t2) * 1000
            api_ms.append(api)
            page_ms.append(page)
            base_ms.append(base)
            by_kind.setdefault(kind, []).append(api)
    med_api, med_base = statistics.median(api_ms), statistics.median(base_ms)
    result = {
        "db": args.db, "studies": store.count(), "queries": len(queries), "timed_runs": len(api_ms),
        "errors": errors,
        "api_p50_ms": round(med_api, 2), "api_p95_ms": round(percentile(api_ms, 95), 2),
        "api_max_ms": round(max(api_ms), 1),
        "facets_p50_ms": round(statistics.median(page_ms), 2), "facets_p95_ms": round(percentile(page_ms, 95), 2),
        "bare_p50_ms": round(med_base, 3), "bare_p95_ms": round(percentile(base_ms, 95), 3),
        "ratio_p50": round(med_api / max(med_base, 1e-6), 2),
        "ratio_p95": round(percentile(api_ms, 95) / max(percentile(base_ms, 95), 1e-6), 2),
        "by_kind_p50_ms": {k: round(statistics.median(v), 2) for k, v in sorted(by_kind.items())},
        "by_kind_p95_ms": {k: round(percentile(v, 95), 2) for k, v in sorted(by_kind.items())},
        "baseline_build_s": round(built_s, 1) if built_s is not None else "reused",
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
    }
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        for k, v in result.items():
            print(f"{k:>18}: {v}")


if __name__ == "__main__":
    main()
