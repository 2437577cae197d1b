"""SQLite side of sync state, record history and saved searches (issue 12).

Why a separate module: these tables are small and independent of the search-facing schema in
``store.py``; keeping their SQL together makes them easy to port to another backend.

History costs nothing for a first load: the current version of a study stays where it always was
(``study_records``); only when an upsert *replaces* it is the old version copied, compressed, into
``study_versions`` -- inside the same transaction, so no version is ever lost. A version already kept
(same content hash) is kept once.
"""

from __future__ import annotations

import sqlite3
import zlib
from collections.abc import Iterable
from typing import Any

import orjson

from trialfinder.store.base import RECORD_DEFLATE, StoredVersion, decode_record


def _compressed(blob: bytes) -> bytes:
    """A record blob in the DEFLATE encoding (already compressed ones are kept as they are)."""
    if blob[:1] == RECORD_DEFLATE:
        return blob
    comp = zlib.compressobj(6, zlib.DEFLATED, -15)
    return RECORD_DEFLATE + comp.compress(blob) + comp.flush()


def archive_version(cur: sqlite3.Cursor, sid: int, legacy_record: bool, now: str) -> None:
    """Copy the stored version of study ``sid`` into ``study_versions`` before it is replaced."""
    source = "s.record FROM studies s" if legacy_record else "r.record FROM studies s JOIN study_records r ON r.sid = s.sid"
    row = cur.execute(f"SELECT s.nct_id, s.content_hash, s.last_update_posted, s.ingested_at, {source} "
                      "WHERE s.sid = ?", (sid,)).fetchone()
    if row is None:
        return
    nct, digest, updated, stored_at, blob = row
    cur.execute("INSERT OR IGNORE INTO study_versions (nct_id, content_hash, last_update, stored_at, replaced_at, "
                "record) VALUES (?, ?, ?, ?, ?, ?)", (nct, digest, updated, stored_at, now, _compressed(bytes(blob))))


def _missing_table(exc: sqlite3.OperationalError) -> bool:
    """A read-only connection to a database made before these tables existed."""
    return "no such table" in str(exc)


class HistoryMixin:
    """The issue-12 methods of :class:`~trialfinder.store.base.Store` for :class:`SQLiteStore`."""

    conn: sqlite3.Connection
    _rec: str
    _rec_from: str

    # -- metadata and sync --------------------------------------------------------------------------

    def set_meta(self, key: str, value: str | None) -> None:
        if value is None:
            self.conn.execute("DELETE FROM meta WHERE key = ?", (key,))
        else:
            self.conn.execute("INSERT OR REPLACE INTO meta(key, value) VALUES (?, ?)", (key, value))

    def newest_update(self) -> str | None:
        row = self.conn.execute("SELECT max(last_update_posted) FROM studies").fetchone()
        return row[0] if row and row[0] else None

    def version_keys(self, nct_ids: Iterable[str] | None = None) -> dict[str, tuple[str | None, str]]:
        sql = "SELECT nct_id, last_update_posted, content_hash FROM studies"
        if nct_ids is None:
            return {n: (d, h) for n, d, h in self.conn.execute(sql)}
        ids = list(dict.fromkeys(nct_ids))
        out: dict[str, tuple[str | None, str]] = {}
        for i in range(0, len(ids), 500):
            part = ids[i:i + 500]
            out.update((n, (d, h)) for n, d, h in self.conn.execute(
                f"{sql} WHERE nct_id IN ({', '.join('?' * len(part))})", part))
        return out

    def set_absent(self, nct_ids: Iterable[str], since: str | None) -> int:
        ids = list(dict.fromkeys(nct_ids))
        changed = 0
        with self.conn:
            for i in range(0, len(ids), 500):
                part = ids[i:i + 500]
                if since is None:
                    cur = self.conn.execute(
                        f"DELETE FROM study_absent WHERE nct_id IN ({', '.join('?' * len(part))})", part)
                else:
                    cur = self.conn.executemany("INSERT OR IGNORE INTO study_absent (nct_id, since) VALUES (?, ?)",
                                                [(n, since) for n in part])
                changed += max(0, cur.rowcount)
        return changed

    def absent(self) -> dict[str, str]:
        try:
            return dict(self.conn.execute("SELECT nct_id, since FROM study_absent"))
        except sqlite3.OperationalError as exc:
            if _missing_table(exc):
                return {}
            raise

    # -- history ------------------------------------------------------------------------------------

    def versions(self, nct_id: str) -> list[StoredVersion]:
        out: list[StoredVersion] = []
        try:
            rows = self.conn.execute(
                "SELECT content_hash, last_update, stored_at, record FROM study_versions WHERE nct_id = ? "
                "ORDER BY coalesce(stored_at, ''), vid", (nct_id,)).fetchall()
        except sqlite3.OperationalError as exc:
            if not _missing_table(exc):
                raise
            rows = []
        for digest, updated, stored_at, blob in rows:
            out.append(StoredVersion(nct_id, digest, updated, stored_at, decode_record(blob)))
        row = self.conn.execute(
            f"SELECT s.content_hash, s.last_update_posted, s.ingested_at, {self._rec} FROM {self._rec_from} "
            "WHERE s.nct_id = ?", (nct_id,)).fetchone()
        if row is not None:
            out.append(StoredVersion(nct_id, row[0], row[1], row[2], decode_record(row[3]), current=True))
        return out

    def dump_versions(self) -> list[tuple[str, str, str | None, str | None, str | None, bytes]]:
        try:
            rows = self.conn.execute("SELECT nct_id, content_hash, last_update, stored_at, replaced_at, record "
                                     "FROM study_versions ORDER BY vid").fetchall()
        except sqlite3.OperationalError as exc:
            if _missing_table(exc):
                return []
            raise
        return [(n, h, u, s, r, bytes(b)) for n, h, u, s, r, b in rows]

    def add_versions(self, rows: Iterable[tuple[str, str, str | None, str | None, str | None, bytes]]) -> None:
        with self.conn:
            self.conn.executemany("INSERT OR IGNORE INTO study_versions (nct_id, content_hash, last_update, "
                                  "stored_at, replaced_at, record) VALUES (?, ?, ?, ?, ?, ?)", list(rows))

    # -- saved searches -----------------------------------------------------------------------------

    def alert(self, name: str) -> dict[str, Any] | None:
        try:
            row = self.conn.execute("SELECT doc FROM alerts WHERE name = ?", (name,)).fetchone()
        except sqlite3.OperationalError as exc:
            if _missing_table(exc):
                return None
            raise
        return orjson.loads(row[0]) if row else None

    def alerts(self) -> list[dict[str, Any]]:
        try:
            return [orjson.loads(d) for (d,) in self.conn.execute("SELECT doc FROM alerts ORDER BY name")]
        except sqlite3.OperationalError as exc:
            if _missing_table(exc):
                return []
            raise

    def put_alert(self, name: str, doc: dict[str, Any]) -> None:
        self.conn.execute("INSERT OR REPLACE INTO alerts (name, doc) VALUES (?, ?)",
                          (name, orjson.dumps({**doc, "name": name}).decode()))

    def delete_alert(self, name: str) -> bool:
        return self.conn.execute("DELETE FROM alerts WHERE name = ?", (name,)).rowcount > 0
