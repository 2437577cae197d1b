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

aggFilters codes (the website's filter codes, ``aggFilters=phase:2 3,status:rec,sex:f``): see
:data:`AGG_FILTERS`, which is the implemented table, and :func:`agg_options`, which says for each
selected code which API v2 field(s) must hold which value(s). Options of one filter are ORed, filters
are ANDed.
"""

from __future__ import annotations

import base64
import binascii
import dataclasses
import difflib
import hashlib
import json
import math
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from trialfinder.model.enums import ENUMS
from trialfinder.search.essie import (
    KM_PER_MILE,
    MAX_RADIUS_KM,
    And,
    Area,
    Distance,
    Node,
    Or,
    SearchError,
    Term,
    check_lat_lon,
    format_essie,
    parse_date_bound,
    parse_essie,
    radius_km_from_text,
)

__all__ = [
    "AGG_FILTERS", "API_PARAMS", "DEFAULT_NEAR_RADIUS_KM", "QUERY_AREAS", "SORT_FIELDS", "AggOption", "GeoDecay",
    "GeoFilter", "SearchError", "SearchRequest", "agg_options", "from_api_params", "make_page_token",
    "nct_ids_only", "normalize_enum", "normalize_nct_id", "normalize_status", "parse_agg", "parse_date_range",
    "parse_geo", "parse_geo_decay", "parse_radius", "parse_sort", "read_page_token",
]

MAX_QUERY_CHARS = 1000
DEFAULT_PAGE_SIZE = 10
MAX_PAGE_SIZE = 1000
MAX_AGE_YEARS = 150.0
MAX_IDS = 1000
MAX_LIST_ITEMS = 100
MAX_NAME_CHARS = 200
MAX_TOKEN_CHARS = 4096
#: Radius used for ``near`` when none is given: the website's default distance, 50 miles.
DEFAULT_NEAR_RADIUS_KM = 50 * KM_PER_MILE

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


def _fail(param: str, message: str) -> SearchError:
    return SearchError(param, message)


def _split_list(text: str) -> list[str]:
    """API v2 list parameters are comma- or pipe-separated."""
    return [part.strip() for part in re.split(r"[,|]", text) if part.strip()]


def _dedupe(values: Iterable[Any]) -> tuple[Any, ...]:
    return tuple(dict.fromkeys(values))


def _number(text: str) -> float | None:
    text = text.strip()
    if not re.fullmatch(r"[+-]?(\d+(\.\d*)?|\.\d+)", text):
        return None
    return float(text)


def normalize_enum(enum_type: str, value: str, param: str) -> str:
    """An API v2 enum value, case- and separator-insensitively (``"not yet recruiting"`` -> NOT_YET_RECRUITING).

    Values come from :data:`trialfinder.model.enums.ENUMS`, generated from the official OpenAPI file.
    """
    allowed = ENUMS[enum_type]
    if isinstance(value, str):
        key = re.sub(r"[\s\-]+", "_", value.strip()).upper()
        if key in allowed:
            return key
        squashed = {v.replace("_", ""): v for v in allowed}  # "phase 2" -> PHASE2
        if key.replace("_", "") in squashed:
            return squashed[key.replace("_", "")]
    raise _fail(param, f"unknown value {value!r}; expected one of {', '.join(allowed)}")


def normalize_status(value: str, param: str = "filter.overallStatus") -> str:
    """An overall status in API spelling, e.g. ``"recruiting"`` -> ``"RECRUITING"``; SearchError otherwise."""
    return normalize_enum("Status", value, param)


_NCT_RE = re.compile(r"^NCT0*([1-9]\d{0,7})$", re.IGNORECASE)


def normalize_nct_id(value: str, param: str = "filter.ids") -> str:
    """``"nct1234"`` -> ``"NCT00001234"`` (API v2 accepts ``NCT`` + up to 8 digits, leading zeros optional)."""
    m = _NCT_RE.match(value.strip()) if isinstance(value, str) else None
    if not m:
        raise _fail(param, f"invalid NCT id {value!r}; expected e.g. NCT04852770")
    return f"NCT{int(m.group(1)):08d}"


def nct_ids_only(text: str | None) -> tuple[str, ...] | None:
    """The NCT ids when ``text`` is nothing but NCT ids (comma/space separated), else None.

    API v2 rule: "if any query parameter contains only NCT IDs, filters are ignored" -- the store needs to
    recognise that case, so it is decided here with the same id grammar as filter.ids.
    """
    if not text:
        return None
    parts = [p for p in re.split(r"[\s,]+", text) if p]
    if not parts or not all(_NCT_RE.match(p) for p in parts):
        return None
    return _dedupe(normalize_nct_id(p) for p in parts)


# --------------------------------------------------------------------------------- geography


@dataclass(frozen=True, slots=True)
class GeoFilter:
    """Studies with a site within ``radius_km`` of (lat, lon). ``unit`` is how the radius was given
    (``"mi"``/``"km"``), kept so it can be shown back the same way."""

    lat: float
    lon: float
    radius_km: float
    unit: str = "km"

    def __post_init__(self) -> None:
        for name in ("lat", "lon", "radius_km"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int | float):
                raise _fail("filter.geo", f"{name} must be a number")
        try:
            check_lat_lon(float(self.lat), float(self.lon))
        except ValueError as exc:
            raise _fail("filter.geo", str(exc)) from None
        if not (math.isfinite(self.radius_km) and 0 < self.radius_km <= MAX_RADIUS_KM):
            raise _fail("filter.geo", f"radius must be greater than 0 and at most {MAX_RADIUS_KM:g} km")
        if self.unit not in ("mi", "km"):
            raise _fail("filter.geo", f"unit must be 'mi' or 'km', not {self.unit!r}")

    @property
    def radius(self) -> float:
        """The radius in ``unit``."""
        return self.radius_km / KM_PER_MILE if self.unit == "mi" else self.radius_km

    def to_text(self) -> str:
        """API v2 form, e.g. ``distance(39.0035707,-77.1013313,50mi)``."""
        return f"distance({self.lat:g},{self.lon:g},{round(self.radius, 6):g}{self.unit})"


_GEO_RE = re.compile(r"^\s*distance\s*\(([^,()]*),([^,()]*),([^,()]*)\)\s*$", re.IGNORECASE)


def _radius(text: str, param: str) -> tuple[float, str]:
    try:
        km = radius_km_from_text(text)
    except ValueError as exc:
        raise _fail(param, str(exc)) from None
    unit = "mi" if re.search(r"mi", text, re.IGNORECASE) else "km"
    return km, unit


def parse_radius(text: str, param: str = "radius") -> float:
    """``"50mi"`` -> 80.4672 km. A unit (mi or km) is required; 0 < radius <= 20000 km."""
    if not isinstance(text, str):
        raise _fail(param, "expected a distance like 50mi or 25km")
    return _radius(text, param)[0]


def parse_geo(text: str, param: str = "filter.geo") -> GeoFilter:
    """``"distance(39.0035707,-77.1013313,50mi)"`` -> GeoFilter (API v2 ``filter.geo``).

    Unlike the API, a bare radius is an error ("radius needs a unit: mi or km") rather than a guess.
    """
    m = _GEO_RE.match(text) if isinstance(text, str) else None
    if not m:
        raise _fail(param, "expected distance(latitude,longitude,radius), e.g. "
                           "distance(39.0035707,-77.1013313,50mi)")
    lat, lon = _number(m.group(1)), _number(m.group(2))
    if lat is None or lon is None:
        raise _fail(param, f"invalid {'latitude' if lat is None else 'longitude'} "
                           f"{(m.group(1) if lat is None else m.group(2)).strip()!r}")
    radius_km, unit = _radius(m.group(3), param)
    try:
        return GeoFilter(lat, lon, radius_km, unit)
    except SearchError as err:
        raise err.with_param(param) from None


@dataclass(frozen=True, slots=True)
class GeoDecay:
    """API v2 ``geoDecay``: how relevance decays with distance from filter.geo (for ranking only)."""

    func: str = "exp"  # gauss | exp | linear
    scale_km: float = 300 * KM_PER_MILE
    offset_km: float = 0.0
    decay: float = 0.5


_DECAY_RE = re.compile(
    r"^func:(gauss|exp|linear),scale:(\d+(?:\.\d+)?(?:km|mi)),offset:(\d+(?:\.\d+)?(?:km|mi)),"
    r"decay:(\d+(?:\.\d+)?)$", re.IGNORECASE,
)


def parse_geo_decay(text: str, param: str = "geoDecay") -> GeoDecay:
    """``"func:exp,scale:300mi,offset:0mi,decay:0.5"`` -> GeoDecay (the API's pattern, 0 < decay < 1)."""
    m = _DECAY_RE.match(text.replace(" ", "")) if isinstance(text, str) else None
    if not m:
        raise _fail(param, "expected func:(gauss|exp|linear),scale:<distance>,offset:<distance>,decay:<number>, "
                           "e.g. func:exp,scale:300mi,offset:0mi,decay:0.5")
    scale = _radius(m.group(2), param)[0]
    offset_text = m.group(3)
    offset = 0.0 if float(re.sub(r"[a-z]+$", "", offset_text.lower())) == 0 else _radius(offset_text, param)[0]
    decay = float(m.group(4))
    if not 0 < decay < 1:
        raise _fail(param, f"decay must be between 0 and 1 (exclusive), not {decay:g}")
    return GeoDecay(m.group(1).lower(), scale, offset, decay)


# ---------------------------------------------------------------------------------- aggFilters


@dataclass(frozen=True, slots=True)
class AggOption:
    """One aggFilters option: a study matches when any of ``fields`` (API v2 field names, as in
    :func:`trialfinder.search.essie.known_area_fields`) has any of ``values``."""

    code: str
    label: str
    fields: tuple[str, ...]
    values: tuple[str | bool, ...]


def _opts(fields: str | tuple[str, ...], *rows: tuple[str, str, tuple[str | bool, ...]]) -> dict[str, AggOption]:
    fields = (fields,) if isinstance(fields, str) else fields
    return {code: AggOption(code, label, fields, values) for code, label, values in rows}


_OTHER_CLASSES = ("OTHER", "OTHER_GOV", "INDIV", "NETWORK", "AMBIG", "UNKNOWN")

#: The aggFilters table: filter id -> option code -> AggOption. Codes are those of clinicaltrials.gov's
#: search page (``/search?aggFilters=...``); each option lists the API v2 field values it stands for.
AGG_FILTERS: dict[str, dict[str, AggOption]] = {
    "status": _opts(
        "OverallStatus",
        ("rec", "Recruiting", ("RECRUITING",)),
        ("not", "Not yet recruiting", ("NOT_YET_RECRUITING",)),
        ("act", "Active, not recruiting", ("ACTIVE_NOT_RECRUITING",)),
        ("enr", "Enrolling by invitation", ("ENROLLING_BY_INVITATION",)),
        ("com", "Completed", ("COMPLETED",)),
        ("ter", "Terminated", ("TERMINATED",)),
        ("sus", "Suspended", ("SUSPENDED",)),
        ("wit", "Withdrawn", ("WITHDRAWN",)),
        ("unk", "Unknown status", ("UNKNOWN",)),
        ("ava", "Available (expanded access)", ("AVAILABLE",)),
        ("nla", "No longer available (expanded access)", ("NO_LONGER_AVAILABLE",)),
        ("tna", "Temporarily not available (expanded access)", ("TEMPORARILY_NOT_AVAILABLE",)),
        ("afm", "Approved for marketing (expanded access)", ("APPROVED_FOR_MARKETING",)),
    ),
    "phase": _opts(
        "Phase",
        ("0", "Early phase 1 (formerly phase 0)", ("EARLY_PHASE1",)),
        ("1", "Phase 1", ("PHASE1",)),
        ("2", "Phase 2", ("PHASE2",)),
        ("3", "Phase 3", ("PHASE3",)),
        ("4", "Phase 4", ("PHASE4",)),
        ("na", "Not applicable", ("NA",)),
    ),
    "sex": _opts(
        "Sex",
        # a study open to all sexes accepts women and men, so it matches f and m too
        ("f", "Female", ("FEMALE", "ALL")),
        ("m", "Male", ("MALE", "ALL")),
        ("a", "All (any sex; no restriction)", ("FEMALE", "MALE", "ALL")),
    ),
    "ages": _opts(
        "StdAge",
        ("child", "Child (birth-17)", ("CHILD",)),
        ("adult", "Adult (18-64)", ("ADULT",)),
        ("older", "Older adult (65+)", ("OLDER_ADULT",)),
    ),
    "healthy": _opts("HealthyVolunteers", ("y", "Accepts healthy volunteers", (True,))),
    "funderType": _opts(
        ("LeadSponsorClass", "CollaboratorClass"),
        ("nih", "NIH", ("NIH",)),
        ("fed", "Other U.S. federal agency", ("FED",)),
        ("industry", "Industry", ("INDUSTRY",)),
        ("other", "All others (individuals, universities, organizations)", _OTHER_CLASSES),
    ),
    "studyType": {
        **_opts("StudyType",
                ("int", "Interventional", ("INTERVENTIONAL",)),
                ("obs", "Observational", ("OBSERVATIONAL",)),
                ("exp", "Expanded access", ("EXPANDED_ACCESS",))),
        **_opts("PatientRegistry", ("obs_patreg", "Observational: patient registry", (True,))),
        **_opts("ExpAccTypeIndividual", ("exp_indiv", "Expanded access: individual patients", (True,))),
        **_opts("ExpAccTypeIntermediate",
                ("exp_inter", "Expanded access: intermediate-size population", (True,))),
        **_opts("ExpAccTypeTreatment", ("exp_treat", "Expanded access: treatment IND/protocol", (True,))),
    },
    "results": _opts(
        "HasResults",
        ("with", "With posted results", (True,)),
        ("without", "Without posted results", (False,)),
    ),
    "docs": {
        **_opts("LargeDocHasProtocol", ("prot", "Study protocol posted", (True,))),
        **_opts("LargeDocHasSAP", ("sap", "Statistical analysis plan posted", (True,))),
        **_opts("LargeDocHasICF", ("icf", "Informed consent form posted", (True,))),
    },
    "violation": _opts("FDAAA801Violation", ("y", "FDAAA 801 violation reported", (True,))),
}
_AGG_IDS = {name.lower(): name for name in AGG_FILTERS}


def _agg_entry(filter_id: str, codes: Iterable[str], param: str) -> tuple[str, tuple[str, ...]]:
    canonical = _AGG_IDS.get(filter_id.strip().lower())
    if canonical is None:
        raise _fail(param, f"unknown filter {filter_id.strip()!r}; expected one of {', '.join(AGG_FILTERS)}")
    options = AGG_FILTERS[canonical]
    out = []
    for code in codes:
        key = code.strip().lower()
        if key not in options:
            raise _fail(param, f"unknown {canonical} option {code.strip()!r}; expected one of "
                               f"{', '.join(options)}")
        out.append(key)
    if not out:
        raise _fail(param, f"{canonical!r} has no options; write e.g. {canonical}:{next(iter(options))}")
    return canonical, _dedupe(out)


def parse_agg(text: str, param: str = "aggFilters") -> dict[str, tuple[str, ...]]:
    """``"phase:2 3,status:rec,sex:f"`` -> ``{"phase": ("2", "3"), "status": ("rec",), "sex": ("f",)}``.

    Pairs are comma- or pipe-separated ``filter:codes``; codes are space- (or ``+``-) separated. Filter
    ids and codes are case-insensitive; a filter given twice merges its codes.
    """
    if not isinstance(text, str):
        raise _fail(param, "expected text like phase:2 3,status:rec")
    result: dict[str, tuple[str, ...]] = {}
    for pair in _split_list(text):
        if ":" not in pair:
            raise _fail(param, f"expected filter:options, e.g. phase:2 3, not {pair!r}")
        filter_id, _, codes = pair.partition(":")
        name, values = _agg_entry(filter_id, re.split(r"[\s+]+", codes.strip()) if codes.strip() else [], param)
        result[name] = _dedupe(result.get(name, ()) + values)
    return result


def agg_options(agg: Mapping[str, Iterable[str]]) -> dict[str, tuple[AggOption, ...]]:
    """What each selected aggFilters code means: filter id -> its selected options (ORed; filters ANDed)."""
    return {name: tuple(AGG_FILTERS[name][code] for code in codes) for name, codes in agg.items()}


# ------------------------------------------------------------------------------ sort and dates


def parse_sort(value: str | Iterable[str | tuple[str, str]], param: str = "sort") -> tuple[tuple[str, str], ...]:
    """``"LastUpdatePostDate:desc,EnrollmentCount"`` -> ``(("LastUpdatePostDate", "desc"), ("EnrollmentCount",
    "asc"))``. Field names are case-insensitive; the direction defaults as in :data:`SORT_FIELDS`."""
    items: list[str | tuple[str, str]] = list(_split_list(value) if isinstance(value, str) else value)
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


# ------------------------------------------------------------------------------- page tokens

_TOKEN_VERSION = 1
_TOKEN_ERROR = ("invalid pageToken: it is garbled, truncated or was not issued for this search; "
                "start again from the first page (without pageToken)")


def make_page_token(state: Mapping[str, Any]) -> str:
    """An opaque, URL-safe token carrying ``state`` (compact JSON) for the next page.

    A 4-byte checksum is not a signature: tokens are not secret and a client may forge one, but a
    truncated or mistyped token is caught and reported instead of silently restarting the search.
    """
    payload = json.dumps(dict(state), separators=(",", ":"), sort_keys=True, ensure_ascii=False,
                         allow_nan=False).encode()
    body = bytes([_TOKEN_VERSION]) + payload
    digest = hashlib.blake2b(body, digest_size=4).digest()
    return base64.urlsafe_b64encode(digest + body).rstrip(b"=").decode("ascii")


def read_page_token(token: str, param: str = "pageToken") -> dict[str, Any]:
    """The state :func:`make_page_token` stored; SearchError("pageToken", ...) for anything else."""
    if not isinstance(token, str) or not 0 < len(token) <= MAX_TOKEN_CHARS \
            or not re.fullmatch(r"[A-Za-z0-9_-]+", token):
        raise _fail(param, _TOKEN_ERROR)
    try:
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
    except (binascii.Error, ValueError):
        raise _fail(param, _TOKEN_ERROR) from None
    digest, body = raw[:4], raw[4:]
    if len(body) < 2 or hashlib.blake2b(body, digest_size=4).digest() != digest or body[0] != _TOKEN_VERSION:
        raise _fail(param, _TOKEN_ERROR)
    try:
        state = json.loads(body[1:].decode())
    except (UnicodeDecodeError, ValueError):
        raise _fail(param, _TOKEN_ERROR) from None
    if not isinstance(state, dict):
        raise _fail(param, _TOKEN_ERROR)
    return state


# ------------------------------------------------------------------------------ field checks


def _opt_text(value: Any, param: str, limit: int = MAX_QUERY_CHARS) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str):
        raise _fail(param, f"expected text, got {type(value).__name__}")
    value = value.strip()
    if not value:
        return None
    if len(value) > limit:
        raise _fail(param, f"too long ({len(value)} characters; the limit is {limit})")
    return value


def _bool(value: Any, param: str) -> bool:
    if not isinstance(value, bool):
        raise _fail(param, f"expected true or false, got {value!r}")
    return value


def _opt_bool(value: Any, param: str) -> bool | None:
    return None if value is None else _bool(value, param)


def _items(value: Any, param: str, limit: int = MAX_LIST_ITEMS) -> tuple[str, ...]:
    """None / "a,b" / ["a", "b"] -> ("a", "b") (stripped, no blanks, no duplicates)."""
    if value is None:
        return ()
    if isinstance(value, str):
        items: list[Any] = _split_list(value)
    elif isinstance(value, Iterable) and not isinstance(value, Mapping | bytes):
        items = list(value)
    else:
        raise _fail(param, f"expected a list, got {type(value).__name__}")
    out = []
    for item in items:
        if not isinstance(item, str):
            raise _fail(param, f"expected text items, got {item!r}")
        if item.strip():
            out.append(item.strip())
    if len(out) > limit:
        raise _fail(param, f"too many values ({len(out)}; the limit is {limit})")
    return _dedupe(out)


def _enums(enum_type: str, value: Any, param: str) -> tuple[str, ...]:
    return _dedupe(normalize_enum(enum_type, item, param) for item in _items(value, param))


def _names(value: Any, param: str) -> tuple[str, ...]:
    items = _items(value, param)
    for item in items:
        if len(item) > MAX_NAME_CHARS:
            raise _fail(param, f"value too long ({len(item)} characters; the limit is {MAX_NAME_CHARS})")
    return items


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
            text = _opt_text(getattr(self, name), param)
            put(name, text)
            if text is not None:
                queries[name] = parse_essie(text, param=param)
        put("_queries", queries)

        put("statuses", _enums("Status", self.statuses, "filter.overallStatus"))
        geo = self.geo
        if isinstance(geo, str):
            geo = parse_geo(geo)
        if geo is not None and not isinstance(geo, GeoFilter):
            raise _fail("filter.geo", "expected a GeoFilter or text like distance(39.0,-77.1,50mi)")
        put("geo", geo)
        put("ids", _dedupe(normalize_nct_id(i, "filter.ids") for i in _items(self.ids, "filter.ids", MAX_IDS)))
        self._check_advanced()
        for item in _items(self.synonym_filters, "filter.synonyms"):
            if not _SYNONYM_RE.match(item):
                raise _fail("filter.synonyms", f"expected area:synonym_id pairs like ConditionSearch:1651367, "
                                               f"not {item!r}")
        put("synonym_filters", _items(self.synonym_filters, "filter.synonyms"))
        agg = self.agg
        if isinstance(agg, str):
            agg = parse_agg(agg)
        if not isinstance(agg, Mapping):
            raise _fail("aggFilters", "expected text like phase:2 3,status:rec or a mapping")
        checked: dict[str, tuple[str, ...]] = {}
        for key, codes in agg.items():
            if not isinstance(key, str):
                raise _fail("aggFilters", f"unknown filter {key!r}")
            name, values = _agg_entry(key, _items(codes, "aggFilters"), "aggFilters")
            checked[name] = _dedupe(checked.get(name, ()) + values)
        put("agg", checked)
        decay = self.geo_decay
        if isinstance(decay, str):
            decay = parse_geo_decay(decay)
        if decay is not None and not isinstance(decay, GeoDecay):
            raise _fail("geoDecay", "expected a GeoDecay or text like func:exp,scale:300mi,offset:0mi,decay:0.5")
        put("geo_decay", decay)

        self._check_friendly()

        put("sort", parse_sort(self.sort))
        if any(name == "distance" for name, _ in self.sort) and self.geo is None and self.near is None:
            raise _fail("sort", "sorting by distance needs filter.geo or near (a place to measure from)")
        size = self.page_size
        if isinstance(size, bool) or not isinstance(size, int):
            raise _fail("pageSize", f"expected a whole number, got {size!r}")
        if not 1 <= size <= MAX_PAGE_SIZE:
            raise _fail("pageSize", f"must be between 1 and {MAX_PAGE_SIZE}, got {size}")
        token = _opt_text(self.page_token, "pageToken", MAX_TOKEN_CHARS)
        if token is not None:
            read_page_token(token)
        put("page_token", token)
        put("count_total", _bool(self.count_total, "countTotal"))
        put("facets", _bool(self.facets, "facets"))
        if self.fields is not None:
            names = _items(self.fields, "fields", 1000)
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

    def _put(self, name: str, value: Any) -> None:
        object.__setattr__(self, name, value)

    def _check_advanced(self) -> None:
        # advanced_source is the source of truth when given (so dataclasses.replace with a new source
        # cannot leave a stale AST behind); a bare AST gets its source by formatting
        source = _opt_text(self.advanced_source, "filter.advanced")
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
            put(name, _enums(enum_type, getattr(self, name), name))
        for name in ("healthy_volunteers", "has_results"):
            put(name, _opt_bool(getattr(self, name), name))
        for name in ("start", "first_posted", "last_update"):
            put(name, parse_date_range(getattr(self, name), name))
        for name in ("countries", "states", "cities"):
            put(name, _names(getattr(self, name), name))
        put("recruiting_sites_only", _bool(self.recruiting_sites_only, "recruiting_sites_only"))
        put("synonyms", _bool(self.synonyms, "synonyms"))
        put("near", _opt_text(self.near, "near"))
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
        skip = {"page_token", "page_size", "count_total", "fields", "format", "markup_format", "facets",
                "_queries", "advanced"}
        state = {f.name: _jsonable(getattr(self, f.name)) for f in dataclasses.fields(self) if f.name not in skip}
        blob = json.dumps(state, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
        return hashlib.sha256(blob.encode()).hexdigest()[:24]


def _jsonable(value: Any) -> Any:
    if isinstance(value, GeoFilter | GeoDecay):
        return [_jsonable(v) for v in dataclasses.astuple(value)]
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, tuple | list):
        return [_jsonable(v) for v in value]
    return value


# ---------------------------------------------------------------------------- API parameters


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
        terms = tuple(Term(normalize_status(v, name)) for v in _dedupe(_split_list(text)))
        return Area("OverallStatus", terms[0] if len(terms) == 1 else Or(terms))
    if name == "postFilter.ids":
        terms = tuple(Term(normalize_nct_id(v, name)) for v in _dedupe(_split_list(text)))
        inner: Node = terms[0] if len(terms) == 1 else Or(terms)
        return Or((Area("NCTId", inner), Area("NCTIdAlias", inner)))
    if name == "postFilter.geo":
        geo = parse_geo(text, name)
        return Area("LocationGeoPoint", Distance(geo.lat, geo.lon, geo.radius_km))
    return parse_essie(_opt_text(text, name) or "", param=name)


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
        if not texts["pageSize"].isdigit():
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
            try:
                probe = SearchRequest(**{_FIELD_OF["filter." + key]: texts[name]})
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
