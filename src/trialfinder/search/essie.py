"""A parser for the subset of ClinicalTrials.gov's Essie expression syntax that trialfinder supports.

Why a real parser: every ``query.*`` and ``filter.advanced`` parameter of the API v2 is an Essie
expression, and users paste expressions from clinicaltrials.gov ("expert search"). A parse into a small,
typed AST lets the store evaluate them without re-implementing the syntax, and lets every mistake come
back as one clear :class:`EssieSyntaxError` with a character position instead of an SQL error or, worse,
a silently wrong result. This module is pure: no I/O, no SQL.

Grammar (operator precedence from highest to lowest, as ClinicalTrials.gov documents it: search terms
and source operators; ``NOT`` and context operators; ``AND``; ``OR``)::

    expr     := or_expr
    or_expr  := and_expr ("OR" and_expr)*
    and_expr := unary (["AND"] unary)*          # adjacency is an implicit AND; "a NOT b" = a AND NOT b
    unary    := "NOT" unary
              | "AREA[" field "]" unary | "SEARCH[" doc "]" unary                 (source operators)
              | "EXPANSION[" mode "]" unary | "COVERAGE[" mode "]" unary | "TILT[" field "]" unary
              | primary
    primary  := word+ | '"' phrase '"' | "(" or_expr ")"
              | "RANGE[" bound "," bound "]" | "MISSING" | "DISTANCE[" lat "," lon "," radius "]"

Operators are upper case (``and`` is an ordinary word). A backslash makes the next character literal, so
``\\MISSING`` searches for the word and ``\\"`` puts a quote inside a phrase. Adjacent bare words form one
:class:`Term` (``heart attack``): every word must match, in any order; the whole text is the unit for
synonym lookup and phrase-proximity ranking, exactly as Essie treats an unquoted multi-word term.

Inside ``AREA[field]`` the field's kind shapes the operand: on date, number and age fields a bare value
becomes an equality :class:`Range` (``AREA[StartDate]2022`` is ``RANGE[2022-01-01, 2022-12-31]``), on
boolean fields it must be ``true``/``false``; ``RANGE``, ``MISSING`` and ``DISTANCE`` are only meaningful
inside an ``AREA`` and say so when used elsewhere.
"""

from __future__ import annotations

import calendar
import datetime as _dt
import difflib
import math
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from types import MappingProxyType

from trialfinder.model.study import parse_age

__all__ = [
    "And",
    "Area",
    "Coverage",
    "Distance",
    "EssieSyntaxError",
    "Expansion",
    "Missing",
    "Node",
    "Not",
    "Or",
    "Range",
    "Search",
    "SearchError",
    "Term",
    "Tilt",
    "format_essie",
    "known_area_fields",
    "parse_essie",
    "radius_km_from_text",
    "walk",
]

#: Longest expression parse_essie accepts (the request layer caps each parameter at 1,000 characters).
MAX_ESSIE_CHARS = 10_000
#: Deepest nesting of parentheses and prefix operators; keeps hostile input away from Python's stack.
MAX_DEPTH = 64
#: Largest search radius anywhere in trialfinder: half the Earth's circumference, roughly.
MAX_RADIUS_KM = 20_000.0
KM_PER_MILE = 1.609344


class SearchError(ValueError):
    """Bad search input, naming the offending parameter so a caller can point the user at it.

    Defined here (the lowest layer of ``trialfinder.search``) so the Essie parser can raise it without an
    import cycle; ``trialfinder.search.request`` and ``trialfinder.search`` re-export it.
    ``str(err)`` is ``"<param>: <message>"``.
    """

    def __init__(self, param: str, message: str) -> None:
        super().__init__(f"{param}: {message}")
        self.param = param
        self.message = message

    def with_param(self, param: str) -> SearchError:
        """The same error attributed to another parameter name (e.g. a field name -> its API name)."""
        return SearchError(param, self.message)


class EssieSyntaxError(SearchError):
    """An Essie expression that cannot be parsed; ``position`` is the 0-based character offset."""

    def __init__(self, position: int, detail: str, param: str = "query") -> None:
        super().__init__(param, f"syntax error at position {position}: {detail}")
        self.position = position
        self.detail = detail

    def with_param(self, param: str) -> EssieSyntaxError:
        return EssieSyntaxError(self.position, self.detail, param)


# --------------------------------------------------------------------------------------------- AST

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


# ---------------------------------------------------------------------------------- field table

# Canonical API v2 field ("piece") names and search areas usable in AREA[...], by kind. The kinds decide
# what an operand may be: "area" (a weighted group of fields, as query.* uses), "text", "id", "enum",
# "date", "number", "age" (compared in years), "bool", "geo".
_FIELD_KINDS: dict[str, tuple[str, ...]] = {
    "area": ("BasicSearch", "ConditionSearch", "InterventionSearch", "LocationSearch", "OutcomeSearch",
             "SponsorSearch", "TitleSearch", "IdSearch", "PatientSearch"),
    "id": ("NCTId", "NCTIdAlias", "OrgStudyId", "SecondaryId"),
    "text": ("BriefTitle", "OfficialTitle", "Acronym", "OrgFullName", "WhyStopped", "LeadSponsorName",
             "CollaboratorName", "ResponsiblePartyInvestigatorFullName", "BriefSummary",
             "DetailedDescription", "Condition", "Keyword", "ArmGroupLabel", "ArmGroupDescription",
             "InterventionName", "InterventionOtherName", "InterventionDescription",
             "PrimaryOutcomeMeasure", "PrimaryOutcomeDescription", "PrimaryOutcomeTimeFrame",
             "SecondaryOutcomeMeasure", "SecondaryOutcomeDescription", "SecondaryOutcomeTimeFrame",
             "OtherOutcomeMeasure", "EligibilityCriteria", "StudyPopulation", "CentralContactName",
             "OverallOfficialName", "OverallOfficialAffiliation", "LocationFacility", "LocationCity",
             "LocationState", "LocationZip", "LocationCountry", "LocationContactName",
             "ConditionMeshTerm", "ConditionMeshId", "ConditionAncestorTerm", "ConditionAncestorId",
             "InterventionMeshTerm", "InterventionMeshId", "InterventionAncestorTerm",
             "InterventionAncestorId", "ReferencePMID", "ReferenceCitation"),
    "enum": ("OverallStatus", "LastKnownStatus", "OrgClass", "LeadSponsorClass", "CollaboratorClass",
             "StudyType", "Phase", "DesignAllocation", "DesignInterventionModel", "DesignPrimaryPurpose",
             "DesignMasking", "DesignObservationalModel", "DesignTimePerspective", "EnrollmentType",
             "ArmGroupType", "InterventionType", "Sex", "StdAge", "SamplingMethod", "LocationStatus",
             "ResponsiblePartyType"),
    "date": ("StartDate", "PrimaryCompletionDate", "CompletionDate", "StudyFirstSubmitDate",
             "StudyFirstPostDate", "ResultsFirstSubmitDate", "ResultsFirstPostDate", "LastUpdateSubmitDate",
             "LastUpdatePostDate", "StatusVerifiedDate"),
    "number": ("EnrollmentCount",),
    "age": ("MinimumAge", "MaximumAge"),
    "bool": ("HealthyVolunteers", "HasResults", "PatientRegistry", "HasExpandedAccess",
             "IsFDARegulatedDrug", "IsFDARegulatedDevice", "OversightHasDMC", "GenderBased",
             "ExpAccTypeIndividual", "ExpAccTypeIntermediate", "ExpAccTypeTreatment",
             "LargeDocHasProtocol", "LargeDocHasSAP", "LargeDocHasICF", "FDAAA801Violation"),
    "geo": ("LocationGeoPoint",),
}
_AREA_FIELDS: Mapping[str, str] = MappingProxyType(
    {name: kind for kind, names in _FIELD_KINDS.items() for name in names}
)
# Older names people still paste (classic site / API v1) -> the API v2 name.
_FIELD_ALIASES = {"gender": "Sex", "stdage": "StdAge", "conditions": "Condition", "phases": "Phase"}
_FIELD_LOOKUP = {name.lower(): name for name in _AREA_FIELDS} | _FIELD_ALIASES

_SEARCH_DOCS = ("Study", "Location")
_EXPANSION_MODES = ("None", "Term", "Concept", "Relaxation", "Lossy")
_COVERAGE_MODES = ("FullMatch", "StartsWith", "EndsWith", "Contains")


def known_area_fields() -> Mapping[str, str]:
    """Field and search-area names accepted in ``AREA[...]`` (canonical spelling) -> kind.

    Kinds: area, id, text, enum, date, number, age, bool, geo. Names are matched case-insensitively, and
    ``Gender`` is accepted for ``Sex``.
    """
    return _AREA_FIELDS


def _canonical_field(name: str) -> str | None:
    return _FIELD_LOOKUP.get(name.strip().lower())


# ------------------------------------------------------------------------------ value helpers

_NUMBER_RE = re.compile(r"^[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?$")
_RADIUS_RE = re.compile(
    r"^\s*(\d+(?:\.\d*)?(?:[eE][+-]?\d+)?|\.\d+)\s*(mi|mile|miles|km|kms|kilometers?|kilometres?)?\s*$",
    re.IGNORECASE,
)


def _float(text: str) -> float | None:
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
        if _float(text) is not None:
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


# ---------------------------------------------------------------------------------------- lexer

_KEYWORDS = frozenset({"AND", "OR", "NOT", "MISSING"})
_BRACKET_OPS = ("AREA", "SEARCH", "RANGE", "DISTANCE", "EXPANSION", "COVERAGE", "TILT")
_SPECIAL = frozenset('()"[]')


@dataclass(slots=True)
class _Tok:
    kind: str  # WORD PHRASE LPAREN RPAREN AND OR NOT MISSING OP EOF
    pos: int
    text: str = ""
    arg: str = ""  # OP: the text between the brackets
    arg_pos: int = 0  # OP: offset of the first character after '['


def _tokenize(text: str, param: str) -> list[_Tok]:
    toks: list[_Tok] = []
    n = len(text)
    i = 0

    def fail(pos: int, detail: str) -> EssieSyntaxError:
        return EssieSyntaxError(pos, detail, param)

    while i < n:
        c = text[i]
        if c.isspace():
            i += 1
        elif c == "(":
            toks.append(_Tok("LPAREN", i))
            i += 1
        elif c == ")":
            toks.append(_Tok("RPAREN", i))
            i += 1
        elif c == '"':
            start = i
            i += 1
            buf: list[str] = []
            while i < n and text[i] != '"':
                if text[i] == "\\" and i + 1 < n:
                    i += 1
                buf.append(text[i])
                i += 1
            if i >= n:
                raise fail(start, "unterminated quoted phrase (no closing '\"')")
            i += 1
            phrase = " ".join("".join(buf).split())
            if not phrase:
                raise fail(start, "empty quoted phrase")
            toks.append(_Tok("PHRASE", start, phrase))
        elif c in "[]":
            raise fail(i, f"unexpected '{c}'")
        else:
            start = i
            buf = []
            escaped = False
            while i < n and not text[i].isspace() and text[i] not in _SPECIAL:
                if text[i] == "\\" and i + 1 < n and not text[i + 1].isspace():
                    escaped = True
                    i += 1
                buf.append(text[i])
                i += 1
            word = "".join(buf)
            j = i
            while j < n and text[j].isspace():
                j += 1
            if not escaped and word in _BRACKET_OPS:
                if j >= n or text[j] != "[":
                    raise fail(j, f"expected '[' after {word}")
                close = j + 1
                while close < n and text[close] not in "[]":
                    close += 1
                if close >= n or text[close] != "]":
                    raise fail(close, f"expected ']' after {word} {_OP_ARG_NAME[word]}")
                toks.append(_Tok("OP", start, word, text[j + 1:close], j + 1))
                i = close + 1
            elif i < n and text[i] == "[" and not escaped:
                hint = " (operators are upper case)" if word.upper() in _BRACKET_OPS else ""
                raise fail(start, f"unknown operator '{word}['; expected one of "
                                  f"{', '.join(op + '[' for op in _BRACKET_OPS)}{hint}")
            elif not escaped and word in _KEYWORDS:
                toks.append(_Tok(word, start, word))
            else:
                toks.append(_Tok("WORD", start, word))
    toks.append(_Tok("EOF", n))
    return toks


_OP_ARG_NAME = {"AREA": "field", "SEARCH": "document", "RANGE": "bounds", "DISTANCE": "arguments",
                "EXPANSION": "mode", "COVERAGE": "mode", "TILT": "field"}


# --------------------------------------------------------------------------------------- parser

_STARTS_UNARY = frozenset({"WORD", "PHRASE", "LPAREN", "NOT", "MISSING", "OP"})


class _Parser:
    def __init__(self, text: str, param: str) -> None:
        self.param = param
        self.toks = _tokenize(text, param)
        self.i = 0
        self.depth = 0
        # innermost AREA field (canonical name) or None outside any AREA
        self.fields: list[str | None] = [None]

    # -- helpers
    def fail(self, pos: int, detail: str) -> EssieSyntaxError:
        return EssieSyntaxError(pos, detail, self.param)

    @property
    def tok(self) -> _Tok:
        return self.toks[self.i]

    def take(self) -> _Tok:
        tok = self.toks[self.i]
        self.i += 1
        return tok

    def describe(self, tok: _Tok) -> str:
        if tok.kind == "EOF":
            return "end of expression"
        if tok.kind == "OP":
            return f"'{tok.text}['"
        if tok.kind == "LPAREN":
            return "'('"
        if tok.kind == "RPAREN":
            return "')'"
        return f"'{tok.text}'"

    def enter(self, pos: int) -> None:
        self.depth += 1
        if self.depth > MAX_DEPTH:
            raise self.fail(pos, f"expression nested too deeply (more than {MAX_DEPTH} levels)")

    # -- grammar
    def parse(self) -> Node:
        if self.tok.kind == "EOF":
            raise self.fail(0, "empty expression; expected a search term")
        node = self.or_expr()
        tok = self.tok
        if tok.kind == "RPAREN":
            raise self.fail(tok.pos, "unexpected ')' (no matching '(')")
        if tok.kind != "EOF":  # pragma: no cover - every other token starts or continues an expression
            raise self.fail(tok.pos, f"unexpected {self.describe(tok)}")
        return node

    def operand(self, after: str) -> Node:
        tok = self.tok
        if tok.kind in _STARTS_UNARY:
            return self.unary()
        raise self.fail(tok.pos, f"expected a search term after {after}, found {self.describe(tok)}")

    def or_expr(self) -> Node:
        items = [self.and_expr()]
        while self.tok.kind == "OR":
            self.take()
            if self.tok.kind not in _STARTS_UNARY:
                raise self.fail(self.tok.pos, f"expected a search term after OR, found {self.describe(self.tok)}")
            items.append(self.and_expr())
        return _flatten(Or, items)

    def and_expr(self) -> Node:
        tok = self.tok
        if tok.kind in ("AND", "OR"):
            raise self.fail(tok.pos, f"'{tok.kind}' needs a search term before it")
        if tok.kind not in _STARTS_UNARY:
            raise self.fail(tok.pos, f"expected a search term, found {self.describe(tok)}")
        items = [self.unary()]
        while True:
            tok = self.tok
            if tok.kind == "AND":
                self.take()
                items.append(self.operand("AND"))
            elif tok.kind in _STARTS_UNARY:
                items.append(self.unary())  # implicit AND; "a NOT b" lands here as a AND (NOT b)
            else:
                break
        return _flatten(And, items)

    def unary(self) -> Node:
        tok = self.tok
        self.enter(tok.pos)
        try:
            if tok.kind == "NOT":
                self.take()
                return Not(self.operand("NOT"))
            if tok.kind == "OP" and tok.text not in ("RANGE", "DISTANCE"):
                return self.prefix_op(self.take())
            return self.primary()
        finally:
            self.depth -= 1

    def prefix_op(self, tok: _Tok) -> Node:
        arg, arg_pos = tok.arg.strip(), tok.arg_pos + (len(tok.arg) - len(tok.arg.lstrip()))
        after = f"{tok.text}[{arg}]"
        if tok.text in ("AREA", "TILT"):
            field = _canonical_field(arg)
            if field is None:
                raise self.fail(arg_pos, _unknown_field_message(arg, tok.text))
            if tok.text == "TILT":
                return Tilt(field, self.operand(after))
            self.fields.append(field)
            try:
                return Area(field, self.operand(after))
            finally:
                self.fields.pop()
        if tok.text == "SEARCH":
            doc = _pick(arg, _SEARCH_DOCS)
            if doc is None:
                raise self.fail(arg_pos, f"unknown SEARCH document {arg!r}; expected one of "
                                         f"{', '.join(_SEARCH_DOCS)}")
            self.fields.append(None)
            try:
                return Search(doc, self.operand(after))
            finally:
                self.fields.pop()
        modes = _EXPANSION_MODES if tok.text == "EXPANSION" else _COVERAGE_MODES
        mode = _pick(arg, modes)
        if mode is None:
            raise self.fail(arg_pos, f"unknown {tok.text} mode {arg!r}; expected one of {', '.join(modes)}")
        if tok.text == "EXPANSION":
            return Expansion(mode, self.operand(after))
        return Coverage(mode, self.operand(after))

    def primary(self) -> Node:
        tok = self.tok
        if tok.kind == "LPAREN":
            self.take()
            if self.tok.kind == "RPAREN":
                raise self.fail(self.tok.pos, "empty parentheses; expected a search term")
            node = self.or_expr()
            if self.tok.kind != "RPAREN":
                raise self.fail(self.tok.pos, f"expected ')' to close the '(' at position {tok.pos}, "
                                              f"found {self.describe(self.tok)}")
            self.take()
            return node
        if tok.kind == "WORD":
            words = [self.take().text]
            while self.tok.kind == "WORD":
                words.append(self.take().text)
            return self.term(" ".join(words), False, tok.pos)
        if tok.kind == "PHRASE":
            self.take()
            return self.term(tok.text, True, tok.pos)
        if tok.kind == "MISSING":
            self.take()
            if self.fields[-1] is None:
                raise self.fail(tok.pos, "MISSING needs a field: write AREA[Field]MISSING")
            return Missing()
        if tok.kind == "OP" and tok.text == "RANGE":
            return self.range_(self.take())
        if tok.kind == "OP" and tok.text == "DISTANCE":
            return self.distance(self.take())
        raise self.fail(tok.pos, f"expected a search term, found {self.describe(tok)}")  # pragma: no cover

    def field_kind(self) -> tuple[str | None, str | None]:
        field = self.fields[-1]
        return field, (_AREA_FIELDS[field] if field else None)

    def term(self, text: str, phrase: bool, pos: int) -> Node:
        field, kind = self.field_kind()
        if kind in ("date", "number", "age"):
            lo = self.bound(text, kind, False, pos)
            hi = self.bound(text, kind, True, pos)
            return Range(lo, hi, kind)
        if kind == "bool":
            value = text.lower()
            if value not in ("true", "false"):
                raise self.fail(pos, f"AREA[{field}] expects true or false, found {text!r}")
            return Term(value, phrase)
        if kind == "geo":
            raise self.fail(pos, f"AREA[{field}] expects DISTANCE[lat,lon,radius] or MISSING")
        return Term(text, phrase)

    def bound(self, text: str, kind: str, upper: bool, pos: int) -> Bound:
        field = self.fields[-1]
        try:
            if kind == "date":
                return parse_date_bound(text, upper)
            if kind == "number":
                value = _float(text)
                if value is None:
                    raise ValueError(f"invalid number {text.strip()!r}")
                return value
            age = parse_age(text)
            if age is None or not math.isfinite(age):
                raise ValueError(f"invalid age {text.strip()!r}; expected e.g. '16 years' or '6 months'")
            return age
        except ValueError as exc:
            raise self.fail(pos, f"AREA[{field}]: {exc}") from None

    def range_(self, tok: _Tok) -> Range:
        field, kind = self.field_kind()
        if field is None:
            raise self.fail(tok.pos, "RANGE needs a field: write AREA[Field]RANGE[low, high]")
        if kind not in ("date", "number", "age"):
            raise self.fail(tok.pos, f"RANGE is not supported on {kind} field {field}; "
                                     "use it on a date, number or age field")
        parts = tok.arg.split(",")
        if len(parts) != 2:
            raise self.fail(tok.arg_pos, "RANGE needs two bounds separated by a comma, e.g. RANGE[MIN, 16 years]")
        bounds: list[Bound] = []
        offset = tok.arg_pos
        for upper, part in zip((False, True), parts, strict=True):
            pos = offset + len(part) - len(part.lstrip())
            value = part.strip()
            if not value:
                raise self.fail(pos, "RANGE bound is empty; use MIN or MAX for an open end")
            if value.upper() in ("MIN", "MAX"):
                if value.upper() != ("MAX" if upper else "MIN"):
                    raise self.fail(pos, f"{value.upper()} cannot be the {'upper' if upper else 'lower'} bound")
                bounds.append(None)
            else:
                bounds.append(self.bound(value, kind, upper, pos))
            offset += len(part) + 1
        lo, hi = bounds
        if lo is not None and hi is not None and lo > hi:  # type: ignore[operator]
            raise self.fail(tok.arg_pos, "RANGE lower bound is greater than the upper bound")
        return Range(lo, hi, kind)

    def distance(self, tok: _Tok) -> Distance:
        field, _ = self.field_kind()
        if field != "LocationGeoPoint":
            raise self.fail(tok.pos, "DISTANCE needs the geo field: write AREA[LocationGeoPoint]DISTANCE[lat,lon,50mi]")
        parts = tok.arg.split(",")
        if len(parts) != 3:
            raise self.fail(tok.arg_pos, "DISTANCE needs three arguments: latitude, longitude, radius "
                                         "(e.g. DISTANCE[39.0,-77.1,50mi])")
        starts = [tok.arg_pos, tok.arg_pos + len(parts[0]) + 1, tok.arg_pos + len(parts[0]) + len(parts[1]) + 2]
        starts = [s + len(p) - len(p.lstrip()) for s, p in zip(starts, parts, strict=True)]
        lat, lon = _float(parts[0]), _float(parts[1])
        if lat is None:
            raise self.fail(starts[0], f"DISTANCE: invalid latitude {parts[0].strip()!r}")
        if lon is None:
            raise self.fail(starts[1], f"DISTANCE: invalid longitude {parts[1].strip()!r}")
        try:
            check_lat_lon(lat, lon)
        except ValueError as exc:
            raise self.fail(starts[0 if "latitude" in str(exc) else 1], f"DISTANCE: {exc}") from None
        try:
            radius = radius_km_from_text(parts[2])
        except ValueError as exc:
            raise self.fail(starts[2], f"DISTANCE: {exc}") from None
        return Distance(lat, lon, radius)


def _pick(value: str, choices: tuple[str, ...]) -> str | None:
    for choice in choices:
        if choice.lower() == value.lower():
            return choice
    return None


def _unknown_field_message(name: str, op: str) -> str:
    close = difflib.get_close_matches(name, list(_AREA_FIELDS), n=3, cutoff=0.7)
    if not close:
        close = difflib.get_close_matches(name.lower(), list(_FIELD_LOOKUP), n=3, cutoff=0.7)
        close = [_FIELD_LOOKUP[c] for c in close]
    hint = f"; did you mean {' or '.join(dict.fromkeys(close))}?" if close else ""
    return (f"unknown {op} field {name!r}{hint} (known fields: see trialfinder.search.essie."
            f"known_area_fields(), e.g. Condition, InterventionName, OverallStatus, StartDate)")


def _flatten(cls: type[And] | type[Or], items: list[Node]) -> Node:
    if len(items) == 1:
        return items[0]
    flat: list[Node] = []
    for item in items:
        flat.extend(item.items if isinstance(item, cls) else (item,))
    return cls(tuple(flat))


def parse_essie(text: str, *, param: str = "query") -> Node:
    """Parse an Essie expression into an AST; raise :class:`EssieSyntaxError` (never anything else).

    ``param`` names the request parameter the text came from, so the error says where to look
    (e.g. ``query.cond: syntax error at position 14: expected ']' after RANGE bounds``).
    """
    if not isinstance(text, str):
        raise EssieSyntaxError(0, f"expected text, got {type(text).__name__}", param)
    if len(text) > MAX_ESSIE_CHARS:
        raise EssieSyntaxError(MAX_ESSIE_CHARS, f"expression too long ({len(text)} characters; "
                                                f"the limit is {MAX_ESSIE_CHARS})", param)
    # typographic quotes pasted from documents act as quotes (same length, so positions are unchanged)
    text = text.replace("\u201c", '"').replace("\u201d", '"')
    return _Parser(text, param).parse()


# ------------------------------------------------------------------------------------ formatter

_PREC = {Or: 1, And: 2}


def _escape_word(word: str) -> str:
    out = "".join("\\" + c if c in _SPECIAL or c == "\\" else c for c in word)
    if word in _KEYWORDS or word in _BRACKET_OPS:
        out = "\\" + out
    return out


def _format_number(value: float) -> str:
    """Shortest text that parses back to exactly ``value``."""
    if value.is_integer() and abs(value) < 1e15:
        return str(int(value))
    return repr(value)


def _format_bound(value: Bound, kind: str, upper: bool) -> str:
    if value is None:
        return "MAX" if upper else "MIN"
    if isinstance(value, float):
        if kind == "age":  # ages are rounded to 4 decimals by parse_age, which takes no exponent
            return f"{value:.4f}".rstrip("0").rstrip(".") + " years"
        return _format_number(value)
    return str(value)


def format_essie(node: Node) -> str:
    """Essie text for an AST; ``parse_essie(format_essie(n)) == n`` for every tree parse_essie returns.

    Used to show a combined or normalised expression back to the user and to store it in page tokens.
    """
    return _fmt(node, 0)


def _fmt(node: Node, min_prec: int) -> str:
    if isinstance(node, And | Or):
        prec = _PREC[type(node)]
        sep = " AND " if isinstance(node, And) else " OR "
        text = sep.join(_fmt(item, prec + 1) for item in node.items)
        return f"({text})" if prec < min_prec else text
    if isinstance(node, Term):
        if node.phrase:
            return '"' + node.text.replace("\\", "\\\\").replace('"', '\\"') + '"'
        return " ".join(_escape_word(w) for w in node.text.split())
    if isinstance(node, Not):
        return "NOT " + _fmt(node.item, 3)
    if isinstance(node, Area):
        return f"AREA[{node.field}]" + _fmt(node.node, 3)
    if isinstance(node, Search):
        return f"SEARCH[{node.doc}]" + _fmt(node.node, 3)
    if isinstance(node, Expansion):
        return f"EXPANSION[{node.mode}]" + _fmt(node.node, 3)
    if isinstance(node, Coverage):
        return f"COVERAGE[{node.mode}]" + _fmt(node.node, 3)
    if isinstance(node, Tilt):
        return f"TILT[{node.field}]" + _fmt(node.node, 3)
    if isinstance(node, Range):
        return f"RANGE[{_format_bound(node.lo, node.kind, False)}, {_format_bound(node.hi, node.kind, True)}]"
    if isinstance(node, Missing):
        return "MISSING"
    if isinstance(node, Distance):
        return (f"DISTANCE[{_format_number(node.lat)},{_format_number(node.lon)},"
                f"{_format_number(node.radius_km)}km]")
    raise TypeError(f"not an Essie node: {node!r}")
