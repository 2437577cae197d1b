"""In-process HTTP tests of the web pages: find trials, results, study page, locations, conditions."""

from __future__ import annotations

import csv
import io
import re
import xml.etree.ElementTree as ET
from pathlib import Path
from urllib.parse import parse_qsl, urlsplit

import pytest
from fastapi.testclient import TestClient

from trialfinder.web import Settings, create_app

REFERENCE = Path(__file__).parent / "data" / "study-page-NCT05631717.txt"
# Section headings of the reference study page, in page order.
REFERENCE_HEADINGS = [
    "Status and phase", "Conditions", "Treatments", "Study type", "Funder types", "Identifiers",
    "Details and patient eligibility", "About", "Full description", "Enrollment", "Sex", "Ages",
    "Volunteers", "Inclusion criteria", "Exclusion criteria", "Trial design", "Trial contacts and locations",
    "Central trial contact",
]
SECURITY_HEADERS = ("content-security-policy", "x-content-type-options", "x-frame-options", "referrer-policy")


@pytest.fixture(scope="module")
def client(sample_db_master: Path):
    app = create_app(Settings(db=str(sample_db_master), auto_load_sample=False, warm_up=False))
    with TestClient(app) as c:
        yield c


def _text(html: str) -> str:
    """Visible text of a page, roughly: tags removed, entities for < > & decoded, whitespace collapsed."""
    html = re.sub(r"<(script|style)\b.*?</\1>", " ", html, flags=re.S)
    text = re.sub(r"<[^>]+>", " ", html)
    text = text.replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&").replace("&#39;", "'")
    text = text.replace("&#34;", '"').replace("&quot;", '"')
    return re.sub(r"\s+", " ", text)


def _links(html: str) -> list[str]:
    return [h.replace("&amp;", "&") for h in re.findall(r'href="([^"]+)"', html)]


# ------------------------------------------------------------------------------------------- home


def test_home_has_labelled_search_form(client: TestClient) -> None:
    r = client.get("/")
    assert r.status_code == 200
    html = r.text
    assert "<title>Find clinical trials" in html
    for name in ("cond", "intr", "near", "dist", "recruiting"):
        assert f'name="{name}"' in html
        assert f'<label for="f-{name}"' in html, f"field {name} has no label"
    assert 'href="/advanced"' in html
    assert 'name="viewport"' in html and 'lang="en"' in html
    for header in SECURITY_HEADERS:
        assert header in r.headers


def test_home_as_json(client: TestClient) -> None:
    for r in (client.get("/index.json"), client.get("/", headers={"Accept": "application/json"})):
        assert r.status_code == 200
        assert r.headers["content-type"].startswith("application/json")
        data = r.json()
        assert data["studies"] > 1000 and data["recruiting"] > 0


def test_advanced_search_offers_every_filter(client: TestClient) -> None:
    html = client.get("/advanced").text
    for name in ("cond", "intr", "term", "titles", "outc", "spons", "id", "locn", "near", "dist", "country",
                 "state", "city", "status", "recruiting", "age", "healthy", "sex", "agegroup", "phase", "type",
                 "funder", "itype", "results", "start_from", "start_to", "posted_from", "updated_to",
                 "advanced", "sort", "size", "exact"):
        assert f'name="{name}"' in html, name
    assert "Essie expression" in html
    assert client.get("/advanced.json").json()["action"] == "/search"


# ---------------------------------------------------------------------------------------- results


def test_search_lupus_nephritis(client: TestClient) -> None:
    r = client.get("/search", params={"cond": "lupus nephritis"})
    assert r.status_code == 200
    html = r.text
    assert "NCT05631717" in html
    assert re.search(r"\d+ stud(y|ies)", _text(html))
    text = _text(html)
    assert "Filter results" in text and "Recruitment status" in text
    assert "Matched:" in text
    assert "Sponsor:" in text and "Nanjing University" in text


def test_search_synonym_match_is_explained(client: TestClient) -> None:
    data = client.get("/search.json", params={"cond": "LN"}).json()
    hit = next(s for s in data["studies"] if s["nctId"] == "NCT05631717")
    assert hit["matched"], hit
    assert data["expansions"].get("cond")


def test_recruiting_switch_and_facets(client: TestClient) -> None:
    data = client.get("/search.json", params={"cond": "lupus", "recruiting": "1"}).json()
    assert data["studies"]
    assert all(s["status"] == "RECRUITING" for s in data["studies"])
    everything = client.get("/search.json", params={"cond": "lupus"}).json()
    assert everything["totalCount"] >= data["totalCount"]
    status = {f["value"]: f["count"] for f in everything["facets"]["status"]}
    assert status.get("RECRUITING") == data["totalCount"]


def test_facet_links_toggle_filters(client: TestClient) -> None:
    html = client.get("/search", params={"cond": "cancer"}).text
    facet_links = [h for h in _links(html) if h.startswith("/search?") and "phase=" in h]
    assert facet_links
    target = facet_links[0]
    phase = dict(parse_qsl(urlsplit(target).query))["phase"]
    filtered = client.get(target.replace("/search?", "/search.json?")).json()
    assert filtered["studies"]
    assert all(phase in s["phases"] for s in filtered["studies"])
    # the same link on the filtered page removes the filter again
    html2 = client.get(target).text
    assert "Remove filter" in html2


def test_paging_with_next_link(client: TestClient) -> None:
    first = client.get("/search.json", params={"cond": "cancer", "size": "10"}).json()
    assert first["links"]["next"]
    second = client.get(first["links"]["next"].replace("/search?", "/search.json?")).json()
    ids1 = {s["nctId"] for s in first["studies"]}
    ids2 = {s["nctId"] for s in second["studies"]}
    assert ids2 and not ids1 & ids2
    html = client.get(first["links"]["next"]).text
    assert "showing 11–20" in _text(html)


def test_sorting(client: TestClient) -> None:
    data = client.get("/search.json", params={"cond": "cancer", "sort": "newest", "size": "50"}).json()
    assert len(data["studies"]) > 5
    bad = client.get("/search", params={"cond": "cancer", "sort": "sideways"})
    assert bad.status_code == 400
    assert "sort" in _text(bad.text)


def test_search_errors_are_shown_not_raised(client: TestClient) -> None:
    r = client.get("/search", params={"advanced": "AREA[Phase"})
    assert r.status_code == 400
    assert 'role="alert"' in r.text and "advanced" in _text(r.text)
    r = client.get("/search.json", params={"near": "Xyzzyville Nowhere"})
    assert r.status_code == 400 and "near" in r.json()["error"]


def test_near_search_lists_distance_and_map(client: TestClient) -> None:
    r = client.get("/search", params={"near": "Boston, MA", "dist": "100mi"})
    assert r.status_code == 200
    html = r.text
    assert 'id="map-data"' in html and "/static/leaflet/leaflet.js" in html
    data = client.get("/search.json", params={"near": "Boston, MA", "dist": "100mi"}).json()
    assert data["studies"]
    dists = [s["nearestSite"]["distanceKm"] for s in data["studies"]]
    assert all(d is not None and d <= 100 * 1.61 for d in dists)
    assert dists == sorted(dists)  # nearest first by default for a place-only search
    assert "Nearest site:" in _text(html) and " mi (" in html


def test_exports(client: TestClient) -> None:
    params = {"cond": "lupus nephritis"}
    r = client.get("/search.csv", params=params)
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(r.text)))
    assert any(row["NCT Number"] == "NCT05631717" for row in rows)
    assert {"Study Title", "Study Status", "Conditions", "Nearest Site", "Matched"} <= set(rows[0])
    r = client.get("/search.ris", params=params)
    assert r.status_code == 200 and "TY  - DBASE" in r.text and "ER  - " in r.text
    assert "NCT05631717" in r.text
    r = client.get("/search.json", params={**params, "export": "1"})
    body = r.json()
    assert body["studies"] and "protocolSection" in body["studies"][0]
    r = client.get("/search.rss", params=params)
    assert r.headers["content-type"].startswith("application/rss+xml")
    root = ET.fromstring(r.content)
    items = root.findall("./channel/item")
    assert items and any("NCT05631717" in (i.findtext("title") or "") for i in items)
    assert all(i.findtext("link", "").startswith("http") for i in items)


def test_unknown_page_format_is_404(client: TestClient) -> None:
    assert client.get("/conditions.csv").status_code == 404


# ------------------------------------------------------------------------------------------ study


def _without_toc(html: str) -> str:
    """The page without its "On this page" list, which repeats every heading in order."""
    stripped, n = re.subn(r'<nav class="toc".*?</nav>', " ", html, count=1, flags=re.S)
    assert n == 1, "the study page has an On this page list"
    return stripped


def test_reference_study_page_sections_in_order(client: TestClient) -> None:
    r = client.get("/study/NCT05631717")
    assert r.status_code == 200
    html = _without_toc(r.text)
    assert len(r.content) < 300_000
    text = _text(html)
    pos = 0
    for heading in REFERENCE_HEADINGS:
        found = text.find(heading, pos)
        assert found >= 0, f"section {heading!r} missing or out of order"
        pos = found + len(heading)
    for value in ("Enrolling", "Phase 3", "Lupus Nephritis", "Biological: Human umbilical cord mesenchymal stem cells",
                  "2022-LCYJ-MS-38", "40 estimated patients", "18 to 65 years old", "No Healthy Volunteers",
                  "SLEDAI-2K score ≥ 6", "Pregnant or lactating women.", "40 participants in 2 patient groups",
                  "MSCs group", "Experimental group", "Jun Liang, Doctor", "None (Open label)"):
        assert value in text, value
    assert "<title>The Study of Comparing" in html and "(NCT05631717)" in html
    assert 'href="https://clinicaltrials.gov/study/NCT05631717"' in html
    assert re.search(r"Last updated .* data as of", text)
    # inclusion and exclusion criteria are separate lists
    inc = html.index('id="h-inclusion"')
    exc = html.index('id="h-exclusion"')
    assert html.count('<ul class="criteria">', inc, exc) == 1
    assert html.count('<ul class="criteria">', exc) == 1


def test_reference_page_text_present(client: TestClient) -> None:
    """Every content line of the reference page (except site chrome and the map placeholder) is on ours."""
    text = _text(_without_toc(client.get("/study/NCT05631717").text)).replace("10\\^6", "10^6")
    reference = REFERENCE.read_text(encoding="utf-8").split("Data sourced from clinicaltrials.gov")[0]
    skip = {"ClinicalTrials.Veeva", "Menu", "N", "1", "Loading..."}
    for line in reference.splitlines():
        line = line.strip().lstrip("•").strip().replace("10\\^6", "10^6")
        if line and line not in skip:
            assert re.sub(r"\s+", " ", line) in text, line


def test_study_with_sites_has_map_and_site_status(client: TestClient) -> None:
    r = client.get("/study/NCT06471972")
    assert r.status_code == 200
    html = r.text
    assert 'id="study-map"' in html and 'id="map-data"' in html
    assert html.count('<li class="site">') >= 1
    assert 'class="badge">' in html  # each site's own status
    assert "/static/leaflet/leaflet.css" in html


def test_long_site_lists_are_capped(client: TestClient) -> None:
    html = client.get("/study/NCT00003906").text
    assert html.count('<li class="site">') == 100
    assert "Show all 516 sites" in html
    assert len(html.encode()) < 300_000
    assert client.get("/study/NCT00003906?sites=all").text.count('<li class="site">') == 516


def test_study_ids_redirect_and_404(client: TestClient) -> None:
    r = client.get("/study/NCT00000272", follow_redirects=False)  # an alias id
    assert r.status_code == 301 and r.headers["location"] == "/study/NCT00000317"
    r = client.get("/study/nct5631717", follow_redirects=False)
    assert r.status_code == 301 and r.headers["location"] == "/study/NCT05631717"
    r = client.get("/study/NCT99999999")
    assert r.status_code == 404 and "NCT99999999" in r.text
    assert client.get("/study/not-an-id").status_code == 404
    assert client.get("/study/NCT99999999.json").json()["status"] == 404


def test_study_as_json(client: TestClient) -> None:
    data = client.get("/study/NCT05631717.json").json()
    assert data["record"]["protocolSection"]["identificationModule"]["nctId"] == "NCT05631717"
    keys = [s["key"] for s in data["study"]["sections"]]
    assert keys.index("inclusion") < keys.index("exclusion") < keys.index("design")
    same = client.get("/study/NCT05631717", headers={"Accept": "application/json"}).json()
    assert same["study"] == data["study"]


def test_study_page_hook(sample_db_master: Path) -> None:
    """Later features (eligibility check) can add HTML to study pages without editing the template."""
    from markupsafe import Markup

    app = create_app(Settings(db=str(sample_db_master), auto_load_sample=False, warm_up=False))
    app.state.study_page_hooks.append(lambda request, store, view: Markup(f"<p id='hook'>{view.nct_id}</p>"))
    with TestClient(app) as c:
        html = c.get("/study/NCT05631717").text
    assert "<p id='hook'>NCT05631717</p>" in html
    assert html.index("id='hook'") > html.index('id="h-exclusion"')


# ---------------------------------------------------------------------------------------- browsing


def test_locations_drill_down(client: TestClient) -> None:
    data = client.get("/locations.json").json()
    countries = {c["name"]: c for c in data["counts"]}
    assert "United States" in countries and countries["United States"]["count"] > 100
    us = client.get(countries["United States"]["href"].replace("/locations?", "/locations.json?")).json()
    states = {s["name"]: s for s in us["counts"]}
    assert "Maryland" in states
    md = client.get(states["Maryland"]["href"].replace("/locations?", "/locations.json?")).json()
    assert md["level"] == "cities" and md["counts"]
    city = md["counts"][0]
    assert city["href"].startswith("/search?")
    found = client.get(city["href"].replace("/search?", "/search.json?")).json()
    assert found["totalCount"] == city["count"]
    html = client.get("/locations").text
    assert "Trials near me" in html and 'name="near"' in html


def test_conditions_a_to_z(client: TestClient) -> None:
    html = client.get("/conditions?letter=L").text
    assert "Lupus Nephritis" in html
    data = client.get("/conditions.json?letter=L").json()
    row = next(c for c in data["conditions"] if c["name"] == "Lupus Nephritis")
    found = client.get(row["href"].replace("/search?", "/search.json?")).json()
    assert found["totalCount"] >= row["count"] >= 1
    assert client.get("/conditions?letter=%").status_code == 404


def test_api_page_and_health(client: TestClient) -> None:
    assert "/api/v2" in client.get("/api").text
    assert client.get("/healthz").json()["status"] == "ok"


def test_static_leaflet_served_locally(client: TestClient) -> None:
    r = client.get("/static/leaflet/leaflet.js")
    assert r.status_code == 200 and "Leaflet" in r.text[:500]
    assert client.get("/static/leaflet/LICENSE").status_code == 200
    assert client.get("/static/app.js").status_code == 200
    csp = client.get("/").headers["content-security-policy"]
    assert "script-src 'self'" in csp and "cdn" not in csp


def test_overlong_input_is_rejected(client: TestClient) -> None:
    assert client.get("/search", params={"cond": "x" * 5000}).status_code == 400
    assert client.get("/search?" + "a=" + "b" * 60000).status_code == 414


def test_head_requests(client: TestClient) -> None:
    r = client.head("/study/NCT05631717")
    assert r.status_code == 200 and r.content == b"" and int(r.headers["content-length"]) > 1000
    assert client.head("/api/v2/version").status_code == 200


# ---------------------------------------------------------------------------------- posted results

DATA = Path(__file__).parent / "data"


def _record(nct: str) -> dict:
    import json

    return json.loads((DATA / f"{nct}.json").read_text(encoding="utf-8"))


@pytest.mark.parametrize("nct", ["NCT02369484", "NCT04402008", "NCT02513394"])
def test_study_page_shows_posted_results(client: TestClient, nct: str) -> None:
    """Participant flow, baseline, outcome measures, adverse events and contact, from the record's own text."""
    record = _record(nct)
    results = record["resultsSection"]
    html = client.get(f"/study/{nct}").text
    text = _text(html)
    for heading in ("Study results", "Participant flow", "Baseline characteristics", "Outcome measures",
                    "Adverse events", "Results point of contact"):
        assert heading in text, heading
    assert text.index("Participant flow") < text.rindex("Outcome measures") < text.rindex("Adverse events")
    flow = results["participantFlowModule"]
    for group in flow["groups"]:
        assert _collapse(group["title"]) in text
    started = next(m for m in flow["periods"][0]["milestones"] if m["type"] == "STARTED")
    assert all(a["numSubjects"] in text for a in started["achievements"])
    for om in results["outcomeMeasuresModule"]["outcomeMeasures"]:
        assert _collapse(om["title"]) in text, om["title"]
        for group in om.get("groups", []):
            assert _collapse(group["title"]) in text
    ae = results["adverseEventsModule"]
    for event in ae.get("seriousEvents", [])[:20] + ae.get("otherEvents", [])[:20]:
        assert _collapse(event["term"]) in text and _collapse(event["organSystem"]) in text
    first = ae["eventGroups"][0]
    share = 100 * first["seriousNumAffected"] / first["seriousNumAtRisk"]
    assert f"{first['seriousNumAffected']}/{first['seriousNumAtRisk']} ({share:.2f}%)" in text
    poc = results["moreInfoModule"]["pointOfContact"]
    assert _collapse(poc["title"]) in text and f'mailto:{poc["email"]}' in html
    limits = results["moreInfoModule"].get("limitationsAndCaveats", {}).get("description")
    if limits:
        assert "Limitations and caveats" in text and _collapse(limits) in text
    # tables scroll inside their own box on a phone, and each has column headers
    assert html.count('class="table-scroll"') >= 3
    assert '<th scope="col">' in html


def test_outcome_analyses_and_dispersion(client: TestClient) -> None:
    record = _record("NCT02513394")
    text = _text(client.get("/study/NCT02513394").text)
    measures = record["resultsSection"]["outcomeMeasuresModule"]["outcomeMeasures"]
    analysed = next(om for om in measures if om.get("analyses"))
    analysis = analysed["analyses"][0]
    assert f"P-value {analysis['pValue']}" in text
    assert f"{analysis['paramType']} {analysis['paramValue']}" in text
    assert f"{analysis['ciLowerLimit']} to {analysis['ciUpperLimit']}" in text
    # baseline values keep their dispersion: "median (lower to upper)"
    age = next(m for m in record["resultsSection"]["baselineCharacteristicsModule"]["measures"]
               if m.get("dispersionType") == "FULL_RANGE")
    cell = age["classes"][0]["categories"][0]["measurements"][0]
    assert f"{cell['value']} ({cell['lowerLimit']} to {cell['upperLimit']})" in text


def test_documents_references_and_ipd(client: TestClient) -> None:
    record = _record("NCT02369484")
    html = client.get("/study/NCT02369484").text
    text = _text(html)
    for doc in record["documentSection"]["largeDocumentModule"]["largeDocs"]:
        assert f"/NCT02369484/{doc['filename']}" in html and doc["label"] in text
    for ref in record["protocolSection"]["referencesModule"].get("references", []):
        assert _collapse(ref["citation"])[:80] in text
    ipd = record["protocolSection"]["ipdSharingStatementModule"]
    assert re.search(r"Individual participant data \(IPD\) sharing Plan to share " + ipd["ipdSharing"].title(), text)
    toc = re.search(r'<nav class="toc".*?</nav>', html, re.S)
    assert toc and 'href="#sec-adverse_events"' in toc.group(0) and 'href="#sec-documents"' in toc.group(0)


def test_study_without_results_has_no_results_sections(client: TestClient) -> None:
    html = client.get("/study/NCT05631717").text
    assert "Participant flow" not in html and "Adverse events" not in html


def _collapse(s: str) -> str:
    return re.sub(r"\s+", " ", s).strip()


# ------------------------------------------------------------------------ cards and patient filters


def test_has_results_filter_and_marker(client: TestClient) -> None:
    data = client.get("/search.json", params={"results": "with"}).json()
    assert data["totalCount"] >= 3
    assert all(s["hasResults"] for s in data["studies"])
    everything = client.get("/search.json").json()["totalCount"]
    assert data["totalCount"] < everything
    html = client.get("/search", params={"results": "with"}).text
    assert html.count("Results posted") >= min(data["totalCount"], 20)
    assert 'id="f-results" name="results" value="with" checked' in html


def test_cards_answer_what_where_when(client: TestClient) -> None:
    record = _record("NCT02513394")
    ps = record["protocolSection"]
    data = client.get("/search.json", params={"id": "NCT02513394"}).json()
    card = next(s for s in data["studies"] if s["nctId"] == "NCT02513394")
    assert card["siteCount"] == len(ps["contactsLocationsModule"]["locations"])
    assert card["startDate"].startswith(ps["statusModule"]["startDateStruct"]["date"])
    assert card["lastUpdate"] == ps["statusModule"]["lastUpdatePostDateStruct"]["date"]
    assert card["interventions"] and card["hasResults"] is True
    text = _text(client.get("/search", params={"id": "NCT02513394"}).text)
    assert "Treatments:" in text and "Start:" in text and "Last update:" in text
    assert f"and {card['siteCount'] - 1:,} more" in text


def test_nearest_site_from_a_city_centre_is_marked_approximate(client: TestClient) -> None:
    params = {"id": "NCT00000133", "near": "Chicago, IL", "dist": "25mi"}
    data = client.get("/search.json", params=params).json()
    hit = next(s for s in data["studies"] if s["nctId"] == "NCT00000133")
    assert hit["nearestSite"]["approximate"] is True
    html = client.get("/search", params=params).text
    assert ">approx.</abbr>" in html
    # the searched place is carried into the study link
    assert "/study/NCT00000133?near=Chicago" in html


def test_status_labels_agree_between_cards_and_facets(client: TestClient) -> None:
    data = client.get("/search.json", params={"cond": "lupus", "recruiting": "1"}).json()
    html = client.get("/search", params={"cond": "lupus"}).text
    facet = re.search(r'<a href="[^"]*status=RECRUITING[^"]*"[^>]*>([^<]+)</a>', html)
    assert facet, "the status facet offers Recruiting"
    assert {s["statusLabel"] for s in data["studies"]} == {facet.group(1).strip()}


def test_open_to_patients_status_choice(client: TestClient) -> None:
    open_ = client.get("/search.json", params={"cond": "cancer", "recruiting": "open"}).json()
    now = client.get("/search.json", params={"cond": "cancer", "recruiting": "1"}).json()
    assert {s["status"] for s in open_["studies"]} <= {"RECRUITING", "NOT_YET_RECRUITING"}
    assert open_["totalCount"] > now["totalCount"]
    home = client.get("/").text  # the patient default on the home page
    assert re.search(r'<option value="open" selected>Recruiting and not yet recruiting</option>', home)
    assert client.get("/search", params={"recruiting": "maybe"}).status_code == 400


def _years(age: str | None, default: float) -> float:
    m = re.match(r"(\d+(?:\.\d+)?)\s*(year|month|week|day)", age or "", re.I)
    if not m:
        return default
    per_year = {"year": 1, "month": 12, "week": 52.18, "day": 365.25}[m.group(2).lower()]
    return float(m.group(1)) / per_year


def test_age_sex_and_healthy_volunteer_filters(client: TestClient) -> None:
    params = {"cond": "cancer", "age": "70", "sex": "FEMALE", "healthy": "yes", "size": "100"}
    data = client.get("/search.json", params=params).json()
    for s in data["studies"]:
        rec = client.get(f"/study/{s['nctId']}.json").json()["record"]
        elig = rec["protocolSection"]["eligibilityModule"]
        assert elig.get("sex", "ALL") in ("ALL", "FEMALE")
        assert elig.get("healthyVolunteers") is True
        assert _years(elig.get("minimumAge"), 0) <= 70 <= _years(elig.get("maximumAge"), 200)
    html = client.get("/search", params=params).text
    assert 'name="age" value="70"' in html and '<option value="FEMALE" selected>' in html
    assert 'id="f-healthy" name="healthy" value="yes" checked' in html
    text = _text(html)
    assert "Age 70" in text and "Accepts healthy volunteers" in text


def test_numbered_pages_with_previous_and_next(client: TestClient) -> None:
    params = {"cond": "cancer", "size": "10"}
    first = client.get("/search.json", params=params).json()
    third = client.get("/search.json", params={**params, "n": "3"}).json()
    assert third["studies"] and not {s["nctId"] for s in first["studies"]} & {s["nctId"] for s in third["studies"]}
    html = client.get("/search", params={**params, "n": "3"}).text
    assert "showing 21–30" in _text(html)
    pager = re.search(r'<nav class="pager".*?</nav>', html, re.S).group(0)
    assert 'rel="prev"' in pager and 'rel="next"' in pager and 'aria-current="page"' in pager
    last = -(-first["totalCount"] // 10)
    assert f"n={last}" in pager.replace("&amp;", "&")
    second = client.get(re.search(r'href="([^"]+)" rel="prev"', pager).group(1).replace("&amp;", "&")).text
    assert "showing 11–20" in _text(second)


def test_empty_parameters_are_stripped(client: TestClient) -> None:
    r = client.get("/search?cond=lupus&intr=&near=&dist=50mi&age=", follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == "/search?cond=lupus"
    assert client.get("/static/forms.js").status_code == 200


def test_invalid_expression_comes_back_editable(client: TestClient) -> None:
    r = client.get("/search", params={"advanced": "AREA[Conditon]lupus", "cond": "x"})
    assert r.status_code == 400
    html = r.text
    assert re.search(r'<textarea id="fix-advanced" name="advanced"[^>]*>AREA\[Conditon\]lupus</textarea>', html)
    assert "<mark>" in html and "did you mean Condition" in html
    assert "trialfinder.search" not in html and 'name="cond" value="x"' in html


def test_exports_say_when_capped_and_stream_everything(sample_db_master: Path) -> None:
    app = create_app(Settings(db=str(sample_db_master), auto_load_sample=False, warm_up=False, export_limit=25))
    with TestClient(app) as c:
        total = c.get("/search.json", params={"cond": "cancer"}).json()["totalCount"]
        assert total > 25
        capped = c.get("/search.csv", params={"cond": "cancer"})
        assert capped.headers["x-export-capped"].startswith(f"25 of {total}")
        assert "These exports hold the first 25 of" in _text(c.get("/search", params={"cond": "cancer"}).text)
        full = c.get("/search.csv", params={"cond": "cancer", "all": "1"})
        rows = list(csv.DictReader(io.StringIO(full.text)))
        assert len(rows) == total == len({r["NCT Number"] for r in rows})
        assert c.get("/search.ris", params={"cond": "cancer", "all": "1"}).text.count("ER  - ") == total


def test_missing_study_links_to_the_registry(client: TestClient) -> None:
    r = client.get("/study/NCT09999999")
    assert r.status_code == 404
    assert 'href="https://clinicaltrials.gov/study/NCT09999999"' in r.text


def test_sites_nearest_to_the_searched_place_first(client: TestClient) -> None:
    html = client.get("/study/NCT02513394", params={"near": "Boston, MA"}).text
    assert "Sorted by distance from" in html
    groups = html.split('<details class="country"')[1:]
    nearest = []
    for group in groups:
        miles = [float(m.replace(",", "")) for m in
                 re.findall(r'<span class="distance">(?:<abbr[^>]*>approx\.</abbr> )?([\d,.]+) mi', group)]
        assert miles == sorted(miles)
        nearest.append(miles[0])
    assert nearest == sorted(nearest) and sum(1 for _ in re.finditer('class="distance"', html)) == 100
    assert html.count('<details class="country"') >= 2 and "data-site-filter" in html
    plain = client.get("/study/NCT02513394").text
    assert "Sorted by distance" not in plain and '<details class="country"' in plain
    assert 'href="/study/NCT02513394?near=Boston%2C+MA&amp;sites=all#sec-locations"' in html


def test_rss_items_say_what_happened() -> None:
    import copy

    from trialfinder.web.exports import to_rss

    base = _record("NCT02369484")
    status = base["protocolSection"]["statusModule"]
    new = copy.deepcopy(base)
    new["protocolSection"]["statusModule"]["lastUpdatePostDateStruct"] = dict(status["studyFirstPostDateStruct"])
    posted = copy.deepcopy(base)
    posted["protocolSection"]["statusModule"]["lastUpdatePostDateStruct"] = dict(status["resultsFirstPostDateStruct"])
    body = to_rss([new, posted, base], channel_title="t", channel_link="http://x/", description="d",
                  study_link=lambda nct: f"http://x/study/{nct}")
    descriptions = [i.findtext("description") for i in ET.fromstring(body).findall("./channel/item")]
    assert descriptions[0].startswith("New study") and descriptions[1].startswith("Results posted")
    assert descriptions[2].startswith("Updated study")
