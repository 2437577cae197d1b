"""Ingest benchmark: studies/s, MB/s, peak RSS and database size for one ingest into a fresh database.

    python benchmarks/ingest_bench.py PATH [PATH...] [--db /tmp/bench.sqlite] [--keep] [--json]

Runs ``trialfinder ingest`` in a child process (so its peak RSS is measured alone) on a new database and
reports wall time, studies/s, input MB/s (uncompressed bytes of the study documents read), peak RSS of
the child, and the size of the database afterwards. Examples:

    python benchmarks/ingest_bench.py ../shared/data/ctgov/legacy-xml/clinical_study_xml.tar.gz
    python benchmarks/generate_corpus.py && python benchmarks/ingest_bench.py benchmarks/out/ctg-studies.json.zip
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tarfile
import time
import zipfile
from pathlib import Path


def uncompressed_bytes(path: Path) -> int:
    """Bytes of study documents inside a file, directory or archive (what the parser has to read)."""
    if path.is_dir():
        return sum(uncompressed_bytes(p) for p in path.rglob("*") if p.is_file())
    name = path.name.lower()
    if name.endswith(".zip"):
        with zipfile.ZipFile(path) as zf:
            return sum(i.file_size for i in zf.infolist())
    if name.endswith((".tar.gz", ".tgz", ".tar")):
        with tarfile.open(path) as tf:
            return sum(m.size for m in tf.getmembers() if m.isfile())
    return path.stat().st_size


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("paths", nargs="+")
    ap.add_argument("--db", default="/tmp/trialfinder-bench.sqlite")
    ap.add_argument("--keep", action="store_true", help="keep an existing database (measure a re-ingest)")
    ap.add_argument("--json", action="store_true")
    ap.add_argument("--workers", type=int, default=None, help="pass --workers to ingest")
    args = ap.parse_args()
    db = Path(args.db)
    if not args.keep:
        for suffix in ("", "-wal", "-shm"):
            Path(str(db) + suffix).unlink(missing_ok=True)
    nbytes = sum(uncompressed_bytes(Path(p)) for p in args.paths)
    cmd = [sys.executable, "-m", "trialfinder.cli", "ingest", *args.paths, "--db", str(db)]
    if args.workers is not None:
        cmd += ["--workers", str(args.workers)]
    start = time.monotonic()
    proc = subprocess.run(cmd, capture_output=True, text=True)
    seconds = time.monotonic() - start
    if proc.returncode != 0:
        sys.exit(f"ingest failed ({proc.returncode}):\n{proc.stderr[-2000:]}")
    summary = proc.stdout.strip().splitlines()[-1]
    peak_kb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    import sqlite3

    conn = sqlite3.connect(db)
    studies = conn.execute("SELECT count(*) FROM studies").fetchone()[0]
    conn.close()
    size = sum(os.path.getsize(str(db) + s) for s in ("", "-wal") if os.path.exists(str(db) + s))
    result = {
        "paths": args.paths,
        "studies": studies,
        "seconds": round(seconds, 2),
        "studies_per_s": round(studies / seconds, 1),
        "input_mb": round(nbytes / 1e6, 1),
        "mb_per_s": round(nbytes / 1e6 / seconds, 1),
        "peak_rss_mb": round(peak_kb / 1024, 1),
        "db_mb": round(size / 1e6, 1),
        "summary": summary,
    }
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        for k, v in result.items():
            print(f"{k:>14}: {v}")


if __name__ == "__main__":
    main()
