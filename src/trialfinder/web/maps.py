"""Map data for pages: what the browser's map script (static/app.js) draws, and from where.

Why here: the tile setting decides whether a map sends anything off the machine, so every page's map
takes it from one place (default: no tiles, the bundled country outlines). The ``/locations`` map places
each country at the offline gazetteer's point for it, so it needs no network either.
"""

from __future__ import annotations

from typing import Any

from fastapi import Request


def map_settings(request: Request) -> dict[str, str]:
    """Tile URL and attribution for a page's map (empty: offline outlines only)."""
    settings = request.app.state.settings
    return {"tiles": settings.tile_url, "attribution": settings.tile_attribution}


def country_map(request: Request, rows: list[dict[str, Any]]) -> dict[str, Any] | None:
    """One marker per country with its study count and a link to its page, or None (no coordinates)."""
    from trialfinder.search.engine import _gazetteer
    from trialfinder.sources.geocode import Gazetteer

    gazetteer = _gazetteer(Gazetteer)
    points = []
    for row in rows:
        place = gazetteer.place(row["name"])
        if place is None or place.lat is None or place.lon is None:
            continue
        count = f"{row['count']:,} {'study' if row['count'] == 1 else 'studies'}"
        points.append({"lat": place.lat, "lon": place.lon, "title": row["name"], "href": row["href"],
                       "count": count})
    if not points:
        return None
    return {"points": points, "center": None, **map_settings(request)}
