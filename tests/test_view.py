"""The study view reproduces the reference study page (order, wording, values) and degrades cleanly."""

from __future__ import annotations

import copy
import json
import re
from pathlib import Path

import pytest

from trialfinder.model.view import (
    CriteriaSection,
    DesignSection,
    LinesSection,
    LocationsSection,
    StudyView,
    _split,
    render_text,
    study_view,
)

DATA = Path(__file__).parent / "data"
REFERENCE = (DATA / "study-page-NCT05631717.txt").read_text(encoding="utf-8")

# Lines of the reference page that are site chrome or that the API record cannot reproduce: the
# avatar initial "N", the site count "1" (the bundled record has no locations) and a loading spinner.
NOT_FROM_RECORD = {"ClinicalTrials.Veeva", "Menu", "N", "1", "Loading..."}

# Section headings of the reference page, in page order.
REFERENCE_HEADINGS = [
    "Status and phase",
    "Conditions",
    "Treatments",
    "Study type",
    "Funder types",
    "Identifiers",
    "Details and patient eligibility",
    "About",
    "Full description",
    "Enrollment",
    "Sex",
    "Ages",
    "Volunteers",
    "Inclusion criteria",
    "Exclusion criteria",
    "Trial design",
    "Trial contacts and locations",
    "Central trial contact",
]


@pytest.fixture()
def record() -> dict:
    return json.loads((DATA / "NCT05631717.json").read_text(encoding="utf-8"))


@pytest.fixture()
def text(record) -> str:
    return render_text(study_view(record))


def _collapse(s: str) -> str:
    return re.sub(r"\s+", " ", s).strip()


def _reference_lines() -> list[str]:
    """Every content line the reference page shows, up to and including its data-source footer."""
    body = REFERENCE.split("Data sourced from clinicaltrials.gov")[0]
    lines = [ln.strip().lstrip("•").strip() for ln in body.splitlines()]
    return [ln for ln in lines if ln and ln not in NOT_FROM_RECORD] + ["Data sourced from clinicaltrials.gov"]


def _assert_in_order(haystack: str, needles: list[str]) -> None:
    pos = 0
    flat = _collapse(haystack)
    for needle in needles:
        found = flat.find(_collapse(needle), pos)
        assert found >= 0, f"missing (or out of order) after offset {pos}: {needle!r}"
        pos = found + len(_collapse(needle))


def test_reference_headings_are_real_page_lines():
    page_lines = {ln.strip() for ln in REFERENCE.splitlines()}
    assert set(REFERENCE_HEADINGS) <= page_lines


def test_every_reference_line_appears_in_page_order(text):
    lines = _reference_lines()
    assert len(lines) > 50
    _assert_in_order(text, lines)


def test_headings_are_heading_lines_in_reference_order(text):
    out = text.splitlines()
    idx = []
    for heading in REFERENCE_HEADINGS:
        hits = [i for i, ln in enumerate(out[:-1]) if ln == heading and set(out[i + 1]) <= {"-", "="}]
        assert hits, heading
        idx.append(hits[0])
    assert idx == sorted(idx)


def test_key_values(text):
    _assert_in_order(
        text,
        [
            "The Study of Comparing the Efficacy and Safety of Human Umbilical Cord MSCs",
            "Nanjing University",
            "Enrolling",
            "Phase 3",
            "Lupus Nephritis",
            "Systemic Lupus Erythematosus",
            "Biological: Human umbilical cord mesenchymal stem cells",
            "Drug: Interleukin-2",
            "Interventional",
            "Other",
            "NCT05631717",
            "2022-LCYJ-MS-38",
            "40 estimated patients",
            "All",
            "18 to 65 years old",
            "No Healthy Volunteers",
            "Only patients with active lupus nephritis who meet all of the following criteria",
            "SLEDAI-2K score ≥ 6",
            "Patients who met any of the following criteria could not be enrolled in this study:",
            "Pregnant or lactating women.",
            "Treatment",
            "Randomized",
            "Parallel Assignment",
            "None (Open label)",
            "40 participants in 2 patient groups",
            "MSCs group",
            "Experimental group",
            "2 × 10\\^6 cells / kg body weight",
            "IL-2 group",
            "Drug: Interleukin-2",
            "Jun Liang, Doctor",
            "https://clinicaltrials.gov/study/NCT05631717",
        ],
    )


def test_criteria_items_are_bulleted(text):
    assert "  • Pregnant or lactating women." in text
    assert "  • SLEDAI-2K score ≥ 6" in text


def test_view_structure(record):
    view = study_view(record)
    assert isinstance(view, StudyView)
    assert view.nct_id == "NCT05631717"
    assert view.sponsor == "Nanjing University"
    assert view.url == "https://clinicaltrials.gov/study/NCT05631717"
    assert [s.key for s in view.sections][:2] == ["title", "sponsor"]
    headings = view.headings()
    assert [h for h in headings if h in REFERENCE_HEADINGS] == [
        h for h in REFERENCE_HEADINGS if h != "Details and patient eligibility"
    ]
    inc = view.section("inclusion")
    exc = view.section("exclusion")
    assert isinstance(inc, CriteriaSection) and isinstance(exc, CriteriaSection)
    assert len(inc.items) == 7 and len(exc.items) == 8
    assert inc.preamble[0].startswith("Only patients with active lupus nephritis")
    assert exc.preamble == (
        "Patients who met any of the following criteria could not be enrolled in this study:",
    )
    design = view.section("design")
    assert isinstance(design, DesignSection)
    assert [(f.label, f.value) for f in design.facts] == [
        ("Primary purpose", "Treatment"),
        ("Allocation", "Randomized"),
        ("Interventional model", "Parallel Assignment"),
        ("Masking", "None (Open label)"),
    ]
    assert design.summary == "40 participants in 2 patient groups"
    assert [(a.label, a.type, a.treatments) for a in design.arms] == [
        ("MSCs group", "Experimental group", ("Biological: Human umbilical cord mesenchymal stem cells",)),
        ("IL-2 group", "Experimental group", ("Drug: Interleukin-2",)),
    ]
    assert view.section("about").group == "Details and patient eligibility"
    json.dumps(view.to_dict(), ensure_ascii=False)


def test_page_uses_the_one_criteria_splitter(record):
    """The page's criteria are model.criteria's split, the same items matching evaluates."""
    from trialfinder.model.criteria import split_criteria

    text = record["protocolSection"]["eligibilityModule"]["eligibilityCriteria"]
    split = _split(text)
    assert len(split.inclusion) == 7 and len(split.exclusion) == 8
    assert split.inclusion_preamble[0].startswith("Only patients")
    assert [i.text for i in split.inclusion] == [i.text for i in split_criteria(text).inclusion]


def test_splitter_nesting_numbers_and_no_headings():
    split = _split(
        "Inclusion Criteria:\n\n1. Adults\n2. One of:\n\n   * A\n   * B\n\nExclusion Criteria:\n\n- Pregnant\n"
    )
    assert [i.text for i in split.inclusion] == ["Adults", "One of:"]
    assert split.inclusion[0].number == "1"
    assert [c.text for c in split.inclusion[1].children] == ["A", "B"]
    assert split.inclusion[1].children[0].depth == 1
    assert [i.text for i in split.exclusion] == ["Pregnant"]
    plain = _split("Adults over 18 with asthma.\nNo smokers.")
    assert [i.text for i in plain.inclusion] == ["Adults over 18 with asthma.", "No smokers."] and not plain.exclusion


def test_enrollment_actual_and_missing(record):
    rec = copy.deepcopy(record)
    rec["protocolSection"]["designModule"]["enrollmentInfo"] = {"count": 40, "type": "ACTUAL"}
    assert study_view(rec).section("enrollment").lines == ("40 patients",)
    del rec["protocolSection"]["designModule"]["enrollmentInfo"]
    view = study_view(rec)
    assert view.section("enrollment") is None
    assert view.section("design").summary == "2 patient groups"


def test_funders_identifiers_and_sites(record):
    rec = copy.deepcopy(record)
    proto = rec["protocolSection"]
    proto["sponsorCollaboratorsModule"]["collaborators"] = [
        {"name": "A", "class": "INDUSTRY"},
        {"name": "B", "class": "OTHER"},
        {"name": "C", "class": "FED"},
    ]
    proto["identificationModule"]["secondaryIdInfos"] = [{"id": "R01-123", "type": "NIH"}]
    proto["identificationModule"]["nctIdAliases"] = ["NCT00000001"]
    proto["contactsLocationsModule"]["locations"] = [
        {
            "facility": "Nanjing Drum Tower Hospital",
            "city": "Nanjing",
            "state": "Jiangsu",
            "country": "China",
            "status": "RECRUITING",
            "geoPoint": {"lat": 32.06, "lon": 118.78},
        }
    ]
    view = study_view(rec)
    assert view.section("funder_types").lines == ("Other", "Industry", "Other U.S. federal agency")
    assert view.section("identifiers").lines == ("NCT05631717", "2022-LCYJ-MS-38", "R01-123", "NCT00000001")
    locs = view.section("locations")
    assert isinstance(locs, LocationsSection) and locs.site_count == 1
    site = locs.sites[0]
    assert (site.place, site.status, site.geo) == ("Nanjing, Jiangsu, China", "Recruiting", (32.06, 118.78))
    text = render_text(view)
    _assert_in_order(
        text,
        ["Trial contacts and locations", "1 site", "Nanjing Drum Tower Hospital", "Nanjing, Jiangsu, China"],
    )
    sponsors = view.section("sponsors")
    assert [f.value for f in sponsors.facts][:2] == ["Nanjing University (Other)", "A (Industry)"]


def test_arm_treatments_from_interventions_when_arm_lacks_names(record):
    rec = copy.deepcopy(record)
    for arm in rec["protocolSection"]["armsInterventionsModule"]["armGroups"]:
        del arm["interventionNames"]
    arms = study_view(rec).section("design").arms
    assert arms[1].treatments == ("Drug: Interleukin-2",)


def test_outcomes_dates_and_data_as_of(record):
    rec = copy.deepcopy(record)
    proto = rec["protocolSection"]
    proto["outcomesModule"] = {
        "primaryOutcomes": [{"measure": "Complete renal response", "timeFrame": "24 weeks"}],
        "secondaryOutcomes": [{"measure": "SLEDAI-2K change", "timeFrame": "12 weeks", "description": "x"}],
    }
    proto["statusModule"].update(
        {
            "startDateStruct": {"date": "2022-12-01", "type": "ACTUAL"},
            "completionDateStruct": {"date": "2024-12", "type": "ESTIMATED"},
            "lastUpdatePostDateStruct": {"date": "2023-01-05", "type": "ACTUAL"},
        }
    )
    rec["derivedSection"] = {"miscInfoModule": {"versionHolder": "2024-07-01"}}
    view = study_view(rec)
    assert view.data_as_of == "2024-07-01" and view.last_updated == "2023-01-05"
    text = render_text(view)
    _assert_in_order(
        text,
        [
            "Central trial contact",
            "Outcomes",
            "Primary outcomes",
            "Complete renal response",
            "Time frame: 24 weeks",
            "Secondary outcomes",
            "SLEDAI-2K change",
            "Dates",
            "Study start: 2022-12-01",
            "Study completion: 2024-12 (estimated)",
            "Last update posted: 2023-01-05",
            "Sponsor and collaborators",
            "Data as of 2024-07-01",
            "Last updated 2023-01-05",
            "https://clinicaltrials.gov/study/NCT05631717",
        ],
    )


@pytest.mark.parametrize(
    "rec",
    [
        {},
        {"protocolSection": {}},
        {"protocolSection": {"identificationModule": {"nctId": "NCT00000002"}}},
        {
            "protocolSection": {
                "identificationModule": {"nctId": "NCT00000003", "briefTitle": "Bare"},
                "statusModule": {"overallStatus": "COMPLETED"},
                "eligibilityModule": {"sex": "FEMALE"},
                "designModule": {"studyType": "OBSERVATIONAL", "phases": None},
                "armsInterventionsModule": {"armGroups": [{"label": "Cohort"}]},
                "contactsLocationsModule": {"locations": [{}], "centralContacts": [{"role": "CONTACT"}]},
            },
            "derivedSection": None,
        },
    ],
)
def test_sparse_records_render(rec):
    view = study_view(rec)
    text = render_text(view)
    assert isinstance(text, str)
    assert "\x1b" not in text
    for sec in view.sections:
        if isinstance(sec, LinesSection):
            assert all(sec.lines)


def test_section_kind_is_in_the_json_form_and_never_a_constructor_argument(record):
    """Templates and the JSON API dispatch on ``kind``: each section type has its own, every instance
    carries it (``to_dict`` too), and no caller can pass a wrong one."""
    view = study_view(record)
    for sec, as_dict in zip(view.sections, view.to_dict()["sections"], strict=True):
        assert as_dict["kind"] == sec.kind == type(sec).kind
    kinds = {type(s): s.kind for s in view.sections}
    assert len(kinds) > 3 and len(set(kinds.values())) == len(kinds) and "section" not in kinds.values()
    with pytest.raises(TypeError):
        LinesSection(key="k", heading="h", lines=(), kind="text")  # type: ignore[call-arg]


def test_sparse_record_omits_missing_sections():
    view = study_view({"protocolSection": {"identificationModule": {"nctId": "NCT00000002"}}})
    assert [s.key for s in view.sections] == ["title", "identifiers", "source"]
    assert view.title == "NCT00000002"
    text = render_text(view)
    for heading in REFERENCE_HEADINGS[:-1]:
        if heading != "Identifiers":
            assert heading not in text


def test_non_dict_record_is_rejected():
    with pytest.raises(TypeError):
        study_view(["not", "a", "record"])  # type: ignore[arg-type]


def test_plain_text_and_width(text):
    assert "\x1b" not in text
    narrow = render_text(study_view(json.loads((DATA / "NCT05631717.json").read_text())), width=60)
    for line in narrow.splitlines():
        assert len(line) <= 60 or " " not in line.strip(), line
    assert _collapse(narrow).replace("-", "").replace("=", "") == _collapse(text).replace("-", "").replace(
        "=", ""
    )


def test_max_sites_truncates(record):
    rec = copy.deepcopy(record)
    rec["protocolSection"]["contactsLocationsModule"]["locations"] = [
        {"facility": f"Site {i}", "city": "X", "country": "China"} for i in range(10)
    ]
    text = render_text(study_view(rec), max_sites=3)
    assert "10 sites" in text and "Site 2" in text and "Site 3" not in text and "and 7 more" in text


# --- posted results ---------------------------------------------------------------------------------


def _load(nct: str) -> dict:
    return json.loads((DATA / f"{nct}.json").read_text(encoding="utf-8"))


def test_reference_record_has_no_results_sections(record):
    keys = [s.key for s in study_view(record).sections]
    for key in ("participant_flow", "baseline", "outcome_results", "adverse_events", "results_contact",
                "references", "documents", "ipd"):
        assert key not in keys


@pytest.mark.parametrize("nct", ["NCT02369484", "NCT04402008", "NCT02513394"])
def test_results_sections_follow_the_record(nct):
    from trialfinder.model.view_results import RESULTS_GROUP

    rec = _load(nct)
    results = rec["resultsSection"]
    view = study_view(rec)
    keys = [s.key for s in view.sections]
    assert keys.index("participant_flow") < keys.index("baseline") < keys.index("outcome_results") \
        < keys.index("adverse_events") < keys.index("results_contact") < keys.index("source")
    assert all(view.section(k).group == RESULTS_GROUP for k in ("participant_flow", "adverse_events"))

    flow = view.section("participant_flow")
    table = flow.tables[0]
    assert [g.title for g in table.groups] == [g["title"] for g in results["participantFlowModule"]["groups"]]
    started = next(m for m in results["participantFlowModule"]["periods"][0]["milestones"] if m["type"] == "STARTED")
    assert table.rows[0].label == "Started"
    assert list(table.rows[0].cells) == [a["numSubjects"] for a in started["achievements"]]

    measures = results["outcomeMeasuresModule"]["outcomeMeasures"]
    blocks = view.section("outcome_results").measures
    assert [b.title for b in blocks] == [m["title"] for m in measures]
    for block, om in zip(blocks, measures, strict=True):
        assert len(block.analyses) == len(om.get("analyses", []))
        if block.table:
            assert len(block.table.groups) == len(om["groups"])
            assert all(len(r.cells) == len(block.table.groups) for r in block.table.rows if r.kind != "heading")

    ae = view.section("adverse_events")
    raw = results["adverseEventsModule"]
    assert ae.serious_count == len(raw.get("seriousEvents", []))
    assert ae.other_count == len(raw.get("otherEvents", []))
    systems = {e["organSystem"] for e in raw.get("seriousEvents", [])}
    assert {t.organ_system for t in ae.serious} == systems
    assert sum(len(t.rows) for t in ae.serious) == ae.serious_count

    poc = results["moreInfoModule"]["pointOfContact"]
    contact = view.section("results_contact").contact
    assert (contact.name, contact.email) == (poc["title"], poc["email"])
    limits = results["moreInfoModule"].get("limitationsAndCaveats", {}).get("description")
    assert (view.section("limitations") is not None) == bool(limits)
    # the CLI shows the same results
    text = render_text(view)
    assert "Study results" in text and measures[0]["title"][:40] in _collapse(text)


def test_measurement_dispersion_and_analysis_wording():
    from trialfinder.model.view_results import _estimate, _measurement, _rate

    assert _measurement({"value": "59", "lowerLimit": "39", "upperLimit": "82"}) == "59 (39 to 82)"
    assert _measurement({"value": "55.2", "spread": "10.4"}) == "55.2 (± 10.4)"
    assert _measurement({"value": "NA", "upperLimit": "12"}) == "NA (NA to 12)"
    assert _measurement({}) == "NA"
    assert _rate(3, 2841) == "3/2841 (0.11%)" and _rate(0, 0) == "0/0" and _rate(None, 5) == ""
    est = _estimate({"paramType": "Hazard Ratio (HR)", "paramValue": "0.96", "ciPctValue": "95",
                     "ciNumSides": "TWO_SIDED", "ciLowerLimit": "0.81", "ciUpperLimit": "1.14"})
    assert est == "Hazard Ratio (HR) 0.96 (95% CI, 2-Sided: 0.81 to 1.14)"


def test_documents_references_and_ipd_sections():
    from trialfinder.model.view_results import document_url

    rec = _load("NCT02369484")
    view = study_view(rec)
    docs = view.section("documents").documents
    large = rec["documentSection"]["largeDocumentModule"]["largeDocs"]
    assert [d.text for d in docs[:len(large)]] == [d["label"] for d in large]
    assert docs[0].url == document_url("NCT02369484", large[0]["filename"])
    assert docs[0].url.startswith("https://cdn.clinicaltrials.gov/large-docs/84/NCT02369484/")
    refs = view.section("references")
    assert len(refs.references) == len(rec["protocolSection"]["referencesModule"]["references"])
    ipd = view.section("ipd")
    assert ipd.facts[0].label == "Plan to share" and ipd.facts[0].value == "No"


def test_broken_results_module_does_not_raise(record):
    rec = copy.deepcopy(record)
    rec["resultsSection"] = {"participantFlowModule": {"groups": "x", "periods": [{"milestones": [None, {}]}]},
                             "outcomeMeasuresModule": {"outcomeMeasures": [{"title": "T", "classes": 3}]},
                             "adverseEventsModule": {"eventGroups": [{"id": "EG000"}], "seriousEvents": [{}]},
                             "moreInfoModule": {"pointOfContact": "nobody"}}
    view = study_view(rec)
    assert view.section("outcome_results").measures[0].title == "T"
    assert render_text(view)
