"""Match benchmark: how long ``match`` takes for one patient over a database (targets at 600,000 studies:
median <= 0.5 s, p95 <= 1 s, cold first call <= 2 s).

    python benchmarks/match_bench.py --db /tmp/ib_600k.sqlite [--patients tests/data/trec-2021/queries.jsonl]
                                     [--limit 10] [--near "Boston, MA" --radius-km 80] [--json]

The patients are the TREC Clinical Trials 2021 topics (free-text admission notes of 5 to 10 sentences,
``{"_id", "text"}`` lines), matched one after another in one process through the library call the CLI
and the web app use (:func:`trialfinder.matching.match`): fact extraction from the note, retrieval,
eligibility verdicts on the best candidates, ranking. The first patient warms the process up (the
full-text statistics and the study index are built then) and is reported separately; the percentiles
are over the others. Peak RSS is reported too.
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from search_bench import percentile  # noqa: E402 - the benchmarks share one definition

DEFAULT_PATIENTS = HERE.parent / "tests" / "data" / "trec-2021" / "queries.jsonl"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--db", required=True)
    ap.add_argument("--patients", default=str(DEFAULT_PATIENTS))
    ap.add_argument("--limit", type=int, default=10)
    ap.add_argument("--near", default=None)
    ap.add_argument("--radius-km", type=float, default=None)
    ap.add_argument("--status", default=None, help="open (default), all, or a comma-separated list")
    ap.add_argument("--max-patients", type=int, default=None, help="only the first N patients")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()

    from trialfinder.matching import match
    from trialfinder.store import open_store

    patients = [json.loads(line) for line in Path(args.patients).read_text().splitlines() if line.strip()]
    patients = patients[: args.max_patients] if args.max_patients else patients
    store = open_store(args.db, readonly=True)
    times: list[float] = []
    first_ms = None
    verdicts: dict[str, int] = {}
    for i, p in enumerate(patients):
        t0 = time.perf_counter()
        result = match(store, p["text"], near=args.near, radius_km=args.radius_km, status=args.status,
                       limit=args.limit)
        ms = (time.perf_counter() - t0) * 1000
        if i == 0:
            first_ms = ms
        else:
            times.append(ms)
        for hit in result.hits:
            verdicts[hit.verdict_label] = verdicts.get(hit.verdict_label, 0) + 1
    report = {
        "db": args.db,
        "studies": store.count(),
        "patients": len(patients),
        "first_patient_ms": round(first_ms or 0, 1),
        "median_ms": round(statistics.median(times), 1) if times else None,
        "p90_ms": round(percentile(times, 90), 1) if times else None,
        "p95_ms": round(percentile(times, 95), 1) if times else None,
        "max_ms": round(max(times), 1) if times else None,
        "under_2s": sum(t < 2000 for t in times),
        "under_1s": sum(t < 1000 for t in times),
        "verdicts_shown": verdicts,
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
    }
    if args.json:
        json.dump(report, sys.stdout, indent=2)
        print()
    else:
        for k, v in report.items():
            print(f"{k:>18}: {v}")


if __name__ == "__main__":
    main()
