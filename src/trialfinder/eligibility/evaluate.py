"""Verdicts: patient × criterion, patient × study, and the pre-screening questionnaire.

Safety rule, applied everywhere here: a patient is only told "excluded" / "not included" when the
deciding constraints were parsed and checked with high confidence.  Anything shakier becomes "not
enough information", because being wrongly told "not eligible" is the worst error a patient can get;
a wrong "maybe" only costs a conversation with the study team.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any, Literal

from trialfinder.eligibility.assess import CLOSED_WORLD_REASONS, AtomResult, assess
from trialfinder.eligibility.constraints import Constraint, extract_constraints
from trialfinder.eligibility.patient import Patient, extract_patient
from trialfinder.eligibility.vocab import load_vocab
from trialfinder.model.criteria import CriterionItem, split_criteria

__all__ = [
    "CriterionVerdict",
    "LABELS",
    "Question",
    "StudyVerdict",
    "evaluate_answers",
    "evaluate_criterion",
    "evaluate_study",
    "prescreen_questions",
]

LABELS = (
    "included",
    "not included",
    "excluded",
    "not excluded",
    "not enough information",
    "not applicable",
)
DECISIVE_CONFIDENCE = 0.7
INCLUDE_CONFIDENCE = 0.6  # weakest matches still count as met; unmet needs DECISIVE_CONFIDENCE
Evidence = int | str


@dataclass
class CriterionVerdict:
    """The verdict for one criterion item; ``evidence`` holds note sentence ids and/or fact keys."""

    label: str
    evidence: list[Evidence]
    explanation: str
    constraints: list[Constraint] = field(default_factory=list)
    text: str = ""
    kind: str = ""
    confidence: float = 0.0
    atoms: list[AtomResult] = field(default_factory=list, repr=False)
    assumed: bool = False  # the verdict rests only on things the record does not mention

    def to_dict(self) -> dict[str, Any]:
        """Plain-JSON form (constraints included, per-atom details omitted)."""
        return {
            "label": self.label,
            "kind": self.kind,
            "text": self.text,
            "evidence": list(self.evidence),
            "explanation": self.explanation,
            "confidence": self.confidence,
            "constraints": [c.to_dict() for c in self.constraints],
        }


@dataclass
class StudyVerdict:
    """Patient × study: overall verdict, a 0..1 score and the per-criterion verdicts."""

    verdict: Literal["eligible", "ineligible", "possibly eligible"]
    score: float
    criteria: list[CriterionVerdict]
    summary: str = ""

    def to_dict(self) -> dict[str, Any]:
        """Plain-JSON form."""
        return {
            "verdict": self.verdict,
            "score": self.score,
            "summary": self.summary,
            "criteria": [c.to_dict() for c in self.criteria],
        }


@dataclass
class Question:
    """One question of a "check my eligibility" form, tied to the constraints it answers."""

    id: str
    text: str
    kind: Literal["number", "yes-no", "choice"]
    unit: str | None = None
    choices: list[str] = field(default_factory=list)
    constraint_refs: list[str] = field(default_factory=list)
    targets: list[str] = field(default_factory=list)  # condition/drug names a "yes" records as facts

    def to_dict(self) -> dict[str, Any]:
        """Plain-JSON form."""
        return {
            "id": self.id,
            "text": self.text,
            "kind": self.kind,
            "unit": self.unit,
            "choices": list(self.choices),
            "constraint_refs": list(self.constraint_refs),
            "targets": list(self.targets),
        }


# --------------------------------------------------------------------------------------------------
# three-valued logic with "not applicable"


def _or(values: list[AtomResult]) -> tuple[str, list[AtomResult]]:
    live = [a for a in values if a.value != "NA"]
    if not live:
        return "NA", values
    trues = [a for a in live if a.value == "T"]
    if trues:
        return "T", [max(trues, key=lambda a: a.confidence)]
    if all(a.value == "F" for a in live):
        return "F", live
    return "U", [a for a in live if a.value == "U"]


def _and(groups: list[tuple[str, list[AtomResult]]]) -> tuple[str, list[AtomResult]]:
    live = [g for g in groups if g[0] != "NA"]
    if not live:
        return "NA", [a for g in groups for a in g[1]]
    falses = [g for g in live if g[0] == "F"]
    if falses:
        return "F", [a for g in falses for a in g[1]]
    if all(g[0] == "T" for g in live):
        return "T", [a for g in live for a in g[1]]
    return "U", [a for g in live if g[0] == "U" for a in g[1]]


def _evidence(atoms: list[AtomResult]) -> list[Evidence]:
    out: list[Evidence] = []
    for a in atoms:
        for e in a.evidence:
            if e not in out:
                out.append(e)
    ints = sorted(e for e in out if isinstance(e, int))
    return [*ints, *[e for e in out if not isinstance(e, int)]]


def _closed_world(atoms: list[AtomResult]) -> list[AtomResult]:
    """For exclusion items: an unmentioned condition counts as absent (this can only keep a patient in)."""
    out = []
    for a in atoms:
        if a.value == "U" and a.reason in CLOSED_WORLD_REASONS:
            value = "T" if a.constraint.negated else "F"
            if value == "T":
                out.append(a)  # never let "absence assumed" trigger an exclusion
                continue
            out.append(AtomResult(a.constraint, value, 0.5, "assumed_absent", a.explanation, a.evidence))
        else:
            out.append(a)
    return out


_REPRODUCTIVE = frozenset(
    {"sex", "pregnancy", "pregnancy_plan", "lactation", "contraception", "childbearing", "menopause"}
)


def _combine(
    kind: str, constraints: list[Constraint], atoms: list[AtomResult]
) -> tuple[str, list[AtomResult], float]:
    if kind == "exclusion":
        atoms = _closed_world(atoms)
    conditional = [a for a in atoms if a.constraint.conditional]
    failed = [
        a
        for a in conditional
        if (a.value == "F" and a.confidence >= 0.6)
        or a.value == "NA"
        or a.reason in ("not_mentioned", "assumed_absent")
    ]
    rest = [a for a in atoms if not a.constraint.conditional]
    if failed:
        if all(a.constraint.kind in _REPRODUCTIVE for a in failed):
            # "Fertile patients must use contraception" inside a longer item only voids the
            # reproductive part; the rest of the item still applies
            rest = [a for a in rest if a.constraint.kind not in _REPRODUCTIVE]
            if rest and any(a.constraint.kind not in ("consent", "compliance") for a in rest):
                failed = []
        if failed:
            return "NA", [a for a in conditional if a.value != "T"], 0.8
    groups: dict[int, list[AtomResult]] = {}
    for a in rest:
        groups.setdefault(a.constraint.group, []).append(a)
    value, decisive = _and([_or(g) for g in groups.values()])
    conf = min((a.confidence for a in decisive), default=0.5)
    return value, decisive, conf


def _label(kind: str, value: str, conf: float, decisive: list[AtomResult]) -> str:
    if value == "NA":
        return "not applicable"
    if kind == "inclusion":
        if value == "T":
            return "included" if conf >= INCLUDE_CONFIDENCE else "not enough information"
        if value == "F":
            return "not included" if conf >= DECISIVE_CONFIDENCE else "not enough information"
        return "not enough information"
    if value == "T":
        return "excluded" if conf >= DECISIVE_CONFIDENCE else "not enough information"
    if value == "F":
        return "not excluded"
    return "not enough information"


def _explain(label: str, decisive: list[AtomResult], kind: str) -> str:
    parts = [a.explanation for a in decisive if a.explanation][:3]
    if not parts:
        if kind == "exclusion" and label == "not excluded":
            return "Not excluded: nothing in the patient's record matches this exclusion."
        return f"{label.capitalize()}: no checkable constraint found in this criterion."
    return f"{label.capitalize()}: " + "; ".join(parts) + "."


_HEADING = re.compile(
    r"^\s*(?:other|hepatic|renal|cardiovascular|cardiac|pulmonary|hematopoietic|hematologic|neurologic|"
    r"chemotherapy|radiotherapy|surgery|endocrine\s+therapy|"
    r"biologic\s+therapy|prior\s+treatment|concurrent\s+medication|prior\s+medication|co-existing\s+condition|"
    r"patient\s+characteristics|disease\s+characteristics|prior\s+concurrent\s+therapy)\s*:\s*(?=\S)",
    re.I,
)
_NEGATIVE_LEAD = re.compile(
    r"^\W*(?:\(?[0-9a-z]{1,3}[.)]\s+)?(?:no|not|without|absence\s+of|free\s+of|negative\s+for|never)\b\s*",
    re.I,
)
_EXCLUSION_STATEMENT = re.compile(
    r"\b(?:are|is|will\s+be|shall\s+be|must\s+be)\s+(?:excluded|not\s+eligible|ineligible|not\s+included|not\s+allowed)\b|"
    r"\b(?:protocol|study|trial)\s+(?:excludes|will\s+exclude)\b",
    re.I,
)


def evaluate_criterion(
    patient: Patient, criterion_text: str, kind: Literal["inclusion", "exclusion"]
) -> CriterionVerdict:
    """Judge one criterion item for one patient (see :data:`LABELS` for the possible labels).

    Inclusion items that are really exclusions ("No diabetes", "Children are excluded") are judged as
    exclusions and the answer is translated back; absence assumed only because the note is silent then
    gives "not enough information", never "included".
    """
    if kind not in ("inclusion", "exclusion"):
        raise ValueError(f"kind must be 'inclusion' or 'exclusion', not {kind!r}")
    original = criterion_text or ""
    text = _HEADING.sub("", original, count=1)
    if kind == "inclusion":
        lead = _NEGATIVE_LEAD.match(text)
        if lead or _EXCLUSION_STATEMENT.search(text):
            inner = text[lead.end() :] if lead else text
            if inner.strip():
                return _as_exclusion(patient, original, inner)
    v = _evaluate(patient, text, kind)
    v.text = original
    return v


def _as_exclusion(patient: Patient, text: str, inner: str) -> CriterionVerdict:
    v = _evaluate(patient, inner, "exclusion")
    mapped = {
        "excluded": "not included",
        "not excluded": "not enough information" if v.assumed else "included",
        "not applicable": "not applicable",
    }.get(v.label, "not enough information")
    expl = v.explanation.split(": ", 1)[-1] if ": " in v.explanation else v.explanation
    return CriterionVerdict(
        mapped,
        v.evidence if mapped != "not enough information" or not v.assumed else [],
        f"{mapped.capitalize()}: {expl}",
        v.constraints,
        text,
        "inclusion",
        v.confidence,
        v.atoms,
        v.assumed,
    )


def _evaluate(
    patient: Patient, criterion_text: str, kind: Literal["inclusion", "exclusion"]
) -> CriterionVerdict:
    vocab = load_vocab()
    constraints = extract_constraints(criterion_text or "", kind)
    atoms = [assess(c, patient, vocab) for c in constraints]
    if not constraints:
        label = "not enough information" if kind == "inclusion" else "not excluded"
        expl = (
            "Not enough information: the criterion has no checkable constraint."
            if kind == "inclusion"
            else "Not excluded: nothing in the patient's record matches this exclusion."
        )
        return CriterionVerdict(label, [], expl, [], criterion_text, kind, 0.3, [], True)
    value, decisive, conf = _combine(kind, constraints, atoms)
    label = _label(kind, value, conf, decisive)
    assumed = bool(decisive) and all(a.reason in ("assumed_absent", "inferred") for a in decisive)
    return CriterionVerdict(
        label,
        _evidence(decisive),
        _explain(label, decisive, kind),
        constraints,
        criterion_text,
        kind,
        round(conf, 3),
        atoms,
        assumed or not decisive,
    )


# --------------------------------------------------------------------------------------------------
# study level

_ONE_OF = re.compile(
    r"\b(?:one of the following|any of the following|at least one of|either|one or more of)\b", re.I
)


_ALLOWED_HEAD = re.compile(
    r"^\W*(?:allowed|permitted|recommended|acceptable|may\s+be\s+(?:used|given|continued))\b", re.I
)
_EXCLUDED_HEAD = re.compile(r"^\W*(?:excluded|not\s+allowed|prohibited|not\s+permitted)\b", re.I)
_REQUIRED_HEAD = re.compile(r"^\W*(?:required|must\s+have)\b", re.I)


def _items(items: list[CriterionItem], kind: str) -> list[tuple[str, list[str], str]]:
    """Flatten an item tree into (text, alternatives, kind); alternatives are OR-ed children ("one of").

    Legacy group headings steer their children: "Allowed:" lists are permissions, not requirements, and
    are skipped; "Excluded within 4 weeks of study entry:" turns its children into exclusions and lends
    them its time window.
    """
    out: list[tuple[str, list[str], str]] = []
    for it in items:
        head = it.text.strip()
        if not it.children:
            if head.endswith(":") and len(head) < 60:
                continue  # a heading without items ("Cough:") is not a criterion
            out.append((it.text, [], kind))
            continue
        if _ALLOWED_HEAD.match(head):
            continue
        sub_kind = (
            "exclusion" if _EXCLUDED_HEAD.match(head) else "inclusion" if _REQUIRED_HEAD.match(head) else kind
        )
        kids = [c.full_text() for c in it.children]
        if _ONE_OF.search(it.text) or any(re.search(r"\bOR\s*$", c.text) for c in it.children):
            out.append((it.text, kids, sub_kind))
            continue
        context = (
            head if len(head) < 80 and head.endswith(":") and re.search(r"\bwithin\b", head, re.I) else ""
        )
        if re.match(
            r"^\W*(?:age|sex|gender|menopausal\s+status|performance\s+status|life\s+expectancy)\s*:$",
            head,
            re.I,
        ):
            context = head  # "Age:" + "18 and over": the heading says what the number is
        if context and _EXCLUDED_HEAD.match(context):
            context = re.sub(r"^\W*excluded\s+", "", context, flags=re.I)
        if not head.endswith(":") and len(head) > 3:
            out.append((head, [], sub_kind))
        for c in it.children:
            for t, alts, k in _items([c], sub_kind):
                out.append((f"{context} {t}".strip(), alts, k))
    return out


def _structured(patient: Patient, module: dict[str, Any]) -> list[CriterionVerdict]:
    """Verdicts on the record's structured age range and sex, as inclusion items of their own."""
    from trialfinder.model.study import parse_age

    constraints: list[Constraint] = []
    lo, hi = parse_age(module.get("minimumAge")), parse_age(module.get("maximumAge"))
    if lo is not None or hi is not None:
        text = f"Age {module.get('minimumAge') or 'any'} to {module.get('maximumAge') or 'any'}"
        constraints.append(Constraint("age", text, (0, len(text)), 0.99, low=lo, high=hi, unit="years"))
    sex = str(module.get("sex") or "ALL").upper()
    if sex in ("FEMALE", "MALE"):
        text = f"Sex: {sex.lower()}"
        constraints.append(Constraint("sex", text, (0, len(text)), 0.99, value=sex.lower()))
    out: list[CriterionVerdict] = []
    for c in constraints:
        a = assess(c, patient)
        label = {"T": "included", "F": "not included"}.get(a.value, "not enough information")
        out.append(CriterionVerdict(label, a.evidence, f"{label.capitalize()}: {a.explanation}.", [c], c.text,
                                    "inclusion", a.confidence, [a]))
    return out


def _alternatives(
    patient: Patient, text: str, alts: list[str], kind: Literal["inclusion", "exclusion"]
) -> CriterionVerdict:
    verdicts = [evaluate_criterion(patient, a, kind) for a in alts]
    labels = [v.label for v in verdicts if v.label != "not applicable"]
    good = "included" if kind == "inclusion" else "excluded"
    bad = "not included" if kind == "inclusion" else "not excluded"
    if not labels:
        label = "not applicable"
    elif good in labels:
        label = good
    elif all(lbl == bad for lbl in labels):
        label = bad
    else:
        label = "not enough information"
    chosen = [v for v in verdicts if v.label == label] or verdicts
    ev: list[Evidence] = []
    for v in chosen:
        ev.extend(e for e in v.evidence if e not in ev)
    constraints = [c for v in verdicts for c in v.constraints]
    full = " ".join([text, *alts])
    return CriterionVerdict(
        label,
        ev,
        f"{label.capitalize()}: {len(alts)} alternatives checked.",
        constraints,
        full,
        kind,
        min((v.confidence for v in chosen), default=0.5),
        [a for v in chosen for a in v.atoms],
    )


_POINTS = {
    "included": 1.0,
    "not excluded": 1.0,
    "not applicable": None,
    "not enough information": 0.5,
    "not included": 0.0,
    "excluded": 0.0,
}


def evaluate_study(patient: Patient, record: dict[str, Any]) -> StudyVerdict:
    """Judge a patient against an API v2 study record (structured age/sex plus the criteria text).

    Score = mean over applicable criteria of 1 (met), 0.5 (unknown) or 0 (failed).
    """
    module = ((record or {}).get("protocolSection") or {}).get("eligibilityModule") or {}
    verdicts = _structured(patient, module)
    split = split_criteria(module.get("eligibilityCriteria"))
    for kind, items in (("inclusion", split.inclusion), ("exclusion", split.exclusion)):
        for text, alts, item_kind in _items(items, kind):
            if alts:
                verdicts.append(_alternatives(patient, text, alts, item_kind))  # type: ignore[arg-type]
            else:
                verdicts.append(evaluate_criterion(patient, text, item_kind))  # type: ignore[arg-type]
    points = [_POINTS[v.label] for v in verdicts if _POINTS.get(v.label) is not None]
    score = round(sum(p for p in points if p is not None) / len(points), 4) if points else 0.5
    failed = [v for v in verdicts if v.label in ("not included", "excluded")]
    unknown = [v for v in verdicts if v.label == "not enough information"]
    if failed:
        verdict: Literal["eligible", "ineligible", "possibly eligible"] = "ineligible"
        summary = f"{len(failed)} criteria not met, e.g. {failed[0].text[:80]!r}"
    elif unknown:
        verdict = "possibly eligible"
        summary = f"{len(unknown)} criteria need more information"
    else:
        verdict = "eligible"
        summary = "all checkable criteria met"
    return StudyVerdict(verdict, score, verdicts, summary)


# --------------------------------------------------------------------------------------------------
# pre-screening questionnaire


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")[:60]


def _record_constraints(record: dict[str, Any]) -> list[tuple[str, Constraint]]:
    module = ((record or {}).get("protocolSection") or {}).get("eligibilityModule") or {}
    split = split_criteria(module.get("eligibilityCriteria"))
    out: list[tuple[str, Constraint]] = []
    for kind, items in (("inclusion", split.inclusion), ("exclusion", split.exclusion)):
        for i, (text, alts, item_kind) in enumerate(_items(items, kind)):
            for j, t in enumerate([text, *alts]):
                for k, c in enumerate(extract_constraints(t, item_kind)):  # type: ignore[arg-type]
                    out.append((f"{kind}[{i}]" + (f".alt[{j - 1}]" if j else "") + f"/{k}", c))
    return out


def prescreen_questions(record: dict[str, Any]) -> list[Question]:
    """Questions for a "check my eligibility" form, generated from the study's constraints."""
    vocab = load_vocab()
    module = ((record or {}).get("protocolSection") or {}).get("eligibilityModule") or {}
    qs: dict[str, Question] = {}

    def add(
        qid: str,
        text: str,
        kind: Literal["number", "yes-no", "choice"],
        ref: str,
        unit: str | None = None,
        choices: list[str] | None = None,
        targets: list[str] | None = None,
    ) -> None:
        q = qs.setdefault(qid, Question(qid, text, kind, unit, list(choices or [])))
        if ref not in q.constraint_refs:
            q.constraint_refs.append(ref)
        for t in targets or []:
            if t not in q.targets:
                q.targets.append(t)

    if module.get("minimumAge") or module.get("maximumAge"):
        add("age", "How old are you?", "number", "eligibilityModule.age", "years")
    if str(module.get("sex") or "ALL").upper() in ("FEMALE", "MALE"):
        add("sex", "What is your sex?", "choice", "eligibilityModule.sex", choices=["female", "male"])
    for ref, c in _record_constraints(record):
        if c.kind == "age":
            add("age", "How old are you?", "number", ref, "years")
        elif c.kind in ("sex", "childbearing", "menopause") and not c.value == "all":
            add("sex", "What is your sex?", "choice", ref, choices=["female", "male"])
            if c.kind == "menopause":
                add("menopausal", "Have you gone through menopause?", "yes-no", ref)
        elif c.kind in ("pregnancy", "pregnancy_plan"):
            add("pregnant", "Are you currently pregnant?", "yes-no", ref)
        elif c.kind == "lactation":
            add("lactating", "Are you currently breastfeeding?", "yes-no", ref)
        elif c.kind == "consent":
            add("consent", "Are you able and willing to give written informed consent?", "yes-no", ref)
        elif c.kind == "compliance":
            add("complies", "Can you attend all study visits and follow the study procedures?", "yes-no", ref)
        elif c.kind == "lab" and c.analyte:
            an = vocab.analytes.get(c.analyte)
            name = an.names[0] if an else c.analyte
            unit = None if c.unit == "uln" else (an.unit if an and an.unit else None)
            add(f"lab:{c.analyte}", f"What is your most recent {name}?", "number", ref, unit)
        elif c.kind in ("condition", "infection", "malignancy", "surgery", "vaccination") and c.concepts:
            concept = c.concepts[0]
            name = (vocab.concepts.get(concept) or [concept.replace("_", " ")])[0]
            when = f" in the last {_duration(c.window_days)}" if c.window_days else ""
            verb = {"surgery": "Have you had", "vaccination": "Have you received"}.get(
                c.kind, "Have you ever been diagnosed with" if not when else "Have you had"
            )
            add(f"cond:{concept}", f"{verb} {name}{when}?", "yes-no", ref, targets=[name])
        elif c.kind == "therapy" and c.terms:
            item = ref.split("/", 1)[0]
            when = f" in the last {_duration(c.window_days)}" if c.window_days else ""
            q = qs.get(f"med:{item}")
            names = (q.targets if q else []) + [t for t in c.terms if not q or t not in q.targets]
            shown = ", ".join(names[:8]) + (" or similar" if len(names) > 8 else "")
            text = f"Are you taking, or have you taken{when}, any of: {shown}?"
            add(f"med:{item}", text, "yes-no", ref, targets=names)
            qs[f"med:{item}"].text = text
    return list(qs.values())


def _duration(days: float) -> str:
    d = round(days)
    if d >= 365 and d % 365 in (0, 1):
        n = round(days / 365.25)
        return f"{n} year{'s' if n != 1 else ''}"
    if d >= 28 and abs(days / 30.44 - round(days / 30.44)) < 0.05 and d % 7:
        n = round(days / 30.44)
        return f"{n} month{'s' if n != 1 else ''}"
    if d >= 7 and d % 7 == 0:
        n = d // 7
        return f"{n} week{'s' if n != 1 else ''}"
    return f"{d} day{'s' if d != 1 else ''}"


def _yes(value: Any) -> bool | None:
    if isinstance(value, bool):
        return value
    if isinstance(value, str):
        v = value.strip().lower()
        if v in ("yes", "y", "true", "1"):
            return True
        if v in ("no", "n", "false", "0"):
            return False
    return None


def evaluate_answers(record: dict[str, Any], answers: dict[str, Any]) -> StudyVerdict:
    """Judge a patient who answered :func:`prescreen_questions` (answers keyed by question id)."""
    questions = {q.id: q for q in prescreen_questions(record)}
    facts: dict[str, Any] = {"conditions": [], "labs": []}
    meds: list[dict[str, Any]] = []
    for qid, value in (answers or {}).items():
        if value is None or value == "":
            continue
        if qid == "age":
            try:
                facts["age"] = float(value)
            except (TypeError, ValueError):
                continue
        elif qid == "sex":
            facts["sex"] = str(value)
        elif qid in ("pregnant", "lactating", "menopausal", "complies"):
            yn = _yes(value)
            if yn is not None:
                facts[qid] = yn
        elif qid == "consent":
            yn = _yes(value)
            if yn is not None:
                facts["consent"] = yn
        elif qid.startswith("lab:"):
            try:
                number = float(value)
            except (TypeError, ValueError):
                continue
            analyte = qid[4:]
            q = questions.get(qid)
            facts["labs"].append({"name": analyte, "value": number, "unit": q.unit if q else None})
        elif qid.startswith("cond:") and qid in questions:
            yn = _yes(value)
            if yn is not None:
                for name in questions[qid].targets:
                    facts["conditions"].append({"name": name, "status": "present" if yn else "absent"})
        elif qid.startswith("med:") and qid in questions:
            yn = _yes(value)
            if yn is not None:
                for name in questions[qid].targets:
                    meds.append({"name": name, "status": "current" if yn else "absent"})
    if meds:
        facts["medications"] = meds
    return evaluate_study(extract_patient(facts=facts), record)
