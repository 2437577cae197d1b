"""One study as a text-index document (JSON for ``IndexWriter.add_json``).

Why JSON built here: the ingest workers build it next to the database rows, so the single writer
process only hands a ready string to tantivy (whose own threads parse and index it) -- one call per
study instead of dozens of ``Document.add_*`` calls in the writer.
"""

from __future__ import annotations

from typing import Any

import orjson

from trialfinder.index.schema import SCHEMA_VERSION, geo_cells
from trialfinder.model.countries import spellings
from trialfinder.model.statuses import OPEN_BOOST, OPEN_STATUSES

#: ``open_w`` such that tantivy's weight ``log2(2 + open_w)`` equals OPEN_BOOST.
OPEN_WEIGHT = 2.0 ** OPEN_BOOST - 2.0


def text_fields(s: Any) -> dict[str, str]:
    """The texts of one normalised study, one per weighted field (see ``schema.FIELD_WEIGHTS``)."""
    title = " ".join(x for x in (s.brief_title, s.official_title, s.acronym) if x)
    conds = " ; ".join(t for k, t in s.conditions if k == "condition")
    keywords = " ; ".join(t for k, t in s.conditions if k == "keyword")
    cond_mesh = " ; ".join(t for k, t in s.conditions if k in ("mesh", "mesh_ancestor"))
    ivs = " ; ".join(" ; ".join([n, *o]) for _t, n, o in s.interventions)
    arms = " ; ".join(a[0] for a in s.arms)
    intr_mesh = " ; ".join(t for _k, t in s.intervention_meshes)
    sponsors = " ; ".join(sp[0] for sp in s.sponsors)
    places = " ; ".join(sorted({" ".join(x for x in (loc[0], loc[1], loc[2], loc[4]) if x) for loc in s.locations}))
    return {"title": title, "conditions": conds, "keywords": keywords, "cond_mesh": cond_mesh,
            "interventions": (ivs + " ; " + arms) if arms else ivs, "intr_mesh": intr_mesh,
            "summary": s.brief_summary, "description": s.detailed_description, "eligibility": s.criteria,
            "outcomes": " ; ".join(s.outcomes), "sponsors": sponsors, "places": places}


def date_int(text: str | None) -> int | None:
    """``2024-06-01`` -> 20240601; a year-month date is the first of the month; None when absent."""
    if not text:
        return None
    digits = text[:10].replace("-", "")
    if len(digits) == 6:
        digits += "01"
    elif len(digits) == 4:
        digits += "0101"
    try:
        return int(digits)
    except ValueError:
        return None


def study_document(s: Any, seq: int = 0) -> dict[str, Any]:
    """The index document of a normalised study (:class:`trialfinder.model.study.NormalizedStudy`)."""
    doc: dict[str, Any] = {"nct": int(s.nct_id[3:]), "seq": seq}
    present: list[str] = []
    for name, text in text_fields(s).items():
        if text:
            doc[name] = text
            present.append(name)
    for name, value in (("status", s.overall_status), ("study_type", s.study_type), ("sex", s.sex),
                        ("funder_type", s.lead_class), ("allocation", s.allocation),
                        ("intervention_model", s.intervention_model), ("masking", s.masking),
                        ("primary_purpose", s.primary_purpose), ("enrollment_type", s.enrollment_type)):
        if value:
            doc[name] = value
            present.append(name)
    if s.phases:
        doc["phase"] = list(s.phases)
        present.append("phase")
    if s.std_ages:
        doc["age_group"] = list(s.std_ages)
        present.append("age_group")
    itypes = sorted({t for t, _n, _o in s.interventions if t})
    if itypes:
        doc["intervention_type"] = itypes
    conditions = sorted({t for k, t in s.conditions if k == "condition"})
    if conditions:
        doc["condition"] = conditions
    locs = s.locations
    if locs:
        present.append("locations")
        countries = sorted({loc[4] for loc in locs if loc[4]})
        if countries:
            doc["country"] = countries
            # every spelling, so a filter typed with an old name ("Russian Federation") still matches
            doc["country_lc"] = sorted({n.lower() for c in countries for n in spellings(c)})
        states = sorted({loc[2].lower() for loc in locs if loc[2]})
        if states:
            doc["state_lc"] = states
        cities = sorted({loc[1].lower() for loc in locs if loc[1]})
        if cities:
            doc["city_lc"] = cities
        statuses = sorted({loc[5] for loc in locs if loc[5]})
        if statuses:
            doc["loc_status"] = statuses
        if any(loc[6] is not None for loc in locs):
            present.append("geo")
            cells = sorted({c for loc in locs if loc[6] is not None and loc[7] is not None for c in geo_cells(loc[6], loc[7])})
            if cells:
                doc["geo_cell"] = cells
    ids = {s.nct_id.lower()} | {v.lower() for _k, v in s.identifiers if v}
    doc["ids_lc"] = sorted(ids)
    idk = sorted({f"{k}:{v.lower()}" for k, v in s.identifiers if v})
    if idk:
        doc["idk"] = idk
    for name in ("start_date", "first_posted", "last_update_posted", "completion_date", "primary_completion_date"):
        d = date_int(getattr(s, name))
        if d is not None:
            doc[name] = d
            present.append(name)
    if s.enrollment is not None:
        doc["enrollment"] = int(s.enrollment)
        present.append("enrollment")
    doc["has_results"] = 1 if s.has_results else 0
    doc["healthy"] = -1 if s.healthy_volunteers is None else int(bool(s.healthy_volunteers))
    if s.min_age is not None:
        doc["min_age"] = float(s.min_age)
        present.append("min_age")
    if s.max_age is not None:
        doc["max_age"] = float(s.max_age)
        present.append("max_age")
    doc["age_lo"] = float(s.min_age) if s.min_age is not None else 0.0
    doc["age_hi"] = float(s.max_age) if s.max_age is not None else 1000.0
    doc["open_w"] = OPEN_WEIGHT if s.overall_status in OPEN_STATUSES else 0.0
    doc["present"] = present
    doc["schema_version"] = SCHEMA_VERSION
    return doc


def study_json(s: Any, seq: int = 0) -> bytes:
    return orjson.dumps(study_document(s, seq))
