"""`trialfinder eval criteria`: score the eligibility engine on criterion-level expert annotations.

Each annotation pairs a patient note with one criterion and an expert label.  The harness predicts the
label with :func:`trialfinder.eligibility.evaluate_criterion` and reports accuracy, the confusion
matrix and the false-exclusion rate: the share of annotations where the engine said "excluded" or "not
included" although the expert did not.  That rate is reported on its own because turning away an
eligible patient is the costliest mistake the engine can make.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from trialfinder.eligibility import LABELS, evaluate_criterion, extract_patient
from trialfinder.errors import TrialfinderError

__all__ = [
    "AnnotationError",
    "CriteriaReport",
    "HalfSplit",
    "evaluate_annotations",
    "patient_halves",
    "score_annotations",
    "split_halves",
]

NEGATIVE_LABELS = ("excluded", "not included")


class AnnotationError(TrialfinderError, ValueError):
    """The annotations file is missing, not JSON, or an annotation lacks a required field."""


@dataclass
class CriteriaReport:
    """Criterion-level evaluation results; :meth:`format` renders them for a terminal."""

    n: int
    correct: int
    confusion: dict[str, dict[str, int]]
    false_exclusions: int
    predicted_negative: int
    by_type: dict[str, tuple[int, int]] = field(default_factory=dict)
    labels: tuple[str, ...] = LABELS

    @property
    def accuracy(self) -> float:
        """Share of annotations where the predicted label equals the expert label."""
        return self.correct / self.n if self.n else 0.0

    @property
    def false_exclusion_rate(self) -> float:
        """Wrong "excluded"/"not included" predictions as a share of all annotations."""
        return self.false_exclusions / self.n if self.n else 0.0

    @property
    def false_exclusion_share(self) -> float:
        """Wrong "excluded"/"not included" predictions as a share of those predictions (1 - precision)."""
        return self.false_exclusions / self.predicted_negative if self.predicted_negative else 0.0

    def to_dict(self) -> dict[str, Any]:
        """Plain-JSON form."""
        return {
            "n": self.n,
            "accuracy": round(self.accuracy, 4),
            "false_exclusion_rate": round(self.false_exclusion_rate, 4),
            "false_exclusions": self.false_exclusions,
            "predicted_negative": self.predicted_negative,
            "confusion": self.confusion,
            "by_type": {k: {"n": n, "correct": c} for k, (n, c) in self.by_type.items()},
        }

    def format(self) -> str:
        """Human-readable report: headline figures, per-type accuracy and the confusion matrix."""
        lines = [
            f"annotations:          {self.n}",
            f"accuracy:             {self.accuracy:.3f} ({self.correct}/{self.n})",
            f"false-exclusion rate: {self.false_exclusion_rate:.3f} ({self.false_exclusions}/{self.n}; "
            f"{self.false_exclusions}/{self.predicted_negative} of excluded/not-included predictions)",
        ]
        for kind, (n, c) in sorted(self.by_type.items()):
            lines.append(f"  {kind + ':':<20}{c / n if n else 0:.3f} ({c}/{n})")
        used = [
            lb
            for lb in self.labels
            if any(self.confusion.get(lb, {}).values()) or any(row.get(lb) for row in self.confusion.values())
        ]
        short = {lb: "".join(w[0] for w in lb.split()).upper() for lb in used}
        width = max(len(lb) for lb in used) if used else 10
        lines.append("")
        lines.append("confusion (rows: expert, columns: predicted)")
        lines.append(" " * (width + 2) + " ".join(f"{short[lb]:>5}" for lb in used))
        for gold in used:
            row = self.confusion.get(gold, {})
            lines.append(f"{gold:<{width}}  " + " ".join(f"{row.get(pred, 0):>5}" for pred in used))
        lines.append("  " + ", ".join(f"{short[lb]} = {lb}" for lb in used))
        return "\n".join(lines)


def _load(path: str | Path) -> list[dict[str, Any]]:
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise AnnotationError(f"{path}: no such file") from exc
    except json.JSONDecodeError as exc:
        raise AnnotationError(f"{path}: not valid JSON: {exc}") from exc
    if isinstance(data, dict) and isinstance(data.get("annotations"), list):
        data = data["annotations"]
    if not isinstance(data, list):
        raise AnnotationError(f"{path}: expected a JSON array of annotations")
    for i, a in enumerate(data):
        if not isinstance(a, dict):
            raise AnnotationError(f"{path}: annotation {i} is not an object")
        for key in ("note", "criterion_text", "criterion_type", "expert_eligibility"):
            if not isinstance(a.get(key), str):
                raise AnnotationError(f"{path}: annotation {i} lacks {key!r}")
        if a["criterion_type"] not in ("inclusion", "exclusion"):
            raise AnnotationError(f"{path}: annotation {i}: criterion_type must be inclusion or exclusion")
    return data


def score_annotations(
    annotations: Iterable[dict[str, Any]], predictions_out: str | Path | None = None
) -> CriteriaReport:
    """Predict and score already-loaded annotations (see :func:`evaluate_annotations`)."""
    patients: dict[str, Any] = {}
    confusion: dict[str, dict[str, int]] = {}
    by_type: dict[str, list[int]] = {}
    n = correct = false_ex = negative = 0
    out_lines: list[str] = []
    for i, a in enumerate(annotations):
        note = a["note"]
        patient = patients.get(note)
        if patient is None:
            patient = patients[note] = extract_patient(note)
        verdict = evaluate_criterion(patient, a["criterion_text"], a["criterion_type"])
        gold = a["expert_eligibility"].strip().lower()
        pred = verdict.label
        n += 1
        correct += pred == gold
        confusion.setdefault(gold, {}).setdefault(pred, 0)
        confusion[gold][pred] += 1
        t = by_type.setdefault(a["criterion_type"], [0, 0])
        t[0] += 1
        t[1] += pred == gold
        if pred in NEGATIVE_LABELS:
            negative += 1
            if gold != pred:
                false_ex += 1
        out_lines.append(
            json.dumps(
                {"annotation_id": a.get("annotation_id", i), "label": pred, "evidence": verdict.evidence},
                ensure_ascii=False,
            )
        )
    if predictions_out is not None:
        Path(predictions_out).write_text("\n".join(out_lines) + ("\n" if out_lines else ""), encoding="utf-8")
    return CriteriaReport(
        n, correct, confusion, false_ex, negative, {k: (v[0], v[1]) for k, v in by_type.items()}
    )


def evaluate_annotations(
    path: str | Path,
    predictions_out: str | Path | None = None,
    *,
    select: Callable[[dict[str, Any]], bool] | None = None,
) -> CriteriaReport:
    """Evaluate the engine on an annotations JSON file.

    ``predictions_out`` receives one JSON line per annotation:
    ``{"annotation_id": ..., "label": ..., "evidence": [...]}``.  ``select`` keeps a subset (e.g. a
    held-out split of patients) without copying the file.
    """
    annotations = _load(path)
    if select is not None:
        annotations = [a for a in annotations if select(a)]
    return score_annotations(annotations, predictions_out)


# --------------------------------------------------------------------------------------------------
# patient-level cross-validation

#: The engine's two fitted parameters: the confidence a met inclusion needs, and the confidence an
#: exclusion or an unmet inclusion needs (:mod:`trialfinder.eligibility.evaluate`). Cross-validation
#: chooses them on the training patients of each fold from this grid.
THRESHOLD_GRID = {"INCLUDE_CONFIDENCE": (0.5, 0.6, 0.7), "DECISIVE_CONFIDENCE": (0.6, 0.7, 0.8)}
#: Largest false-exclusion rate a setting may have on the training patients to be chosen.
MAX_FALSE_EXCLUSION = 0.02


def _patient_key(a: dict[str, Any]) -> str:
    return str(a.get("patient_id") or a["note"][:200])


@dataclass
class CrossValidation:
    """k-fold cross-validation by patient: every patient's annotations are scored by a model (rules plus
    thresholds) chosen without that patient; :attr:`held_out` pools the k held-out folds."""

    k: int
    whole: CriteriaReport
    held_out: CriteriaReport
    folds: list[tuple[int, CriteriaReport, dict[str, float]]]

    def to_dict(self) -> dict[str, Any]:
        return {"k": self.k, "whole_set": self.whole.to_dict(), "held_out": self.held_out.to_dict(),
                "folds": [{"patients": n, "accuracy": round(r.accuracy, 4),
                           "false_exclusion_rate": round(r.false_exclusion_rate, 4), "n": r.n, "chosen": c}
                          for n, r, c in self.folds]}

    def format(self) -> str:
        lines = [f"patient-level {self.k}-fold cross-validation "
                 f"({sum(n for n, _r, _c in self.folds)} patients, {self.held_out.n} annotations)",
                 f"  whole set (rules as written):    accuracy {self.whole.accuracy:.3f}, "
                 f"false-exclusion rate {self.whole.false_exclusion_rate:.3f}",
                 f"  held-out patients (pooled):      accuracy {self.held_out.accuracy:.3f}, "
                 f"false-exclusion rate {self.held_out.false_exclusion_rate:.3f}"]
        for i, (n, r, chosen) in enumerate(self.folds, 1):
            lines.append(f"    fold {i}: {n} patients, {r.n} annotations, accuracy {r.accuracy:.3f}, "
                         f"false exclusions {r.false_exclusions}  (thresholds "
                         + ", ".join(f"{k.split('_')[0].lower()} {v:g}" for k, v in chosen.items()) + ")")
        return "\n".join(lines)


def _with_thresholds(values: dict[str, float], fn: Callable[[], CriteriaReport]) -> CriteriaReport:
    from trialfinder.eligibility import evaluate as engine

    saved = {k: getattr(engine, k) for k in values}
    try:
        for k, v in values.items():
            setattr(engine, k, v)
        return fn()
    finally:
        for k, v in saved.items():
            setattr(engine, k, v)


def _merge(reports: list[CriteriaReport]) -> CriteriaReport:
    confusion: dict[str, dict[str, int]] = {}
    by_type: dict[str, tuple[int, int]] = {}
    for r in reports:
        for gold, row in r.confusion.items():
            for pred, c in row.items():
                confusion.setdefault(gold, {}).setdefault(pred, 0)
                confusion[gold][pred] += c
        for kind, (n, c) in r.by_type.items():
            n0, c0 = by_type.get(kind, (0, 0))
            by_type[kind] = (n0 + n, c0 + c)
    return CriteriaReport(sum(r.n for r in reports), sum(r.correct for r in reports), confusion,
                          sum(r.false_exclusions for r in reports), sum(r.predicted_negative for r in reports),
                          by_type)


def cross_validate(path: str | Path, k: int = 5) -> CrossValidation:
    """Patient-level k-fold cross-validation of the engine on an annotations file.

    Patients are dealt to folds in a fixed order (sorted ids, round robin), so the figure is
    reproducible. For each fold the thresholds are chosen on the other folds' patients (best accuracy
    with a false-exclusion rate at most :data:`MAX_FALSE_EXCLUSION`, ties to the shipped values) and
    the fold's patients are scored with them.
    """
    from itertools import product

    from trialfinder.eligibility import evaluate as engine

    annotations = _load(path)
    patients = sorted({_patient_key(a) for a in annotations})
    if k < 2 or k > len(patients):
        raise AnnotationError(f"{path}: --cv needs 2 <= K <= {len(patients)} (the number of patients)")
    fold_of = {p: i % k for i, p in enumerate(patients)}
    names = list(THRESHOLD_GRID)
    shipped = {n: float(getattr(engine, n)) for n in names}
    settings = [dict(zip(names, vals, strict=True)) for vals in product(*THRESHOLD_GRID.values())]
    # score every annotation under every setting once; folds then only add up counts
    per_setting: dict[int, list[CriteriaReport]] = {}
    for si, setting in enumerate(settings):
        per_setting[si] = [
            _with_thresholds(setting, lambda f=f: score_annotations(  # type: ignore[misc]
                [a for a in annotations if fold_of[_patient_key(a)] == f]))
            for f in range(k)]
    folds: list[tuple[int, CriteriaReport, dict[str, float]]] = []
    for f in range(k):
        best: tuple[float, float, int] | None = None
        for si, setting in enumerate(settings):
            train = _merge([r for g, r in enumerate(per_setting[si]) if g != f])
            if train.false_exclusion_rate > MAX_FALSE_EXCLUSION:
                continue
            key = (train.accuracy, float(setting == shipped), -si)
            if best is None or key > best:
                best = key
        chosen_i = -int(best[2]) if best is not None else next(
            i for i, s in enumerate(settings) if s == shipped) if shipped in settings else 0
        folds.append((sum(1 for p in patients if fold_of[p] == f), per_setting[chosen_i][f], settings[chosen_i]))
    whole = score_annotations(annotations)
    return CrossValidation(k, whole, _merge([r for _n, r, _c in folds]), folds)


# --------------------------------------------------------------------------------------------------
# fixed half split

#: Half names in the order patients are dealt to them (sorted ids, alternating).
HALVES = ("A", "B")


def patient_halves(annotations: Iterable[dict[str, Any]]) -> dict[str, str]:
    """Patient key -> "A" or "B": sorted patient ids dealt alternately (even positions A, odd B).

    Why a fixed split: rule changes are made looking at the errors of one half and judged on the other.
    The split must not move when rules change, so it depends only on the patient ids.
    """
    patients = sorted({_patient_key(a) for a in annotations})
    return {p: HALVES[i % 2] for i, p in enumerate(patients)}


@dataclass
class HalfSplit:
    """The engine scored on each fixed half of the patients and on the whole set."""

    whole: CriteriaReport
    halves: dict[str, tuple[int, CriteriaReport]]  # half -> (patients, report)

    def to_dict(self) -> dict[str, Any]:
        return {"split": "halves", "whole_set": self.whole.to_dict(),
                "halves": {h: {"patients": n, **r.to_dict()} for h, (n, r) in self.halves.items()}}

    def format(self) -> str:
        lines = [f"fixed half split by patient (sorted ids, alternating; {self.whole.n} annotations)"]
        for h, (n, r) in self.halves.items():
            lines.append(f"  half {h}: {n} patients, {r.n} annotations, accuracy {r.accuracy:.3f}, "
                         f"false-exclusion rate {r.false_exclusion_rate:.3f} ({r.false_exclusions})")
        lines.append(f"  whole set: {self.whole.n} annotations, accuracy {self.whole.accuracy:.3f}, "
                     f"false-exclusion rate {self.whole.false_exclusion_rate:.3f} ({self.whole.false_exclusions})")
        return "\n".join(lines)


def split_halves(path: str | Path) -> HalfSplit:
    """Score the engine on the two fixed patient halves of an annotations file (see :func:`patient_halves`)."""
    annotations = _load(path)
    half_of = patient_halves(annotations)
    halves: dict[str, tuple[int, CriteriaReport]] = {}
    for h in HALVES:
        subset = [a for a in annotations if half_of[_patient_key(a)] == h]
        halves[h] = (sum(1 for v in half_of.values() if v == h), score_annotations(subset))
    return HalfSplit(_merge([r for _n, r in halves.values()]), halves)
