"""Running a search :class:`~trialfinder.search.plan.Plan` on one snapshot of the text index.

Everything a search answers comes from the same snapshot: the page (top k by BM25 with block-max WAND,
or by a fast field for date sorts), the total count, and the facet counts "under the rest of the
query" (tantivy term aggregations, one per facet dimension that has a filter of its own, one for all
the others). Radius filters and the nearest site come from the site coordinates
(:mod:`trialfinder.search.geo`) as a set of studies the index query is restricted to. Records are then
read from the store by NCT id.

Ranking: each text clause is a disjunction of its alternatives (what was typed, synonym phrases);
each alternative requires all its words, each word scored in every field of the clause with the
field's weight (:data:`~trialfinder.index.schema.FIELD_WEIGHTS`); open studies get a small multiplier
(:data:`~trialfinder.model.statuses.OPEN_BOOST`). Filters add no score.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import tantivy

from trialfinder.index.document import date_int
from trialfinder.index.follow import current_snapshot
from trialfinder.index.schema import FIELD_WEIGHTS, KEY, META_KEY, analyze
from trialfinder.index.text_index import Snapshot
from trialfinder.search.essie_query import EssieCompiler
from trialfinder.search.geo import Sites, sites_for
from trialfinder.search.plan import Plan, RawHit, RawResults, TextClause

Q = tantivy.Query
Occur = tantivy.Occur

FACET_DIMENSIONS = ("status", "phase", "study_type", "sex", "age_group", "funder_type", "intervention_type",
                    "country", "condition")
_FACET_FIELD = {"status": "status", "phase": "phase", "study_type": "study_type", "sex": "sex",
                "age_group": "age_group", "funder_type": "funder_type", "intervention_type": "intervention_type",
                "country": "country", "condition": "condition"}
_SORT_FIELD = {"first_posted": "first_posted", "last_update": "last_update_posted", "start_date": "start_date",
               "enrollment": "enrollment", "nct_id": KEY}
#: Hits fetched for a sort that the index cannot do alone (distance, or a second sort key).
MAX_WINDOW = 100_000


class TextQueries:
    """Builds the scored text queries of one schema."""

    def __init__(self, schema: Any) -> None:
        self.schema = schema

    def words(self, words: tuple[str, ...], fields: tuple[str, ...], phrase: bool, *, weighted: bool = True) -> Any:
        """All words (or the phrase) in any of ``fields``, each field's score times its weight."""
        s = self.schema
        if phrase:
            tokens = [t for w in words for t in analyze(w)]
            if not tokens:
                return Q.empty_query()
            # the tantivy stub types ``words`` as an invariant list[str | tuple[int, str]]; a list[str] is valid
            per_field = [self._boost(Q.term_query(s, f, tokens[0]) if len(tokens) == 1
                                     else Q.phrase_query(s, f, tokens),  # type: ignore[arg-type]
                                     f, weighted) for f in fields]
            return per_field[0] if len(per_field) == 1 else Q.boolean_query([(Occur.Should, q) for q in per_field])
        tokens = list(dict.fromkeys(t for w in words for t in analyze(w)))
        if not tokens:
            return Q.empty_query()
        musts = []
        for tok in tokens:
            per_field = [self._boost(Q.term_query(s, f, tok), f, weighted) for f in fields]
            musts.append(per_field[0] if len(per_field) == 1 else Q.boolean_query([(Occur.Should, q) for q in per_field]))
        return musts[0] if len(musts) == 1 else Q.boolean_query([(Occur.Must, q) for q in musts])

    @staticmethod
    def _boost(q: Any, field: str, weighted: bool) -> Any:
        return Q.boost_query(q, FIELD_WEIGHTS.get(field, 1.0)) if weighted else q

    def clause(self, clause: TextClause) -> Any:
        alts = [self.words(a, clause.fields, p) for a, p in zip(clause.alternatives, clause.phrase_flags, strict=True)]
        return alts[0] if len(alts) == 1 else Q.boolean_query([(Occur.Should, q) for q in alts])


def _filter(q: Any) -> Any:
    """A query that restricts without adding to the score."""
    return Q.const_score_query(q, 0.0)


def _terms(schema: Any, field: str, values: list[Any]) -> Any:
    if not values:
        return Q.empty_query()
    if len(values) == 1:
        return Q.term_query(schema, field, values[0])
    return Q.term_set_query(schema, field, values)


def dimension_query(schema: Any, dim: str, values: tuple[Any, ...]) -> Any:
    """The index query of one filter dimension's allowed values."""
    if dim in ("status", "study_type", "funder_type", "phase", "age_group", "intervention_type"):
        return _terms(schema, dim, [str(v) for v in dict.fromkeys(values)])
    if dim == "sex":
        return _terms(schema, "sex", [str(v) for v in dict.fromkeys((*values, "ALL"))])
    if dim in ("country", "state", "city"):
        return _terms(schema, f"{dim}_lc", sorted({str(v).lower() for v in values}))
    if dim == "has_results":
        return Q.term_query(schema, "has_results", 1 if values[0] else 0)
    if dim == "healthy":
        return Q.term_query(schema, "healthy", 1 if values[0] else 0)
    if dim == "ids":
        nums = sorted({int(str(v)[3:]) for v in values if str(v).upper().startswith("NCT") and str(v)[3:].isdigit()})
        return _terms(schema, KEY, nums)
    raise ValueError(f"unknown filter dimension {dim!r}")


def run_plan(store: Any, plan: Plan, *, snapshot: Snapshot | None = None) -> RawResults:
    """Execute a plan on one index snapshot (the current one unless given)."""
    snap = snapshot if snapshot is not None else current_snapshot(store).snapshot
    schema = snap.schema
    searcher = snap.searcher
    tq = TextQueries(schema)
    sites: list[Sites] = []

    def get_sites() -> Sites:
        if not sites:
            sites.append(sites_for(store, snap.seq))
        return sites[0]

    def within(lat: float, lon: float, radius: float) -> list[int]:
        return get_sites().within(lat, lon, radius)[0].tolist()

    scored: list[Any] = [tq.clause(c) for c in plan.text]
    filters: dict[str, list[Any]] = {}

    def add(dim: str, q: Any) -> None:
        filters.setdefault(dim, []).append(q)

    for key, values in plan.filters.items():
        if values:
            add(key.split(".")[-1], dimension_query(schema, key.split(".")[-1], tuple(values)))
    if plan.age is not None:
        add("age", Q.boolean_query([
            (Occur.Must, Q.range_query(schema, "age_lo", tantivy.FieldType.Float, None, plan.age + 1e-6)),
            (Occur.Must, Q.range_query(schema, "age_hi", tantivy.FieldType.Float, plan.age - 1e-6, None))]))
    for col, (lo, hi) in plan.date_ranges.items():
        if lo or hi:
            add(col, Q.range_query(schema, col, tantivy.FieldType.Integer, date_int(lo) if lo else None,
                                   date_int(hi) if hi else None))
    if plan.id_terms:
        add("id", _terms(schema, "ids_lc", sorted({t.lower() for t in plan.id_terms})))
    if plan.advanced is not None:
        add("advanced", EssieCompiler(schema, tq.words, within).compile(plan.advanced))
    geo_ncts = geo_dist = geo_lid = None
    if plan.geo is not None:
        g = plan.geo
        if g.recruiting_sites_only:  # site status is not in the cells: list the studies
            geo_ncts, geo_dist, geo_lid = get_sites().within(g.lat, g.lon, g.radius_km, True)
            add("geo", _terms(schema, KEY, geo_ncts.tolist()))
        else:
            geo_ncts, geo_dist, geo_lid, cells, rest = get_sites().cover(g.lat, g.lon, g.radius_km)
            if cells:
                parts = [(tantivy.Occur.Should, tantivy.Query.term_set_query(schema, "geo_cell", cells))]
                if len(rest):
                    parts.append((tantivy.Occur.Should, _terms(schema, KEY, rest.tolist())))
                add("geo", tantivy.Query.boolean_query(parts))
            else:
                add("geo", _terms(schema, KEY, geo_ncts.tolist()))

    def build(skip: str | None = None) -> Any:
        parts: list[tuple[Any, Any]] = [(Occur.Must, q) for q in scored]
        for dim, qs in filters.items():
            if dim != skip:
                parts.extend((Occur.Must, _filter(q)) for q in qs)
        if not parts:
            parts.append((Occur.Must, Q.all_query()))
        parts.append((Occur.MustNot, Q.term_query(schema, KEY, META_KEY)))
        return Q.boolean_query(parts)

    query = build()
    has_text = bool(scored)
    want_count = plan.count_total or plan.facets
    sort = list(plan.sort) or ([("relevance", "asc")] if has_text else [("distance", "asc")] if plan.geo
                               else [("last_update", "desc")])
    sort = [(k, d) for k, d in sort if (k != "relevance" or has_text) and (k != "distance" or plan.geo is not None)]
    start, stop = plan.offset, plan.offset + plan.limit
    total: int | None = None
    rows: list[tuple[int, float | None]]  # (nct number, score)
    if sort and sort[0][0] == "distance" or len(sort) > 1:
        rows, total = _window_sorted(searcher, query, sort, stop, has_text, geo_ncts, geo_dist)
    elif has_text and plan.geo is not None and plan.geo.decay is not None and (not sort or sort[0][0] == "relevance"):
        rows, total = _decayed(searcher, query, plan.geo.decay, stop, geo_ncts, geo_dist)
    else:
        key, direction = sort[0] if sort else ("relevance", "asc")
        limit = max(1, stop + (0 if want_count else 1))
        if key == "relevance":
            res = searcher.search(query, limit=limit, count=want_count, weight_by_field="open_w")
        else:
            order = tantivy.Order.Desc if direction == "desc" else tantivy.Order.Asc
            res = searcher.search(query, limit=limit, count=want_count, order_by_field=_SORT_FIELD[key], order=order)
        addrs = [a for _, a in res.hits]
        nums = searcher.fast_field_values(KEY, addrs) if addrs else []
        rows = [(int(n), float(s) if key == "relevance" else None) for (s, _a), n in zip(res.hits, nums, strict=True)]
        if want_count:
            total = int(res.count)
    has_more = (total > stop) if total is not None else len(rows) > stop
    page = rows[start:stop]
    dist_of: dict[int, tuple[float, int]] = {}
    if plan.geo is not None and geo_ncts is not None and geo_dist is not None and geo_lid is not None and page:
        at = np.searchsorted(geo_ncts, [n for n, _ in page])
        for (n, _s), i in zip(page, at, strict=True):
            if i < len(geo_ncts) and geo_ncts[i] == n:
                dist_of[n] = (float(geo_dist[i]), int(geo_lid[i]))
    nearest = store.locations_by_id([lid for _d, lid in dist_of.values()]) if dist_of else {}
    hits = []
    for n, score in page:
        d = dist_of.get(n)
        near = None
        if d is not None and d[1] in nearest:
            near = dict(nearest[d[1]])
            near["distance_km"] = round(d[0], 2)
        hits.append(RawHit(0, f"NCT{n:08d}", score if has_text else None, d[0] if d else None, near))
    facets = _facets(searcher, build, filters, plan.facet_top) if plan.facets else None
    return RawResults(hits, total if want_count else None, facets, has_more)


#: At most this many hits by text score are re-scored by geoDecay (decay only lowers scores).
DECAY_WINDOW = 2000
#: The first window tried; it grows fourfold until the page is provably exact (or DECAY_WINDOW).
DECAY_FIRST = 64


def decay_factor(func: str, scale_km: float, offset_km: float, decay: float, dist_km: np.ndarray) -> np.ndarray:
    """API v2 ``geoDecay`` (Elasticsearch's decay functions): 1 within ``offset``, ``decay`` at ``scale``."""
    x = np.maximum(0.0, dist_km - offset_km)
    if func == "gauss":
        return np.exp(x * x * np.log(decay) / (scale_km * scale_km))
    if func == "linear":
        s = scale_km / (1.0 - decay)
        return np.maximum(0.0, (s - x) / s)
    return np.exp(np.log(decay) / scale_km * x)


def _decayed(searcher: Any, query: Any, decay: tuple[str, float, float, float], stop: int,
             geo_ncts: np.ndarray | None, geo_dist: np.ndarray | None) -> tuple[list[tuple[int, float | None]], int]:
    """Relevance times the distance decay of the nearest site.

    Why a growing window: a hit outside the top ``w`` by text score scores at most the ``w``-th text
    score once decayed (the factor is at most 1), so when the ``stop``-th best decayed score in the
    window is at least that, the page is exact. Most pages are settled by the first small window;
    fetching 2,000 hits for every query cost more than the search itself.
    """
    limit = max(DECAY_FIRST, stop)
    count = -1
    while True:
        res = searcher.search(query, limit=limit, count=count < 0, weight_by_field="open_w")
        if count < 0:
            count = int(res.count)
        addrs = [a for _, a in res.hits]
        if not addrs:
            return [], count
        nums = np.asarray(searcher.fast_field_values(KEY, addrs), dtype=np.int64)
        raw = np.asarray([float(s) for s, _ in res.hits])
        scores = raw
        if geo_ncts is not None and geo_dist is not None and len(geo_ncts):
            at = np.minimum(np.searchsorted(geo_ncts, nums), len(geo_ncts) - 1)
            dist = np.where(geo_ncts[at] == nums, geo_dist[at], np.inf)
            scores = raw * decay_factor(*decay, dist)
        order = np.lexsort((nums, -scores))
        exhausted = len(addrs) < limit or len(addrs) >= count
        settled = len(order) >= stop and scores[order[stop - 1]] > raw.min()
        if exhausted or settled or limit >= DECAY_WINDOW:
            return [(int(nums[i]), float(scores[i])) for i in order], count
        limit = min(DECAY_WINDOW, limit * 4)


def _window_sorted(searcher: Any, query: Any, sort: list[tuple[str, str]], stop: int, has_text: bool,
                   geo_ncts: np.ndarray | None, geo_dist: np.ndarray | None
                   ) -> tuple[list[tuple[int, float | None]], int]:
    """Sorts the index cannot do alone (distance first, or two keys): rank a window of hits in numpy.

    The window is every match when sorting by distance (bounded by the studies in the circle) and the
    top ``stop`` by the first key otherwise, re-sorted by both keys.
    """
    first, direction = sort[0]
    if first == "distance":
        count = int(searcher.search(query, limit=1, count=True).count)
        limit = max(1, min(count, MAX_WINDOW))
        res = searcher.search(query, limit=limit, count=False, weight_by_field="open_w") if has_text else \
            searcher.search(query, limit=limit, count=False, order_by_field=KEY, order=tantivy.Order.Asc)
    elif first == "relevance":
        res = searcher.search(query, limit=max(1, stop), count=True, weight_by_field="open_w")
        count = int(res.count)
    else:
        order = tantivy.Order.Desc if direction == "desc" else tantivy.Order.Asc
        res = searcher.search(query, limit=max(1, stop), count=True, order_by_field=_SORT_FIELD[first], order=order)
        count = int(res.count)
    addrs = [a for _, a in res.hits]
    if not addrs:
        return [], count
    nums = np.asarray(searcher.fast_field_values(KEY, addrs), dtype=np.int64)
    scores = np.asarray([float(s) if has_text and first in ("relevance", "distance") else 0.0 for s, _ in res.hits])
    if has_text and first not in ("relevance", "distance"):
        scores = np.zeros(len(nums))
    keys: list[np.ndarray] = [nums]  # lexsort: last key is primary; NCT number breaks ties
    for key, d in reversed(sort):
        desc = d == "desc"
        if key == "relevance":
            if first != "relevance" and first != "distance":
                continue  # no scores in a field-sorted window: the first key decides
            keys.append(-scores)
        elif key == "distance":
            if geo_ncts is not None and geo_dist is not None:
                at = np.searchsorted(geo_ncts, nums)
                clipped = np.minimum(at, len(geo_ncts) - 1)
                dist = np.where((at < len(geo_ncts)) & (geo_ncts[clipped] == nums), geo_dist[clipped], np.inf)
            else:
                dist = np.full(len(nums), np.inf)
            keys.append(dist)
        else:
            values = np.asarray([v if v is not None else -1 for v in searcher.fast_field_values(_SORT_FIELD[key], addrs)],
                                dtype=np.int64) if key != "nct_id" else nums
            missing = values < 0
            keys.append(-values if desc else values)
            keys.append(missing.astype(np.int8))
    ranked = np.lexsort(keys)
    return [(int(nums[i]), float(scores[i]) if has_text else None) for i in ranked], count


def _facets(searcher: Any, build: Any, filters: dict[str, list[Any]], top: int) -> dict[str, list[tuple[str, int]]]:
    """Counts per facet value under all the other filters (a dimension's own filter left out)."""
    groups: dict[str | None, list[str]] = {}
    for dim in FACET_DIMENSIONS:
        groups.setdefault(dim if dim in filters else None, []).append(dim)
    out: dict[str, list[tuple[str, int]]] = {}
    for skip, dims in groups.items():
        spec = {}
        for dim in dims:
            size = top if dim in ("country", "condition") else 100
            terms: dict[str, Any] = {"field": _FACET_FIELD[dim], "size": size}
            if dim in ("country", "condition"):
                terms["segment_size"] = max(500, size * 10)
            spec[dim] = {"terms": terms}
        result = searcher.aggregate(build(skip), spec)
        for dim in dims:
            buckets = (result.get(dim) or {}).get("buckets") or []
            vals = [(str(b["key"]), int(b["doc_count"])) for b in buckets if b.get("key") and b.get("doc_count")]
            out[dim] = sorted(vals, key=lambda x: (-x[1], x[0]))
    return {dim: out.get(dim, []) for dim in FACET_DIMENSIONS}


def retrieve(store: Any, words: list[str], fields: tuple[str, ...], *, limit: int, phrases: Sequence[str] = (),
             weights: dict[str, float] | None = None, age: float | None = None, sexes: tuple[str, ...] = (),
             statuses: tuple[str, ...] = (), country: str | None = None,
             geo: tuple[float, float, float, bool] | None = None,
             extra: Callable[[Any], list[Any]] | None = None) -> list[tuple[str, float, float | None, int | None]]:
    """Candidates for a patient: ``(nct_id, score, distance_km, nearest location id)``, best first.

    ``extra`` builds further scored clauses (any of which may match) from the index schema: the
    matcher's weighted whole-note query, which the engine runs with the same filters.

    Any word (each scored in every field with the field's weight, times its own weight from
    ``weights``) or phrase matches; the filters are the search's own (:func:`dimension_query`), so
    matching and search agree on what "recruiting", an age or a place admits.
    """
    if limit < 1:
        return []
    snap = current_snapshot(store).snapshot
    schema, searcher = snap.schema, snap.searcher
    tq = TextQueries(schema)
    shoulds = []
    for w in dict.fromkeys(words):
        q = tq.words((w,), fields, False)
        weight = (weights or {}).get(w)
        shoulds.append(Q.boost_query(q, float(weight)) if weight else q)
    shoulds += [tq.words((p,), fields, True) for p in dict.fromkeys(phrases)]
    if extra is not None:
        shoulds += extra(schema)
    if not shoulds:
        return []
    parts: list[tuple[Any, Any]] = [(Occur.Must, Q.boolean_query([(Occur.Should, q) for q in shoulds]))]
    if age is not None:
        parts.append((Occur.Must, _filter(Q.boolean_query([
            (Occur.Must, Q.range_query(schema, "age_lo", tantivy.FieldType.Float, None, age + 1e-6)),
            (Occur.Must, Q.range_query(schema, "age_hi", tantivy.FieldType.Float, age - 1e-6, None))]))))
    if sexes:  # a record that states no sex admits anyone (as the registry's default ALL does)
        parts.append((Occur.Must, _filter(Q.boolean_query([
            (Occur.Should, _terms(schema, "sex", list(dict.fromkeys(sexes)))),
            (Occur.Should, Q.boolean_query([(Occur.Must, Q.all_query()),
                                            (Occur.MustNot, Q.exists_query("sex"))]))]))))
    if statuses:
        parts.append((Occur.Must, _filter(dimension_query(schema, "status", tuple(statuses)))))
    if country:
        parts.append((Occur.Must, _filter(dimension_query(schema, "country", (country,)))))
    geo_ncts = geo_dist = geo_lid = None
    if geo is not None:
        geo_ncts, geo_dist, geo_lid = sites_for(store, snap.seq).within(*geo)
        parts.append((Occur.Must, _filter(_terms(schema, KEY, geo_ncts.tolist()))))
    parts.append((Occur.MustNot, Q.term_query(schema, KEY, META_KEY)))
    res = searcher.search(Q.boolean_query(parts), limit=limit, count=False)
    addrs = [a for _, a in res.hits]
    nums = searcher.fast_field_values(KEY, addrs) if addrs else []
    out: list[tuple[str, float, float | None, int | None]] = []
    for (score, _a), n in zip(res.hits, nums, strict=True):
        dist = lid = None
        if geo_ncts is not None and geo_dist is not None and geo_lid is not None:
            i = int(np.searchsorted(geo_ncts, n))
            if i < len(geo_ncts) and geo_ncts[i] == n:
                dist, lid = float(geo_dist[i]), int(geo_lid[i])
        out.append((f"NCT{int(n):08d}", float(score), dist, lid))
    return out
