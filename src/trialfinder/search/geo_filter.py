"""Geographic request parameters: ``filter.geo`` (a site within a radius of a point), ``geoDecay``
(relevance falling with distance) and bare radii such as the CLI's ``--radius 50mi``.

Why a module of their own: the same radius and coordinate rules serve the API parameters, the CLI and
web forms (which resolve ``near`` to a :class:`GeoFilter`) and the eligibility pages, and the value
types here are what the store receives; parsing them apart from the request model keeps one spelling of
"50mi" and one error wording everywhere.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

from trialfinder.search.errors import SearchError
from trialfinder.search.literals import KM_PER_MILE, MAX_RADIUS_KM, check_lat_lon, radius_km_from_text

__all__ = ["DEFAULT_NEAR_RADIUS_KM", "GeoDecay", "GeoFilter", "parse_geo", "parse_geo_decay", "parse_radius"]

#: Radius used for ``near`` when none is given: the website's default distance, 50 miles.
DEFAULT_NEAR_RADIUS_KM = 50 * KM_PER_MILE


def _number(text: str) -> float | None:
    text = text.strip()
    if not re.fullmatch(r"[+-]?(\d+(\.\d*)?|\.\d+)", text):
        return None
    return float(text)


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
                raise SearchError("filter.geo", f"{name} must be a number")
        try:
            check_lat_lon(float(self.lat), float(self.lon))
        except ValueError as exc:
            raise SearchError("filter.geo", str(exc)) from None
        if not (math.isfinite(self.radius_km) and 0 < self.radius_km <= MAX_RADIUS_KM):
            raise SearchError("filter.geo", f"radius must be greater than 0 and at most {MAX_RADIUS_KM:g} km")
        if self.unit not in ("mi", "km"):
            raise SearchError("filter.geo", f"unit must be 'mi' or 'km', not {self.unit!r}")

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
        raise SearchError(param, str(exc)) from None
    unit = "mi" if re.search(r"mi", text, re.IGNORECASE) else "km"
    return km, unit


def parse_radius(text: str, param: str = "radius") -> float:
    """``"50mi"`` -> 80.4672 km. A unit (mi or km) is required; 0 < radius <= 20000 km."""
    if not isinstance(text, str):
        raise SearchError(param, "expected a distance like 50mi or 25km")
    return _radius(text, param)[0]


def parse_geo(text: str, param: str = "filter.geo") -> GeoFilter:
    """``"distance(39.0035707,-77.1013313,50mi)"`` -> GeoFilter (API v2 ``filter.geo``).

    Unlike the API, a bare radius is an error ("radius needs a unit: mi or km") rather than a guess.
    """
    m = _GEO_RE.match(text) if isinstance(text, str) else None
    if not m:
        raise SearchError(param, "expected distance(latitude,longitude,radius), e.g. "
                           "distance(39.0035707,-77.1013313,50mi)")
    lat, lon = _number(m.group(1)), _number(m.group(2))
    if lat is None or lon is None:
        raise SearchError(param, f"invalid {'latitude' if lat is None else 'longitude'} "
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
        raise SearchError(param, "expected func:(gauss|exp|linear),scale:<distance>,offset:<distance>,decay:<number>, "
                           "e.g. func:exp,scale:300mi,offset:0mi,decay:0.5")
    scale = _radius(m.group(2), param)[0]
    offset_text = m.group(3)
    offset = 0.0 if float(re.sub(r"[a-z]+$", "", offset_text.lower())) == 0 else _radius(offset_text, param)[0]
    decay = float(m.group(4))
    if not 0 < decay < 1:
        raise SearchError(param, f"decay must be between 0 and 1 (exclusive), not {decay:g}")
    return GeoDecay(m.group(1).lower(), scale, offset, decay)

