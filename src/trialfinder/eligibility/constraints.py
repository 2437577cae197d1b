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
from typing import Literal

from trialfinder.eligibility.constraints_base import KINDS, Builder, Constraint, negated_before
from trialfinder.eligibility.constraints_conditions import (
    FAMILY_CRIT,
    classify,
    concept_cover,
    extract_conditions,
    phrase_tokens,
)
from trialfinder.eligibility.constraints_lexicon import (
    COMPLIANCE_RE,
    CONSENT_RE,
    NUM,
    parse_age,
    parse_labs,
)
from trialfinder.eligibility.nlp import parse_number
from trialfinder.eligibility.vocab import load_vocab

__all__ = ["KINDS", "Constraint", "extract_constraints"]

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
    r"boys?\s+(?:and|or)\s+girls?|girls?\s+(?:and|or)\s+boys?|any\s+(?:sex|gender)|gender-?\s?independent|"
    r"man\s+(?:and|or)\s+woman|woman\s+(?:and|or)\s+man|m\s*/\s*f|f\s*/\s*m|(?:of\s+)?either\s+(?:sex|gender))\b"
)
_SEX_FEMALE = re.compile(
    r"^(?:(?:adult|healthy|postmenopausal|post-menopausal|premenopausal|pre-menopausal|non-?pregnant|young)\s+)?"
    r"(?:females?|women|woman|girls?)\b(?!\s+(?:sex\s+)?partners?)|\bfemale\s+(?:sex|gender|patients?|subjects?|participants?)\b(?!\s+partners?)"
)
_SEX_MALE = re.compile(
    r"^(?:(?:adult|healthy|young)\s+)?(?:males?|men|man|boys?)\b(?!\s+(?:sex\s+)?partners?)|"
    r"\bmale\s+(?:sex|gender|patients?|subjects?|participants?)\b(?!\s+partners?)"
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
    r"\b(?:contracepti\w*|birth\s+control|barrier\s+method|abstain\w*|abstinence|intrauterine\s+device|iud|"
    r"(?:prevent|avoid|protect\s+against)\w*\s+(?:a\s+)?pregnan\w*)\b"
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


def _strip_marker(text: str) -> str:
    out = text
    for _ in range(2):
        out = _LEAD_MARKER.sub("", out, count=1)
    return out


def _extract_population(b: Builder) -> None:
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


_SEX_ONLY_WORDS = frozenset(
    "are is will be shall not eligible ineligible excluded included allowed enrolled in this the study trial "
    "for from participation participate to may can only sex gender patients subjects participants volunteers".split()
)


def _extract_sex(b: Builder, reproductive: bool) -> None:
    n = b.norm
    m = _SEX_BOTH.search(n)
    if m:
        b.add("sex", m.start(), m.end(), 0.95, value="all")
        return
    if reproductive:
        return
    for rx, value in ((_SEX_FEMALE, "female"), (_SEX_MALE, "male")):
        m = rx.search(n)
        if m and b.free(m.start(), m.end()):
            rest = [
                w
                for w in re.findall(r"[a-z]+", n[: m.start()] + " " + n[m.end() :])
                if w not in _SEX_ONLY_WORDS
            ]
            # in an exclusion item "Women with vulvar disease" names whom it is about; "Females" alone excludes
            conditional = b.kind == "exclusion" and bool(rest)
            b.add("sex", m.start(), m.end(), 0.9, value=value, conditional=conditional)
            return


def _extract_reproductive(b: Builder) -> bool:
    n = b.norm
    found = False
    group = b.new_group()
    m: re.Match[str] | None  # loop variable below, then reused for single searches
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
                r"\b(?:unwilling\w*|not willing|reluctan\w*|refus\w*|unable|inability|fail\w* to|without|do not|does not|"
                r"not using|not practicing|lack of|inadequate|no)\b",
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
            neg = bool(re.search(r"\bnon-?\s?$|\bnot\s+(?:of\s+)?$", n[max(0, m.start() - 12) : m.start()]))
            b.add("childbearing", m.start(), m.end(), 0.7, group=group, negated=neg)
            found = True
    m = re.match(
        r"^\W*(?:pregnant|breast-?\s?feeding|lactating|nursing)\s+(?:women|participants?|patients?|subjects?|mothers?)\s+"
        r"(?:must|should|will|need)\b",
        n,
    )
    if m and b.kind == "inclusion":
        for c in b.out:
            if c.kind in ("pregnancy", "lactation") and c.span[0] - b.offset <= m.end():
                c.conditional = (
                    True  # "Breastfeeding participants must stop breastfeeding": says whom it is for
                )
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


#: Consent named as the moment something is measured ("age 18-65 when obtaining informed consent",
#: "at the time of signing the consent form"): a time anchor, not a requirement of its own.
_CONSENT_ANCHOR = re.compile(
    r"\b(?:when|at\s+the\s+time\s+of|at\s+time\s+of|at|upon|on\s+the\s+day\s+of|on\s+the\s+date\s+of|as\s+of)\s+"
    r"(?:the\s+)?(?:obtaining|signing|signature\s+of|giving|providing|the\s+date\s+of)?\s*(?:the\s+)?(?:written\s+)?$"
)


def _extract_consent(b: Builder) -> None:
    n = b.norm
    for rx, kind in ((CONSENT_RE, "consent"), (COMPLIANCE_RE, "compliance")):
        m = rx.search(n)
        if not m or not b.free(m.start(), m.end()):
            continue
        if kind == "consent" and b.out and _CONSENT_ANCHOR.search(n[max(0, m.start() - 60):m.start()]):
            b.consumed.append((m.start(), m.end()))  # "age ... when obtaining informed consent": the age decides
            continue
        neg = negated_before(n, m.start()) or bool(
            re.search(r"\b(?:refus\w*|unable|unwilling|inability)\b", n[: m.start()])
        )
        if b.kind == "exclusion":
            neg = True  # an exclusion about consent/compliance is always about being unable or unwilling
        start = 0 if kind == "consent" else m.start()
        b.add(kind, m.start(), m.end(), 0.85, negated=neg)
        b.consumed.append((start, len(n)) if kind == "consent" and len(n) < 200 else (m.start(), m.end()))


def _extract_life(b: Builder) -> None:
    n = b.norm
    m = _LIFE.search(n)
    unit_days = {"h": 1 / 24, "d": 1, "w": 7, "m": 30.44, "y": 365.25}
    if m:
        num = parse_number(m.group("n"))
        if num is None:
            return
        val = num * unit_days[m.group("u")[0]]
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
        num = parse_number(m.group("n"))
        if num is None:
            return
        val = num * unit_days[m.group("u")[0]]
        b.add(
            "life_expectancy", m.start(), m.end(), 0.6, low=None, high=val, high_inclusive=False, unit="days"
        )


def _extract_participation(b: Builder) -> None:
    m = _PARTICIPATION.search(b.norm)
    if m and b.free(m.start(), m.end()):
        b.add("participation", m.start(), m.end(), 0.6)


_OTHER_PERSON = re.compile(
    r"^\W*(?:donors?|controls?|healthy\s+controls?|caregivers?|care\s+givers?|partners?|parents?|mothers?|fathers?|"
    r"spouses?|siblings?|family\s+members?|relatives?|infants?\s+of)\s*:"
)
_META = re.compile(
    r"\b(?:inclusion|exclusion)\s+criteri|\bas defined above\b|\bcriteria listed\b|"
    r"^(?:a\s+|an\s+)?[a-z ]{0,80}\b(?:is|are)\s+(?:considered|defined)\b|^definitions?\b"
)
_RECIPIENTS = re.compile(
    r"^(?P<who>(?:recipients|patients|subjects|participants|those|women|men|children)\s+(?:who|that)\s+"
    r"(?:have\s+had|have\s+received|had|received|underwent|have\s+undergone|are\s+on|are\s+receiving)\s+"
    r"(?P<what>[^,;]{3,60}?))\s+(?:must|should|need|will|may|can|are\s+required)\b"
)


_DESCRIPTOR_TAIL = re.compile(
    r"^\W*(?:(?:women|woman|females?|patients?|subjects?|participants?|volunteers?|mothers?)\s+)?"
    r"(?:who|that|having|planning|whose|intending|wishing|not\s+speaking)\b"
)


def _mark_descriptors(b: Builder) -> None:
    """In exclusion items, "Women who ..." / "Pregnant women who ..." only say whom the item is about."""
    if b.kind != "exclusion":
        return
    # "men and women who ..." describes the population, it excludes no one by itself
    b.out = [c for c in b.out if not (c.kind == "sex" and c.value == "all")]
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
    b = Builder(text, kind, vocab)
    b.offset = len(item_text) - len(stripped) + (len(stripped) - len(stripped.lstrip()))
    if _META.search(b.norm) or _OTHER_PERSON.match(b.norm):
        return []  # refers to other criteria or to someone else (a donor, a control): nothing to check here
    b.full_norm = b.norm
    exc = re.search(r"\b(?:except|excluding|with\s+the\s+exception\s+of|unless|other\s+than)\b", b.norm)
    if exc:
        # exceptions name other people or conditions; only the condition extractor reads them (as exceptions)
        b.norm = b.norm[: exc.start()] + " " * (len(b.norm) - exc.start())
    if kind == "exclusion":
        # "No evidence of acute infection" under an exclusion header is the author's double negative
        b.norm = re.sub(
            r"^(\s*)(?:no evidence of|no history of|no|without)\b", lambda m: " " * len(m.group(0)), b.norm
        )
    rec = _RECIPIENTS.match(b.norm)
    if rec:
        what = rec.group("what")
        concepts, required = concept_cover(what, vocab)
        core, quals = phrase_tokens(what, vocab)
        b.add(
            classify(what, concepts, []),
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
    ages = [] if FAMILY_CRIT.search(b.norm) else parse_age(b.norm)  # "relatives affected before age 55"
    age_group = b.new_group()
    for age in ages:
        b.add(
            "age",
            age.start,
            age.end,
            0.95,
            group=age_group,
            low=age.low,
            high=age.high,
            low_inclusive=age.low_inclusive,
            high_inclusive=age.high_inclusive,
            unit="years",
            conditional=age.conditional,
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
    if kind == "exclusion":
        for c in b.out:
            if c.kind in ("pregnancy", "lactation"):
                c.negated = False  # "Nonpregnant" under an exclusion header still means pregnancy excludes
    elif any(c.kind == "pregnancy" and not c.negated and not c.conditional for c in b.out):
        # a pregnancy requirement buried in a long inclusion item is too easy to misread
        first = min((c.span[0] for c in b.out if c.kind == "pregnancy"), default=0) - b.offset
        if len(b.norm) > 100 and first > 20:
            for c in b.out:
                if c.kind == "pregnancy":
                    c.confidence = min(c.confidence, 0.6)
    if re.search(r"\b(?:initial|initially|first|baseline|at admission|on admission)\b", b.norm):
        for c in b.out:
            if c.kind == "lab":
                c.value = "initial"
    b.has_labs = any(c.kind == "lab" for c in b.out)
    concept_only = any(
        c.kind not in ("lab", "life_expectancy", "participation") and not c.conditional for c in b.out
    )
    extract_conditions(b, concept_only)
    for c in b.out:
        # "no other prior or concurrent malignancy": "other" governs every alternative after it
        if c.kind in ("condition", "malignancy") and c.terms and not c.terms[0].startswith(("other ", "another ")):
            start = c.span[0] - b.offset
            if 0 < start <= len(b.norm) and _OTHER_BEFORE.search(b.norm[max(0, start - 50) : start]):
                c.terms[0] = f"other {c.terms[0]}"
    permissive = re.search(
        r"\b(?:allowed|permitted|acceptable|may\s+(?:continue|be\s+(?:included|enrolled|eligible))|"
        r"(?:are|is)\s+eligible|not\s+be\s+(?:specifically\s+)?excluded)\b",
        b.norm,
    )
    if (
        permissive
        or re.search(r"\b(?:if|when|provided\s+that|in\s+case\s+of)\b", b.norm[6:])
        or re.search(r"\bdefined\s+(?:as|by)\b|^[a-z /-]{3,40}:\s*\D{0,80}\d", b.norm)
    ):
        # "... if participating in Step 2", "Hypertension: pressures > 160/95": the deciding detail is
        # a condition or a definition we cannot check, so a bare diagnosis must not decide
        # "... if participating in Step 2": the deciding condition is outside what we can check
        for c in b.out:
            if (
                c.kind in ("condition", "therapy", "infection", "malignancy", "surgery", "vaccination")
                and not c.conditional
            ):
                c.confidence = min(c.confidence, 0.6)
            elif permissive and c.kind in ("pregnancy", "lactation") and not c.conditional:
                c.confidence = min(c.confidence, 0.6)  # "Pregnant or nursing women allowed" requires neither
    # renumber groups densely so callers can rely on 0..n-1
    remap: dict[int, int] = {}
    for c in b.out:
        c.group = remap.setdefault(c.group, len(remap))
    return b.out


_OTHER_BEFORE = re.compile(r"\b(?:other|another)\s+(?:[\w-]+\s+){0,3}(?:or|and/or|and)\s+$")


# re-exported for tests
