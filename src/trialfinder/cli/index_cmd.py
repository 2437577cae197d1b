"""``trialfinder index``: the derived text index -- its state, and a rebuild from the stored records.

The index is never the system of record: ``rebuild`` makes it afresh from the database beside the old
one (searches keep answering meanwhile) and swaps it in; ``status`` says whether it is current.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

import trialfinder
from trialfinder.cli.subcommand import check_workers, finish_parser, open_existing, write_json
from trialfinder.progress import Progress


def register(sub: Any) -> None:
    """Add the ``index`` subcommand with ``status`` and ``rebuild``."""
    p = sub.add_parser("index", help="the text index: status, rebuild", description=__doc__,
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    isub = p.add_subparsers(dest="index_command", required=True, metavar="ACTION")
    finish_parser(isub.add_parser("status", help="is the text index current with the database?"), cmd_status,
                  json=True)
    r = isub.add_parser("rebuild", help="rebuild the text index from the stored records")
    r.add_argument("--workers", type=int, metavar="N", help="processes building documents (default: CPUs)")
    finish_parser(r, cmd_rebuild, json=True)


def cmd_status(args: argparse.Namespace) -> int:
    with open_existing(args.db) as store:
        st = trialfinder.index_status(store)
    if args.json:
        write_json(st.to_dict())
    else:
        state = "current" if st.current else f"behind (index at {st.index_seq}, database at {st.database_seq})"
        print(f"text index: {st.path}\nstudies: {st.documents:,}\nstate: {state}")
    return 0 if st.current else 1


def cmd_rebuild(args: argparse.Namespace) -> int:
    import time

    check_workers(args.workers)
    started = time.monotonic()
    with open_existing(args.db) as store:
        bar = Progress(sys.stderr, total=store.count(), label="index rebuild")
        n = trialfinder.rebuild_index(store, progress=lambda done, _total: bar.update(done), workers=args.workers)
        bar.update(n, force=True)
        bar.finish()
        st = trialfinder.index_status(store)
    seconds = time.monotonic() - started
    if args.json:
        write_json({**st.to_dict(), "indexed": n, "seconds": round(seconds, 2)}, indent=False)
    else:
        print(f"indexed {n:,} studies in {seconds:.1f}s ({n / max(seconds, 1e-9):,.0f} studies/s)")
    return 0
