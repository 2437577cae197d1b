"""``trialfinder sync`` and ``trialfinder history``: keep the mirror current, and see what changed.

sync: an empty database is filled from the source (or from the bulk archive with --bulk); later runs
fetch only what changed since the newest stored update (minus a day). A killed run resumes where it
stopped. Exit status: 0 done, 1 the source stopped us (what was committed is kept), 2 bad input,
3 another sync of this database is running.
"""

from __future__ import annotations

import argparse
import re
import sys
import time
from typing import Any

import orjson

from trialfinder.cli.subcommand import CLIError, finish_parser, open_existing, write_json


def _interval(text: str) -> float:
    m = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([smhd]?)\s*", text or "")
    if not m:
        raise argparse.ArgumentTypeError(f"expected a duration such as 24h, 30m or 3600s, got {text!r}")
    return float(m.group(1)) * {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400}[m.group(2)]


def register(sub: Any) -> None:
    from trialfinder.sources.ctgov_api import DEFAULT_BASE_URL

    p = sub.add_parser("sync", help="fetch new and changed studies from ClinicalTrials.gov (or any API v2 server)",
                       description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--api", default=DEFAULT_BASE_URL, metavar="URL", help=f"API v2 base URL (default {DEFAULT_BASE_URL})")
    p.add_argument("--bulk", metavar="FILE_OR_URL", help="fill an empty database from the bulk ctg-studies.json.zip first")
    p.add_argument("--rate", type=float, default=1.0, metavar="R", help="requests per second at most (default 1; 0: no limit)")
    p.add_argument("--page-size", type=int, default=1000, metavar="N", help="studies per page asked for (default 1000)")
    p.add_argument("--timeout", type=float, default=60.0, metavar="S", help="seconds to wait for an answer (default 60)")
    p.add_argument("--retries", type=int, default=6, metavar="N", help="attempts per request before stopping (default 6)")
    p.add_argument("--contact", metavar="EMAIL", help="contact address sent in the User-Agent (registries ask for one)")
    p.add_argument("--reconcile", action="store_true",
                   help="also walk the source's id list and flag stored studies it no longer has")
    p.add_argument("--every", type=_interval, metavar="INTERVAL", help="run again every INTERVAL (e.g. 24h) until stopped")
    p.add_argument("--no-alerts", action="store_true", help="do not deliver saved-search alerts after the sync")
    finish_parser(p, cmd_sync, json="print the result as JSON")

    p = sub.add_parser("history", help="every stored version of a study, with field-level changes")
    p.add_argument("nct_id", metavar="NCTID")
    finish_parser(p, cmd_history, json=True)


def _once(args: argparse.Namespace) -> int:
    import trialfinder
    from trialfinder.sources.ctgov_api import CtgovClient, RetryPolicy
    from trialfinder.store import resolve_db
    from trialfinder.sync import SyncLock, SyncStopped, sync

    target = resolve_db(args.db)
    if args.rate < 0:
        raise CLIError("--rate must be 0 (no limit) or more")
    def say(text: str) -> None:
        print(f"sync: {text}", file=sys.stderr, flush=True)

    client = CtgovClient(base_url=args.api, rate=args.rate, timeout=args.timeout, contact=args.contact,
                         retry=RetryPolicy(max_attempts=max(1, args.retries)), on_event=say)
    with trialfinder.open_store(target) as store, SyncLock(store):
        bulk_info = None
        if args.bulk:
            from trialfinder.ingest import print_summary
            from trialfinder.sync.bulk import load_bulk

            bulk = load_bulk(store, args.bulk, work_dir=store.index_path().parent, contact=args.contact,
                             progress=sys.stderr)
            print_summary(bulk, sys.stderr)
            bulk_info = {"source": args.bulk, "summary": bulk.counts.summary()}
        status = 0
        try:
            result = sync(store, client, page_size=args.page_size, reconcile=args.reconcile, progress=say)
        except SyncStopped as exc:
            result, status = exc.result, 1
            print(f"trialfinder: error: {exc}", file=sys.stderr)
        result.bulk = bulk_info
        if status == 0 and not args.no_alerts and store.alerts():
            from trialfinder.alerts.deliver import SmtpSettings, deliver_all

            result.alerts = deliver_all(store, smtp=SmtpSettings.from_env())
    if args.json:
        write_json(result.to_dict())
    else:
        for r in result.ingest.rejections[:20]:
            print(f"rejected: {r}", file=sys.stderr)
        for a in result.alerts:
            print(f"alert {a['name']}: {a['new']} new, {a['changed']} changed, {a['gone']} gone"
                  + "".join(f"; {k} {a[k]}" for k in ("webhook", "email") if k in a), file=sys.stderr)
        print(f"sync: {result.pages} pages, {result.requests} requests, {result.seconds:.1f} s"
              + (" -- stopped early; run it again to continue" if status else ""), file=sys.stderr)
        print(result.summary())
    return status


def cmd_sync(args: argparse.Namespace) -> int:
    from trialfinder.sync import SyncBusy

    while True:
        try:
            status = _once(args)
        except SyncBusy as exc:
            if not args.every:
                print(f"trialfinder: error: {exc}", file=sys.stderr)
                return 3
            print(f"sync: {exc}; trying again at the next interval", file=sys.stderr)
            status = 3
        if not args.every:
            return status
        args.bulk = None  # a bulk load fills the database once
        print(f"sync: next run in {args.every:.0f} s", file=sys.stderr, flush=True)
        time.sleep(args.every)


def cmd_history(args: argparse.Namespace) -> int:
    from trialfinder.history import study_history

    nct = args.nct_id.strip().upper()
    with open_existing(args.db) as store:
        resolved = store.resolve_id(nct) or nct
        history = study_history(store, resolved)
    if history is None:
        raise CLIError(f"study {nct} not found", 1)
    if args.json:
        write_json(history)
        return 0
    versions = history["versions"]
    print(f"{history['nctId']}: {len(versions)} version{'s' if len(versions) != 1 else ''} stored")
    for i, v in enumerate(versions, 1):
        head = (f"{i}. last updated at the registry {v['lastUpdatePostDate'] or '(no date)'}, stored "
                f"{v['storedAt'] or '(unknown)'}{' (current)' if v['current'] else ''}")
        print(head)
        if i == 1:
            continue
        if v["summary"]:
            print(f"   {v['summary']}")
        for c in v["changes"][:40]:
            print(f"   {c['op']:>7} {c['path']}: {_short(c['old'])} -> {_short(c['new'])}")
        if len(v["changes"]) > 40:
            print(f"   ... and {len(v['changes']) - 40} more (see --json)")
    return 0


def _short(value: Any, limit: int = 80) -> str:
    text = value if isinstance(value, str) else orjson.dumps(value).decode()
    return text if len(text) <= limit else text[: limit - 1] + "…"
