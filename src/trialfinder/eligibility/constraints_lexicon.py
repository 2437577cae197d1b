"""Numeric and temporal parsing for criterion text: ages, lab/score comparisons, time windows.

Kept apart from :mod:`constraints` because these parsers are the part most worth unit-testing on their
own: an off-by-one in "≥" versus ">" or a missed unit conversion changes who is told they qualify.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from trialfinder.eligibility.nlp import find_terms, parse_number
from trialfinder.eligibility.patient import convert_unit
from trialfinder.eligibility.vocab import Vocab

__all__ = [
    "AGE_CONTEXT",
    "AgeSpan",
    "LabSpan",
    "NUM",
    "parse_age",
    "parse_labs",
    "parse_window",
    "comparator_op",
    "CONSENT_RE",
    "COMPLIANCE_RE",
    "NEG_BEFORE_RE",
]

_NUM_WORDS = (
    "eighteen|sixteen|fifteen|fourteen|thirteen|seventeen|nineteen|eleven|twelve|twenty|thirty|forty|fifty|sixty|"
    "seven|three|eight|four|five|nine|one|two|six|ten"
)
NUM = rf"(?:\d{{1,3}}(?:,\d{{3}})+(?![\d])|\d+(?:[.,]\d+)?|(?:{_NUM_WORDS})(?![a-z]))"
_AGE_UNIT = r"(?:years?|yrs?|y(?![a-z])|months?|mos?|weeks?|wks?|days?)"
AGE_CONTEXT = re.compile(r"\b(?:age[ds]?|old|of age|adults?|years? of age)\b")

CONSENT_RE = re.compile(r"\b(?:informed\s+consent|written\s+consent|consent\s+form|consent|assent|icf)\b")
COMPLIANCE_RE = re.compile(
    r"\b(?:comply|complian\w*|adhere\w*|adherence|follow-?\s?up|attend\w*|study\s+visits?|study\s+procedures|"
    r"study\s+requirements|protocol\s+requirements|complete\s+(?:the\s+)?study|willing(?:ness)?\s+to\s+participate|"
    r"available\s+for|geographical|catchment\s+area|leave\s+the\s+vicinity|move\s+out|monitoring|"
    r"neuropsychological\s+tests|answer\s+questions|(?:ability|able)\s+to\s+undergo)\b"
)
NEG_BEFORE_RE = re.compile(
    r"\b(?:no|not|without|absence of|absent|free of|negative for|never|unable|inability|unwilling|unwillingness|"
    r"refus\w*|cannot|can not|lack of|lacks|failure to|fails to|incapable|declin\w*)\b"
)


@dataclass
class AgeSpan:
    """An age interval in years found in a criterion."""

    start: int
    end: int
    low: float | None
    high: float | None
    low_inclusive: bool = True
    high_inclusive: bool = True
    conditional: bool = False


def _num(text: str) -> float | None:
    return parse_number(text)


def _age_factor(unit: str | None) -> float:
    if not unit:
        return 1.0
    u = unit[0]
    return {"y": 1.0, "m": 1 / 12, "w": 1 / 52, "d": 1 / 365}.get(u, 1.0)


_NOT_PATIENT_AGE = re.compile(
    r"(?:gestational|bone|mental|developmental|after\s+(?:the\s+)?|before\s+(?:the\s+)?|at\s+|onset\s+|"
    r"diagnosis\s+|menarche\s+)\s*$"
)
_AGE_RANGE = [
    re.compile(
        rf"\bages?d?\s*(?:of|:|between|from|range|range of)?\s*(?P<a>{NUM})\s*(?:{_AGE_UNIT}\s*)?(?:-|to|and|through)\s*(?P<b>{NUM})\s*(?P<u>{_AGE_UNIT})?"
    ),
    re.compile(
        rf"\bbetween\s+(?:the\s+)?(?:ages?\s+(?:of\s+)?)?(?P<a>{NUM})\s+and\s+(?P<b>{NUM})\s*(?P<u>{_AGE_UNIT})(?:\s+(?:of\s+age|old))?"
    ),
    re.compile(
        rf"(?<![\d.,])(?P<a>{NUM})\s*(?:-|to)\s*(?P<b>{NUM})\s*(?P<u>years?|yrs?|y(?![a-z]))\s*(?:of\s+age|old|of\s+age)?"
    ),
    re.compile(rf"(?<![\d.,])(?P<a>{NUM})\s*(?:-|to)\s*(?P<b>{NUM})\s+age\b"),
]
_LOW_CMP = r"(?P<c>≥|>=|=>|>|over|above|older\s+than|at\s+least|greater\s+than(?:\s+or\s+equal\s+to)?|more\s+than|minimum(?:\s+of)?)"
_HIGH_CMP = r"(?P<c>≤|<=|=<|<|under|below|younger\s+than|less\s+than(?:\s+or\s+equal\s+to)?|at\s+most|up\s+to|maximum(?:\s+of)?)"
_AGE_LOW = [
    re.compile(
        rf"\bage[ds]?\s*(?:of\s*|:\s*|is\s*|must\s+be\s*)?{_LOW_CMP}\s*(?P<n>{NUM})\s*(?P<u>{_AGE_UNIT})?"
    ),
    re.compile(rf"{_LOW_CMP}\s*(?P<n>{NUM})\s*(?P<u>{_AGE_UNIT})\s*(?:of\s+age|old|of\s+age\s+or\s+older)"),
    re.compile(
        rf"(?<![\d.,])(?P<n>{NUM})\s*(?P<u>{_AGE_UNIT})?\s*(?:of\s+age\s*|old\s*)?(?:or|and)\s+(?:older)(?!\s+than)"
    ),
    re.compile(
        rf"(?<![\d.,])(?P<n>{NUM})\s*(?P<u>{_AGE_UNIT})\s*(?:of\s+age\s*|old\s*)?(?:or|and)\s+(?:over|above)(?!\s+(?:than|\d))"
    ),
    re.compile(
        rf"(?<![\d.,])(?P<n>{NUM})\s*(?P<u>{_AGE_UNIT})\s+(?:of\s+age\s*|old\s*)?(?:or|and)\s+(?:more|greater)"
        r"(?!\s+than)"  # "less than 18 years or greater than 65": the "or greater" starts the next bound
    ),
    re.compile(rf"\bage[ds]?\s*:?\s*(?P<n>{NUM})\s*\+"),
    re.compile(rf"(?P<c>older\s+than)\s*(?P<n>{NUM})\s*(?P<u>{_AGE_UNIT})?"),
    re.compile(rf"(?<![\d.,])(?P<n>{NUM})\s*(?P<u>{_AGE_UNIT})\s+onwards?"),
    re.compile(
        rf"\b(?:aged|age)\s*:?\s+(?P<n>{NUM})\s*(?P<u>{_AGE_UNIT})?\s+(?:and|or)\s+(?:over|above|older)"
    ),
]
_AGE_HIGH = [
    re.compile(rf"(?P<c>younger\s+than)\s*(?P<n>{NUM})\s*(?P<u>{_AGE_UNIT})?"),
    re.compile(
        rf"\bage[ds]?\s*(?:of\s*|:\s*|is\s*|must\s+be\s*)?{_HIGH_CMP}\s*(?P<n>{NUM})\s*(?P<u>{_AGE_UNIT})?"
    ),
    re.compile(rf"{_HIGH_CMP}\s*(?P<n>{NUM})\s*(?P<u>{_AGE_UNIT})\s*(?:of\s+age|old)"),
    re.compile(
        rf"(?<![\d.,])(?P<n>{NUM})\s*(?P<u>{_AGE_UNIT})\s*(?:of\s+age\s*|old\s*)?(?:or|and)\s+(?:younger|under|less|below)(?!\s+(?:than|\d))"
    ),
]


_AGE_WORDS = re.compile(
    r"\bage[ds]?\b|\bold\b|\bolder\b|\byounger\b|of\s+age|\badults?\b|\bchild(?:ren)?\b|\binfants?\b|"
    r"\bneonates?\b|\badolescents?\b|\bminors?\b|\bborn\b|\byrs?\s+old\b"
)
_AFTER_NOT_PATIENT = re.compile(
    r"^\s*(?:of\s+age\s+)?(?:at|of)\s+(?:the\s+)?(?:onset|diagnosis|first|menarche)"
)
_CONDITIONAL_BEFORE = re.compile(r"\b(?:if|when|for|whose|unless)\b(?:\s+(?:the\s+)?[a-z]+){0,4}\s*[(]?\s*$")
_CONDITIONAL_AFTER = re.compile(r"^[^.;]{0,25}?\b(?:must|should|need|needs|require|requires|will need)\b")


def parse_age(norm: str) -> list[AgeSpan]:
    """Age intervals in a criterion; several spans are alternatives (OR), e.g. "< 18 or > 80 years".

    Bounds written together narrow each other ("> 18 years, ≤ 65 years"); bounds joined by "or", or
    that cannot both hold ("younger than 18 and older than 80"), are alternatives.  An age in an "if"
    clause ("consent of a guardian if < 18 years") is marked ``conditional``: it says whom the item is for.
    """
    if not _AGE_WORDS.search(norm):
        # every bound needs an age word near it (``ok`` below), and "minor"/"adult" are age words: most
        # criteria have none, and the dozen patterns below cost 0.5 ms per criterion
        return []
    found: list[tuple[int, int, float | None, float | None, bool, bool]] = []
    taken: list[tuple[int, int]] = []
    cut = re.search(r"\b(?:except|excluding|unless|with the exception of)\b", norm)
    if cut:
        norm = norm[: cut.start()]  # ages inside an exception describe other people

    def ok(m: re.Match[str]) -> bool:
        if any(a < m.end() and m.start() < b for a, b in taken):
            return False
        before = norm[max(0, m.start() - 25) : m.start()]
        if _NOT_PATIENT_AGE.search(before) or _AFTER_NOT_PATIENT.match(norm[m.end() :]):
            return False
        context = norm[max(0, m.start() - 20) : m.end() + 12]
        return bool(_AGE_WORDS.search(context))

    for rx in _AGE_RANGE:
        for m in rx.finditer(norm):
            if not ok(m):
                continue
            a, b2 = _num(m.group("a")), _num(m.group("b"))
            if a is None or b2 is None:
                continue
            f = _age_factor(m.groupdict().get("u"))
            if a > b2:
                a, b2 = b2, a
            if b2 * f > 130:
                continue
            found.append((m.start(), m.end(), a * f, b2 * f, True, True))
            taken.append((m.start(), m.end()))
    for rx in _AGE_LOW:
        for m in rx.finditer(norm):
            if not ok(m):
                continue
            n = _num(m.group("n"))
            if n is None or n * _age_factor(m.groupdict().get("u")) > 130:
                continue
            c = (m.groupdict().get("c") or "").strip()
            inclusive = re.sub(r"\s+", " ", c) not in (
                ">",
                "over",
                "above",
                "older than",
                "greater than",
                "more than",
            )
            found.append((m.start(), m.end(), n * _age_factor(m.groupdict().get("u")), None, inclusive, True))
            taken.append((m.start(), m.end()))
    for rx in _AGE_HIGH:
        for m in rx.finditer(norm):
            if not ok(m):
                continue
            n = _num(m.group("n"))
            if n is None or n * _age_factor(m.groupdict().get("u")) > 130:
                continue
            c = (m.groupdict().get("c") or "").strip()
            c = re.sub(r"\s+", " ", c)
            inclusive = (
                c in ("≤", "<=", "=<", "at most", "up to", "maximum", "maximum of", "") or "equal" in c
            )
            found.append((m.start(), m.end(), None, n * _age_factor(m.groupdict().get("u")), True, inclusive))
            taken.append((m.start(), m.end()))
    _chained_bounds(norm, found, taken)
    if not found:
        minor = re.search(
            r"\bminors\b|\bminor\b(?=\s*(?:[,.;)]|$|patients?|children|subjects?|participants?))", norm
        )
        if minor:
            return [
                AgeSpan(
                    minor.start(), minor.end(), None, 18.0, True, False,
                    _conditional(norm, minor.start(), minor.end()),
                )
            ]
        adult = re.search(
            r"^(?:\W*)(?:adults?|adult\s+(?:patients|subjects|participants|volunteers|men|women))\b", norm
        )
        if adult:
            return [AgeSpan(adult.start(), adult.end(), 18.0, None)]
        return []
    found.sort()
    # group bounds: "or"/"and/or"/"(" between two bounds starts a new alternative
    groups: list[list[tuple[int, int, float | None, float | None, bool, bool]]] = [[found[0]]]
    for prev, cur in zip(found, found[1:], strict=False):
        between = norm[prev[1] : cur[0]] if cur[0] >= prev[1] else ""
        if re.search(r"\b(?:or|and/or)\b|\(|;|\.\s", between):
            groups.append([cur])
        else:
            groups[-1].append(cur)
    out: list[AgeSpan] = []
    for g in groups:
        lows = [(b[2], b[4]) for b in g if b[2] is not None]
        highs = [(b[3], b[5]) for b in g if b[3] is not None]
        lo = max(lows, key=lambda t: t[0]) if lows else None
        hi = min(highs, key=lambda t: t[0]) if highs else None
        start, end = g[0][0], g[-1][1]
        if lo is not None and hi is not None and lo[0] > hi[0]:
            # "younger than 18 and older than 80": two alternatives, not an empty range
            out.append(AgeSpan(start, end, None, hi[0], True, hi[1]))
            out.append(AgeSpan(start, end, lo[0], None, lo[1], True))
            continue
        out.append(
            AgeSpan(
                start,
                end,
                lo[0] if lo else None,
                hi[0] if hi else None,
                lo[1] if lo else True,
                hi[1] if hi else True,
            )
        )
    for span in out:
        span.conditional = _conditional(norm, span.start, span.end)
    return out


_CHAIN_AFTER = re.compile(
    rf"^\s*(?:{_AGE_UNIT}\s*)?(?:of\s+age\s*)?,?\s*(?:or|and/or)\s+(?:(?P<lo>{_LOW_CMP})|(?P<hi>{_HIGH_CMP.replace('?P<c>', '')}))"
    rf"\s*(?P<n>{NUM})\s*(?P<u>{_AGE_UNIT})?"
)
_CHAIN_BEFORE = re.compile(
    rf"(?:(?P<lo>{_LOW_CMP})|(?P<hi>{_HIGH_CMP.replace('?P<c>', '')}))\s*(?P<n>{NUM})\s*(?P<u>{_AGE_UNIT})?\s*,?\s*(?:or|and/or)\s*$"
)


def _chained_bounds(
    norm: str,
    found: list[tuple[int, int, float | None, float | None, bool, bool]],
    taken: list[tuple[int, int]],
) -> None:
    """Bounds written as alternatives of an age bound that was found ("age < 18 or > 65 years").

    The second bound often lacks the word "age" ("... or greater than 65 years"), so it is only read
    as an age when it is chained by "or" to one; the unit of the found bound carries over.
    """
    for start, end, *_rest in list(found):
        for m, off in ((_CHAIN_AFTER.match(norm[end:]), end), (_CHAIN_BEFORE.search(norm[max(0, start - 40) : start]),
                                                                 max(0, start - 40))):
            if m is None:
                continue
            s, e = m.start("n") + off, m.end() + off
            if any(a < e and s < b for a, b in taken):
                continue
            n = _num(m.group("n"))
            if n is None:
                continue
            f = _age_factor(m.group("u"))
            if n * f > 130:
                continue
            cmp_ = re.sub(r"\s+", " ", (m.group("lo") or m.group("hi") or "").strip())
            if m.group("lo"):
                inclusive = cmp_ not in (">", "over", "above", "older than", "greater than", "more than")
                found.append((s, e, n * f, None, inclusive, True))
            else:
                inclusive = cmp_ in ("≤", "<=", "=<", "at most", "up to") or "equal" in cmp_
                found.append((s, e, None, n * f, True, inclusive))
            taken.append((s, e))


def _conditional(norm: str, start: int, end: int) -> bool:
    """An age that only says whom a rule is for: "if < 18 years", "patients < 18 years must ..."."""
    if _CONDITIONAL_BEFORE.search(norm[max(0, start - 30) : start]):
        return True
    sentence_start = max((m.end() for m in re.finditer(r"[.;]\s+", norm[:start])), default=0)
    if sentence_start > 0:
        stop = re.search(r"[.;](?:\s|$)", norm[end:])
        sentence = norm[sentence_start : end + stop.start() if stop else len(norm)]
        if re.search(r"\b(?:consent|assent|guardian|parents?|explained)\b", sentence):
            return True  # "... provide informed consent. The procedure will be explained to subjects age 8-17"
    return bool(
        start > 0
        and _CONDITIONAL_AFTER.match(norm[end:])
        and re.search(r"\b(?:consent|guardian|parent)", norm)
    )


# --------------------------------------------------------------------------------------------------
# labs and scores


@dataclass
class LabSpan:
    """A lab/score comparison in canonical units."""

    analyte: str
    start: int
    end: int
    low: float | None
    high: float | None
    low_inclusive: bool = True
    high_inclusive: bool = True
    unit: str | None = None
    confidence: float = 0.85
    or_group: int | None = None


_ROMAN = {"i": 1, "ii": 2, "iii": 3, "iv": 4, "v": 5, "vi": 6}
_FILLER = (
    r"(?:\s*\([^)]{0,40}\))?(?:\s*(?:score|scores|class|classification|count|counts|level|levels|value|values|"
    r"concentration|ps|status|performance\s+status|of|is|:|=|must\s+be|should\s+be|be|result|ratio|grade|index|"
    r"stage|greater|physical\s+status)\b|\s*[:=])*\s*"
)


def comparator_op(phrase: str, vocab: Vocab) -> str | None:
    """Map a comparator phrase ("at least", "≤", "or more") to an operator."""
    p = " ".join(phrase.lower().split())
    for op, words in vocab.comparators.items():
        if p in words:
            return op
    return None


def _cmp_regex(vocab: Vocab, trailing: bool) -> str:
    words = sorted(
        {w for op, ws in vocab.comparators.items() for w in ws if op != "="}, key=len, reverse=True
    )
    lead = [w for w in words if not w.startswith("or ") and not w.startswith("and ") and w != "+"]
    trail = [w for w in words if w.startswith(("or ", "and ")) or w == "+"]
    chosen = trail if trailing else lead
    return "|".join(re.escape(w).replace(r"\ ", r"\s+") for w in chosen)


def _unit_regex(vocab: Vocab) -> str:
    aliases = sorted((a for a in vocab.unit_aliases if a), key=len, reverse=True)
    return "|".join(re.escape(a).replace(r"\ ", r"\s*") for a in aliases)


def _value(token: str, roman: bool) -> float | None:
    t = token.strip().lower()
    if roman and t in _ROMAN:
        return float(_ROMAN[t])
    return parse_number(t)


def _interval(op: str, v: float) -> tuple[float | None, float | None, bool, bool]:
    if op == ">=":
        return v, None, True, True
    if op == ">":
        return v, None, False, True
    if op == "<=":
        return None, v, True, True
    if op == "<":
        return None, v, True, False
    return v, v, True, True


def _convert(v: float, unit: str | None, analyte: str, vocab: Vocab) -> tuple[float | None, str | None]:
    if unit and (
        vocab.unit_aliases.get(unit) == "uln" or "uln" in unit or "upper limit" in unit or "normal" in unit
    ):
        return v, "uln"
    an = vocab.analytes[analyte]
    conv = convert_unit(v, unit, analyte, vocab)
    if conv is None:
        return None, None
    return conv, an.unit or None


def _lab_forms(vocab: Vocab) -> tuple[list[tuple[str, re.Pattern[str]]], str]:
    cached = vocab.cache.get("lab_forms")
    if cached is None:
        cached = _build_lab_forms(vocab)
        vocab.cache["lab_forms"] = cached
    return cached


def _build_lab_forms(vocab: Vocab) -> tuple[list[tuple[str, re.Pattern[str]]], str]:
    units = _unit_regex(vocab)
    lead = _cmp_regex(vocab, trailing=False)
    trail = _cmp_regex(vocab, trailing=True)
    num = rf"(?:{NUM}|\b(?:iv|v|vi|i{{1,3}})\b)"
    unit_part = rf"(?:\s*(?:x|×)?\s*(?P<u>{units})(?![a-z]))?"
    forms = [
        (
            "between",
            re.compile(
                rf"^{_FILLER}between\s+(?P<a>{num})\s*(?:{units})?\s*(?:and|-)\s*(?P<b>{num}){unit_part}"
            ),
        ),
        ("lead", re.compile(rf"^{_FILLER}(?:be\s+)?(?P<c>{lead})\s*(?P<a>{num}){unit_part}")),
        ("trail", re.compile(rf"^{_FILLER}(?P<a>{num})\s*(?:\(\s*\d+\s*\))?{unit_part}\s*(?P<c>{trail})")),
        (
            "range",
            re.compile(rf"^{_FILLER}(?P<a>{num})\s*(?:{units})?\s*(?:-|–|to|or)\s*(?P<b>{num}){unit_part}"),
        ),
        ("point", re.compile(rf"^{_FILLER}(?P<a>{num}){unit_part}(?![\d/])")),
    ]
    return forms, lead


def parse_labs(norm: str, vocab: Vocab) -> list[LabSpan]:
    """Lab and score comparisons ("eGFR < 30 mL/min/1.73m2", "ECOG 0-1", "platelets ≥ 100,000/µL")."""
    forms, lead = _lab_forms(vocab)
    names = vocab.analyte_terms
    found: list[LabSpan] = []
    hits = find_terms(norm, names)
    for i, (start, end, term) in enumerate(hits):
        analyte = vocab.analyte_names[term]
        an = vocab.analytes[analyte]
        if len(term) <= 2 and term not in ("hb", "ef"):
            continue
        stop = hits[i + 1][0] if i + 1 < len(hits) else len(norm)
        tail = norm[end : min(stop, end + 70)]
        tail = re.split(r"[;]", tail)[0]
        for form, rx in forms:
            m = rx.match(tail)
            if not m:
                continue
            if form == "point" and not (
                an.score and (an.roman or re.match(r"^\s*(?:class|grade|stage)", tail))
            ):
                continue
            a = _value(m.group("a"), an.roman)
            if a is None:
                continue
            unit = m.groupdict().get("u")
            if form in ("between", "range"):
                b = _value(m.group("b"), an.roman)
                if b is None:
                    continue
                raw_lo, raw_hi = sorted((a, b))
                clo, u1 = _convert(raw_lo, unit, analyte, vocab)
                chi, _u2 = _convert(raw_hi, unit, analyte, vocab)
                if clo is None or chi is None:
                    continue
                found.append(LabSpan(analyte, start, end + m.end(), clo, chi, True, True, u1))
            else:
                op = "=" if form == "point" else comparator_op(m.group("c"), vocab)
                if op is None:
                    continue
                if op == "=" and not an.score:
                    continue
                cv, u1 = _convert(a, unit, analyte, vocab)
                if cv is None:
                    continue
                lo, hi, li, hi_inc = _interval(op, cv)
                found.append(LabSpan(analyte, start, end + m.end(), lo, hi, li, hi_inc, u1))
            break
    # blood pressure written as systolic/diastolic ("> 170/100 mm Hg"): either value qualifies
    bp_re = rf"\b(?:blood\s+pressure|bp|hypertension)\b[^0-9;]{{0,25}}?(?P<c>{lead})\s*(?P<s>\d{{2,3}})\s*/\s*(?P<d>\d{{2,3}})"
    for m in re.finditer(bp_re + r"(?:\s*mm\s*(?:of\s*)?hg)?", norm):
        op = comparator_op(m.group("c"), vocab)
        if op is None:
            continue
        group = 900 + len(found)
        for analyte, key in (("sbp", "s"), ("dbp", "d")):
            lo, hi, li, hi_inc = _interval(op, float(m.group(key)))
            found.append(LabSpan(analyte, m.start(), m.end(), lo, hi, li, hi_inc, "mmhg", 0.8, group))
    found.sort(key=lambda x: x.start)
    # labs joined by "or" are alternatives
    prev: LabSpan | None = None
    next_group = 0
    for lab in found:
        if lab.or_group is not None and lab.or_group >= 900:
            prev = lab
            continue
        if (
            prev is not None
            and re.search(r"\bor\b", norm[prev.end : lab.start])
            and ";" not in norm[prev.end : lab.start]
        ):
            if prev.or_group is None:
                prev.or_group = next_group
                next_group += 1
            lab.or_group = prev.or_group
        prev = lab
    return found


# --------------------------------------------------------------------------------------------------
# time windows

_T_UNIT = r"(?P<u>hours?|hrs?|h|days?|d|weeks?|wks?|wk|months?|mos?|mo|years?|yrs?|yr)\b"
_ANCHOR = (
    r"(?:the\s+)?(?:screening|enrol\w*|randomi[sz]\w*|random\s+\w+|study\s+entry|entry|first\s+dose|baseline|inclusion|"
    r"registration|study|treatment|admission|challenge|infusion|day\s+1|consent|visit|the\s+study|"
    r"start|initiation|surgery|signing)"
)
_WINDOWS = [
    re.compile(
        rf"\bwithin\s+(?:the\s+)?(?:last\s+|past\s+|previous\s+|preceding\s+|prior\s+|first\s+)?(?P<n>{NUM})?\s*{_T_UNIT}"
    ),
    re.compile(
        rf"\b(?:in|during|over|for)\s+the\s+(?:last|past|previous|preceding|prior)\s+(?:(?P<n>{NUM})\s*)?{_T_UNIT}"
    ),
    re.compile(rf"\bin\s*(?:<|less\s+than)\s*(?P<n>{NUM})\s*{_T_UNIT}"),
    re.compile(rf"(?P<n>{NUM})\s*{_T_UNIT}\s+(?:before|prior\s+to|preceding|of)\s+{_ANCHOR}"),
    re.compile(rf"\blast\s+(?P<n>{NUM})\s*{_T_UNIT}"),
]
_MIN_WINDOWS = [
    re.compile(rf"\bat\s+least\s+(?P<n>{NUM})\s*{_T_UNIT}\s+(?:since|after|from|prior|before)"),
    re.compile(rf"\bfor\s+at\s+least\s+(?P<n>{NUM})\s*{_T_UNIT}"),
    re.compile(
        rf"\b(?:more|greater)\s+than\s+(?P<n>{NUM})\s*{_T_UNIT}\s+(?:since|after|from|prior|before|ago)"
    ),
]
_UNIT_DAYS = {"h": 1 / 24, "d": 1.0, "w": 7.0, "m": 30.44, "y": 365.25}


def _days(n: str | None, unit: str) -> float | None:
    value = 1.0 if not n else parse_number(n)
    if value is None:
        return None
    u = unit.lower()
    key = "m" if u.startswith("mo") else u[0]
    return value * _UNIT_DAYS.get(key, 1.0)


def parse_window(norm: str) -> tuple[float | None, float | None] | None:
    """(within-days, at-least-days-ago) of a criterion, e.g. "within 12 weeks before screening" -> (84, None)."""
    window = None
    for rx in _WINDOWS:
        m = rx.search(norm)
        if m:
            window = _days(m.groupdict().get("n"), m.group("u"))
            break
    minimum = None
    for rx in _MIN_WINDOWS:
        m = rx.search(norm)
        if m:
            minimum = _days(m.group("n"), m.group("u"))
            break
    if window is None and minimum is None:
        return None
    return window, minimum
