"""The ``trialfinder`` command: a thin shell over the library.

Each subcommand parses its arguments, calls the public API, and formats the result. Errors the user can
fix are printed as one line ``trialfinder: error: ...`` with exit status 2 (bad input) or 1 (not found),
never as a traceback.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

import trialfinder
from trialfinder.cli.subcommand import CLIError, finish_parser, open_existing, write_json
from trialfinder.store import resolve_db


def _apply_index_dir(args: argparse.Namespace) -> None:
    """``--index-dir`` becomes ``$TRIALFINDER_INDEX_DIR``, so server worker processes see it too."""
    import os

    from trialfinder.store import is_postgres_url

    index_dir = getattr(args, "index_dir", None)
    if not index_dir:
        return
    if not is_postgres_url(resolve_db(getattr(args, "db", None))):
        raise CLIError("--index-dir applies to PostgreSQL databases; a SQLite database keeps its text index "
                       "beside the file")
    os.environ["TRIALFINDER_INDEX_DIR"] = os.path.abspath(os.path.expanduser(index_dir))


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="trialfinder",
        description="Find clinical trials: a local mirror of ClinicalTrials.gov with search and matching.",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser("ingest", help="store studies from files, directories and archives")
    p.add_argument("paths", nargs="*", metavar="PATH",
                   help="API v2 JSON/NDJSON, legacy XML, directories, .zip or .tar.gz archives")
    p.add_argument("--sample", action="store_true", help="ingest the bundled sample of real studies")
    p.add_argument("--errors", metavar="FILE", help="write rejected records as JSON lines to FILE")
    p.add_argument("--workers", type=int, metavar="N",
                   help="parser processes (default: number of CPUs for inputs over 32 MB, else 1)")
    p.add_argument("--max-record-mb", type=float, metavar="MB",
                   help="reject records larger than this (default $TRIALFINDER_MAX_RECORD_MB or 16)")
    p.add_argument("--max-document-mb", type=float, metavar="MB",
                   help="reject files and archive members parsed as a whole (JSON, XML) larger than this; "
                        "NDJSON is streamed (default $TRIALFINDER_MAX_DOCUMENT_MB or 64)")
    p.add_argument("--max-ratio", type=float, metavar="N",
                   help="reject archive members that inflate more than N times (zip bombs; default "
                        "$TRIALFINDER_MAX_RATIO or 100)")
    finish_parser(p, cmd_ingest)

    p = sub.add_parser("show", help="print one study")
    p.add_argument("nct_id", metavar="NCTID")
    finish_parser(p, cmd_show, json="print the stored API v2 record")

    finish_parser(sub.add_parser("stats", help="print counts of what is stored"), cmd_stats, json=True)

    for register in _extra_commands():
        register(sub)
    return parser


def _extra_commands() -> list:
    """Subcommands that live in their own modules (search, serve, match, eval, index)."""
    import importlib

    return [importlib.import_module(f"trialfinder.cli.{name}").register
            for name in ("search_cmd", "serve_cmd", "match_cmd", "index_cmd", "sync_cmd", "alerts_cmd", "db_cmd")]


def cmd_ingest(args: argparse.Namespace) -> int:
    from trialfinder.ingest import print_summary, sample_path

    paths = list(args.paths)
    if args.sample:
        paths.insert(0, str(sample_path()))
    if not paths:
        raise CLIError("nothing to ingest: give one or more PATHs, or --sample")
    from trialfinder.sources import Limits

    try:
        limits = Limits.from_env(max_record_mb=args.max_record_mb, max_document_mb=args.max_document_mb,
                                 max_ratio=args.max_ratio)
    except ValueError as exc:
        raise CLIError(str(exc)) from None
    errors = open(args.errors, "wb") if args.errors else None  # noqa: SIM115 - closed below
    try:
        with trialfinder.open_store(args.db) as store:
            result = trialfinder.ingest(store, paths, errors=errors, progress=sys.stderr, workers=args.workers,
                                        limits=limits)
    finally:
        if errors is not None:
            errors.close()
    for r in result.rejections[:20]:
        print(f"rejected: {r}", file=sys.stderr)
    if len(result.rejections) > 20:
        print(f"... and {len(result.rejections) - 20} more rejections"
              + (f" (all in {args.errors})" if args.errors else " (use --errors FILE for all)"), file=sys.stderr)
    print_summary(result)
    return 0


def cmd_show(args: argparse.Namespace) -> int:
    from trialfinder.model.view import render_text, study_view

    nct = args.nct_id.strip().upper()
    with open_existing(args.db) as store:
        record = trialfinder.get_study(store, nct)
    if record is None:
        raise CLIError(f"study {nct} not found", 1)
    if args.json:
        write_json(record)
    else:
        sys.stdout.write(render_text(study_view(record)))
        sys.stdout.write("\n")
    return 0


def cmd_stats(args: argparse.Namespace) -> int:
    with open_existing(args.db) as store:
        stats = store.stats()
        from trialfinder.sync.freshness import freshness

        stats["freshness"] = freshness(store)
    if args.json:
        write_json(stats)
        return 0
    print(f"database: {stats['database']}")
    print(f"studies: {stats['studies']:,}")
    print(f"with locations: {stats['with_locations']:,}")
    print(f"with coordinates: {stats['with_coordinates']:,} "
          f"(of which derived from a gazetteer: {stats['with_derived_coordinates']:,})")
    for title, key in (("overall status", "by_overall_status"), ("phase", "by_phase"),
                       ("study type", "by_study_type")):
        print(f"by {title}:")
        for k, v in stats[key].items():
            print(f"  {k:<28} {v:>10,}")
    last = stats["last_ingest"]
    if last:
        print(f"last ingest: {last['finished_at']} from {last['source']}: added {last['added']}, "
              f"updated {last['updated']}, unchanged {last['unchanged'] + last['older']}, "
              f"rejected {last['rejected']}")
    else:
        print("last ingest: never")
    _print_freshness(stats)
    return 0


def _print_freshness(stats: dict) -> None:
    """Freshness lines of ``stats``: the source's timestamp, the last sync and whether it is stale."""
    from trialfinder.sync.freshness import STALE_AFTER_HOURS

    fresh = stats["freshness"]
    print(f"data timestamp: {fresh['dataTimestamp'] or '(unknown)'}")
    last = fresh["lastSync"]
    if last:
        stale = f"  STALE: older than {STALE_AFTER_HOURS:.0f} h" if fresh["stale"] else ""
        print(f"last sync: {last.get('finishedAt')} ({fresh['ageHours']} h ago) from {last.get('source')}: "
              f"added {last.get('added')}, updated {last.get('updated')}, unchanged {last.get('unchanged')}, "
              f"rejected {last.get('rejected')}{stale}")
    else:
        print("last sync: never")
    if stats.get("absent_at_source"):
        print(f"absent at the source (kept, flagged): {stats['absent_at_source']:,}")


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        _apply_index_dir(args)
        return int(args.func(args) or 0)
    except CLIError as exc:
        print(f"trialfinder: error: {exc}", file=sys.stderr)
        return exc.status
    except (trialfinder.TrialfinderError, ValueError, FileNotFoundError) as exc:
        print(f"trialfinder: error: {exc}", file=sys.stderr)
        return 2
    except BrokenPipeError:
        return 0
    except KeyboardInterrupt:
        print("trialfinder: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
