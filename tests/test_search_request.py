"""Tests for trialfinder.search.request: API v2 parameters, friendly filters, aggFilters, geo, tokens."""

from __future__ import annotations

import dataclasses
import importlib
import json
from pathlib import Path

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from trialfinder.search.essie import And, Area, Distance, EssieSyntaxError, Or, Range, Term
from trialfinder.search.request import (
    AGG_FILTERS,
    API_PARAMS,
    DEFAULT_NEAR_RADIUS_KM,
    AggOption,
    GeoDecay,
    GeoFilter,
    SearchError,
    SearchRequest,
    agg_options,
    from_api_params,
    make_page_token,
    nct_ids_only,
    normalize_nct_id,
    normalize_status,
    parse_agg,
    parse_date_range,
    parse_geo,
    parse_geo_decay,
    parse_radius,
    parse_sort,
    read_page_token,
)

search_pkg = importlib.import_module("trialfinder.search")
DATA = Path(__file__).parent / "data"
RECORDINGS = Path(__file__).parent / "data" / "api-recordings"


def error_of(fn, *args, **kwargs) -> SearchError:  # noqa: ANN001 - test helper
    with pytest.raises(SearchError) as info:
        fn(*args, **kwargs)
    return info.value


# --------------------------------------------------------------------------- package surface


def test_package_reexports() -> None:
    assert search_pkg.SearchRequest is SearchRequest
    assert search_pkg.SearchError is SearchError
    assert search_pkg.from_api_params is from_api_params
    assert issubclass(search_pkg.EssieSyntaxError, SearchError)
    assert search_pkg.parse_essie("a") == Term("a")


def test_search_error_shape() -> None:
    err = SearchError("filter.geo", "bad")
    assert isinstance(err, ValueError)
    assert (err.param, err.message, str(err)) == ("filter.geo", "bad", "filter.geo: bad")


# ------------------------------------------------------------------------------- API params


def test_defaults() -> None:
    req = from_api_params({})
    assert req == SearchRequest()
    assert req.page_size == 10 and req.count_total is False and req.synonyms is True
    assert req.sort == () and req.fields is None and req.format == "json" and req.agg == {}


def test_query_params_map_to_fields_and_parse() -> None:
    params = {"query.cond": " lung cancer ", "query.term": "AREA[LastUpdatePostDate]RANGE[2023-01-15,MAX]",
              "query.locn": "Boston", "query.titles": "BRAF", "query.intr": "Vemurafenib",
              "query.outc": "overall survival", "query.spons": "NCI", "query.lead": "MD Anderson",
              "query.id": "NCT04267848", "query.patient": "breast cancer"}
    req = from_api_params(params)
    assert (req.cond, req.locn, req.titles, req.intr, req.outc, req.spons, req.lead, req.id_terms,
            req.patient) == ("lung cancer", "Boston", "BRAF", "Vemurafenib", "overall survival", "NCI",
                             "MD Anderson", "NCT04267848", "breast cancer")
    asts = req.query_asts()
    assert asts["cond"] == Term("lung cancer")
    assert asts["term"] == Area("LastUpdatePostDate", Range("2023-01-15", None, "date"))
    assert set(asts) == {"cond", "term", "locn", "titles", "intr", "outc", "spons", "lead", "id_terms", "patient"}


def test_filters() -> None:
    req = from_api_params({
        "filter.overallStatus": "NOT_YET_RECRUITING|recruiting,Recruiting",
        "filter.geo": "distance(39.0035707,-77.1013313,50mi)",
        "filter.ids": "NCT04852770,nct1728545|NCT02109302",
        "filter.advanced": "AREA[StartDate]2022",
    })
    assert req.statuses == ("NOT_YET_RECRUITING", "RECRUITING")
    assert req.geo is not None and (req.geo.lat, req.geo.lon, req.geo.unit) == (39.0035707, -77.1013313, "mi")
    assert req.geo.radius_km == pytest.approx(80.4672)
    assert req.ids == ("NCT04852770", "NCT01728545", "NCT02109302")
    assert req.advanced == Area("StartDate", Range("2022-01-01", "2022-12-31", "date"))
    assert req.advanced_source == "AREA[StartDate]2022"
    err = error_of(from_api_params, {"filter.synonyms": "ConditionSearch:1651367|BasicSearch:2013558"})
    assert err.param == "filter.synonyms" and "internal thesaurus" in str(err)


def test_list_params_may_repeat_scalars_may_not_differ() -> None:
    req = from_api_params({"filter.overallStatus": ["RECRUITING", "COMPLETED"], "query.cond": ["x", "x"]})
    assert req.statuses == ("RECRUITING", "COMPLETED") and req.cond == "x"
    err = error_of(from_api_params, {"query.cond": ["x", "y"]})
    assert err.param == "query.cond" and "more than once" in str(err)


def test_blank_values_are_ignored() -> None:
    assert from_api_params({"query.cond": "  ", "filter.overallStatus": "", "pageToken": ""}) == SearchRequest()


def test_paging_sort_fields_format() -> None:
    req = from_api_params({"pageSize": "100", "countTotal": "TRUE", "sort": "LastUpdatePostDate:desc,@relevance",
                           "fields": "NCTId|BriefTitle,OverallStatus", "format": "csv", "markupFormat": "markdown"})
    assert req.page_size == 100 and req.count_total is True
    assert req.sort == (("LastUpdatePostDate", "desc"), ("@relevance", "desc"))
    assert req.fields == ("NCTId", "BriefTitle", "OverallStatus")
    assert (req.format, req.markup_format) == ("csv", "markdown")
    err = error_of(from_api_params, {"markupFormat": "legacy"})
    assert err.param == "markupFormat" and "not supported" in str(err)
    assert from_api_params({"pageSize": "0"}).page_size == 10  # API: 0 means the default
    assert from_api_params({"pageSize": 5}).page_size == 5
    assert from_api_params({"countTotal": True}).count_total is True


def test_agg_filters_and_geo_decay() -> None:
    req = from_api_params({"aggFilters": "phase:2 3,status:rec,sex:f",
                           "geoDecay": "func:linear,scale:100km,offset:10km,decay:0.1"})
    assert req.agg == {"phase": ("2", "3"), "status": ("rec",), "sex": ("f",)}
    assert req.geo_decay == GeoDecay("linear", 100.0, 10.0, 0.1)


@pytest.mark.parametrize(
    ("params", "param", "fragment"),
    [
        ({"query.cnd": "x"}, "query.cnd", "did you mean query.cond"),
        ({"cond": "x"}, "cond", "did you mean query.cond"),
        ({"limit": "5"}, "limit", "unknown parameter; supported: query.cond"),
        ({"filter.overallStatus": "RECRUTING"}, "filter.overallStatus",
         "unknown value 'RECRUTING'; expected one of ACTIVE_NOT_RECRUITING"),
        ({"postFilter.overallStatus": "nope"}, "postFilter.overallStatus", "unknown value 'nope'"),
        ({"filter.geo": "distance(39,-77,50)"}, "filter.geo", "radius needs a unit: mi or km"),
        ({"filter.geo": "near(1,2,3mi)"}, "filter.geo", "expected distance(latitude,longitude,radius)"),
        ({"postFilter.geo": "distance(99,-77,5km)"}, "postFilter.geo", "latitude 99 is out of range"),
        ({"filter.ids": "NCT1,ABC"}, "filter.ids", "invalid NCT id 'ABC'"),
        ({"postFilter.ids": "NCT0"}, "postFilter.ids", "invalid NCT id 'NCT0'"),
        ({"filter.advanced": "a AND"}, "filter.advanced", "syntax error at position 5"),
        ({"postFilter.advanced": "(a"}, "postFilter.advanced", "syntax error at position 2"),
        ({"query.term": "AREA[StartDate]RANGE[2020, MAX"}, "query.term", "expected ']' after RANGE bounds"),
        ({"query.cond": "x" * 1001}, "query.cond", "too long (1001 characters; the limit is 1000)"),
        ({"filter.synonyms": "ConditionSearch"}, "filter.synonyms", "area:synonym_id"),
        ({"aggFilters": "phase:5"}, "aggFilters", "unknown phase option '5'; expected one of 0, 1, 2, 3, 4, na"),
        ({"aggFilters": "stage:2"}, "aggFilters", "unknown filter 'stage'"),
        ({"aggFilters": "phase"}, "aggFilters", "expected filter:options"),
        ({"aggFilters": "phase:"}, "aggFilters", "has no options"),
        ({"geoDecay": "func:cubic,scale:1km,offset:0km,decay:0.5"}, "geoDecay", "expected func:"),
        ({"geoDecay": "func:exp,scale:1km,offset:0km,decay:1.5"}, "geoDecay", "decay must be between 0 and 1"),
        ({"sort": "Title"}, "sort", "unknown sort field 'Title'"),
        ({"sort": "StartDate:up"}, "sort", "unknown direction 'up'"),
        ({"sort": "StartDate,EnrollmentCount,@relevance"}, "sort", "at most 2 sort fields"),
        ({"sort": "StartDate,startdate:asc"}, "sort", "StartDate is given twice"),
        ({"sort": "distance"}, "sort", "needs filter.geo or near"),
        ({"countTotal": "yes"}, "countTotal", "expected true or false"),
        ({"pageSize": "1001"}, "pageSize", "must be between 1 and 1000, got 1001"),
        ({"pageSize": "-1"}, "pageSize", "expected a whole number"),
        ({"pageSize": "ten"}, "pageSize", "expected a whole number"),
        ({"pageSize": "\u00b9"}, "pageSize", "expected a whole number"),  # a digit to isdigit(), not to int()
        ({"pageToken": "not a token"}, "pageToken", "invalid pageToken"),
        ({"fields": "NCTId,$bad"}, "fields", "invalid field name '$bad'"),
        ({"format": "xml"}, "format", "expected one of json, csv"),
        ({"markupFormat": "html"}, "markupFormat", "expected one of markdown, legacy"),
        ({"query.cond": 3.5}, "query.cond", "expected text"),
    ],
)
def test_api_param_errors_name_the_parameter(params: dict, param: str, fragment: str) -> None:
    err = error_of(from_api_params, params)
    assert err.param == param, str(err)
    assert str(err).startswith(param + ": ")
    assert fragment in str(err)


def test_essie_errors_keep_their_class_and_position() -> None:
    err = error_of(from_api_params, {"query.intr": "aspirin OR"})
    assert isinstance(err, EssieSyntaxError) and err.position == 10 and err.param == "query.intr"


def test_post_filters_alone_act_as_filters() -> None:
    req = from_api_params({"postFilter.overallStatus": "COMPLETED", "postFilter.ids": "NCT04852770",
                           "postFilter.geo": "distance(1,2,10km)", "postFilter.advanced": "AREA[Phase]PHASE3"})
    assert req.statuses == ("COMPLETED",)
    assert req.ids == ("NCT04852770",)
    assert req.geo == GeoFilter(1.0, 2.0, 10.0, "km")
    assert req.advanced == Area("Phase", Term("PHASE3")) and req.advanced_source == "AREA[Phase]PHASE3"


def test_post_filters_with_filters_are_anded_into_advanced() -> None:
    req = from_api_params({
        "filter.overallStatus": "RECRUITING,COMPLETED", "postFilter.overallStatus": "COMPLETED|TERMINATED",
        "filter.ids": "NCT04852770", "postFilter.ids": "NCT01728545",
        "filter.geo": "distance(1,2,10km)", "postFilter.geo": "distance(3,4,5km)",
        "filter.advanced": "a AND b", "postFilter.advanced": "c",
    })
    assert req.statuses == ("RECRUITING", "COMPLETED") and req.ids == ("NCT04852770",)
    assert req.geo == GeoFilter(1.0, 2.0, 10.0, "km")
    assert req.advanced == And((
        Term("a"), Term("b"),
        Area("OverallStatus", Or((Term("COMPLETED"), Term("TERMINATED")))),
        Or((Area("NCTId", Term("NCT01728545")), Area("NCTIdAlias", Term("NCT01728545")))),
        Area("LocationGeoPoint", Distance(3.0, 4.0, 5.0)),
        Term("c"),
    ))
    assert search_pkg.parse_essie(req.advanced_source) == req.advanced


def test_openapi_examples_are_accepted() -> None:
    """Every example value the official OpenAPI file gives for /studies parameters parses."""
    spec = yaml.safe_load((DATA / "ctg-oas-v2.0.5.yaml").read_text())
    checked = refused = 0
    for param in spec["paths"]["/studies"]["get"]["parameters"]:
        for example in (param.get("examples") or {}).values():
            value = example["value"]
            value = ",".join(value) if isinstance(value, list) else str(value)
            if param["name"] == "sort" and "NumArmGroups" in value:
                continue  # we sort by the fields in SORT_FIELDS only
            if param["name"] == "pageSize":
                value = str(value)
            if param["name"] in ("filter.synonyms", "postFilter.synonyms") or value == "legacy":
                # refused on purpose, with the reason (ClinicalTrials.gov-internal ids, PRS markup)
                assert "not" in str(error_of(from_api_params, {param["name"]: value}))
                refused += 1
                continue
            from_api_params({param["name"]: value})
            checked += 1
    assert checked >= 20 and refused >= 1


def test_recorded_ctgov_page_tokens_are_rejected_clearly() -> None:
    """A nextPageToken from ClinicalTrials.gov itself is not ours: a clear error, not a crash."""
    tokens = []
    for path in sorted(RECORDINGS.glob("search_*.json")):
        token = json.loads(path.read_text()).get("nextPageToken")
        if token:
            tokens.append(token)
    assert tokens, "the recorded responses in tests/data/api-recordings carry nextPageTokens"
    for token in tokens:
        err = error_of(from_api_params, {"pageToken": token})
        assert err.param == "pageToken" and "invalid pageToken" in str(err)


# ------------------------------------------------------------------------ friendly filters


def test_friendly_filters_normalise() -> None:
    req = SearchRequest(age=30, age_groups=["adult", "older adult"], sexes="female", phases=("phase 2", "PHASE3"),
                        study_types=["interventional"], funder_types="industry|nih",
                        intervention_types=["drug", "Dietary-Supplement"], healthy_volunteers=True,
                        has_results=False, start=("2020", "2021-02"), first_posted="2019-05-01_",
                        last_update=(None, "2024"), countries=[" United States ", "Canada", "Canada"],
                        states=["Maryland"], cities=("Bethesda",), recruiting_sites_only=True,
                        near="Bethesda, MD", radius_km="50mi", synonyms=False, facets=True)
    assert req.age == 30.0
    assert req.age_groups == ("ADULT", "OLDER_ADULT")
    assert req.sexes == ("FEMALE",)
    assert req.phases == ("PHASE2", "PHASE3")
    assert req.study_types == ("INTERVENTIONAL",)
    assert req.funder_types == ("INDUSTRY", "NIH")
    assert req.intervention_types == ("DRUG", "DIETARY_SUPPLEMENT")
    assert req.start == ("2020-01-01", "2021-02-28")
    assert req.first_posted == ("2019-05-01", None)
    assert req.last_update == (None, "2024-12-31")
    assert req.countries == ("United States", "Canada")
    assert req.radius_km == pytest.approx(80.4672)
    assert (req.healthy_volunteers, req.has_results, req.recruiting_sites_only, req.synonyms, req.facets) == (
        True, False, True, False, True)


@pytest.mark.parametrize(
    ("kwargs", "param", "fragment"),
    [
        ({"age": 151}, "age", "between 0 and 150"),
        ({"age": -1}, "age", "between 0 and 150"),
        ({"age": float("nan")}, "age", "expected a number of years"),
        ({"age": "30"}, "age", "expected a number of years"),
        ({"age": True}, "age", "expected a number of years"),
        ({"phases": ["PHASE5"]}, "phases", "unknown value 'PHASE5'; expected one of NA, EARLY_PHASE1"),
        ({"sexes": ["woman"]}, "sexes", "unknown value 'woman'"),
        ({"statuses": ("recruting",)}, "filter.overallStatus", "unknown value 'recruting'"),
        ({"healthy_volunteers": "yes"}, "healthy_volunteers", "expected true or false"),
        ({"start": ("2021", "2020")}, "start", "is after end"),
        ({"start": ("2020-02-30", None)}, "start", "invalid date"),
        ({"last_update": ("a", "b", "c")}, "last_update", "pair"),
        ({"countries": ["x" * 201]}, "countries", "value too long"),
        ({"countries": [f"c{i}" for i in range(101)]}, "countries", "too many values"),
        ({"cities": 5}, "cities", "expected a list"),
        ({"radius_km": 10}, "radius", "needs near"),
        ({"near": "Paris", "radius_km": "10"}, "radius", "radius needs a unit: mi or km"),
        ({"near": "Paris", "radius_km": 0}, "radius", "greater than 0"),
        ({"near": "Paris", "geo": "distance(1,2,3mi)"}, "near", "not both"),
        ({"page_size": 0}, "pageSize", "between 1 and 1000"),
        ({"page_size": 1001}, "pageSize", "between 1 and 1000"),
        ({"page_size": 10.0}, "pageSize", "whole number"),
        ({"count_total": "true"}, "countTotal", "expected true or false"),
        ({"fields": ()}, "fields", "at least one field"),
        ({"term": "x" * 1001}, "query.term", "too long"),
        ({"id_terms": "NCT1 OR"}, "query.id", "syntax error"),
        ({"advanced_source": "AREA[Nope]x"}, "filter.advanced", "unknown AREA field 'Nope'"),
        ({"advanced": "AREA[Phase]x"}, "filter.advanced", "expected an Essie AST node"),
        ({"agg": {"phase": ["9"]}}, "aggFilters", "unknown phase option '9'"),
        ({"agg": 5}, "aggFilters", "expected text"),
        ({"geo": 5}, "filter.geo", "expected a GeoFilter"),
        ({"geo_decay": 5}, "geoDecay", "expected a GeoDecay"),
        ({"ids": ["NCT123456789"]}, "filter.ids", "invalid NCT id"),
        ({"sort": [("StartDate", "sideways")]}, "sort", "unknown direction"),
        ({"sort": [42]}, "sort", "expected 'Field'"),
    ],
)
def test_friendly_filter_errors(kwargs: dict, param: str, fragment: str) -> None:
    err = error_of(SearchRequest, **kwargs)
    assert err.param == param, str(err)
    assert fragment in str(err)


def test_direct_construction_accepts_text_forms() -> None:
    req = SearchRequest(geo="distance(1,2,3km)", agg="phase:2", geo_decay="func:exp,scale:300mi,offset:0mi,decay:0.5",
                        sort=["StartDate", ("EnrollmentCount", "desc")], ids="nct1,NCT00000001",
                        advanced_source="AREA[Phase]PHASE2")
    assert req.geo == GeoFilter(1.0, 2.0, 3.0, "km")
    assert req.agg == {"phase": ("2",)}
    assert req.geo_decay == GeoDecay()
    assert req.sort == (("StartDate", "desc"), ("EnrollmentCount", "desc"))
    assert req.ids == ("NCT00000001",)
    assert req.advanced == Area("Phase", Term("PHASE2"))


def test_advanced_from_ast_gets_its_source_and_replace_reparses() -> None:
    req = SearchRequest(advanced=Area("Phase", Term("PHASE2")))
    assert req.advanced_source == "AREA[Phase]PHASE2"
    changed = dataclasses.replace(req, advanced_source="AREA[Phase]PHASE3")
    assert changed.advanced == Area("Phase", Term("PHASE3"))
    with pytest.raises(SearchError):
        dataclasses.replace(req, page_size=0)


def test_requests_are_frozen_and_queries_are_derived() -> None:
    req = SearchRequest(cond="asthma")
    with pytest.raises(dataclasses.FrozenInstanceError):
        req.cond = "x"  # type: ignore[misc]
    assert dataclasses.replace(req, cond="copd").query_asts() == {"cond": Term("copd")}


def test_resolved_near() -> None:
    req = SearchRequest(near="Bethesda", sort=["distance"])
    resolved = req.resolved_near(38.98, -77.1)
    assert resolved.near is None and resolved.radius_km is None
    assert resolved.geo == GeoFilter(38.98, -77.1, DEFAULT_NEAR_RADIUS_KM, "km")
    assert SearchRequest(near="x", radius_km=10).resolved_near(0, 0).geo.radius_km == 10.0


def test_fingerprint_ignores_paging_but_not_the_query() -> None:
    base = SearchRequest(cond="asthma", statuses=("RECRUITING",))
    same = dataclasses.replace(base, page_size=50, count_total=True, fields=("NCTId",), facets=True,
                               page_token=make_page_token({"offset": 10}))
    assert base.fingerprint() == same.fingerprint()
    assert base.fingerprint() != dataclasses.replace(base, cond="copd").fingerprint()
    assert base.fingerprint() != dataclasses.replace(base, synonyms=False).fingerprint()
    assert from_api_params({"query.cond": "asthma", "filter.overallStatus": "recruiting"}).fingerprint() == \
        base.fingerprint()


# ------------------------------------------------------------------------------- helpers


def test_normalize_status() -> None:
    assert normalize_status("recruiting") == "RECRUITING"
    assert normalize_status("Not yet recruiting") == "NOT_YET_RECRUITING"
    assert normalize_status("active-not-recruiting") == "ACTIVE_NOT_RECRUITING"
    err = error_of(normalize_status, "RECRUTING")
    assert str(err).startswith("filter.overallStatus: unknown value 'RECRUTING'; expected one of ")
    assert "ENROLLING_BY_INVITATION" in str(err)
    assert error_of(normalize_status, None).param == "filter.overallStatus"  # type: ignore[arg-type]


def test_nct_ids() -> None:
    assert normalize_nct_id("nct1234") == "NCT00001234"
    assert normalize_nct_id(" NCT012345678 ") == "NCT12345678"
    assert nct_ids_only("NCT04852770, nct1728545 NCT04852770") == ("NCT04852770", "NCT01728545")
    assert nct_ids_only("NCT04852770 cancer") is None
    assert nct_ids_only("") is None and nct_ids_only(None) is None


def test_parse_geo_and_radius() -> None:
    geo = parse_geo("distance(39.0035707,-77.1013313,50mi)")
    assert (geo.lat, geo.lon, geo.unit) == (39.0035707, -77.1013313, "mi")
    assert geo.radius_km == pytest.approx(80.4672) and geo.radius == pytest.approx(50)
    assert geo.to_text() == "distance(39.0036,-77.1013,50mi)"
    assert parse_geo(" Distance( -33.9 , 151.2 , 25 km ) ") == GeoFilter(-33.9, 151.2, 25.0, "km")
    assert parse_radius("50mi") == pytest.approx(80.4672)
    assert parse_radius("10 KM") == 10.0
    for text, fragment in [("distance(39,-77,50)", "radius needs a unit: mi or km"),
                           ("distance(91,0,5km)", "latitude 91 is out of range"),
                           ("distance(0,181,5km)", "longitude 181 is out of range"),
                           ("distance(0,0,0km)", "greater than 0"),
                           ("distance(0,0,20001km)", "at most 20000 km"),
                           ("distance(a,0,5km)", "invalid latitude 'a'"),
                           ("distance(0,0)", "expected distance(")]:
        err = error_of(parse_geo, text)
        assert err.param == "filter.geo" and fragment in str(err), str(err)
    assert error_of(parse_radius, "50").message == "radius needs a unit: mi or km"
    assert error_of(parse_radius, "50", param="distance").param == "distance"
    assert error_of(GeoFilter, 0.0, 0.0, 5.0, "leagues").param == "filter.geo"
    assert error_of(GeoFilter, "0", 0.0, 5.0).param == "filter.geo"  # type: ignore[arg-type]


def test_parse_geo_decay() -> None:
    assert parse_geo_decay("func:gauss,scale:500mi,offset:0mi,decay:0.3") == GeoDecay(
        "gauss", pytest.approx(804.672), 0.0, 0.3)


def test_parse_sort() -> None:
    assert parse_sort("relevance") == (("@relevance", "desc"),)
    assert parse_sort("EnrollmentCount|startdate") == (("EnrollmentCount", "asc"), ("StartDate", "desc"))
    assert parse_sort("StudyFirstPostDate:ASC") == (("StudyFirstPostDate", "asc"),)
    assert parse_sort("") == ()


def test_parse_date_range() -> None:
    assert parse_date_range("2020-01-01_2021-12-31", "start") == ("2020-01-01", "2021-12-31")
    assert parse_date_range("_2021", "start") == (None, "2021-12-31")
    assert parse_date_range("2021-02", "start") == ("2021-02-01", "2021-02-28")
    assert parse_date_range(("", None), "start") is None
    assert parse_date_range(None, "start") is None
    assert error_of(parse_date_range, "2020_2021_2022", "start").param == "start"


# ----------------------------------------------------------------------------- aggFilters


def test_parse_agg() -> None:
    assert parse_agg("phase:2 3,status:rec,sex:f") == {"phase": ("2", "3"), "status": ("rec",), "sex": ("f",)}
    assert parse_agg("results:with,status:com") == {"results": ("with",), "status": ("com",)}
    assert parse_agg("status:not rec|sex:F,healthy:y") == {"status": ("not", "rec"), "sex": ("f",),
                                                            "healthy": ("y",)}
    assert parse_agg("STUDYTYPE:int+obs_patreg,funderType:industry nih") == {
        "studyType": ("int", "obs_patreg"), "funderType": ("industry", "nih")}
    assert parse_agg("phase:2,phase:3 2") == {"phase": ("2", "3")}
    assert parse_agg("docs:prot sap icf,violation:y,ages:child older") == {
        "docs": ("prot", "sap", "icf"), "violation": ("y",), "ages": ("child", "older")}
    assert parse_agg("") == {}


def test_agg_table_values_are_real_enum_values() -> None:
    from trialfinder.model.enums import ENUMS
    from trialfinder.search.essie import known_area_fields

    enum_of = {"OverallStatus": "Status", "Phase": "Phase", "Sex": "Sex", "StdAge": "StandardAge",
               "StudyType": "StudyType", "LeadSponsorClass": "AgencyClass", "CollaboratorClass": "AgencyClass"}
    fields = known_area_fields()
    for filter_id, options in AGG_FILTERS.items():
        for code, option in options.items():
            assert option.code == code and option.label
            for name in option.fields:
                assert name in fields, (filter_id, name)
                if fields[name] == "bool":
                    assert all(isinstance(v, bool) for v in option.values)
                else:
                    assert set(option.values) <= set(ENUMS[enum_of[name]]), (filter_id, code)
    # every status and phase value is reachable from a website code (except WITHHELD, which has none)
    statuses = {v for o in AGG_FILTERS["status"].values() for v in o.values}
    assert statuses == set(ENUMS["Status"]) - {"WITHHELD"}
    assert {v for o in AGG_FILTERS["phase"].values() for v in o.values} == set(ENUMS["Phase"])


def test_agg_options() -> None:
    opts = agg_options(parse_agg("phase:0 na,sex:f,funderType:other,studyType:exp_treat"))
    assert [o.values for o in opts["phase"]] == [("EARLY_PHASE1",), ("NA",)]
    assert opts["sex"] == (AggOption("f", "Female", ("Sex",), ("FEMALE", "ALL")),)
    assert opts["funderType"][0].fields == ("LeadSponsorClass", "CollaboratorClass")
    assert "OTHER_GOV" in opts["funderType"][0].values
    assert opts["studyType"][0] == AggOption("exp_treat", "Expanded access: treatment IND/protocol",
                                             ("ExpAccTypeTreatment",), (True,))


# ---------------------------------------------------------------------------- page tokens


def test_page_token_round_trip() -> None:
    state = {"offset": 20, "fp": "abc", "after": ["2024-01-01", "NCT00000001"], "ü": None}
    token = make_page_token(state)
    assert isinstance(token, str) and "=" not in token
    assert all(c.isalnum() or c in "-_" for c in token)
    assert read_page_token(token) == state
    assert make_page_token(state) == token  # deterministic


def test_page_token_tampering_is_detected() -> None:
    token = make_page_token({"offset": 20, "fp": "0123456789abcdef"})
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
    for i in range(len(token)):
        for replacement in (alphabet[(alphabet.index(token[i]) + 1) % 64], alphabet[(alphabet.index(token[i]) + 7) % 64]):
            garbled = token[:i] + replacement + token[i + 1:]
            try:
                state = read_page_token(garbled)
            except SearchError as err:
                assert err.param == "pageToken" and "invalid pageToken" in str(err)
            else:  # only the padding bits of the last character can change without changing the bytes
                assert i == len(token) - 1 and state == {"offset": 20, "fp": "0123456789abcdef"}
    for bad in ("", "!!!", token[:-3], token + "A", "A" * 5000, make_page_token({})[:6]):
        assert error_of(read_page_token, bad).param == "pageToken"
    assert error_of(read_page_token, None).param == "pageToken"  # type: ignore[arg-type]


@settings(max_examples=500, deadline=None)
@given(st.text(max_size=80))
def test_fuzz_read_page_token_only_raises_search_error(text: str) -> None:
    try:
        assert isinstance(read_page_token(text), dict)
    except SearchError:
        pass


_JSON = st.recursive(st.none() | st.booleans() | st.integers() | st.text(max_size=10),
                     lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3),
                     max_leaves=10)


@settings(max_examples=200, deadline=None)
@given(st.dictionaries(st.text(max_size=8), _JSON, max_size=5))
def test_fuzz_page_token_round_trip(state: dict) -> None:
    assert read_page_token(make_page_token(state)) == state


# ----------------------------------------------------------------------------- fuzz params

_VALUES = st.one_of(
    st.text(max_size=40),
    st.sampled_from(["RECRUITING", "distance(1,2,3mi)", "NCT04852770", "phase:2 3", "AREA[StartDate]2022",
                     "true", "0", "1001", "LastUpdatePostDate:desc", "func:exp,scale:1km,offset:0km,decay:0.5",
                     "json", "NCTId", "lung AND", "(", "ConditionSearch:1"]),
    st.lists(st.text(max_size=10), max_size=3),
)


@settings(max_examples=800, deadline=None)
@given(st.dictionaries(st.sampled_from(API_PARAMS + ("bogus",)), _VALUES, max_size=5))
def test_fuzz_from_api_params_gives_request_or_search_error(params: dict) -> None:
    try:
        req = from_api_params(params)
    except SearchError as err:
        assert err.param and str(err).startswith(err.param + ": ")
        return
    assert isinstance(req, SearchRequest)
    assert 1 <= req.page_size <= 1000
    assert dataclasses.replace(req) == req  # a valid request re-validates to itself
