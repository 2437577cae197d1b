"""The search form of the web pages: friendly parameter names <-> :class:`SearchRequest`.

Why a separate model: page URLs should read well and be shareable (``/search?cond=lupus&recruiting=1``),
facet links toggle one value of one filter, and exports and the feed must repeat exactly the search on
screen. ``WebQuery`` holds the form's values, turns them into a validated ``SearchRequest`` (so the pages
apply the same rules and error messages as the API and the CLI) and back into URLs.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from trialfinder import SearchError, SearchRequest

#: Text parameters of the form -> SearchRequest fields (query areas, Essie expressions).
TEXT_PARAMS: dict[str, str] = {
    "cond": "cond", "term": "term", "intr": "intr", "titles": "titles", "outc": "outc", "spons": "spons",
    "locn": "locn", "id": "id_terms",
}
#: Multi-valued enum filters -> SearchRequest fields.
ENUM_PARAMS: dict[str, str] = {
    "status": "statuses", "phase": "phases", "type": "study_types", "sex": "sexes", "agegroup": "age_groups",
    "funder": "funder_types", "itype": "intervention_types",
}
PLACE_PARAMS: dict[str, str] = {"country": "countries", "state": "states", "city": "cities"}
DATE_PARAMS: dict[str, str] = {"start": "start", "posted": "first_posted", "updated": "last_update"}
#: Facet dimension (search engine) -> form parameter, so a facet value links to its filter.
FACET_PARAMS: dict[str, str] = {
    "status": "status", "phase": "phase", "study_type": "type", "sex": "sex", "age_group": "agegroup",
    "funder_type": "funder", "intervention_type": "itype", "country": "country", "condition": "fcond",
}
#: The sort menu: form value -> (label, API v2 sort).
SORTS: dict[str, tuple[str, str]] = {
    "relevance": ("Best match", "@relevance"),
    "distance": ("Nearest first", "distance:asc"),
    "newest": ("Newest first", "StudyFirstPostDate:desc"),
    "updated": ("Recently updated", "LastUpdatePostDate:desc"),
    "start": ("Start date", "StartDate:desc"),
    "enrollment": ("Enrollment (largest first)", "EnrollmentCount:desc"),
}
PAGE_SIZES = (10, 20, 50, 100)
#: ``recruiting=open``: the statuses of "Recruiting and not yet recruiting" studies.
OPEN_TO_PATIENTS = ("RECRUITING", "NOT_YET_RECRUITING")
#: Every parameter the form understands (anything else in a page URL is ignored).
SINGLE = ("near", "dist", "age", "healthy", "results", "advanced", "agg", "sort", "size", "page", "n",
          "recruiting", "exact", "export", *TEXT_PARAMS, *(f"{p}_from" for p in DATE_PARAMS),
          *(f"{p}_to" for p in DATE_PARAMS))
MULTI = (*ENUM_PARAMS, *PLACE_PARAMS, "fcond")
MAX_CHARS = 1000


def _essie_phrase(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


@dataclass
class WebQuery:
    """The values of the search form (strings, as typed) and the facet filters picked on result pages."""

    single: dict[str, str] = field(default_factory=dict)
    multi: dict[str, list[str]] = field(default_factory=dict)

    @classmethod
    def from_params(cls, params: Any) -> WebQuery:
        """From request query parameters (a Starlette ``QueryParams`` or a plain mapping)."""
        items: Iterable[tuple[str, str]]
        if hasattr(params, "multi_items"):
            items = params.multi_items()
        elif isinstance(params, Mapping):
            items = [(k, x) for k, v in params.items() for x in (v if isinstance(v, list | tuple) else [v])]
        else:
            items = params
        q = cls()
        for key, raw in items:
            value = str(raw).strip()
            if not value:
                continue
            if len(value) > MAX_CHARS:
                raise SearchError(key, f"too long ({len(value)} characters; the limit is {MAX_CHARS})")
            if key in MULTI:
                values = q.multi.setdefault(key, [])
                if value not in values and len(values) < 100:
                    values.append(value)
            elif key in SINGLE:
                q.single[key] = value
        return q

    # -- reading ----------------------------------------------------------------------------------

    def get(self, key: str, default: str = "") -> str:
        return self.single.get(key, default)

    def values(self, key: str) -> list[str]:
        return list(self.multi.get(key, []))

    def has(self, key: str, value: str) -> bool:
        return value in self.multi.get(key, [])

    @property
    def is_empty(self) -> bool:
        keys = set(self.single) - {"sort", "size", "page", "n", "export"}
        return not keys and not any(self.multi.values())

    @property
    def recruiting(self) -> bool:
        """Recruiting now (``recruiting=1``): recruiting studies, nearest site among recruiting sites."""
        return self.get("recruiting") in ("1", "on", "true", "yes")

    @property
    def open_to_patients(self) -> bool:
        """``recruiting=open``: recruiting and not yet recruiting, ClinicalTrials.gov's patient default."""
        return self.get("recruiting") == "open"

    def page_size(self, default: int = 20) -> int:
        try:
            size = int(self.get("size", str(default)))
        except ValueError:
            raise SearchError("size", f"expected a number of results per page, got {self.get('size')!r}") from None
        if not 1 <= size <= 100:
            raise SearchError("size", "results per page must be between 1 and 100")
        return size

    def sort_key(self) -> str:
        key = self.get("sort")
        if key:
            if key not in SORTS:
                raise SearchError("sort", f"unknown sort {key!r}; expected one of {', '.join(SORTS)}")
            return key
        return "distance" if self.get("near") and not self.has_text else "relevance"

    @property
    def has_text(self) -> bool:
        return any(self.get(p) for p in TEXT_PARAMS) or bool(self.get("advanced"))

    # -- to a search request -----------------------------------------------------------------------

    def to_request(self, *, page_size: int = 20, page_token: str | None = None, facets: bool = True,
                   sort: str | None = None, fields: tuple[str, ...] | None = None) -> SearchRequest:
        """The validated search request; SearchError names the form field at fault."""
        kw: dict[str, Any] = {}
        for param, attr in TEXT_PARAMS.items():
            if self.get(param):
                kw[attr] = self.get(param)
        for param, attr in ENUM_PARAMS.items():
            if self.values(param):
                kw[attr] = tuple(self.values(param))
        for param, attr in PLACE_PARAMS.items():
            if self.values(param):
                kw[attr] = tuple(self.values(param))
        if self.recruiting:
            kw["statuses"] = tuple(dict.fromkeys((*kw.get("statuses", ()), "RECRUITING")))
            kw["recruiting_sites_only"] = True
        elif self.open_to_patients:
            kw["statuses"] = tuple(dict.fromkeys((*kw.get("statuses", ()), *OPEN_TO_PATIENTS)))
        elif self.get("recruiting"):
            raise SearchError("recruiting", f"expected open or 1, got {self.get('recruiting')!r}")
        for param, attr in (("healthy", "healthy_volunteers"), ("results", "has_results")):
            value = self.get(param)
            if value:
                if value not in ("yes", "no", "with", "without", "y", "n"):
                    raise SearchError(param, f"expected yes or no, got {value!r}")
                kw[attr] = value in ("yes", "with", "y")
        if self.get("age"):
            try:
                kw["age"] = float(self.get("age"))
            except ValueError:
                raise SearchError("age", f"expected an age in years, got {self.get('age')!r}") from None
        for param, attr in DATE_PARAMS.items():
            lo, hi = self.get(f"{param}_from"), self.get(f"{param}_to")
            if lo or hi:
                kw[attr] = (lo or None, hi or None)
        if self.get("near"):
            kw["near"] = self.get("near")
            kw["radius_km"] = self.get("dist") or "50mi"
        conds = self.values("fcond")
        if conds:  # the expression and the condition facet, both required (error positions shift by one)
            advanced = [f"({self.get('advanced')})"] if self.get("advanced") else []
            advanced.append("(" + " OR ".join(f"AREA[Condition]{_essie_phrase(c)}" for c in conds) + ")")
            kw["advanced_source"] = " AND ".join(advanced)
        elif self.get("advanced"):  # as typed, so an error position points into the user's own text
            kw["advanced_source"] = self.get("advanced")
        if self.get("agg"):
            kw["agg"] = self.get("agg")
        if self.get("exact") in ("1", "on", "true", "yes"):
            kw["synonyms"] = False
        sort_key = sort or self.sort_key()
        if sort_key == "distance" and not self.get("near"):
            sort_key = "relevance"
        kw["sort"] = SORTS[sort_key][1]
        kw["page_size"] = page_size
        kw["page_token"] = page_token
        kw["facets"] = facets
        kw["count_total"] = True
        kw["fields"] = fields
        try:
            return SearchRequest(**kw)
        except SearchError as err:
            raise err.with_param(_FORM_NAME.get(err.param, err.param)) from None

    # -- back to URLs -------------------------------------------------------------------------------

    def params(self, *, drop: Iterable[str] = ("page", "n", "export")) -> list[tuple[str, str]]:
        """The query as (name, value) pairs, without paging by default."""
        skip = set(drop)
        out = [(k, v) for k, v in self.single.items() if k not in skip]
        out += [(k, v) for k, vs in self.multi.items() if k not in skip for v in vs]
        return out

    def with_changes(self, **changes: Any) -> WebQuery:
        """A copy with single values set (None removes) and multi values replaced (lists)."""
        q = WebQuery(dict(self.single), {k: list(v) for k, v in self.multi.items()})
        q.single.pop("page", None)
        q.single.pop("n", None)
        for key, value in changes.items():
            if isinstance(value, list):
                if value:
                    q.multi[key] = value
                else:
                    q.multi.pop(key, None)
            elif value is None or value == "":
                q.single.pop(key, None)
            else:
                q.single[key] = str(value)
        return q

    def toggled(self, key: str, value: str) -> WebQuery:
        """A copy with ``value`` of multi-valued ``key`` switched on or off (a facet link)."""
        values = self.values(key)
        values = [v for v in values if v != value] if value in values else [*values, value]
        return self.with_changes(**{key: values})

    def describe(self) -> str:
        """A short human summary, for page titles and the feed title."""
        parts = [self.get(p) for p in ("cond", "intr", "term", "titles") if self.get(p)]
        if self.get("near"):
            parts.append(f"near {self.get('near')}")
        if self.recruiting:
            parts.append("recruiting")
        elif self.open_to_patients:
            parts.append("recruiting or not yet recruiting")
        if self.get("age"):
            parts.append(f"age {self.get('age')}")
        if self.values("sex"):
            parts.append(", ".join(v.lower() for v in self.values("sex")))
        if self.get("healthy") in ("yes", "y"):
            parts.append("healthy volunteers")
        if self.get("results") in ("with", "yes", "y"):
            parts.append("with results")
        return ", ".join(parts) or "all studies"

    def copy(self) -> WebQuery:
        return dataclasses.replace(self, single=dict(self.single), multi={k: list(v) for k, v in self.multi.items()})


#: SearchRequest error parameter names -> the form field the user should fix.
_FORM_NAME: dict[str, str] = {
    **{f"query.{k}": k for k in ("cond", "term", "intr", "titles", "outc", "spons", "locn")},
    "query.id": "id", "statuses": "status", "filter.overallStatus": "status", "phases": "phase",
    "study_types": "type", "sexes": "sex", "age_groups": "agegroup", "funder_types": "funder",
    "intervention_types": "itype", "countries": "country", "states": "state", "cities": "city",
    "filter.advanced": "advanced", "radius": "dist", "radius_km": "dist", "aggFilters": "agg",
    "healthy_volunteers": "healthy", "has_results": "results", "first_posted": "posted",
    "last_update": "updated", "pageToken": "page",
}
