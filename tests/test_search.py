"""Search behaviour on real SQLite data from the bundled sample."""

from __future__ import annotations

import dataclasses
import math
from pathlib import Path

import orjson
import pytest

from trialfinder.cli import main
from trialfinder.search import SearchError, from_api_params
from trialfinder.search.engine import search
from trialfinder.store import open_store


@pytest.fixture(scope="module")
def store(sample_db_master: Path):
    s = open_store(sample_db_master)
    yield s
    s.close()


def run(store, **params):
    extra = params.pop("_extra", {})
    req = from_api_params(params)
    if extra:
        req = dataclasses.replace(req, **extra)
    return search(store, req)


def ids(page) -> list[str]:
    return [h.nct_id for h in page.hits]


def _haversine(lat1, lon1, lat2, lon2):
    p1, p2 = math.radians(lat1), math.radians(lat2)
    a = math.sin((p2 - p1) / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(math.radians(lon2 - lon1) / 2) ** 2
    return 2 * 6371.0088 * math.asin(math.sqrt(a))


def test_lupus_nephritis_finds_reference_study_through_conditions(store) -> None:
    page = run(store, **{"query.cond": "lupus nephritis", "countTotal": "true"})
    assert "NCT05631717" in ids(page)
    hit = next(h for h in page.hits if h.nct_id == "NCT05631717")
    assert any("conditions" in m for m in hit.matched)
    assert page.total_count == len(page.hits)


def test_acronym_ln_expands_to_lupus_nephritis_and_says_so(store) -> None:
    page = run(store, **{"query.cond": "LN", "pageSize": "50"})
    assert "NCT05631717" in ids(page)
    assert any("lupus nephritis (acronym of LN)" in e for e in page.expansions.get("cond", []))
    # a lupus nephritis study that never writes "LN" is found only through the expansion
    exact = run(store, **{"query.cond": "LN", "pageSize": "50"}, _extra={"synonyms": False})
    expanded_only = set(ids(page)) - set(ids(exact))
    assert "NCT00001676" in expanded_only
    hit = next(h for h in page.hits if h.nct_id == "NCT00001676")
    assert any("LN \u2192 lupus nephritis" in m for m in hit.matched)
    assert exact.expansions == {}


def _sql(store, query: str) -> list[tuple]:
    """Rows of a plain SQL query on either backend (the tests check search against the tables)."""
    if hasattr(store, "conn"):
        return store.conn.execute(query).fetchall()
    return store._rows(query)


def test_intervention_other_names_expand(store) -> None:
    term, expansion = _sql(store, "SELECT term, expansion FROM synonyms WHERE kind = 'other_name' AND length(term) > 5 "
                                  "ORDER BY sid LIMIT 1")[0]
    page = run(store, **{"query.intr": term, "pageSize": "100"})
    assert any(expansion in e for e in page.expansions.get("intr", []))


def test_title_and_conditions_outrank_description_only_matches(store) -> None:
    page = run(store, **{"query.term": "lupus", "pageSize": "30"})
    top = page.hits[0].record["protocolSection"]
    text = (top["identificationModule"].get("briefTitle", "") + " ".join(
        top.get("conditionsModule", {}).get("conditions", []))).lower()
    assert "lupus" in text


def test_radius_search_returns_exactly_studies_with_a_site_inside_sorted_by_distance(store) -> None:
    lat, lon, radius_km = 41.8781, -87.6298, 50 * 1.609344  # Chicago, 50 miles
    expected: dict[str, float] = {}
    for nct, la, lo in _sql(
            store, "SELECT s.nct_id, l.lat, l.lon FROM locations l JOIN studies s ON s.sid = l.sid WHERE l.lat IS NOT NULL"):
        d = _haversine(lat, lon, la, lo)
        if d <= radius_km:
            expected[nct] = min(d, expected.get(nct, d))
    assert len(expected) >= 5
    page = run(store, **{"filter.geo": f"distance({lat},{lon},50mi)", "pageSize": "1000", "countTotal": "true"})
    assert set(ids(page)) == set(expected)
    dists = [h.nearest.distance_km for h in page.hits]
    assert dists == sorted(dists)
    for h in page.hits:
        assert h.nearest.distance_km == pytest.approx(expected[h.nct_id], abs=0.01)
        assert h.nearest.city


def test_near_place_and_recruiting_sites_only(store) -> None:
    everything = run(store, _extra={"near": "Chicago, IL", "radius_km": 80.0, "page_size": 1000})
    recruiting = run(store, _extra={"near": "Chicago, IL", "radius_km": 80.0, "page_size": 1000,
                                    "statuses": ("RECRUITING",), "recruiting_sites_only": True})
    assert set(ids(recruiting)) <= set(ids(everything))
    for h in recruiting.hits:
        assert h.nearest.status == "RECRUITING"
        assert h.record["protocolSection"]["statusModule"]["overallStatus"] == "RECRUITING"
    with pytest.raises(SearchError, match="unknown place"):
        run(store, _extra={"near": "Nowhereville Xyz"})


def test_radius_without_unit_is_an_error(store) -> None:
    with pytest.raises(SearchError) as exc:
        run(store, **{"filter.geo": "distance(41.8,-87.6,50)"})
    assert exc.value.param == "filter.geo" and "unit" in str(exc.value)


@pytest.mark.parametrize(("params", "check"), [
    ({"filter.overallStatus": "RECRUITING"}, lambda r: r["protocolSection"]["statusModule"]["overallStatus"] == "RECRUITING"),
    ({"aggFilters": "phase:3"}, lambda r: "PHASE3" in r["protocolSection"]["designModule"].get("phases", [])),
    ({"aggFilters": "sex:m"}, lambda r: r["protocolSection"]["eligibilityModule"].get("sex") in ("MALE", "ALL")),
    ({"aggFilters": "funderType:industry"},
     lambda r: r["protocolSection"]["sponsorCollaboratorsModule"]["leadSponsor"]["class"] == "INDUSTRY"),
    ({"aggFilters": "results:with"}, lambda r: r.get("hasResults") is True),
    ({"aggFilters": "studyType:obs"}, lambda r: r["protocolSection"]["designModule"]["studyType"] == "OBSERVATIONAL"),
    ({"aggFilters": "ages:child"}, lambda r: "CHILD" in r["protocolSection"]["eligibilityModule"].get("stdAges", [])),
])
def test_filters(store, params, check) -> None:
    page = run(store, **params, pageSize="200", countTotal="true")
    assert page.hits and page.total_count >= len(page.hits)
    assert all(check(h.record) for h in page.hits)


def test_age_filter_admits_only_trials_whose_range_contains_the_age(store) -> None:
    from trialfinder.model.study import parse_age

    page = run(store, pageSize="1000", _extra={"age": 70.0})
    assert page.hits
    for h in page.hits:
        e = h.record["protocolSection"].get("eligibilityModule", {})
        lo, hi = parse_age(e.get("minimumAge")), parse_age(e.get("maximumAge"))
        assert (lo is None or lo <= 70) and (hi is None or hi >= 70)


def test_country_and_intervention_type_and_dates(store) -> None:
    page = run(store, pageSize="100", _extra={"countries": ("France",), "intervention_types": ("DRUG",),
                                               "start": ("2024-01-01", None)})
    assert page.hits
    for h in page.hits:
        ps = h.record["protocolSection"]
        assert any(loc.get("country") == "France" for loc in ps["contactsLocationsModule"]["locations"])
        assert any(i.get("type") == "DRUG" for i in ps["armsInterventionsModule"]["interventions"])
        assert ps["statusModule"]["startDateStruct"]["date"] >= "2024"


def test_facets_count_under_the_rest_of_the_query(store) -> None:
    base = run(store, **{"query.cond": "cancer", "countTotal": "true"}, _extra={"facets": True})
    status_total = sum(n for _v, n in base.facets["status"])
    assert status_total == base.total_count
    filtered = run(store, **{"query.cond": "cancer", "filter.overallStatus": "COMPLETED"}, _extra={"facets": True})
    # the status facet ignores the status filter (so other statuses stay selectable) ...
    assert dict(filtered.facets["status"]) == dict(base.facets["status"])
    # ... while the other facets follow it
    assert sum(n for _v, n in filtered.facets["study_type"]) == dict(base.facets["status"])["COMPLETED"]
    assert set(base.facets) >= {"status", "phase", "study_type", "sex", "age_group", "funder_type",
                                "intervention_type", "country", "condition"}


def test_paging_tokens_are_stable_and_checked(store) -> None:
    whole = run(store, **{"query.term": "cancer", "pageSize": "30"})
    p1 = run(store, **{"query.term": "cancer", "pageSize": "10"})
    p2 = run(store, **{"query.term": "cancer", "pageSize": "10", "pageToken": p1.next_page_token})
    p3 = run(store, **{"query.term": "cancer", "pageSize": "10", "pageToken": p2.next_page_token})
    assert ids(p1) + ids(p2) + ids(p3) == ids(whole)
    again = run(store, **{"query.term": "cancer", "pageSize": "10", "pageToken": p1.next_page_token})
    assert ids(again) == ids(p2)
    with pytest.raises(SearchError) as exc:
        run(store, **{"query.term": "lupus", "pageSize": "10", "pageToken": p1.next_page_token})
    assert exc.value.param == "pageToken"
    with pytest.raises(SearchError, match="pageToken"):
        run(store, **{"query.term": "cancer", "pageToken": "garbage!!"})


def test_page_size_cap_and_bad_values(store) -> None:
    with pytest.raises(SearchError):
        run(store, pageSize="1001")
    with pytest.raises(SearchError) as exc:
        run(store, **{"filter.overallStatus": "RECRUTING"})
    assert exc.value.param == "filter.overallStatus"
    with pytest.raises(SearchError) as exc:
        run(store, **{"query.cond": "x" * 1001})
    assert exc.value.param == "query.cond"


def test_essie_syntax_error_has_position(store) -> None:
    with pytest.raises(SearchError, match="position"):
        run(store, **{"filter.advanced": "AREA[Phase]PHASE3 AND (lupus"})


def test_essie_advanced_filters(store) -> None:
    page = run(store, **{"filter.advanced": "AREA[Phase]PHASE3 AND AREA[MinimumAge]RANGE[MIN, 18 years]",
                         "pageSize": "200"})
    assert page.hits
    from trialfinder.model.study import parse_age

    for h in page.hits:
        ps = h.record["protocolSection"]
        assert "PHASE3" in ps["designModule"]["phases"]
        assert parse_age(ps["eligibilityModule"]["minimumAge"]) <= 18
    missing = run(store, **{"filter.advanced": "AREA[ResultsFirstPostDate]MISSING", "pageSize": "50"})
    assert all(not h.record.get("hasResults") for h in missing.hits)
    boolean = run(store, **{"query.cond": "lupus OR melanoma", "pageSize": "100"})
    for h in boolean.hits:
        text = str(h.record).lower()
        assert "lupus" in text or "melanoma" in text


def test_fields_and_sorting(store) -> None:
    page = run(store, **{"query.term": "cancer", "fields": "NCTId,BriefTitle,OverallStatus",
                         "sort": "StudyFirstPostDate:desc", "pageSize": "20"})
    for h in page.hits:
        assert set(h.record) == {"protocolSection"}
        assert set(h.record["protocolSection"]) <= {"identificationModule", "statusModule"}
    full = run(store, **{"query.term": "cancer", "sort": "StudyFirstPostDate:desc", "pageSize": "20"})
    dates = [h.record["protocolSection"]["statusModule"].get("studyFirstPostDateStruct", {}).get("date", "")
             for h in full.hits]
    dated = [d for d in dates if d]
    assert dated == sorted(dated, reverse=True)


def test_cli_search_outputs(sample_db: Path, capsys: pytest.CaptureFixture) -> None:
    import csv
    import io
    import json

    assert main(["search", "--db", str(sample_db), "--cond", "lupus nephritis", "--json", "--count-total"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["totalCount"] >= 1 and any(
        s["protocolSection"]["identificationModule"]["nctId"] == "NCT05631717" for s in out["studies"])
    assert main(["search", "--db", str(sample_db), "--cond", "lung cancer", "--near", "Chicago, IL",
                 "--radius", "50mi", "--csv"]) == 0
    rows = list(csv.reader(io.StringIO(capsys.readouterr().out)))
    assert rows[0][0] == "NCT Number" and len(rows) > 1 and rows[1][7]
    assert main(["search", "--db", str(sample_db), "--cond", "LN", "--facets"]) == 0
    text = capsys.readouterr().out
    assert "NCT05631717" in text and "acronym of LN" in text and "status:" in text
    assert main(["search", "--db", str(sample_db), "--near", "Chicago", "--radius", "50"]) == 2
    assert "unit" in capsys.readouterr().err


def test_geo_decay_ranks_text_matches_by_distance(store) -> None:
    """With a text query and filter.geo, the default decay (ClinicalTrials.gov: exp, scale 50mi) lowers
    the scores of far studies; a steep decay orders the hits by distance, a flat one keeps text order."""
    params = {"query.cond": "cancer", "filter.geo": "distance(41.8781,-87.6298,500mi)", "pageSize": "50"}
    flat = run(store, **params, geoDecay="func:linear,scale:20000km,offset:0km,decay:0.99")
    steep = run(store, **params, geoDecay="func:exp,scale:1km,offset:0km,decay:0.01")
    assert len(steep.hits) >= 10 and set(ids(flat)) <= set(ids(steep)) | set(ids(flat))
    near = [h.nearest.distance_km for h in steep.hits[:10]]
    assert near == sorted(near)
    flat_dists = [h.nearest.distance_km for h in flat.hits[:10]]
    assert flat_dists != sorted(flat_dists)  # distance does not order them when the decay is flat
    with pytest.raises(SearchError) as exc:
        run(store, **params, geoDecay="func:exp,scale:1km,offset:0km,decay:2")
    assert exc.value.param == "geoDecay"


def test_a_behind_index_is_said_and_caught_up(sample_db: Path) -> None:
    """A study written to the database while another process holds the index writer: the page says the
    index is behind; once the writer is free, the next search catches up and finds the new text."""
    import orjson

    from trialfinder.index.follow import forget, index_for
    from trialfinder.model.study import normalize
    from trialfinder.store.base import PreparedStudy

    with open_store(sample_db) as s:
        nct = run(s, **{"query.term": "lupus"}).hits[0].nct_id
        rec = s.get(nct)
        rec["protocolSection"]["identificationModule"]["briefTitle"] = "Zyxwvut quokka study"
        rec["protocolSection"]["statusModule"]["lastUpdatePostDateStruct"] = {"date": "2099-01-01"}
        holder = index_for(s).writer()  # stands for an ingest between its two commits
        try:
            counts = s.upsert_many([PreparedStudy(normalize(rec), orjson.dumps(rec), "x" * 32, "test",
                                                  {"synonyms": ()})])
            assert counts.updated == 1
            forget(s.index_path())  # a fresh process: no cached data sequence
            behind = run(s, **{"query.term": "quokka", "countTotal": "true"})
            assert behind.index_behind >= 1 and behind.total_count == 0
        finally:
            holder.close()
        forget(s.index_path())
        caught = run(s, **{"query.term": "quokka", "countTotal": "true"})
        assert caught.index_behind == 0 and ids(caught) == [nct]


@pytest.mark.parametrize("lat,lon,radius", [(41.8781, -87.6298, "300mi"), (48.8566, 2.3522, "500km"),
                                           (40.7128, -74.0060, "60mi"), (31.2304, 121.4737, "1000km")])
def test_radius_by_cells_equals_site_by_site(store, lat, lon, radius) -> None:
    """A circle is searched as the index cells wholly inside it plus the studies left over: the studies
    found are exactly those with a site within the radius (computed here site by site)."""
    from trialfinder.search.geo import sites_for
    from trialfinder.search.request import parse_radius

    km = parse_radius(radius)
    sites = sites_for(store, store.data_seq())
    expected = {f"NCT{n:08d}" for n in sites.within(lat, lon, km)[0].tolist()}
    _uniq, _d, _l, cells, rest = sites.cover(lat, lon, km)
    assert cells, "the circle should hold whole cells"
    assert len(rest) < len(expected)
    page = run(store, **{"filter.geo": f"distance({lat},{lon},{radius})", "pageSize": "1000", "countTotal": "true"})
    assert page.total_count == len(expected)
    assert set(ids(page)) == expected


@pytest.mark.parametrize("params", [
    {"query.cond": "cancer", "countTotal": "true", "pageSize": "3"},  # token and total
    {"query.cond": "cancer", "pageSize": "3"},  # token only
    {"query.cond": "lupus nephritis", "pageSize": "50"},  # one page: no token, no total
    {"query.cond": "no-such-condition-anywhere", "countTotal": "true"},  # no studies
    {"query.cond": "cancer", "fields": "NCTId,BriefTitle", "pageSize": "2"},  # selected fields
])
def test_api_bytes_are_the_api_json_with_records_as_stored(store, params) -> None:
    page = run(store, **params)
    body = page.to_api_bytes()
    assert orjson.loads(body) == page.to_api_json()
    assert [s["protocolSection"]["identificationModule"]["nctId"] for s in orjson.loads(body)["studies"]] == ids(page)
    if "fields" in params:
        assert all(set(s["protocolSection"]) == {"identificationModule"} for s in orjson.loads(body)["studies"])
