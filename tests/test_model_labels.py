"""Enums are in sync with the official OpenAPI file, and every enum value has a human label."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

from trialfinder.model import enums
from trialfinder.model.enums import ENUMS, FIELD_ENUMS
from trialfinder.model.labels import (
    LABELS,
    age_range_text,
    fallback_label,
    label,
    status_badge,
    volunteers_text,
)

ROOT = Path(__file__).resolve().parent.parent
SPEC = Path(__file__).parent / "data" / "ctg-oas-v2.0.5.yaml"


def _load_generator():
    spec = importlib.util.spec_from_file_location("gen_enums", ROOT / "scripts" / "gen_enums.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_enums_module_in_sync_with_yaml():
    pytest.importorskip("yaml")
    gen = _load_generator()
    expected = gen.render_module(gen.load_spec(SPEC), SPEC.name)
    assert Path(enums.__file__).read_text(encoding="utf-8") == expected, "run scripts/gen_enums.py"


def test_enums_contain_the_types_the_app_uses():
    for name in (
        "Status",
        "Phase",
        "StudyType",
        "AgencyClass",
        "DesignAllocation",
        "InterventionalAssignment",
        "DesignMasking",
        "PrimaryPurpose",
        "InterventionType",
        "ArmGroupType",
        "Sex",
        "StandardAge",
        "RecruitmentStatus",
    ):
        assert ENUMS[name], name
    assert ENUMS["Phase"] == ("NA", "EARLY_PHASE1", "PHASE1", "PHASE2", "PHASE3", "PHASE4")
    assert "RECRUITING" in ENUMS["Status"]


def test_field_enums_map_study_paths():
    assert FIELD_ENUMS["protocolSection.statusModule.overallStatus"] == "Status"
    assert FIELD_ENUMS["protocolSection.designModule.phases"] == "Phase"
    assert FIELD_ENUMS["protocolSection.contactsLocationsModule.locations.status"] == "RecruitmentStatus"
    assert FIELD_ENUMS["protocolSection.sponsorCollaboratorsModule.leadSponsor.class"] == "AgencyClass"
    assert FIELD_ENUMS["protocolSection.designModule.designInfo.maskingInfo.masking"] == "DesignMasking"
    assert FIELD_ENUMS["protocolSection.armsInterventionsModule.armGroups.type"] == "ArmGroupType"
    assert set(FIELD_ENUMS.values()) <= set(ENUMS)


@pytest.mark.parametrize("enum_type", sorted(ENUMS))
def test_every_value_has_an_explicit_readable_label(enum_type):
    table = LABELS.get(enum_type, {})
    for value in ENUMS[enum_type]:
        assert value in table, f"{enum_type}.{value} has no explicit label"
        text = label(enum_type, value)
        plain = label(enum_type, value, plain=True)
        for t in (text, plain):
            assert t and "_" not in t, (enum_type, value, t)


@pytest.mark.parametrize(
    ("enum_type", "value", "expected"),
    [
        ("Status", "RECRUITING", "Recruiting"),
        ("Status", "ACTIVE_NOT_RECRUITING", "Active, not recruiting"),
        ("Status", "NOT_YET_RECRUITING", "Not yet recruiting"),
        ("RecruitmentStatus", "RECRUITING", "Recruiting"),
        ("Phase", "PHASE3", "Phase 3"),
        ("Phase", "EARLY_PHASE1", "Early Phase 1"),
        ("Phase", "NA", "Not applicable"),
        ("DesignAllocation", "RANDOMIZED", "Randomized"),
        ("InterventionalAssignment", "PARALLEL", "Parallel Assignment"),
        ("DesignMasking", "NONE", "None (Open label)"),
        ("DesignMasking", "SINGLE", "Single Blind"),
        ("DesignMasking", "QUADRUPLE", "Quadruple Blind"),
        ("AgencyClass", "OTHER", "Other"),
        ("AgencyClass", "NIH", "NIH"),
        ("AgencyClass", "INDUSTRY", "Industry"),
        ("AgencyClass", "FED", "Other U.S. federal agency"),
        ("InterventionType", "BIOLOGICAL", "Biological"),
        ("InterventionType", "DRUG", "Drug"),
        ("ArmGroupType", "EXPERIMENTAL", "Experimental group"),
        ("ArmGroupType", "PLACEBO_COMPARATOR", "Placebo Comparator group"),
        ("Sex", "ALL", "All"),
        ("StandardAge", "CHILD", "Child"),
        ("StandardAge", "ADULT", "Adult"),
        ("StandardAge", "OLDER_ADULT", "Older adult"),
        ("StudyType", "INTERVENTIONAL", "Interventional"),
        ("PrimaryPurpose", "TREATMENT", "Treatment"),
    ],
)
def test_page_wording(enum_type, value, expected):
    assert label(enum_type, value) == expected


def test_plain_arm_label():
    assert label("ArmGroupType", "EXPERIMENTAL", plain=True) == "Experimental"


def test_unknown_values_fall_back_to_title_case():
    assert label("Status", "SOME_NEW_STATUS") == "Some New Status"
    assert label("NoSuchEnum", "FOO_BAR") == "Foo Bar"
    assert label("ArmGroupType", "NEW_KIND") == "New Kind group"
    assert label("Phase", "") == ""
    assert fallback_label("OLDER_ADULT") == "Older Adult"


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("RECRUITING", "Enrolling"),
        ("NOT_YET_RECRUITING", "Not yet enrolling"),
        ("ACTIVE_NOT_RECRUITING", "Active, not recruiting"),
        ("ENROLLING_BY_INVITATION", "Enrolling by invitation"),
        ("COMPLETED", "Completed"),
        ("BRAND_NEW", "Brand New"),
        ("", ""),
    ],
)
def test_status_badge(value, expected):
    assert status_badge(value) == expected


def test_every_status_has_a_badge():
    for value in ENUMS["Status"]:
        assert status_badge(value) and "_" not in status_badge(value)


@pytest.mark.parametrize(
    ("lo", "hi", "expected"),
    [
        ("18 Years", "65 Years", "18 to 65 years old"),
        ("18 Years", None, "18+ years old"),
        (None, "65 Years", "up to 65 years old"),
        (None, None, "All ages"),
        ("", "", "All ages"),
        ("6 Months", "17 Years", "6 months to 17 years old"),
        ("28 Days", "12 Months", "28 days to 12 months old"),
        ("2 Weeks", "8 Weeks", "2 to 8 weeks old"),
        (None, "1 Year", "up to 1 year old"),
        ("1 Month", "1 Year", "1 month to 1 year old"),
        ("N/A", "65 Years", "up to 65 years old"),
        ("18 years", "65 years", "18 to 65 years old"),
    ],
)
def test_age_range_text(lo, hi, expected):
    assert age_range_text(lo, hi) == expected


def test_volunteers_text():
    assert volunteers_text(False) == "No Healthy Volunteers"
    assert volunteers_text(True) == "Accepts Healthy Volunteers"
    assert volunteers_text(None) == ""
