"""Compiling a search :class:`~trialfinder.search.plan.Plan` to SQLite (FTS5, R*Tree) and running it.

Every value from a request reaches SQLite as a bound parameter or as a quoted FTS5 string built from
alphanumeric tokens only; SQL text is assembled from fixed fragments in this module, never from request
strings.
"""

from __future__ import annotations

import math
import re
import sqlite3
from typing import Any

from trialfinder.search.plan import FIELD_WEIGHTS, Plan, RawHit, RawResults, TextClause
from trialfinder.store.sqlite import FTS_COLUMNS

EARTH_KM = 6371.0088
_TOKEN = re.compile(r"\w+", re.UNICODE)

#: Sort keys -> SQL over ``s`` (studies) and ``c`` (candidates); NULLs always last.
SORT_SQL = {
    "relevance": "c.rank",
    "first_posted": "s.first_posted",
    "last_update": "s.last_update_posted",
    "start_date": "s.start_date",
    "enrollment": "s.enrollment",
    "distance": "c.dist",
    "nct_id": "s.nct_id",
}

FACET_DIMENSIONS = ("status", "phase", "study_type", "sex", "age_group", "funder_type", "intervention_type",
                    "country", "condition")

RECRUITING_SITE = "RECRUITING"


def fts_quote(words: tuple[str, ...], phrase: bool) -> str:
    """FTS5 text for a tuple of words: a quoted phrase, or quoted words all required."""
    tokens = [t for w in words for t in _TOKEN.findall(w)]
    if not tokens:
        return ""
    if phrase:
        return '"' + " ".join(tokens) + '"'
    return " AND ".join(f'"{t}"' for t in tokens)


def clause_fts(clause: TextClause) -> str:
    alts = [fts_quote(a, p) for a, p in zip(clause.alternatives, clause.phrase_flags, strict=True)]
    alts = [f"({a})" for a in alts if a]
    if not alts:
        return ""
    cols = " ".join(f for f in clause.fields if f in FTS_COLUMNS)
    return "{" + cols + "} : (" + " OR ".join(alts) + ")"


def _haversine(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    p1, p2 = math.radians(lat1), math.radians(lat2)
    dp, dl = p2 - p1, math.radians(lon2 - lon1)
    a = math.sin(dp / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(dl / 2) ** 2
    return 2 * EARTH_KM * math.asin(min(1.0, math.sqrt(a)))


def install_functions(conn: sqlite3.Connection) -> None:
    conn.create_function("tf_dist_km", 4, _haversine, deterministic=True)


class Compiler:
    """Collects SQL fragments and their parameters for one plan."""

    def __init__(self, plan: Plan) -> None:
        self.plan = plan

    # -- filters ------------------------------------------------------------------------------------

    @staticmethod
    def dimension(dim: str, values: tuple[Any, ...]) -> list[tuple[str, list[Any]]]:
        """SQL conditions (over ``s``) for one filter dimension's allowed values."""

        def inlist(col: str, vals: tuple[Any, ...]) -> tuple[str, list[Any]]:
            return f"{col} IN ({', '.join('?' * len(vals))})", list(vals)

        columns = {"status": "s.overall_status", "study_type": "s.study_type", "funder_type": "s.lead_class",
                   "ids": "s.nct_id"}
        if dim in columns:
            return [inlist(columns[dim], values)]
        if dim == "sex":
            # a trial admits a sex when it takes that sex or all sexes
            return [inlist("s.sex", tuple(dict.fromkeys((*values, "ALL"))))]
        if dim in ("phase", "age_group"):
            col = "s.phases" if dim == "phase" else "s.std_ages"
            ors = " OR ".join(f"(' ' || {col} || ' ') LIKE ?" for _ in values)
            return [(f"({ors})", [f"% {v} %" for v in values])]
        if dim in ("healthy", "has_results"):
            col = "s.healthy_volunteers" if dim == "healthy" else "s.has_results"
            return [(f"{col} = ?", [1 if values[0] else 0])]
        if dim == "intervention_type":
            return [(f"EXISTS (SELECT 1 FROM interventions i WHERE i.sid = s.sid AND i.type IN "
                     f"({', '.join('?' * len(values))}))", list(values))]
        if dim in ("country", "state", "city"):
            ors = " OR ".join(f"l.{dim} = ? COLLATE NOCASE" for _ in values)
            return [(f"EXISTS (SELECT 1 FROM locations l WHERE l.sid = s.sid AND ({ors}))", list(values))]
        raise ValueError(f"unknown filter dimension {dim!r}")

    def filter_fragments(self) -> list[tuple[str, str, list[Any]]]:
        """(dimension, SQL over ``s``, params) for every filter of the plan."""
        p = self.plan
        out: list[tuple[str, str, list[Any]]] = []
        for key, values in p.filters.items():
            if values:
                dim = key.split(".")[-1]  # "agg.status" (aggFilters) and "status" AND together
                out.extend((dim, sql, params) for sql, params in self.dimension(dim, tuple(values)))
        if p.age is not None:
            out.append(("age", "(s.min_age IS NULL OR s.min_age <= ?) AND (s.max_age IS NULL OR s.max_age >= ?)",
                        [p.age, p.age]))
        for col, (lo, hi) in p.date_ranges.items():
            if col not in ("start_date", "first_posted", "last_update_posted", "completion_date"):
                continue
            if lo:
                out.append((col, f"s.{col} >= ?", [lo]))
            if hi:
                out.append((col, f"s.{col} <= ?", [hi]))
        if p.id_terms:
            ors = []
            params: list[Any] = []
            for t in p.id_terms:
                ors.append("s.nct_id = ? OR s.sid IN (SELECT sid FROM identifiers WHERE value = ? COLLATE NOCASE)")
                params += [t.upper(), t]
            out.append(("id", "(" + " OR ".join(ors) + ")", params))
        if p.advanced is not None:
            from trialfinder.store.sqlite_essie import compile_essie

            sql, params = compile_essie(p.advanced)
            out.append(("advanced", sql, params))
        return out


def _weights_sql() -> str:
    return ", ".join(str(FIELD_WEIGHTS[c]) for c in FTS_COLUMNS)


def run_search(conn: sqlite3.Connection, plan: Plan) -> RawResults:
    """Execute a plan: candidates (text, geography), filters, sort, page, total and facets."""
    comp = Compiler(plan)
    fts = " AND ".join(x for x in (clause_fts(c) for c in plan.text) if x)
    if plan.text and not fts:
        return RawResults([], 0 if plan.count_total else None, {} if plan.facets else None, False)
    use_cand = bool(fts) or plan.geo is not None
    cur = conn.cursor()
    if use_cand:
        cur.execute("CREATE TEMP TABLE IF NOT EXISTS _cand (sid INTEGER PRIMARY KEY, rank REAL, dist REAL, lid INTEGER)")
        cur.execute("DELETE FROM _cand")
        _fill_candidates(cur, plan, fts)
    frags = comp.filter_fragments()
    base_from = "studies s JOIN _cand c ON c.sid = s.sid" if use_cand else "studies s"

    def where(exclude: str | None = None) -> tuple[str, list[Any]]:
        parts = [(sql, params) for dim, sql, params in frags if dim != exclude]
        if not parts:
            return "", []
        return " WHERE " + " AND ".join(f"({sql})" for sql, _ in parts), [x for _, ps in parts for x in ps]

    order = _order_sql(plan, use_cand, bool(fts))
    w_sql, w_params = where()
    cols = "s.sid, s.nct_id, " + ("c.rank, c.dist, c.lid" if use_cand else "NULL, NULL, NULL")
    rows = cur.execute(
        f"SELECT {cols} FROM {base_from}{w_sql} ORDER BY {order} LIMIT ? OFFSET ?",
        [*w_params, plan.limit + 1, plan.offset],
    ).fetchall()
    has_more = len(rows) > plan.limit
    rows = rows[: plan.limit]
    hits = []
    for sid, nct, rank, dist, lid in rows:
        nearest = None
        if lid is not None:
            r = cur.execute("SELECT facility, city, state, zip, country, status, lat, lon, geo_derived "
                            "FROM locations WHERE lid = ?", (lid,)).fetchone()
            if r:
                keys = ("facility", "city", "state", "zip", "country", "status", "lat", "lon", "derived")
                nearest = dict(zip(keys, r, strict=True))
                nearest["derived"] = bool(nearest["derived"])
                nearest["distance_km"] = round(dist, 2) if dist is not None else None
        hits.append(RawHit(sid, nct, -rank if rank is not None else None, dist, nearest))
    total = None
    if plan.count_total or plan.facets:
        total = cur.execute(f"SELECT count(*) FROM {base_from}{w_sql}", w_params).fetchone()[0]
    facets = _facets(cur, plan, base_from, where) if plan.facets else None
    return RawResults(hits, total, facets, has_more)


def _fill_candidates(cur: sqlite3.Cursor, plan: Plan, fts: str) -> None:
    geo = plan.geo
    geo_sql = ""
    geo_params: list[Any] = []
    if geo is not None:
        dlat = geo.radius_km / 111.0
        coslat = max(math.cos(math.radians(geo.lat)), 0.01)
        dlon = min(180.0, geo.radius_km / (111.0 * coslat))
        status_sql = " AND l.status = ?" if geo.recruiting_sites_only else ""
        geo_sql = (
            "SELECT sid, lid, dist FROM (SELECT l.sid AS sid, l.lid AS lid, "
            "tf_dist_km(?, ?, l.lat, l.lon) AS dist FROM location_points p JOIN locations l ON l.lid = p.lid "
            "WHERE p.min_lat BETWEEN ? AND ? AND p.min_lon BETWEEN ? AND ?" + status_sql + ") WHERE dist <= ?"
        )
        geo_params = [geo.lat, geo.lon, geo.lat - dlat, geo.lat + dlat, geo.lon - dlon, geo.lon + dlon]
        if geo.recruiting_sites_only:
            geo_params.append(RECRUITING_SITE)
        geo_params.append(geo.radius_km)
    weights = _weights_sql()
    if fts and geo is None:
        cur.execute(
            f"INSERT INTO _cand (sid, rank) SELECT rowid, bm25(study_text, {weights}) FROM study_text "
            "WHERE study_text MATCH ?", (fts,))
    elif geo is not None and not fts:
        cur.execute(
            f"INSERT INTO _cand (sid, dist, lid) SELECT sid, min(dist), lid FROM ({geo_sql}) GROUP BY sid",
            geo_params)
    else:
        cur.execute(
            f"INSERT INTO _cand (sid, rank, dist, lid) SELECT g.sid, t.rank, g.dist, g.lid FROM "
            f"(SELECT sid, min(dist) AS dist, lid FROM ({geo_sql}) GROUP BY sid) g JOIN "
            f"(SELECT rowid AS sid, bm25(study_text, {weights}) AS rank FROM study_text WHERE study_text MATCH ?) t "
            "ON t.sid = g.sid", [*geo_params, fts])


def _order_sql(plan: Plan, use_cand: bool, has_text: bool) -> str:
    sort = list(plan.sort)
    if not sort:
        if has_text:
            sort = [("relevance", "asc")]
        elif plan.geo is not None:
            sort = [("distance", "asc")]
        else:
            sort = [("last_update", "desc")]
    parts = []
    for key, direction in sort:
        col = SORT_SQL.get(key)
        if col is None or (col.startswith("c.") and not use_cand):
            continue
        if key == "relevance":
            # bm25 is negative (lower is better); recruiting studies get a boost because patients can join them
            col = ("(c.rank * CASE WHEN s.overall_status IN ('RECRUITING', 'NOT_YET_RECRUITING', "
                   "'ENROLLING_BY_INVITATION', 'AVAILABLE') THEN 1.15 ELSE 1.0 END)")
            direction = "asc"
        d = "DESC" if direction == "desc" else "ASC"
        parts.append(f"{col} IS NULL, {col} {d}")
    parts.append("s.nct_id ASC")
    return ", ".join(parts)


def _facets(cur: sqlite3.Cursor, plan: Plan, base_from: str, where: Any) -> dict[str, list[tuple[str, int]]]:
    out: dict[str, list[tuple[str, int]]] = {}
    simple = {"status": "s.overall_status", "study_type": "s.study_type", "sex": "s.sex",
              "funder_type": "s.lead_class"}
    for dim, col in simple.items():
        w_sql, params = where(dim)
        rows = cur.execute(f"SELECT {col}, count(*) FROM {base_from}{w_sql} GROUP BY 1", params).fetchall()
        out[dim] = sorted(((v, n) for v, n in rows if v), key=lambda x: (-x[1], x[0]))
    for dim, col in (("phase", "s.phases"), ("age_group", "s.std_ages")):
        w_sql, params = where(dim)
        counts: dict[str, int] = {}
        for v, n in cur.execute(f"SELECT {col}, count(*) FROM {base_from}{w_sql} GROUP BY 1", params):
            for part in (v or "").split():
                counts[part] = counts.get(part, 0) + n
        out[dim] = sorted(counts.items(), key=lambda x: (-x[1], x[0]))
    w_sql, params = where("intervention_type")
    out["intervention_type"] = [tuple(r) for r in cur.execute(
        f"SELECT i.type, count(DISTINCT s.sid) FROM {base_from} JOIN interventions i ON i.sid = s.sid{w_sql} "
        "GROUP BY 1 ORDER BY 2 DESC, 1", params) if r[0]]
    w_sql, params = where("country")
    out["country"] = [tuple(r) for r in cur.execute(
        f"SELECT l.country, count(DISTINCT s.sid) FROM {base_from} JOIN locations l ON l.sid = s.sid{w_sql} "
        "GROUP BY 1 ORDER BY 2 DESC, 1 LIMIT ?", [*params, plan.facet_top * 3]) if r[0]]
    w_sql, params = where("condition")
    out["condition"] = [tuple(r) for r in cur.execute(
        f"SELECT cd.term, count(*) FROM {base_from} JOIN conditions cd ON cd.sid = s.sid AND cd.kind = 'condition'"
        f"{w_sql} GROUP BY 1 ORDER BY 2 DESC, 1 LIMIT ?", [*params, plan.facet_top])]
    return out


def lookup_synonyms(conn: sqlite3.Connection, term: str, kinds: tuple[str, ...]) -> list[tuple[str, str, int]]:
    """(kind, expansion, number of studies asserting it) for a folded term."""
    marks = ", ".join("?" * len(kinds))
    return [tuple(r) for r in conn.execute(
        f"SELECT kind, expansion, count(*) FROM synonyms WHERE term = ? AND kind IN ({marks}) "
        "GROUP BY 1, 2 ORDER BY 3 DESC, 2 LIMIT 12", (term, *kinds))]
