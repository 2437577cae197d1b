"""The Essie formatter: an AST back to Essie text that parses to the same tree.

Why apart from the parser: the request model uses it to show a combined or normalised expression back to
the user and to keep ``filter.advanced`` text in step with its AST (page tokens carry the text), which
needs only the node types and the lexer's escaping rules, not the grammar.
"""

from __future__ import annotations

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
)
from trialfinder.search.essie_lexer import BRACKET_OPS, KEYWORDS, SPECIAL_CHARS

__all__ = ["format_essie"]

_PREC = {Or: 1, And: 2}


def _escape_word(word: str) -> str:
    out = "".join("\\" + c if c in SPECIAL_CHARS or c == "\\" else c for c in word)
    if word in KEYWORDS or word in BRACKET_OPS:
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
