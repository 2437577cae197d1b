"""The search engine: a :class:`SearchRequest` in, a :class:`SearchPage` out.

This is the one search entry point used by the CLI, the web pages and the JSON API. It turns a request
into a backend-neutral :class:`~trialfinder.search.plan.Plan` (synonym expansion from the data's own
vocabulary, place names resolved offline), lets the store run it, and shapes the results: records
(optionally cut to the requested ``fields``), nearest site and distance, and which terms matched.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

import orjson

from trialfinder.index.follow import current_snapshot, index_for
from trialfinder.search.execute import run_plan
from trialfinder.search.fields import select_fields
from trialfinder.search.plan import AREA_FIELDS, GeoClause, Plan, TextClause
from trialfinder.search.synonyms import MIN_SUPPORT, fold

#: Request attribute -> plan area, for the free-text query areas.
TEXT_AREAS = (("cond", "cond"), ("term", "term"), ("intr", "intr"), ("titles", "titles"),
              ("outc", "outc"), ("spons", "spons"), ("locn", "locn"))
#: Request attribute -> the Essie area its expression is matched in (for boolean query expressions).
QUERY_AREA_FIELDS = {"cond": "ConditionSearch", "term": "BasicSearch", "intr": "InterventionSearch",
                     "locn": "LocationSearch", "titles": "TitleSearch", "outc": "OutcomeSearch",
                     "spons": "SponsorSearch", "lead": "LeadSponsorName", "patient": "PatientSearch"}
#: aggFilters field names -> plan filter dimensions
AGG_DIMENSIONS = {"OverallStatus": "status", "Phase": "phase", "Sex": "sex", "StdAge": "age_group",
                  "HealthyVolunteers": "healthy", "LeadSponsorClass": "funder_type", "StudyType": "study_type",
                  "HasResults": "has_results"}
#: Which synonym kinds expand which area.
EXPANSION_KINDS = {"cond": ("acronym", "mesh", "mesh_single"), "intr": ("other_name",),
                   "term": ("acronym", "other_name", "mesh", "mesh_single")}


@dataclass
class NearestSite:
    facility: str
    city: str
    state: str
    country: str
    status: str
    lat: float | None
    lon: float | None
    distance_km: float | None
    derived: bool = False

    @property
    def distance_mi(self) -> float | None:
        return None if self.distance_km is None else round(self.distance_km / 1.609344, 1)

    def to_dict(self) -> dict[str, Any]:
        return {"facility": self.facility, "city": self.city, "state": self.state, "country": self.country,
                "status": self.status, "lat": self.lat, "lon": self.lon, "distanceKm": self.distance_km,
                "distanceMi": self.distance_mi, "derived": self.derived}


@dataclass
class SearchHit:
    """One result: the record (as JSON bytes, parsed on first use of :attr:`record`), score, match."""

    nct_id: str
    #: the record as JSON: the stored bytes, or the requested ``fields`` of it serialised
    record_json: bytes
    score: float | None = None
    matched: list[str] = field(default_factory=list)
    nearest: NearestSite | None = None

    @cached_property
    def record(self) -> dict:
        """The record (or its requested fields) as a dict; the JSON API never needs to parse it."""
        return orjson.loads(self.record_json)


@dataclass
class SearchPage:
    hits: list[SearchHit]
    total_count: int | None = None
    next_page_token: str | None = None
    facets: dict[str, list[tuple[str, int]]] | None = None
    #: the expansions used, per area: {"cond": ["lupus nephritis (acronym of LN)"]}
    expansions: dict[str, list[str]] = field(default_factory=dict)
    place: Any = None
    #: data sequences the index snapshot answering this page is behind the database (0: current).
    #: Non-zero only while another process (an ingest, a sync) holds the index writer between its
    #: database and index commits; the hits then reflect the records as of that snapshot.
    index_behind: int = 0

    def to_api_json(self, *, include_extras: bool = False) -> dict[str, Any]:
        """The ClinicalTrials.gov API v2 response shape."""
        out: dict[str, Any] = {"studies": [h.record for h in self.hits]}
        out.update(self._api_tail())
        if include_extras:
            out["trialfinder"] = {
                "indexBehind": self.index_behind,
                "hits": [{"nctId": h.nct_id, "score": h.score, "matched": h.matched,
                          "nearestSite": h.nearest.to_dict() if h.nearest else None} for h in self.hits],
                "facets": {k: [[v, n] for v, n in vals] for k, vals in (self.facets or {}).items()},
                "expansions": self.expansions,
            }
        return out

    def to_api_bytes(self) -> bytes:
        """:meth:`to_api_json` serialised, with each record copied in as stored (not parsed and redone)."""
        tail = orjson.dumps(self._api_tail())
        return b"".join((b'{"studies":[', b",".join(h.record_json for h in self.hits), b"]",
                         b"," + tail[1:] if len(tail) > 2 else b"}"))

    def _api_tail(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        if self.next_page_token:
            out["nextPageToken"] = self.next_page_token
        if self.total_count is not None:
            out["totalCount"] = self.total_count
        return out


def _req(request: Any, name: str, default: Any = None) -> Any:
    value = getattr(request, name, default)
    return default if value is None else value


def _words(text: str) -> tuple[str, ...]:
    return tuple(fold(text).replace('"', " ").split())


def _strip_quotes(text: str) -> tuple[str, bool]:
    t = text.strip()
    if len(t) >= 2 and t[0] == '"' and t[-1] == '"':
        return t[1:-1], True
    return t, False


def _fingerprint(request: Any) -> str:
    """A short hash of everything but the page token, so a token cannot be replayed on another query."""
    from dataclasses import asdict, is_dataclass

    # an instance, never a dataclass type: is_dataclass alone would also accept the class
    state = asdict(request) if is_dataclass(request) and not isinstance(request, type) else dict(vars(request))
    state.pop("page_token", None)
    state.pop("fields", None)
    blob = orjson.dumps(state, option=orjson.OPT_SORT_KEYS, default=str)
    return hashlib.blake2b(blob, digest_size=6).hexdigest()


def build_plan(store: Any, request: Any) -> tuple[Plan, dict[str, list[str]], Any]:
    """Translate a request into a plan: expand synonyms, resolve places, map filters."""
    from trialfinder.search import essie as E
    from trialfinder.search.request import SearchError

    plan = Plan()
    expansions: dict[str, list[str]] = {}
    advanced: list[Any] = []
    use_synonyms = bool(_req(request, "synonyms", True))
    queries: dict[str, Any] = getattr(request, "_queries", {}) or {}
    for attr, area in TEXT_AREAS:
        text = _req(request, attr)
        if not text or not str(text).strip():
            continue
        node = queries.get(attr)
        if node is not None and not isinstance(node, E.Term):
            # a boolean Essie expression: exact semantics as a filter, its positive terms for ranking
            advanced.append(E.Area(QUERY_AREA_FIELDS[attr], node))
            terms = _positive_terms(node)
            if terms:
                plan.text.append(TextClause(area, AREA_FIELDS[area], tuple(_words(t.text) for t in terms),
                                            tuple(t.phrase for t in terms), str(text), any_of=True))
            continue
        if node is not None:
            text, quoted = node.text, node.phrase
        else:
            text, quoted = _strip_quotes(str(text))
        words = _words(text)
        if not words:
            continue
        alts: list[tuple[str, ...]] = [words]
        flags: list[bool] = [quoted]
        kinds = EXPANSION_KINDS.get(area, ())
        if use_synonyms and kinds:
            used = []
            for kind, expansion, support in store.synonyms(" ".join(words), kinds):
                if support < MIN_SUPPORT.get(kind, 1):
                    continue
                exp_words = _words(expansion)
                if exp_words and exp_words not in alts:
                    alts.append(exp_words)
                    flags.append(True)
                    how = {"acronym": "acronym", "other_name": "other name", "mesh": "MeSH term",
                           "mesh_single": "MeSH term"}[kind]
                    used.append(f"{expansion} ({how} of {text})")
            if used:
                expansions[area] = used
        plan.text.append(TextClause(area, AREA_FIELDS[area], tuple(alts), tuple(flags), text))
    for attr in ("lead", "patient"):
        node = queries.get(attr)
        if node is not None:
            advanced.append(E.Area(QUERY_AREA_FIELDS[attr], node))

    if _req(request, "advanced") is not None:
        advanced.append(request.advanced)
    if advanced:
        plan.advanced = advanced[0] if len(advanced) == 1 else E.And(tuple(advanced))
    f: dict[str, tuple[Any, ...]] = {}
    for attr, dim in (("statuses", "status"), ("phases", "phase"), ("study_types", "study_type"),
                      ("sexes", "sex"), ("age_groups", "age_group"), ("funder_types", "funder_type"),
                      ("intervention_types", "intervention_type"), ("countries", "country"),
                      ("states", "state"), ("cities", "city"), ("ids", "ids")):
        values = tuple(_req(request, attr, ()) or ())
        if values:
            f[dim] = values
    for attr, dim in (("healthy_volunteers", "healthy"), ("has_results", "has_results")):
        value = _req(request, attr)
        if value is not None:
            f[dim] = (bool(value),)
    _merge_agg(f, _req(request, "agg", {}) or {})
    recruiting_sites = bool(_req(request, "recruiting_sites_only", False))
    plan.filters = f
    plan.age = _req(request, "age")
    for attr, col in (("start", "start_date"), ("first_posted", "first_posted"),
                      ("last_update", "last_update_posted")):
        rng = _req(request, attr)
        if rng:
            plan.date_ranges[col] = tuple(rng)  # type: ignore[assignment]
    id_terms = _req(request, "id_terms")
    if id_terms:
        plan.id_terms = tuple(id_terms.replace(",", " ").split()) if isinstance(id_terms, str) else tuple(id_terms)

    place = None
    geo = _req(request, "geo")
    near = _req(request, "near")
    if near:
        from trialfinder.sources.geocode import Gazetteer

        place = _gazetteer(Gazetteer).place(str(near))
        if place is None:
            raise SearchError("near", f"unknown place {near!r}: try a city, 'City, State', a country or a US ZIP code")
        radius_km = _req(request, "radius_km") or 80.4672  # 50 miles, the website's default distance
        plan.geo = GeoClause(place.lat, place.lon, float(radius_km), recruiting_sites)
    elif geo is not None:
        # API v2: with filter.geo, relevance decays with distance (geoDecay, default exp/300mi/0/0.5)
        from trialfinder.search.geo_filter import GeoDecay

        d = _req(request, "geo_decay") or GeoDecay()
        plan.geo = GeoClause(geo.lat, geo.lon, geo.radius_km, recruiting_sites,
                             (d.func, d.scale_km, d.offset_km, d.decay))

    plan.sort = [_sort_key(k, d) for k, d in (_req(request, "sort", []) or [])]
    plan.limit = int(_req(request, "page_size", 10))
    plan.count_total = bool(_req(request, "count_total", False))
    plan.facets = bool(_req(request, "facets", False))
    return plan, expansions, place


_GAZ: dict[str, Any] = {}


def _gazetteer(cls: Any) -> Any:
    """One gazetteer per process: it is read-only, and loading it costs about a second."""
    if "g" not in _GAZ:
        _GAZ["g"] = cls()
    return _GAZ["g"]


_SORT_ALIASES = {
    "relevance": "relevance", "@relevance": "relevance",
    "studyfirstpostdate": "first_posted", "first_posted": "first_posted", "newest": "first_posted",
    "lastupdatepostdate": "last_update", "last_update": "last_update",
    "startdate": "start_date", "start_date": "start_date",
    "enrollmentcount": "enrollment", "enrollment": "enrollment",
    "distance": "distance", "nctid": "nct_id",
}


def _positive_terms(node: Any) -> list[Any]:
    """Terms of an Essie expression that are not negated (they drive ranking of boolean queries)."""
    from trialfinder.search import essie as E

    if isinstance(node, E.Term):
        return [node]
    if isinstance(node, E.And | E.Or):
        return [t for item in node.items for t in _positive_terms(item)]
    if isinstance(node, E.Area | E.Expansion | E.Coverage | E.Tilt | E.Search):
        return _positive_terms(node.node)
    return []


def _sort_key(key: str, direction: str) -> tuple[str, str]:
    return _SORT_ALIASES.get(key.lower(), key), direction


def _merge_agg(f: dict[str, tuple[Any, ...]], agg: dict[str, Any]) -> None:
    """Translate parsed aggFilters (website codes) into plan filter dimensions, merged with the others."""
    from trialfinder.search.request import SearchError, agg_options

    if not agg:
        return
    for filter_id, options in agg_options(agg).items():
        values: list[Any] = []
        dim = None
        for opt in options:
            dims = [AGG_DIMENSIONS[fld] for fld in opt.fields if fld in AGG_DIMENSIONS]
            if not dims:
                raise SearchError("aggFilters", f"filter {filter_id}:{opt.code} is not supported by trialfinder yet")
            dim = dims[0]
            values.extend(opt.values)
        if dim is None:
            continue
        if dim in ("healthy", "has_results"):
            if len(set(values)) == 1:
                f[f"agg.{dim}"] = (bool(values[0]),)
            continue
        # aggFilters AND with the API filters of the same dimension, as in API v2: keep them apart
        key = f"agg.{dim}"
        f[key] = tuple(dict.fromkeys(f.get(key, ()) + tuple(values)))


def search(store: Any, request: Any, *, explain: bool = True) -> SearchPage:
    """Run a search request against a store and return one page of results.

    ``explain=False`` skips the per-hit "which term matched" explanation (the JSON API does not show it).
    """
    from trialfinder.search.request import SearchError, make_page_token, read_page_token

    plan, expansions, place = build_plan(store, request)
    fp = request.fingerprint() if hasattr(request, "fingerprint") else _fingerprint(request)
    token = _req(request, "page_token")
    current = current_snapshot(store)
    snap = current.snapshot
    if token:
        state = read_page_token(token)
        if state.get("q") != fp:
            raise SearchError("pageToken", "pageToken does not belong to this query")
        plan.offset = int(state.get("o", 0))
        made_on = state.get("v")
        if made_on is not None and int(made_on) != snap.seq:
            # the next page comes from the data the first page was made on, or not at all
            older = index_for(store).snapshot_at(int(made_on))
            if older is None:
                raise SearchError("pageToken", "the data changed since this pageToken was made; "
                                  "run the search again from the first page")
            snap = older
    raw = run_plan(store, plan, snapshot=snap)
    records = store.get_many_json([h.nct_id for h in raw.hits])
    fields = _req(request, "fields")
    hits = []
    for h in raw.hits:
        hit = whole = SearchHit(h.nct_id, records.get(h.nct_id, b"{}"), h.score)
        if fields:
            hit = SearchHit(h.nct_id, orjson.dumps(select_fields(whole.record, fields)), h.score)
        if explain:
            hit.matched = explain_match(whole.record, plan.text)
        nearest = None
        if h.nearest:
            n = h.nearest
            nearest = NearestSite(n["facility"] or "", n["city"] or "", n["state"] or "", n["country"] or "",
                                  n["status"] or "", n["lat"], n["lon"], n["distance_km"], n["derived"])
            hit.nearest = nearest
        hits.append(hit)
    next_token = None
    if raw.has_more:
        next_token = make_page_token({"q": fp, "o": plan.offset + plan.limit, "v": snap.seq})
    return SearchPage(hits, raw.total if plan.count_total or plan.facets else None, next_token, raw.facets,
                      expansions, place, max(0, current.db_seq - snap.seq))


def explain_match(record: dict, clauses: list[TextClause]) -> list[str]:
    """Which query or synonym terms a record matched, and where ("LN -> lupus nephritis in conditions")."""
    ps = record.get("protocolSection", {})
    ident = ps.get("identificationModule", {})
    cond = ps.get("conditionsModule", {})
    ivs = ps.get("armsInterventionsModule", {}).get("interventions", []) or []
    derived = record.get("derivedSection", {})
    where = {
        "title": fold(" ".join(str(ident.get(k, "")) for k in ("briefTitle", "officialTitle", "acronym"))),
        "conditions": fold(" ; ".join(cond.get("conditions", []) or [])),
        "keywords": fold(" ; ".join(cond.get("keywords", []) or [])),
        "MeSH terms": fold(" ; ".join(m.get("term", "") for key in ("meshes", "ancestors")
                                      for m in derived.get("conditionBrowseModule", {}).get(key, []) or [])),
        "interventions": fold(" ; ".join(" ; ".join([i.get("name", ""), *(i.get("otherNames") or [])])
                                         for i in ivs if isinstance(i, dict))),
    }
    out: list[str] = []
    for clause in clauses:
        for i, alt in enumerate(clause.alternatives):
            phrase = " ".join(alt)
            places = [name for name, text in where.items()
                      if (phrase in text if clause.phrase_flags[i] or len(alt) == 1 else all(w in text for w in alt))]
            if places:
                label = clause.raw if i == 0 else f"{clause.raw} \u2192 {phrase}"
                out.append(f"{label} in {', '.join(places[:2])}")
                break
    return out
