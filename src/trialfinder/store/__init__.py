"""Storage: one interface (:class:`Store`) and two backends, SQLite (a file) and PostgreSQL (a URL).

``open_store(db)`` picks the backend from the database argument so that callers never name one.
"""

from __future__ import annotations

import os
from pathlib import Path

from trialfinder.store.base import (
    BudgetExceeded,
    PreparedStudy,
    Store,
    StoreError,
    StoreUnavailable,
    UpsertCounts,
    decode_record,
)

__all__ = ["BudgetExceeded", "PreparedStudy", "Store", "StoreError", "StoreUnavailable", "UpsertCounts",
           "decode_record", "default_db_path", "is_postgres_url", "open_store", "resolve_db"]

#: URL schemes of the PostgreSQL backend.
POSTGRES_SCHEMES = ("postgresql://", "postgres://")


def is_postgres_url(db: str | os.PathLike[str] | None) -> bool:
    """Whether a database argument names a PostgreSQL database."""
    return str(db or "").startswith(POSTGRES_SCHEMES)


def default_db_path() -> Path:
    """The per-user default database: ``$XDG_DATA_HOME/trialfinder/trialfinder.sqlite``
    (``~/.local/share/trialfinder/trialfinder.sqlite`` when ``XDG_DATA_HOME`` is unset)."""
    base = os.environ.get("XDG_DATA_HOME") or os.path.join(os.path.expanduser("~"), ".local", "share")
    return Path(base) / "trialfinder" / "trialfinder.sqlite"


def resolve_db(db: str | os.PathLike[str] | None) -> str:
    """The database to use: the argument, else ``$TRIALFINDER_DB``, else :func:`default_db_path`."""
    if db:
        return str(db)
    return os.environ.get("TRIALFINDER_DB") or str(default_db_path())


def open_store(db: str | os.PathLike[str] | None = None, *, readonly: bool = False) -> Store:
    """Open (creating if needed) the database named by a path or URL.

    A file path or ``sqlite:///PATH`` opens SQLite; ``postgresql://user@host:port/dbname`` (or
    ``postgres://``) opens PostgreSQL, creating or migrating its schema when opened for writing.
    """
    from trialfinder.store.sqlite import SQLiteStore

    target = resolve_db(db)
    if is_postgres_url(target):
        from trialfinder.store.postgres import PostgresStore

        return PostgresStore(target, readonly=readonly)
    if target.startswith("sqlite:///"):
        target = target[len("sqlite:///"):]
    elif "://" in target:
        raise StoreError(f"unsupported database URL {target!r}: use a file path or sqlite:///PATH")
    return SQLiteStore(target, readonly=readonly)
