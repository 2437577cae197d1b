"""PostgreSQL side of sync state, record history and saved searches (issue 12): the SQLite backend's
``store/sqlite/history.py`` in PostgreSQL's dialect, over the same three tables (migration 2).

As there, a first load costs nothing: only an upsert that *replaces* a stored version copies the old one,
compressed, into ``study_versions``, inside the same transaction (see :func:`archive_version`), once per
content hash.
"""

from __future__ import annotations

import zlib
from collections.abc import Callable, Iterable
from typing import Any, TypeVar

import orjson

from trialfinder.store.base import RECORD_DEFLATE, StoredVersion, decode_record

T = TypeVar("T")


def _compressed(blob: bytes) -> bytes:
    if blob[:1] == RECORD_DEFLATE:
        return blob
    comp = zlib.compressobj(6, zlib.DEFLATED, -15)
    return RECORD_DEFLATE + comp.compress(blob) + comp.flush()


def archive_version(conn: Any, sid: int, now: str) -> None:
    """Copy the stored version of study ``sid`` into ``study_versions`` before it is replaced."""
    row = conn.execute("SELECT s.nct_id, s.content_hash, s.last_update_posted, s.ingested_at, r.record "
                       "FROM studies s JOIN study_records r ON r.sid = s.sid WHERE s.sid = %s", (sid,)).fetchone()
    if row is None:
        return
    nct, digest, updated, stored_at, blob = row
    conn.execute("INSERT INTO study_versions (nct_id, content_hash, last_update, stored_at, replaced_at, record) "
                 "VALUES (%s, %s, %s, %s, %s, %s) ON CONFLICT (nct_id, content_hash) DO NOTHING",
                 (nct, digest, updated, stored_at, now, _compressed(bytes(blob))))


class PgHistoryMixin:
    """The issue-12 methods of :class:`~trialfinder.store.base.Store` for the PostgreSQL store."""

    def _read(self, fn: Callable[[Any], T]) -> T:  # provided by PostgresStore
        raise NotImplementedError

    def _write(self, fn: Callable[[Any], T]) -> T:
        """Run ``fn`` in one committed transaction on a pooled connection."""
        with self._conn() as c, c.transaction():  # type: ignore[attr-defined]
            return fn(c)

    def try_lock(self, name: str) -> Callable[[], None] | None:
        """A session advisory lock on a connection of its own, held until released: the server drops it
        when the holder's connection goes (a killed process), and it holds across machines."""
        import hashlib

        import psycopg

        key = int.from_bytes(hashlib.sha1(f"trialfinder:{name}".encode()).digest()[:8], "big", signed=True)
        conn = psycopg.connect(self.cfg.conninfo, autocommit=True)  # type: ignore[attr-defined]
        row = conn.execute("SELECT pg_try_advisory_lock(%s)", (key,)).fetchone()
        if not row or not row[0]:
            conn.close()
            return None

        def release() -> None:
            try:
                conn.execute("SELECT pg_advisory_unlock(%s)", (key,))
            finally:
                conn.close()
        return release

    # -- metadata and sync --------------------------------------------------------------------------

    def set_meta(self, key: str, value: str | None) -> None:
        def run(c: Any) -> None:
            if value is None:
                c.execute("DELETE FROM meta WHERE key = %s", (key,))
            else:
                c.execute("INSERT INTO meta (key, value) VALUES (%s, %s) ON CONFLICT (key) DO UPDATE "
                          "SET value = excluded.value", (key, value))
        self._write(run)

    def newest_update(self) -> str | None:
        row = self._read(lambda c: c.execute("SELECT max(last_update_posted) FROM studies").fetchone())
        return row[0] if row and row[0] else None

    def version_keys(self, nct_ids: Iterable[str] | None = None) -> dict[str, tuple[str | None, str]]:
        sql = "SELECT nct_id, last_update_posted, content_hash FROM studies"
        if nct_ids is None:
            rows = self._read(lambda c: c.execute(sql).fetchall())
        else:
            ids = list(dict.fromkeys(nct_ids))
            rows = self._read(lambda c: c.execute(f"{sql} WHERE nct_id = ANY(%s)", (ids,)).fetchall())
        return {n: (d, h) for n, d, h in rows}

    def set_absent(self, nct_ids: Iterable[str], since: str | None) -> int:
        ids = list(dict.fromkeys(nct_ids))

        def run(c: Any) -> int:
            if since is None:
                return max(0, c.execute("DELETE FROM study_absent WHERE nct_id = ANY(%s)", (ids,)).rowcount)
            return max(0, c.execute("INSERT INTO study_absent (nct_id, since) SELECT unnest(%s::text[]), %s "
                                    "ON CONFLICT (nct_id) DO NOTHING", (ids, since)).rowcount)
        return self._write(run) if ids else 0

    def absent(self) -> dict[str, str]:
        return dict(self._read(lambda c: c.execute("SELECT nct_id, since FROM study_absent").fetchall()))

    # -- history ------------------------------------------------------------------------------------

    def versions(self, nct_id: str) -> list[StoredVersion]:
        def run(c: Any) -> tuple[list[tuple], tuple | None]:
            old = c.execute("SELECT content_hash, last_update, stored_at, record FROM study_versions "
                            "WHERE nct_id = %s ORDER BY coalesce(stored_at, ''), vid", (nct_id,)).fetchall()
            cur = c.execute("SELECT s.content_hash, s.last_update_posted, s.ingested_at, r.record FROM studies s "
                            "JOIN study_records r ON r.sid = s.sid WHERE s.nct_id = %s", (nct_id,)).fetchone()
            return old, cur

        old, cur = self._read(run)
        out = [StoredVersion(nct_id, d, u, s, decode_record(b)) for d, u, s, b in old]
        if cur is not None:
            out.append(StoredVersion(nct_id, cur[0], cur[1], cur[2], decode_record(cur[3]), current=True))
        return out

    def dump_versions(self) -> list[tuple[str, str, str | None, str | None, str | None, bytes]]:
        """Every archived version as stored (for ``trialfinder copy``)."""
        return [(n, h, u, s, r, bytes(b)) for n, h, u, s, r, b in self._read(lambda c: c.execute(
            "SELECT nct_id, content_hash, last_update, stored_at, replaced_at, record FROM study_versions "
            "ORDER BY vid").fetchall())]

    def add_versions(self, rows: Iterable[tuple[str, str, str | None, str | None, str | None, bytes]]) -> None:
        batch = list(rows)

        def run(c: Any) -> None:
            with c.cursor() as cur:
                cur.executemany("INSERT INTO study_versions (nct_id, content_hash, last_update, stored_at, "
                                "replaced_at, record) VALUES (%s, %s, %s, %s, %s, %s) "
                                "ON CONFLICT (nct_id, content_hash) DO NOTHING", batch)
        if batch:
            self._write(run)

    # -- saved searches -----------------------------------------------------------------------------

    def alert(self, name: str) -> dict[str, Any] | None:
        row = self._read(lambda c: c.execute("SELECT doc FROM alerts WHERE name = %s", (name,)).fetchone())
        return orjson.loads(row[0]) if row else None

    def alerts(self) -> list[dict[str, Any]]:
        return [orjson.loads(d) for (d,) in self._read(lambda c: c.execute(
            "SELECT doc FROM alerts ORDER BY name COLLATE \"C\"").fetchall())]

    def put_alert(self, name: str, doc: dict[str, Any]) -> None:
        text = orjson.dumps({**doc, "name": name}).decode()
        self._write(lambda c: c.execute("INSERT INTO alerts (name, doc) VALUES (%s, %s) ON CONFLICT (name) "
                                        "DO UPDATE SET doc = excluded.doc", (name, text)))

    def delete_alert(self, name: str) -> bool:
        return bool(self._write(lambda c: c.execute("DELETE FROM alerts WHERE name = %s", (name,)).rowcount > 0))
