"""Patient facts from notes (negation, family history, temporality, labs) and from structured data."""

from __future__ import annotations

import pytest

from trialfinder.eligibility import extract_patient
from trialfinder.eligibility.patient import convert_unit

NOTE = """0. A 58-year-old African-American woman presents to the ER with chest pain that began two days earlier.
1. She is known to have hypertension and obesity.
2. She denies smoking, diabetes, hypercholesterolemia, or a family history of heart disease.
3. Her mother had breast cancer.
4. She currently takes no medications.
5. The patient will provide informed consent, and will comply with the trial protocol."""


def _status(p, concept: str) -> set[str]:  # type: ignore[no-untyped-def]
    return {c.status for c in p.conditions if concept in c.concepts}


def test_age_sex_and_sentence_ids() -> None:
    p = extract_patient(NOTE)
    assert p.age == 58 and p.sex == "female"
    assert p.evidence["age"] == [0] and [s.sid for s in p.sentences] == [0, 1, 2, 3, 4, 5]


def test_negation_family_and_consent() -> None:
    p = extract_patient(NOTE)
    assert _status(p, "hypertension") == {"present"}
    assert _status(p, "diabetes") == {"absent"}
    assert _status(p, "smoking") == {"absent"}
    assert _status(p, "breast_cancer") == {"family"}
    assert p.no_medications and p.consents and p.complies
    assert p.evidence["consent"] == [5]


def test_uncertainty_and_hypothetical() -> None:
    p = extract_patient(
        "The differential diagnosis includes pulmonary embolism. She is concerned about osteoporosis."
    )
    assert _status(p, "pulmonary_embolism") == {"possible"}
    assert _status(p, "osteoporosis") == {"hypothetical"}


def test_temporality() -> None:
    p = extract_patient(
        "The patient had an uncomplicated myocardial infarction 2 years earlier and a transient ischemic attack "
        "6 months ago."
    )
    mi = next(c for c in p.conditions if "myocardial_infarction" in c.concepts)
    tia = next(c for c in p.conditions if "tia" in c.concepts)
    assert mi.days_ago == pytest.approx(730.5) and tia.days_ago == pytest.approx(182.64)


def test_unnumbered_note_is_split_into_sentences() -> None:
    p = extract_patient(
        "A 4 year old boy presents with wheezing. He has a history of allergic rhinitis. No fever."
    )
    assert [s.sid for s in p.sentences] == [0, 1, 2]
    assert p.age == 4 and p.sex == "male"


def test_labs_vitals_and_qualitative_findings() -> None:
    p = extract_patient(
        "0. A 27-year-old woman at 11 weeks gestation has a hemoglobin (Hb) of 9.0 g/dL and platelet count 119 x 109/L.\n"
        "1. Her blood pressure is 80/60 and HR: 132/min; she is tachypneic.\n"
        "2. WBC 25,000 and creatinine 250 umol/L.\n"
        "3. The complete blood count is otherwise normal."
    )
    assert p.pregnant is True and p.lab("gestational_age").low == 11  # type: ignore[union-attr]
    assert p.lab("hemoglobin").low == 9.0  # type: ignore[union-attr]
    assert p.lab("platelets").low == 119  # type: ignore[union-attr]
    assert p.lab("sbp").low == 80 and p.lab("dbp").low == 60  # type: ignore[union-attr]
    assert p.lab("heart_rate").low == 132  # type: ignore[union-attr]
    rr = p.lab("resp_rate")
    assert rr is not None and rr.low == 20 and rr.high is None and rr.qualitative
    assert p.lab("wbc").low == 25  # type: ignore[union-attr]
    assert p.lab("creatinine").low == pytest.approx(2.83, abs=0.01)  # type: ignore[union-attr]
    assert "panel:cbc" in p.normal_panels


def test_pregnancy_status() -> None:
    assert extract_patient("Point of care pregnancy test is negative.").pregnant is False
    assert extract_patient("She had given birth to a healthy child 3 weeks before.").pregnant is False
    assert extract_patient("Ectopic pregnancy at age 26. A 38 year old woman.").pregnant is None
    p = extract_patient("She was documented to be in menopause within the last year.")
    assert p.menopausal is True
    # a pregnancy in a past-medical-history list is a past one (TREC-2021 topic 12's layout)
    pmh = "34 year old woman with Marfan's syndrome.\nPast Medical History:\nObesity\nHypertension with pregnancy\n"
    assert extract_patient(pmh).pregnant is None
    assert extract_patient("34 year old woman. She is pregnant.").pregnant is True


def test_medications() -> None:
    p = extract_patient(
        "His blood pressure worsened despite previous control with diltiazem. "
        "He is currently taking isosorbide dinitrate and aspirin."
    )
    by_name = {m.name.lower(): m for m in p.medications}
    assert by_name["diltiazem"].status == "past"
    assert by_name["aspirin"].status == "current" and "antiplatelet" in by_name["aspirin"].classes


def test_structured_facts() -> None:
    p = extract_patient(
        facts={
            "age": "45 years",
            "sex": "F",
            "pregnant": False,
            "reference_date": "2025-01-01",
            "conditions": ["type 2 diabetes", {"name": "HIV infection", "status": "absent"}],
            "medications": [{"name": "metformin", "start": "2020-01-01"}],
            "labs": [
                {"name": "eGFR", "value": 55, "unit": "mL/min/1.73m2"},
                {"name": "Hb", "value": 120, "unit": "g/L"},
            ],
        }
    )
    assert p.age == 45 and p.sex == "female" and p.pregnant is False
    assert _status(p, "diabetes") == {"present"} and _status(p, "hiv") == {"absent"}
    assert p.medications[0].classes == {"oral_antidiabetic"}
    assert p.lab("egfr").low == 55  # type: ignore[union-attr]
    assert p.lab("hemoglobin").low == pytest.approx(12.0)  # type: ignore[union-attr]


def test_note_and_facts_combine() -> None:
    p = extract_patient("A 60 year old man with COPD.", {"labs": [{"name": "ECOG", "value": 1}]})
    assert p.age == 60 and p.lab("ecog").low == 1  # type: ignore[union-attr]


def test_empty_inputs() -> None:
    p = extract_patient()
    assert p.age is None and p.sex is None and p.conditions == []
    assert extract_patient("   ").sentences == []


def test_unit_conversion() -> None:
    assert convert_unit(90, "g/L", "hemoglobin") == pytest.approx(9.0)
    assert convert_unit(150000, "/µL", "platelets") == pytest.approx(150)
    assert convert_unit(100.4, "°F", "temperature") == pytest.approx(38.0, abs=0.05)
    assert convert_unit(1, "furlongs", "hemoglobin") is None


@pytest.mark.parametrize(("note", "expected"), [
    ("34-year-old woman. Uses an IUD.", True),
    ("She is on oral contraceptive pills.", True),
    ("She takes birth control.", True),
    ("She does not use contraception.", False),
    ("She was counseled on contraception options.", None),
    ("Her sister uses an IUD.", None),
    ("She has hypertension.", None),
])
def test_contraception_in_use(note: str, expected: bool | None) -> None:
    assert extract_patient(note).contraception is expected


@pytest.mark.parametrize(("note", "stable", "days"), [
    ("On a stable dose of mycophenolate mofetil 2 g/day for 6 months.", True, 6 * 30.44),
    ("She takes mycophenolate at a stable dose.", True, None),
    ("Stable on hydroxychloroquine for the past 12 weeks.", True, 84.0),
    ("Mycophenolate dose unchanged for 3 months.", True, 3 * 30.44),
    ("Started mycophenolate mofetil 2 weeks ago.", False, None),
])
def test_stable_dose_from_the_note(note: str, stable: bool, days: float | None) -> None:
    meds = [m for m in extract_patient(note).medications if m.status == "current"]
    assert meds, note
    assert meds[0].stable is stable
    assert (meds[0].stable_days is None) if days is None else meds[0].stable_days == pytest.approx(days)
