"""The PostgreSQL backend: one shared database for several nodes; see :mod:`trialfinder.store.postgres.store`.

Tables and migrations: :mod:`trialfinder.store.postgres.schema`; URL parameters, environment variables,
pools and where each node keeps its text index: :mod:`trialfinder.store.postgres.config`.
"""

from trialfinder.store.postgres.store import PostgresStore, status, upgrade

__all__ = ["PostgresStore", "status", "upgrade"]
