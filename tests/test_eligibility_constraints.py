"""Typed constraint extraction from criterion items."""

from __future__ import annotations

import pytest

from trialfinder.eligibility import Constraint, extract_constraints


def _kinds(cs: list[Constraint]) -> list[str]:
    return [c.kind for c in cs]


def _one(cs: list[Constraint], kind: str) -> Constraint:
    found = [c for c in cs if c.kind == kind]
    assert len(found) == 1, cs
    return found[0]


@pytest.mark.parametrize(
    ("text", "low", "high", "low_inc", "high_inc"),
    [
        ("Age 25 to 65 years", 25, 65, True, True),
        ("age between 18 and 65", 18, 65, True, True),
        ("Age ≥18 years", 18, None, True, True),
        ("Males or females older than 18 years of age.", 18, None, False, True),
        ("18 years of age or older", 18, None, True, True),
        ("Age 18+", 18, None, True, True),
        ("Less than 18 years of age", None, 18, True, False),
        ("Age: age > 18 years old, ≤ 65 years old when obtaining informed consent", 18, 65, False, True),
        ("Postmenopausal female, 55-75 years old", 55, 75, True, True),
        ("≥ 5 years old (18 years onward in Cambodia)", 5, None, True, True),
    ],
)
def test_age(text: str, low: float | None, high: float | None, low_inc: bool, high_inc: bool) -> None:
    c = [c for c in extract_constraints(text, "inclusion") if c.kind == "age"][0]
    assert (c.low, c.high, c.low_inclusive, c.high_inclusive) == (low, high, low_inc, high_inc)
    assert c.text and c.text in text
    assert 0 < c.confidence <= 1


def test_age_alternatives_and_conditions() -> None:
    cs = [
        c
        for c in extract_constraints("Age younger than 18 and older than 80 years", "exclusion")
        if c.kind == "age"
    ]
    assert sorted(((c.low or 0), (c.high or 999)) for c in cs) == [(0, 18), (80, 999)]
    assert len({c.group for c in cs}) == 1
    cs = [
        c
        for c in extract_constraints("patients under 18 years of age or over 80 years of age", "exclusion")
        if c.kind == "age"
    ]
    assert len(cs) == 2 and len({c.group for c in cs}) == 1
    c = _one(
        extract_constraints(
            "Written informed consent from a parent or guardian if < 18 years old.", "inclusion"
        ),
        "age",
    )
    assert c.conditional
    assert "age" not in _kinds(
        extract_constraints("Stopping therapy for 4 weeks or less is allowed", "inclusion")
    )
    assert "age" not in _kinds(
        extract_constraints("Juvenile arthritis: under 16 years of age at onset", "inclusion")
    )


@pytest.mark.parametrize(
    "text",
    [
        "Age less than 18 years or greater than 65 years.",
        "Age less than 18 or greater than 65 years",
        "< 18 or > 65 years of age",
        "Age under 18, or over 65 years",
    ],
)
def test_age_bounds_chained_by_or(text: str) -> None:
    # the second bound has no "age" of its own, and "18 years or greater" is not a bound
    cs = [c for c in extract_constraints(text, "exclusion") if c.kind == "age"]
    assert sorted(((c.low or 0), (c.high or 999)) for c in cs) == [(0, 18), (65, 999)], cs
    assert len({c.group for c in cs}) == 1  # alternatives
    assert all(c.text and c.text in text for c in cs)


def test_age_in_months_and_not_a_patient_age() -> None:
    c = _one(extract_constraints("Infants aged 6 to 24 months", "inclusion"), "age")
    assert c.low == pytest.approx(0.5) and c.high == pytest.approx(2.0)
    assert "age" not in _kinds(extract_constraints("Asthma diagnosed after age of 6 years", "inclusion"))
    assert "age" not in _kinds(extract_constraints("GCS 8 or less", "inclusion"))


@pytest.mark.parametrize(
    ("text", "analyte", "low", "high", "unit"),
    [
        ("SLEDAI-2K score ≥ 6", "sledai", 6, None, None),
        ("Urinary total protein / creatinine ratio > 1.0", "upcr", 1.0, None, "g/g"),
        ("eGFR < 30 mL/min/1.73m2", "egfr", None, 30, "ml/min/1.73m2"),
        ("ECOG 0-1", "ecog", 0, 1, None),
        ("Karnofsky ≥ 70", "karnofsky", 70, None, "%"),
        ("Hemoglobin ≥ 90 g/L", "hemoglobin", 9.0, None, "g/dl"),
        ("platelets less than 150,000/ul", "platelets", None, 150.0, "x10^9/l"),
        ("WBC > 15000.", "wbc", 15.0, None, "x10^9/l"),
        ("Platelet count ≥75x 109/L", "platelets", 75, None, "x10^9/l"),
        ("Total bilirubin ≤1.5x the upper limit of the normal range (ULN)", "bilirubin", None, 1.5, "uln"),
        (
            "serum creatinine level of more than 250 micro mmol/L",
            "creatinine",
            pytest.approx(2.828, abs=0.01),
            None,
            "mg/dl",
        ),
        ("NYHA class III or IV heart failure", "nyha", 3, 4, None),
        ("GCS 8 or less", "gcs", None, 8, None),
        ("ASA score of five (5) or greater", "asa", 5, None, None),
    ],
)
def test_labs_and_scores(text: str, analyte: str, low: object, high: object, unit: str | None) -> None:
    cs = [c for c in extract_constraints(text, "inclusion") if c.kind == "lab"]
    assert cs, text
    c = cs[0]
    assert c.analyte == analyte
    assert c.low == low and c.high == high
    assert c.unit == unit


def test_blood_pressure_pair_is_either_value() -> None:
    cs = [
        c for c in extract_constraints("Hypertension of > 170/100 mm of Hg", "exclusion") if c.kind == "lab"
    ]
    assert {c.analyte for c in cs} == {"sbp", "dbp"}
    assert len({c.group for c in cs}) == 1  # alternatives


def test_sex_and_reproductive() -> None:
    assert _one(extract_constraints("Male and female", "inclusion"), "sex").value == "all"
    assert _one(extract_constraints("Female sex", "inclusion"), "sex").value == "female"
    cs = extract_constraints("Pregnant or lactating women.", "exclusion")
    assert {"pregnancy", "lactation"} <= set(_kinds(cs))
    assert _one(cs, "pregnancy").group == _one(cs, "lactation").group
    neg = _one(extract_constraints("Negative pregnancy test for females", "inclusion"), "pregnancy")
    assert neg.negated


def test_conditional_population() -> None:
    cs = extract_constraints("If female, using birth control", "inclusion")
    sex = _one(cs, "sex")
    assert sex.conditional and sex.value == "female"
    assert "contraception" in _kinds(cs)
    cs = extract_constraints(
        "Women of childbearing potential must have a negative urine pregnancy test and agree to use contraception",
        "inclusion",
    )
    assert _one(cs, "childbearing").conditional


def test_consent_polarity() -> None:
    assert not _one(extract_constraints("Signed informed consent", "inclusion"), "consent").negated
    assert _one(extract_constraints("Inability to provide informed consent.", "exclusion"), "consent").negated
    assert _one(extract_constraints("Refusal to consent.", "exclusion"), "consent").negated
    comp = _one(
        extract_constraints("Able and willing to comply with all study visits", "inclusion"), "compliance"
    )
    assert not comp.negated


def test_conditions_therapy_windows_and_exceptions() -> None:
    cs = extract_constraints(
        "Patients who had received rituximab or any other B cell depletion therapy within 24 weeks before screening",
        "exclusion",
    )
    therapy = [c for c in cs if c.kind == "therapy"]
    assert therapy and all(c.window_days == pytest.approx(168) for c in therapy)
    assert any("rituximab" in c.terms for c in therapy)
    cs = extract_constraints(
        "History of malignant tumors (except for excised or cured basal cell carcinoma of the skin)",
        "exclusion",
    )
    mal = [c for c in cs if c.kind == "malignancy"]
    assert mal and mal[0].historical
    assert any("basal cell carcinoma" in e for e in mal[0].exceptions)
    cs = extract_constraints("Hepatic, renal, and vascular disease.", "exclusion")
    assert {"liver_disease", "kidney_disease"} <= {k for c in cs for k in c.concepts}
    inf = extract_constraints("Uncontrolled HIV/AIDS or active viral hepatitis (e.g., HBV, HCV)", "exclusion")
    assert {"infection"} == {c.kind for c in inf if c.concepts}


def test_stable_dose_and_minimum_window() -> None:
    cs = extract_constraints(
        "If receiving pharmacological treatment for depression, has not been on a stable dose for at least 4 weeks",
        "exclusion",
    )
    assert any(c.stable_days == 28 for c in cs)


def test_spans_point_into_the_original_text() -> None:
    text = "4. Able and willing to give consent and able to attend all study visits"
    for c in extract_constraints(text, "inclusion"):
        assert text[c.span[0] : c.span[1]] == c.text


def test_kind_is_validated() -> None:
    with pytest.raises(ValueError):
        extract_constraints("Age > 18", "other")  # type: ignore[arg-type]


def test_empty_and_meta() -> None:
    assert extract_constraints("", "inclusion") == []
    assert extract_constraints("Individuals who do not meet the inclusion criteria", "exclusion") == []
    d = extract_constraints("ECOG 0-1", "inclusion")[0].to_dict()
    assert d["kind"] == "lab" and d["analyte"] == "ecog"


def test_consent_as_the_moment_of_an_age_is_not_a_consent_requirement() -> None:
    anchored = extract_constraints("Age: age > 18 years old, ≤ 65 years old when obtaining informed consent",
                                   "inclusion")
    assert _kinds(anchored) == ["age"]
    assert "consent" in _kinds(extract_constraints("Voluntarily sign informed consent", "inclusion"))
    # without an age (or other requirement) to anchor, consent stays a requirement
    assert "consent" in _kinds(extract_constraints("At the time of informed consent", "inclusion"))


def test_focusing_adverbs_are_no_condition_of_their_own() -> None:
    cs = extract_constraints("Other autoantibodies (mainly including dsDNA antibodies, SSA, SSB) are negative.",
                             "inclusion")
    words = {w for c in cs for t in (c.terms or ()) for w in t.split()} | {c.text.lower() for c in cs}
    assert cs and not {"mainly", "including"} & words, [(c.kind, c.text, c.terms) for c in cs]
