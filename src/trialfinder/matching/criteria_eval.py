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

__all__ = ["AnnotationError", "CriteriaReport", "evaluate_annotations", "score_annotations"]

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
