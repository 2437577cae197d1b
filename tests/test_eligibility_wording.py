"""The engine's reasons rewritten for a patient (``eligibility.wording.for_patient``)."""

from __future__ import annotations

import pytest

from trialfinder.eligibility.wording import for_patient


@pytest.mark.parametrize(("engine", "plain"), [
    ("Included: age 34.0 meets 'Age 18 Years to 65 Years'.", "you are 34"),
    ("Not enough information: no mention of 'before random assignment'.", "your note does not say"),
    ("Not excluded: no mention of 'plasmapheresis'; no mention of 'immunosorbent therapy'.",
     "your note does not mention it"),
    ("Not excluded: 'malignancy' is negated in the note; no mention of 'solid tumors'.",
     "you said you do not have malignancy"),
    ("Not enough information: pregnancy status not stated; pregnancy status not stated.",
     "your note does not say whether you are pregnant"),
    ("Not excluded: patient does not take rituximab; mycophenolate mofetil at a stable dose for 183 days.",
     "you do not take rituximab; you take mycophenolate mofetil at a stable dose (183 days)"),
    ("Included: urine_protein_24h 1.8 vs '24-hour urinary protein > 1.0g'.", "your urine protein 24h is 1.8"),
    ("Not enough information: sledai not reported.", "your note gives no sledai result"),
    ("Not enough information: patient takes mycophenolate mofetil; dose stability not stated.",
     "you take mycophenolate mofetil; your note does not say whether the dose is stable"),
    ("Not enough information: 'prednisone' not among the patient's medications.",
     "your note does not list prednisone among your medicines"),
    ("Included: patient uses contraception.", "you use contraception"),
])
def test_engine_reasons_in_patient_words(engine: str, plain: str) -> None:
    assert for_patient(engine) == plain


def test_text_that_is_not_an_engine_explanation_is_kept() -> None:
    said = "This would exclude you because you said yes to: rituximab in the last 24 weeks."
    assert for_patient(said) == said
