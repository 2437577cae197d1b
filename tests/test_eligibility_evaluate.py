"""Verdicts: patient × criterion, patient × study, and the pre-screening questionnaire."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from trialfinder.eligibility import (
    LABELS,
    evaluate_answers,
    evaluate_criterion,
    evaluate_study,
    extract_patient,
    prescreen_questions,
)

DATA = Path(__file__).parent / "data"

WOMAN = extract_patient(
    "0. A 58-year-old woman presents with chest pain.\n"
    "1. She is known to have hypertension and obesity.\n"
    "2. She denies smoking, diabetes, or a family history of heart disease.\n"
    "3. Her mother had breast cancer.\n"
    "4. She currently takes no medications.\n"
    "5. The patient will provide informed consent, and will comply with the trial protocol."
)
MAN = extract_patient(
    "0. A 72-year-old man had a myocardial infarction 2 years earlier and a transient ischemic attack 6 months ago.\n"
    "1. He is currently taking isosorbide dinitrate, hydrochlorothiazide, and aspirin.\n"
    "2. His blood pressure is 151/91 mm Hg."
)


@pytest.mark.parametrize(
    ("patient", "text", "kind", "label", "evidence"),
    [
        (WOMAN, "Age 25 to 65 years", "inclusion", "included", [0]),
        (WOMAN, "Age 18-50", "inclusion", "not included", [0]),
        (WOMAN, "Male and female", "inclusion", "included", [0]),
        (WOMAN, "Clinical diagnosis of hypertension", "inclusion", "included", [1]),
        (
            WOMAN,
            "Patient must be able to give voluntary written informed consent.",
            "inclusion",
            "included",
            [5],
        ),
        (WOMAN, "IDDM (Type-1 diabetes mellitus)", "exclusion", "not excluded", [2]),
        (WOMAN, "Current smokers", "exclusion", "not excluded", [2]),
        (WOMAN, "History of breast cancer", "exclusion", "not excluded", [3]),
        (WOMAN, "On calcium channel blockers", "exclusion", "not excluded", [4]),
        (WOMAN, "Unable to give informed consent", "exclusion", "not excluded", [5]),
        (MAN, "Pregnant or lactating women", "exclusion", "not applicable", [0]),
        (
            MAN,
            "Recent myocardial infarction within 3 months prior to screening.",
            "exclusion",
            "not excluded",
            [0],
        ),
        (MAN, "History of myocardial infarction", "exclusion", "excluded", [0]),
        (MAN, "Patients on aspirin or clopidogrel", "exclusion", "excluded", [1]),
        (MAN, "Systolic blood pressure ≥ 140 mmHg", "inclusion", "included", [2]),
        (MAN, "Hypertension of > 170/100 mm of Hg", "exclusion", "not excluded", [2]),
    ],
)
def test_criterion_verdicts(patient, text: str, kind: str, label: str, evidence: list[int]) -> None:  # type: ignore[no-untyped-def]
    v = evaluate_criterion(patient, text, kind)  # type: ignore[arg-type]
    assert v.label == label, v.explanation
    assert v.label in LABELS
    assert v.evidence == evidence
    assert v.explanation and "\n" not in v.explanation


def test_uncertain_parse_never_excludes() -> None:
    # unparseable or unknown things give "not enough information", never a negative verdict
    p = extract_patient("A 40-year-old woman. The differential diagnosis includes pulmonary embolism.")
    assert evaluate_criterion(p, "Pulmonary embolism", "exclusion").label == "not enough information"
    assert (
        evaluate_criterion(p, "Serum creatinine > 3.0 mg/dL", "exclusion").label == "not enough information"
    )
    assert evaluate_criterion(p, "Frobnication of the widget", "inclusion").label == "not enough information"
    assert evaluate_criterion(p, "Current pregnancy", "exclusion").label == "not enough information"
    # a word-overlap match without vocabulary support is not enough to exclude
    q = extract_patient("A 40-year-old woman with widget syndrome.")
    assert evaluate_criterion(q, "Widget syndrome", "exclusion").label == "not enough information"


def test_taking_a_drug_does_not_meet_an_item_about_its_dose_changing() -> None:
    """"Unstable doses of mycophenolate" excludes patients whose dose changed, not everyone on the drug."""
    p = extract_patient("A 32-year-old woman with lupus nephritis, on mycophenolate mofetil.")
    for text in ("Patients who received unstable doses of mycophenolate mofetil within 12 weeks of screening",
                 "Dose changes of mycophenolate mofetil in the last 3 months"):
        v = evaluate_criterion(p, text, "exclusion")
        assert v.label == "not enough information", (text, v.explanation)
    # the plain item still excludes her
    assert evaluate_criterion(p, "Current treatment with mycophenolate mofetil", "exclusion").label == "excluded"


def test_lab_comparisons_with_units() -> None:
    p = extract_patient("A 27-year-old woman has a hemoglobin (Hb) of 9.0 g/dL. eGFR 25 mL/min/1.73m2.")
    assert evaluate_criterion(p, "Hemoglobin < 90 g/L", "exclusion").label == "not excluded"
    assert evaluate_criterion(p, "Hemoglobin ≥ 8 g/dL", "inclusion").label == "included"
    assert evaluate_criterion(p, "eGFR < 30 mL/min/1.73m2", "exclusion").label == "excluded"
    p2 = extract_patient("The complete blood count is normal.")
    assert evaluate_criterion(p2, "Platelets < 50,000/µL", "exclusion").label == "not excluded"


def test_family_history_and_negation() -> None:
    p = extract_patient("A 45 year old woman. Her mother had breast cancer. She denies diabetes.")
    assert evaluate_criterion(p, "History of breast cancer", "exclusion").label == "not excluded"
    assert evaluate_criterion(p, "Family history of breast cancer", "inclusion").label == "included"
    assert evaluate_criterion(p, "Type 2 diabetes", "inclusion").label == "not included"


def test_conditional_items_are_not_applicable() -> None:
    boy = extract_patient("A 10 year old boy with cough.")
    assert evaluate_criterion(boy, "If female, using birth control", "inclusion").label == "not applicable"
    assert (
        evaluate_criterion(boy, "Negative pregnancy test for females", "inclusion").label == "not applicable"
    )
    girl = extract_patient("A 15-year-old girl. She has had no sexual partners.")
    assert evaluate_criterion(girl, "If female, using birth control", "inclusion").label == "not applicable"


def test_structured_patient() -> None:
    p = extract_patient(
        facts={"age": 70, "sex": "male", "conditions": ["COPD"], "labs": [{"name": "ECOG", "value": 2}]}
    )
    assert evaluate_criterion(p, "ECOG 0-1", "inclusion").label == "not included"
    assert evaluate_criterion(p, "Chronic obstructive pulmonary disease", "inclusion").label == "included"
    assert evaluate_criterion(p, "evidence" and "Asthma", "inclusion").label == "not enough information"


def test_kind_validation() -> None:
    with pytest.raises(ValueError):
        evaluate_criterion(WOMAN, "Age > 18", "maybe")  # type: ignore[arg-type]


def _record() -> dict:  # type: ignore[type-arg]
    return json.loads((DATA / "NCT05631717.json").read_text())


def test_study_verdicts() -> None:
    rec = _record()
    young = extract_patient(
        "0. A 30-year-old woman with active lupus nephritis.\n1. Her SLEDAI-2K score is 10.\n"
        "2. The patient will provide informed consent and will comply with the protocol."
    )
    v = evaluate_study(young, rec)
    assert v.verdict == "possibly eligible"
    assert 0 < v.score <= 1
    assert any(c.label == "included" and "SLEDAI" in c.text for c in v.criteria)
    old = extract_patient("0. A 70-year-old woman with lupus nephritis.")
    assert evaluate_study(old, rec).verdict == "ineligible"
    man = extract_patient(facts={"age": 40, "sex": "male"})
    vm = evaluate_study(man, rec)
    assert vm.verdict == "possibly eligible"
    assert any(c.label == "not applicable" for c in vm.criteria)
    json.dumps(vm.to_dict())


def test_study_with_no_criteria_text() -> None:
    rec = {"protocolSection": {"eligibilityModule": {"sex": "FEMALE", "minimumAge": "18 Years"}}}
    assert evaluate_study(extract_patient(facts={"age": 30, "sex": "female"}), rec).verdict == "eligible"
    assert evaluate_study(extract_patient(facts={"age": 30, "sex": "male"}), rec).verdict == "ineligible"
    assert evaluate_study(extract_patient(), rec).verdict == "possibly eligible"


def test_prescreen_questions_and_answers() -> None:
    rec = _record()
    qs = prescreen_questions(rec)
    ids = {q.id for q in qs}
    assert {"age", "pregnant", "consent", "lab:sledai", "lab:upcr"} <= ids
    age = next(q for q in qs if q.id == "age")
    assert age.kind == "number" and age.unit == "years" and age.constraint_refs
    assert all(q.kind in ("number", "yes-no", "choice") for q in qs)
    assert len(ids) == len(qs)
    ok = evaluate_answers(
        rec,
        {"age": 30, "sex": "female", "pregnant": "no", "lab:sledai": 8, "lab:upcr": 2.0, "consent": "yes"},
    )
    assert ok.verdict in ("eligible", "possibly eligible")
    assert evaluate_answers(rec, {"age": 70}).verdict == "ineligible"
    assert evaluate_answers(rec, {"lab:sledai": 2}).verdict == "ineligible"
    assert evaluate_answers(rec, {"pregnant": "yes", "sex": "female", "age": 30}).verdict == "ineligible"
    meds = next(q for q in qs if q.id.startswith("med:"))
    assert "rituximab" in meds.targets and "24 weeks" in meds.text
    assert evaluate_answers(rec, {"age": 30, meds.id: "yes"}).verdict == "ineligible"
    assert evaluate_answers(rec, {"age": 30, "cond:malignancy": "yes"}).verdict == "ineligible"
    assert (
        evaluate_answers(rec, {"age": 30, "cond:malignancy": "no", meds.id: "no"}).verdict
        == "possibly eligible"
    )
    assert all(q.to_dict()["id"] == q.id for q in qs)


def test_real_world_phrasings_do_not_exclude_wrongly() -> None:
    p = extract_patient(
        "0. A 58-year-old woman with hypertension and type 2 diabetes.\n1. She takes metformin and lisinopril.\n"
        "2. She denies smoking."
    )
    # allergy to a drug class is not taking it
    assert (
        evaluate_criterion(p, "Sensitivity to ACE inhibitor e.g. angioedema.", "exclusion").label
        != "excluded"
    )
    # "men and women who ..." describes the population; "women with X" needs X
    assert evaluate_criterion(p, "Women with non-invasive vulvar conditions", "exclusion").label != "excluded"
    assert (
        evaluate_criterion(p, "Subject's (men and women) intention to procreate", "exclusion").label
        != "excluded"
    )
    # the two ages are alternatives, not an empty range
    assert (
        evaluate_criterion(p, "Age younger than 18 and older than 80 years", "exclusion").label
        == "not excluded"
    )
    # type 1 diabetes is not type 2 diabetes
    assert evaluate_criterion(p, "IDDM", "exclusion").label != "excluded"
    # permissions and washouts are not requirements to take a drug
    assert evaluate_criterion(p, "Concurrent steroids allowed", "inclusion").label != "not included"
    assert (
        evaluate_criterion(p, "At least 30 days since prior immunotherapy", "inclusion").label
        != "not included"
    )
    # definitions, donors and relatives are about other people
    assert evaluate_criterion(p, "DONOR: Age less than 12 years", "exclusion").label == "not excluded"
    assert (
        evaluate_criterion(p, "Two first-degree relatives affected before age 55 years", "inclusion").label
        != "not included"
    )
    # but real matches still count
    assert evaluate_criterion(p, "Diabetes mellitus", "exclusion").label == "excluded"
    assert evaluate_criterion(p, "Current use of ACE inhibitors", "exclusion").label == "excluded"
    assert evaluate_criterion(p, "No diabetes mellitus", "inclusion").label == "not included"


@pytest.mark.parametrize(("text", "kind", "label"), [
    ("If they are fertile, they must agree to use effective contraception during the trial.", "inclusion",
     "included"),
    ("Women of childbearing potential not using adequate contraception", "exclusion", "not excluded"),
    ("Reluctance to use effective contraception during the study", "exclusion", "not excluded"),
])
def test_contraception_she_uses_decides(text: str, kind: str, label: str) -> None:
    p = extract_patient("34-year-old woman with lupus nephritis. Uses an IUD.")
    assert evaluate_criterion(p, text, kind).label == label
