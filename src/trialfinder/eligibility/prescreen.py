"""The pre-screen in plain words: one question per rule of a study's criteria, answered by a person.

Why not questions generated from extracted constraints alone: merging the rules that name drugs into
one "are you taking any of: rituximab, mycophenolate, ... ?" turned a patient on a *stable* dose of
mycophenolate (allowed) into "Ineligible: patient takes rituximab"; and questions rebuilt from concepts
dropped the qualifiers that decide ("severe and uncontrolled", "except basal cell carcinoma").  So:

* every rule is asked as it is written: a criterion bullet is split into its rules (sentences and
  ";"-separated parts), and each rule is one yes/no question quoting it, qualifiers and time window
  included; where a rule turns on a dose being stable, a follow-up asks that;
* the study's disease is always asked ("Have you been diagnosed with lupus nephritis?");
* numbers (age, a lab value or score the criteria bound) are asked as numbers and judged by the engine;
* a criterion nobody answered and nothing decided is "to discuss with the study team", never passed;
* the verdict and the reasons are sentences for the person ("This would exclude you because you said
  yes to ..."), with values as they were entered.

Pure functions; nothing is stored.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from trialfinder.model.criteria import split_criteria

#: What a criterion is for the person, per outcome.
MET, NOT_MET, DISCUSS, NA = "met", "not met", "to discuss with the study team", "not applicable"

_RULE_SPLIT = re.compile(r"(?<=[.;])\s+(?=[A-Z(])|;\s+")
_STABLE = re.compile(r"\b(un)?stable\s+(?:doses?|dosing|regimens?|treatment)\b|\bdose\b[^.;]{0,40}\bstable\b",
                     re.IGNORECASE)
_HEADING = re.compile(r":\s*$")
_WINDOW = re.compile(r"\b(?:within|in the (?:last|past|first)|during the (?:last|past))\s+[^,.;]{1,40}?"
                     r"\b(?:days?|weeks?|months?|years?)\b", re.IGNORECASE)


@dataclass
class Rule:
    """One rule of one criterion, asked as one question."""

    id: str
    criterion: str
    kind: str  # inclusion | exclusion
    text: str
    stable_followup: bool = False
    window: str | None = None


@dataclass
class PlainQuestion:
    id: str
    text: str
    type: str  # yesno | number | choice
    criterion: str = ""
    kind: str = ""
    unit: str | None = None
    options: list[str] = field(default_factory=list)
    followup_of: str | None = None
    window: str | None = None

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"id": self.id, "text": self.text, "type": self.type}
        for k in ("criterion", "kind", "unit", "window"):
            if getattr(self, k):
                out[k] = getattr(self, k)
        if self.options:
            out["options"] = list(self.options)
        if self.followup_of:
            out["followupOf"] = self.followup_of
        return out


def _items(record: dict[str, Any]) -> list[tuple[str, str, str]]:
    """(id, kind, full text) of each top-level criterion; headings ("... all of the following:") skipped."""
    module = ((record or {}).get("protocolSection") or {}).get("eligibilityModule") or {}
    split = split_criteria(module.get("eligibilityCriteria") or "")
    out = []
    for kind, items in (("inclusion", split.inclusion), ("exclusion", split.exclusion)):
        for n, item in enumerate(items):
            text = item.full_text().strip()
            if not text or (_HEADING.search(item.text.strip()) and not item.children):
                continue
            out.append((f"{kind[:3]}{n}", kind, text))
    return out


def rules(record: dict[str, Any]) -> list[Rule]:
    """Every rule of the study's criteria, in order (a bullet with several rules gives several)."""
    out: list[Rule] = []
    for cid, kind, text in _items(record):
        parts = [p.strip(" ;") for p in _RULE_SPLIT.split(text) if len(p.strip(" ;")) > 3]
        for j, part in enumerate(parts or [text]):
            w = _WINDOW.search(part)
            out.append(Rule(f"{cid}.{j}", cid, kind, part, bool(_STABLE.search(part)), w.group(0) if w else None))
    return out


def _conditions(record: dict[str, Any]) -> list[str]:
    cm = ((record or {}).get("protocolSection") or {}).get("conditionsModule") or {}
    return [c for c in cm.get("conditions") or [] if c][:3]


def questions(record: dict[str, Any], engine_questions: list[dict[str, Any]] | None = None) -> list[PlainQuestion]:
    """The study's questions: the disease, age/sex and numbers, then one question per rule."""
    qs: list[PlainQuestion] = []
    conds = _conditions(record)
    if conds:
        qs.append(PlainQuestion("disease", f"Have you been diagnosed with {' or '.join(conds)}?", "yesno",
                                "This study is for people with " + ", ".join(conds) + ".", "inclusion"))
    for q in engine_questions or []:
        if q.get("id") in ("age", "sex") or str(q.get("id", "")).startswith("lab:"):
            qs.append(PlainQuestion(str(q["id"]), str(q.get("text") or ""), str(q.get("type") or "number"),
                                    unit=q.get("unit"), options=list(q.get("options") or [])))
    asked_numbers = {q.id for q in qs}
    for r in rules(record):
        if _by_number(r.text, asked_numbers):
            continue  # the age question asks it
        lead = "Is this true for you?" if r.kind == "inclusion" else "Does this apply to you?"
        qs.append(PlainQuestion(f"rule:{r.id}", lead, "yesno", r.text, r.kind, window=r.window))
        if r.stable_followup:
            qs.append(PlainQuestion(f"stable:{r.id}", "If you take any of these medicines: has your dose been "
                                    "stable (unchanged)" + (f" {r.window}" if r.window else "") + "?",
                                    "yesno", r.text, r.kind, followup_of=f"rule:{r.id}"))
    return qs


_BOUND = re.compile(r"[<>≤≥]|\b(?:at least|at most|greater than|less than|more than|above|below)\b\s*\d",
                    re.IGNORECASE)


def _by_number(text: str, asked: set[str]) -> bool:
    """Whether a rule is a numeric bound on something asked as a number (age, a lab value, a score)."""
    return bool(re.match(r"^\W*age\W*(?:[<>≤≥]|\d|between|from|over|under)[^;.]*$", text, re.IGNORECASE)) \
        and "age" in asked


def _yes(value: Any) -> bool | None:
    if isinstance(value, bool):
        return value
    if value is None:
        return None
    v = str(value).strip().lower()
    if v in ("yes", "y", "true", "1", "on"):
        return True
    if v in ("no", "n", "false", "0", "off"):
        return False
    return None


@dataclass
class PlainCriterion:
    text: str
    kind: str
    label: str  # MET | NOT_MET | DISCUSS | NA
    explanation: str


def _quote(text: str, n: int = 160) -> str:
    t = " ".join(text.split())
    return "“" + (t if len(t) <= n else t[: n - 1].rstrip() + "…") + "”"


def judge(record: dict[str, Any], answers: dict[str, Any],
          engine_labels: dict[str, tuple[str, str]] | None = None,
          engine_questions: list[dict[str, Any]] | None = None) -> tuple[str, list[PlainCriterion]]:
    """The person's verdict and one sentence per criterion, from their answers.

    ``engine_labels`` maps a criterion's text to the engine's judgement of it from the numbers given
    (``("met" | "not met" | "unknown", explanation)``): used when the person answered no rule question of
    that criterion. Returns (verdict, criteria) with verdict ``eligible`` / ``possibly eligible`` /
    ``ineligible``.
    """
    out: list[PlainCriterion] = []
    conds = _conditions(record)
    if conds:
        yn = _yes(answers.get("disease"))
        if yn is True:
            out.append(PlainCriterion(f"Diagnosis of {', '.join(conds)}", "inclusion", MET,
                                      f"You said you have been diagnosed with {' or '.join(conds)}."))
        elif yn is False:
            out.append(PlainCriterion(f"Diagnosis of {', '.join(conds)}", "inclusion", NOT_MET,
                                      f"This study is for people with {' or '.join(conds)}, and you said "
                                      "you have not been diagnosed with it."))
        else:
            out.append(PlainCriterion(f"Diagnosis of {', '.join(conds)}", "inclusion", DISCUSS,
                                      "You did not say whether you have this diagnosis: to discuss with the "
                                      "study team."))
    by_criterion: dict[str, list[Rule]] = {}
    texts: dict[str, tuple[str, str]] = {}
    asked = {q.id for q in questions(record, engine_questions)}
    for r in rules(record):
        if f"rule:{r.id}" in asked:
            by_criterion.setdefault(r.criterion, []).append(r)
    for cid, kind, text in _items(record):
        texts[cid] = (kind, text)
    for cid, (kind, text) in texts.items():
        rs = by_criterion.get(cid, [])
        said = {r.id: _yes(answers.get(f"rule:{r.id}")) for r in rs}
        stable = {r.id: _yes(answers.get(f"stable:{r.id}")) for r in rs}
        if kind == "exclusion":
            hits = [r for r in rs if said[r.id] is True and not (r.stable_followup and stable[r.id] is True
                                                                 and _mentions_unstable(r.text))]
            if hits:
                out.append(PlainCriterion(text, kind, NOT_MET, "This would exclude you because you said yes to "
                                          + "; ".join(_quote(r.text) for r in hits) + "."))
                continue
            if rs and all(said[r.id] is False or (said[r.id] is True and stable[r.id] is True) for r in rs):
                why = "You said this does not apply to you."
                if any(said[r.id] is True for r in rs):
                    why = "You said your dose has been stable, which this rule allows."
                out.append(PlainCriterion(text, kind, MET, why))
                continue
        else:
            nos = [r for r in rs if said[r.id] is False]
            if nos:
                out.append(PlainCriterion(text, kind, NOT_MET, "You may not qualify because you said no to "
                                          + "; ".join(_quote(r.text) for r in nos) + "."))
                continue
            if rs and all(said[r.id] is True for r in rs):
                out.append(PlainCriterion(text, kind, MET, "You said this is true for you."))
                continue
        label, why = (engine_labels or {}).get(text, ("unknown", ""))
        if label == "not met":
            out.append(PlainCriterion(text, kind, NOT_MET, why or "Your answers do not meet this criterion."))
        elif label == "met" and why:
            out.append(PlainCriterion(text, kind, MET, why))
        else:
            out.append(PlainCriterion(text, kind, DISCUSS, "Not answered: to discuss with the study team."))
    if any(c.label == NOT_MET for c in out):
        verdict = "ineligible"
    elif any(c.label == DISCUSS for c in out):
        verdict = "possibly eligible"
    else:
        verdict = "eligible"
    return verdict, out


def _mentions_unstable(text: str) -> bool:
    m = _STABLE.search(text)
    return bool(m and (m.group(1) or "unstable" in text.lower()))


def headline(verdict: str) -> str:
    """The verdict as a sentence for the person."""
    return {"eligible": "You may qualify for this study. Only the study team can confirm it.",
            "ineligible": "From your answers, this study would probably not include you.",
            }.get(verdict, "You may qualify, but some points need to be discussed with the study team.")
