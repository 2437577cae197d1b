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

The pieces live in modules of their own and are re-exported here, so ``trialfinder.search.essie`` stays
the one place to import the language from: the AST (:mod:`~trialfinder.search.essie_ast`), the lexer
(:mod:`~trialfinder.search.essie_lexer`), the field and operator-argument tables
(:mod:`~trialfinder.search.essie_fields`), literal values such as radii and date bounds
(:mod:`~trialfinder.search.literals`), the formatter (:mod:`~trialfinder.search.essie_format`) and the
errors (:mod:`~trialfinder.search.errors`). This module is the grammar.
"""

from __future__ import annotations

import math

from trialfinder.model.study import parse_age
from trialfinder.search.errors import EssieSyntaxError, SearchError
from trialfinder.search.essie_ast import (
    And,
    Area,
    Bound,
    Coverage,
    Distance,
    Expansion,
    Missing,
    Node,
    Not,
    Or,
    Range,
    Search,
    Term,
    Tilt,
    walk,
)
from trialfinder.search.essie_fields import (
    AREA_FIELDS,
    COVERAGE_MODES,
    EXPANSION_MODES,
    SEARCH_DOCS,
    canonical_field,
    known_area_fields,
    unknown_field_message,
)
from trialfinder.search.essie_format import format_essie
from trialfinder.search.essie_lexer import Token, tokenize
from trialfinder.search.literals import KM_PER_MILE as KM_PER_MILE
from trialfinder.search.literals import MAX_RADIUS_KM as MAX_RADIUS_KM
from trialfinder.search.literals import check_lat_lon, parse_date_bound, parse_number, radius_km_from_text

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


_STARTS_UNARY = frozenset({"WORD", "PHRASE", "LPAREN", "NOT", "MISSING", "OP"})


class _Parser:
    def __init__(self, text: str, param: str) -> None:
        self.param = param
        self.toks = tokenize(text, param)
        self.i = 0
        self.depth = 0
        # innermost AREA field (canonical name) or None outside any AREA
        self.fields: list[str | None] = [None]

    # -- helpers
    def fail(self, pos: int, detail: str) -> EssieSyntaxError:
        return EssieSyntaxError(pos, detail, self.param)

    @property
    def tok(self) -> Token:
        return self.toks[self.i]

    def take(self) -> Token:
        tok = self.toks[self.i]
        self.i += 1
        return tok

    def describe(self, tok: Token) -> str:
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

    def prefix_op(self, tok: Token) -> Node:
        arg, arg_pos = tok.arg.strip(), tok.arg_pos + (len(tok.arg) - len(tok.arg.lstrip()))
        after = f"{tok.text}[{arg}]"
        if tok.text in ("AREA", "TILT"):
            field = canonical_field(arg)
            if field is None:
                raise self.fail(arg_pos, unknown_field_message(arg, tok.text))
            if tok.text == "TILT":
                return Tilt(field, self.operand(after))
            self.fields.append(field)
            try:
                return Area(field, self.operand(after))
            finally:
                self.fields.pop()
        if tok.text == "SEARCH":
            doc = _pick(arg, SEARCH_DOCS)
            if doc is None:
                raise self.fail(arg_pos, f"unknown SEARCH document {arg!r}; expected one of "
                                         f"{', '.join(SEARCH_DOCS)}")
            self.fields.append(None)
            try:
                return Search(doc, self.operand(after))
            finally:
                self.fields.pop()
        modes = EXPANSION_MODES if tok.text == "EXPANSION" else COVERAGE_MODES
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
        return field, (AREA_FIELDS[field] if field else None)

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
                value = parse_number(text)
                if value is None:
                    raise ValueError(f"invalid number {text.strip()!r}")
                return value
            age = parse_age(text)
            if age is None or not math.isfinite(age):
                raise ValueError(f"invalid age {text.strip()!r}; expected e.g. '16 years' or '6 months'")
            return age
        except ValueError as exc:
            raise self.fail(pos, f"AREA[{field}]: {exc}") from None

    def range_(self, tok: Token) -> Range:
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

    def distance(self, tok: Token) -> Distance:
        field, _ = self.field_kind()
        if field != "LocationGeoPoint":
            raise self.fail(tok.pos, "DISTANCE needs the geo field: write AREA[LocationGeoPoint]DISTANCE[lat,lon,50mi]")
        parts = tok.arg.split(",")
        if len(parts) != 3:
            raise self.fail(tok.arg_pos, "DISTANCE needs three arguments: latitude, longitude, radius "
                                         "(e.g. DISTANCE[39.0,-77.1,50mi])")
        starts = [tok.arg_pos, tok.arg_pos + len(parts[0]) + 1, tok.arg_pos + len(parts[0]) + len(parts[1]) + 2]
        starts = [s + len(p) - len(p.lstrip()) for s, p in zip(starts, parts, strict=True)]
        lat, lon = parse_number(parts[0]), parse_number(parts[1])
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


