"""One request parameter value at a time: text, booleans, lists, enum values and NCT ids, checked and
normalised, with any mistake raised as a :class:`~trialfinder.search.errors.SearchError` naming the
parameter.

Why apart from the request model: the same rules apply to every front end and to several parameters --
``filter.ids`` and the web API's ``nctId`` path share one NCT id grammar, statuses are spelt the same in
``filter.overallStatus`` and ``postFilter.overallStatus``, and every list parameter splits, strips and
de-duplicates the same way -- so the request model, aggFilters parsing and the web layer all import them
from here rather than each keeping a variant.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Any

from trialfinder.model.enums import ENUMS
from trialfinder.search.errors import SearchError

__all__ = [
    "MAX_LIST_ITEMS", "MAX_NAME_CHARS", "MAX_QUERY_CHARS", "check_bool", "dedupe", "enum_values",
    "name_values", "nct_ids_only", "normalize_enum", "normalize_nct_id", "normalize_status", "opt_bool", "opt_text",
    "split_list", "text_items",
]

#: Longest text parameter (each query area, filter.advanced, near ...), in characters.
MAX_QUERY_CHARS = 1000
#: Most values one list parameter may hold (unless the caller passes its own limit).
MAX_LIST_ITEMS = 100
#: Longest single place name (countries, states, cities).
MAX_NAME_CHARS = 200


def split_list(text: str) -> list[str]:
    """API v2 list parameters are comma- or pipe-separated."""
    return [part.strip() for part in re.split(r"[,|]", text) if part.strip()]


def dedupe(values: Iterable[Any]) -> tuple[Any, ...]:
    """The values in first-seen order without repeats (a repeated filter value must not change a search)."""
    return tuple(dict.fromkeys(values))


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
    raise SearchError(param, f"unknown value {value!r}; expected one of {', '.join(allowed)}")


def normalize_status(value: str, param: str = "filter.overallStatus") -> str:
    """An overall status in API spelling, e.g. ``"recruiting"`` -> ``"RECRUITING"``; SearchError otherwise."""
    return normalize_enum("Status", value, param)


_NCT_RE = re.compile(r"^NCT0*([1-9]\d{0,7})$", re.IGNORECASE)


def normalize_nct_id(value: str, param: str = "filter.ids") -> str:
    """``"nct1234"`` -> ``"NCT00001234"`` (API v2 accepts ``NCT`` + up to 8 digits, leading zeros optional)."""
    m = _NCT_RE.match(value.strip()) if isinstance(value, str) else None
    if not m:
        raise SearchError(param, f"invalid NCT id {value!r}; expected e.g. NCT04852770")
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
    return dedupe(normalize_nct_id(p) for p in parts)



def opt_text(value: Any, param: str, limit: int = MAX_QUERY_CHARS) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str):
        raise SearchError(param, f"expected text, got {type(value).__name__}")
    if len(value) > limit:  # as sent (the documented maxLength), before blanks are trimmed
        raise SearchError(param, f"too long ({len(value)} characters; the limit is {limit})")
    value = value.strip()
    return value or None


def check_bool(value: Any, param: str) -> bool:
    if not isinstance(value, bool):
        raise SearchError(param, f"expected true or false, got {value!r}")
    return value


def opt_bool(value: Any, param: str) -> bool | None:
    return None if value is None else check_bool(value, param)


def text_items(value: Any, param: str, limit: int = MAX_LIST_ITEMS) -> tuple[str, ...]:
    """None / "a,b" / ["a", "b"] -> ("a", "b") (stripped, no blanks, no duplicates)."""
    if value is None:
        return ()
    if isinstance(value, str):
        items: list[Any] = split_list(value)
    elif isinstance(value, Iterable) and not isinstance(value, Mapping | bytes):
        items = list(value)
    else:
        raise SearchError(param, f"expected a list, got {type(value).__name__}")
    out = []
    for item in items:
        if not isinstance(item, str):
            raise SearchError(param, f"expected text items, got {item!r}")
        if item.strip():
            out.append(item.strip())
    if len(out) > limit:
        raise SearchError(param, f"too many values ({len(out)}; the limit is {limit})")
    return dedupe(out)


def enum_values(enum_type: str, value: Any, param: str) -> tuple[str, ...]:
    return dedupe(normalize_enum(enum_type, item, param) for item in text_items(value, param))


def name_values(value: Any, param: str) -> tuple[str, ...]:
    items = text_items(value, param)
    for item in items:
        if len(item) > MAX_NAME_CHARS:
            raise SearchError(param, f"value too long ({len(item)} characters; the limit is {MAX_NAME_CHARS})")
    return items

