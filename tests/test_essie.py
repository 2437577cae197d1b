"""Tests for the Essie expression parser: structure, errors with positions, round trips, fuzzing."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from trialfinder.search.essie import (
    And,
    Area,
    Coverage,
    Distance,
    EssieSyntaxError,
    Expansion,
    Missing,
    Node,
    Not,
    Or,
    Range,
    Search,
    SearchError,
    Term,
    Tilt,
    format_essie,
    known_area_fields,
    parse_essie,
    radius_km_from_text,
    walk,
)


def T(text: str, phrase: bool = False) -> Term:
    return Term(text, phrase)


# ------------------------------------------------------------------------------ structure


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("lung", T("lung")),
        ("lung cancer", T("lung cancer")),  # adjacent words: one term, all words must match
        ("  lung   cancer  ", T("lung cancer")),
        ('"lung cancer"', T("lung cancer", True)),
        ('"lung cancer" egfr', And((T("lung cancer", True), T("egfr")))),
        ("a AND b", And((T("a"), T("b")))),
        ("a OR b", Or((T("a"), T("b")))),
        ("a AND b AND c", And((T("a"), T("b"), T("c")))),
        ("a OR b OR c", Or((T("a"), T("b"), T("c")))),
        ("a OR b AND c", Or((T("a"), And((T("b"), T("c")))))),  # AND binds tighter than OR
        ("a AND b OR c", Or((And((T("a"), T("b"))), T("c")))),
        ("(a OR b) AND c", And((Or((T("a"), T("b"))), T("c")))),
        ("NOT a", Not(T("a"))),
        ("NOT NOT a", Not(Not(T("a")))),
        ("bethesda NOT maryland", And((T("bethesda"), Not(T("maryland"))))),  # binary NOT = AND NOT
        ("heart attack AND NOT stroke", And((T("heart attack"), Not(T("stroke"))))),
        ("NOT a OR b", Or((Not(T("a")), T("b")))),  # NOT binds tighter than OR / AND
        ("NOT (a OR b)", Not(Or((T("a"), T("b"))))),
        ("(a)", T("a")),
        ("((a AND b))", And((T("a"), T("b")))),
        ("a (b OR c)", And((T("a"), Or((T("b"), T("c")))))),  # implicit AND before a group
        ("a AND (b AND c)", And((T("a"), T("b"), T("c")))),  # flattened
        ("and or not", T("and or not")),  # operators are upper case only
        ("ANDROGEN ORANGE NOTE", T("ANDROGEN ORANGE NOTE")),
        ("covid-19 1,2-dichloro", T("covid-19 1,2-dichloro")),
    ],
)
def test_boolean_structure(text: str, expected: Node) -> None:
    assert parse_essie(text) == expected


def test_escapes_make_operators_literal() -> None:
    assert parse_essie(r"\MISSING") == T("MISSING")
    assert parse_essie(r"rock \AND roll") == T("rock AND roll")
    assert parse_essie(r'"say \"hi\""') == T('say "hi"', True)
    assert parse_essie(r"a\(b\)") == T("a(b)")
    assert parse_essie("\\AREA") == T("AREA")
    assert parse_essie("trailing\\") == T("trailing\\")


def test_typographic_quotes_are_quotes() -> None:
    assert parse_essie("\u201clung cancer\u201d egfr") == And((T("lung cancer", True), T("egfr")))


def test_area_binds_to_the_next_term_or_group() -> None:
    assert parse_essie("AREA[Condition]heart attack") == Area("Condition", T("heart attack"))
    assert parse_essie("AREA[Condition]heart attack AND pain") == And(
        (Area("Condition", T("heart attack")), T("pain"))
    )
    assert parse_essie("AREA[Condition](a OR b)") == Area("Condition", Or((T("a"), T("b"))))
    assert parse_essie("NOT AREA[Condition]a") == Not(Area("Condition", T("a")))
    assert parse_essie('AREA[InterventionName]"vitamin d"') == Area("InterventionName", T("vitamin d", True))
    assert parse_essie("AREA [Phase] PHASE2") == Area("Phase", T("PHASE2"))


def test_area_field_names_are_canonicalised() -> None:
    assert parse_essie("AREA[condition]x") == Area("Condition", T("x"))
    assert parse_essie("AREA[Gender]FEMALE") == Area("Sex", T("FEMALE"))
    assert parse_essie("AREA[nctid]NCT01234567") == Area("NCTId", T("NCT01234567"))


def test_ranges_dates_ages_numbers() -> None:
    assert parse_essie("AREA[MinimumAge]RANGE[MIN, 16 years]") == Area("MinimumAge", Range(None, 16.0, "age"))
    assert parse_essie("AREA[MaximumAge]RANGE[16 years, MAX]") == Area("MaximumAge", Range(16.0, None, "age"))
    assert parse_essie("AREA[MaximumAge]RANGE[0 days, 6 Months]") == Area("MaximumAge", Range(0.0, 0.5, "age"))
    assert parse_essie("AREA[StartDate]RANGE[2020-01-01, MAX]") == Area(
        "StartDate", Range("2020-01-01", None, "date")
    )
    assert parse_essie("AREA[StartDate]RANGE[2020, 2021-02]") == Area(
        "StartDate", Range("2020-01-01", "2021-02-28", "date")
    )
    assert parse_essie("AREA[StartDate]RANGE[01/15/2023, max]") == Area(
        "StartDate", Range("2023-01-15", None, "date")
    )
    assert parse_essie("AREA[EnrollmentCount]RANGE[100, 500]") == Area(
        "EnrollmentCount", Range(100.0, 500.0, "number")
    )


def test_bare_values_on_typed_fields_become_equality_ranges() -> None:
    # the OpenAPI example: AREA[StartDate]2022 means "started in 2022"
    assert parse_essie("AREA[StartDate]2022") == Area("StartDate", Range("2022-01-01", "2022-12-31", "date"))
    assert parse_essie("AREA[EnrollmentCount]40") == Area("EnrollmentCount", Range(40.0, 40.0, "number"))
    assert parse_essie("AREA[MinimumAge]18 Years") == Area("MinimumAge", Range(18.0, 18.0, "age"))
    assert parse_essie("AREA[HealthyVolunteers]True") == Area("HealthyVolunteers", T("true"))


def test_missing_distance_and_recorded_operators() -> None:
    assert parse_essie("AREA[ResultsFirstPostDate]MISSING") == Area("ResultsFirstPostDate", Missing())
    assert parse_essie("NOT AREA[ResultsFirstPostDate]MISSING") == Not(Area("ResultsFirstPostDate", Missing()))
    node = parse_essie("AREA[LocationGeoPoint]DISTANCE[39.0035707,-77.1013313,25mi]")
    assert isinstance(node, Area) and isinstance(node.node, Distance)
    assert node.node.lat == 39.0035707 and node.node.lon == -77.1013313
    assert node.node.radius_km == pytest.approx(40.2336)
    assert parse_essie("AREA[LocationGeoPoint]DISTANCE[ 1 , 2 , 10 km ]") == Area(
        "LocationGeoPoint", Distance(1.0, 2.0, 10.0)
    )
    assert parse_essie("EXPANSION[concept]lung cancer") == Expansion("Concept", T("lung cancer"))
    assert parse_essie("COVERAGE[FullMatch]AREA[Condition]asthma") == Coverage(
        "FullMatch", Area("Condition", T("asthma"))
    )
    assert parse_essie("TILT[StartDate]asthma") == Tilt("StartDate", T("asthma"))
    assert parse_essie("SEARCH[Location](AREA[LocationCity]Portland AND AREA[LocationState]Maine)") == Search(
        "Location", And((Area("LocationCity", T("Portland")), Area("LocationState", T("Maine"))))
    )


def test_openapi_examples_parse() -> None:
    for text in (
        "lung cancer",
        "(head OR neck) AND pain",
        "AREA[LastUpdatePostDate]RANGE[2023-01-15,MAX]",
        "AREA[StartDate]2022",
        "AREA[MinimumAge]RANGE[MIN, 16 years] AND AREA[MaximumAge]RANGE[16 years, MAX]",
        "heart attack AND NOT stroke AND AREA[StudyType](Interventional OR Observational)",
        '(acetaminophen OR aspirin) AND NOT (heart failure OR "heart attack")',
    ):
        parse_essie(text)


def test_walk_visits_every_node() -> None:
    node = parse_essie("a AND (NOT AREA[Condition]b OR AREA[ResultsFirstPostDate]MISSING)")
    kinds = [type(n).__name__ for n in walk(node)]
    assert kinds == ["And", "Term", "Or", "Not", "Area", "Term", "Area", "Missing"]


def test_known_area_fields() -> None:
    fields = known_area_fields()
    for name, kind in [("Condition", "text"), ("InterventionName", "text"), ("BriefTitle", "text"),
                       ("OfficialTitle", "text"), ("OverallStatus", "enum"), ("Phase", "enum"),
                       ("LeadSponsorName", "text"), ("LocationCity", "text"), ("LocationCountry", "text"),
                       ("MinimumAge", "age"), ("MaximumAge", "age"), ("StartDate", "date"),
                       ("EnrollmentCount", "number"), ("Sex", "enum"), ("StudyType", "enum"),
                       ("HealthyVolunteers", "bool"), ("LocationGeoPoint", "geo"), ("BasicSearch", "area")]:
        assert fields[name] == kind
    with pytest.raises(TypeError):
        fields["New"] = "text"  # type: ignore[index]


# --------------------------------------------------------------------------------- errors


@pytest.mark.parametrize(
    ("text", "position", "fragment"),
    [
        ("", 0, "empty expression"),
        ("   ", 0, "empty expression"),
        ("AND a", 0, "'AND' needs a search term before it"),
        ("OR a", 0, "'OR' needs a search term before it"),
        ("a AND", 5, "expected a search term after AND"),
        ("a OR", 4, "expected a search term after OR"),
        ("a OR OR b", 5, "expected a search term after OR"),
        ("a AND OR b", 6, "expected a search term after AND"),
        ("NOT", 3, "expected a search term after NOT"),
        ("(a", 2, "expected ')' to close the '(' at position 0"),
        ("a)", 1, "unexpected ')'"),
        ("()", 1, "empty parentheses"),
        ('"abc', 0, "unterminated quoted phrase"),
        ('a "', 2, "unterminated quoted phrase"),
        ('""', 0, "empty quoted phrase"),
        ("foo [x]", 4, "unexpected '['"),
        ("foo]", 3, "unexpected ']'"),
        ("AREA x", 5, "expected '[' after AREA"),
        ("AREA[Condition", 14, "expected ']' after AREA field"),
        ("AREA[StartDate]RANGE[2020-01-01, MAX", 36, "expected ']' after RANGE bounds"),
        ("AREA[Conditon]x", 5, "unknown AREA field 'Conditon'; did you mean Condition?"),
        ("AREA[Nonsense]x", 5, "known_area_fields()"),
        ("AREA[Condition]", 15, "expected a search term after AREA[Condition]"),
        ("area[Condition]x", 0, "operators are upper case"),
        ("FOO[x]", 0, "unknown operator 'FOO['"),
        ("RANGE[1,2]", 0, "RANGE needs a field"),
        ("AREA[Condition]RANGE[1,2]", 15, "RANGE is not supported on text field Condition"),
        ("AREA[EnrollmentCount]RANGE[1]", 27, "two bounds"),
        ("AREA[EnrollmentCount]RANGE[1,2,3]", 27, "two bounds"),
        ("AREA[EnrollmentCount]RANGE[10, 5]", 27, "lower bound is greater"),
        ("AREA[EnrollmentCount]RANGE[, 5]", 27, "bound is empty"),
        ("AREA[EnrollmentCount]RANGE[MAX, 5]", 27, "MAX cannot be the lower bound"),
        ("AREA[EnrollmentCount]RANGE[1, lots]", 30, "invalid number 'lots'"),
        ("AREA[StartDate]RANGE[2020-13-01, MAX]", 21, "invalid date '2020-13-01'"),
        ("AREA[StartDate]RANGE[2020-02-30, MAX]", 21, "invalid date"),
        ("AREA[StartDate]soon", 15, "invalid date 'soon'"),
        ("AREA[MinimumAge]RANGE[MIN, old]", 27, "invalid age 'old'"),
        ("AREA[HealthyVolunteers]maybe", 23, "expects true or false"),
        ("MISSING", 0, "MISSING needs a field"),
        ("SEARCH[Location]MISSING", 16, "MISSING needs a field"),
        ("SEARCH[Trial]x", 7, "unknown SEARCH document"),
        ("EXPANSION[Huge]x", 10, "unknown EXPANSION mode"),
        ("COVERAGE[Most]x", 9, "unknown COVERAGE mode"),
        ("DISTANCE[1,2,3mi]", 0, "DISTANCE needs the geo field"),
        ("AREA[LocationCity]DISTANCE[1,2,3mi]", 18, "DISTANCE needs the geo field"),
        ("AREA[LocationGeoPoint]DISTANCE[1,2]", 31, "three arguments"),
        ("AREA[LocationGeoPoint]DISTANCE[1,2,50]", 35, "radius needs a unit: mi or km"),
        ("AREA[LocationGeoPoint]DISTANCE[91,2,50mi]", 31, "latitude 91 is out of range"),
        ("AREA[LocationGeoPoint]DISTANCE[1,-181,50mi]", 33, "longitude -181 is out of range"),
        ("AREA[LocationGeoPoint]DISTANCE[x,2,50mi]", 31, "invalid latitude 'x'"),
        ("AREA[LocationGeoPoint]DISTANCE[1,2,0mi]", 35, "greater than 0"),
        ("AREA[LocationGeoPoint]DISTANCE[1,2,30000km]", 35, "at most 20000 km"),
        ("AREA[LocationGeoPoint]Bethesda", 22, "expects DISTANCE"),
        ("(" * 80 + "a" + ")" * 80, 64, "nested too deeply"),
        ("NOT " * 80 + "a", 256, "nested too deeply"),
    ],
)
def test_syntax_errors_have_positions(text: str, position: int, fragment: str) -> None:
    with pytest.raises(EssieSyntaxError) as info:
        parse_essie(text, param="query.term")
    err = info.value
    assert err.position == position, str(err)
    assert fragment in str(err)
    assert str(err).startswith(f"query.term: syntax error at position {position}: ")
    assert err.param == "query.term"
    assert isinstance(err, SearchError) and isinstance(err, ValueError)


def test_error_can_be_reattributed() -> None:
    with pytest.raises(EssieSyntaxError) as info:
        parse_essie("a AND")
    moved = info.value.with_param("filter.advanced")
    assert isinstance(moved, EssieSyntaxError)
    assert moved.param == "filter.advanced" and moved.position == 5
    assert str(moved) == "filter.advanced: syntax error at position 5: " + info.value.detail


def test_too_long_and_non_text() -> None:
    with pytest.raises(EssieSyntaxError, match="too long"):
        parse_essie("a " * 6000)
    with pytest.raises(EssieSyntaxError, match="expected text"):
        parse_essie(None)  # type: ignore[arg-type]


def test_radius_km_from_text() -> None:
    assert radius_km_from_text("50mi") == pytest.approx(80.4672)
    assert radius_km_from_text("50 miles") == pytest.approx(80.4672)
    assert radius_km_from_text("25KM") == 25.0
    assert radius_km_from_text(" 2.5 km ") == 2.5
    for bad, message in [("50", "needs a unit"), ("far", "invalid radius"), ("0km", "greater than 0"),
                         ("20001km", "at most"), ("-5km", "invalid radius")]:
        with pytest.raises(ValueError, match=message):
            radius_km_from_text(bad)


# ------------------------------------------------------------------------------ round trip


@pytest.mark.parametrize(
    "text",
    [
        "lung cancer",
        '"lung cancer" egfr',
        "a OR b AND c",
        "(a OR b) AND NOT (c OR d)",
        r"\MISSING \AND \(x\) back\\slash",
        r'"say \"hi\" \\ there"',
        "AREA[StartDate]2022",
        "AREA[MinimumAge]RANGE[MIN, 6 months] OR AREA[MaximumAge]RANGE[1 week, 99.5 years]",
        "AREA[LocationGeoPoint]DISTANCE[39.0035707,-77.1013313,25mi]",
        "EXPANSION[None]COVERAGE[StartsWith]AREA[Condition]heart attack",
        "TILT[StartDate]SEARCH[Location](AREA[LocationCity]New York AND NOT AREA[LocationStatus]MISSING)",
        "AREA[EnrollmentCount]RANGE[0.5, 1e3]",
    ],
)
def test_format_round_trips(text: str) -> None:
    node = parse_essie(text)
    assert parse_essie(format_essie(node)) == node


def test_format_examples() -> None:
    assert format_essie(parse_essie("bethesda NOT maryland")) == "bethesda AND NOT maryland"
    assert format_essie(parse_essie("AREA[StartDate]2022")) == "AREA[StartDate]RANGE[2022-01-01, 2022-12-31]"
    assert format_essie(Or((And((T("a"), T("b"))), T("c")))) == "a AND b OR c"
    assert format_essie(And((Or((T("a"), T("b"))), T("c")))) == "(a OR b) AND c"
    assert format_essie(Not(And((T("a"), T("b"))))) == "NOT (a AND b)"
    with pytest.raises(TypeError):
        format_essie("not a node")  # type: ignore[arg-type]


# ---------------------------------------------------------------------------------- fuzzing

_ALPHABET = st.sampled_from(list('abcXYZ019 -_.,:/\\"()[]') + ["\t", "é", "\u00a0", "\u2003"])
_PIECES = st.sampled_from([
    "AND", "OR", "NOT", "MISSING", "AREA[", "AREA[Condition]", "AREA[StartDate]", "AREA[MinimumAge]",
    "AREA[LocationGeoPoint]", "AREA[HealthyVolunteers]", "AREA[EnrollmentCount]", "RANGE[", "RANGE[MIN, MAX]",
    "RANGE[2020, 2021]", "RANGE[1 year, 3 months]", "DISTANCE[1,2,3mi]", "DISTANCE[", "EXPANSION[Concept]",
    "COVERAGE[FullMatch]", "SEARCH[Location]", "TILT[StartDate]", "MIN", "MAX", " ", "(", ")", '"', "\\",
    "]", "[", ",", "true", "2022", "16 years", "lung", "cancer", "a", "b",
])
_TEXT = st.one_of(
    st.text(max_size=60),
    st.text(_ALPHABET, max_size=60),
    st.lists(_PIECES, max_size=25).map("".join),
    st.lists(_PIECES, max_size=25).map(" ".join),
)


@settings(max_examples=1500, deadline=None)
@given(_TEXT)
def test_fuzz_parse_gives_ast_or_syntax_error(text: str) -> None:
    try:
        node = parse_essie(text)
    except EssieSyntaxError as err:
        assert 0 <= err.position <= len(text)
        assert str(err).startswith(f"query: syntax error at position {err.position}: ")
        return
    # every tree that parses formats back to the same tree
    assert parse_essie(format_essie(node)) == node
    for sub in walk(node):
        if isinstance(sub, Term):
            assert sub.text and sub.text == " ".join(sub.text.split())
        if isinstance(sub, And | Or):
            assert len(sub.items) >= 2 and not any(isinstance(i, type(sub)) for i in sub.items)
