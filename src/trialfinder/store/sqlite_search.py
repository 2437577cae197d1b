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

from trialfinder.search.plan import FIELD_WEIGHTS, Plan, RawResults, TextClause
from trialfinder.store.sqlite import FTS_COLUMNS

EARTH_KM = 6371.0088
_TOKEN = re.compile(r"\w+", re.UNICODE)

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
    """Execute a plan (see :mod:`trialfinder.store.sqlite_exec`)."""
    from trialfinder.store.sqlite_exec import run_search_indexed

    return run_search_indexed(conn, plan)


def lookup_synonyms(conn: sqlite3.Connection, term: str, kinds: tuple[str, ...]) -> list[tuple[str, str, int]]:
    """(kind, expansion, number of studies asserting it) for a folded term."""
    marks = ", ".join("?" * len(kinds))
    return [tuple(r) for r in conn.execute(
        f"SELECT kind, expansion, count(*) FROM synonyms WHERE term = ? AND kind IN ({marks}) "
        "GROUP BY 1, 2 ORDER BY 3 DESC, 2 LIMIT 12", (term, *kinds))]
