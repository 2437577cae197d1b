"""The criterion evaluation harness: counts, patient selection, cross-validation, files, errors.

Accuracy on the dev annotations is a benchmark figure (``trialfinder eval criteria --cv 5``, in
``benchmarks/README.md``), not a unit-test floor: the rules were written on these patients, so a floor
here would reward fitting them. Behaviour on named cases is tested in ``test_eligibility_*``.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from trialfinder.eligibility import LABELS
from trialfinder.matching.criteria_eval import AnnotationError, evaluate_annotations, score_annotations

ANNOTATIONS = Path(__file__).parent / "data" / "criteria-dev-annotations.json"


def _pid(a: dict) -> int:  # type: ignore[type-arg]
    return int(str(a["patient_id"]).rsplit("-", 1)[-1])


@pytest.fixture(scope="module")
def report():  # type: ignore[no-untyped-def]
    return evaluate_annotations(ANNOTATIONS)


def test_report_counts(report) -> None:  # type: ignore[no-untyped-def]
    assert report.n == 474
    assert sum(sum(row.values()) for row in report.confusion.values()) == report.n
    assert report.correct == sum(report.confusion.get(lb, {}).get(lb, 0) for lb in LABELS)
    assert report.false_exclusions <= report.predicted_negative


def test_selecting_patients(report) -> None:  # type: ignore[no-untyped-def]
    odd = evaluate_annotations(ANNOTATIONS, select=lambda a: _pid(a) % 2 == 1)
    even = evaluate_annotations(ANNOTATIONS, select=lambda a: _pid(a) % 2 == 0)
    assert odd.n + even.n == report.n and odd.correct + even.correct == report.correct


def test_report_format_and_dict(report) -> None:  # type: ignore[no-untyped-def]
    text = report.format()
    assert "accuracy:" in text and "false-exclusion rate:" in text and "confusion" in text
    d = report.to_dict()
    assert d["n"] == 474 and set(d["confusion"]) <= set(LABELS)
    assert sum(sum(row.values()) for row in report.confusion.values()) == 474
    json.dumps(d)


def test_predictions_file(tmp_path: Path) -> None:
    out = tmp_path / "pred.jsonl"
    data = json.loads(ANNOTATIONS.read_text())[:20]
    r = score_annotations(data, out)
    lines = [json.loads(line) for line in out.read_text().splitlines()]
    assert len(lines) == 20 == r.n
    assert [x["annotation_id"] for x in lines] == [a["annotation_id"] for a in data]
    assert all(x["label"] in LABELS and isinstance(x["evidence"], list) for x in lines)


def test_bad_inputs(tmp_path: Path) -> None:
    with pytest.raises(AnnotationError):
        evaluate_annotations(tmp_path / "missing.json")
    bad = tmp_path / "bad.json"
    bad.write_text("{")
    with pytest.raises(AnnotationError):
        evaluate_annotations(bad)
    bad.write_text(json.dumps([{"note": "x"}]))
    with pytest.raises(AnnotationError, match="criterion_text"):
        evaluate_annotations(bad)
    empty = tmp_path / "empty.json"
    empty.write_text("[]")
    r = evaluate_annotations(empty)
    assert r.n == 0 and r.accuracy == 0.0


def test_cross_validation_holds_out_whole_patients() -> None:
    from trialfinder.matching.criteria_eval import cross_validate

    cv = cross_validate(ANNOTATIONS, 5)
    assert cv.k == 5 and len(cv.folds) == 5
    assert cv.held_out.n == cv.whole.n == 474  # every annotation scored once, by a model chosen without it
    assert sum(n for n, _r, _c in cv.folds) == 27
    assert "held-out patients" in cv.format() and cv.to_dict()["k"] == 5
    with pytest.raises(AnnotationError):
        cross_validate(ANNOTATIONS, 1)


def test_half_split_is_fixed_by_patient_id() -> None:
    from trialfinder.matching.criteria_eval import _load, patient_halves, split_halves

    annotations = _load(ANNOTATIONS)
    half_of = patient_halves(annotations)
    ids = sorted(half_of)
    assert [half_of[p] for p in ids[:4]] == ["A", "B", "A", "B"]  # alternating over sorted ids
    # the split depends only on the ids: reversing the file does not move a patient
    assert patient_halves(list(reversed(annotations))) == half_of
    split = split_halves(ANNOTATIONS)
    (na, ra), (nb, rb) = split.halves["A"], split.halves["B"]
    assert na + nb == len(ids) and ra.n + rb.n == split.whole.n == len(annotations)
    assert split.whole.correct == ra.correct + rb.correct
    assert "half A" in split.format() and split.to_dict()["split"] == "halves"
