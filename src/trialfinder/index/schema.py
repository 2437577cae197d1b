"""The text index's schema: what each study document holds, and the one analyzer for text.

Why a derived index (tantivy, see ``docs/search-engine.md``): ranking with BM25 over block-max WAND
only scores the documents that can enter the top k, where SQLite's FTS5 ``bm25()`` scored every match
(0.2-0.5 s for "cancer" at registry size). The index also holds every filterable fact as an indexed
or fast field, so a search -- text, filters, total count, facets, sort, page -- is answered from one
snapshot of one index; the database stays the system of record and the index is rebuilt from it.

Bump :data:`SCHEMA_VERSION` whenever fields or the analyzer change: an index of another version is
rebuilt from the records when it is opened for writing.
"""

from __future__ import annotations

import math
from typing import Any

import tantivy

SCHEMA_VERSION = 3

#: The analyzer of every text field, registered under this name on each open (tantivy does not
#: persist custom analyzers): split on non-alphanumerics, drop tokens over 40 bytes, lowercase,
#: fold diacritics, English (Snowball) stemming -- the same steps as the FTS5 ``porter unicode61
#: remove_diacritics 2`` tokenizer the SQLite backend used before.
ANALYZER = "tf_text"

#: Logical text fields (one per weighted part of a study) and their ranking weights: titles and
#: conditions above keywords and interventions above summaries, descriptions and eligibility text.
FIELD_WEIGHTS: dict[str, float] = {
    "title": 10.0,
    "conditions": 10.0,
    "keywords": 5.0,
    "cond_mesh": 3.0,
    "interventions": 5.0,
    "intr_mesh": 2.0,
    "summary": 2.0,
    "description": 1.0,
    "eligibility": 0.5,
    "outcomes": 1.0,
    "sponsors": 1.0,
    "places": 0.5,
}
TEXT_FIELDS: tuple[str, ...] = tuple(FIELD_WEIGHTS)

#: Single-valued keyword fields that are also facets (fast, raw): exact enum values.
FACET_SINGLE = ("status", "study_type", "sex", "funder_type")
#: Multi-valued keyword facets (fast, raw).
FACET_MULTI = ("phase", "age_group", "intervention_type", "country", "condition")
#: Keyword fields for filters only (raw, lowercased where matching ignores case).
KEYWORDS = ("allocation", "intervention_model", "masking", "primary_purpose", "enrollment_type",
            "country_lc", "state_lc", "city_lc", "loc_status", "ids_lc", "idk", "present", "geo_cell")
#: Sizes in degrees of the latitude/longitude cells of ``geo_cell``, coarse to fine (see :func:`geo_cells`).
#: Why three levels: a circle is said as the cells wholly inside it plus the studies left over, and a
#: city-sized circle (25 mi) holds no whole half-degree cell, so with one level it listed every study in
#: it (30,000 keys around Beijing, 35 ms per query); sites cluster at town coordinates, which fine cells
#: cover whole.
GEO_CELL_LEVELS: tuple[float, ...] = (0.5, 0.1, 0.02)
#: Date fields as ``yyyymmdd`` integers (absent when the study has no such date).
DATE_FIELDS = ("start_date", "first_posted", "last_update_posted", "completion_date",
               "primary_completion_date")
#: The key of a study document (the 8 digits of its NCT id); 0 is the index's own metadata document.
KEY = "nct"
META_KEY = 0


def geo_cell_term(level: int, i: int, j: int) -> str:
    """The ``geo_cell`` term of cell (i, j) of level ``level`` (index into :data:`GEO_CELL_LEVELS`)."""
    return f"{level}:{i}:{j}"


def geo_cells(lat: float, lon: float) -> list[str]:
    """The ``geo_cell`` terms of a site, one per level: a radius search names the cells that lie wholly
    inside its circle (a few dozen terms) instead of listing every study in it (tens of thousands of keys)."""
    return [geo_cell_term(k, math.floor(lat / deg), math.floor(lon / deg)) for k, deg in enumerate(GEO_CELL_LEVELS)]


def analyzer() -> Any:
    return (tantivy.TextAnalyzerBuilder(tantivy.Tokenizer.simple())
            .filter(tantivy.Filter.remove_long(40))
            .filter(tantivy.Filter.lowercase())
            .filter(tantivy.Filter.ascii_fold())
            .filter(tantivy.Filter.stemmer("english"))
            .build())


_ANALYZER: list[Any] = []


def analyze(text: str) -> list[str]:
    """The index terms of a text, exactly as the text fields index it (for building queries)."""
    if not _ANALYZER:
        _ANALYZER.append(analyzer())
    return list(_ANALYZER[0].analyze(text))


def build_schema() -> Any:
    sb = tantivy.SchemaBuilder()
    sb.add_unsigned_field(KEY, stored=False, indexed=True, fast=True)
    for name in TEXT_FIELDS:
        sb.add_text_field(name, stored=False, tokenizer_name=ANALYZER, index_option="position")
    for name in FACET_SINGLE + FACET_MULTI:
        sb.add_text_field(name, stored=False, tokenizer_name="raw", fast=True, index_option="basic")
    for name in KEYWORDS:
        sb.add_text_field(name, stored=False, tokenizer_name="raw", index_option="basic")
    for name in DATE_FIELDS:
        sb.add_integer_field(name, stored=False, indexed=True, fast=True)
    sb.add_integer_field("enrollment", stored=False, indexed=True, fast=True)
    sb.add_integer_field("has_results", stored=False, indexed=True, fast=True)
    sb.add_integer_field("healthy", stored=False, indexed=True, fast=True)
    # ages in years: min_age/max_age are absent when the study sets none (Essie RANGE never matches
    # a missing value); age_lo/age_hi are 0 and 1000 then (the age filter admits any age)
    for name in ("min_age", "max_age", "age_lo", "age_hi"):
        sb.add_float_field(name, stored=False, indexed=True, fast=True)
    #: log2(2 + open_w) multiplies the relevance score: OPEN_BOOST for open studies, 1 otherwise
    sb.add_float_field("open_w", stored=False, indexed=False, fast=True)
    #: the database's change sequence of this version of the study (and, on the metadata document,
    #: the sequence the whole index reflects)
    sb.add_integer_field("seq", stored=False, indexed=True, fast=True)
    sb.add_integer_field("schema_version", stored=False, indexed=False, fast=True)
    return sb.build()
