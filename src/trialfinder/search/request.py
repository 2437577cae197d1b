"""The search request: one typed, validated description of a search, and parsing of API v2 parameters.

Why one model: the CLI, the web pages and the JSON API all search through ``search(store, request)``;
parsing and validating here, once, means every front end rejects the same bad input with the same
message (always a :class:`SearchError` naming the parameter), and the store only ever sees normalised
values: enum values in API spelling, NCT ids as ``NCT`` + 8 digits, radii in kilometres, dates as
``YYYY-MM-DD``, Essie expressions as ASTs. This module is pure: no SQL, no I/O.

Two ways in:

* :func:`from_api_params` reads ClinicalTrials.gov API v2 ``/studies`` parameters by their API names
  (``query.cond``, ``filter.overallStatus``, ``aggFilters``, ``pageSize``, ...); anything else is an error.
* ``SearchRequest(...)`` directly, which the CLI and web forms use for the "friendly" filters that have
  no API v2 parameter (age, sexes, countries, near a place, ...). Constructing one validates it.

The rules for single values live beside this module and are re-exported here, so every name a caller
imported from ``trialfinder.search.request`` still comes from here: one-value checks and NCT ids
(:mod:`~trialfinder.search.param_values`), ``filter.geo``/``geoDecay``/radii
(:mod:`~trialfinder.search.geo_filter`), aggFilters codes and their table
(:mod:`~trialfinder.search.agg_filters`) and page tokens (:mod:`~trialfinder.search.page_token`).
"""

from __future__ import annotations

import dataclasses
import difflib
import functools
import hashlib
import math
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, TypeVar

import orjson

from trialfinder.search.agg_filters import AGG_FILTERS, AggOption, agg_entry, agg_options, parse_agg
from trialfinder.search.errors import SearchError
from trialfinder.search.essie import parse_essie
from trialfinder.search.essie_ast import And, Area, Distance, Node, Or, Term
from trialfinder.search.essie_format import format_essie
from trialfinder.search.geo_filter import (
    DEFAULT_NEAR_RADIUS_KM,
    GeoDecay,
    GeoFilter,
    parse_geo,
    parse_geo_decay,
    parse_radius,
)
from trialfinder.search.literals import MAX_RADIUS_KM, parse_date_bound
from trialfinder.search.page_token import MAX_TOKEN_CHARS, make_page_token, read_page_token
from trialfinder.search.param_values import MAX_LIST_ITEMS as MAX_LIST_ITEMS
from trialfinder.search.param_values import MAX_NAME_CHARS as MAX_NAME_CHARS
from trialfinder.search.param_values import MAX_QUERY_CHARS as MAX_QUERY_CHARS
from trialfinder.search.param_values import (
    check_bool,
    dedupe,
    enum_values,
    name_values,
    nct_ids_only,
    normalize_enum,
    normalize_nct_id,
    normalize_status,
    opt_bool,
    opt_text,
    split_list,
    text_items,
)

__all__ = [
    "AGG_FILTERS", "API_PARAMS", "DEFAULT_NEAR_RADIUS_KM", "QUERY_AREAS", "SORT_FIELDS", "AggOption", "GeoDecay",
    "GeoFilter", "SearchError", "SearchRequest", "agg_options", "from_api_params", "make_page_token",
    "nct_ids_only", "normalize_enum", "normalize_nct_id", "normalize_status", "parse_agg", "parse_date_range",
    "parse_geo", "parse_geo_decay", "parse_radius", "parse_sort", "read_page_token",
]

DEFAULT_PAGE_SIZE = 10
MAX_PAGE_SIZE = 1000
MAX_AGE_YEARS = 150.0
MAX_IDS = 1000

#: Query-area field of SearchRequest -> the Essie search area (or field) its expression is matched in.
QUERY_AREAS: dict[str, str] = {
    "cond": "ConditionSearch", "term": "BasicSearch", "intr": "InterventionSearch", "locn": "LocationSearch",
    "titles": "TitleSearch", "outc": "OutcomeSearch", "spons": "SponsorSearch", "lead": "LeadSponsorName",
    "id_terms": "IdSearch", "patient": "PatientSearch",
}

_QUERY_PARAMS = {
    "query.cond": "cond", "query.term": "term", "query.intr": "intr", "query.locn": "locn",
    "query.titles": "titles", "query.outc": "outc", "query.spons": "spons", "query.lead": "lead",
    "query.id": "id_terms", "query.patient": "patient",
}
#: Every API v2 /studies parameter from_api_params accepts.
API_PARAMS: tuple[str, ...] = (
    *_QUERY_PARAMS,
    "filter.overallStatus", "filter.geo", "filter.ids", "filter.advanced", "filter.synonyms",
    "postFilter.overallStatus", "postFilter.geo", "postFilter.ids", "postFilter.advanced",
    "postFilter.synonyms", "aggFilters", "geoDecay", "fields", "sort", "countTotal", "pageSize",
    "pageToken", "format", "markupFormat",
)
# parameters whose value is a comma- or pipe-separated list (repeating them appends)
_LIST_PARAMS = frozenset({
    "filter.overallStatus", "filter.ids", "filter.synonyms", "postFilter.overallStatus", "postFilter.ids",
    "postFilter.synonyms", "fields", "sort", "aggFilters",
})
# SearchRequest field -> the name errors about it use (its API parameter where there is one)
_PARAM_OF: dict[str, str] = {v: k for k, v in _QUERY_PARAMS.items()} | {
    "statuses": "filter.overallStatus", "geo": "filter.geo", "ids": "filter.ids",
    "advanced": "filter.advanced", "advanced_source": "filter.advanced", "synonym_filters": "filter.synonyms",
    "agg": "aggFilters", "geo_decay": "geoDecay", "sort": "sort", "page_size": "pageSize",
    "page_token": "pageToken", "count_total": "countTotal", "fields": "fields", "format": "format",
    "markup_format": "markupFormat",
}

#: Sortable fields -> default direction (dates newest first, numbers and distance smallest first,
#: relevance best first), mirroring API v2 (``sort=LastUpdatePostDate:desc``). "relevance" is accepted
#: for "@relevance"; "distance" (nearest site) needs filter.geo or near.
SORT_FIELDS: dict[str, str] = {
    "@relevance": "desc", "StudyFirstPostDate": "desc", "LastUpdatePostDate": "desc", "StartDate": "desc",
    "EnrollmentCount": "asc", "distance": "asc",
}
_MAX_SORT_ITEMS = 2  # as API v2


# ----------------------------------------------------------------------------------- helpers

_T = TypeVar("_T")


def _fail(param: str, message: str) -> SearchError:
    return SearchError(param, message)


def _text_or_value(value: Any, parse: Callable[[str], _T], kind: type[_T], param: str, text_like: str) -> _T | None:
    """A request field given either as its text form (parsed here) or as the value itself; None stays None,
    anything else is refused with the forms it may take."""
    if isinstance(value, str):
        value = parse(value)
    if value is not None and not isinstance(value, kind):
        raise _fail(param, f"expected a {kind.__name__} or text like {text_like}")
    return value


# ------------------------------------------------------------------------------ sort and dates


def parse_sort(value: str | Iterable[str | tuple[str, str]], param: str = "sort") -> tuple[tuple[str, str], ...]:
    """``"LastUpdatePostDate:desc,EnrollmentCount"`` -> ``(("LastUpdatePostDate", "desc"), ("EnrollmentCount",
    "asc"))``. Field names are case-insensitive; the direction defaults as in :data:`SORT_FIELDS`."""
    items: list[str | tuple[str, str]] = list(split_list(value) if isinstance(value, str) else value)
    if len(items) > _MAX_SORT_ITEMS:
        raise _fail(param, f"at most {_MAX_SORT_ITEMS} sort fields, got {len(items)}")
    lookup = {name.lower(): name for name in SORT_FIELDS} | {"relevance": "@relevance"}
    out: list[tuple[str, str]] = []
    for item in items:
        if isinstance(item, str):
            name, _, direction = item.strip().partition(":")
        elif isinstance(item, tuple | list) and len(item) == 2 and all(isinstance(x, str) for x in item):
            name, direction = item
        else:
            raise _fail(param, f"expected 'Field' or 'Field:asc|desc', not {item!r}")
        canonical = lookup.get(name.strip().lower())
        if canonical is None:
            raise _fail(param, f"unknown sort field {name.strip()!r}; expected one of {', '.join(SORT_FIELDS)}")
        direction = direction.strip().lower() or SORT_FIELDS[canonical]
        if direction not in ("asc", "desc"):
            raise _fail(param, f"unknown direction {direction!r} for {canonical}; expected asc or desc")
        if any(canonical == done for done, _ in out):
            raise _fail(param, f"{canonical} is given twice")
        out.append((canonical, direction))
    return tuple(out)


DateRange = tuple[str | None, str | None]


def parse_date_range(value: str | Iterable[str | None] | None, param: str) -> DateRange | None:
    """``("2020", "2021-06")`` or the website's ``"2020_2021-06"`` -> ``("2020-01-01", "2021-06-30")``.

    Either end may be empty (open). Partial dates widen to the whole period, as in Essie RANGE bounds.
    """
    if value is None:
        return None
    if isinstance(value, str):
        parts: list[str | None] = list(value.split("_")) if "_" in value else [value, value]
        if len(parts) != 2:
            raise _fail(param, "expected from_to, e.g. 2020-01-01_2021-12-31")
    else:
        parts = list(value)
        if len(parts) != 2:
            raise _fail(param, "expected a (from, to) pair of ISO dates")
    ends: list[str | None] = []
    for upper, part in zip((False, True), parts, strict=True):
        if part is None or (isinstance(part, str) and not part.strip()):
            ends.append(None)
            continue
        if not isinstance(part, str):
            raise _fail(param, f"expected an ISO date, not {part!r}")
        try:
            ends.append(parse_date_bound(part, upper))
        except ValueError as exc:
            raise _fail(param, str(exc)) from None
    lo, hi = ends
    if lo is None and hi is None:
        return None
    if lo is not None and hi is not None and lo > hi:
        raise _fail(param, f"start {lo} is after end {hi}")
    return lo, hi


_FIELD_NAME_RE = re.compile(r"^([a-zA-Z][a-zA-Z0-9\-. ]*|@query)$")
_SYNONYM_RE = re.compile(r"^[A-Za-z]+:\d+$")


# ---------------------------------------------------------------------------------- the request


@dataclass(frozen=True)
class SearchRequest:
    """One search: what to match, how to filter, sort and page. Constructing one validates and normalises
    it (raising :class:`SearchError`), so a request that exists is a valid request.

    Semantics for the store (all filters are ANDed; values within one filter are ORed):

    * query areas (``cond`` ... ``patient``): Essie expressions matched in :data:`QUERY_AREAS`; parsed
      ASTs are in :meth:`query_asts`. They drive relevance.
    * ``statuses``, ``ids`` (NCTId or NCTIdAlias), ``geo``, ``advanced``: API v2 ``filter.*``; a
      ``postFilter.*`` given together with its ``filter.*`` is ANDed into ``advanced`` by
      :func:`from_api_params`.
    * ``agg``: aggFilters codes; see :func:`agg_options` / :data:`AGG_FILTERS`.
    * friendly filters: ``age`` (years) within [MinimumAge, MaximumAge] (a missing bound is open);
      ``sexes`` -- a study open to ALL also matches FEMALE or MALE; ``age_groups`` (StdAge),
      ``phases``, ``study_types``, ``intervention_types`` match when any value overlaps;
      ``funder_types`` (AgencyClass) match the lead sponsor or any collaborator, as the website's
      funder filter does; ``start``/``first_posted``/``last_update`` are inclusive (from, to) ISO date
      ranges on StartDate/StudyFirstPostDate/LastUpdatePostDate; ``countries``/``states``/``cities``
      should hold at one and the same site; ``recruiting_sites_only`` restricts the location filters and
      the nearest site to sites whose status is RECRUITING; ``near`` is a place name the search resolves
      with the gazetteer (then behaves like ``geo`` with ``radius_km``, default
      :data:`DEFAULT_NEAR_RADIUS_KM`).
    * ``synonyms=False`` is "exact" mode: query terms are not expanded.

    Treat instances as immutable; derive variants with ``dataclasses.replace`` (which re-validates).
    """

    # query areas: Essie expressions (API v2 query.*), each at most 1,000 characters
    cond: str | None = None
    term: str | None = None
    intr: str | None = None
    locn: str | None = None
    titles: str | None = None
    outc: str | None = None
    spons: str | None = None
    lead: str | None = None
    id_terms: str | None = None
    patient: str | None = None
    # API v2 filters
    statuses: tuple[str, ...] = ()  # Status enum values
    geo: GeoFilter | None = None
    ids: tuple[str, ...] = ()  # NCT ids, normalised to NCT + 8 digits
    advanced: Node | None = None  # parsed filter.advanced; derived from advanced_source when that is given
    advanced_source: str | None = None  # Essie text of filter.advanced (the source of truth)
    synonym_filters: tuple[str, ...] = ()  # filter.synonyms "Area:synonym_id" pairs; recorded, may be ignored
    agg: dict[str, tuple[str, ...]] = field(default_factory=dict)  # parsed aggFilters
    geo_decay: GeoDecay | None = None  # API v2 geoDecay: ranking by distance from geo
    # friendly filters (no API v2 parameter)
    age: float | None = None  # the participant's age in years, 0..150
    age_groups: tuple[str, ...] = ()  # StandardAge values
    sexes: tuple[str, ...] = ()  # Sex values
    phases: tuple[str, ...] = ()  # Phase values
    study_types: tuple[str, ...] = ()  # StudyType values
    funder_types: tuple[str, ...] = ()  # AgencyClass values
    intervention_types: tuple[str, ...] = ()  # InterventionType values
    healthy_volunteers: bool | None = None
    has_results: bool | None = None
    start: DateRange | None = None
    first_posted: DateRange | None = None
    last_update: DateRange | None = None
    countries: tuple[str, ...] = ()
    states: tuple[str, ...] = ()
    cities: tuple[str, ...] = ()
    recruiting_sites_only: bool = False
    near: str | None = None  # place text, resolved by the search (gazetteer)
    radius_km: float | None = None  # radius around near; "50mi" strings are accepted and converted
    synonyms: bool = True  # False = exact mode, no synonym expansion
    # presentation and paging
    sort: tuple[tuple[str, str], ...] = ()  # ((field, "asc"|"desc"), ...), fields from SORT_FIELDS
    page_size: int = DEFAULT_PAGE_SIZE  # 1..1000
    page_token: str | None = None
    count_total: bool = False
    fields: tuple[str, ...] | None = None  # field/piece names to return; None = whole records
    format: str = "json"  # json | csv
    markup_format: str = "markdown"  # markdown | legacy
    facets: bool = False
    _queries: dict[str, Node] = field(default_factory=dict, init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        put = self._put
        queries: dict[str, Node] = {}
        for name in QUERY_AREAS:
            param = _PARAM_OF[name]
            text = opt_text(getattr(self, name), param)
            put(name, text)
            if text is not None:
                queries[name] = parse_essie(text, param=param)
        put("_queries", queries)

        put("statuses", enum_values("Status", self.statuses, "filter.overallStatus"))
        put("geo", _text_or_value(self.geo, parse_geo, GeoFilter, "filter.geo", "distance(39.0,-77.1,50mi)"))
        put("ids", dedupe(normalize_nct_id(i, "filter.ids") for i in text_items(self.ids, "filter.ids", MAX_IDS)))
        self._check_advanced()
        for item in text_items(self.synonym_filters, "filter.synonyms"):
            if not _SYNONYM_RE.match(item):
                raise _fail("filter.synonyms", f"expected area:synonym_id pairs like ConditionSearch:1651367, "
                                               f"not {item!r}")
        if self.synonym_filters:
            # ClinicalTrials.gov's synonym ids name entries of its own thesaurus, which no mirror has:
            # refusing them is honest, ignoring them would widen the search without saying so
            raise _fail("filter.synonyms", "synonym ids (area:synonym_id) refer to ClinicalTrials.gov's internal "
                                           "thesaurus, which this server does not have; leave filter.synonyms out "
                                           "(query terms are expanded with synonyms from the data by default)")
        put("synonym_filters", ())
        agg = self.agg
        if isinstance(agg, str):
            agg = parse_agg(agg)
        if not isinstance(agg, Mapping):
            raise _fail("aggFilters", "expected text like phase:2 3,status:rec or a mapping")
        checked: dict[str, tuple[str, ...]] = {}
        for key, codes in agg.items():
            if not isinstance(key, str):
                raise _fail("aggFilters", f"unknown filter {key!r}")
            name, values = agg_entry(key, text_items(codes, "aggFilters"), "aggFilters")
            checked[name] = dedupe(checked.get(name, ()) + values)
        put("agg", checked)
        put("geo_decay", _text_or_value(self.geo_decay, parse_geo_decay, GeoDecay, "geoDecay",
                                        "func:exp,scale:300mi,offset:0mi,decay:0.5"))

        self._check_friendly()

        put("sort", parse_sort(self.sort))
        if any(name == "distance" for name, _ in self.sort) and self.geo is None and self.near is None:
            raise _fail("sort", "sorting by distance needs filter.geo or near (a place to measure from)")
        size = self.page_size
        if isinstance(size, bool) or not isinstance(size, int):
            raise _fail("pageSize", f"expected a whole number, got {size!r}")
        if not 1 <= size <= MAX_PAGE_SIZE:
            raise _fail("pageSize", f"must be between 1 and {MAX_PAGE_SIZE}, got {size}")
        token = opt_text(self.page_token, "pageToken", MAX_TOKEN_CHARS)
        if token is not None:
            read_page_token(token)
        put("page_token", token)
        put("count_total", check_bool(self.count_total, "countTotal"))
        put("facets", check_bool(self.facets, "facets"))
        if self.fields is not None:
            names = text_items(self.fields, "fields", 1000)
            if not names:
                raise _fail("fields", "must list at least one field (leave it out for whole records)")
            for name in names:
                if not _FIELD_NAME_RE.match(name):
                    raise _fail("fields", f"invalid field name {name!r}")
            put("fields", names)
        for name, choices in (("format", ("json", "csv")), ("markup_format", ("markdown", "legacy"))):
            value = getattr(self, name)
            if not isinstance(value, str) or value.strip().lower() not in choices:
                raise _fail(_PARAM_OF[name], f"unknown value {value!r}; expected one of {', '.join(choices)}")
            put(name, value.strip().lower())
        if self.markup_format == "legacy":
            raise _fail("markupFormat", "markupFormat=legacy (the classic PRS text markup) is not supported: "
                                        "records are served as stored, in markdown; leave markupFormat out")

    def _put(self, name: str, value: Any) -> None:
        object.__setattr__(self, name, value)

    def _check_advanced(self) -> None:
        # advanced_source is the source of truth when given (so dataclasses.replace with a new source
        # cannot leave a stale AST behind); a bare AST gets its source by formatting
        source = opt_text(self.advanced_source, "filter.advanced")
        node = self.advanced
        if source is not None:
            node = parse_essie(source, param="filter.advanced")
        elif node is not None:
            try:
                source = format_essie(node)
            except TypeError:
                raise _fail("filter.advanced", f"expected an Essie AST node, got {type(node).__name__}") from None
        self._put("advanced", node)
        self._put("advanced_source", source)

    def _check_friendly(self) -> None:
        put = self._put
        age = self.age
        if age is not None:
            if isinstance(age, bool) or not isinstance(age, int | float) or not math.isfinite(age):
                raise _fail("age", f"expected a number of years, got {age!r}")
            if not 0 <= age <= MAX_AGE_YEARS:
                raise _fail("age", f"must be between 0 and {MAX_AGE_YEARS:g} years, got {age:g}")
            put("age", float(age))
        for name, enum_type in (("age_groups", "StandardAge"), ("sexes", "Sex"), ("phases", "Phase"),
                                ("study_types", "StudyType"), ("funder_types", "AgencyClass"),
                                ("intervention_types", "InterventionType")):
            put(name, enum_values(enum_type, getattr(self, name), name))
        for name in ("healthy_volunteers", "has_results"):
            put(name, opt_bool(getattr(self, name), name))
        for name in ("start", "first_posted", "last_update"):
            put(name, parse_date_range(getattr(self, name), name))
        for name in ("countries", "states", "cities"):
            put(name, name_values(getattr(self, name), name))
        put("recruiting_sites_only", check_bool(self.recruiting_sites_only, "recruiting_sites_only"))
        put("synonyms", check_bool(self.synonyms, "synonyms"))
        put("near", opt_text(self.near, "near"))
        radius = self.radius_km
        if isinstance(radius, str):
            radius = parse_radius(radius)
        if radius is not None:
            if isinstance(radius, bool) or not isinstance(radius, int | float) or not math.isfinite(radius) \
                    or not 0 < radius <= MAX_RADIUS_KM:
                raise _fail("radius", f"must be a distance greater than 0 and at most {MAX_RADIUS_KM:g} km")
            if self.near is None:
                raise _fail("radius", "needs near (a place to measure from)")
            radius = float(radius)
        put("radius_km", radius)
        if self.near is not None and self.geo is not None:
            raise _fail("near", "give either near or filter.geo, not both")

    # -- derived views
    def query_asts(self) -> dict[str, Node]:
        """Parsed query areas: SearchRequest field name (``"cond"``...) -> AST; see :data:`QUERY_AREAS`."""
        return dict(self._queries)

    def resolved_near(self, lat: float, lon: float) -> SearchRequest:
        """This request with ``near`` replaced by a geo filter at (lat, lon) (after gazetteer lookup)."""
        geo = GeoFilter(lat, lon, self.radius_km or DEFAULT_NEAR_RADIUS_KM, "km")
        return dataclasses.replace(self, near=None, radius_km=None, geo=geo)

    def fingerprint(self) -> str:
        """A stable hash of everything that decides which studies match and in what order.

        Paging, counting and presentation (page_token, page_size, count_total, fields, format,
        markup_format, facets) are left out, so a page token can carry it and the search can refuse a
        token that belongs to a different search -- API v2 requires the same parameters on every page.
        """
        # orjson writes the GeoFilter/GeoDecay dataclasses as objects and tuples as lists
        state = {name: getattr(self, name) for name in _fingerprinted()}
        return hashlib.sha256(orjson.dumps(state, option=orjson.OPT_SORT_KEYS)).hexdigest()[:24]


@functools.cache
def _fingerprinted() -> tuple[str, ...]:
    """The request fields that decide which studies match and in what order (see ``fingerprint``)."""
    skip = {"page_token", "page_size", "count_total", "fields", "format", "markup_format", "facets",
            "_queries", "advanced"}
    return tuple(f.name for f in dataclasses.fields(SearchRequest) if f.name not in skip)


# ---------------------------------------------------------------------------- API parameters


#: Text parameters documented with ``maxLength`` MAX_QUERY_CHARS (the query areas and Essie filters).
_QUERY_AREA_PARAMS = frozenset({"query.cond", "query.term", "query.intr", "query.locn", "query.titles",
                                "query.outc", "query.spons", "query.lead", "query.id", "query.patient",
                                "filter.advanced", "postFilter.advanced", "aggFilters"})


def _param_text(name: str, raw: Any) -> str:
    """One parameter's value as text; a repeated list parameter appends, any other must not differ."""
    values = []
    for value in raw if isinstance(raw, list | tuple) else [raw]:
        if isinstance(value, bool):
            value = "true" if value else "false"
        elif isinstance(value, int):
            value = str(value)
        if not isinstance(value, str):
            raise _fail(name, f"expected text, got {type(value).__name__}")
        if name in _QUERY_AREA_PARAMS and len(value) > MAX_QUERY_CHARS:  # as sent, before trimming blanks
            raise _fail(name, f"too long ({len(value)} characters; the limit is {MAX_QUERY_CHARS})")
        if value.strip():
            values.append(value.strip())
    if name in _LIST_PARAMS:
        return ",".join(values)
    if len(set(values)) > 1:
        raise _fail(name, "given more than once with different values")
    return values[0] if values else ""


def _unknown_param(name: str) -> SearchError:
    candidates = [p for p in API_PARAMS if p.split(".")[-1].lower() == name.lower()]
    candidates = candidates or difflib.get_close_matches(name, API_PARAMS, n=2, cutoff=0.6)
    if candidates:
        return _fail(name, f"unknown parameter; did you mean {' or '.join(candidates)}?")
    return _fail(name, f"unknown parameter; supported: {', '.join(API_PARAMS)}")


# API parameter -> SearchRequest field, for those SearchRequest parses from text itself
_FIELD_OF = {**_QUERY_PARAMS, "filter.overallStatus": "statuses", "filter.geo": "geo", "filter.ids": "ids",
             "filter.advanced": "advanced_source", "aggFilters": "agg", "geoDecay": "geo_decay",
             "fields": "fields", "sort": "sort", "pageToken": "page_token", "format": "format",
             "markupFormat": "markup_format"}


def _post_clause(name: str, text: str) -> Node:
    """A postFilter.* value as an Essie clause, to AND with its filter.* counterpart."""
    if name == "postFilter.overallStatus":
        terms = tuple(Term(normalize_status(v, name)) for v in dedupe(split_list(text)))
        return Area("OverallStatus", terms[0] if len(terms) == 1 else Or(terms))
    if name == "postFilter.ids":
        terms = tuple(Term(normalize_nct_id(v, name)) for v in dedupe(split_list(text)))
        inner: Node = terms[0] if len(terms) == 1 else Or(terms)
        return Or((Area("NCTId", inner), Area("NCTIdAlias", inner)))
    if name == "postFilter.geo":
        geo = parse_geo(text, name)
        return Area("LocationGeoPoint", Distance(geo.lat, geo.lon, geo.radius_km))
    return parse_essie(opt_text(text, name) or "", param=name)


def from_api_params(params: Mapping[str, str | list[str]]) -> SearchRequest:
    """A SearchRequest from ClinicalTrials.gov API v2 ``/studies`` query parameters.

    Values may be strings or lists of strings (a repeated parameter); list parameters (statuses, ids,
    fields, sort, aggFilters, synonyms) append, other parameters must not be repeated with different
    values. Blank values are ignored. An unknown parameter is an error rather than silently ignored,
    because a misspelt filter would otherwise widen the search without anyone noticing. ``pageSize=0``
    means the default (10), as in the API; above 1,000 is an error. ``postFilter.*`` acts as ``filter.*``
    (the API gives them the same effect); given together, both apply: the post filter is ANDed into
    ``advanced`` as an Essie clause.
    """
    if not isinstance(params, Mapping):
        raise _fail("params", "expected a mapping of parameter names to values")
    texts: dict[str, str] = {}
    for name, raw in params.items():
        if name not in API_PARAMS:
            raise _unknown_param(str(name))
        text = _param_text(name, raw)
        if text:
            texts[name] = text
    kwargs: dict[str, Any] = {_FIELD_OF[n]: t for n, t in texts.items() if n in _FIELD_OF}
    synonyms = [texts[n] for n in ("filter.synonyms", "postFilter.synonyms") if n in texts]
    if synonyms:
        kwargs["synonym_filters"] = ",".join(synonyms)
    if "countTotal" in texts:
        value = texts["countTotal"].lower()
        if value not in ("true", "false"):
            raise _fail("countTotal", f"expected true or false, got {texts['countTotal']!r}")
        kwargs["count_total"] = value == "true"
    if "pageSize" in texts:
        if not texts["pageSize"].isdecimal():  # what int() reads; isdigit() also passes "¹"
            raise _fail("pageSize", f"expected a whole number, got {texts['pageSize']!r}")
        kwargs["page_size"] = int(texts["pageSize"]) or DEFAULT_PAGE_SIZE
    clauses: list[Node] = []
    for key in ("overallStatus", "ids", "geo", "advanced"):
        name = "postFilter." + key
        if name not in texts:
            continue
        if "filter." + key in texts:
            clauses.append(_post_clause(name, texts[name]))
        else:  # alone, a post filter is its filter; errors still name postFilter.*
            # raw parameter text, as for ``kwargs`` above: __post_init__ parses and validates it
            probe_kwargs: dict[str, Any] = {_FIELD_OF["filter." + key]: texts[name]}
            try:
                probe = SearchRequest(**probe_kwargs)
            except SearchError as err:
                raise err.with_param(name) from None
            field_name = "advanced" if key == "advanced" else _FIELD_OF["filter." + key]
            kwargs[field_name] = getattr(probe, field_name)
            if key == "advanced":
                kwargs["advanced_source"] = probe.advanced_source
    if clauses:
        base = kwargs.pop("advanced_source", None)
        parts = [parse_essie(base, param="filter.advanced")] if base else []
        flat: list[Node] = []
        for node in parts + clauses:
            flat.extend(node.items if isinstance(node, And) else (node,))
        combined = flat[0] if len(flat) == 1 else And(tuple(flat))
        kwargs["advanced"], kwargs["advanced_source"] = combined, format_essie(combined)
    return SearchRequest(**kwargs)
