"""Sync against the loopback stand-in: a full sync, then one "day" of changes; time and requests.

    .venv/bin/python benchmarks/sync_bench.py [--studies-tar ../shared/data/ctgov/v2/studies-2024-1000.tar.gz]
                                              [--changes 300] [--new 50]

Why the stand-in: it is the same HTTP server the tests use (real sockets, gzip, paging with tokens,
pages of at most 1,000), so the figures are the client's and the write path's, without the registry's
own latency. Requests are counted by the client; run with ``--rate 0`` semantics (no spacing), so the
time at the registry's ~1 request/s is the request count in seconds plus these figures.
"""

from __future__ import annotations

import argparse
import copy
import json
import sys
import tarfile
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

from standin_api import StandinAPI, StandinRegistry, nct_of, seed_records  # noqa: E402

from trialfinder.sources.ctgov_api import CtgovClient  # noqa: E402
from trialfinder.store import open_store  # noqa: E402
from trialfinder.sync import sync  # noqa: E402

DEFAULT_TAR = ROOT.parent / "shared" / "data" / "ctgov" / "v2" / "studies-2024-1000.tar.gz"


def load(tar: Path) -> list[dict]:
    if not tar.exists():
        print(f"({tar} not found: using the {len(seed_records())} test records)")
        return seed_records()
    out = []
    with tarfile.open(tar) as tf:
        for member in tf:
            if member.isfile() and member.name.endswith(".json"):
                f = tf.extractfile(member)
                if f is not None:
                    out.append(json.loads(f.read()))
    return out


def change_day(registry: StandinRegistry, ids: list[str], changes: int, new: list[dict]) -> None:
    registry.next_day()
    for i, nct in enumerate(ids[:changes]):
        if i % 3 == 0:
            registry.set_status(nct, "ACTIVE_NOT_RECRUITING")
        elif i % 3 == 1:
            registry.add_site(nct, f"Bench Hospital {i}", "Lyon", "France")
        else:
            def enroll(rec: dict) -> None:
                rec["protocolSection"].setdefault("designModule", {}).setdefault("enrollmentInfo", {})["count"] = 7
            registry.update(nct, enroll)
    for rec in new:
        registry.add(rec)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--studies-tar", type=Path, default=DEFAULT_TAR)
    ap.add_argument("--changes", type=int, default=300)
    ap.add_argument("--new", type=int, default=50)
    args = ap.parse_args()
    records = load(args.studies_tar)
    new = []
    for i, rec in enumerate(records[: args.new]):  # "never seen" studies: real records under fresh ids
        r = copy.deepcopy(rec)
        r["protocolSection"]["identificationModule"]["nctId"] = f"NCT9{i:07d}"
        new.append(r)
    newest = max(r["protocolSection"]["statusModule"]["lastUpdatePostDateStruct"]["date"] for r in records)
    # the source's clock starts the day after its newest record, as at the registry
    from datetime import date, timedelta

    start = (date.fromisoformat(newest[:10]) + timedelta(days=1)).isoformat()
    registry = StandinRegistry(records, max_page_size=1000, data_timestamp=f"{start}T09:00:06")
    with StandinAPI(registry) as api, tempfile.TemporaryDirectory() as tmp:
        db = Path(tmp) / "bench.sqlite"
        client = CtgovClient(api.base_url, rate=0)
        t0 = time.perf_counter()
        with open_store(db) as store:
            full = sync(store, client)
        t_full = time.perf_counter() - t0
        print(f"full sync: {len(records):,} studies, {full.pages} pages, {client.requests} requests, "
              f"{t_full:.2f} s ({len(records) / t_full:,.0f} studies/s), of which writing {full.write_seconds:.2f} s "
              f"({len(records) / full.write_seconds:,.0f} studies/s); {full.summary()}")
        ids = sorted(nct_of(r) for r in records)
        change_day(registry, ids, args.changes, new)
        client = CtgovClient(api.base_url, rate=0)
        t0 = time.perf_counter()
        with open_store(db) as store:
            day = sync(store, client)
        t_day = time.perf_counter() - t0
        print(f"day of changes: {args.changes} changed + {len(new)} new, {day.pages} pages, {client.requests} "
              f"requests, {t_day:.2f} s, of which writing {day.write_seconds:.2f} s; {day.summary()}")
        size = db.stat().st_size + sum(p.stat().st_size for p in Path(tmp).glob("bench.sqlite-*"))
        print(f"database after both: {size / 1e6:.1f} MB (history of {args.changes} changed studies included)")
        per_page = full.write_seconds / len(records) * 1000
        pages = 600_000 / 1000
        # requests are spaced by start time and the next page is fetched while one is written: per page it
        # is the largest of the spacing, the registry's answer time and the writing, not their sum
        print(f"registry estimate: 600,000 studies = {pages:.0f} pages + 1 request; writing takes {per_page:.1f} s "
              f"per 1,000 here, so about {pages * max(1.0, per_page) / 60:.0f} min if the registry answers a page "
              f"faster than that (at 1 request/s alone: {pages / 60:.0f} min)")


if __name__ == "__main__":
    main()
