"""Literal operand values shared by Essie expressions and request parameters: numbers, radii, coordinates
and date bounds.

Why shared: ``DISTANCE[39.0,-77.1,50mi]`` inside ``filter.advanced`` and ``filter.geo=distance(...)``
(or the CLI's ``--radius``) must accept the same spellings and fail with the same wording, and
``RANGE[2020, MAX]`` must widen a partial date exactly as the friendly date-range filters do. Every
function raises ValueError with a user-facing message; callers wrap it in their own error type (an
:class:`~trialfinder.search.errors.EssieSyntaxError` with a position, or a
:class:`~trialfinder.search.errors.SearchError` naming the parameter).
"""

from __future__ import annotations

import calendar
import datetime as _dt
import math
import re

__all__ = [
    "KM_PER_MILE", "MAX_RADIUS_KM", "check_lat_lon", "parse_date_bound", "parse_number",
    "radius_km_from_text",
]

#: Largest search radius anywhere in trialfinder: half the Earth's circumference, roughly.
MAX_RADIUS_KM = 20_000.0
KM_PER_MILE = 1.609344


_NUMBER_RE = re.compile(r"^[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?$")
_RADIUS_RE = re.compile(
    r"^\s*(\d+(?:\.\d*)?(?:[eE][+-]?\d+)?|\.\d+)\s*(mi|mile|miles|km|kms|kilometers?|kilometres?)?\s*$",
    re.IGNORECASE,
)


def parse_number(text: str) -> float | None:
    """A finite decimal number (an exponent is allowed), or None when ``text`` is not one."""
    text = text.strip()
    if not _NUMBER_RE.match(text):
        return None
    value = float(text)
    return value if math.isfinite(value) else None


def radius_km_from_text(text: str) -> float:
    """``"50mi"`` -> 80.4672, ``"25 km"`` -> 25.0. Raises ValueError with a user-facing message.

    A unit is required because ClinicalTrials.gov and its users mean miles by default where trialfinder's
    users may mean kilometres: guessing would silently change a search by a factor of 1.6.
    """
    m = _RADIUS_RE.match(text)
    if not m:
        if parse_number(text) is not None:
            raise ValueError("radius needs a unit: mi or km")
        raise ValueError(f"invalid radius {text.strip()!r}; expected a distance like 50mi or 25km")
    if m.group(2) is None:
        raise ValueError("radius needs a unit: mi or km")
    value = float(m.group(1))
    km = value * KM_PER_MILE if m.group(2).lower().startswith("mi") else value
    if not km > 0:
        raise ValueError("radius must be greater than 0")
    if km > MAX_RADIUS_KM:
        raise ValueError(f"radius must be at most {MAX_RADIUS_KM:g} km")
    return km


def check_lat_lon(lat: float, lon: float) -> None:
    """Raise ValueError unless lat is in [-90, 90] and lon in [-180, 180] (shared with filter.geo)."""
    if not (math.isfinite(lat) and -90.0 <= lat <= 90.0):
        raise ValueError(f"latitude {lat:g} is out of range; expected -90 to 90")
    if not (math.isfinite(lon) and -180.0 <= lon <= 180.0):
        raise ValueError(f"longitude {lon:g} is out of range; expected -180 to 180")


_DATE_RE = re.compile(r"^(\d{4})(?:-(\d{1,2})(?:-(\d{1,2}))?)?$")
_US_DATE_RE = re.compile(r"^(\d{1,2})/(\d{1,2})/(\d{4})$")


def parse_date_bound(text: str, upper: bool) -> str:
    """``"2020"`` -> ``"2020-01-01"`` (lower) or ``"2020-12-31"`` (upper); ``"01/15/2023"`` accepted.

    Raises ValueError. Full dates make bounds compare as text against the store's normalised dates,
    and the inclusive reading of a partial upper bound is the one users mean ("until 2020").
    """
    text = text.strip()
    m = _DATE_RE.match(text)
    if m:
        year, month, day = int(m.group(1)), m.group(2), m.group(3)
    else:
        m = _US_DATE_RE.match(text)
        if not m:
            raise ValueError(f"invalid date {text!r}; expected YYYY, YYYY-MM or YYYY-MM-DD")
        year, month, day = int(m.group(3)), m.group(1), m.group(2)
    try:
        if month is None:
            value = _dt.date(year, 12, 31) if upper else _dt.date(year, 1, 1)
        elif day is None:
            mon = int(month)
            last = calendar.monthrange(year, mon)[1] if 1 <= mon <= 12 else 0
            value = _dt.date(year, mon, last if upper else 1)
        else:
            value = _dt.date(year, int(month), int(day))
    except ValueError:
        raise ValueError(f"invalid date {text!r}") from None
    return value.isoformat()

