"""Legacy ``<clinical_study>`` XML -> API v2 conversion (``trialfinder.sources.legacy_xml``).

The reference is a real pair: the same study (NCT02513394) as legacy XML and as v2 JSON. They are not
the same *version* of the record -- the XML was downloaded on 2020-08-18, the JSON is the 2023-10-06
version -- so fields that changed in between are listed below as exceptions, each with its reason.
Everything else that both carry must agree.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from trialfinder.model.enums import ENUMS, FIELD_ENUMS
from trialfinder.model.study import normalize
from trialfinder.sources.errors import RecordError
from trialfinder.sources.legacy_xml import convert, convert_date, std_ages, textblock

DATA = Path(__file__).parent / "data"
PAIR_XML = DATA / "NCT02513394.legacy.xml"
PAIR_JSON = DATA / "NCT02513394.json"
LEGACY = DATA / "legacy"

# ------------------------------------------------------------------------------------------ the pair

#: Leaves that differ between the 2020 XML and the 2023 JSON because the record was updated in between.
SNAPSHOT_DIFFERENCES: dict[str, str] = {
    "protocolSection.statusModule.statusVerifiedDate": "re-verified 2023-04",
    "protocolSection.statusModule.primaryCompletionDateStruct.date": "anticipated 2020-09, actual 2020-11",
    "protocolSection.statusModule.primaryCompletionDateStruct.type": "became ACTUAL",
    "protocolSection.statusModule.lastUpdateSubmitDate": "updated 2023",
    "protocolSection.statusModule.lastUpdatePostDateStruct.date": "updated 2023",
    "protocolSection.outcomesModule.primaryOutcomes[Invasive Disease Free Survival (iDFS)].description":
        "outcome rewritten when results were posted (2022)",
    "protocolSection.outcomesModule.primaryOutcomes[Invasive Disease Free Survival (iDFS)].timeFrame":
        "outcome rewritten when results were posted (2022)",
    "protocolSection.contactsLocationsModule.locations[Rapid City Regional Hospital/Regional Cancer Care Institute|57701].state":
        "corrected from North Dakota to South Dakota",
    "protocolSection.contactsLocationsModule.locations[Fiona Stanley Hospital|None].city":
        "'Murdoch, Perth' edited to 'Murdoch'",
    "protocolSection.contactsLocationsModule.locations[Centro Médico Zambrano Hellion|66278].city":
        "'Nuevo León' (a state) edited to 'Monterrey'",
    "derivedSection.miscInfoModule.versionHolder": "download date of each snapshot",
    "hasResults": "results were posted in 2022",
}

#: Leaves that differ for a reason other than the snapshot date.
MAPPING_DIFFERENCES: dict[str, str] = {
    # Legacy XML has only four agency classes (NIH, U.S. Fed, Industry, Other); v2 later reclassified
    # some "Other" sponsors as NETWORK. The XML cannot say more than OTHER.
    "protocolSection.sponsorCollaboratorsModule.collaborators[Austrian Breast & Colorectal Cancer Study Group].class":
        "legacy has no NETWORK class",
    "protocolSection.sponsorCollaboratorsModule.collaborators[NSABP Foundation Inc].class":
        "legacy has no NETWORK class",
}

#: Lists whose items are matched by a key (list order and membership changed between the snapshots).
LIST_KEYS: dict[str, Callable[[dict], str]] = {
    "locations": lambda x: f"{x.get('facility')}|{x.get('zip')}",
    "overallOfficials": lambda x: str(x.get("name")),
    "collaborators": lambda x: str(x.get("name")),
    "armGroups": lambda x: str(x.get("label")),
    "interventions": lambda x: str(x.get("name")),
    "meshes": lambda x: str(x.get("term")),
    "secondaryIdInfos": lambda x: str(x.get("id")),
    "primaryOutcomes": lambda x: str(x.get("measure")),
    "secondaryOutcomes": lambda x: str(x.get("measure")),
    "references": lambda x: str(x.get("pmid") or x.get("citation")),
}

#: Lists where a converted item may have no partner in the JSON (sites added/removed/renamed, a PI
#: replaced, secondary outcomes rewritten), as long as most items do match (checked below).
MAY_BE_UNMATCHED = {
    "protocolSection.contactsLocationsModule.locations",
    "protocolSection.contactsLocationsModule.overallOfficials",
    "protocolSection.outcomesModule.secondaryOutcomes",
}

#: Free text: compared with whitespace normalised, as the brief allows. (The criteria and the summary
#: are also checked byte for byte in a separate test.)
FREE_TEXT = {"briefSummary", "detailedDescription", "eligibilityCriteria", "description", "citation",
             "officialTitle", "briefTitle", "measure", "timeFrame"}


def _compare(conv: Any, ref: Any, path: str, key: str, report: dict[str, list]) -> None:
    if isinstance(conv, dict):
        assert isinstance(ref, dict), f"{path}: object vs {type(ref).__name__}"
        for k, v in conv.items():
            if k in ref:
                _compare(v, ref[k], f"{path}.{k}" if path else k, k, report)
            else:
                report["absent"].append(f"{path}.{k}")
        return
    if isinstance(conv, list) and conv and isinstance(conv[0], dict):
        keyf = LIST_KEYS[key]
        by_key = {keyf(x): x for x in ref}
        for item in conv:
            k = keyf(item)
            if k in by_key:
                _compare(item, by_key[k], f"{path}[{k}]", key, report)
            else:
                report["unmatched"].append((path, k))
        return
    if key in FREE_TEXT and isinstance(conv, str) and isinstance(ref, str):
        same = " ".join(conv.split()) == " ".join(ref.split())
    else:
        same = conv == ref
    report["same" if same else "diff"].append(path)


@pytest.fixture(scope="module")
def pair() -> tuple[dict, dict]:
    return convert(PAIR_XML.read_bytes()), json.loads(PAIR_JSON.read_text())


def test_pair_agrees_on_every_shared_field(pair: tuple[dict, dict]) -> None:
    conv, ref = pair
    report: dict[str, list] = {"same": [], "diff": [], "absent": [], "unmatched": []}
    _compare(conv, ref, "", "", report)

    unexplained = [p for p in report["diff"] if p not in SNAPSHOT_DIFFERENCES and p not in MAPPING_DIFFERENCES]
    assert unexplained == []
    # every listed exception is still needed (a stale list would hide regressions)
    assert set(SNAPSHOT_DIFFERENCES) | set(MAPPING_DIFFERENCES) == set(report["diff"])
    # every field the converter produced is a field the v2 record has too
    assert report["absent"] == []
    assert {p for p, _ in report["unmatched"]} <= MAY_BE_UNMATCHED
    assert len(report["same"]) >= 550, "the comparison must cover the record, not a corner of it"
    # Sites: between the snapshots 204 sites were added and about half the old ones renamed
    # ("Southern Cancer Center" -> "Southern Cancer Center PC - Providence"), so only ~half match by
    # facility name and ZIP; by city and ZIP, the large majority still do.
    locs = conv["protocolSection"]["contactsLocationsModule"]["locations"]
    unmatched_locs = sum(1 for p, _ in report["unmatched"] if p.endswith("locations"))
    assert unmatched_locs < len(locs) * 0.6
    ref_places = {(x.get("city"), x.get("zip")) for x in ref["protocolSection"]["contactsLocationsModule"]["locations"]}
    assert sum((x.get("city"), x.get("zip")) in ref_places for x in locs) >= 0.8 * len(locs)


def test_pair_texts_match_byte_for_byte(pair: tuple[dict, dict]) -> None:
    """The re-flowed criteria and summary equal v2's markdown exactly, not just up to whitespace."""
    conv, ref = pair
    for module, field in (("eligibilityModule", "eligibilityCriteria"), ("descriptionModule", "briefSummary")):
        assert conv["protocolSection"][module][field] == ref["protocolSection"][module][field]


def test_pair_required_fields(pair: tuple[dict, dict]) -> None:
    conv, _ = pair
    status = conv["protocolSection"]["statusModule"]
    assert status["lastUpdatePostDateStruct"] == {"date": "2020-03-09", "type": "ACTUAL"}
    assert status["overallStatus"] == "ACTIVE_NOT_RECRUITING"
    assert status["startDateStruct"] == {"date": "2015-08"}
    assert status["completionDateStruct"] == {"date": "2025-09", "type": "ESTIMATED"}
    assert status["studyFirstPostDateStruct"] == {"date": "2015-07-31", "type": "ESTIMATED"}
    ident = conv["protocolSection"]["identificationModule"]
    assert ident["orgStudyIdInfo"] == {"id": "AFT-05"}
    assert [s["id"] for s in ident["secondaryIdInfos"]] == ["ABCSG 42", "BIG 14-03", "2014-005181-30"]
    elig = conv["protocolSection"]["eligibilityModule"]
    assert elig["minimumAge"] == "18 Years" and "maximumAge" not in elig
    assert elig["healthyVolunteers"] is False
    assert elig["stdAges"] == ["ADULT", "OLDER_ADULT"]
    assert conv["derivedSection"]["conditionBrowseModule"] == {"meshes": [{"term": "Breast Neoplasms"}]}
    assert conv["derivedSection"]["interventionBrowseModule"] == {"meshes": [{"term": "Palbociclib"}]}
    assert conv["hasResults"] is False
    normalize(conv)  # the store's validation accepts it


# ------------------------------------------------------------------------------------------ schema


@pytest.fixture(scope="module")
def schema() -> dict:
    return yaml.safe_load((DATA / "ctg-oas-v2.0.5.yaml").read_text())["components"]["schemas"]


def _schema_paths(conv: Any, node: dict, schemas: dict, path: str, bad: list[str]) -> None:
    while "$ref" in node:
        node = schemas[node["$ref"].rsplit("/", 1)[-1]]
    if isinstance(conv, dict):
        props = node.get("properties", {})
        for k, v in conv.items():
            if k == "geoPointDerived":  # trialfinder's own marker (see ARCHITECTURE.md)
                continue
            if k not in props:
                bad.append(f"{path}.{k}")
            else:
                _schema_paths(v, props[k], schemas, f"{path}.{k}", bad)
    elif isinstance(conv, list):
        for item in conv:
            _schema_paths(item, node.get("items", {}), schemas, path, bad)


def _all_converted() -> list[dict]:
    files = [PAIR_XML, *sorted(LEGACY.glob("*.xml"))]
    return [convert(f.read_bytes()) for f in files]


def test_every_field_is_a_v2_field(schema: dict) -> None:
    bad: list[str] = []
    for rec in _all_converted():
        _schema_paths(rec, schema["Study"], schema, "", bad)
    assert bad == []


def _leaves(rec: Any, path: str = "") -> list[tuple[str, Any]]:
    if isinstance(rec, dict):
        return [x for k, v in rec.items() for x in _leaves(v, f"{path}.{k}" if path else k)]
    if isinstance(rec, list):
        return [x for v in rec for x in _leaves(v, path)]
    return [(path, rec)]


def test_every_enum_value_is_official() -> None:
    seen = set()
    for rec in _all_converted():
        for path, value in _leaves(rec):
            enum_type = FIELD_ENUMS.get(path)
            if enum_type:
                assert value in ENUMS[enum_type], (path, value)
                seen.add(path)
    assert len(seen) >= 20  # many enum fields are exercised


# ------------------------------------------------------------------------------------------ real files


def _conv(name: str) -> dict:
    return convert((LEGACY / f"{name}.xml").read_bytes())


@pytest.mark.parametrize("path", sorted(LEGACY.glob("*.xml")), ids=lambda p: p.stem)
def test_real_files_convert_and_validate(path: Path) -> None:
    rec = convert(path.read_bytes())
    assert rec["protocolSection"]["identificationModule"]["nctId"] == path.stem
    assert rec["protocolSection"]["statusModule"]["lastUpdatePostDateStruct"]["date"]
    n = normalize(rec)
    assert n.nct_id == path.stem and n.last_update


def test_alias_secondary_ids_and_pre_2017_fields() -> None:
    ident = _conv("NCT00000246")["protocolSection"]["identificationModule"]
    assert ident["nctIdAliases"] == ["NCT00000247"]
    assert ident["secondaryIdInfos"] == [{"id": "R01DA008265"}, {"id": "R01-08265-1"}]
    assert ident["organization"] == {"fullName": "Yale University", "class": "OTHER"}


def test_unknown_status_and_central_contacts() -> None:
    rec = _conv("NCT00006068")
    status = rec["protocolSection"]["statusModule"]
    assert status["overallStatus"] == "UNKNOWN"
    assert status["lastKnownStatus"] == "NOT_YET_RECRUITING"
    contacts = rec["protocolSection"]["contactsLocationsModule"]["centralContacts"]
    assert contacts and all(c["role"] == "CONTACT" for c in contacts)
    assert contacts[0]["name"] == "Philip E. Cryer, M.D."
    design = rec["protocolSection"]["designModule"]
    assert design["phases"] == ["NA"]
    assert design["designInfo"]["allocation"] == "NON_RANDOMIZED"


def test_observational_location_investigator() -> None:
    rec = _conv("NCT00461669")
    design = rec["protocolSection"]["designModule"]
    assert design["studyType"] == "OBSERVATIONAL" and design["patientRegistry"] is False
    assert design["designInfo"] == {"observationalModel": "DEFINED_POPULATION", "timePerspective": "OTHER"}
    loc = rec["protocolSection"]["contactsLocationsModule"]["locations"][0]
    assert loc == {"facility": "Rabin Medical Center", "city": "Petah Tikva", "country": "Israel",
                   "contacts": [{"name": "Alon Burg, MD", "role": "PRINCIPAL_INVESTIGATOR"}]}


def test_results_file() -> None:
    rec = _conv("NCT00461812")
    assert rec["hasResults"] is True
    status = rec["protocolSection"]["statusModule"]
    assert status["overallStatus"] == "TERMINATED"
    assert status["whyStopped"].startswith("by sponsor due to failure to recruit")
    assert status["resultsFirstPostDateStruct"] == {"date": "2017-09-20", "type": "ACTUAL"}
    assert status["primaryCompletionDateStruct"] == {"date": "2010-01-19", "type": "ACTUAL"}
    assert "resultsSection" not in rec  # results are not converted (documented)


def test_expanded_access() -> None:
    rec = _conv("NCT00493532")
    assert rec["protocolSection"]["designModule"]["studyType"] == "EXPANDED_ACCESS"
    assert rec["protocolSection"]["statusModule"]["overallStatus"] == "NO_LONGER_AVAILABLE"
    crit = rec["protocolSection"]["eligibilityModule"]["eligibilityCriteria"]
    assert "* \\<=80 years of age;" in crit  # "<" escaped as v2 does
    assert rec["protocolSection"]["eligibilityModule"]["maximumAge"] == "80 Years"


def test_patient_registry() -> None:
    design = _conv("NCT00499941")["protocolSection"]["designModule"]
    assert design["studyType"] == "OBSERVATIONAL" and design["patientRegistry"] is True


def test_ipd_and_responsible_party() -> None:
    rec = _conv("NCT00005540")
    party = rec["protocolSection"]["sponsorCollaboratorsModule"]["responsibleParty"]
    assert party == {"type": "PRINCIPAL_INVESTIGATOR", "investigatorFullName": "Wendy Mack",
                     "investigatorTitle": "Professor", "investigatorAffiliation": "University of Southern California"}
    assert rec["protocolSection"]["ipdSharingStatementModule"]["ipdSharing"] in ENUMS["IpdSharing"]
    assert rec["protocolSection"]["oversightModule"] == {
        "oversightHasDmc": False, "isFdaRegulatedDrug": False, "isFdaRegulatedDevice": False}


# ------------------------------------------------------------------------------------------ synthetic


def _study(body: str, nct: str = "NCT01234567") -> bytes:
    return f"""<?xml version="1.0" encoding="UTF-8"?>
<clinical_study>
  <id_info><org_study_id>X-1</org_study_id><nct_id>{nct}</nct_id></id_info>
  <brief_title>T</brief_title>
  <last_update_posted type="Actual">May 5, 2021</last_update_posted>
  {body}
</clinical_study>""".encode()


@pytest.mark.parametrize(("xml", "path", "expected"), [
    ("<overall_status>Recruiting</overall_status>", "statusModule.overallStatus", "RECRUITING"),
    ("<overall_status>Active, not recruiting</overall_status>", "statusModule.overallStatus",
     "ACTIVE_NOT_RECRUITING"),
    ("<overall_status>Enrolling by invitation</overall_status>", "statusModule.overallStatus",
     "ENROLLING_BY_INVITATION"),
    ("<phase>Phase 1/Phase 2</phase>", "designModule.phases", ["PHASE1", "PHASE2"]),
    ("<phase>N/A</phase>", "designModule.phases", ["NA"]),
    ("<phase>Early Phase 1</phase>", "designModule.phases", ["EARLY_PHASE1"]),
    ("<study_type>Interventional</study_type>", "designModule.studyType", "INTERVENTIONAL"),
    ("<study_design_info><allocation>Randomized</allocation><intervention_model>Parallel Assignment"
     "</intervention_model><primary_purpose>Supportive Care</primary_purpose><masking>None (Open Label)"
     "</masking></study_design_info>", "designModule.designInfo",
     {"allocation": "RANDOMIZED", "interventionModel": "PARALLEL", "primaryPurpose": "SUPPORTIVE_CARE",
      "maskingInfo": {"masking": "NONE"}}),
    ("<study_design_info><masking>Triple (Participant, Care Provider, Outcomes Assessor)</masking>"
     "</study_design_info>", "designModule.designInfo.maskingInfo",
     {"masking": "TRIPLE", "whoMasked": ["PARTICIPANT", "CARE_PROVIDER", "OUTCOMES_ASSESSOR"]}),
    ("<study_design_info><primary_purpose>Educational/Counseling/Training</primary_purpose>"
     "</study_design_info>", "designModule.designInfo.primaryPurpose", "ECT"),
    ("<sponsors><lead_sponsor><agency>VA</agency><agency_class>U.S. Fed</agency_class></lead_sponsor>"
     "<collaborator><agency>NCI</agency><agency_class>NIH</agency_class></collaborator></sponsors>",
     "sponsorCollaboratorsModule", {"leadSponsor": {"name": "VA", "class": "FED"},
                                    "collaborators": [{"name": "NCI", "class": "NIH"}]}),
    ("<eligibility><gender>Both</gender><minimum_age>6 Months</minimum_age><maximum_age>17 Years"
     "</maximum_age><healthy_volunteers>Accepts Healthy Volunteers</healthy_volunteers></eligibility>",
     "eligibilityModule", {"sex": "ALL", "minimumAge": "6 Months", "maximumAge": "17 Years",
                           "healthyVolunteers": True, "stdAges": ["CHILD"]}),
    ("<start_date>March 2016</start_date>", "statusModule.startDateStruct", {"date": "2016-03"}),
    ('<completion_date type="Anticipated">March 5, 2016</completion_date>', "statusModule.completionDateStruct",
     {"date": "2016-03-05", "type": "ESTIMATED"}),
    ("<enrollment type=\"Anticipated\">120</enrollment>", "designModule.enrollmentInfo",
     {"count": 120, "type": "ESTIMATED"}),
    ("<arm_group><arm_group_label>P</arm_group_label><arm_group_type>Placebo Comparator</arm_group_type>"
     "</arm_group><intervention><intervention_type>Dietary Supplement</intervention_type>"
     "<intervention_name>Fish oil</intervention_name><arm_group_label>P</arm_group_label>"
     "<other_name>Omega-3</other_name></intervention>", "armsInterventionsModule",
     {"armGroups": [{"label": "P", "type": "PLACEBO_COMPARATOR", "interventionNames": ["Dietary Supplement: Fish oil"]}],
      "interventions": [{"type": "DIETARY_SUPPLEMENT", "name": "Fish oil", "armGroupLabels": ["P"],
                         "otherNames": ["Omega-3"]}]}),
    ("<location><facility><name>Site</name><address><city>Boston</city><state>Massachusetts</state>"
     "<zip>02115</zip><country>United States</country></address></facility><status>Recruiting</status>"
     "<contact><last_name>Ann Lee</last_name><phone>555</phone><email>a@b.org</email></contact>"
     "<investigator><last_name>Bo Chu</last_name><role>Sub-Investigator</role></investigator></location>",
     "contactsLocationsModule.locations",
     [{"facility": "Site", "status": "RECRUITING", "city": "Boston", "state": "Massachusetts", "zip": "02115",
       "country": "United States", "contacts": [
           {"name": "Ann Lee", "role": "CONTACT", "phone": "555", "email": "a@b.org"},
           {"name": "Bo Chu", "role": "SUB_INVESTIGATOR"}]}]),
    ("<overall_official><last_name>Jo Doe, MD</last_name><role>Study Chair</role><affiliation>U</affiliation>"
     "</overall_official>", "contactsLocationsModule.overallOfficials",
     [{"name": "Jo Doe, MD", "affiliation": "U", "role": "STUDY_CHAIR"}]),
    ("<reference><citation>A. 2001.</citation><PMID>123</PMID></reference><results_reference>"
     "<citation>B.</citation><PMID>456</PMID></results_reference><link><url>http://x.org</url>"
     "<description>Site</description></link>", "referencesModule",
     {"references": [{"pmid": "123", "type": "BACKGROUND", "citation": "A. 2001."},
                     {"pmid": "456", "type": "RESULT", "citation": "B."}],
      "seeAlsoLinks": [{"label": "Site", "url": "http://x.org"}]}),
    ("<oversight_info><has_dmc>Yes</has_dmc><is_fda_regulated_drug>No</is_fda_regulated_drug></oversight_info>",
     "oversightModule", {"oversightHasDmc": True, "isFdaRegulatedDrug": False}),
    ("<patient_data><sharing_ipd>Yes</sharing_ipd><ipd_info_type>Study Protocol</ipd_info_type>"
     "<ipd_info_type>Statistical Analysis Plan (SAP)</ipd_info_type></patient_data>",
     "ipdSharingStatementModule", {"ipdSharing": "YES", "infoTypes": ["STUDY_PROTOCOL", "SAP"]}),
])
def test_mapping(xml: str, path: str, expected: Any) -> None:
    node: Any = convert(_study(xml))["protocolSection"]
    for key in path.split("."):
        node = node[key]
    assert node == expected


def test_an_enrollment_that_is_no_number_is_left_out() -> None:
    """"²" passes str.isdigit but not int(): the record converts, without an enrollment count."""
    design = convert(_study('<enrollment type="Anticipated">\u00b2</enrollment>'))["protocolSection"].get(
        "designModule", {})
    assert "enrollmentInfo" not in design


def test_ids_contacts_and_derived() -> None:
    rec = convert(_study(
        "<overall_contact><last_name>C One</last_name><phone>1</phone><phone_ext>2</phone_ext></overall_contact>"
        "<overall_contact_backup><last_name>C Two</last_name><email>c@d.org</email></overall_contact_backup>"
        "<condition_browse><mesh_term>Asthma</mesh_term></condition_browse>"
        "<removed_countries><country>Peru</country></removed_countries>"
        "<required_header><download_date>ClinicalTrials.gov processed this data on May 6, 2021"
        "</download_date></required_header>"))
    cl = rec["protocolSection"]["contactsLocationsModule"]["centralContacts"]
    assert cl == [{"name": "C One", "role": "CONTACT", "phone": "1", "phoneExt": "2"},
                  {"name": "C Two", "role": "CONTACT", "email": "c@d.org"}]
    assert rec["derivedSection"] == {
        "miscInfoModule": {"versionHolder": "2021-05-06", "removedCountries": ["Peru"]},
        "conditionBrowseModule": {"meshes": [{"term": "Asthma"}]},
    }
    assert rec["hasResults"] is False


def test_last_update_always_set() -> None:
    """The store upserts by lastUpdatePostDateStruct, so a substitute is used when the XML lacks it."""
    xml = b"""<clinical_study><id_info><nct_id>NCT00000001</nct_id></id_info>
      <lastchanged_date>June 3, 2016</lastchanged_date></clinical_study>"""
    status = convert(xml)["protocolSection"]["statusModule"]
    assert status["lastUpdatePostDateStruct"] == {"date": "2016-06-03"}
    assert status["lastUpdateSubmitDate"] == "2016-06-03"


def test_pre_2017_study_design_string() -> None:
    """Older dumps (e.g. TREC 2017-2019) carry the design as one "Key: Value, ..." string."""
    xml = b"""<clinical_study><id_info><nct_id>NCT00000001</nct_id></id_info>
      <lastchanged_date>June 3, 2016</lastchanged_date><study_type>Interventional</study_type>
      <study_design>Allocation: Randomized, Endpoint Classification: Safety/Efficacy Study, Intervention Model:
      Parallel Assignment, Masking: Double Blind (Subject, Caregiver, Investigator, Outcomes Assessor),
      Primary Purpose: Treatment</study_design><eligibility><gender>Both</gender></eligibility></clinical_study>"""
    rec = convert(xml)["protocolSection"]
    assert rec["designModule"]["designInfo"] == {
        "allocation": "RANDOMIZED", "interventionModel": "PARALLEL", "primaryPurpose": "TREATMENT",
        "maskingInfo": {"masking": "DOUBLE",
                        "whoMasked": ["PARTICIPANT", "CARE_PROVIDER", "INVESTIGATOR", "OUTCOMES_ASSESSOR"]}}
    assert rec["eligibilityModule"]["sex"] == "ALL"


def test_unknown_enum_values_are_dropped_not_passed_through() -> None:
    rec = convert(_study("<overall_status>Sort of recruiting</overall_status><phase>Phase 9</phase>"))
    assert "overallStatus" not in rec["protocolSection"]["statusModule"]
    assert "phases" not in rec["protocolSection"].get("designModule", {})
    normalize(rec)


# ------------------------------------------------------------------------------------------ malformed


@pytest.mark.parametrize(("data", "reason"), [
    (b"", "empty document"),
    (b"this is not xml", "not well-formed XML"),
    (b"<clinical_study><id_info><nct_id>NCT00000001</nct_id></id_info>", "not well-formed XML"),
    (b'{"protocolSection": {}}', "not well-formed XML"),
    (b"<study><nct_id>NCT00000001</nct_id></study>", "root element is <study>"),
    (b"<clinical_study><brief_title>x</brief_title></clinical_study>", "missing <id_info>/<nct_id>"),
    (b"<clinical_study><id_info><nct_id>NCT123</nct_id></id_info></clinical_study>", "invalid NCT id 'NCT123'"),
    (b"<clinical_study><id_info><nct_id>NCT00000001</nct_id></id_info></clinical_study>",
     "no usable last-update date"),
])
def test_malformed_input_raises_record_error(data: bytes, reason: str) -> None:
    with pytest.raises(RecordError) as info:
        convert(data)
    assert reason in info.value.reason
    assert isinstance(info.value, ValueError)


def test_record_error_carries_nct_id_when_known() -> None:
    with pytest.raises(RecordError) as info:
        convert(b"<clinical_study><id_info><nct_id>NCT00000001</nct_id></id_info></clinical_study>")
    assert info.value.nct_id == "NCT00000001"
    with pytest.raises(RecordError) as info:
        convert(b"<clinical_study><id_info><nct_id>NCT00000002</nct_id></id_info><bad></clinical_study>")
    assert info.value.nct_id == "NCT00000002"


def test_non_bytes_input() -> None:
    with pytest.raises(RecordError, match="expected XML bytes"):
        convert(42)  # type: ignore[arg-type]


def test_record_error_is_the_model_class() -> None:
    from trialfinder.model.study import RecordError as ModelRecordError

    assert RecordError is ModelRecordError


# ------------------------------------------------------------------------------------------ helpers


@pytest.mark.parametrize(("text", "expected"), [
    ("March 2016", "2016-03"), ("March 5, 2016", "2016-03-05"), ("Sept 2001", "2001-09"), ("Sep 2001", "2001-09"),
    ("2016-03-05", "2016-03-05"), ("", None), (None, None), ("soon", None),
])
def test_convert_date(text: str | None, expected: str | None) -> None:
    assert convert_date(text) == expected


@pytest.mark.parametrize(("lo", "hi", "expected"), [
    ("18 Years", None, ["ADULT", "OLDER_ADULT"]), (None, None, ["CHILD", "ADULT", "OLDER_ADULT"]),
    (None, "17 Years", ["CHILD"]), ("65 Years", None, ["OLDER_ADULT"]), ("18 Years", "64 Years", ["ADULT"]),
    ("6 Months", "18 Years", ["CHILD", "ADULT"]), ("12 Years", "70 Years", ["CHILD", "ADULT", "OLDER_ADULT"]),
])
def test_std_ages(lo: str | None, hi: str | None, expected: list[str]) -> None:
    assert std_ages(lo, hi) == expected


def test_textblock_nested_and_numbered_lists() -> None:
    text = """
        Inclusion Criteria:

          1. Adults with a diagnosis that is
             confirmed by biopsy

          2. Laboratory values:

               -  Hemoglobin &gt;= 9 g/dL

               -  Platelets [x] 100,000

        Exclusion Criteria:

          -  Pregnancy
"""
    text = text.replace("&gt;", ">")
    assert textblock(text) == (
        "Inclusion Criteria:\n\n"
        "1. Adults with a diagnosis that is confirmed by biopsy\n"
        "2. Laboratory values:\n"
        "   * Hemoglobin \\>= 9 g/dL\n"
        "   * Platelets \\[x\\] 100,000\n\n"
        "Exclusion Criteria:\n\n"
        "* Pregnancy"
    )


def test_textblock_crlf_and_paragraphs() -> None:
    text = "\n      Primary:\r\n\r\n      To compare A\r\n      with B.\r\n\r\n        -  first\r\n\r\n        -  second\r\n    "
    assert textblock(text) == "Primary:\n\nTo compare A with B.\n\n* first\n* second"


def test_textblock_wrapped_dash_is_not_an_item() -> None:
    """A wrapped line that happens to start with "- " continues the item; "-  " (two spaces) starts one."""
    text = "\n  -  stage II\n     - III disease\n  -  next\n"
    assert textblock(text) == "* stage II - III disease\n* next"


def test_textblock_escapes_markdown() -> None:
    assert textblock("\n  a*b & c|d ~e^f \\ g\n") == "a\\*b \\& c\\|d \\~e\\^f \\\\ g"
    assert textblock("") is None and textblock("\n   \n") is None


# ------------------------------------------------------------------------------------------ geocoding


def test_geocoded_locations_match_v2_geopoints(pair: tuple[dict, dict]) -> None:
    from trialfinder.sources.geocode import Gazetteer

    conv = convert(PAIR_XML.read_bytes(), geocoder=Gazetteer())
    _, ref = pair
    ref_points = {(x["city"], x.get("state"), x["country"]): x.get("geoPoint")
                  for x in ref["protocolSection"]["contactsLocationsModule"]["locations"]}
    locs = conv["protocolSection"]["contactsLocationsModule"]["locations"]
    geocoded = [x for x in locs if "geoPoint" in x]
    assert len(geocoded) >= 0.95 * len(locs)
    assert all(x["geoPointDerived"] == "city-centroid" for x in geocoded)
    close = total = 0
    for x in geocoded:
        ref_pt = ref_points.get((x["city"], x.get("state"), x["country"]))
        if ref_pt:
            total += 1
            km = 111 * math.dist((x["geoPoint"]["lat"], x["geoPoint"]["lon"]), (ref_pt["lat"], ref_pt["lon"]))
            close += km < 10
    assert total > 200 and close >= 0.97 * total
    normalize(conv)


def test_without_geocoder_no_points(pair: tuple[dict, dict]) -> None:
    conv, _ = pair
    assert not any("geoPoint" in x for x in conv["protocolSection"]["contactsLocationsModule"]["locations"])
