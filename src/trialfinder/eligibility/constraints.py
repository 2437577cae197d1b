"""Typed constraints extracted from one criterion item.

A criterion like "Age ≥ 18 years and ECOG 0-1" is free text; matching a patient needs typed, checkable
pieces: an age interval, a score range, a condition with a time window.  Each :class:`Constraint` keeps
the span of the criterion it came from (evidence) and a confidence, so that the verdict logic can
refuse to exclude a patient on a shaky parse.

Logical form: constraints with the same ``group`` are alternatives (OR); groups are combined with AND.
A ``negated`` constraint means the criterion asks for the absence of the thing.  ``conditional``
constraints say whom the item is about ("If female, ..."): when they are false the item is not applicable.
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

from trialfinder.eligibility.constraints_lexicon import (
    AGE_CONTEXT,
    COMPLIANCE_RE,
    CONSENT_RE,
    NEG_BEFORE_RE,
    NUM,
    parse_age,
    parse_labs,
    parse_window,
)
from trialfinder.eligibility.nlp import find_terms, normalize, stem, tokens
from trialfinder.eligibility.vocab import Vocab, load_vocab

__all__ = ["Constraint", "extract_constraints", "KINDS"]

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

_LEAD_MARKER = re.compile(r"^\s*(?:[-*\u2022\u00b7>]+|-{2,}|\(?\d{1,3}[.)]|\(?[a-z][.)](?=\s))\s*")
_CONDITIONAL = re.compile(
    r"^(?:if|for|in)\s+(?:the\s+case\s+of\s+)?(?P<who>female|females|male|males|women|men|woman|man|"
    r"(?:women|females?|subjects?|patients?|participants?)\s+of\s+child-?\s?bearing\s+(?:potential|age)|wocbp|"
    r"(?:they|she|he)\s+(?:are|is)\s+(?:fertile|of\s+child-?\s?bearing\s+potential)|sexually\s+active\s+\w+)\s*[,:]"
)
_CHILDBEARING = re.compile(
    r"\b(?:(?:women|females?|girls?|subjects?|patients?|participants?|those)\s+of\s+child-?\s?bearing\s+(?:potential|age)|"
    r"wocbp|fertile|child-?\s?bearing\s+potential)\b"
)
_SEX_BOTH = re.compile(
    r"\b(?:males?\s*(?:and|or|&|/|and/or)\s*females?|females?\s*(?:and|or|&|/|and/or)\s*males?|men\s+(?:and|or)\s+women|"
    r"women\s+(?:and|or)\s+men|both\s+(?:genders|sexes|sex)|either\s+(?:sex|gender)|all\s+(?:genders|sexes)|"
    r"boys\s+and\s+girls|girls\s+and\s+boys|any\s+(?:sex|gender)|gender-?\s?independent)\b"
)
_SEX_FEMALE = re.compile(
    r"^(?:(?:adult|healthy|postmenopausal|post-menopausal|premenopausal|pre-menopausal|non-?pregnant|young)\s+)?"
    r"(?:females?|women|woman|girls?)\b|\bfemale\s+(?:sex|gender|patients?|subjects?|participants?)\b"
)
_SEX_MALE = re.compile(
    r"^(?:(?:adult|healthy|young)\s+)?(?:males?|men|man|boys?)\b|\bmale\s+(?:sex|gender|patients?|subjects?|participants?)\b"
)
_NEG_PREG = re.compile(
    r"\b(?:negative\s+(?:serum\s+|urine\s+|urinary\s+|blood\s+|(?:serum|urine)\s+or\s+(?:serum|urine)\s+)?"
    r"(?:pregnancy|beta-?\s?hcg|b-?hcg|hcg|urine\s+gonadotropin)|pregnancy\s+tests?\s+(?:\w+\s+){0,5}negative|"
    r"non-?\s?pregnant|not\s+(?:be\s+)?pregnant|no\s+pregnancy)\b"
)
_PREG = re.compile(
    r"\b(?:pregnan(?:t|cy|cies)|gestation(?!al\s+age)(?:al)?|gravid|chorionic\s+gonadotroph\w*(?:\s+hormone)?\s+in\s+urine)\b"
)
_PREG_PLAN = re.compile(
    r"\b(?:plan(?:s|ning)?\s+(?:to\s+)?(?:become\s+|get\s+)?pregnan\w*|planned\s+pregnancy|desires?\s+(?:future\s+)?"
    r"(?:pregnancy|fertility)|desire\s+pregnancy|intend\w*\s+to\s+(?:become\s+)?pregnan\w*|wish\w*\s+to\s+(?:become\s+)?pregnan\w*)"
)
_LACT = re.compile(
    r"\b(?:non-?\s?lactating|breast-?\s?feeding|lactating|lactation|nursing(?!\s+home|\s+staff|\s+care))\b"
)
_CONTRA = re.compile(
    r"\b(?:contracepti\w*|birth\s+control|barrier\s+method|abstain\w*|abstinence|intrauterine\s+device|iud)\b"
)
_MENO = re.compile(r"\b(post|pre|peri)-?\s?menopausal\b")
_LIFE = re.compile(
    rf"\blife\s+expectancy\b[^0-9;]{{0,30}}?(?P<cmp>[<>]=?|≥|≤|greater than|more than|longer than|at least|less than|"
    rf"shorter than|of|over|under|minimum of)?\s*(?:at least\s+)?(?P<n>{NUM})\s*(?P<u>hours?|days?|weeks?|months?|years?)"
)
_SURVIVE = re.compile(
    rf"\b(?:not|unlikely to)\s+survive\s+(?P<n>{NUM})\s*(?P<u>hours?|days?|weeks?|months?|years?)"
)
_PARTICIPATION = re.compile(
    r"\b(?:participat\w*|enrol+(?:ed|ment)?|involvement|taking part)\b[^.;]{0,40}?\b(?:another|other|concurrent|"
    r"ongoing|previous|prior|any|an?)\s+(?:\w+\s+){0,3}(?:study|studies|trials?|protocol)\b|"
    r"\b(?:investigational\s+(?:drug|agent|product|device|study)s?)\b|\bprior\s+participation\b"
)
_SURGERY = re.compile(
    r"\b(?:surgery|surgical|operation|operative|resection|laparotomy|laparoscop\w*|\w+ectomy|\w+otomy|\w+plasty|transplant\w*|amputation|bypass|grafting)\b"
)
_VACCINE = re.compile(r"\b(?:vaccin\w*|immuni[sz]ation|laiv|flumist)\b")
_EXCEPT = re.compile(
    r"\b(?:except(?:\s+for)?|excluding|other\s+than|with\s+the\s+exception\s+of|unless|but\s+not|apart\s+from|"
    r"aside\s+from|not\s+including)\b"
)
_PAREN = re.compile(r"\(([^()]*)\)")
_OR_SPLIT = re.compile(
    r"\s*(?:,|;|\bor\b|\band/or\b|\bnor\b|(?<=[a-z])/(?=[a-z])|\bsuch as\b|\bincluding\b|\be\.?g\.?,?|\bi\.?e\.?,?|:|\bvs\.?\b)\s*"
)
_AND_SPLIT_INCL = re.compile(
    r"\s+(?:with|and|who (?:have|has|are|is)|presenting with|undergoing|in the setting of)\s+"
)
_AND_SPLIT_EXCL = re.compile(r"\s+(?:with|who (?:have|has|are|is)|in the setting of)\s+")
_STRONG_QUALIFIERS = frozenset(
    "severe uncontrolled unstable significant malignant secondary refractory decompensated advanced metastatic "
    "life-threatening end-stage poorly moderate marked extensive complicated persistent recurrent progressive "
    "active serious major symptomatic untreated invasive".split()
)


def _strip_marker(text: str) -> str:
    out = text
    for _ in range(2):
        out = _LEAD_MARKER.sub("", out, count=1)
    return out


class _Builder:
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


def _negated_before(norm: str, start: int) -> bool:
    window = norm[max(0, start - 40) : start]
    clause = re.split(r"[;.]|\bor\b|,", window)[-1]
    return bool(NEG_BEFORE_RE.search(clause))


def _extract_population(b: _Builder) -> None:
    n = b.norm
    m = _CONDITIONAL.match(n)
    if m:
        who = m.group("who")
        if re.search(r"child|wocbp|fertile", who):
            b.add("childbearing", m.start("who"), m.end("who"), 0.8, conditional=True)
        elif who.startswith(("female", "wom")):
            b.add("sex", m.start("who"), m.end("who"), 0.9, conditional=True, value="female")
        elif who.startswith(("male", "man", "men")):
            b.add("sex", m.start("who"), m.end("who"), 0.9, conditional=True, value="male")
        return
    m = _CHILDBEARING.search(n)
    if m and (_CONTRA.search(n) or _NEG_PREG.search(n) or re.search(r"\bpregnancy\s+test", n)):
        # "Women of childbearing potential must use contraception": applies only to them
        b.add("childbearing", m.start(), m.end(), 0.8, conditional=True)
        b.consumed.append((m.start(), m.end()))


def _extract_sex(b: _Builder, reproductive: bool) -> None:
    n = b.norm
    m = _SEX_BOTH.search(n)
    if m:
        b.add("sex", m.start(), m.end(), 0.95, value="all")
        return
    if reproductive:
        return
    m = _SEX_FEMALE.search(n)
    if m and b.free(m.start(), m.end()):
        b.add("sex", m.start(), m.end(), 0.9, value="female")
        return
    m = _SEX_MALE.search(n)
    if m and b.free(m.start(), m.end()):
        b.add("sex", m.start(), m.end(), 0.9, value="male")


def _extract_reproductive(b: _Builder) -> bool:
    n = b.norm
    found = False
    group = b.new_group()
    for m in _NEG_PREG.finditer(n):
        b.add("pregnancy", m.start(), m.end(), 0.85, group=group, negated=True)
        found = True
    for m in _PREG_PLAN.finditer(n):
        if b.free(m.start(), m.end()):
            b.add("pregnancy_plan", m.start(), m.end(), 0.7, group=group)
            found = True
    for m in _PREG.finditer(n):
        if not b.free(m.start(), m.end()):
            continue
        before = n[max(0, m.start() - 40) : m.start()]
        if re.search(r"\b(?:history of|prior|previous)\s+(?:\w+\s+){0,2}$", before) or re.search(
            r"\bpregnancy\s+test", n[m.start() : m.end() + 6]
        ):
            continue
        if re.search(
            r"\b(?:during|throughout|after|before|following|course of|end of|until|in case of)\s+(?:the\s+|her\s+|a\s+)?$",
            before,
        ):
            continue  # "in the course of the pregnancy": a time reference, not a criterion
        neg = bool(re.search(r"\b(?:not|non|no)\s*-?\s*$", before))
        b.add("pregnancy", m.start(), m.end(), 0.85, group=group, negated=neg)
        found = True
    for m in _LACT.finditer(n):
        if b.free(m.start(), m.end()):
            neg = m.group(0).startswith("non") or bool(
                re.search(r"\b(?:not|non|no)\s*-?\s*$", n[max(0, m.start() - 8) : m.start()])
            )
            b.add("lactation", m.start(), m.end(), 0.85, group=group, negated=neg)
            found = True
    m = _CONTRA.search(n)
    if m and b.free(m.start(), m.end()):
        neg = bool(
            re.search(
                r"\b(?:unwilling|not willing|refus\w*|unable|without|do not|does not|not using|no)\b",
                n[max(0, m.start() - 60) : m.start()],
            )
        )
        applies_to_men = bool(re.search(r"\b(?:men|males?|male patients|partners?)\b", n))
        b.add(
            "contraception",
            m.start(),
            m.end(),
            0.7,
            group=group,
            negated=neg,
            value="all" if applies_to_men else "female",
        )
        found = True
    if not any(c.kind == "childbearing" for c in b.out):
        m = _CHILDBEARING.search(n)
        if m and b.free(m.start(), m.end()):
            b.add("childbearing", m.start(), m.end(), 0.7, group=group)
            found = True
    m = _MENO.search(n)
    if m and b.free(m.start(), m.end()):
        b.add(
            "menopause",
            m.start(),
            m.end(),
            0.8,
            value={"post": "post", "pre": "pre", "peri": "peri"}[m.group(1)],
        )
        found = True
    return found


def _extract_consent(b: _Builder) -> None:
    n = b.norm
    for rx, kind in ((CONSENT_RE, "consent"), (COMPLIANCE_RE, "compliance")):
        m = rx.search(n)
        if not m or not b.free(m.start(), m.end()):
            continue
        neg = _negated_before(n, m.start()) or bool(
            re.search(r"\b(?:refus\w*|unable|unwilling|inability)\b", n[: m.start()])
        )
        if b.kind == "exclusion":
            neg = True  # an exclusion about consent/compliance is always about being unable or unwilling
        start = 0 if kind == "consent" else m.start()
        b.add(kind, m.start(), m.end(), 0.85, negated=neg)
        b.consumed.append((start, len(n)) if kind == "consent" and len(n) < 200 else (m.start(), m.end()))


def _extract_life(b: _Builder) -> None:
    n = b.norm
    m = _LIFE.search(n)
    unit_days = {"h": 1 / 24, "d": 1, "w": 7, "m": 30.44, "y": 365.25}
    if m:
        val = float(m.group("n").replace(",", ".")) * unit_days[m.group("u")[0]]
        cmp = (m.group("cmp") or "").strip()
        if cmp in ("<", "<=", "≤", "less than", "shorter than", "under"):
            b.add(
                "life_expectancy",
                m.start(),
                m.end(),
                0.6,
                low=None,
                high=val,
                high_inclusive=cmp in ("<=", "≤"),
                unit="days",
            )
        else:
            b.add(
                "life_expectancy",
                m.start(),
                m.end(),
                0.6,
                low=val,
                high=None,
                low_inclusive=cmp not in (">",),
                unit="days",
            )
        return
    m = _SURVIVE.search(n)
    if m:
        val = float(m.group("n")) * unit_days[m.group("u")[0]]
        b.add(
            "life_expectancy", m.start(), m.end(), 0.6, low=None, high=val, high_inclusive=False, unit="days"
        )


def _extract_participation(b: _Builder) -> None:
    m = _PARTICIPATION.search(b.norm)
    if m and b.free(m.start(), m.end()):
        b.add("participation", m.start(), m.end(), 0.6)


_MODIFIER_NOUNS = frozenset(
    "heart lung kidney liver skin bone blood brain eye bowel bleeding thyroid breast prostate colon lymph "
    "muscle joint nerve spine spinal".split()
)


def _shared_head(alts: list[str], vocab: Vocab) -> list[str]:
    """ "heart, lung, or kidney disease" -> each modifier gets the shared head noun."""
    if len(alts) < 2:
        return alts
    last = alts[-1].split()
    if len(last) < 2:
        return alts
    head = last[-1]
    out = []
    for a in alts[:-1]:
        words = a.split()
        w = words[0] if len(words) == 1 else ""
        modifier = (
            bool(w)
            and w not in vocab.synonym_index
            and (w in _MODIFIER_NOUNS or bool(re.search(r"(?:al|ic|ary|ous|ive|ar)$", w)))
        )
        out.append(f"{a} {head}" if modifier else a)
    return out + [alts[-1]]


_FAMILY_WORDS = frozenset(
    "family relative parent mother father sibling brother sister first-degree first degree biological".split()
)
_HEADS = frozenset("disease disorder condition syndrome illness symptom sign problem".split())


def _phrase_tokens(phrase: str, vocab: Vocab) -> tuple[list[str], list[str]]:
    """Content words (stemmed) and qualifier words of a phrase; generic heads kept only for 1-word phrases."""
    core: list[str] = []
    quals: list[str] = []
    heads: list[str] = []
    for tok, _s, _e in tokens(phrase):
        if tok in vocab.qualifiers or tok.removesuffix("ly") in vocab.qualifiers:
            quals.append(tok)
        elif tok in _HEADS:
            heads.append(tok)
        elif tok in vocab.boilerplate or stem(tok) in vocab.boilerplate or tok.isdigit() or len(tok) < 2:
            continue
        else:
            core.append(tok)
    if len(core) == 1 and heads:
        core.extend(heads[:1])  # "eating disorder" must not match "eating"
    return core, quals


def _concepts_in(phrase: str, vocab: Vocab) -> tuple[set[str], int]:
    """Concepts named in a phrase and how many of its words they cover."""
    concepts: set[str] = set()
    covered = 0
    for start, end, term in find_terms(phrase, vocab.synonym_terms):
        if len(term) <= 3:
            continue
        concepts |= vocab.synonym_index.get(term, set())
        covered += len(phrase[start:end].split())
    return concepts, covered


def _classify(phrase: str, concepts: set[str], drugs: list[str]) -> str:
    if drugs:
        return "therapy"
    if concepts & {
        "hiv",
        "hepatitis_b",
        "hepatitis_c",
        "viral_hepatitis",
        "tuberculosis",
        "infection",
        "cmv",
        "malaria",
        "influenza",
        "sepsis",
    }:
        return "infection"
    if concepts & {"malignancy", "breast_cancer"}:
        return "malignancy"
    if _VACCINE.search(phrase):
        return "vaccination"
    if _SURGERY.search(phrase):
        return "surgery"
    return "condition"


_LAB_WORDS = frozenset(
    "abnormal blood count counts laboratory lab labs value values function functions marrow bone renal hepatic liver "
    "kidney organ hematologic haematologic hematological parameter parameters analytical standard normal adequate "
    "cardiac respiratory pulmonary reserve test tests result results level levels serum plasma urine range "
    "institutional limit upper lower uln x".split()
)


def _residual_text(b: _Builder) -> str:
    chars = list(b.norm)
    for a, e in b.consumed:
        for i in range(a, min(e, len(chars))):
            chars[i] = " "
    text = "".join(chars)
    text = re.sub(r"\bwith\s+or\s+without\b[^,;.]*", " ", text)
    for rx in (
        r"\bwithin\s+(?:the\s+)?(?:last\s+|past\s+|previous\s+|preceding\s+|prior\s+|first\s+)?\S*\s*\w+"
        r"(?:\s+(?:before|prior\s+to|of|preceding)\s+(?:the\s+)?[\w-]+(?:\s+[\w-]+)?)?",
        r"\b(?:in|during|over|for)\s+the\s+(?:last|past|previous|preceding|prior)\s+(?:\S+\s+)?\w+",
        r"\b\d+\s*(?:hours?|days?|weeks?|months?|years?)\s+(?:before|prior\s+to|preceding)\s+(?:the\s+)?[\w-]+(?:\s+[\w-]+)?",
    ):
        text = re.sub(rx, lambda m: " " * len(m.group(0)), text)
    return text


_CAUSAL = re.compile(
    r"\b(?:due\s+to|because\s+of|secondary\s+to|caused\s+by|attributable\s+to|which\s+would|that\s+would)\b[^;]*"
)
_POPULATION_PREFIX = re.compile(
    r"^\s*(?:for|in)\s+(?:all\s+)?(?P<what>[a-z -]{3,40}?)\s+(?:patients|subjects|participants|individuals|women|men)\s*$"
)


def _concept_cover(alt: str, vocab: Vocab) -> tuple[set[str], list[str]]:
    """Concepts named in ``alt`` and the remaining content words that must also match."""
    concepts: set[str] = set()
    covered: list[tuple[int, int]] = []
    for start, end, term in find_terms(alt, vocab.synonym_terms):
        if len(term) <= 3:
            continue
        concepts |= vocab.synonym_index.get(term, set())
        covered.append((start, end))
    if not concepts:
        return concepts, []
    rest = []
    for tok, a, e in tokens(alt):
        if any(x <= a and e <= y for x, y in covered):
            continue
        if (
            tok in vocab.boilerplate
            or tok in vocab.qualifiers
            or tok in _HEADS
            or len(tok) < 3
            or tok.isdigit()
        ):
            continue
        if tok in _FAMILY_WORDS:
            continue  # "family history of X": the relation is checked separately
        rest.append(tok)
    return concepts, rest


def _extract_conditions(b: _Builder, concept_only: bool) -> None:
    vocab = b.vocab
    strict_concepts = any(
        c.kind
        in (
            "consent",
            "compliance",
            "sex",
            "pregnancy",
            "pregnancy_plan",
            "lactation",
            "contraception",
            "childbearing",
            "menopause",
        )
        and not c.conditional
        for c in b.out
    )
    text = _residual_text(b)
    window = parse_window(b.norm)
    historical = bool(
        re.search(r"\b(?:history of|previous|prior|previously|ever|lifetime|in the past)\b", b.norm)
    )
    current = bool(re.search(r"\b(?:current|currently|active|ongoing|concurrent|concomitant)\b", b.norm))
    stable = re.search(
        rf"\bstable\s+(?:dose|dosing|regimen)\b[^.;]{{0,40}}?(?P<n>{NUM})\s*(?P<u>days?|weeks?|months?)",
        b.norm,
    )
    stable_days = None
    if stable:
        stable_days = float(stable.group("n")) * {"d": 1, "w": 7, "m": 30.44}[stable.group("u")[0]]
    # exceptions ("except basal cell carcinoma") are remembered, then cut from the text
    exceptions: list[str] = []
    for m in _EXCEPT.finditer(text):
        tail = re.split(r"[;.)]", text[m.end() :])[0]
        exceptions.extend(a.strip() for a in _OR_SPLIT.split(tail) if a and a.strip())
    text = _EXCEPT.split(text)[0] if _EXCEPT.search(text) else text
    text = _CAUSAL.sub(lambda m: " " * len(m.group(0)), text)

    # parentheticals: abbreviations and examples become alternatives, remarks are dropped
    extra: list[str] = []

    def paren(m: re.Match[str]) -> str:
        inner = m.group(1).strip()
        if "   " in inner or re.search(
            r"\b(?:not|allowed|eligible|permitted|will be|may be|can be|see|defined|unless|only)\b", inner
        ):
            return " " * len(m.group(0))
        for a in _OR_SPLIT.split(inner):
            a = (a or "").strip()
            if not a:
                continue
            if all(len(t) <= 3 for t, _x, _y in tokens(a)) and a not in vocab.synonym_index:
                continue  # "(I, II, NOS)": codes, not alternatives
            extra.append(a)
        return " " * len(m.group(0))

    text = _PAREN.sub(paren, text)
    text = re.sub(r",\s*(?:and|&)\s+", ",  ", text)  # "A, B, and C" is a list, not a conjunction
    and_split = _AND_SPLIT_INCL if b.kind == "inclusion" else _AND_SPLIT_EXCL
    segments = [s for s in and_split.split(text) if s and s.strip()]
    negated_item = b.kind == "inclusion" and bool(
        re.match(r"^\s*(?:no|not|without|absence of|free of|negative for|never)\b", b.norm)
    )
    drug_names = vocab.drug_terms
    placed: list[tuple[int, int]] = []  # (position, group) of condition alternatives
    for si, seg in enumerate(segments):
        pop = _POPULATION_PREFIX.match(seg)
        alts = [a.strip(" -,.") for a in _OR_SPLIT.split(seg) if a and a.strip(" -,.")]
        n_main = len(alts)
        lead_quals: list[str] = []
        if alts:
            first_words = [stem(w) for w in re.findall(r"[a-z-]+", alts[0])]
            while first_words and first_words[0] in vocab.qualifiers:
                lead_quals.append(first_words.pop(0))
            if not first_words:
                lead_quals = []  # "Severe or complicated malaria": the qualifier is an alternative itself
        if si == len(segments) - 1:
            alts += extra
        alts = _shared_head(alts[:n_main], vocab) + alts[n_main:]
        group = b.new_group()
        for ai, alt in enumerate(alts):
            example = ai >= n_main  # from a parenthetical "(e.g. ...)": a weaker reading
            core, quals = _phrase_tokens(alt, vocab)
            if 0 < ai < n_main:
                quals = quals + [
                    q for q in lead_quals if q not in quals
                ]  # "uncontrolled bacterial or fungal infection"
            concepts, required = _concept_cover(alt, vocab)
            pop_alt = _POPULATION_PREFIX.match(alt)
            if re.search(r"\d", alt):
                required = [*required, "#quantity"]  # an unparsed amount/frequency we cannot check lexically
            drug_terms = [t for _s, _e, t in find_terms(alt, drug_names)]
            if not core and not concepts and not drug_terms:
                continue
            if not concepts and not drug_terms:
                if b.has_labs and all(t in _LAB_WORDS for t in core):
                    continue  # "adequate renal function (GFR > 60)": the lab constraint carries the meaning
                if len(core) > 6:
                    continue  # long prose: too vague to match safely
                if concept_only and (len(core) < 3 or strict_concepts):
                    continue  # leftovers of an age/sex/consent item ("Female sex", "18 or older")
            pos = b.norm.find(alt)
            start, end = (pos, pos + len(alt)) if pos >= 0 else (0, len(b.norm))
            neg = negated_item or (b.kind == "inclusion" and pos >= 0 and _negated_before(b.norm, pos))
            kind = _classify(alt, concepts, drug_terms)
            conf = 0.8 if concepts or drug_terms else 0.6
            c = b.add(
                kind,
                start,
                end,
                0.6 if example else conf,
                group=group,
                consume=False,
                negated=neg,
                terms=drug_terms or [alt],
                concepts=sorted(concepts),
                qualifiers=quals,
                exceptions=exceptions,
                window_days=window[0] if window else None,
                min_days=window[1] if window else None,
                stable_days=stable_days,
                historical=historical,
                current=current,
                value=" ".join(core),
                required=required,
                conditional=bool(pop) or bool(pop_alt),
                family=bool(_FAMILY_CRIT.search(b.norm)),
            )
            placed.append((start if pos >= 0 else 10**6, c.group))
    if b.kind == "inclusion" and placed:
        # a lab inside parentheses or joined by "or" is one more alternative of the nearby condition list
        for c in b.out:
            if c.kind != "lab":
                continue
            before, after = b.norm[: c_start(b, c)], b.norm[c_end(b, c) :]
            in_paren = before.count("(") > before.count(")")
            or_linked = bool(
                re.search(r"\b(?:or|and/or)\s*$", before[-12:]) or re.match(r"^\W*(?:or|and/or)\b", after)
            )
            if in_paren or or_linked:
                pos = c_start(b, c)
                c.group = min(placed, key=lambda pg: abs(pg[0] - pos))[1]


def c_start(b: _Builder, c: Constraint) -> int:
    """Normalised-text offset of a constraint's start (spans are stored in original offsets)."""
    for i, orig in enumerate(b.mapping):
        if orig >= c.span[0] - b.offset:
            return i
    return len(b.norm)


def c_end(b: _Builder, c: Constraint) -> int:
    """Normalised-text offset just after a constraint's end."""
    for i, orig in enumerate(b.mapping):
        if orig >= c.span[1] - b.offset:
            return i
    return len(b.norm)


_FAMILY_CRIT = re.compile(
    r"\b(?:family history|first-degree relative|biological parent|parents?|mother|father|sibling|siblings|brother|sister)\b"
    r"(?!\s+(?:reports|says|states|tells))"
)
_META = re.compile(r"\b(?:inclusion|exclusion)\s+criteri|\bas defined above\b|\bcriteria listed\b")
_RECIPIENTS = re.compile(
    r"^(?P<who>(?:recipients|patients|subjects|participants|those|women|men|children)\s+(?:who|that)\s+"
    r"(?:have\s+had|have\s+received|had|received|underwent|have\s+undergone|are\s+on|are\s+receiving)\s+"
    r"(?P<what>[^,;]{3,60}?))\s+(?:must|should|need|will|may|can|are\s+required)\b"
)


_DESCRIPTOR_TAIL = re.compile(
    r"^\W*(?:(?:women|woman|females?|patients?|subjects?|participants?|volunteers?|mothers?)\s+)?"
    r"(?:who|that|having|planning|whose|intending|wishing|not\s+speaking)\b"
)


def _mark_descriptors(b: _Builder) -> None:
    """In exclusion items, "Women who ..." / "Pregnant women who ..." only say whom the item is about."""
    if b.kind != "exclusion":
        return
    for c in b.out:
        if c.kind in ("sex", "pregnancy", "lactation", "childbearing", "menopause") and not c.conditional:
            end = next((i for i, orig in enumerate(b.mapping) if orig >= c.span[1] - b.offset), len(b.norm))
            if _DESCRIPTOR_TAIL.match(b.norm[end:]):
                c.conditional = True


def extract_constraints(
    item_text: str, kind: Literal["inclusion", "exclusion"] = "inclusion"
) -> list[Constraint]:
    """Extract typed constraints (with evidence spans and confidences) from one criterion item.

    ``kind`` matters because lists read differently: "A, B and C" in an exclusion item means any of
    them excludes, while an inclusion item's labs must all hold.
    """
    if kind not in ("inclusion", "exclusion"):
        raise ValueError(f"kind must be 'inclusion' or 'exclusion', not {kind!r}")
    stripped = _strip_marker(item_text or "")
    text = stripped.strip()
    if not text:
        return []
    vocab = load_vocab()
    b = _Builder(text, kind, vocab)
    b.offset = len(item_text) - len(stripped) + (len(stripped) - len(stripped.lstrip()))
    if _META.search(b.norm):
        return []  # refers to other criteria; cannot be checked on its own
    if kind == "exclusion":
        # "No evidence of acute infection" under an exclusion header is the author's double negative
        b.norm = re.sub(
            r"^(\s*)(?:no evidence of|no history of|no|without)\b", lambda m: " " * len(m.group(0)), b.norm
        )
    rec = _RECIPIENTS.match(b.norm)
    if rec:
        what = rec.group("what")
        concepts, required = _concept_cover(what, vocab)
        core, quals = _phrase_tokens(what, vocab)
        b.add(
            _classify(what, concepts, []),
            rec.start("what"),
            rec.end("what"),
            0.7,
            conditional=True,
            terms=[what],
            concepts=sorted(concepts),
            value=" ".join(core),
            required=required,
        )
        b.consumed.append((0, rec.end("who")))
    _extract_population(b)
    for age in parse_age(b.norm):
        b.add(
            "age",
            age.start,
            age.end,
            0.95,
            low=age.low,
            high=age.high,
            low_inclusive=age.low_inclusive,
            high_inclusive=age.high_inclusive,
            unit="years",
        )
    reproductive = _extract_reproductive(b)
    _extract_sex(b, reproductive)
    _extract_consent(b)
    _extract_life(b)
    lab_group = b.new_group() if kind == "exclusion" else None
    labs = [lab for lab in parse_labs(b.norm, vocab) if b.free(lab.start, lab.end)]
    for lab in labs:
        g = (
            lab_group
            if lab_group is not None
            else (lab.or_group if lab.or_group is not None else b.new_group())
        )
        if lab.or_group is not None and kind == "inclusion":
            g = lab.or_group + 1000
        b.add(
            "lab",
            lab.start,
            lab.end,
            lab.confidence,
            group=g,
            low=lab.low,
            high=lab.high,
            low_inclusive=lab.low_inclusive,
            high_inclusive=lab.high_inclusive,
            unit=lab.unit,
            analyte=lab.analyte,
        )
    _extract_participation(b)
    _mark_descriptors(b)
    if re.search(r"\b(?:initial|initially|first|baseline|at admission|on admission)\b", b.norm):
        for c in b.out:
            if c.kind == "lab":
                c.value = "initial"
    b.has_labs = any(c.kind == "lab" for c in b.out)
    concept_only = any(
        c.kind not in ("lab", "life_expectancy", "participation") and not c.conditional for c in b.out
    )
    _extract_conditions(b, concept_only)
    # renumber groups densely so callers can rely on 0..n-1
    remap: dict[int, int] = {}
    for c in b.out:
        c.group = remap.setdefault(c.group, len(remap))
    return b.out


# re-exported for tests
_ = (AGE_CONTEXT,)
