"""Running a search plan on SQLite with the in-memory study index.

SQLite does what it is fast at: the FTS5 match with weighted BM25, the R*Tree radius query, and the rare
filters that need joins (state, city, identifiers, Essie expressions). Filters on study facts, facets,
sorting and paging run on the columnar :class:`~trialfinder.search.index.StudyIndex`, so facet counts
"under the rest of the query" cost a few array operations instead of nine SQL scans.
"""

from __future__ import annotations

import os
import sqlite3
import threading
from collections import OrderedDict
from collections.abc import Iterator
from typing import Any

import numpy as np

from trialfinder.search.index import (
    STUDY_COLUMNS,
    StudyIndex,
    age_mask,
    date_mask,
    dimension_mask,
    facet_counts,
    get_index,
    within_radius,
)
from trialfinder.search.plan import Plan, RawHit, RawResults
from trialfinder.store.sqlite_search import (
    FACET_DIMENSIONS,
    RECRUITING_SITE,
    Compiler,
    _weights_sql,
    clause_fts,
)

#: Statuses a patient can still join: ranked a little higher at equal text relevance.
OPEN_STATUSES = ("RECRUITING", "NOT_YET_RECRUITING", "ENROLLING_BY_INVITATION", "AVAILABLE")
OPEN_BOOST = 1.15


class TextCache:
    """The most recent full-text results (row positions and BM25 scores), per index version.

    Why: ranking every match with FTS5's bm25 is most of a search's cost on a large registry (a
    300,000-match query takes about 0.4 s), and users repeat the same text while they page, sort and
    click facets. Entries belong to one :class:`StudyIndex` version, so new data never meets old
    results. Bounded in bytes (``TRIALFINDER_TEXT_CACHE_MB``, default 64; 0 turns it off).
    """

    def __init__(self, max_bytes: int | None = None) -> None:
        self._max = max_bytes
        self._entries: OrderedDict[tuple[str, str, str], tuple[np.ndarray, np.ndarray]] = OrderedDict()
        self._bytes = 0
        self._lock = threading.Lock()

    @property
    def max_bytes(self) -> int:
        if self._max is None:
            raw = os.environ.get("TRIALFINDER_TEXT_CACHE_MB", "64")
            try:
                self._max = max(0, int(float(raw) * 2**20))
            except ValueError:
                raise ValueError(f"TRIALFINDER_TEXT_CACHE_MB must be a number of megabytes, not {raw!r}") from None
        return self._max

    @max_bytes.setter
    def max_bytes(self, value: int) -> None:
        with self._lock:
            self._max = value
            self._evict()

    def get(self, key: tuple[str, str, str]) -> tuple[np.ndarray, np.ndarray] | None:
        with self._lock:
            hit = self._entries.get(key)
            if hit is not None:
                self._entries.move_to_end(key)
            return hit

    def put(self, key: tuple[str, str, str], value: tuple[np.ndarray, np.ndarray]) -> None:
        size = value[0].nbytes + value[1].nbytes
        if size > self.max_bytes:
            return
        with self._lock:
            old = self._entries.pop(key, None)
            if old is not None:
                self._bytes -= old[0].nbytes + old[1].nbytes
            self._entries[key] = value
            self._bytes += size
            self._evict()

    def _evict(self) -> None:
        while self._entries and self._bytes > (self._max or 0):
            _, (a, b) = self._entries.popitem(last=False)
            self._bytes -= a.nbytes + b.nbytes

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()
            self._bytes = 0


#: One per process, shared by its threads (like the study index).
TEXT_CACHE = TextCache()


def text_hits(conn: sqlite3.Connection, idx: StudyIndex, fts: str, url: str) -> tuple[np.ndarray, np.ndarray]:
    """Row positions in ``idx`` of the studies matching an FTS5 expression, and their weighted bm25."""
    key = (url, str(idx.version), fts)
    hit = TEXT_CACHE.get(key)
    if hit is not None:
        return hit
    rows = conn.execute(f"SELECT rowid, bm25(study_text, {_weights_sql()}) FROM study_text "
                        "WHERE study_text MATCH ?", (fts,)).fetchall()
    if rows:
        arr = np.asarray(rows, dtype=np.float64)
        sids = arr[:, 0].astype(np.int64)
        # a study added since the index was built (by an ingest running now) is not in it yet
        inside = sids < len(idx.pos_of_sid)
        pos = np.full(len(sids), -1, dtype=np.int64)
        pos[inside] = idx.pos_of_sid[sids[inside]]
        keep = pos >= 0
        result = (pos[keep], arr[keep, 1])
    else:
        result = (np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.float64))
    result[0].setflags(write=False)
    result[1].setflags(write=False)
    TEXT_CACHE.put(key, result)
    return result


class _StoreView:
    """What :func:`get_index` needs from a store, for a bare connection."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self.conn = conn
        self.url = conn.execute("PRAGMA database_list").fetchone()[2] or f"memory:{id(conn)}"

    def data_version(self) -> str:
        return data_version(self.conn)

    def study_arrays(self) -> Iterator[tuple[str, list]]:
        # the build runs on its own read-only connection: it is a one-off cost of the process, not of
        # the request that happens to trigger it, so it must not count against a request's work budget
        if self.url.startswith("memory:"):
            yield from study_arrays(self.conn)
            return
        conn = sqlite3.connect(f"file:{self.url}?mode=ro", uri=True)
        try:
            yield from study_arrays(conn)
        finally:
            conn.close()


def data_version(conn: sqlite3.Connection) -> str:
    """Changes when studies are added and when an ingest starts or ends (cheap: three index lookups).

    Updates in place during a running ingest show in filters and facets when that ingest ends.
    """
    row = conn.execute(
        "SELECT (SELECT max(sid) FROM studies), (SELECT max(id) FROM ingests), "
        "(SELECT value FROM meta WHERE key = 'data_timestamp')"
    ).fetchone()
    return ":".join(str(x) for x in row)


def study_arrays(conn: sqlite3.Connection, chunk: int = 50_000) -> Iterator[tuple[str, list]]:
    """The filterable columns of every study, in chunks (see :func:`trialfinder.search.index.build_index`).

    Chunks keep the memory of an index build at a few tens of MB above the finished arrays.
    """
    queries = (
        ("studies", f"SELECT {', '.join(STUDY_COLUMNS)} FROM studies ORDER BY sid", ()),
        ("itypes", "SELECT sid, group_concat(DISTINCT type) FROM interventions WHERE type != '' GROUP BY sid", ()),
        ("countries", "SELECT DISTINCT sid, country FROM locations WHERE country != ''", ()),
        ("conditions", "SELECT DISTINCT sid, term FROM conditions WHERE kind = 'condition'", ()),
        ("sites", "SELECT lid, sid, lat, lon, status = ? FROM locations WHERE lat IS NOT NULL AND lon IS NOT NULL",
         (RECRUITING_SITE,)),
    )
    for kind, sql, params in queries:
        cur = conn.execute(sql, params)
        while rows := cur.fetchmany(chunk):
            if kind == "itypes":
                rows = [(sid, (types or "").replace(",", " ")) for sid, types in rows]
            yield kind, rows


def _sql_mask(conn: sqlite3.Connection, idx: StudyIndex, sql: str, params: list[Any]) -> np.ndarray:
    sids = [r[0] for r in conn.execute(f"SELECT s.sid FROM studies s WHERE {sql}", params)]
    mask = np.zeros(idx.size, dtype=bool)
    mask[idx.positions(sids)] = True
    return mask


def run_search_indexed(conn: sqlite3.Connection, plan: Plan) -> RawResults:
    """Execute a plan: SQLite for text and geography, the study index for the rest."""
    view = _StoreView(conn)
    idx = get_index(view)
    n = idx.size
    fts = " AND ".join(x for x in (clause_fts(c) for c in plan.text) if x)
    if (plan.text and not fts) or n == 0:
        return RawResults([], 0 if plan.count_total or plan.facets else None, {} if plan.facets else None, False)
    if fts or plan.geo is not None:
        # work on the candidates only (far fewer rows than the registry for most queries), without
        # registry-sized temporary arrays
        rows_all, rank, dist, lid = _candidates(conn, idx, fts, plan, view.url)
        need_pairs = bool(plan.facets) or any(k.split(".")[-1] == "country" for k, v in plan.filters.items() if v)
        idx = idx.subset(rows_all, pairs=need_pairs)
        n = idx.size
    else:
        rank = np.zeros(n, dtype=np.float64)
        dist = np.full(n, np.inf)
        lid = np.full(n, -1, dtype=np.int64)
    cand = np.ones(n, dtype=bool)
    masks: dict[str, np.ndarray] = {}

    def add(dim: str, mask: np.ndarray) -> None:
        masks[dim] = masks[dim] & mask if dim in masks else mask

    for key, values in plan.filters.items():
        if not values:
            continue
        dim = key.split(".")[-1]
        m = dimension_mask(idx, dim, tuple(values))
        if m is None:  # state, city, ids: SQL on the normalised tables
            for sql, params in Compiler.dimension(dim, tuple(values)):
                m = _sql_mask(conn, idx, sql, params) if m is None else m & _sql_mask(conn, idx, sql, params)
        add(dim, m)
    if plan.age is not None:
        add("age", age_mask(idx, plan.age))
    for col, (lo, hi) in plan.date_ranges.items():
        if col in idx.dates:
            add(col, date_mask(idx, col, lo, hi))
    if plan.id_terms or plan.advanced is not None:
        sub = Plan(id_terms=plan.id_terms, advanced=plan.advanced)
        for dim, sql, params in Compiler(sub).filter_fragments():
            add(dim, _sql_mask(conn, idx, sql, params))

    total_mask = cand.copy()
    for m in masks.values():
        total_mask &= m
    sel = np.flatnonzero(total_mask)
    order = _order(idx, plan, sel, rank, dist, bool(fts))
    start, stop = plan.offset, plan.offset + plan.limit
    page = order[start:stop]
    has_more = len(order) > stop
    hits = []
    for p in page:
        p = int(p)
        nearest = _nearest(conn, int(lid[p]), float(dist[p])) if lid[p] >= 0 else None
        hits.append(RawHit(int(idx.sids[p]), idx.nct_id(p), float(-rank[p]) if fts else None,
                           float(dist[p]) if np.isfinite(dist[p]) else None, nearest))
    total = int(len(sel)) if plan.count_total or plan.facets else None
    facets = None
    if plan.facets:
        facets = {}
        for dim in FACET_DIMENSIONS:
            rows_mask = cand.copy()
            for d, m in masks.items():
                if d != dim:
                    rows_mask &= m
            facets[dim] = facet_counts(idx, dim, rows_mask, plan.facet_top)
    return RawResults(hits, total, facets, has_more)


def _candidates(conn: sqlite3.Connection, idx: StudyIndex, fts: str, plan: Plan,
                url: str) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(sorted row positions, bm25, distance km, nearest site lid) of the text and radius matches."""
    rows: np.ndarray | None = None
    rank = dist = lid = None
    if fts:
        rows, rank = text_hits(conn, idx, fts, url)
        if len(rows) > 1 and np.any(rows[1:] <= rows[:-1]):
            order = np.argsort(rows, kind="stable")
            rows, rank = rows[order], rank[order]
    if plan.geo is not None:
        g = plan.geo
        gpos, d, site = within_radius(idx, g.lat, g.lon, g.radius_km, g.recruiting_sites_only)  # sorted, unique
        if rows is None:
            rows = gpos
        else:
            rows, in_text, in_geo = np.intersect1d(rows, gpos, assume_unique=True, return_indices=True)
            rank, d, site = rank[in_text], d[in_geo], site[in_geo]
        dist, lid = d, site
    if rows is None:
        raise ValueError("_candidates needs a text expression or a radius")
    n = len(rows)
    return (rows, rank if rank is not None else np.zeros(n, dtype=np.float64),
            dist if dist is not None else np.full(n, np.inf), lid if lid is not None else np.full(n, -1, dtype=np.int64))


def _order(idx: StudyIndex, plan: Plan, sel: np.ndarray, rank: np.ndarray, dist: np.ndarray,
           has_text: bool) -> np.ndarray:
    """Row positions of ``sel`` in result order (ties broken by store row id, which is stable)."""
    sort = list(plan.sort)
    if not sort:
        sort = [("relevance", "asc")] if has_text else [("distance", "asc")] if plan.geo else [
            ("last_update", "desc")]
    keys: list[np.ndarray] = [sel]  # lexsort: last key is primary
    for key, direction in reversed(sort):
        desc = direction == "desc"
        if key == "relevance":
            if not has_text:
                continue
            open_codes = [i for i, v in enumerate(idx.vocab["status"]) if v in OPEN_STATUSES]
            boost = np.where(np.isin(idx.codes["status"][sel], open_codes), OPEN_BOOST, 1.0)
            keys.append(rank[sel] * boost)  # bm25 is negative: lower is better
            continue
        if key == "distance":
            if plan.geo is None:
                continue
            keys.append(dist[sel])
            continue
        col = {"first_posted": "first_posted", "last_update": "last_update_posted", "start_date": "start_date"}.get(key)
        if col is not None:
            values = idx.dates[col][sel].astype(np.int64)
        elif key == "enrollment":
            values = idx.enrollment[sel]
        else:
            continue
        missing = values <= 0 if col else values < 0
        keys.append(-values if desc else values)
        keys.append(missing.astype(np.int8))  # missing values last, whatever the direction
    if len(keys) == 1:
        return sel
    return sel[np.lexsort(keys)]


def _nearest(conn: sqlite3.Connection, lid: int, dist: float) -> dict | None:
    r = conn.execute("SELECT facility, city, state, zip, country, status, lat, lon, geo_derived "
                     "FROM locations WHERE lid = ?", (lid,)).fetchone()
    if not r:
        return None
    keys = ("facility", "city", "state", "zip", "country", "status", "lat", "lon", "derived")
    out = dict(zip(keys, r, strict=True))
    out["derived"] = bool(out["derived"])
    out["distance_km"] = round(dist, 2)
    return out
