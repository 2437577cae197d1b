"""``trialfinder serve``: the web app and JSON API, served by uvicorn.

A database that ``serve`` creates is filled from the bundled sample (never one that has seen an ingest),
so the first command of the README gives a working finder offline. With one worker the server answers
at once, with a "loading" page, while the sample loads (progress on the terminal); with several, the
database is prepared first (once, in this process), so workers never race to load it. Workers build
their app from the environment (``Settings.to_env``), because uvicorn can only hand worker processes an
import string.

Links that must be absolute (RSS) use ``--base-url`` (``TRIALFINDER_BASE_URL``), never the request's
``Host``; only ``--allowed-host`` names (default on loopback: localhost, 127.0.0.1, ::1) are served.
"""

from __future__ import annotations

import argparse
import os
import sys
from typing import Any


def register(sub: Any) -> None:
    """Add the ``serve`` subcommand."""
    from trialfinder.cli.subcommand import add_db_options

    p = sub.add_parser("serve", help="run the web app and the ClinicalTrials.gov-compatible JSON API",
                       description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    p.add_argument("--port", type=int, default=8000, help="port (default 8000)")
    p.add_argument("--workers", type=int, default=1, help="worker processes (default 1)")
    p.add_argument("--no-sample", action="store_true", help="do not load the bundled sample into an empty "
                                                            "database")
    p.add_argument("--base-url", metavar="URL", default=os.environ.get("TRIALFINDER_BASE_URL", ""),
                   help="public address of the site for absolute links, e.g. https://trials.example.org "
                        "(default $TRIALFINDER_BASE_URL, else the address the server listens on)")
    p.add_argument("--allowed-host", action="append", metavar="NAME", default=None,
                   help="Host header value to serve (repeatable; *.example.org for subdomains, * for any). "
                        "Default: $TRIALFINDER_ALLOWED_HOSTS, else the --base-url host plus, on loopback, "
                        "localhost, 127.0.0.1 and ::1")
    p.add_argument("--log-level", default="info", choices=("critical", "error", "warning", "info", "debug"))
    add_db_options(p)
    p.set_defaults(func=cmd_serve)


def cmd_serve(args: argparse.Namespace) -> int:
    """Prepare the database, then run uvicorn (blocks until interrupted)."""
    import uvicorn

    from trialfinder.cli.subcommand import CLIError
    from trialfinder.web.db import prepare_database
    from trialfinder.web.settings import Settings

    if not 0 < args.port < 65536:
        raise CLIError(f"--port must be between 1 and 65535, got {args.port}")
    if args.workers < 1:
        raise CLIError(f"--workers must be at least 1, got {args.workers}")
    from trialfinder.web.server import uvicorn_options

    settings = Settings.from_env().with_(db=args.db, auto_load_sample=not args.no_sample,
                                         base_url=args.base_url or "",
                                         allowed_hosts=_allowed_hosts(args))
    try:
        from trialfinder.web.app import _public_origin

        _public_origin(settings)
    except ValueError as exc:
        raise CLIError(f"--base-url: {exc}") from None
    options = {"host": args.host, "port": args.port, "log_level": args.log_level, **uvicorn_options(settings)}
    shown = settings.base_url or f"http://{args.host}:{args.port}"
    if args.workers == 1:
        from trialfinder.store import resolve_db
        from trialfinder.web.app import create_app

        target = resolve_db(args.db)
        print(f"trialfinder: serving {target} on {shown} (Ctrl-C to stop)", flush=True)
        uvicorn.run(create_app(settings.with_(db=target, prepare_in_background=True)), **options)
        return 0
    target = prepare_database(args.db, load_sample=not args.no_sample, progress=sys.stderr)
    settings = settings.with_(db=target, auto_load_sample=False)
    print(f"trialfinder: serving {target} on {shown} (Ctrl-C to stop)", flush=True)
    os.environ.update(settings.to_env())
    os.environ["TRIALFINDER_DB"] = target
    uvicorn.run("trialfinder.web.app:app_from_env", factory=True, workers=args.workers, **options)
    return 0


LOOPBACK = ("localhost", "127.0.0.1", "::1")


def _allowed_hosts(args: argparse.Namespace) -> str:
    """The ``Host`` values to serve: the flags, else the environment, else loopback names when the server
    listens on loopback (a page elsewhere cannot then reach it by DNS rebinding), else any."""
    if args.allowed_host:
        return ",".join(args.allowed_host)
    if os.environ.get("TRIALFINDER_ALLOWED_HOSTS"):
        return os.environ["TRIALFINDER_ALLOWED_HOSTS"]
    if args.host in LOOPBACK or args.host.startswith("127."):
        return ",".join(dict.fromkeys((*LOOPBACK, args.host)))
    if not args.base_url:
        print("trialfinder: warning: listening beyond loopback without --base-url or --allowed-host: any Host "
              "header is served (links still never use it)", file=sys.stderr, flush=True)
    return "*" if not args.base_url else ""
