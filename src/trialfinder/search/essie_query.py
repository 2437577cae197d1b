"""Compiling an Essie AST (:mod:`trialfinder.search.essie`) to a text-index query.

Text operands match the fields of the enclosing ``AREA`` (words all required, in any of its fields; a
phrase within one field); enum, date, number, age, boolean and identifier operands match the index's
keyword and numeric fields; ``DISTANCE`` matches the studies with a site in the circle, found with the
site coordinates (:mod:`trialfinder.search.geo`). Values never become query-parser text: every query
is built from typed parts.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import tantivy

from trialfinder.index.document import date_int
from trialfinder.index.schema import TEXT_FIELDS
from trialfinder.search import essie as E

Q = tantivy.Query
Occur = tantivy.Occur

AREA_TEXT_FIELDS: dict[str, tuple[str, ...]] = {
    "BasicSearch": TEXT_FIELDS, "PatientSearch": TEXT_FIELDS,
    "ConditionSearch": ("conditions", "keywords", "title", "cond_mesh"),
    "InterventionSearch": ("interventions", "intr_mesh", "title"),
    "LocationSearch": ("places",), "OutcomeSearch": ("outcomes",), "SponsorSearch": ("sponsors",),
    "TitleSearch": ("title",),
}
TEXT_FIELD_OF: dict[str, tuple[str, ...]] = {
    "BriefTitle": ("title",), "OfficialTitle": ("title",), "Acronym": ("title",),
    "Condition": ("conditions",), "Keyword": ("keywords",),
    "ConditionMeshTerm": ("cond_mesh",), "ConditionAncestorTerm": ("cond_mesh",),
    "InterventionMeshTerm": ("intr_mesh",), "InterventionAncestorTerm": ("intr_mesh",),
    "InterventionName": ("interventions",), "InterventionOtherName": ("interventions",),
    "ArmGroupLabel": ("interventions",),
    "BriefSummary": ("summary",), "DetailedDescription": ("description",),
    "EligibilityCriteria": ("eligibility",), "StudyPopulation": ("eligibility",),
    "PrimaryOutcomeMeasure": ("outcomes",), "SecondaryOutcomeMeasure": ("outcomes",),
    "OtherOutcomeMeasure": ("outcomes",),
    "LeadSponsorName": ("sponsors",), "CollaboratorName": ("sponsors",), "OrgFullName": ("sponsors",),
    "LocationFacility": ("places",), "LocationCity": ("places",), "LocationState": ("places",),
    "LocationCountry": ("places",),
}
ENUM_FIELD: dict[str, str] = {
    "OverallStatus": "status", "StudyType": "study_type", "Sex": "sex", "LeadSponsorClass": "funder_type",
    "OrgClass": "funder_type", "DesignAllocation": "allocation", "DesignInterventionModel": "intervention_model",
    "DesignPrimaryPurpose": "primary_purpose", "DesignMasking": "masking", "EnrollmentType": "enrollment_type",
    "Phase": "phase", "StdAge": "age_group", "InterventionType": "intervention_type",
    "LocationStatus": "loc_status",
}
VALUE_FIELD: dict[str, tuple[str, Any]] = {
    "StartDate": ("start_date", "date"), "PrimaryCompletionDate": ("primary_completion_date", "date"),
    "CompletionDate": ("completion_date", "date"), "StudyFirstPostDate": ("first_posted", "date"),
    "LastUpdatePostDate": ("last_update_posted", "date"), "EnrollmentCount": ("enrollment", "int"),
    "MinimumAge": ("min_age", "float"), "MaximumAge": ("max_age", "float"),
}
BOOL_FIELD = {"HealthyVolunteers": "healthy", "HasResults": "has_results"}
ID_KIND = {"NCTIdAlias": "alias", "OrgStudyId": "org", "SecondaryId": "secondary"}


class EssieCompiler:
    """Builds index queries for Essie trees and text; ``words_query`` turns words into field queries."""

    def __init__(self, schema: Any, text_query: Callable[[tuple[str, ...], tuple[str, ...], bool], Any],
                 sites_within: Callable[[float, float, float], list[int]]) -> None:
        self.schema = schema
        self.text_query = text_query
        self.sites_within = sites_within

    def compile(self, node: Any, field: str | None = None) -> Any:
        s = self.schema
        if isinstance(node, E.And):
            return Q.boolean_query([(Occur.Must, self.compile(x, field)) for x in node.items])
        if isinstance(node, E.Or):
            return Q.boolean_query([(Occur.Should, self.compile(x, field)) for x in node.items])
        if isinstance(node, E.Not):
            return Q.boolean_query([(Occur.Must, Q.all_query()), (Occur.MustNot, self.compile(node.item, field))])
        if isinstance(node, E.Area):
            return self.compile(node.node, node.field)
        if isinstance(node, E.Expansion | E.Coverage | E.Tilt | E.Search):
            return self.compile(node.node, field)
        if isinstance(node, E.Term):
            return self.term(node, field)
        if isinstance(node, E.Range):
            return self.range(node, field)
        if isinstance(node, E.Missing):
            return self.missing(field)
        if isinstance(node, E.Distance):
            ncts = self.sites_within(node.lat, node.lon, node.radius_km)
            return Q.term_set_query(s, "nct", ncts) if ncts else Q.empty_query()
        raise E.SearchError("filter.advanced", f"unsupported expression {type(node).__name__}")

    def term(self, t: Any, field: str | None) -> Any:
        s = self.schema
        if field is None or field in AREA_TEXT_FIELDS or field in TEXT_FIELD_OF:
            fields = AREA_TEXT_FIELDS.get(field or "BasicSearch") or TEXT_FIELD_OF.get(field or "", TEXT_FIELDS)
            return self.text_query(tuple(t.text.split()), fields, t.phrase)
        value = t.text.strip()
        if field in ENUM_FIELD:
            v = value.upper().replace(" ", "_")
            if field == "Phase" and v.isdigit():
                v = "PHASE" + v
            return Q.term_query(s, ENUM_FIELD[field], v)
        if field in BOOL_FIELD:
            truth = value.lower() in ("true", "yes", "y", "1")
            return Q.term_query(s, BOOL_FIELD[field], 1 if truth else 0)
        if field == "NCTId":
            num = _nct_number(value)
            return Q.term_query(s, "nct", num) if num is not None else Q.empty_query()
        if field in ID_KIND:
            return Q.term_query(s, "idk", f"{ID_KIND[field]}:{value.lower()}")
        if field == "IdSearch":
            return Q.term_query(s, "ids_lc", value.lower())
        raise E.SearchError("filter.advanced", f"AREA[{field}] is not searchable in trialfinder yet")

    def range(self, r: Any, field: str | None) -> Any:
        spec = VALUE_FIELD.get(field or "")
        if spec is None:
            raise E.SearchError("filter.advanced", f"RANGE is not supported on AREA[{field}]")
        name, kind = spec
        return value_range(self.schema, name, kind, r.lo, r.hi)

    def missing(self, field: str | None) -> Any:
        s = self.schema
        if field in ("ResultsFirstPostDate", "ResultsFirstSubmitDate", "HasResults"):
            return Q.term_query(s, "has_results", 0)
        present = None
        if field in VALUE_FIELD:
            present = VALUE_FIELD[field][0]
        elif field in ENUM_FIELD and field not in ("InterventionType", "LocationStatus"):
            present = ENUM_FIELD[field]
        elif field == "LocationGeoPoint":
            present = "geo"
        elif field in ("LocationFacility", "LocationCity", "LocationCountry", "LocationState"):
            present = "locations"
        elif field in TEXT_FIELD_OF:
            present = TEXT_FIELD_OF[field][0]
        if present is None:
            raise E.SearchError("filter.advanced", f"MISSING is not supported on AREA[{field}]")
        return Q.boolean_query([(Occur.Must, Q.all_query()), (Occur.MustNot, Q.term_query(s, "present", present))])


def value_range(schema: Any, name: str, kind: str, lo: Any, hi: Any) -> Any:
    """A range over a numeric field; a study without a value never matches."""
    lo_v: float | None  # an int for date and int fields
    hi_v: float | None
    if kind == "date":
        lo_v = date_int(str(lo)) if lo is not None else None
        hi_v = date_int(str(hi)) if hi is not None else None
        ftype = tantivy.FieldType.Integer
    elif kind == "int":
        lo_v = int(float(lo)) if lo is not None else None
        hi_v = int(float(hi)) if hi is not None else None
        ftype = tantivy.FieldType.Integer
    else:
        lo_v = float(lo) - 1e-6 if lo is not None else None
        hi_v = float(hi) + 1e-6 if hi is not None else None
        ftype = tantivy.FieldType.Float
    if lo_v is None and hi_v is None:
        return Q.exists_query(name)
    return Q.range_query(schema, name, ftype, lo_v, hi_v)


def _nct_number(value: str) -> int | None:
    v = value.strip().upper()
    if v.startswith("NCT") and v[3:].isdigit():
        return int(v[3:])
    return None
