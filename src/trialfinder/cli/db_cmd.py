"""``trialfinder db`` (schema: ``status``, ``upgrade``) and ``trialfinder copy SRC DST``.

``db upgrade`` applies the database's pending schema migrations. Additive ones also run by themselves
whenever a command opens the database for writing; ``upgrade`` is the explicit step for the others
(and for operators who prefer to migrate before deploying new web nodes).

``copy`` moves a whole database between backends in either direction (SQLite file <-> PostgreSQL URL):
every record as it is stored, content hashes, sources, ingest times, the ingest log, the record history,
saved searches (every timestamp as the source has it); everything derived (normalised tables, the text
index) is rebuilt in the destination, which must be empty.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

import trialfinder
from trialfinder.cli.subcommand import CLIError, check_workers, finish_parser, open_existing, write_json
from trialfinder.progress import Progress


def register(sub: Any) -> None:
    """Add the ``db`` and ``copy`` subcommands."""
    p = sub.add_parser("db", help="the database schema: status, upgrade", description=__doc__,
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    dsub = p.add_subparsers(dest="db_command", required=True, metavar="ACTION")
    finish_parser(dsub.add_parser("status", help="schema version and pending migrations"), cmd_status, json=True)
    finish_parser(dsub.add_parser("upgrade", help="apply pending schema migrations (creates the schema of a new "
                                  "database)"), cmd_upgrade, json=True)

    c = sub.add_parser("copy", help="copy a whole database to another backend (SQLite <-> PostgreSQL)",
                       description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    c.add_argument("src", metavar="SRC", help="source: a SQLite file or a postgresql:// URL")
    c.add_argument("dst", metavar="DST", help="destination (empty or new): a SQLite file or a postgresql:// URL")
    c.add_argument("--workers", type=int, metavar="N", help="processes rebuilding derived data (default: CPUs)")
    finish_parser(c, cmd_copy, json=True, db=False)


def _status(db: str | None) -> dict[str, Any]:
    from trialfinder.store import is_postgres_url, resolve_db

    target = resolve_db(db)
    if is_postgres_url(target):
        from trialfinder.store.postgres import status

        return status(target)
    with open_existing(target) as store:
        version = store.meta("schema_version")
        return {"database": store.url, "schema_version": int(version or 0), "latest": int(version or 0),
                "pending": []}


def cmd_status(args: argparse.Namespace) -> int:
    st = _status(args.db)
    if args.json:
        write_json(st)
    else:
        print(f"database: {st['database']}\nschema version: {st['schema_version']} (latest {st['latest']})")
        for name in st["pending"]:
            print(f"pending: {name}")
    return 1 if st["pending"] else 0


def cmd_upgrade(args: argparse.Namespace) -> int:
    from trialfinder.store import is_postgres_url, resolve_db

    target = resolve_db(args.db)
    if is_postgres_url(target):
        from trialfinder.store.postgres import upgrade

        before, after, applied = upgrade(target)
    else:  # a SQLite file migrates whenever it is opened for writing
        with trialfinder.open_store(target) as store:
            before = after = int(store.meta("schema_version") or 0)
        applied = []
    out = {"database": target if not is_postgres_url(target) else _status(target)["database"],
           "before": before, "after": after, "applied": applied}
    if args.json:
        write_json(out)
    else:
        for name in applied:
            print(f"applied migration {name}")
        print(f"schema version {after}" + (" (already current)" if not applied else f" (was {before})"))
    return 0


def cmd_copy(args: argparse.Namespace) -> int:
    import os

    from trialfinder.store import is_postgres_url

    check_workers(args.workers)
    if os.path.abspath(args.src) == os.path.abspath(args.dst) if not is_postgres_url(args.src) else args.src == args.dst:
        raise CLIError("SRC and DST are the same database")
    with open_existing(args.src) as src, trialfinder.open_store(args.dst) as dst:
        bar = Progress(sys.stderr, total=src.count(), label="copy")
        result = trialfinder.copy_database(src, dst, workers=args.workers,
                                           progress=lambda done, _total: bar.update(done))
        bar.update(result.studies, force=True)
        bar.finish()
    for line in result.skipped[:20]:
        print(f"skipped: {line}", file=sys.stderr)
    out = {"studies": result.studies, "ingest_runs": result.ingest_runs, "versions": result.versions,
           "indexed": result.indexed,
           "skipped": len(result.skipped), "seconds": round(result.seconds, 2)}
    if args.json:
        write_json(out, indent=False)
    else:
        print(f"copied {result.studies:,} studies and {result.ingest_runs} ingest runs, indexed {result.indexed:,}, "
              f"in {result.seconds:.1f}s" + (f"; {len(result.skipped)} skipped" if result.skipped else ""))
    return 0
