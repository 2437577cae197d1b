"""Storage: one interface (:class:`Store`), an SQLite backend today, PostgreSQL later.

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
    UpsertCounts,
    decode_record,
)

__all__ = ["BudgetExceeded", "PreparedStudy", "Store", "StoreError", "UpsertCounts", "decode_record", "default_db_path",
           "open_store", "resolve_db"]


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
    """Open (creating if needed) the database named by a path or URL."""
    from trialfinder.store.sqlite import SQLiteStore

    target = resolve_db(db)
    if target.startswith(("postgresql://", "postgres://")):
        raise StoreError("PostgreSQL databases are not supported yet; use a SQLite file path")
    if target.startswith("sqlite:///"):
        target = target[len("sqlite:///"):]
    elif "://" in target:
        raise StoreError(f"unsupported database URL {target!r}: use a file path or sqlite:///PATH")
    return SQLiteStore(target, readonly=readonly)
