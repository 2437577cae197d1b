"""The matcher's one door to the eligibility engine, in plain shapes the CLI, web and JSON API can print.

The eligibility engine (:mod:`trialfinder.eligibility`) owns patient extraction and verdicts; this
module only calls its public API (``extract_patient``, ``evaluate_study``, ``prescreen_questions``,
``evaluate_answers``) and converts what it returns into :class:`Verdict` / :class:`CriterionResult`, so
the matcher and its front ends do not depend on the engine's internal classes.

It also checks a study's *structured* eligibility (the registry's minimum/maximum age and sex fields)
itself: those fields are authoritative, cheap and never ambiguous, so a patient outside them is
ineligible whatever the free-text analysis says.  While an engine function is missing (the engine is
being built in steps) a conservative fallback stands in: structured fields only for verdicts, and one
yes/no question per criterion for pre-screening.
"""

from __future__ import annotations

import dataclasses
import importlib
import re
from dataclasses import dataclass, field
from typing import Any

from trialfinder.model.study import parse_age

ELIGIBLE = "eligible"
POSSIBLY = "possibly eligible"
INELIGIBLE = "ineligible"
VERDICTS = (ELIGIBLE, POSSIBLY, INELIGIBLE)


@dataclass
class CriterionResult:
    """How one criterion applies to the patient.

    ``label`` is ``"met"``, ``"not met"``, ``"unknown"`` or ``"not applicable"`` from the patient's
    point of view: an exclusion criterion the patient has is "not met" (it excludes them).  ``raw`` is
    the engine's own label ("included", "not excluded", "not enough information", ...).
    """

    text: str
    kind: str  # "inclusion" | "exclusion" | "structured"
    label: str
    explanation: str = ""
    evidence: list[Any] = field(default_factory=list)
    raw: str = ""

    @property
    def decisive(self) -> bool:
        return self.label == "not met"

    def to_dict(self) -> dict[str, Any]:
        out = {"text": self.text, "kind": self.kind, "label": self.label, "explanation": self.explanation,
               "evidence": [e if isinstance(e, (str, int, float)) else str(e) for e in self.evidence]}
        if self.raw:
            out["engineLabel"] = self.raw
        return out


@dataclass
class Verdict:
    """A study-level verdict with the criteria behind it; ``deciding`` are the ones that settled it."""

    verdict: str
    score: float = 0.0
    criteria: list[CriterionResult] = field(default_factory=list)
    source: str = "engine"  # "engine", "fallback" (engine function missing) or "engine error"
    #: the registry's structured age/sex fields exclude the patient (certain, unlike free-text verdicts)
    structured_fail: bool = False

    @property
    def deciding(self) -> list[CriterionResult]:
        if self.verdict == INELIGIBLE:
            return [c for c in self.criteria if c.label == "not met"]
        if self.verdict == POSSIBLY:
            return [c for c in self.criteria if c.label == "unknown"]
        return [c for c in self.criteria if c.label == "met"]

    def to_dict(self, *, all_criteria: bool = True) -> dict[str, Any]:
        out: dict[str, Any] = {"verdict": self.verdict, "score": round(self.score, 4),
                               "deciding": [c.to_dict() for c in self.deciding], "source": self.source}
        if all_criteria:
            out["criteria"] = [c.to_dict() for c in self.criteria]
        return out


def _engine(name: str) -> Any:
    """An engine function by name, or None while the engine does not provide it yet."""
    for module in ("trialfinder.eligibility", "trialfinder.eligibility.verdict",
                   "trialfinder.eligibility.patient", "trialfinder.eligibility.prescreen"):
        try:
            mod = importlib.import_module(module)
        except ImportError:
            continue
        fn = getattr(mod, name, None)
        if callable(fn):
            return fn
    return None


def engine_available() -> bool:
    """Whether the engine's study-level verdicts are available (else structured fields only)."""
    return _engine("evaluate_study") is not None


# --------------------------------------------------------------------------------------------------
# patients


def extract(note: str | None = None, facts: dict[str, Any] | None = None) -> Any:
    """The engine's patient for a note and/or facts (attributes ``age``, ``sex``, ``conditions``, ...)."""
    fn = _engine("extract_patient")
    if fn is None:
        return _FallbackPatient.from_input(note, facts)
    return fn(note=note, facts=facts)


@dataclass
class _FallbackPatient:
    age: float | None = None
    sex: str | None = None
    conditions: list[Any] = field(default_factory=list)
    note: str | None = None

    @classmethod
    def from_input(cls, note: str | None, facts: dict[str, Any] | None) -> _FallbackPatient:
        facts = facts or {}
        age = facts.get("age")
        try:
            age = float(str(age).split()[0]) if age is not None else None
        except ValueError:
            age = None
        sex = str(facts["sex"]).lower() if facts.get("sex") else None
        return cls(age, sex, list(facts.get("conditions") or []), note)


def patient_conditions(patient: Any) -> list[str]:
    """Names of the conditions the patient has (present, not negated or a relative's)."""
    out = []
    for c in getattr(patient, "conditions", None) or []:
        if isinstance(c, str):
            out.append(c)
            continue
        if isinstance(c, dict):
            name, status = c.get("name"), c.get("status", "present")
        else:
            name, status = getattr(c, "name", None), getattr(c, "status", "present")
        if name and status in (None, "present", "possible"):
            out.append(str(name))
    return list(dict.fromkeys(out))


def patient_sex(patient: Any) -> str | None:
    sex = getattr(patient, "sex", None)
    if not sex:
        return None
    s = str(sex).strip().lower()
    return {"f": "female", "m": "male", "woman": "female", "man": "male"}.get(s, s)


# --------------------------------------------------------------------------------------------------
# verdicts


def structured_check(patient: Any, record: dict) -> list[CriterionResult]:
    """The study's age and sex fields against the patient: authoritative, so a failure excludes."""
    elig = (record.get("protocolSection") or {}).get("eligibilityModule") or {}
    out: list[CriterionResult] = []
    age = getattr(patient, "age", None)
    lo, hi = parse_age(elig.get("minimumAge")), parse_age(elig.get("maximumAge"))
    if lo is not None or hi is not None:
        text = f"Age {elig.get('minimumAge') or 'any'} to {elig.get('maximumAge') or 'any'}"
        if age is None:
            out.append(CriterionResult(text, "structured", "unknown", "the patient's age is not known"))
        elif (lo is not None and age < lo) or (hi is not None and age > hi):
            out.append(CriterionResult(text, "structured", "not met", f"the patient is {age:g} years old"))
        else:
            out.append(CriterionResult(text, "structured", "met", f"the patient is {age:g} years old"))
    sex = (elig.get("sex") or "ALL").upper()
    if sex in ("MALE", "FEMALE"):
        text = f"Sex: {sex.lower()}"
        ps = patient_sex(patient)
        if ps is None:
            out.append(CriterionResult(text, "structured", "unknown", "the patient's sex is not known"))
        elif ps != sex.lower():
            out.append(CriterionResult(text, "structured", "not met", f"the patient is {ps}"))
        else:
            out.append(CriterionResult(text, "structured", "met", f"the patient is {ps}"))
    return out


def evaluate(patient: Any, record: dict) -> Verdict:
    """The verdict on one study: the engine's, overruled by the structured fields when they exclude."""
    structured = structured_check(patient, record)
    fn = _engine("evaluate_study")
    if fn is None:
        return _combine(Verdict(POSSIBLY, 0.0, [], "fallback"), structured)
    try:
        verdict = to_verdict(fn(patient, record))
    except Exception:  # noqa: BLE001 - one record the engine cannot read must not fail a whole match
        verdict = Verdict(POSSIBLY, 0.0, [], "engine error")
    return _combine(verdict, structured)


def _combine(v: Verdict, structured: list[CriterionResult]) -> Verdict:
    seen = {c.text for c in v.criteria}
    extra = [c for c in structured if c.text not in seen]
    v.criteria = extra + v.criteria
    if any(c.label == "not met" for c in structured):
        v.verdict = INELIGIBLE
        v.structured_fail = True
    return v


#: Engine labels (``trialfinder.eligibility.LABELS``) -> the patient's point of view.
_LABELS = {
    "included": "met", "not excluded": "met", "met": "met",
    "not included": "not met", "excluded": "not met", "not met": "not met",
    "not enough information": "unknown", "unknown": "unknown",
    "not applicable": "not applicable",
}


def to_verdict(obj: Any) -> Verdict:
    """Convert the engine's study verdict (a dataclass, an object or a dict) to a :class:`Verdict`."""
    d = _as_dict(obj)
    verdict = str(d.get("verdict") or POSSIBLY).lower().replace("_", " ")
    if verdict not in VERDICTS:
        verdict = POSSIBLY
    score = d.get("score")
    criteria = [to_criterion(c) for c in d.get("criteria") or []]
    return Verdict(verdict, float(score) if isinstance(score, (int, float)) else 0.0, criteria, "engine")


def to_criterion(obj: Any) -> CriterionResult:
    d = _as_dict(obj)
    raw = str(d.get("label") or d.get("status") or "unknown").lower().replace("_", " ")
    label = _LABELS.get(raw, "unknown")
    text = d.get("text") or d.get("criterion") or d.get("criterion_text") or ""
    if not text and isinstance(d.get("item"), dict):
        text = d["item"].get("text", "")
    kind = d.get("kind") or d.get("criterion_type") or d.get("type") or ""
    evidence = d.get("evidence") or []
    if not isinstance(evidence, list):
        evidence = [evidence]
    return CriterionResult(str(text), str(kind), label, str(d.get("explanation") or ""), evidence, raw)


def _as_dict(obj: Any) -> dict[str, Any]:
    """Top-level fields of an engine object, without converting nested objects (that is costly)."""
    if isinstance(obj, dict):
        return obj
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return {f.name: getattr(obj, f.name) for f in dataclasses.fields(obj)}
    if hasattr(obj, "to_dict"):
        d = obj.to_dict()
        if isinstance(d, dict):
            return d
    return dict(getattr(obj, "__dict__", {}))


# --------------------------------------------------------------------------------------------------
# pre-screening questions ("check my eligibility")


def questions(record: dict) -> list[dict[str, Any]]:
    """Questions for a person to answer about themselves, from the study's criteria.

    Each question is ``{"id", "text", "type": "yesno"|"number"|"choice", "options"?, "unit"?,
    "criterion"?, "kind"?, "window"?, "followupOf"?}``: the study's disease, age and sex, the numbers the
    criteria bound (from the engine's constraints), then one yes/no question per rule as written
    (:mod:`trialfinder.eligibility.prescreen`).
    """
    from trialfinder.eligibility import prescreen

    return [q.to_dict() for q in prescreen.questions(record, _engine_questions(record))]


def _engine_questions(record: dict) -> list[dict[str, Any]]:
    fn = _engine("prescreen_questions")
    if fn is not None:
        return [_question(q, i) for i, q in enumerate(fn(record))]
    return [q for q in _fallback_questions(record) if q["id"] in ("age", "sex")]


def _question(obj: Any, i: int) -> dict[str, Any]:
    """The engine's question (``id, text, kind: number|yes-no|choice, unit, choices``) in our shape."""
    d = dict(_as_dict(obj))
    d.setdefault("id", f"q{i}")
    d["id"] = str(d["id"])
    d.setdefault("text", d.get("question") or "")
    if d.get("choices") and not d.get("options"):
        d["options"] = list(d["choices"])
    raw = str(d.get("type") or d.get("kind") or ("choice" if d.get("options") else "yesno"))
    qtype = {"yes-no": "yesno", "yes_no": "yesno", "boolean": "yesno"}.get(raw, raw)
    d["type"] = qtype if qtype in ("yesno", "number", "choice", "text", "date") else "yesno"
    return {k: v for k, v in d.items() if v not in (None, [])}


def _criteria_items(record: dict) -> list[tuple[str, str, str]]:
    from trialfinder.eligibility import split_criteria

    elig = (record.get("protocolSection") or {}).get("eligibilityModule") or {}
    split = split_criteria(elig.get("eligibilityCriteria") or "")
    out = []
    for kind, items in (("inclusion", split.inclusion), ("exclusion", split.exclusion)):
        for n, item in enumerate(items):
            out.append((f"{kind[:3]}{n}", kind, item.full_text()))
    return out


def _fallback_questions(record: dict) -> list[dict[str, Any]]:
    qs: list[dict[str, Any]] = [
        {"id": "age", "text": "How old are you?", "type": "number", "unit": "years"},
        {"id": "sex", "text": "What is your sex?", "type": "choice", "options": ["female", "male"]},
    ]
    for qid, kind, text in _criteria_items(record):
        prompt = "Does this describe you?" if kind == "inclusion" else "Does this apply to you?"
        qs.append({"id": qid, "text": prompt, "type": "yesno", "criterion": text, "kind": kind})
    return qs


def check_answers(record: dict, answers: dict[str, Any]) -> Verdict:
    """The verdict for a person's answers to :func:`questions` (answers keyed by question id).

    The rule questions decide the criteria they ask about; the engine judges the numbers (age, lab
    values, scores) against the criteria; a criterion left undecided is "to discuss with the study
    team" and keeps the verdict at "possibly eligible"; the registry's age and sex fields are checked
    against the age and sex given. Explanations are sentences to the person, values as entered.
    """
    from trialfinder.eligibility import prescreen

    answers = {str(k): v for k, v in (answers or {}).items()}
    patient = _FallbackPatient.from_input(None, {"age": answers.get("age"), "sex": answers.get("sex")})
    engine_labels: dict[str, tuple[str, str]] = {}
    fn = _engine("evaluate_answers")
    numbers = {k: v for k, v in answers.items() if k in ("age", "sex") or k.startswith("lab:")}
    if fn is not None and numbers:
        for c in to_verdict(fn(record, numbers)).criteria:
            if c.label in ("met", "not met") and c.kind in ("inclusion", "exclusion"):
                engine_labels[c.text.strip()] = (c.label, _entered(c, numbers, record))
    verdict, plain = prescreen.judge(record, answers, engine_labels, _engine_questions(record))
    label = {prescreen.MET: "met", prescreen.NOT_MET: "not met", prescreen.DISCUSS: "unknown",
             prescreen.NA: "not applicable"}
    results = [CriterionResult(c.text, c.kind, label[c.label], c.explanation) for c in plain]
    v = Verdict(verdict, sum(r.label == "met" for r in results) / len(results) if results else 0.0, results,
                "prescreen")
    structured = []
    for c in structured_check(patient, record):
        entered = answers.get("age") if c.text.startswith("Age") else answers.get("sex")
        if c.label == "unknown":
            c.explanation = "Not answered: to discuss with the study team."
        elif c.text.startswith("Age"):
            c.explanation = (f"You said you are {entered}." if c.label == "met"
                             else f"This would exclude you because you said you are {entered}.")
        else:
            c.explanation = (f"You said you are {entered}." if c.label == "met"
                             else f"This study is for {c.text.split(':')[-1].strip()} participants; you said {entered}.")
        structured.append(c)
    combined = _combine(v, structured)
    if combined.verdict == ELIGIBLE and any(c.label == "unknown" for c in combined.criteria):
        combined.verdict = POSSIBLY
    return combined


def _entered(c: CriterionResult, numbers: dict[str, Any], record: dict) -> str:
    """The engine's reason for a number-decided criterion, in the person's terms (values as entered)."""
    names = {q["id"]: q.get("text", "") for q in _engine_questions(record)}
    labs = [k for k in numbers if k.startswith("lab:")]
    said = []
    for ev in c.evidence:
        ev = str(ev)
        if ev == "facts.age" and "age" in numbers:
            said.append(f"you are {numbers['age']}")
        elif ev.startswith("facts.labs[") and ev[11:-1].isdigit() and int(ev[11:-1]) < len(labs):
            key = labs[int(ev[11:-1])]
            name = re.sub(r"^what is your most recent\s+|\?$", "", names.get(key, key[4:]), flags=re.IGNORECASE)
            said.append(f"your {name} is {numbers[key]}")
    if not said:
        return ""
    text = " and ".join(said)
    if c.label == "not met":
        return ("This would exclude you because you said " if c.kind == "exclusion"
                else "You may not qualify because you said ") + text + "."
    return "You said " + text + "."


def _fallback_answers(record: dict, answers: dict[str, Any], patient: Any) -> Verdict:
    results: list[CriterionResult] = []
    for qid, kind, text in _criteria_items(record):
        a = _yes_no(answers.get(qid))
        if a is None:
            results.append(CriterionResult(text, kind, "unknown", "not answered"))
        elif (kind == "inclusion") == a:
            results.append(CriterionResult(text, kind, "met", "you answered " + ("yes" if a else "no")))
        else:
            results.append(CriterionResult(text, kind, "not met", "you answered " + ("yes" if a else "no")))
    if any(r.label == "not met" for r in results):
        verdict = INELIGIBLE
    elif any(r.label == "unknown" for r in results):
        verdict = POSSIBLY
    else:
        verdict = ELIGIBLE
    met = sum(r.label == "met" for r in results)
    v = Verdict(verdict, met / len(results) if results else 0.0, results, "fallback")
    combined = _combine(v, structured_check(patient, record))
    if combined.verdict == ELIGIBLE and any(c.label == "unknown" for c in combined.criteria):
        combined.verdict = POSSIBLY
    return combined


def _yes_no(value: Any) -> bool | None:
    if isinstance(value, bool):
        return value
    if value is None:
        return None
    s = str(value).strip().lower()
    if s in ("yes", "y", "true", "1", "on"):
        return True
    if s in ("no", "n", "false", "0", "off"):
        return False
    return None
