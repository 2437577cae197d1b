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


def test_reference_study_page_sections_in_order(client: TestClient) -> None:
    r = client.get("/study/NCT05631717")
    assert r.status_code == 200
    html = r.text
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
    text = _text(client.get("/study/NCT05631717").text).replace("10\\^6", "10^6")
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
