"""The field-level diff and typed changes (pure functions), on a real record changed by hand."""

from __future__ import annotations

import copy
import json
from pathlib import Path

from trialfinder.history import classify, describe, diff, materiality

DATA = Path(__file__).parent / "data"
SITES = "protocolSection.contactsLocationsModule.locations"


def record() -> dict:
    return json.loads((DATA / "corpus-seed" / "NCT06470191.json").read_text())


def test_an_added_site_is_one_addition_not_a_shifted_list():
    old = record()
    new = copy.deepcopy(old)
    site = {"facility": "Lyon Sud Hospital", "city": "Lyon", "country": "France", "status": "RECRUITING"}
    new["protocolSection"]["contactsLocationsModule"]["locations"].insert(0, site)
    changes = diff(old, new)
    assert [c.to_dict() for c in changes] == [
        {"path": f"{SITES}[Lyon Sud Hospital, Lyon]", "old": None, "new": site, "op": "added"}]
    typed = classify(changes)
    assert [t.kind for t in typed] == ["sites_added"]
    assert describe(typed) == "1 site added: Lyon Sud Hospital (Lyon, France)"


def test_status_enrollment_dates_and_eligibility_are_typed_with_materiality():
    old = record()
    new = copy.deepcopy(old)
    ps = new["protocolSection"]
    ps["statusModule"]["overallStatus"] = "ACTIVE_NOT_RECRUITING"
    ps["statusModule"]["primaryCompletionDateStruct"]["date"] = "2030-01"
    ps["designModule"]["enrollmentInfo"]["count"] = 999
    ps["eligibilityModule"]["minimumAge"] = "21 Years"
    ps["statusModule"]["lastUpdatePostDateStruct"]["date"] = "2024-07-01"
    changes = {c.path: c for c in diff(old, new)}
    status = changes["protocolSection.statusModule.overallStatus"]
    assert (status.old, status.new, status.op) == ("NOT_YET_RECRUITING", "ACTIVE_NOT_RECRUITING", "changed")
    typed = {t.kind: t for t in classify(changes.values())}
    assert typed["status"].materiality == "major"
    assert typed["status"].summary == "Status: Not yet recruiting → Active, not recruiting"
    assert typed["eligibility"].materiality == "major" and "minimum age" in typed["eligibility"].summary
    assert typed["enrollment"].summary.endswith("→ 999")
    old_date = old["protocolSection"]["statusModule"]["primaryCompletionDateStruct"]["date"]
    assert typed["dates"].summary == f"Dates moved: Primary completion date {old_date} → 2030-01"
    assert typed["bookkeeping"].materiality == "none"
    assert "bookkeeping" not in describe(classify(changes.values())).lower()
    assert materiality(classify(changes.values())) == "major"


def test_site_status_change_is_keyed_by_facility_and_city():
    old = record()
    new = copy.deepcopy(old)
    site = new["protocolSection"]["contactsLocationsModule"]["locations"][3]
    site["status"] = "COMPLETED"
    changes = diff(old, new)
    key = f"{site['facility']}, {site['city']}"
    assert [c.path for c in changes] == [f"{SITES}[{key}].status"]
    assert classify(changes)[0].kind == "site_status"


def test_plain_value_lists_are_sets_and_results_posted_is_major():
    old = record()
    new = copy.deepcopy(old)
    new["protocolSection"]["conditionsModule"]["conditions"].append("Lupus Nephritis")
    new["hasResults"] = True
    changes = diff(old, new)
    assert {(c.path, c.old, c.new, c.op) for c in changes} == {
        ("protocolSection.conditionsModule.conditions", None, "Lupus Nephritis", "added"),
        ("hasResults", False, True, "changed")}
    typed = classify(changes)
    assert typed[0].kind == "results_posted" and typed[0].materiality == "major"


def test_identical_records_have_no_changes():
    assert diff(record(), record()) == []
    assert describe(classify([])) == "" and materiality([]) == "none"
