"""What every ``trialfinder`` subcommand is built from: its database options, the database it opens, its
``--json`` output, and the one-line error it raises for the user.

Why a module of its own: each subcommand module (``sync_cmd``, ``alerts_cmd``, ``db_cmd``, ...) needs
these, and the package's ``__init__`` imports those modules to register them; keeping the shared pieces
here lets every module import them at the top without a cycle, and keeps ``--db`` worded one way.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson

import trialfinder
from trialfinder.store import Store, resolve_db


class CLIError(Exception):
    """An error to show the user as one line, with an exit status."""

    def __init__(self, message: str, status: int = 2) -> None:
        super().__init__(message)
        self.status = status


def add_db_options(p: argparse.ArgumentParser) -> None:
    """``--db`` and ``--index-dir``, the same wording on every subcommand that opens a database."""
    p.add_argument("--db", help="database: a SQLite file or a postgresql://user@host:port/dbname URL "
                                "(default: $TRIALFINDER_DB or the per-user SQLite file, see 'trialfinder stats')")
    p.add_argument("--index-dir", metavar="DIR",
                   help="where this machine keeps the text index of a PostgreSQL database (default: "
                        "$TRIALFINDER_INDEX_DIR or $XDG_CACHE_HOME/trialfinder/index/...; a SQLite database "
                        "keeps it beside the file)")


def finish_parser(p: argparse.ArgumentParser, func: Callable[[argparse.Namespace], int], *,
                  json: bool | str = False, db: bool = True) -> argparse.ArgumentParser:
    """The last options of a subcommand's parser, after its own: ``--json`` (``json`` is its help text,
    or True for none), the database options, and the function that runs it."""
    if json:
        p.add_argument("--json", action="store_true", help=json if isinstance(json, str) else None)
    if db:
        add_db_options(p)
    p.set_defaults(func=func)
    return p


def open_existing(db: str | None) -> Store:
    """The database a reading command needs: a missing SQLite file is an error that says what to do,
    not a new empty database."""
    target = resolve_db(db)
    if "://" not in target and not Path(target).exists():
        raise CLIError(f"no database at {target}: run 'trialfinder ingest --sample' (or give --db)", 1)
    return trialfinder.open_store(target)


def write_json(data: Any, *, indent: bool = True, default: Callable[[Any], Any] | None = None) -> None:
    """``data`` as JSON on stdout, one document and a newline (indented unless ``indent`` is False)."""
    option = orjson.OPT_INDENT_2 if indent else None
    sys.stdout.buffer.write(orjson.dumps(data, option=option, default=default) + b"\n")


def check_workers(workers: int | None) -> None:
    """``--workers N`` of the commands that fan out to processes: at least 1 when given."""
    if workers is not None and workers < 1:
        raise CLIError(f"--workers must be at least 1, got {workers}")
