"""Patient facts: from structured data and/or a free-text note.

A patient arrives either as structured facts (a form, an EHR export) or as a clinical note, often both.
Both become one :class:`Patient` so the verdict logic has a single input.  Facts from a note carry
their assertion status (negated, uncertain, a family member's, hypothetical) and timing, because
"denies diabetes" or "mother had breast cancer" must never count as the patient having the disease.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import date
from typing import Any

from trialfinder.eligibility.nlp import (
    Assertion,
    Sentence,
    assertion,
    cue_regex,
    find_concepts,
    find_terms,
    parse_number,
    split_sentences,
    unit_days,
)
from trialfinder.eligibility.vocab import Vocab, load_vocab

__all__ = ["ConditionFact", "LabValue", "Medication", "Patient", "extract_patient", "convert_unit"]

Evidence = int | str


@dataclass
class ConditionFact:
    """A condition (or finding) the patient has, had, or explicitly does not have."""

    name: str
    concepts: set[str]
    status: str  # "present" | "absent" | "possible" | "family" | "hypothetical"
    days_ago: float | None = None
    historical: bool = False
    evidence: list[Evidence] = field(default_factory=list)


@dataclass
class Medication:
    """A medication with its drug classes; ``status`` is "current", "past" or "absent"."""

    name: str
    classes: set[str]
    status: str = "current"
    days_ago: float | None = None
    #: how long the dose has been stable, when the note says so ("stable dose ... for 6 months")
    stable_days: float | None = None
    evidence: list[Evidence] = field(default_factory=list)
    #: the note says the dose is stable ("on a stable dose of ..."), with or without a duration
    stable: bool = False


@dataclass
class LabValue:
    """A lab value or score as a closed interval in the analyte's canonical unit (a point when low == high)."""

    analyte: str
    low: float | None
    high: float | None
    evidence: list[Evidence] = field(default_factory=list)
    text: str = ""
    qualitative: bool = False
    days_ago: float | None = None


@dataclass
class Patient:
    """Everything the engine knows about one patient; ``None`` means unknown, never "no"."""

    age: float | None = None
    sex: str | None = None
    pregnant: bool | None = None
    lactating: bool | None = None
    postpartum: bool = False
    menopausal: bool | None = None
    sexually_active: bool | None = None
    #: uses contraception now ("uses an IUD", "on oral contraceptives"); False when the note denies it
    contraception: bool | None = None
    consents: bool | None = None
    complies: bool | None = None
    healthy: bool = False
    no_medications: bool = False
    location: str | None = None
    conditions: list[ConditionFact] = field(default_factory=list)
    medications: list[Medication] = field(default_factory=list)
    labs: dict[str, list[LabValue]] = field(default_factory=dict)
    normal_panels: dict[str, list[Evidence]] = field(default_factory=dict)
    sentences: list[Sentence] = field(default_factory=list)
    evidence: dict[str, list[Evidence]] = field(default_factory=dict)
    note: str | None = None
    medication_sentences: list[int] = field(default_factory=list)
    cache: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)

    def lab(self, analyte: str) -> LabValue | None:
        """The most recent (last reported) value of an analyte."""
        values = self.labs.get(analyte)
        return values[-1] if values else None

    def add_lab(self, value: LabValue) -> None:
        """Record a lab value, keeping report order."""
        self.labs.setdefault(value.analyte, []).append(value)


# --------------------------------------------------------------------------------------------------
# units


def convert_unit(value: float, unit: str | None, analyte: str, vocab: Vocab | None = None) -> float | None:
    """Convert ``value`` in ``unit`` to the analyte's canonical unit; None if the unit is unknown for it."""
    vocab = vocab or load_vocab()
    an = vocab.analytes.get(analyte)
    if an is None:
        return None
    if not unit:
        if an.bare_number_factor and value >= 1000:
            return value * an.bare_number_factor
        return value
    canon = vocab.unit_aliases.get(unit.strip().lower().replace(" ", ""), None) or vocab.unit_aliases.get(
        unit.strip().lower()
    )
    if canon is None:
        return None
    if canon == an.unit:
        return value
    if canon in an.convert:
        factor, offset = an.convert[canon]
        return value * factor + offset
    return None


# --------------------------------------------------------------------------------------------------
# note extraction

_AGE_PATTERNS = [
    (re.compile(r"\b(\d{1,3}(?:\.\d)?)[\s-]*(?:year|yr)s?[\s-]*old\b"), 1.0),
    (re.compile(r"\b(\d{1,3})[\s-]*(?:yo|y/o|y\.o\.|yrs?)\b"), 1.0),
    (re.compile(r"\baged?\s+(\d{1,3})\b"), 1.0),
    (re.compile(r"\b(\d{1,2})[\s-]*months?[\s-]*old\b"), 1 / 12),
    (re.compile(r"\b(\d{1,2})[\s-]*weeks?[\s-]*old\b"), 1 / 52),
    (re.compile(r"\b(\d{1,2})[\s-]*days?[\s-]*old\b"), 1 / 365),
]
_FEMALE = re.compile(r"\b(?:woman|women|female|girl|lady|f)\b")
_MALE = re.compile(r"\b(?:man|men|male|boy|gentleman|m)\b")
_SHE = re.compile(r"\b(?:she|her|hers|herself)\b")
_HE = re.compile(r"\b(?:he|his|him|himself)\b")


def _extract_age_sex(p: Patient, vocab: Vocab) -> None:
    for s in p.sentences:
        if p.age is None:
            for rx, factor in _AGE_PATTERNS:
                m = rx.search(s.norm)
                if m:
                    p.age = round(float(m.group(1)) * factor, 3)
                    p.evidence["age"] = [s.sid]
                    break
            else:
                if re.search(r"\b(?:newborn|neonate)\b", s.norm):
                    p.age = 0.0
                    p.evidence["age"] = [s.sid]
        if p.sex is None:
            head = s.norm[:120]
            # the patient's own noun comes first ("A 58-year-old woman"), relatives later
            f = _FEMALE.search(head)
            m = _MALE.search(head)
            if (
                f
                and (not m or f.start() < m.start())
                and not re.search(r"\b(?:women|group)\b", head[: f.end()])
            ):
                p.sex = "female"
                p.evidence["sex"] = [s.sid]
            elif m and not re.search(r"\b(?:men|group)\b", head[: m.end()]):
                p.sex = "male"
                p.evidence["sex"] = [s.sid]
    if p.sex is None:
        she = sum(len(_SHE.findall(s.norm)) for s in p.sentences)
        he = sum(len(_HE.findall(s.norm)) for s in p.sentences)
        if she > he:
            p.sex = "female"
        elif he > she:
            p.sex = "male"
        if p.sex:
            rx = _SHE if p.sex == "female" else _HE
            sex_evidence: list[Evidence] = [s.sid for s in p.sentences if rx.search(s.norm)]
            p.evidence["sex"] = sex_evidence[:1]


_HISTORY_HEADING = re.compile(r"\b(?:past\s+)?(?:medical|surgical|obstetric)?\s*history\s*:|\bpmh\s*:")


def _extract_reproductive(p: Patient, vocab: Vocab) -> None:
    for s in p.sentences:
        n = s.norm
        weeks = re.search(
            r"\b(\d{1,2})\s*(?:weeks?|wks?)(?:'s)?\s*(?:of\s+)?(?:gestation|pregnant|pregnancy)\b", n
        ) or re.search(r"\bgestational age (?:of )?(\d{1,2})\s*weeks", n)
        if weeks and not re.search(r"\b(?:born|delivered) at\b", n):
            p.pregnant = True
            p.evidence.setdefault("pregnancy", []).append(s.sid)
            p.add_lab(
                LabValue(
                    "gestational_age", float(weeks.group(1)), float(weeks.group(1)), [s.sid], weeks.group(0)
                )
            )
        if re.search(r"\b(?:\w+|some|several|many|most|all) of the (?:women|patients|members|group)\b", n):
            continue  # a statement about some members of a group is not a fact about "the patient"
        for m in re.finditer(r"\bpregnan(?:t|cy)\b", n):
            tail = n[m.end() : m.end() + 90]
            if re.match(r"\s*tests?\b", tail):
                if re.search(r"\b(?:negative|neg)\b", tail):
                    p.pregnant = False
                    p.evidence.setdefault("pregnancy", []).append(s.sid)
                elif re.search(r"\bpositive\b", tail):
                    p.pregnant = True
                    p.evidence.setdefault("pregnancy", []).append(s.sid)
                continue
            a = assertion(n, m.start(), m.end(), vocab, age=p.age)
            if re.search(
                r"\b(?:ectopic|previous|prior|past|history of)\b", n[max(0, m.start() - 30) : m.start()]
            ):
                continue
            if a.days_ago is not None and a.days_ago > 300:
                continue
            if (a.historical or _HISTORY_HEADING.search(n[: m.start()])) and a.days_ago is None and not a.negated:
                continue  # "past medical history: ... hypertension with pregnancy" is a past pregnancy
            if a.negated or re.search(r"\bnon-?$", n[: m.start()]):
                p.pregnant = False
            elif a.affirmed:
                p.pregnant = True
            else:
                continue
            p.evidence.setdefault("pregnancy", []).append(s.sid)
        if re.search(r"\b(?:given birth|gave birth|delivered|postpartum|post-partum|puerperium)\b", n):
            a = assertion(n, 0, 0, vocab, age=p.age)
            if not a.negated:
                p.postpartum = True
                if p.pregnant is None:
                    p.pregnant = False
                p.evidence.setdefault("pregnancy", []).append(s.sid)
        for m in re.finditer(r"\b(?:breast-?feeding|lactating|nursing|lactation)\b", n):
            a = assertion(n, m.start(), m.end(), vocab)
            if a.negated:
                p.lactating = False
            elif a.affirmed:
                p.lactating = True
            p.evidence.setdefault("lactation", []).append(s.sid)
        meno = re.search(r"\b(?:post-?menopausal|menopause|menopausal)\b", n)
        if meno:
            a = assertion(n, meno.start(), meno.end(), vocab)
            if not re.search(r"\bpre-?menopausal\b", n) and not a.negated:
                p.menopausal = True
                p.evidence.setdefault("menopause", []).append(s.sid)
        if re.search(r"\bpre-?menopausal\b", n):
            p.menopausal = False
            p.evidence.setdefault("menopause", []).append(s.sid)
        if re.search(
            r"\b(?:no sexual partners?|not sexually active|never been sexually active|abstinent|virgin)\b", n
        ):
            p.sexually_active = False
            p.evidence.setdefault("sexual_activity", []).append(s.sid)
        elif re.search(r"\b(?:sexually active|sexual partners?)\b", n) and not re.search(r"\bno\b", n):
            p.sexually_active = True
            p.evidence.setdefault("sexual_activity", []).append(s.sid)
        for m in _CONTRACEPTION.finditer(n):
            a = assertion(n, m.start(), m.end(), vocab, age=p.age)
            if a.family or a.hypothetical or _told_as_past(n[: m.start()]) or re.search(
                    r"\b(?:counsel\w*|discuss\w*|advised|recommended|offered|options?|plans?|wants?)\b[^.;]{0,30}$",
                    n[: m.start()]):
                continue  # "counseled on contraception" is advice, not use
            p.contraception = not a.negated
            p.evidence.setdefault("contraception", []).append(s.sid)
            break


def _extract_status_cues(p: Patient, vocab: Vocab) -> None:
    consents = cue_regex(tuple(vocab.cues["patient_consents"]))
    complies = cue_regex(tuple(vocab.cues["patient_complies"]))
    refuses = cue_regex(tuple(vocab.cues["patient_refuses"]))
    healthy = cue_regex(tuple(vocab.cues["healthy"]))
    nomeds = cue_regex(tuple(vocab.cues["no_medications"]))
    for s in p.sentences:
        n = s.norm
        if refuses.search(n) and re.search(r"\b(?:consent|participat|enrol|study|trial)", n):
            p.consents = False
            p.evidence.setdefault("consent", []).append(s.sid)
        elif consents.search(n):
            p.consents = True
            p.evidence.setdefault("consent", []).append(s.sid)
        if complies.search(n):
            p.complies = True
            p.evidence.setdefault("compliance", []).append(s.sid)
        if healthy.search(n):
            p.healthy = True
            p.evidence.setdefault("healthy", []).append(s.sid)
        if nomeds.search(n):
            p.no_medications = True
            p.medication_sentences.append(s.sid)
            p.evidence.setdefault("medications", []).append(s.sid)


def _extract_conditions(p: Patient, vocab: Vocab) -> None:
    for s in p.sentences:
        for start, end, concepts in find_concepts(s, vocab):
            concepts = concepts - {"pregnancy"}  # reproductive status has its own extractor
            if not concepts:
                continue
            a = assertion(s.norm, start, end, vocab, age=p.age)
            p.conditions.append(
                ConditionFact(
                    name=s.original(start, end),
                    concepts=concepts,
                    status=_status(a),
                    days_ago=a.days_ago,
                    historical=a.historical,
                    evidence=[s.sid],
                )
            )


def _status(a: Assertion) -> str:
    if a.family:
        return "family"
    if a.negated:
        return "absent"
    if a.hypothetical:
        return "hypothetical"
    if a.uncertain:
        return "possible"
    return "present"


_MED_CONTEXT = re.compile(
    r"\b(?:medications?|meds|takes|taking|take|on|receives|receiving|prescribed|treated with|therapy|uses|using|"
    r"supplementation|started|given|control with)\b"
)


#: A treatment course told in the past tense ("therapy included ... 11 cycles of temozolomide", "she received")
_MED_PAST = re.compile(
    r"\b(?:therapy|treatment|regimen)\s+included|\b(?:was|were|had been)\s+(?:\w+\s+)?(?:treated|given|started)\b|"
    r"\b(?:received|completed|underwent|finished|initially treated)\b|\bs/p\b|\bstatus post\b"
)
_MED_NOW = re.compile(
    r"\b(?:currently|now|presently|still|continues|ongoing|is (?:on|taking|receiving|being treated)|"
    r"are (?:on|taking|receiving))\b"
)
#: Treatments that are planned, not taken ("prior to chemotherapy", "candidate for", "will start")
_MED_FUTURE = re.compile(
    r"\b(?:prior to|before|ahead of|candidate for|scheduled for|planned|plan(?:s|ned)? to|will (?:\w+ )?"
    r"(?:start|receive|begin|undergo|be (?:started|given|treated))|to (?:start|begin|receive)|recommended|"
    r"consider(?:ed|ing)?(?: for)?)\s+(?:\w+\s+){0,2}$"
)


def _told_as_past(before: str) -> bool:
    """The drug ends a past-tense treatment phrase ("received cisplatin, etoposide") with no present-tense
    verb or "currently" in between ("received a diagnosis of X and takes metformin" stays current)."""
    cues = list(_MED_PAST.finditer(before))
    if not cues:
        return False
    between = before[cues[-1].end() :]
    return len(between) <= 100 and not _MED_NOW.search(before) and not _MED_PRESENT_VERB.search(between)


_MED_PRESENT_VERB = re.compile(r"\b(?:takes|taking|uses|using|is|are|remains|continues)\b")


#: Contraception in use, as notes say it: a method ("uses an IUD", "on oral contraceptive pills",
#: "Nexplanon implant") or the word itself ("uses contraception", "on birth control").
_CONTRACEPTION = re.compile(
    r"\b(?:iud|intrauterine\s+(?:device|system|contracepti\w*)|(?:oral|hormonal|combined)\s+contracepti\w*|"
    r"contracepti(?:ve|on)s?|birth\s+control(?:\s+pills?)?|contraceptive\s+(?:implant|injection|patch|ring)|"
    r"depo-?\s?provera|nexplanon|mirena|condoms?)\b"
)
#: "stable dose(s) of", "stable on", "unchanged dose of" just before a drug; "at a stable dose",
#: "(dose) stable", "unchanged" just after it.
_STABLE_BEFORE = re.compile(
    r"\b(?:stable|unchanged|constant)\s+(?:(?:daily\s+)?(?:dose|dosage|dosing|regimen)s?\s+of\s+|on\s+)(?:\w+\s+){0,2}$"
)
_STABLE_AFTER = re.compile(
    r"^[^.;]{0,40}?\b(?:at\s+(?:a\s+)?(?:stable|unchanged|constant)\s+(?:dose|dosage)|(?:dose|dosage)\s+"
    r"(?:has\s+been\s+|was\s+|is\s+)?(?:stable|unchanged)|stable\s+(?:dose|dosage))\b"
)
_STABLE_FOR = re.compile(
    r"^[^.;]{0,60}?\b(?:for|over|during|since)\s+(?:the\s+)?(?:past\s+|last\s+|previous\s+)?"
    r"(?P<n>\d+(?:\.\d+)?|one|two|three|four|five|six|eight|ten|twelve)\s*(?P<u>days?|weeks?|months?|years?)\b"
)


def _stable_dose(norm: str, start: int, end: int) -> tuple[bool, float | None]:
    """Whether the note says the drug at ``norm[start:end]`` is at a stable dose, and for how long (days).

    Why from the note: "on a stable dose of mycophenolate for 6 months" is the fact an "unstable dose"
    exclusion turns on, and a patient who wrote it should not be asked again or told it is unknown.
    """
    before, after = norm[max(0, start - 60):start], norm[end:]
    if not (_STABLE_BEFORE.search(before) or _STABLE_AFTER.search(after)):
        return False, None
    m = _STABLE_FOR.search(after)
    value = parse_number(m.group("n")) if m else None
    return True, None if m is None or value is None else value * unit_days(m.group("u"))


def _extract_medications(p: Patient, vocab: Vocab) -> None:
    names = vocab.drug_terms
    for s in p.sentences:
        found = False
        for start, end, term in find_terms(s.norm, names):
            classes = set(vocab.drug_members.get(term, set()))
            if term in vocab.drug_class_names:
                classes.add(vocab.drug_class_names[term])
            if not classes:
                continue
            a = assertion(s.norm, start, end, vocab, age=p.age)
            if a.family or a.hypothetical:
                continue
            before = s.norm[:start]
            if _MED_FUTURE.search(before[-40:]):
                continue  # "agrees to resection prior to chemotherapy": a plan, not a treatment taken
            status = "absent" if a.negated else "current"
            if re.search(
                r"\b(?:previous|previously|prior|formerly|stopped|discontinued|was on|were on|had been on)\b",
                before,
            ) or _told_as_past(before):
                status = "past" if status != "absent" else status
            stable, stable_days = _stable_dose(s.norm, start, end) if status == "current" else (False, None)
            p.medications.append(
                Medication(s.original(start, end), classes, status, a.days_ago, stable_days, [s.sid], stable)
            )
            found = True
        if found or (_MED_CONTEXT.search(s.norm) and re.search(r"\bmedications?\b", s.norm)):
            if s.sid not in p.medication_sentences:
                p.medication_sentences.append(s.sid)


_NUMBER = r"(\d{1,3}(?:,\d{3})+|\d+(?:[.,]\d+)?)"


def _unit_regex(vocab: Vocab) -> str:
    aliases = sorted(vocab.unit_aliases, key=len, reverse=True)
    return "|".join(re.escape(a).replace(r"\ ", r"\s*") for a in aliases if a)


def _note_lab_regex(vocab: Vocab) -> tuple[tuple[str, ...], re.Pattern[str]]:
    cached = vocab.cache.get("note_lab_regex")
    if cached is not None:
        return cached
    names = tuple(n for n in vocab.analyte_names if len(n) > 1 or n == "t")
    units = _unit_regex(vocab)
    filler = (
        r"(?:\s+|[:=(]|\b(?:of|is|was|were|are|at|level|levels|count|concentration|value|elevated|increased|decreased|"
        r"reduced|raised|low|high|found|performed|and|measured|around|about|approximately|repeated|repeat|the|a|"
        r"initial|initially|now|noted|to be)\b)*"
    )
    value_re = re.compile(
        rf"^(?:\s*\([^)]{{0,30}}\))?{filler}(?<![a-z0-9]){_NUMBER}(?:\s*(?:-|to)\s*{_NUMBER})?\s*(?:\(?\s*({units})(?![a-z]))?"
    )
    vocab.cache["note_lab_regex"] = (names, value_re)
    return names, value_re


def _extract_labs(p: Patient, vocab: Vocab) -> None:
    names, value_re = _note_lab_regex(vocab)
    for s in p.sentences:
        n = s.norm
        bp = re.finditer(r"\b(?:blood pressure|bp)\b[^0-9;]{0,20}?(\d{2,3})\s*/\s*(\d{2,3})", n)
        taken: list[tuple[int, int]] = []
        for m in bp:
            p.add_lab(LabValue("sbp", float(m.group(1)), float(m.group(1)), [s.sid], m.group(0)))
            p.add_lab(LabValue("dbp", float(m.group(2)), float(m.group(2)), [s.sid], m.group(0)))
            taken.append((m.start(), m.end()))
        for start, end, term in find_terms(n, names):
            if any(a <= start < b for a, b in taken):
                continue
            analyte = vocab.analyte_names.get(term)
            if analyte is None or analyte in ("sbp", "dbp"):
                continue
            original = s.original(start, end)
            if (
                len(term) <= 2
                and not (original.isupper() and re.match(r"^\s*[:=]", n[end:]))
                and not (original != original.lower() and len(term) == 2)
            ):
                continue
            if analyte == "pain_score" and not re.search(r"/\s*10|out of 10|pain score", n):
                continue
            tail = n[end : end + 80]
            for nstart, _nend, nterm in find_terms(tail, names):
                if vocab.analyte_names.get(nterm) != analyte:
                    tail = tail[:nstart]
                    break
            vm = value_re.match(tail)
            if not vm:
                continue
            gap = tail[: vm.start(1)]
            if re.search(r"\b(?:lost|gained|decrease|increase|of the|in diameter)\b", gap):
                continue
            low = parse_number(vm.group(1))
            high = parse_number(vm.group(2)) if vm.group(2) else low
            unit = vm.group(3)
            if low is None or high is None:
                continue
            conv_low = convert_unit(low, unit, analyte, vocab)
            conv_high = convert_unit(high, unit, analyte, vocab)
            if conv_low is None or conv_high is None:
                continue
            p.add_lab(LabValue(analyte, conv_low, conv_high, [s.sid], s.original(start, end + vm.end())))
            taken.append((start, end + vm.end()))
        # a number starts only after a non-digit: otherwise a long run of digits is tried from every
        # position in it (quadratic; a 20,000-digit note took minutes)
        for m in re.finditer(rf"(?<![\d.,]){_NUMBER}\s*%\s*(eosinophils|neutrophils|lymphocytes)", n):
            key = {"eosinophils": "eosinophils_pct"}.get(m.group(2))
            if key:
                v = parse_number(m.group(1))
                if v is not None:
                    p.add_lab(LabValue(key, v, v, [s.sid], m.group(0)))
        fever = re.search(rf"\bfevers?\b[^.;]{{0,30}}?from\s+{_NUMBER}\s+to\s+{_NUMBER}", n)
        if fever:
            lo, hi = parse_number(fever.group(1)), parse_number(fever.group(2))
            if lo is not None and hi is not None:
                p.add_lab(LabValue("temperature", lo, hi, [s.sid], fever.group(0)))
        _qualitative(p, s, vocab)
        _normal_panels(p, s, vocab)


def _qualitative(p: Patient, s: Sentence, vocab: Vocab) -> None:
    for q in vocab.qualitative.values():
        for start, end, _term in find_terms(s.norm, tuple(t.lower() for t in q["terms"])):
            a = assertion(s.norm, start, end, vocab, age=p.age)
            if not a.affirmed:
                continue
            low, high = q["range"]
            p.add_lab(LabValue(q["analyte"], low, high, [s.sid], s.original(start, end), qualitative=True))


_NORMAL_AFTER = re.compile(
    r"^[^.;]{0,60}?\b(?:is|are|was|were)\s+(?:(?:all|otherwise|also|entirely|completely|essentially)\s+)*"
    r"(?:normal|within normal limits|unremarkable|wnl)\b"
)


def _normal_panels(p: Patient, s: Sentence, vocab: Vocab) -> None:
    n = s.norm
    targets: dict[str, tuple[str, ...]] = {f"panel:{k}": tuple(v) for k, v in vocab.panels.items()}
    for key, an in vocab.analytes.items():
        targets[key] = tuple(x for x in an.names if len(x) > 2)
    for key, names in targets.items():
        for start, end, _t in find_terms(n, names):
            before = n[max(0, start - 12) : start]
            if re.search(r"\bnormal\s+$", before) or _NORMAL_AFTER.match(n[end:]):
                p.normal_panels.setdefault(key, []).append(s.sid)
                break


def _from_note(p: Patient, note: str, vocab: Vocab) -> None:
    p.note = note
    p.sentences = split_sentences(note, vocab)
    _extract_age_sex(p, vocab)
    _extract_reproductive(p, vocab)
    _extract_status_cues(p, vocab)
    _extract_conditions(p, vocab)
    _extract_medications(p, vocab)
    _extract_labs(p, vocab)


# --------------------------------------------------------------------------------------------------
# structured facts


def _days_between(value: Any, ref: date) -> float | None:
    if value is None:
        return None
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    try:
        return float((ref - date.fromisoformat(str(value)[:10])).days)
    except ValueError:
        return None


def _parse_age_value(value: Any) -> float | None:
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    if isinstance(value, str):
        m = re.match(r"^\s*(\d+(?:\.\d+)?)\s*(years?|months?|weeks?|days?)?", value.lower())
        if m:
            unit = (m.group(2) or "years")[:3]
            factor = {"yea": 1.0, "mon": 1 / 12, "wee": 1 / 52, "day": 1 / 365}[unit]
            return float(m.group(1)) * factor
    return None


def _from_facts(p: Patient, facts: dict[str, Any], vocab: Vocab) -> None:
    ref = date.today()
    if facts.get("reference_date"):
        try:
            ref = date.fromisoformat(str(facts["reference_date"])[:10])
        except ValueError:
            pass
    age = _parse_age_value(facts.get("age"))
    if age is None and facts.get("birth_date"):
        days = _days_between(facts["birth_date"], ref)
        age = days / 365.25 if days is not None else None
    if age is not None:
        p.age = age
        p.evidence["age"] = ["facts.age"]
    sex = str(facts.get("sex") or "").strip().lower()
    if sex in ("f", "female", "woman", "w"):
        p.sex = "female"
        p.evidence["sex"] = ["facts.sex"]
    elif sex in ("m", "male", "man"):
        p.sex = "male"
        p.evidence["sex"] = ["facts.sex"]
    for key, attr in (
        ("pregnant", "pregnant"),
        ("lactating", "lactating"),
        ("menopausal", "menopausal"),
        ("consent", "consents"),
        ("consents", "consents"),
        ("complies", "complies"),
        ("sexually_active", "sexually_active"),
        ("contraception", "contraception"),
    ):
        if isinstance(facts.get(key), bool):
            setattr(p, attr, facts[key])
            p.evidence.setdefault(attr if attr != "consents" else "consent", []).append(f"facts.{key}")
    if isinstance(facts.get("location"), str):
        p.location = facts["location"]
    for i, c in enumerate(facts.get("conditions") or []):
        item = {"name": c} if isinstance(c, str) else dict(c) if isinstance(c, dict) else None
        if not item or not isinstance(item.get("name"), str):
            continue
        name = item["name"]
        status = str(item.get("status") or "present").lower()
        if status not in ("present", "absent", "possible", "family", "hypothetical"):
            status = "present"
        norm = name.lower()
        concepts = set(vocab.synonym_index.get(norm, set()))
        for syn, ids in vocab.synonym_index.items():
            if len(syn) > 3 and re.search(rf"\b{re.escape(syn)}\b", norm):
                concepts |= ids
        days = _days_between(item.get("date") or item.get("onset"), ref)
        if days is None and isinstance(item.get("days_ago"), (int, float)):
            days = float(item["days_ago"])
        p.conditions.append(
            ConditionFact(
                name, concepts, status, days, days is not None and days > 30, [f"facts.conditions[{i}]"]
            )
        )
    meds = facts.get("medications")
    if isinstance(meds, list):
        if not meds:
            p.no_medications = True
        for i, m in enumerate(meds):
            item = {"name": m} if isinstance(m, str) else dict(m) if isinstance(m, dict) else None
            if not item or not isinstance(item.get("name"), str):
                continue
            name = item["name"].lower()
            classes = set(vocab.drug_members.get(name, set()))
            if name in vocab.drug_class_names:
                classes.add(vocab.drug_class_names[name])
            end_days = _days_between(item.get("end"), ref)
            start_days = _days_between(item.get("start"), ref)
            status = str(
                item.get("status") or ("past" if end_days is not None and end_days > 0 else "current")
            )
            p.medications.append(
                Medication(
                    item["name"],
                    classes,
                    status,
                    end_days if status == "past" else 0.0,
                    start_days,
                    [f"facts.medications[{i}]"],
                )
            )
    for i, lab in enumerate(facts.get("labs") or []):
        if not isinstance(lab, dict) or not isinstance(lab.get("name"), str):
            continue
        analyte = vocab.analyte_names.get(lab["name"].lower(), lab["name"].lower())
        if analyte not in vocab.analytes:
            continue
        value = lab.get("value")
        if not isinstance(value, (int, float)) or isinstance(value, bool):
            continue
        conv = convert_unit(float(value), lab.get("unit"), analyte, vocab)
        if conv is None:
            continue
        p.add_lab(
            LabValue(
                analyte,
                conv,
                conv,
                [f"facts.labs[{i}]"],
                f"{lab['name']} {value} {lab.get('unit') or ''}".strip(),
                days_ago=_days_between(lab.get("date"), ref),
            )
        )


def extract_patient(note: str | None = None, facts: dict[str, Any] | None = None) -> Patient:
    """Build a :class:`Patient` from a note and/or structured facts; structured facts win on conflicts.

    ``facts`` keys (all optional): age ("58" or "58 years"), birth_date, sex, pregnant, lactating,
    menopausal, consent, location, reference_date (ISO date used for "days ago"), conditions (names or
    {name, status, date}), medications (names or {name, start, end, status}), labs ({name, value, unit, date}).
    """
    vocab = load_vocab()
    p = Patient()
    if note and note.strip():
        _from_note(p, note, vocab)
    if facts:
        _from_facts(p, facts, vocab)
    return p
