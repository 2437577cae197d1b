"""Ingest benchmark: studies/s, MB/s, peak RSS, database size and where the time goes.

    python benchmarks/ingest_bench.py PATH [PATH...] [--db /tmp/bench.sqlite] [--keep] [--json]
    python benchmarks/ingest_bench.py PATH --stages 200      # per-stage costs, one process, no workers

The default mode runs one ingest into a fresh database in a child process (so its memory is measured
alone) and reports wall time, studies/s, input MB/s (uncompressed bytes of the study documents), peak
RSS (of the largest process) and peak PSS of the writer plus its workers together (sampled every 0.2 s), the
size of the database afterwards, and the ingest's own timings: time the writer spent in transactions,
time it waited for the workers, the final index build, and CPU seconds of the writer and the workers.

``--stages N`` takes the first N work chunks of the input and measures, in this process, what each
stage costs per study: the worker side (read + inflate, parse, normalise, synonyms, rows) under
cProfile, pickling, and the writer side table by table. Examples:

    python benchmarks/ingest_bench.py ../shared/data/ctgov/legacy-xml/clinical_study_xml.tar.gz
    python benchmarks/generate_corpus.py && python benchmarks/ingest_bench.py benchmarks/out/ctg-studies.json.zip
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import resource
import subprocess
import sys
import tarfile
import threading
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


def _pss(pid: int) -> int:
    """Proportional set size in bytes: pages shared by forked workers are counted once in a sum."""
    try:
        with open(f"/proc/{pid}/smaps_rollup", "rb") as fh:
            for line in fh:
                if line.startswith(b"Pss:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


def _tree_memory(root: int) -> tuple[int, int]:
    """(sum of PSS, max RSS) in bytes over a process and all its descendants (from /proc)."""
    children: dict[int, list[int]] = {}
    rss: dict[int, int] = {}
    page = os.sysconf("SC_PAGE_SIZE")
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", "rb") as fh:
                fields = fh.read().rsplit(b")", 1)[1].split()
        except OSError:
            continue
        pid = int(entry)
        children.setdefault(int(fields[1]), []).append(pid)
        rss[pid] = int(fields[21]) * page
    total = peak = 0
    stack = [root]
    while stack:
        pid = stack.pop()
        total += _pss(pid)
        peak = max(peak, rss.get(pid, 0))
        stack.extend(children.get(pid, ()))
    return total, peak


def _child(args: argparse.Namespace) -> None:
    """Runs in the measured process: one ingest through the library, result as JSON on stdout."""
    import ast
    import importlib

    from trialfinder.ingest import ingest
    from trialfinder.store import open_store

    for setting in args.set:  # e.g. store.sqlite.SQLiteStore.INGEST_WAL_AUTOCHECKPOINT=65536
        target, value = setting.split("=", 1)
        path, attr = target.rsplit(".", 1)
        parts = path.split(".")
        for i in range(len(parts), 0, -1):
            try:
                obj = importlib.import_module("trialfinder." + ".".join(parts[:i]))
            except ImportError:
                continue
            for name in parts[i:]:
                obj = getattr(obj, name)
            break
        setattr(obj, attr, ast.literal_eval(value))
    with open_store(args.db) as store:
        kwargs = {"workers": args.workers}
        if args.batch_size:
            kwargs["batch_size"] = args.batch_size
        result = ingest(store, args.paths, **kwargs)
    with open("/proc/self/stat", "rb") as fh:  # field 42: time blocked on disk I/O, in clock ticks
        blkio = int(fh.read().rsplit(b")", 1)[1].split()[39]) / os.sysconf("SC_CLK_TCK")
    result.timings["io_wait_writer"] = blkio
    print(json.dumps({"summary": result.counts.summary(), "seconds": result.seconds,
                      "timings": result.timings}))


def _reset_postgres(url: str) -> None:
    """Empty a PostgreSQL database (``--db postgresql://...``) and this machine's index of it."""
    import shutil

    import psycopg

    from trialfinder.store.postgres.config import index_dir, parse_url

    cfg = parse_url(url)
    with psycopg.connect(cfg.conninfo, autocommit=True) as conn:
        conn.execute("DROP SCHEMA public CASCADE")
        conn.execute("CREATE SCHEMA public")
    shutil.rmtree(index_dir(cfg), ignore_errors=True)


def run(args: argparse.Namespace) -> dict:
    db: Path | str = args.db
    if str(db).startswith(("postgresql://", "postgres://")):
        if not args.keep:
            _reset_postgres(str(db))
    else:
        db = Path(str(db))
        if not args.keep:
            for suffix in ("", "-wal", "-shm"):
                Path(str(db) + suffix).unlink(missing_ok=True)
    nbytes = sum(uncompressed_bytes(Path(p)) for p in args.paths)
    cmd = [sys.executable, __file__, "--child", *args.paths, "--db", str(db)]
    if args.workers is not None:
        cmd += ["--workers", str(args.workers)]
    if args.batch_size:
        cmd += ["--batch-size", str(args.batch_size)]
    for setting in args.set:
        cmd += ["--set", setting]
    peak = {"sum": 0, "max": 0}
    start = time.monotonic()
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)

    def sample() -> None:
        while proc.poll() is None:
            total, biggest = _tree_memory(proc.pid)
            peak["sum"], peak["max"] = max(peak["sum"], total), max(peak["max"], biggest)
            time.sleep(0.2)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    out, err = proc.communicate()
    seconds = time.monotonic() - start
    sampler.join()
    if proc.returncode != 0:
        sys.exit(f"ingest failed ({proc.returncode}):\n{err[-2000:]}")
    child = json.loads(out.strip().splitlines()[-1])
    if isinstance(db, str):  # PostgreSQL: the database's size as the server reports it
        import psycopg

        from trialfinder.store.postgres.config import parse_url

        with psycopg.connect(parse_url(db).conninfo) as pg:
            studies, size = pg.execute("SELECT (SELECT count(*) FROM studies), "
                                       "pg_database_size(current_database())").fetchone()
    else:
        import sqlite3

        conn = sqlite3.connect(db)
        studies = conn.execute("SELECT count(*) FROM studies").fetchone()[0]
        conn.close()
        size = sum(os.path.getsize(str(db) + s) for s in ("", "-wal") if os.path.exists(str(db) + s))
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return {
        "paths": args.paths,
        "studies": studies,
        "seconds": round(seconds, 2),
        "studies_per_s": round(studies / seconds, 1),
        "input_mb": round(nbytes / 1e6, 1),
        "mb_per_s": round(nbytes / 1e6 / seconds, 1),
        "peak_rss_mb": round(usage.ru_maxrss / 1024, 1),
        "peak_tree_pss_mb": round(peak["sum"] / 1e6, 1),
        "cpu_s": round(usage.ru_utime + usage.ru_stime, 1),
        "db_mb": round(size / 1e6, 1),
        "ingest_s": round(child["seconds"], 2),
        "timings": {k: round(v, 2) for k, v in child["timings"].items()},
        "load_avg": os.getloadavg()[0],
        "summary": child["summary"],
    }


def baseline(paths: list[str], directory: Path) -> dict:
    """A bare tantivy build of the same texts: one Python feeder reading the same files (the yardstick
    of the issue's 'ingest <= 1.3x a bare build'), with its own peak RSS measured in a child process."""
    code = ("import json,sys; from pathlib import Path; sys.path.insert(0, BENCH_DIR); import bare_tantivy as b; "
            "import itertools; n, s = b.build(itertools.chain.from_iterable(b.corpus_records(Path(p)) "
            "for p in sys.argv[2:]), Path(sys.argv[1])); print(json.dumps({'docs': n, 'build_s': s}))"
            ).replace("BENCH_DIR", repr(str(Path(__file__).parent)))
    start = time.monotonic()
    proc = subprocess.run([sys.executable, "-c", code, str(directory), *paths],
                          capture_output=True, text=True, check=False)
    seconds = time.monotonic() - start
    if proc.returncode != 0:
        sys.exit(f"baseline build failed:\n{proc.stderr[-2000:]}")
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    return {"docs": out["docs"], "seconds": round(seconds, 2), "load_avg": os.getloadavg()[0]}


def stages(paths: list[str], nchunks: int) -> None:
    """Per-stage cost per study on the first ``nchunks`` work chunks, in this process (see module doc)."""
    import cProfile
    import gc
    import pickle
    import pstats
    import tempfile

    ing = importlib.import_module("trialfinder.ingest")
    from trialfinder.index.text_index import TextIndex
    from trialfinder.sources import Limits
    from trialfinder.store.base import UpsertCounts
    from trialfinder.store.batch import study_rows
    from trialfinder.store.sqlite import store as sq

    limits = Limits.from_env()

    def cpu() -> float:
        r = resource.getrusage(resource.RUSAGE_SELF)
        return r.ru_utime + r.ru_stime

    tasks = []
    for task in ing._tasks(paths, limits):
        if not isinstance(task, ing.Rejection):
            tasks.append(task)
        if len(tasks) >= nchunks:
            break
    ing._worker_init()
    best = float("inf")
    for _ in range(3):  # the best of three: the machine may be shared
        c0 = cpu()
        results = [ing._work(t, study_rows, limits) for t in tasks]
        best = min(best, cpu() - c0)
    prepared = [r for rs in results for r in rs if not isinstance(r, ing.Rejection)]
    rows = [r for r, _doc in prepared]
    docs = [doc for _r, doc in prepared]
    n = len(rows)
    print(f"{n} studies; worker side {best / n * 1e3:.3f} ms/study (best of 3), breakdown under cProfile:")
    prof = cProfile.Profile()
    prof.enable()
    for t in tasks:
        ing._work(t, study_rows, limits)
    prof.disable()
    st = pstats.Stats(prof)
    total = sum(v[2] for v in st.stats.values())  # type: ignore[attr-defined]
    for (_file, _line, func), (_cc, _nc, tt, _ct, _callers) in sorted(
            st.stats.items(), key=lambda kv: -kv[1][2])[:14]:  # type: ignore[attr-defined]
        print(f"  {func:>28}: {tt / total * 100:5.1f}% self time")
    c0 = cpu()
    blobs = [pickle.dumps(r, protocol=pickle.HIGHEST_PROTOCOL) for r in results]
    c1 = cpu()
    for b in blobs:
        pickle.loads(b)
    c2 = cpu()
    print(f"pickle {(c1 - c0) / n * 1e3:.3f} ms/study (worker), unpickle {(c2 - c1) / n * 1e3:.3f} ms/study "
          f"(writer), {sum(map(len, blobs)) / n / 1e3:.1f} KB/study")
    del results, blobs
    gc.set_threshold(200_000, 50, 100)
    with tempfile.TemporaryDirectory() as tmp:
        store = sq.SQLiteStore(Path(tmp) / "stages.sqlite")
        c0 = cpu()
        ingest_id = store.begin_ingest("stages")
        for i in range(0, n, ing.BATCH_SIZE):
            store.upsert_rows(rows[i:i + ing.BATCH_SIZE])
        c1 = cpu()
        store.finish_ingest(ingest_id, UpsertCounts())
        store.close()
        c2 = cpu()
        # the text index: CPU of this process includes tantivy's indexing and merging threads
        i0 = cpu()
        index = TextIndex(Path(tmp) / "stages.index")
        with index.writer() as w:
            for i in range(0, n, ing.BATCH_SIZE):
                w.upsert(docs[i:i + ing.BATCH_SIZE], new=True)
            w.commit(1)
        i1 = cpu()
    per = dict(store.write_timings)  # wall seconds of each executemany and of COMMIT
    per["ids, tuples (Python)"] = (c1 - c0) - sum(per.values())
    per["deferred indexes, close"] = c2 - c1
    print(f"writer side {(c2 - c0) / n * 1e3:.3f} ms/study:")
    for name, sec in sorted(per.items(), key=lambda kv: -kv[1]):
        print(f"  {name:>28}: {sec / n * 1e3:.4f} ms/study")
    print(f"text index (add_json, tantivy threads, commit, merges) {(i1 - i0) / n * 1e3:.3f} ms/study CPU, "
          f"{sum(map(len, (d for _k, d in docs))) / n / 1e3:.1f} KB of document JSON/study")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("paths", nargs="+")
    ap.add_argument("--db", default="/tmp/trialfinder-bench.sqlite",
                    help="a SQLite file, or a postgresql:// URL (emptied first unless --keep)")
    ap.add_argument("--keep", action="store_true", help="keep an existing database (measure a re-ingest)")
    ap.add_argument("--json", action="store_true")
    ap.add_argument("--workers", type=int, default=None, help="worker processes (default: the ingest's own)")
    ap.add_argument("--batch-size", type=int, default=0, help="studies per transaction (default: the ingest's)")
    ap.add_argument("--set", action="append", default=[], metavar="MODULE.NAME=VALUE",
                    help="override a constant for an experiment, e.g. "
                         "store.sqlite.SQLiteStore.INGEST_WAL_AUTOCHECKPOINT=65536 (for the batch size, "
                         "use --batch-size: a module constant does not change a default already bound)")
    ap.add_argument("--stages", type=int, default=0, metavar="CHUNKS", help="per-stage costs instead (see above)")
    ap.add_argument("--baseline", action="store_true",
                    help="also time a bare tantivy build of the same texts (benchmarks/bare_tantivy.py), "
                         "in the same run, into DB.bare, and report the ratio")
    ap.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        _child(args)
        return
    if args.stages:
        stages(args.paths, args.stages)
        return
    result = run(args)
    if args.baseline:
        result["baseline"] = baseline(args.paths, Path(args.db + ".bare"))
        result["ratio_to_baseline"] = round(result["seconds"] / result["baseline"]["seconds"], 2)
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        for k, v in result.items():
            print(f"{k:>17}: {v}")


if __name__ == "__main__":
    main()
