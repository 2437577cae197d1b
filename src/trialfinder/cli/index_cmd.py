"""``trialfinder index``: the derived text index -- its state, and a rebuild from the stored records.

The index is never the system of record: ``rebuild`` makes it afresh from the database beside the old
one (searches keep answering meanwhile) and swaps it in; ``status`` says whether it is current.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

import orjson

import trialfinder
from trialfinder.progress import Progress


def register(sub: Any) -> None:
    """Add the ``index`` subcommand with ``status`` and ``rebuild``."""
    from trialfinder.cli import _add_db

    p = sub.add_parser("index", help="the text index: status, rebuild", description=__doc__,
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    isub = p.add_subparsers(dest="index_command", required=True, metavar="ACTION")
    s = isub.add_parser("status", help="is the text index current with the database?")
    s.add_argument("--json", action="store_true")
    _add_db(s)
    s.set_defaults(func=cmd_status)
    r = isub.add_parser("rebuild", help="rebuild the text index from the stored records")
    r.add_argument("--workers", type=int, metavar="N", help="processes building documents (default: CPUs)")
    r.add_argument("--json", action="store_true")
    _add_db(r)
    r.set_defaults(func=cmd_rebuild)


def cmd_status(args: argparse.Namespace) -> int:
    from trialfinder.cli import _open_existing

    with _open_existing(args.db) as store:
        st = trialfinder.index_status(store)
    if args.json:
        sys.stdout.buffer.write(orjson.dumps(st.to_dict(), option=orjson.OPT_INDENT_2) + b"\n")
    else:
        state = "current" if st.current else f"behind (index at {st.index_seq}, database at {st.database_seq})"
        print(f"text index: {st.path}\nstudies: {st.documents:,}\nstate: {state}")
    return 0 if st.current else 1


def cmd_rebuild(args: argparse.Namespace) -> int:
    import time

    from trialfinder.cli import CLIError, _open_existing

    if args.workers is not None and args.workers < 1:
        raise CLIError(f"--workers must be at least 1, got {args.workers}")
    started = time.monotonic()
    with _open_existing(args.db) as store:
        bar = Progress(sys.stderr, total=store.count(), label="index rebuild")
        n = trialfinder.rebuild_index(store, progress=lambda done, _total: bar.update(done), workers=args.workers)
        bar.update(n, force=True)
        bar.finish()
        st = trialfinder.index_status(store)
    seconds = time.monotonic() - started
    if args.json:
        sys.stdout.buffer.write(orjson.dumps({**st.to_dict(), "indexed": n, "seconds": round(seconds, 2)}) + b"\n")
    else:
        print(f"indexed {n:,} studies in {seconds:.1f}s ({n / max(seconds, 1e-9):,.0f} studies/s)")
    return 0
