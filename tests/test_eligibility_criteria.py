"""Tests for splitting free-text criteria into inclusion/exclusion item trees."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from trialfinder.model.criteria import CriteriaSplit, CriterionItem, split_criteria

DATA = Path(__file__).parent / "data"


def _texts(items: list[CriterionItem]) -> list[str]:
    return [i.text for i in items]


def test_nct05631717_counts_and_preambles() -> None:
    rec = json.loads((DATA / "NCT05631717.json").read_text())
    text = rec["protocolSection"]["eligibilityModule"]["eligibilityCriteria"]
    split = split_criteria(text)
    assert len(split.inclusion) == 7
    assert len(split.exclusion) == 8
    assert split.inclusion_preamble == (
        "Only patients with active lupus nephritis who meet all of the following criteria are "
        "eligible for inclusion in this study:"
    )
    assert split.exclusion_preamble.startswith("Patients who met any of the following criteria")
    assert split.inclusion[2].text == "SLEDAI-2K score ≥ 6"
    assert split.exclusion[-1].text == "Pregnant or lactating women."
    assert all(i.depth == 0 and not i.children for i in split.inclusion)


@pytest.mark.parametrize("text", [None, "", "   \n  "])
def test_empty(text: str | None) -> None:
    split = split_criteria(text)
    assert split.inclusion == [] and split.exclusion == [] and split.notes == []


def test_numbered_with_nested_bullets_and_markdown_escapes() -> None:
    text = (
        "Inclusion Criteria:\n\n1. Age ≥ 18 years\n2. Adequate organ function:\n\n"
        "   * Hemoglobin ≥9 g/dL\n   * eGFR \\> 30 mL/min\n3. ECOG 0-1\n\n"
        "Exclusion Criteria:\n\n1. Pregnant\n2. Life expectancy \\<12 weeks\n"
    )
    split = split_criteria(text)
    assert [i.number for i in split.inclusion] == ["1", "2", "3"]
    assert _texts(split.inclusion[1].children) == ["Hemoglobin ≥9 g/dL", "eGFR > 30 mL/min"]
    assert split.inclusion[1].children[0].depth == 1
    assert _texts(split.exclusion) == ["Pregnant", "Life expectancy <12 weeks"]


def test_key_criteria_and_uppercase_headers() -> None:
    text = "Key Inclusion Criteria:\n- Adults\n- Diagnosed with asthma\nKey Exclusion Criteria:\n- Smokers"
    split = split_criteria(text)
    assert _texts(split.inclusion) == ["Adults", "Diagnosed with asthma"]
    assert _texts(split.exclusion) == ["Smokers"]
    split = split_criteria("INCLUSION:\n* a thing\nEXCLUSION:\n* other thing")
    assert _texts(split.inclusion) == ["a thing"]
    assert _texts(split.exclusion) == ["other thing"]


def test_header_with_inline_content() -> None:
    split = split_criteria("Inclusion Criteria: adults with COPD\nExclusion Criteria: current smokers")
    assert _texts(split.inclusion) == ["adults with COPD"]
    assert _texts(split.exclusion) == ["current smokers"]


def test_no_bullets_no_headers_is_inclusion() -> None:
    text = "Males and females, ages 18 and over.\n\nDiverse racial groups.\n\nNo history of epilepsy."
    split = split_criteria(text)
    assert _texts(split.inclusion) == [
        "Males and females, ages 18 and over.",
        "Diverse racial groups.",
        "No history of epilepsy.",
    ]
    assert split.exclusion == []


def test_legacy_wrapped_lines_are_joined() -> None:
    text = """
        Inclusion Criteria:

          -  Histologically confirmed stage IV adenocarcinoma or transitional cell carcinoma of the
             kidney that is unlikely to respond to existing therapy

          -  Measurable disease

        Exclusion Criteria:

          -  Pregnant
      """
    split = split_criteria(text)
    assert split.inclusion[0].text.endswith("of the kidney that is unlikely to respond to existing therapy")
    assert len(split.inclusion) == 2 and len(split.exclusion) == 1


def test_legacy_nci_subheadings_become_groups() -> None:
    text = """
        DISEASE CHARACTERISTICS:

          -  Histologically confirmed AML

        PATIENT CHARACTERISTICS:

        Age:

          -  16 to 59

        Hepatic:

          -  Bilirubin less than 2 mg/dL

          -  SGOT/SGPT normal
      """
    split = split_criteria(text)
    assert _texts(split.inclusion) == ["DISEASE CHARACTERISTICS:", "PATIENT CHARACTERISTICS:"]
    patient = split.inclusion[1]
    assert _texts(patient.children) == ["Age:", "Hepatic:"]
    assert _texts(patient.children[1].children) == ["Bilirubin less than 2 mg/dL", "SGOT/SGPT normal"]
    assert patient.children[1].children[0].depth == 2


def test_legacy_aids_excluded_groups() -> None:
    text = """
        Inclusion Criteria

        Patients must have:

          -  Biopsy-proven Kaposi's sarcoma.

        Exclusion Criteria

        Co-existing Condition:

        Patients with the following conditions or symptoms are excluded:

          -  Clinically significant cardiac disease.

        Prior Treatment:

        Excluded within 4 weeks of study entry:

          -  Chemotherapy.
      """
    split = split_criteria(text)
    assert split.inclusion_preamble == "Patients must have:"
    assert _texts(split.inclusion) == ["Biopsy-proven Kaposi's sarcoma."]
    assert _texts(split.exclusion) == ["Co-existing Condition:", "Prior Treatment:"]
    window = split.exclusion[1].children[0]
    assert window.text == "Excluded within 4 weeks of study entry:"
    assert _texts(window.children) == ["Chemotherapy."]


def test_one_of_the_following_and_flat_letter_sublists() -> None:
    text = (
        "Inclusion Criteria:\n1. Female patients who meet one of the following:\na. postmenopausal\n"
        "b. surgically sterile\n2. Age 18 or older\n"
    )
    split = split_criteria(text)
    assert [i.number for i in split.inclusion] == ["1", "2"]
    assert [c.number for c in split.inclusion[0].children] == ["a", "b"]


def test_notes_are_kept() -> None:
    text = (
        "Inclusion Criteria:\n* Age over 18\n\nNOTE: older patients need cardiology review.\n\n"
        "Exclusion Criteria:\n* Pregnancy\n\nOther protocol-defined inclusion/exclusion criteria may apply."
    )
    split = split_criteria(text)
    assert "NOTE: older patients need cardiology review." in split.notes
    assert any(n.startswith("Other protocol-defined") for n in split.notes)
    assert _texts(split.exclusion) == ["Pregnancy"]


def test_prose_exclusion_sentence_is_split() -> None:
    text = (
        "Children between 6 and 12 years with myopia are eligible. Exclusion criteria include strabismus "
        "or use of contact lenses."
    )
    split = split_criteria(text)
    assert len(split.inclusion) == 1
    assert split.exclusion[0].text.startswith("strabismus")


def test_sentence_headers() -> None:
    text = (
        "Patients may be eligible for this study if they:\n- are 18 or older\n"
        "Patients will not be eligible for this study if they:\n- are pregnant\n"
    )
    split = split_criteria(text)
    assert _texts(split.inclusion) == ["are 18 or older"]
    assert _texts(split.exclusion) == ["are pregnant"]
    assert split.exclusion_preamble.startswith("Patients will not be eligible")


def test_round_trip_dict() -> None:
    rec = json.loads((DATA / "NCT05631717.json").read_text())
    split = split_criteria(rec["protocolSection"]["eligibilityModule"]["eligibilityCriteria"])
    data = json.loads(json.dumps(split.to_dict()))
    assert CriteriaSplit.from_dict(data) == split


def test_flattened_nci_paragraph_gets_its_headings_back() -> None:
    text = (
        "PATIENT CHARACTERISTICS: Age: 18 and over Performance status: ECOG 0-2 Life expectancy: At least 12 "
        "weeks Hematopoietic: WBC at least 3500/mm3 Hepatic: Bilirubin no greater than 1.5 mg/dL"
    )
    split = split_criteria(text)
    heads = [i.text for i in split.inclusion]
    assert heads[:3] == ["PATIENT CHARACTERISTICS:", "Age:", "Performance status:"]
    assert split.inclusion[1].children[0].text == "18 and over"


def test_leading_paragraph_that_is_a_criterion_is_not_a_preamble() -> None:
    text = "Inclusion Criteria:\nDocumented acute myelogenous leukemia\n- ECOG 0-2\n- Age 18 or older"
    split = split_criteria(text)
    assert split.inclusion_preamble == ""
    assert [i.text for i in split.inclusion][0] == "Documented acute myelogenous leukemia"
