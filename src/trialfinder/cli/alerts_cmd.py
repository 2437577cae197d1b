"""``trialfinder alerts``: saved searches that report new, changed and gone studies.

  trialfinder alerts add lupus --query "query.cond=lupus&filter.overallStatus=RECRUITING"
  trialfinder alerts check lupus --json     # since the previous check, then marked seen
"""

from __future__ import annotations

import argparse
from typing import Any

from trialfinder.cli.subcommand import finish_parser, open_existing, write_json


def register(sub: Any) -> None:
    p = sub.add_parser("alerts", help="saved searches with alerts: add, list, remove, check",
                       description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    asub = p.add_subparsers(dest="alerts_command", required=True, metavar="ACTION")
    a = asub.add_parser("add", help="save a search (API v2 query parameters)")
    a.add_argument("name", metavar="NAME")
    a.add_argument("--query", required=True, metavar="QUERYSTRING",
                   help='API v2 parameters as in a search URL, e.g. "query.cond=lupus&filter.overallStatus=RECRUITING"')
    a.add_argument("--webhook", metavar="URL", help="POST each report as JSON here after every sync")
    a.add_argument("--email", metavar="ADDRESS", help="e-mail each report here after every sync (TRIALFINDER_SMTP_*)")
    finish_parser(a, cmd_add)
    finish_parser(asub.add_parser("list", help="the saved searches"), cmd_list, json=True)
    r = asub.add_parser("remove", help="delete a saved search")
    r.add_argument("name", metavar="NAME")
    finish_parser(r, cmd_remove)
    c = asub.add_parser("check", help="what is new, changed or gone since the previous check (then marked seen)")
    c.add_argument("name", nargs="?", metavar="NAME", help="one saved search (default: all)")
    c.add_argument("--json", action="store_true")
    c.add_argument("--peek", action="store_true", help="do not mark what is reported as seen")
    finish_parser(c, cmd_check)


def cmd_add(args: argparse.Namespace) -> int:
    import trialfinder
    from trialfinder.alerts import add_alert

    # a saved search may come before the first sync (an empty database matches nothing yet)
    with trialfinder.open_store(args.db) as store:
        doc = add_alert(store, args.name, args.query, webhook=args.webhook, email=args.email)
    print(f"saved search {doc['name']!r}: {len(doc['seen'])} studies match now; 'trialfinder alerts check "
          f"{doc['name']}' reports what changes from here")
    return 0


def cmd_list(args: argparse.Namespace) -> int:
    from trialfinder.alerts import list_alerts

    with open_existing(args.db) as store:
        rows = list_alerts(store)
    if args.json:
        write_json(rows)
        return 0
    if not rows:
        print("no saved searches (add one with 'trialfinder alerts add NAME --query ...')")
    for r in rows:
        delivery = ", ".join(f"{k} {r[k]}" for k in ("webhook", "email") if r.get(k))
        print(f"{r['name']}: {r['query']} ({r['matching']} matching at the last check {r['checkedAt']})"
              + (f"; delivers to {delivery}" if delivery else ""))
    return 0


def cmd_remove(args: argparse.Namespace) -> int:
    from trialfinder.alerts import remove_alert

    with open_existing(args.db) as store:
        remove_alert(store, args.name)
    print(f"removed saved search {args.name!r}")
    return 0


def cmd_check(args: argparse.Namespace) -> int:
    from trialfinder.alerts import check_alert

    with open_existing(args.db) as store:
        names = [args.name] if args.name else [a["name"] for a in store.alerts()]
        reports = [check_alert(store, n, mark_seen=not args.peek) for n in names]
    if args.json:
        out: Any = reports[0] if args.name else reports
        write_json(out)
        return 0
    for rep in reports:
        n = len(rep["new"]) + len(rep["changed"]) + len(rep["gone"])
        print(f"{rep['name']}: {len(rep['new'])} new, {len(rep['changed'])} changed, {len(rep['gone'])} gone "
              f"since {rep['since']}")
        if not n:
            continue
        for item in rep["details"]["new"]:
            print(f"  new      {item['nctId']}  {item['title']}")
        for item in rep["changed"]:
            print(f"  changed  {item['nctId']}  {item['description']}")
        for item in rep["details"]["gone"]:
            print(f"  gone     {item['nctId']}  {item['description']}")
    return 0
