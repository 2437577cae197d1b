"""The study page's site list: nearest to the searched place first, grouped by country and state.

Why here and not in the view model: the order depends on the visitor's search (the place carried over
from the result list as ``?near=``), which the record alone does not know. The view model gives the sites
in record order; this module measures each against the searched place -- with the record's coordinates,
or with the offline gazetteer's city centre (then marked approximate) -- and groups them the way people
scan a long list: country, then state or region.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

__all__ = ["SiteGroup", "SiteRow", "group_sites", "resolve_place"]

EARTH_RADIUS_KM = 6371.0088


@dataclass
class SiteRow:
    """A site as listed: the view model's site plus its distance from the searched place."""

    site: Any
    distance_km: float | None = None
    approximate: bool = False


@dataclass
class SiteGroup:
    """The sites of one country (``states`` splits them by state or region when the record names them)."""

    country: str
    count: int
    states: list[tuple[str, list[SiteRow]]] = field(default_factory=list)
    nearest_km: float | None = None


def _km(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    p1, p2 = math.radians(lat1), math.radians(lat2)
    dp, dl = p2 - p1, math.radians(lon2 - lon1)
    a = math.sin(dp / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(dl / 2) ** 2
    return 2 * EARTH_RADIUS_KM * math.asin(min(1.0, math.sqrt(a)))


def _gazetteer() -> Any:
    # the search engine's process-wide gazetteer: loaded once, shared with place searches
    from trialfinder.search.engine import _gazetteer as shared
    from trialfinder.sources.geocode import Gazetteer

    return shared(Gazetteer)


def resolve_place(text: str) -> tuple[str, float, float] | None:
    """(name, lat, lon) of a searched place, or None when the gazetteer does not know it."""
    text = (text or "").strip()[:200]
    if not text:
        return None
    place = _gazetteer().place(text)
    return (place.name, place.lat, place.lon) if place is not None else None


def group_sites(sites: tuple[Any, ...] | list[Any], origin: tuple[float, float] | None,
                limit: int | None = None) -> list[SiteGroup]:
    """Sites grouped by country; with an ``origin``, nearest first (countries by their nearest site),
    else countries by number of sites, split by state alphabetically, sites in record order.
    ``limit`` keeps the first sites of that order (the nearest ones when there is an origin)."""
    rows = []
    gaz = _gazetteer() if origin is not None else None
    for site in sites:
        row = SiteRow(site)
        if origin is not None:
            point, approx = site.geo, False
            if point is None and gaz is not None:
                point, approx = gaz.locate(site.city or None, site.state or None, site.country or None), True
            if point is not None:
                row.distance_km = _km(origin[0], origin[1], point[0], point[1])
                row.approximate = approx
        rows.append(row)
    if origin is not None:
        rows.sort(key=lambda r: (r.distance_km is None, r.distance_km or 0.0))
    if limit is not None:
        rows = rows[:limit]
    by_country: dict[str, dict[str, list[SiteRow]]] = {}
    for row in rows:
        country = row.site.country or "Country not given"
        # nearest first is one list per country; without a place, states split a long country list
        state = "" if origin is not None else (row.site.state or "")
        by_country.setdefault(country, {}).setdefault(state, []).append(row)
    groups = []
    for country, states in by_country.items():
        state_items = list(states.items())
        if origin is None:
            state_items.sort(key=lambda kv: (kv[0] == "", kv[0].lower()))
        dists = [r.distance_km for _, rs in state_items for r in rs if r.distance_km is not None]
        groups.append(SiteGroup(country=country, count=sum(len(rs) for _, rs in state_items), states=state_items,
                                nearest_km=min(dists) if dists else None))
    if origin is None:
        groups.sort(key=lambda g: (g.country == "Country not given", -g.count, g.country.lower()))
    return groups
