"""The offline gazetteer (``trialfinder.sources.geocode``): geonames cities, US ZIPs, states, countries."""

from __future__ import annotations

import math
import time

import pytest

from trialfinder.sources.geocode import Gazetteer, Place, norm


@pytest.fixture(scope="module")
def gaz() -> Gazetteer:
    return Gazetteer()


def _km(a: tuple[float, float], b: tuple[float, float]) -> float:
    """Great-circle distance, to assert "this is the right place" without pinning data-set decimals."""
    lat1, lon1, lat2, lon2 = map(math.radians, (*a, *b))
    h = math.sin((lat2 - lat1) / 2) ** 2 + math.cos(lat1) * math.cos(lat2) * math.sin((lon2 - lon1) / 2) ** 2
    return 6371 * 2 * math.asin(math.sqrt(h))


BOSTON = (42.36, -71.06)
PARIS_FR = (48.86, 2.35)
PARIS_TX = (33.66, -95.56)
NANJING = (32.06, 118.78)


def _pt(p: Place | None) -> tuple[float, float]:
    assert p is not None
    return p.lat, p.lon


# ------------------------------------------------------------------------------------------ place()


@pytest.mark.parametrize("text", ["Boston, MA", "Boston, Massachusetts", "boston, ma", "Boston,MA",
                                  "Boston, Massachusetts, United States"])
def test_boston(gaz: Gazetteer, text: str) -> None:
    p = gaz.place(text)
    assert p is not None and p.kind == "city"
    assert _km(_pt(p), BOSTON) < 10
    assert p.country == "United States" and p.country_code == "US" and p.state == "Massachusetts"


def test_paris_france(gaz: Gazetteer) -> None:
    p = gaz.place("Paris, France")
    assert p is not None and p.kind == "city" and p.country == "France" and p.country_code == "FR"
    assert _km(_pt(p), PARIS_FR) < 10


def test_nanjing(gaz: Gazetteer) -> None:
    p = gaz.place("Nanjing")
    assert p is not None and p.kind == "city" and p.country == "China"
    assert _km(_pt(p), NANJING) < 20
    assert gaz.place("Nanjing, China") == p


def test_us_zip(gaz: Gazetteer) -> None:
    p = gaz.place("02115")
    assert p is not None and p.kind == "zip" and p.country_code == "US"
    assert _km(_pt(p), BOSTON) < 10
    assert "Boston" in p.name
    assert gaz.place("02115-1234") == p
    assert gaz.place("Boston, MA 02115") == p
    assert gaz.place("00000") is None


def test_paris_ambiguity(gaz: Gazetteer) -> None:
    """The bare name is the most populous Paris; a state or country picks the other."""
    assert _km(_pt(gaz.place("Paris")), PARIS_FR) < 10
    for text in ("Paris, Texas", "Paris, TX"):
        p = gaz.place(text)
        assert p is not None and p.country_code == "US" and p.state == "Texas"
        assert _km(_pt(p), PARIS_TX) < 10
    assert _km(_pt(gaz.place("Paris, France")), PARIS_FR) < 10


def test_country_and_state(gaz: Gazetteer) -> None:
    fr = gaz.place("France")
    assert fr is not None and fr.kind == "country" and fr.country == "France" and fr.country_code == "FR"
    assert _km(_pt(fr), PARIS_FR) < 600  # somewhere in France
    us = gaz.place("USA")
    assert us is not None and us.kind == "country" and us.country == "United States"
    ma = gaz.place("Massachusetts")
    assert ma is not None and ma.kind == "state" and ma.state == "Massachusetts"
    assert _km(_pt(ma), BOSTON) < 100
    ca = gaz.place("CA")
    assert ca is not None and ca.kind == "state" and ca.state == "California"
    kr = gaz.place("Korea, Republic of")
    assert kr is not None and kr.kind == "country" and kr.country == "Korea, Republic of"


def test_ctgov_country_spellings(gaz: Gazetteer) -> None:
    seoul = gaz.place("Seoul, Korea, Republic of")
    assert seoul is not None and seoul.kind == "city" and seoul.country_code == "KR"
    assert gaz.place("Moscow, Russian Federation").country_code == "RU"  # type: ignore[union-attr]
    assert gaz.place("Brno, Czech Republic").country_code == "CZ"  # type: ignore[union-attr]


def test_georgia_state_then_country(gaz: Gazetteer) -> None:
    athens = gaz.place("Athens, Georgia")
    assert athens is not None and athens.country_code == "US"
    tbilisi = gaz.place("Tbilisi, Georgia")
    assert tbilisi is not None and tbilisi.country_code == "GE"


def test_big_city_beats_same_named_state(gaz: Gazetteer) -> None:
    ny = gaz.place("New York")
    assert ny is not None and ny.kind == "city" and _km(_pt(ny), (40.71, -74.01)) < 10


def test_accents_case_and_abbreviations(gaz: Gazetteer) -> None:
    assert gaz.place("São Paulo") == gaz.place("sao paulo") == gaz.place("SAO PAULO, Brazil")
    assert _km(_pt(gaz.place("Koeln, Germany")), _pt(gaz.place("Köln"))) < 1
    assert _km(_pt(gaz.place("Cologne")), (50.94, 6.95)) < 10  # the big alternate name wins
    assert _km(_pt(gaz.place("St. Louis, MO")), _pt(gaz.place("Saint Louis, Missouri"))) < 1
    assert _km(_pt(gaz.place("Montreal")), (45.51, -73.59)) < 10


def test_small_us_town_from_zip_data(gaz: Gazetteer) -> None:
    p = gaz.place("Greenbrae, CA")  # not in geonames cities >= 5000; centroid of its ZIP codes
    assert p is not None and _km(_pt(p), (37.95, -122.52)) < 5


@pytest.mark.parametrize("text", ["", "   ", "xyzzy plugh", "12", ",,,"])
def test_unresolvable(gaz: Gazetteer, text: str) -> None:
    assert gaz.place(text) is None


# ------------------------------------------------------------------------------------------ locate()


def test_locate(gaz: Gazetteer) -> None:
    assert _km(gaz.locate("Boston", "Massachusetts", "United States"), BOSTON) < 10  # type: ignore[arg-type]
    assert _km(gaz.locate("Paris", None, "France"), PARIS_FR) < 10  # type: ignore[arg-type]
    assert _km(gaz.locate("Paris", "Texas", "United States"), PARIS_TX) < 10  # type: ignore[arg-type]
    assert _km(gaz.locate("Nanjing", "Jiangsu", "China"), NANJING) < 20  # type: ignore[arg-type]
    assert _km(gaz.locate("London", "Ontario", "Canada"), (42.98, -81.25)) < 10  # type: ignore[arg-type]
    assert _km(gaz.locate("London", None, "United Kingdom"), (51.51, -0.13)) < 10  # type: ignore[arg-type]


def test_locate_messy_ctgov_cities(gaz: Gazetteer) -> None:
    assert _km(gaz.locate("Paris Cedex 13", None, "France"), PARIS_FR) < 10  # type: ignore[arg-type]
    assert _km(gaz.locate("Praha 5", None, "Czechia"), (50.09, 14.42)) < 10  # type: ignore[arg-type]
    assert _km(gaz.locate("Hampstead, London", "England", "United Kingdom"), (51.51, -0.13)) < 20  # type: ignore[arg-type]
    assert _km(gaz.locate("Hong Kong", None, "China"), (22.3, 114.2)) < 30  # type: ignore[arg-type]
    assert _km(gaz.locate("Keesler AFB", "Mississippi", "United States"), (30.41, -88.92)) < 20  # type: ignore[arg-type]


def test_locate_state_is_a_hard_constraint(gaz: Gazetteer) -> None:
    """A wrong same-named town is worse than none for distance search."""
    assert gaz.locate("Paris", "Alaska", "United States") is None
    assert gaz.locate("Bedford Park", "South Australia", "Australia") is None or _km(
        gaz.locate("Bedford Park", "South Australia", "Australia"), (-35.03, 138.57)) < 30  # type: ignore[arg-type]
    assert gaz.locate("Paris", None, "Atlantis") is None  # unknown country: no guess
    assert gaz.locate(None, "Texas", "United States") is None
    assert gaz.locate("", None, None) is None


def test_locate_without_country_uses_us_state(gaz: Gazetteer) -> None:
    assert _km(gaz.locate("Paris", "TX", None), PARIS_TX) < 10  # type: ignore[arg-type]


def test_norm() -> None:
    assert norm("Saint-Étienne") == norm("St Etienne") == "saint etienne"
    assert norm("Łódź") == "lodz" and norm("O'Fallon") == "ofallon"
    assert norm("Washington, D.C.") == "washington d c"
    assert norm("南京") == ""


def test_helpers(gaz: Gazetteer) -> None:
    assert gaz.country_code("Korea, Republic of") == "KR"
    assert gaz.country_code("Côte D'Ivoire") == "CI"
    assert gaz.country_code("Narnia") is None
    assert gaz.us_state_code("massachusetts") == "MA" and gaz.us_state_code("MA") == "MA"
    assert gaz.us_state_code("District of Columbia") == "DC"


def test_load_time_and_lookup_speed() -> None:
    """One-time load ~0.9 s of CPU (budget 1.5 s; the bound is generous for slow CI machines).

    CPU time, not wall time: on a shared machine wall time measures the neighbours.
    """
    g = Gazetteer()
    t = time.process_time()
    g.load()
    assert time.process_time() - t < 3.0
    t = time.process_time()
    for _ in range(200):
        g.locate("Boston", "Massachusetts", "United States")
        g.place("Paris, France")
    assert time.process_time() - t < 0.5
