"""One name per country: legacy XML and older records spell some countries differently from API v2.

Why here (the model): every place that shows or groups countries (facets, ``/locations``, filters, the
map) reads the normalised location rows, so mapping the spellings once, when a record is normalised,
makes them agree everywhere. The canonical name is ClinicalTrials.gov's current (API v2) one.
:func:`spellings` gives every known name of a country, so a filter typed with an old name still matches.
"""

from __future__ import annotations

#: Other spelling -> the API v2 name.
ALIASES: dict[str, str] = {
    "Turkey": "Türkiye",
    "Turkiye": "Türkiye",
    "Russian Federation": "Russia",
    "Korea, Republic of": "South Korea",
    "Republic of Korea": "South Korea",
    "Korea": "South Korea",
    "Korea, Democratic People's Republic of": "North Korea",
    "Czech Republic": "Czechia",
    "Iran, Islamic Republic of": "Iran",
    "Syrian Arab Republic": "Syria",
    "Viet Nam": "Vietnam",
    "Moldova, Republic of": "Moldova",
    "Macedonia, The Former Yugoslav Republic of": "North Macedonia",
    "Macedonia": "North Macedonia",
    "Tanzania, United Republic of": "Tanzania",
    "Congo, The Democratic Republic of the": "The Democratic Republic of the Congo",
    "Lao People's Democratic Republic": "Laos",
    "Libyan Arab Jamahiriya": "Libya",
    "Taiwan, Province of China": "Taiwan",
    "Swaziland": "Eswatini",
    "Cote D'Ivoire": "Côte D'Ivoire",
    "Holy See (Vatican City State)": "Holy See",
    "Palestinian Territory, occupied": "Palestinian Territories",
    "Micronesia, Federated States of": "Micronesia",
    "Former Serbia and Montenegro": "Serbia and Montenegro",
}

_BY_KEY = {k.casefold(): v for k, v in ALIASES.items()}
_SPELLINGS: dict[str, tuple[str, ...]] = {}
for _other, _name in ALIASES.items():
    _SPELLINGS[_name] = (*_SPELLINGS.get(_name, (_name,)), _other)


def canonical_country(name: str) -> str:
    """The one name of a country (``"Russian Federation"`` -> ``"Russia"``); unknown names unchanged."""
    if not name:
        return name
    return _BY_KEY.get(name.strip().casefold(), name)


def spellings(name: str) -> tuple[str, ...]:
    """Every known name of the country called ``name`` (canonical first)."""
    canonical = canonical_country(name)
    return _SPELLINGS.get(canonical, (canonical,))
