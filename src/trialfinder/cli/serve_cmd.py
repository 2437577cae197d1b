"""``trialfinder serve``: the web app and JSON API, served by uvicorn.

An empty database is filled from the bundled sample before the server starts (once, in this process),
so the first command of the README gives a working finder offline, and so several workers never race to
load it. Workers build their app from the environment (``Settings.to_env``), because uvicorn can only
hand worker processes an import string.
"""

from __future__ import annotations

import argparse
import os
from typing import Any


def register(sub: Any) -> None:
    """Add the ``serve`` subcommand."""
    from trialfinder.cli import _add_db

    p = sub.add_parser("serve", help="run the web app and the ClinicalTrials.gov-compatible JSON API",
                       description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    p.add_argument("--port", type=int, default=8000, help="port (default 8000)")
    p.add_argument("--workers", type=int, default=1, help="worker processes (default 1)")
    p.add_argument("--no-sample", action="store_true", help="do not load the bundled sample into an empty "
                                                            "database")
    p.add_argument("--log-level", default="info", choices=("critical", "error", "warning", "info", "debug"))
    _add_db(p)
    p.set_defaults(func=cmd_serve)


def cmd_serve(args: argparse.Namespace) -> int:
    """Prepare the database, then run uvicorn (blocks until interrupted)."""
    import uvicorn

    from trialfinder.cli import CLIError
    from trialfinder.web.db import prepare_database
    from trialfinder.web.settings import Settings

    if not 0 < args.port < 65536:
        raise CLIError(f"--port must be between 1 and 65535, got {args.port}")
    if args.workers < 1:
        raise CLIError(f"--workers must be at least 1, got {args.workers}")
    target = prepare_database(args.db, load_sample=not args.no_sample)
    settings = Settings(db=target, auto_load_sample=False)
    print(f"trialfinder: serving {target} on http://{args.host}:{args.port} (Ctrl-C to stop)", flush=True)
    if args.workers == 1:
        from trialfinder.web.app import create_app

        uvicorn.run(create_app(settings), host=args.host, port=args.port, log_level=args.log_level,
                    proxy_headers=False, server_header=False)
        return 0
    os.environ.update(settings.to_env())
    os.environ["TRIALFINDER_DB"] = target
    uvicorn.run("trialfinder.web.app:app_from_env", factory=True, host=args.host, port=args.port,
                workers=args.workers, log_level=args.log_level, proxy_headers=False, server_header=False)
    return 0
