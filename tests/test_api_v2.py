"""In-process HTTP tests of the ClinicalTrials.gov API v2 compatible JSON API under /api/v2."""

from __future__ import annotations

import csv
import io
import json
import zipfile
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from trialfinder.web import Settings, create_app

RECORDINGS = Path(__file__).parent / "data" / "api-recordings"


@pytest.fixture(scope="module")
def client(sample_db_master: Path):
    app = create_app(Settings(db=str(sample_db_master), auto_load_sample=False, warm_up=False))
    with TestClient(app, base_url="http://testserver/api/v2") as c:
        yield c


def _error(r) -> str:
    assert r.status_code == 400, (r.status_code, r.text[:300])
    assert r.headers["content-type"].startswith("text/plain")
    return r.text


# ---------------------------------------------------------------------------------------- /studies


def test_studies_default_page(client: TestClient) -> None:
    r = client.get("/studies")
    assert r.status_code == 200 and r.headers["content-type"] == "application/json"
    body = r.json()
    assert set(body) <= {"studies", "nextPageToken", "totalCount"}
    assert len(body["studies"]) == 10
    assert body["nextPageToken"]
    assert "totalCount" not in body
    assert body["studies"][0]["protocolSection"]["identificationModule"]["nctId"].startswith("NCT")


def test_response_shape_matches_recorded_clinicaltrials_gov(client: TestClient) -> None:
    recorded = json.loads((RECORDINGS / "search_phelan_limit5_20260811.json").read_text())
    ours = client.get("/studies", params={"query.cond": "lupus", "pageSize": 5, "countTotal": "true"}).json()
    assert set(ours) == set(recorded)
    assert type(ours["totalCount"]) is type(recorded["totalCount"])
    assert type(ours["nextPageToken"]) is type(recorded["nextPageToken"])
    rec_study, our_study = recorded["studies"][0], ours["studies"][0]
    assert set(rec_study) <= set(our_study) | {"derivedSection", "hasResults"}
    assert set(rec_study["protocolSection"]) & set(our_study["protocolSection"])


def test_count_total_and_paging_like_a_client(client: TestClient) -> None:
    """What existing clients do: follow nextPageToken until it is absent."""
    params = {"query.cond": "lupus", "countTotal": "true", "pageSize": 7, "fields": "NCTId,BriefTitle"}
    first = client.get("/studies", params=params).json()
    total = first["totalCount"]
    seen = [s["protocolSection"]["identificationModule"]["nctId"] for s in first["studies"]]
    token = first.get("nextPageToken")
    while token:
        page = client.get("/studies", params={**params, "pageToken": token}).json()
        seen += [s["protocolSection"]["identificationModule"]["nctId"] for s in page["studies"]]
        token = page.get("nextPageToken")
    assert len(seen) == len(set(seen)) == total
    big = client.get("/studies", params={"query.cond": "lupus", "pageSize": 1000, "fields": "NCTId"}).json()
    assert sorted(seen) == sorted(s["protocolSection"]["identificationModule"]["nctId"] for s in big["studies"])


def test_page_size_capped_at_1000(client: TestClient) -> None:
    body = client.get("/studies", params={"pageSize": 5000, "fields": "NCTId"}).json()
    assert len(body["studies"]) == 1000
    assert len(client.get("/studies", params={"pageSize": 0}).json()["studies"]) == 10


def test_fields_returns_only_requested(client: TestClient) -> None:
    body = client.get("/studies", params={"query.cond": "lupus nephritis", "fields": "NCTId|BriefTitle|OverallStatus"}
                      ).json()
    for study in body["studies"]:
        assert set(study) == {"protocolSection"}
        assert set(study["protocolSection"]) <= {"identificationModule", "statusModule"}
        assert set(study["protocolSection"]["identificationModule"]) <= {"nctId", "briefTitle"}
    body = client.get("/studies", params={"filter.ids": "NCT05631717",
                                          "fields": "protocolSection.conditionsModule,LocationCity"}).json()
    assert body["studies"][0]["protocolSection"]["conditionsModule"]["conditions"][0] == "Lupus Nephritis"
    assert "fields" in _error(client.get("/studies", params={"fields": "NoSuchField"}))


def test_query_areas_and_filters(client: TestClient) -> None:
    def ids(**params):
        body = client.get("/studies", params={**params, "pageSize": 1000, "fields": "NCTId"}).json()
        return {s["protocolSection"]["identificationModule"]["nctId"] for s in body["studies"]}

    assert "NCT05631717" in ids(**{"query.cond": "lupus nephritis"})
    assert "NCT05631717" in ids(**{"query.cond": "LN"})
    assert "NCT05631717" in ids(**{"query.intr": "interleukin-2"})
    assert "NCT05631717" in ids(**{"query.titles": "umbilical cord"})
    assert "NCT05631717" in ids(**{"query.spons": "Nanjing University"})
    assert "NCT05631717" in ids(**{"query.id": "2022-LCYJ-MS-38"})
    assert "NCT05631717" in ids(**{"query.term": "mesenchymal"})
    assert ids(**{"filter.ids": "NCT05631717,NCT00003906"}) == {"NCT05631717", "NCT00003906"}
    recruiting = ids(**{"query.cond": "lupus", "filter.overallStatus": "RECRUITING"})
    assert "NCT05631717" in recruiting
    assert "NCT05631717" not in ids(**{"query.cond": "lupus", "filter.overallStatus": "COMPLETED"})
    assert ids(**{"query.cond": "lupus", "aggFilters": "status:rec"}) == recruiting
    assert "NCT05631717" in ids(**{"filter.advanced": "AREA[Phase]PHASE3 AND AREA[Condition]lupus"})
    boston = ids(**{"filter.geo": "distance(42.3601,-71.0589,50mi)"})
    assert boston and "NCT05631717" not in boston
    assert ids(**{"query.locn": "Boston"}) & boston


def test_sort(client: TestClient) -> None:
    body = client.get("/studies", params={"sort": "LastUpdatePostDate:desc", "pageSize": 30,
                                          "fields": "LastUpdatePostDate"}).json()
    dates = [s["protocolSection"]["statusModule"]["lastUpdatePostDateStruct"]["date"] for s in body["studies"]
             if "statusModule" in s.get("protocolSection", {})]
    assert dates == sorted(dates, reverse=True)


def test_csv_format(client: TestClient) -> None:
    r = client.get("/studies", params={"query.cond": "lupus", "format": "csv", "countTotal": "true", "pageSize": 5})
    assert r.headers["content-type"].startswith("text/csv")
    assert int(r.headers["x-total-count"]) > 5 and r.headers["x-next-page-token"]
    rows = list(csv.DictReader(io.StringIO(r.text)))
    assert len(rows) == 5 and rows[0]["NCT Number"].startswith("NCT")
    r = client.get("/studies", params={"filter.ids": "NCT05631717", "format": "csv",
                                       "fields": "NCT Number|Study Title"})
    assert r.text.splitlines()[0] == "NCT Number,Study Title"
    assert "fields" in _error(client.get("/studies", params={"format": "csv", "fields": "Nope"}))


@pytest.mark.parametrize(("params", "param"), [
    ({"foo": "1"}, "foo"),
    ({"query.conditions": "x"}, "query.conditions"),
    ({"filter.overallStatus": "RECRUTING"}, "filter.overallStatus"),
    ({"pageToken": "not-a-token"}, "pageToken"),
    ({"filter.geo": "distance(42.36,-71.05,50)"}, "filter.geo"),
    ({"filter.geo": "near(Boston)"}, "filter.geo"),
    ({"pageSize": "ten"}, "pageSize"),
    ({"pageSize": "-1"}, "pageSize"),
    ({"countTotal": "maybe"}, "countTotal"),
    ({"format": "xml"}, "format"),
    ({"sort": "Colour"}, "sort"),
    ({"filter.ids": "NCT123X"}, "filter.ids"),
    ({"filter.advanced": "AREA[Phase"}, "filter.advanced"),
    ({"aggFilters": "phase:9"}, "aggFilters"),
    ({"query.cond": "x" * 2000}, "query.cond"),
])
def test_bad_parameters_are_400_naming_the_parameter(client: TestClient, params: dict, param: str) -> None:
    assert _error(client.get("/studies", params=params)).startswith(param)


def test_page_token_from_another_query_is_rejected(client: TestClient) -> None:
    token = client.get("/studies", params={"query.cond": "lupus", "pageSize": 2}).json()["nextPageToken"]
    assert "pageToken" in _error(client.get("/studies", params={"query.cond": "cancer", "pageToken": token}))


# ----------------------------------------------------------------------------------- single study


def test_single_study(client: TestClient) -> None:
    r = client.get("/studies/NCT05631717")
    assert r.status_code == 200
    study = r.json()
    assert study["protocolSection"]["identificationModule"]["nctId"] == "NCT05631717"
    assert client.get("/studies/nct5631717").json() == study
    part = client.get("/studies/NCT05631717", params={"fields": "NCTId,Condition"}).json()
    assert part == {"protocolSection": {"identificationModule": {"nctId": "NCT05631717"},
                                        "conditionsModule": {"conditions": study["protocolSection"]
                                                             ["conditionsModule"]["conditions"]}}}


def test_single_study_errors_and_alias(client: TestClient) -> None:
    r = client.get("/studies/NCT99999999")
    assert r.status_code == 404 and r.headers["content-type"].startswith("text/plain")
    r = client.get("/studies/NCT00000272", params={"fields": "NCTId"}, follow_redirects=False)
    assert r.status_code == 301
    assert r.headers["location"] == "/api/v2/studies/NCT00000317?fields=NCTId"
    assert _error(client.get("/studies/12345")).startswith("nctId")
    assert _error(client.get("/studies/NCT05631717", params={"bogus": "1"})).startswith("bogus")
    assert _error(client.get("/studies/NCT05631717", params={"format": "fhir.json"})).startswith("format")


def test_single_study_formats(client: TestClient) -> None:
    r = client.get("/studies/NCT05631717", params={"format": "csv"})
    assert r.headers["content-type"].startswith("text/csv") and "NCT05631717" in r.text
    r = client.get("/studies/NCT05631717", params={"format": "ris"})
    assert "TY  - DBASE" in r.text and "UR  - https://clinicaltrials.gov/study/NCT05631717" in r.text
    r = client.get("/studies/NCT05631717", params={"format": "json.zip"})
    with zipfile.ZipFile(io.BytesIO(r.content)) as zf:
        assert json.loads(zf.read("NCT05631717.json"))["protocolSection"]["identificationModule"]["nctId"]


# ------------------------------------------------------------------------------- other endpoints


def test_version(client: TestClient) -> None:
    body = client.get("/version").json()
    assert body["apiVersion"].startswith("2.")
    assert len(body["dataTimestamp"]) == 19 and body["dataTimestamp"][10] == "T"


def test_stats_size(client: TestClient) -> None:
    body = client.get("/stats/size").json()
    assert body["totalStudies"] > 1000
    assert body["largestStudies"][0]["sizeBytes"] >= body["averageSizeBytes"] > 0
    assert sum(r["studiesCount"] for r in body["ranges"]) == body["totalStudies"]


def test_metadata_and_enums(client: TestClient) -> None:
    tree = client.get("/studies/metadata").json()
    names = [n["name"] for n in tree]
    assert "protocolSection" in names and "hasResults" in names
    ps = next(n for n in tree if n["name"] == "protocolSection")
    ident = next(n for n in ps["children"] if n["name"] == "identificationModule")
    assert {"name": "nctId", "piece": "NCTId"}.items() <= next(
        c for c in ident["children"] if c["name"] == "nctId").items()
    assert client.get("/studies/metadata", params={"includeIndexedOnly": "true"}).status_code == 200
    assert _error(client.get("/studies/metadata", params={"includeIndexedOnly": "perhaps"}))
    enums = {e["type"]: e for e in client.get("/studies/enums").json()}
    assert "RECRUITING" in [v["value"] for v in enums["Status"]["values"]]
    assert "OverallStatus" in enums["Status"]["pieces"]
    areas = client.get("/studies/search-areas").json()
    assert any(a["name"] == "ConditionSearch" for a in areas[0]["areas"])


def test_field_values(client: TestClient) -> None:
    stats = client.get("/stats/field/values", params={"fields": "OverallStatus,Phase"}).json()
    by_piece = {s["piece"]: s for s in stats}
    status = {v["value"]: v["studiesCount"] for v in by_piece["OverallStatus"]["topValues"]}
    assert status["RECRUITING"] > 0
    assert by_piece["Phase"]["field"] == "protocolSection.designModule.phases"
    assert client.get("/stats/field/values", params={"types": "BOOLEAN"}).json() == []
    assert _error(client.get("/stats/field/values", params={"fields": "Nope"})).startswith("fields")
    assert _error(client.get("/stats/field/values", params={"types": "COLOUR"})).startswith("types")


def test_openapi_description(client: TestClient) -> None:
    spec = client.get("http://testserver/openapi.json").json()
    paths = spec["paths"]
    for path in ("/api/v2/studies", "/api/v2/studies/{nctId}", "/api/v2/stats/size", "/api/v2/version",
                 "/api/v2/studies/metadata", "/api/v2/stats/field/values"):
        assert path in paths
    names = {p["name"] for p in paths["/api/v2/studies"]["get"]["parameters"]}
    assert {"query.cond", "query.term", "query.intr", "query.locn", "query.titles", "query.outc", "query.spons",
            "query.id", "filter.overallStatus", "filter.geo", "filter.ids", "filter.advanced", "aggFilters",
            "sort", "fields", "pageSize", "pageToken", "countTotal", "format"} <= names
    assert not any(p.startswith("/study") for p in paths)  # pages are not part of the API description


def test_api_errors_never_html(client: TestClient) -> None:
    r = client.get("/nothing-here")
    assert r.status_code == 404 and r.headers["content-type"].startswith("text/plain")
    r = client.post("/studies")
    assert r.status_code == 405
    assert client.get("/studies").headers["access-control-allow-origin"] == "*"
