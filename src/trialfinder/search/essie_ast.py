"""The Essie abstract syntax tree: the small, typed form every Essie expression is parsed into.

Why a module of its own: the parser (:mod:`trialfinder.search.essie`) builds these nodes, the formatter
(:mod:`trialfinder.search.essie_format`) prints them back, the request model combines them and the store
compiles them to SQL -- none of those needs the others, only the node types. Nodes are frozen
dataclasses, so trees compare by value (``parse_essie(format_essie(n)) == n``) and can be shared.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

__all__ = [
    "And", "Area", "Bound", "Coverage", "Distance", "Expansion", "Missing", "Node", "Not", "Or", "Range",
    "Search", "Term", "Tilt", "walk",
]

Bound = float | str | None
"""A RANGE bound: None for MIN/MAX, a float for number and age (years) fields, an ISO date string."""


@dataclass(frozen=True, slots=True)
class Term:
    """Words to match. ``phrase=False``: every word must occur, any order; ``phrase=True``: adjacent, in order.

    ``text`` is whitespace-normalised (single spaces) and unescaped.
    """

    text: str
    phrase: bool = False


@dataclass(frozen=True, slots=True)
class And:
    """All items must match (flattened: no item is itself an And)."""

    items: tuple[Node, ...]


@dataclass(frozen=True, slots=True)
class Or:
    """At least one item must match (flattened: no item is itself an Or)."""

    items: tuple[Node, ...]


@dataclass(frozen=True, slots=True)
class Not:
    """The item must not match."""

    item: Node


@dataclass(frozen=True, slots=True)
class Area:
    """Evaluate ``node`` against one field or search area (canonical name from :func:`known_area_fields`)."""

    field: str
    node: Node


@dataclass(frozen=True, slots=True)
class Range:
    """Inclusive range on the enclosing AREA's field.

    ``kind`` is that field's kind: ``"date"`` (bounds are ``YYYY-MM-DD``; a lower bound given as a year or
    month is its first day, an upper bound its last day), ``"number"`` or ``"age"`` (bounds in years,
    floats). ``None`` is MIN (for ``lo``) or MAX (for ``hi``). A study whose field is missing never matches.
    """

    lo: Bound
    hi: Bound
    kind: str


@dataclass(frozen=True, slots=True)
class Missing:
    """The enclosing AREA's field has no value (``AREA[ResultsFirstPostDate]MISSING``)."""


@dataclass(frozen=True, slots=True)
class Distance:
    """At least one location's geo point lies within ``radius_km`` of (lat, lon); great-circle distance."""

    lat: float
    lon: float
    radius_km: float


@dataclass(frozen=True, slots=True)
class Search:
    """``SEARCH[Location](...)``: every condition inside must hold for the same sub-document (one site)."""

    doc: str
    node: Node


@dataclass(frozen=True, slots=True)
class Expansion:
    """``EXPANSION[mode]``: how far terms are expanded (None, Term, Concept, Relaxation, Lossy).

    Recorded so a store can honour it (e.g. ``None``/``Term`` = no synonyms); matching ``node`` is the
    minimum a store must do.
    """

    mode: str
    node: Node


@dataclass(frozen=True, slots=True)
class Coverage:
    """``COVERAGE[mode]``: how much of a field value the term must cover (FullMatch, StartsWith, EndsWith,
    Contains)."""

    mode: str
    node: Node


@dataclass(frozen=True, slots=True)
class Tilt:
    """``TILT[field]``: ranking bias towards larger/later values of ``field``; does not change matching."""

    field: str
    node: Node


Node = Term | And | Or | Not | Area | Range | Missing | Distance | Search | Expansion | Coverage | Tilt


def walk(node: Node) -> Iterator[Node]:
    """Every node of the tree, parents before children (for finding fields, terms, distances...)."""
    stack: list[Node] = [node]
    while stack:
        current = stack.pop()
        yield current
        if isinstance(current, And | Or):
            stack.extend(reversed(current.items))
        elif isinstance(current, Not):
            stack.append(current.item)
        elif isinstance(current, Area | Search | Expansion | Coverage | Tilt):
            stack.append(current.node)
