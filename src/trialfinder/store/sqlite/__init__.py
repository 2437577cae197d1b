"""The SQLite backend (the default): one database file; see :mod:`trialfinder.store.sqlite.store`."""

from trialfinder.store.sqlite.store import SQLiteStore

__all__ = ["SQLiteStore"]
