"""Connection settings of the PostgreSQL backend, the shared connection pools, and where the index lives.

Settings come from the database URL's query parameters, else the environment, else defaults chosen so a
web node answers 503 within a few seconds when the server is gone and recovers by itself when it is
back (see ``docs/postgresql.md``):

========================  ===================================  ========  =============================
URL parameter             environment variable                 default   meaning
========================  ===================================  ========  =============================
``pool_size``             ``TRIALFINDER_PG_POOL_SIZE``         10        connections per process
``connect_timeout``       ``TRIALFINDER_PG_CONNECT_TIMEOUT``   3         seconds to connect, and to wait
                                                                         for a free pooled connection
``statement_timeout``     ``TRIALFINDER_PG_STATEMENT_TIMEOUT`` 30        seconds a read statement may
                                                                         run (0: no limit); writers
                                                                         have none unless set
========================  ===================================  ========  =============================

Every other URL parameter (``sslmode``, ``application_name``, ...) goes to libpq as it is.
"""

from __future__ import annotations

import hashlib
import os
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from trialfinder.store.base import StoreError

#: Our own parameters, taken out of the URL before it goes to libpq (``connect_timeout`` goes to both).
_OWN = ("pool_size", "statement_timeout")
DEFAULTS = {"pool_size": 10.0, "connect_timeout": 3.0, "statement_timeout": 30.0}


@dataclass(frozen=True)
class PgConfig:
    """A parsed ``postgresql://`` URL: what libpq gets, plus our pool and timeout settings."""

    url: str
    conninfo: str
    host: str
    port: int
    dbname: str
    pool_size: int
    connect_timeout: float
    #: seconds; None means "not set" (readers then use the default, writers none)
    statement_timeout: float | None

    def display(self) -> str:
        """The URL without a password (for messages and ``stats``)."""
        parts = urlsplit(self.url)
        netloc = parts.netloc
        if "@" in netloc:
            user, _, host = netloc.rpartition("@")
            netloc = user.split(":", 1)[0] + "@" + host
        return urlunsplit((parts.scheme, netloc, parts.path, "", ""))


def _number(name: str, raw: str, *, minimum: float) -> float:
    try:
        value = float(raw)
    except ValueError:
        raise StoreError(f"PostgreSQL setting {name}: expected a number, got {raw!r}") from None
    if value < minimum:
        raise StoreError(f"PostgreSQL setting {name}: must be at least {minimum:g}, got {raw!r}")
    return value


def parse_url(url: str) -> PgConfig:
    """Split a ``postgresql://`` (or ``postgres://``) URL into libpq's part and ours."""
    parts = urlsplit(url)
    if parts.scheme not in ("postgresql", "postgres"):
        raise StoreError(f"not a PostgreSQL URL: {url!r}")
    query = parse_qsl(parts.query, keep_blank_values=True)
    ours = {k: v for k, v in query if k in (*_OWN, "connect_timeout")}
    rest = [(k, v) for k, v in query if k not in ours]
    settings: dict[str, float | None] = {}
    for name, minimum in (("pool_size", 1), ("connect_timeout", 1), ("statement_timeout", 0)):
        raw = ours.get(name) or os.environ.get(f"TRIALFINDER_PG_{name.upper()}")
        settings[name] = _number(name, raw, minimum=minimum) if raw else None
    connect_timeout = settings["connect_timeout"] or DEFAULTS["connect_timeout"]
    # libpq reads whole seconds (and treats 1 as 2); our pool waits use the exact value
    rest.append(("connect_timeout", str(max(2, round(connect_timeout)))))
    conninfo = urlunsplit(("postgresql", parts.netloc, parts.path, urlencode(rest), ""))
    try:
        port = parts.port or 5432
    except ValueError:
        raise StoreError(f"bad port in {url!r}") from None
    dbname = parts.path.lstrip("/") or os.environ.get("PGDATABASE") or (parts.username or "postgres")
    return PgConfig(url=url, conninfo=conninfo, host=parts.hostname or os.environ.get("PGHOST", "localhost"),
                    port=port, dbname=dbname, pool_size=int(settings["pool_size"] or DEFAULTS["pool_size"]),
                    connect_timeout=connect_timeout, statement_timeout=settings["statement_timeout"])


def index_dir(cfg: PgConfig) -> Path:
    """Where this node keeps the text index of a PostgreSQL database.

    ``$TRIALFINDER_INDEX_DIR`` when set, else ``$XDG_CACHE_HOME/trialfinder/index/<dbname>-<hash>``: the
    index is derived and rebuildable, so it belongs in a cache, one per database (host, port, name).
    """
    explicit = os.environ.get("TRIALFINDER_INDEX_DIR")
    if explicit:
        return Path(explicit).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    key = hashlib.sha256(f"{cfg.host}:{cfg.port}/{cfg.dbname}".encode()).hexdigest()[:16]
    safe = "".join(c if c.isalnum() or c in "-_" else "_" for c in cfg.dbname)[:40]
    return Path(base) / "trialfinder" / "index" / f"{safe}-{key}"


# -- pools, shared by every store of a process ---------------------------------------------------------


class _Shared:
    def __init__(self, pool: Any) -> None:
        self.pool = pool
        self.users = 0


_POOLS: dict[tuple[str, bool, int], _Shared] = {}
_POOLS_LOCK = threading.Lock()


def _configure(readonly: bool, statement_timeout: float | None) -> Any:
    def configure(conn: Any) -> None:
        timeout = statement_timeout if statement_timeout is not None else (
            DEFAULTS["statement_timeout"] if readonly else 0.0)
        conn.execute(f"SET statement_timeout = {int(timeout * 1000)}")
        if readonly:
            conn.execute("SET default_transaction_read_only = on")
    return configure


def acquire_pool(cfg: PgConfig, readonly: bool) -> Any:
    """The process's pool for this database and mode (one per process: a forked child makes its own)."""
    from psycopg_pool import ConnectionPool

    key = (cfg.conninfo + f"#st={cfg.statement_timeout}&ps={cfg.pool_size}", readonly, os.getpid())
    with _POOLS_LOCK:
        shared = _POOLS.get(key)
        if shared is None:
            pool = ConnectionPool(
                cfg.conninfo, min_size=1, max_size=max(1, cfg.pool_size), open=False,
                kwargs={"autocommit": True}, configure=_configure(readonly, cfg.statement_timeout),
                timeout=cfg.connect_timeout,
                # give up a reconnection attempt quickly: the next request starts a fresh one, so a node
                # recovers within seconds of the server's return instead of after a long backoff
                reconnect_timeout=max(2.0, cfg.connect_timeout),
                max_idle=300.0, name=f"trialfinder-{'ro' if readonly else 'rw'}")
            pool.open(wait=False)
            shared = _POOLS[key] = _Shared(pool)
        shared.users += 1
        return shared.pool


def release_pool(pool: Any) -> None:
    """One store is done with ``pool``; the last one closes it."""
    with _POOLS_LOCK:
        for key, shared in list(_POOLS.items()):
            if shared.pool is pool:
                shared.users -= 1
                if shared.users <= 0:
                    del _POOLS[key]
                    break
                return
        else:
            return
    pool.close(timeout=2.0)
