"""Checking one constraint against one patient: true, false, unknown or not applicable.

Every answer carries a confidence, the evidence it rests on, and a *reason*.  The reason matters for
the safety rule: "unknown because the note never mentions it" may be read as "absent" when that can only
help the patient (an exclusion is then not triggered), but never to turn a patient away.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field

from trialfinder.eligibility.constraints import Constraint
from trialfinder.eligibility.nlp import assertion, stem, tokens
from trialfinder.eligibility.patient import LabValue, Patient
from trialfinder.eligibility.vocab import Vocab, load_vocab

__all__ = ["AtomResult", "assess"]

Evidence = int | str

# reasons after which an unknown may be treated as "absent" for exclusion items (closed world)
CLOSED_WORLD_REASONS = frozenset({"not_mentioned", "qualifier_missing", "closed_list"})
_GENERIC = frozenset(
    "pain disease disorder problem injury symptom lesion mass change abnormality dysfunction failure impairment use "
    "abuse treatment therapy drug medication test exam examination procedure condition finding sign history risk "
    "factor illness state event episode complication infection".split()
)
_STRONG_QUALIFIERS = frozenset(
    "severe uncontrolled unstable significant malignant secondary refractory decompensated advanced metastatic "
    "life-threatening end-stage poorly moderate marked extensive complicated persistent recurrent progressive "
    "active serious major untreated invasive congenital neonatal fetal inherited hereditary".split()
)
_QUALIFIER_SYNONYMS = {
    "severe": (
        "severe",
        "excruciating",
        "marked",
        "serious",
        "critical",
        "profound",
        "intense",
        "massive",
        "extended",
    ),
    "uncontrolled": ("uncontrolled", "worsened", "worsening", "despite", "poorly controlled", "refractory"),
    "active": ("active", "current", "ongoing", "acute"),
    "significant": ("significant", "severe", "marked"),
    "unstable": ("unstable", "instability"),
    "recurrent": ("recurrent", "recurring", "repeated", "episodic", "multiple"),
    "persistent": ("persistent", "chronic", "ongoing"),
    "progressive": ("progressive", "progressed", "worsening"),
}


#: Criterion phrases about a disease other than the one the study is for, or about that disease by
#: reference only: a mention in the note cannot decide them.
_OTHER_THAN_INDEX = re.compile(
    r"^(?:(?:any|no)\s+)?(?:other|another|additional|second|concomitant)\b.*\b(?:malignanc\w*|cancers?|tumou?rs?|"
    r"neoplasms?|\w+omas?|diseases?|disorders?|illness(?:es)?|conditions?)$|"
    r"\b(?:treatment|therapy|chemotherapy|radiotherapy|radiation|surgery|resection)\s+(?:for|of|to)\s+|"
    r"\b(?:for|of)\s+(?:this|the\s+(?:study|index|current|primary))\s+(?:malignancy|cancer|disease|condition|tumou?r)\b"
)


@dataclass
class AtomResult:
    """The value of one constraint for one patient."""

    constraint: Constraint
    value: str  # "T" | "F" | "U" | "NA"
    confidence: float
    reason: str
    explanation: str
    evidence: list[Evidence] = field(default_factory=list)


def _res(
    c: Constraint, value: str, conf: float, reason: str, expl: str, ev: Sequence[Evidence] | None = None
) -> AtomResult:
    if c.negated and value in ("T", "F"):
        value = "F" if value == "T" else "T"
    return AtomResult(c, value, round(min(conf, 1.0), 3), reason, expl, list(ev or []))


def _in_interval(c: Constraint, low: float | None, high: float | None) -> str:
    """T if the patient interval lies inside the constraint interval, F if disjoint, else U."""
    clo, chi = c.low, c.high

    def above_low(x: float | None) -> bool:  # x >= clo (respecting inclusivity)
        if clo is None:
            return True
        if x is None:
            return False
        return x >= clo if c.low_inclusive else x > clo

    def below_high(x: float | None) -> bool:
        if chi is None:
            return True
        if x is None:
            return False
        return x <= chi if c.high_inclusive else x < chi

    if above_low(low) and below_high(high):
        return "T"
    # disjoint: patient entirely below the lower bound or entirely above the upper bound
    if clo is not None and high is not None and (high < clo or (high == clo and not c.low_inclusive)):
        return "F"
    if chi is not None and low is not None and (low > chi or (low == chi and not c.high_inclusive)):
        return "F"
    return "U"


def _fmt(x: float | None) -> str:
    return "?" if x is None else f"{x:g}"


# --------------------------------------------------------------------------------------------------


def _age(c: Constraint, p: Patient) -> AtomResult:
    if p.age is None:
        return _res(c, "U", 0.5, "unknown", "age not known", [])
    v = _in_interval(c, p.age, p.age)
    word = {"T": "meets", "F": "does not meet", "U": "may not meet"}[v]
    return _res(c, v, 0.95, "explicit", f"age {_fmt(p.age)} {word} '{c.text}'", p.evidence.get("age", []))


def _sex(c: Constraint, p: Patient) -> AtomResult:
    if c.value == "all":
        return _res(c, "T", 0.95, "explicit", "all sexes eligible", p.evidence.get("sex", []))
    if p.sex is None:
        return _res(c, "U", 0.5, "unknown", "sex not known")
    v = "T" if p.sex == c.value else "F"
    return _res(c, v, 0.95, "explicit", f"patient is {p.sex}", p.evidence.get("sex", []))


def _can_be_pregnant(p: Patient) -> bool | None:
    if p.sex == "male":
        return False
    if p.menopausal:
        return False
    if p.age is not None and (p.age < 10 or p.age >= 55):
        return False
    if p.sex == "female" and p.age is not None and 12 <= p.age < 50:
        return True
    return None


def _reproductive(c: Constraint, p: Patient) -> AtomResult:
    ev_sex = p.evidence.get("sex", [])
    if p.sex == "male" and not (c.kind == "contraception" and c.value == "all"):
        return AtomResult(c, "NA", 0.9, "explicit", "does not apply to a male patient", ev_sex)
    if c.kind == "pregnancy":
        if p.pregnant is not None:
            return _res(
                c,
                "T" if p.pregnant else "F",
                0.85,
                "explicit",
                "patient is pregnant" if p.pregnant else "patient is not pregnant",
                p.evidence.get("pregnancy", []),
            )
        if _can_be_pregnant(p) is False:
            return _res(
                c,
                "F",
                0.8,
                "explicit",
                "patient cannot be pregnant (age/menopause)",
                p.evidence.get("age", []) + p.evidence.get("menopause", []),
            )
        return _res(c, "U", 0.5, "unknown", "pregnancy status not stated")
    if c.kind == "pregnancy_plan":
        if _can_be_pregnant(p) is False:
            return _res(c, "F", 0.7, "explicit", "pregnancy not possible")
        return _res(c, "U", 0.5, "not_mentioned", "pregnancy plans not stated")
    if c.kind == "lactation":
        if p.lactating is not None:
            return _res(
                c,
                "T" if p.lactating else "F",
                0.85,
                "explicit",
                "breastfeeding status stated",
                p.evidence.get("lactation", []),
            )
        if _can_be_pregnant(p) is False and not p.postpartum:
            return _res(c, "F", 0.7, "explicit", "lactation not plausible")
        return _res(c, "U", 0.5, "not_mentioned", "breastfeeding not mentioned")
    if c.kind == "contraception":
        if p.sexually_active is False:
            return AtomResult(
                c,
                "NA",
                0.8,
                "explicit",
                "patient is not sexually active",
                p.evidence.get("sexual_activity", []),
            )
        if _can_be_pregnant(p) is False and p.sex == "female":
            return AtomResult(
                c, "NA", 0.7, "explicit", "patient cannot become pregnant", p.evidence.get("age", [])
            )
        if p.contraception:
            return _res(c, "T", 0.75, "explicit", "patient uses contraception", p.evidence.get("contraception", []))
        # not using contraception now says nothing about agreeing to use it during a trial
        return _res(c, "U", 0.5, "unknown", "contraception use not stated")
    if c.kind == "childbearing":
        cb = _can_be_pregnant(p)
        if cb is None:
            return _res(c, "U", 0.5, "unknown", "childbearing potential unknown")
        return _res(
            c,
            "T" if cb else "F",
            0.75,
            "explicit",
            "woman of childbearing potential" if cb else "not of childbearing potential",
            p.evidence.get("age", []) + ev_sex,
        )
    if c.kind == "menopause":
        conf = 0.8
        if p.menopausal is not None:
            post = p.menopausal
        elif p.sex == "female" and p.age is not None and p.age >= 55:
            post, conf = True, 0.65  # inferred from age only: never decisive
        elif p.sex == "female" and p.age is not None and p.age < 45:
            post, conf = False, 0.65
        else:
            return _res(c, "U", 0.5, "unknown", "menopausal status unknown")
        want_post = c.value == "post"
        return _res(
            c,
            "T" if post == want_post else "F",
            conf,
            "explicit",
            "postmenopausal" if post else "premenopausal",
            p.evidence.get("menopause", []) + p.evidence.get("age", []),
        )
    return _res(c, "U", 0.3, "unknown", "unsupported reproductive constraint")


def _consent(c: Constraint, p: Patient) -> AtomResult:
    value = p.consents if c.kind == "consent" else (p.complies if p.complies is not None else p.consents)
    key = "consent" if c.kind == "consent" or p.complies is None else "compliance"
    if value is None:
        return _res(c, "U", 0.5, "not_mentioned", f"{c.kind} not stated")
    what = "will give informed consent" if c.kind == "consent" else "will comply with the protocol"
    return _res(
        c,
        "T" if value else "F",
        0.85,
        "explicit",
        f"patient {what}" if value else f"patient {what}: no",
        p.evidence.get(key, []),
    )


def _life(c: Constraint, p: Patient) -> AtomResult:
    grave = [
        s.sid
        for s in p.sentences
        if re.search(r"\b(?:terminal|hospice|moribund|palliative|comfort care|end of life)\b", s.norm)
    ]
    if grave:
        return _res(c, "U", 0.4, "unknown", "limited life expectancy suggested", grave)
    limit = c.low if c.low is not None else c.high
    if limit is not None and limit <= 2 * 365:
        # nothing suggests a short life expectancy; assume it exceeds short horizons
        v = "T" if c.low is not None else "F"
        return _res(c, v, 0.6, "inferred", "no sign of a limited life expectancy")
    return _res(c, "U", 0.4, "not_mentioned", "life expectancy not stated")


def _lab_value(c: Constraint, p: Patient, vocab: Vocab) -> tuple[LabValue | None, float, str]:
    if c.analyte is None:
        return None, 0.0, "missing"
    values = p.labs.get(c.analyte) or []
    first = c.value == "initial"
    v = (values[0] if first else values[-1]) if values else None
    if v is not None:
        return v, 0.85 if not v.qualitative else 0.75, "explicit"
    an = vocab.analytes.get(c.analyte)
    if an and an.normal:
        keys = [c.analyte] + [f"panel:{panel}" for panel in an.panels]
        for key in keys:
            if key in p.normal_panels:
                return (
                    LabValue(
                        c.analyte, an.normal[0], an.normal[1], p.normal_panels[key], "reported normal", True
                    ),
                    0.7,
                    "normal",
                )
    return None, 0.0, "missing"


def _lab(c: Constraint, p: Patient, vocab: Vocab) -> AtomResult:
    an = vocab.analytes.get(c.analyte or "")
    v, conf, how = _lab_value(c, p, vocab)
    if v is None:
        # scores and vital signs that are not reported are taken as unremarkable; lab values are not
        reason = "not_mentioned" if an is not None and (an.score or "vitals" in an.panels) else "unknown"
        return _res(c, "U", 0.5, reason, f"{c.analyte} not reported")
    low, high = v.low, v.high
    if c.unit == "uln":
        uln = an.normal[1] if an and an.normal else None
        if uln is None:
            return _res(c, "U", 0.4, "unknown", "upper limit of normal unknown", v.evidence)
        low = None if low is None else low / uln
        high = None if high is None else high / uln
        conf = min(conf, 0.7)
    result = _in_interval(c, low, high)
    expl = f"{c.analyte} {_fmt(v.low)}" + (f"-{_fmt(v.high)}" if v.high != v.low else "") + f" vs '{c.text}'"
    if how == "normal":
        expl = f"{c.analyte} reported normal vs '{c.text}'"
    return _res(c, result, conf, "explicit" if result != "U" else "unknown", expl, v.evidence)


# --------------------------------------------------------------------------------------------------
# conditions and therapies


def _sentence_tokens(p: Patient) -> list[tuple[int, set[str], list[tuple[str, int, int]]]]:
    cache = p.cache.get("tokens")
    if cache is None:
        cache = []
        for s in p.sentences:
            toks = tokens(s.norm)
            cache.append((s.sid, {t for t, _a, _b in toks}, toks))
        p.cache["tokens"] = cache
    return cache


def _quals_ok(c: Constraint, text: str) -> bool:
    strong = [q for q in c.qualifiers if q in _STRONG_QUALIFIERS]
    if not strong:
        return True
    low = text.lower()
    for q in strong:
        if any(re.search(rf"\b{re.escape(s)}", low) for s in _QUALIFIER_SYNONYMS.get(q, (q,))):
            return True
    return False


def _tight_window(toklist: list[tuple[str, int, int]], core: list[str]) -> tuple[int, int] | None:
    """Smallest token window holding every core word; None unless it is nearly contiguous."""
    need = set(core)
    best: tuple[int, int, int] | None = None
    for i, (t, _a, _b) in enumerate(toklist):
        if t not in need:
            continue
        seen: set[str] = set()
        for j in range(i, min(len(toklist), i + len(need) + 3)):
            if toklist[j][0] in need:
                seen.add(toklist[j][0])
            if seen == need:
                width = j - i
                if best is None or width < best[0]:
                    best = (width, toklist[i][1], toklist[j][2])
                break
    return None if best is None else (best[1], best[2])


@dataclass
class _Hit:
    status: str
    days_ago: float | None
    historical: bool
    evidence: list[Evidence]
    text: str
    context: str
    inferred: bool = False


_STATUS_RANK = {"present": 0, "possible": 1, "absent": 2, "family": 3, "hypothetical": 4}


def _condition_hits(c: Constraint, p: Patient, vocab: Vocab) -> list[_Hit]:
    hits: list[_Hit] = []
    wanted: set[str] = set()
    direct = set(c.concepts)
    for k in c.concepts:
        wanted |= vocab.class_members(k)
    # members reached only through a broad class ("lung disease" -> asthma) are an inference
    strict = {m for k in c.concepts if k in vocab.decisive_classes for m in vocab.class_members(k)}
    sent_text = {s.sid: s.norm for s in p.sentences}
    # a denied parent concept ("denies diabetes") also denies its subtypes ("type 1 diabetes")
    parents = {k for k in vocab.concept_classes if wanted & vocab.class_members(k)} if wanted else set()
    for f in p.conditions:
        if wanted and f.status == "absent" and f.concepts & parents and not f.concepts & wanted:
            hits.append(_Hit(f.status, f.days_ago, f.historical, list(f.evidence), f.name, f.name.lower()))
            continue
        if wanted and f.concepts & wanted:
            ctx = (
                sent_text.get(f.evidence[0], f.name.lower())
                if f.evidence and isinstance(f.evidence[0], int)
                else f.name.lower()
            )
            words = [t for t in c.required if not t.startswith("#")]
            if words:
                ctx_toks = {t for t, _a, _b in tokens(ctx)}
                if not all(t in ctx_toks for t in words):
                    continue  # "traumatic cause of dyspnea" needs more than a mention of dyspnea
            inferred = not (f.concepts & direct) and not (f.concepts & strict)
            hits.append(_Hit(f.status, f.days_ago, f.historical, list(f.evidence), f.name, ctx, inferred))
    core = [t for t in (c.value or "").split() if t]
    if (
        core
        and not (len(core) == 1 and (core[0] in _GENERIC or len(core[0]) < 4))
        and not all(t in _GENERIC for t in core)
    ):
        for sid, toks, toklist in _sentence_tokens(p):
            if all(t in toks for t in core):
                span = _tight_window(toklist, core)
                if span is None:
                    continue
                start, end = span
                sent = next(s for s in p.sentences if s.sid == sid)
                a = assertion(sent.norm, start, end, vocab, age=p.age)
                status = (
                    "family"
                    if a.family
                    else "absent"
                    if a.negated
                    else "hypothetical"
                    if a.hypothetical
                    else ("possible" if a.uncertain else "present")
                )
                hits.append(
                    _Hit(status, a.days_ago, a.historical, [sid], sent.original(start, end), sent.norm)
                )
        for f in p.conditions:
            if f.evidence and isinstance(f.evidence[0], str):
                ftoks = {stem(t) for t, _a, _b in tokens(f.name.lower())}
                if all(t in ftoks for t in core):
                    hits.append(
                        _Hit(f.status, f.days_ago, f.historical, list(f.evidence), f.name, f.name.lower())
                    )
    if c.exceptions:
        exc = [e for e in c.exceptions if e]
        hits = [h for h in hits if not any(e in h.text.lower() or h.text.lower() in e for e in exc)]
    return hits


_NEG_LEAD_WORDS = frozenset(
    "no not denies denied deny without negative never none nor free absence lack".split()
)


def _negated_kind_only(h: _Hit, label: str, vocab: Vocab) -> bool:
    """True when the note negates a narrower thing than the criterion names: "no evidence of ...
    autoimmune hepatitis" says nothing about chronic viral hepatitis, "no severe asthma" nothing about
    asthma. The word before the mention is then a modifier the criterion does not share."""
    ctx, name = h.context.lower(), h.text.lower()
    i = ctx.find(name)
    if i <= 0:
        return False
    words = re.findall(r"[a-z][a-z-]*", ctx[:i])
    if not words:
        return False
    w = words[-1]
    cue_words = {x for cue in vocab.cues.get("negation_pre", []) for x in cue.split()}
    return not (w in _NEG_LEAD_WORDS or w in cue_words or w in vocab.boilerplate or w in label.lower().split())


def _condition(c: Constraint, p: Patient, vocab: Vocab) -> AtomResult:
    hits = _condition_hits(c, p, vocab)
    label = (c.terms[0] if c.terms else c.text).strip()
    if c.family:
        # the criterion is about relatives ("a biological parent with bipolar disorder")
        fam = [h for h in hits if h.status == "family"]
        if fam:
            return _res(c, "T", 0.75, "explicit", f"family history of '{fam[0].text}'", fam[0].evidence)
        return _res(c, "U", 0.5, "not_mentioned", f"no family history of '{label}'")
    if not hits:
        return _res(c, "U", 0.5, "not_mentioned", f"no mention of '{label}'")
    hits.sort(key=lambda h: _STATUS_RANK.get(h.status, 9))
    h = hits[0]
    if h.status == "possible":
        return _res(c, "U", 0.5, "uncertain", f"'{h.text}' is only suspected", h.evidence)
    if h.status == "absent" and _negated_kind_only(h, label, vocab):
        return _res(c, "U", 0.5, "uncertain", f"only a particular kind of '{h.text}' is negated in the note",
                    h.evidence)
    if h.status == "absent":
        return _res(
            c,
            "F",
            min(0.85, c.confidence + 0.05),
            "explicit",
            f"'{h.text}' is negated in the note",
            h.evidence,
        )
    if h.status in ("family", "hypothetical"):
        why = "refers to a family member" if h.status == "family" else "is hypothetical"
        return _res(c, "U", 0.5, "not_mentioned", f"'{h.text}' {why}", h.evidence)
    if (
        c.kind == "malignancy"
        and re.search(r"\b(?:prior|previous|earlier)\b", label.lower())
        and not h.historical
        and h.days_ago is None
    ):
        # "no prior malignancy" for a patient whose cancer is current: that cancer is most likely the one
        # the study is for, not a prior one
        return _res(c, "U", 0.5, "uncertain", f"'{h.text}' is current; whether it counts as prior is unclear",
                    h.evidence)
    if _OTHER_THAN_INDEX.search(label.lower()):
        # "no other malignancy", "therapy for this malignancy": the patient's own (study) disease is
        # not the one meant, and the note cannot tell us whether a mention is that disease or another
        return _res(c, "U", 0.5, "uncertain", f"'{h.text}' may be the disease the study is about", h.evidence)
    if "#quantity" in c.required and h.status == "present":
        return _res(
            c,
            "U",
            0.5,
            "qualifier_missing",
            f"'{h.text}' present; the amount/frequency in '{label}' is not stated",
            h.evidence,
        )
    if not _quals_ok(c, h.context):
        return _res(
            c,
            "U",
            0.5,
            "qualifier_missing",
            f"'{h.text}' present but not described as {'/'.join(c.qualifiers)}",
            h.evidence,
        )
    if c.window_days is not None:
        if h.days_ago is not None:
            inside = h.days_ago <= c.window_days
            return _res(
                c,
                "T" if inside else "F",
                0.8,
                "explicit",
                f"'{h.text}' {_fmt(round(h.days_ago))} days ago vs window of {_fmt(round(c.window_days))} days",
                h.evidence,
            )
        if h.historical:
            return _res(c, "U", 0.5, "time_unknown", f"'{h.text}' in history, date unknown", h.evidence)
    if c.current and h.historical and h.days_ago is not None and h.days_ago > 365:
        return _res(
            c, "F", 0.6, "explicit", f"'{h.text}' was {round(h.days_ago / 365.25)} years ago", h.evidence
        )
    # vocabulary-backed matches can decide; word-overlap matches alone stay below the decisive threshold
    conf = min(0.85, c.confidence + 0.05)
    if h.inferred:
        conf = min(conf, 0.65)
        return _res(c, "T", conf, "explicit", f"note mentions '{h.text}' (a kind of {label})", h.evidence)
    return _res(c, "T", conf, "explicit", f"note mentions '{h.text}'", h.evidence)


def _therapy(c: Constraint, p: Patient, vocab: Vocab) -> AtomResult:
    r = _therapy_taken(c, p, vocab)
    if c.min_days is None or r.value not in ("T", "F"):
        return r
    # washout ("at least 4 weeks since prior chemotherapy", "able to discontinue ACE inhibitors"):
    # met when the drug is not taken now, or was stopped long enough ago
    taken = (r.value == "T") != c.negated
    if not taken:
        return AtomResult(c, "T", r.confidence, r.reason, r.explanation, r.evidence)
    m = next((m for m in p.medications if m.evidence == r.evidence and m.status == "past"), None)
    if m is not None and m.days_ago is not None:
        ok = m.days_ago >= c.min_days
        return AtomResult(
            c,
            "T" if ok else "F",
            0.75,
            "explicit",
            f"{m.name} stopped {round(m.days_ago)} days ago",
            m.evidence,
        )
    return AtomResult(c, "U", 0.5, "time_unknown", r.explanation, r.evidence)


_DOSE_CHANGE = re.compile(
    r"\b(?:unstable|changing|changed|fluctuating|escalating|increas(?:ed|ing)|new(?:ly)?)\s+(?:\w+\s+)?dos(?:e|es|ing|age)\b"
    r"|\bdos(?:e|es|ing|age)\s+(?:\w+\s+)?(?:change|changes|changed|adjustment|adjustments|increase|increases)\b"
)


_DOSE_LIMIT = re.compile(
    r"\d\s*(?:mg|mcg|µg|g|iu|units?|ml)\b|\bdos(?:e|es|age)\s+(?:of\s+)?(?:greater|more|higher|above|over|"
    r"exceeding|less|lower|below|under)\b|[<>≤≥]\s*\d|\b(?:maxim(?:al|um)|high|higher|low|full|supratherapeutic)"
    r"[- ]dose\b|\bmaxim(?:al|um)\s+(?:\w+\s+)?(?:therapy|treatment|doses?)\b"
)


def _about_dose_change(c: Constraint) -> bool:
    """True when a therapy item is about the dose changing, not about taking the drug at all."""
    return "unstable" in c.qualifiers or bool(_DOSE_CHANGE.search(c.text.lower()))


def _therapy_taken(c: Constraint, p: Patient, vocab: Vocab) -> AtomResult:
    cap = min(0.85, c.confidence + 0.05)  # a weakly parsed constraint cannot decide either way
    found = []
    for term in c.terms:
        cls = vocab.drug_class_names.get(term)
        for m in p.medications:
            name = m.name.lower()
            if (cls and cls in m.classes) or term == name or term in name or (len(name) > 4 and name in term):
                found.append(m)
    if found:
        found.sort(key=lambda m: {"current": 0, "past": 1, "absent": 2}.get(m.status, 3))
        m = found[0]
        if m.status == "absent":
            return _res(c, "F", cap, "explicit", f"patient does not take {m.name}", m.evidence)
        if m.status == "past":
            if c.current:
                return _res(c, "F", 0.6, "explicit", f"{m.name} was taken in the past only", m.evidence)
            if c.window_days is not None and m.days_ago is not None:
                inside = m.days_ago <= c.window_days
                return _res(
                    c,
                    "T" if inside else "F",
                    0.75,
                    "explicit",
                    f"{m.name} stopped {round(m.days_ago)} days ago",
                    m.evidence,
                )
            if c.window_days is not None:
                return _res(
                    c, "U", 0.5, "time_unknown", f"{m.name} taken previously, date unknown", m.evidence
                )
        if _about_dose_change(c):
            # "unstable doses of mycophenolate": taking the drug is not enough, its dose history decides
            if m.stable_days is not None and c.stable_days is not None and m.stable_days < c.stable_days:
                return _res(c, "T", 0.6, "explicit", f"{m.name} stable for {round(m.stable_days)} days only, the "
                            f"criterion asks {round(c.stable_days)}", m.evidence)
            if m.stable_days is not None:
                return _res(c, "F", 0.7, "explicit", f"{m.name} at a stable dose for {round(m.stable_days)} days",
                            m.evidence)
            if m.stable and c.stable_days is None:
                return _res(c, "F", 0.65, "explicit", f"{m.name} at a stable dose", m.evidence)
            if m.stable:
                return _res(c, "U", 0.5, "time_unknown", f"{m.name} at a stable dose; for how long is not stated",
                            m.evidence)
            return _res(c, "U", 0.5, "qualifier_unknown", f"patient takes {m.name}; dose stability not stated",
                        m.evidence)
        if _DOSE_LIMIT.search(c.text.lower()):
            # "prednisone dose greater than 0.25 mg/kg", "maximal immunosuppressive therapy": the dose
            # decides, and taking the drug says nothing about it
            return _res(c, "U", 0.5, "qualifier_unknown", f"patient takes {m.name}; the dose in the criterion "
                        "is not checked", m.evidence)
        return _res(c, "T", min(0.85, c.confidence + 0.05), "explicit", f"patient takes {m.name}", m.evidence)
    if p.no_medications:
        return _res(c, "F", cap, "explicit", "patient takes no medications", p.medication_sentences)
    if p.medication_sentences or any(isinstance(e, str) for m in p.medications for e in m.evidence):
        return _res(
            c,
            "F",
            0.6,
            "closed_list",
            f"'{', '.join(c.terms)}' not among the patient's medications",
            p.medication_sentences,
        )
    return _res(c, "U", 0.5, "not_mentioned", f"no mention of {', '.join(c.terms)}")


def assess(c: Constraint, p: Patient, vocab: Vocab | None = None) -> AtomResult:
    """Evaluate one constraint for one patient."""
    vocab = vocab or load_vocab()
    if c.kind == "age":
        return _age(c, p)
    if c.kind == "sex":
        return _sex(c, p)
    if c.kind in ("pregnancy", "pregnancy_plan", "lactation", "contraception", "childbearing", "menopause"):
        r = _reproductive(c, p)
        if c.confidence <= 0.6 and r.confidence > c.confidence:
            # a weak parse (a permission, a requirement buried in a long item) cannot decide
            r.confidence = c.confidence
        return r
    if c.kind in ("consent", "compliance"):
        return _consent(c, p)
    if c.kind == "life_expectancy":
        return _life(c, p)
    if c.kind == "lab":
        return _lab(c, p, vocab)
    if c.kind == "participation":
        return _res(c, "U", 0.5, "not_mentioned", "participation in other studies not stated")
    if c.kind == "therapy":
        return _therapy(c, p, vocab)
    return _condition(c, p, vocab)
