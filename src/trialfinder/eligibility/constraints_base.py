"""Shared types of constraint extraction: :class:`Constraint` and the per-item builder.

Split out of :mod:`trialfinder.eligibility.constraints` so the extractors for conditions and for
populations can live in their own modules without importing each other.
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass, field
from typing import Any

from trialfinder.eligibility.constraints_lexicon import NEG_BEFORE_RE
from trialfinder.eligibility.nlp import normalize
from trialfinder.eligibility.vocab import Vocab

__all__ = ["KINDS", "Builder", "Constraint", "c_end", "c_start", "negated_before"]

KINDS = (
    "age",
    "sex",
    "pregnancy",
    "pregnancy_plan",
    "lactation",
    "contraception",
    "childbearing",
    "menopause",
    "condition",
    "therapy",
    "lab",
    "infection",
    "malignancy",
    "surgery",
    "vaccination",
    "consent",
    "compliance",
    "life_expectancy",
    "participation",
)


@dataclass
class Constraint:
    """One checkable piece of a criterion item (see module docstring for the logical form)."""

    kind: str
    text: str
    span: tuple[int, int]
    confidence: float
    group: int = 0
    negated: bool = False
    conditional: bool = False
    low: float | None = None
    high: float | None = None
    low_inclusive: bool = True
    high_inclusive: bool = True
    unit: str | None = None
    analyte: str | None = None
    value: str | None = None
    terms: list[str] = field(default_factory=list)
    concepts: list[str] = field(default_factory=list)
    qualifiers: list[str] = field(default_factory=list)
    exceptions: list[str] = field(default_factory=list)
    window_days: float | None = None
    min_days: float | None = None
    stable_days: float | None = None
    historical: bool = False
    current: bool = False
    required: list[str] = field(default_factory=list)
    family: bool = False

    def to_dict(self) -> dict[str, Any]:
        """Plain-JSON form for APIs and prediction files."""
        d = asdict(self)
        d["span"] = list(self.span)
        return {k: v for k, v in d.items() if v not in (None, [], False) or k in ("kind", "negated")}

    def describe(self) -> str:
        """A short human-readable rendering ("age ≥ 18", "no history of: diabetes")."""
        if self.kind in ("age", "lab", "life_expectancy"):
            name = self.analyte or self.kind
            return f"{name} in {_interval(self)}{(' ' + self.unit) if self.unit else ''}"
        if self.kind == "sex":
            return f"sex: {self.value}"
        what = ", ".join(self.terms) if self.terms else self.kind
        prefix = "no " if self.negated else ""
        return f"{prefix}{self.kind}: {what}"


def _interval(c: Constraint) -> str:
    lo = "-inf" if c.low is None else f"{c.low:g}"
    hi = "inf" if c.high is None else f"{c.high:g}"
    return f"{'[' if c.low_inclusive else '('}{lo}, {hi}{']' if c.high_inclusive else ')'}"


# --------------------------------------------------------------------------------------------------


class Builder:
    """Accumulates the constraints of one item, tracking which text spans are already explained."""

    def __init__(self, text: str, kind: str, vocab: Vocab):
        self.text = text
        self.kind = kind
        self.vocab = vocab
        self.norm, self.mapping = normalize(text, vocab)
        self.out: list[Constraint] = []
        self.consumed: list[tuple[int, int]] = []
        self.next_group = 0
        self.has_labs = False
        self.offset = 0  # where ``text`` starts inside the caller's item text
        self.full_norm = self.norm  # ``norm`` before exception clauses were blanked

    def span(self, start: int, end: int) -> tuple[int, int]:
        a = self.mapping[min(start, len(self.mapping) - 1)]
        b = self.mapping[min(max(end - 1, start), len(self.mapping) - 1)] + 1
        return a + self.offset, b + self.offset

    def add(
        self,
        kind: str,
        start: int,
        end: int,
        confidence: float,
        *,
        group: int | None = None,
        consume: bool = True,
        **kw: Any,
    ) -> Constraint:
        s = self.span(start, end)
        g = self.new_group() if group is None else group
        raw = (s[0] - self.offset, s[1] - self.offset)
        c = Constraint(
            kind=kind, text=self.text[raw[0] : raw[1]], span=s, confidence=confidence, group=g, **kw
        )
        self.out.append(c)
        if consume:
            self.consumed.append((start, end))
        return c

    def new_group(self) -> int:
        g = self.next_group
        self.next_group += 1
        return g

    def free(self, start: int, end: int) -> bool:
        return not any(a < end and start < b for a, b in self.consumed)


def negated_before(norm: str, start: int) -> bool:
    """Whether a negation cue ("no", "unable", "refusal") governs the text at ``start``."""
    window = norm[max(0, start - 40) : start]
    clause = re.split(r"[;.]|\bor\b|,", window)[-1]
    return bool(NEG_BEFORE_RE.search(clause))


def c_start(b: Builder, c: Constraint) -> int:
    """Normalised-text offset of a constraint's start (spans are stored in original offsets)."""
    for i, orig in enumerate(b.mapping):
        if orig >= c.span[0] - b.offset:
            return i
    return len(b.norm)


def c_end(b: Builder, c: Constraint) -> int:
    """Normalised-text offset just after a constraint's end."""
    for i, orig in enumerate(b.mapping):
        if orig >= c.span[1] - b.offset:
            return i
    return len(b.norm)
