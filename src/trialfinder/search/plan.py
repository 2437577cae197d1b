"""A backend-neutral search plan: what to match, filter, facet, sort and page.

The engine (:mod:`trialfinder.search.engine`) turns a :class:`~trialfinder.search.request.SearchRequest`
into a :class:`Plan` (expanding synonyms, resolving places); the executor (:mod:`trialfinder.search.execute`) runs it
on the text index. Plans hold only values, never SQL, so no request string ever becomes SQL text.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from trialfinder.index.schema import FIELD_WEIGHTS

#: Query areas (API v2 ``query.*`` parameters) -> the fields they search, as ClinicalTrials.gov does.
AREA_FIELDS: dict[str, tuple[str, ...]] = {
    "cond": ("conditions", "keywords", "title", "cond_mesh"),
    "intr": ("interventions", "intr_mesh", "title"),
    "titles": ("title",),
    "outc": ("outcomes",),
    "spons": ("sponsors",),
    "locn": ("places",),
    "term": tuple(FIELD_WEIGHTS),
}


@dataclass(frozen=True)
class TextClause:
    """One query area's text: it matches when any alternative matches in any of ``fields``.

    ``alternatives[0]`` is what the user typed (words, all required); the others are synonym phrases.
    """

    area: str
    fields: tuple[str, ...]
    alternatives: tuple[tuple[str, ...], ...]  # each alternative is a tuple of words
    phrase_flags: tuple[bool, ...]  # whether each alternative must match as a phrase
    raw: str = ""
    #: True when the alternatives come from a boolean expression (any of them ranks the study)
    any_of: bool = False


@dataclass(frozen=True)
class GeoClause:
    lat: float
    lon: float
    radius_km: float
    recruiting_sites_only: bool = False
    #: API v2 geoDecay: (func, scale_km, offset_km, decay) -- relevance scaled by distance; None = off
    decay: tuple[str, float, float, float] | None = None


@dataclass
class Plan:
    text: list[TextClause] = field(default_factory=list)
    advanced: Any = None  # an Essie AST node
    #: dimension -> allowed values; dimensions: status, phase, study_type, sex, age_group, funder_type,
    #: intervention_type, country, state, city, healthy, has_results, ids
    filters: dict[str, tuple[Any, ...]] = field(default_factory=dict)
    age: float | None = None
    #: column -> (from, to) ISO dates; columns: start_date, first_posted, last_update_posted
    date_ranges: dict[str, tuple[str | None, str | None]] = field(default_factory=dict)
    id_terms: tuple[str, ...] = ()
    geo: GeoClause | None = None
    sort: list[tuple[str, str]] = field(default_factory=list)
    offset: int = 0
    limit: int = 10
    count_total: bool = False
    facets: bool = False
    facet_top: int = 20


@dataclass
class RawHit:
    sid: int
    nct_id: str
    score: float | None
    distance_km: float | None
    nearest: dict | None


@dataclass
class RawResults:
    hits: list[RawHit]
    total: int | None
    facets: dict[str, list[tuple[str, int]]] | None
    has_more: bool
