"""Compiling an Essie AST (:mod:`trialfinder.search.essie`) to an SQLite WHERE fragment over ``s``.

Text operands become FTS5 sub-queries on the columns of the enclosing ``AREA``; enum, date, number, age,
boolean, identifier and geographic operands become conditions on the normalised columns. Values are
always bound parameters.
"""

from __future__ import annotations

import math
from typing import Any

from trialfinder.search import essie as E
from trialfinder.store.sqlite import FTS_COLUMNS
from trialfinder.store.sqlite_search import fts_quote

_AREA_COLUMNS: dict[str, tuple[str, ...]] = {
    "BasicSearch": FTS_COLUMNS, "PatientSearch": FTS_COLUMNS,
    "ConditionSearch": ("conditions", "keywords", "title", "cond_mesh"),
    "InterventionSearch": ("interventions", "intr_mesh", "title"),
    "LocationSearch": ("places",), "OutcomeSearch": ("outcomes",), "SponsorSearch": ("sponsors",),
    "TitleSearch": ("title",),
}
_TEXT_COLUMNS: dict[str, tuple[str, ...]] = {
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
_ENUM_COLUMNS = {
    "OverallStatus": "s.overall_status", "StudyType": "s.study_type", "Sex": "s.sex",
    "LeadSponsorClass": "s.lead_class", "OrgClass": "s.lead_class", "DesignAllocation": "s.allocation",
    "DesignInterventionModel": "s.intervention_model", "DesignPrimaryPurpose": "s.primary_purpose",
    "DesignMasking": "s.masking", "EnrollmentType": "s.enrollment_type",
}
_LIST_COLUMNS = {"Phase": "s.phases", "StdAge": "s.std_ages"}
_VALUE_COLUMNS = {
    "StartDate": "s.start_date", "PrimaryCompletionDate": "s.primary_completion_date",
    "CompletionDate": "s.completion_date", "StudyFirstPostDate": "s.first_posted",
    "LastUpdatePostDate": "s.last_update_posted", "EnrollmentCount": "s.enrollment",
    "MinimumAge": "s.min_age", "MaximumAge": "s.max_age",
}
_BOOL_COLUMNS = {"HealthyVolunteers": "s.healthy_volunteers", "HasResults": "s.has_results"}


def compile_essie(node: Any) -> tuple[str, list[Any]]:
    """An SQL boolean expression over ``s`` (studies) and its parameters."""
    return _Compiler().node(node, None)


class _Compiler:
    def node(self, n: Any, field: str | None) -> tuple[str, list[Any]]:
        if isinstance(n, E.And):
            parts = [self.node(x, field) for x in n.items]
            return "(" + " AND ".join(p for p, _ in parts) + ")", [v for _, ps in parts for v in ps]
        if isinstance(n, E.Or):
            parts = [self.node(x, field) for x in n.items]
            return "(" + " OR ".join(p for p, _ in parts) + ")", [v for _, ps in parts for v in ps]
        if isinstance(n, E.Not):
            sql, params = self.node(n.item, field)
            return f"(NOT {sql})", params
        if isinstance(n, E.Area):
            return self.node(n.node, n.field)
        if isinstance(n, E.Expansion | E.Coverage | E.Tilt | E.Search):
            return self.node(n.node, field)
        if isinstance(n, E.Term):
            return self.term(n, field)
        if isinstance(n, E.Range):
            return self.range(n, field)
        if isinstance(n, E.Missing):
            return self.missing(field)
        if isinstance(n, E.Distance):
            return self.distance(n)
        raise E.SearchError("filter.advanced", f"unsupported expression {type(n).__name__}")

    def term(self, t: Any, field: str | None) -> tuple[str, list[Any]]:
        if field is None or field in _AREA_COLUMNS or field in _TEXT_COLUMNS:
            cols = _AREA_COLUMNS.get(field or "BasicSearch") or _TEXT_COLUMNS.get(field or "", FTS_COLUMNS)
            text = fts_quote(tuple(t.text.split()), t.phrase)
            if not text:
                return "0", []
            expr = "{" + " ".join(cols) + "} : (" + text + ")"
            return "s.sid IN (SELECT rowid FROM study_text WHERE study_text MATCH ?)", [expr]
        value = t.text.strip()
        if field in _ENUM_COLUMNS:
            return f"{_ENUM_COLUMNS[field]} = ? COLLATE NOCASE", [value.upper().replace(" ", "_")]
        if field in _LIST_COLUMNS:
            v = value.upper().replace(" ", "_")
            if field == "Phase" and v.isdigit():
                v = "PHASE" + v
            return f"(' ' || {_LIST_COLUMNS[field]} || ' ') LIKE ?", [f"% {v} %"]
        if field == "InterventionType":
            return ("EXISTS (SELECT 1 FROM interventions i WHERE i.sid = s.sid AND i.type = ? COLLATE NOCASE)",
                    [value.upper().replace(" ", "_")])
        if field == "LocationStatus":
            return ("EXISTS (SELECT 1 FROM locations l WHERE l.sid = s.sid AND l.status = ? COLLATE NOCASE)",
                    [value.upper().replace(" ", "_")])
        if field in _BOOL_COLUMNS:
            truth = value.lower() in ("true", "yes", "y", "1")
            return f"{_BOOL_COLUMNS[field]} = ?", [1 if truth else 0]
        if field == "NCTId":
            return "s.nct_id = ?", [value.upper()]
        if field in ("NCTIdAlias", "OrgStudyId", "SecondaryId"):
            kind = {"NCTIdAlias": "alias", "OrgStudyId": "org", "SecondaryId": "secondary"}[field]
            return ("s.sid IN (SELECT sid FROM identifiers WHERE kind = ? AND value = ? COLLATE NOCASE)",
                    [kind, value])
        if field == "IdSearch":
            return ("(s.nct_id = ? OR s.sid IN (SELECT sid FROM identifiers WHERE value = ? COLLATE NOCASE))",
                    [value.upper(), value])
        raise E.SearchError("filter.advanced", f"AREA[{field}] is not searchable in trialfinder yet")

    def range(self, r: Any, field: str | None) -> tuple[str, list[Any]]:
        col = _VALUE_COLUMNS.get(field or "")
        if col is None:
            raise E.SearchError("filter.advanced", f"RANGE is not supported on AREA[{field}]")
        parts, params = [f"{col} IS NOT NULL"], []
        if r.lo is not None:
            parts.append(f"{col} >= ?")
            params.append(r.lo)
        if r.hi is not None:
            parts.append(f"{col} <= ?")
            params.append(r.hi)
        return "(" + " AND ".join(parts) + ")", params

    def missing(self, field: str | None) -> tuple[str, list[Any]]:
        if field in ("ResultsFirstPostDate", "ResultsFirstSubmitDate", "HasResults"):
            return "s.has_results = 0", []
        col = _VALUE_COLUMNS.get(field or "") or _ENUM_COLUMNS.get(field or "") or _LIST_COLUMNS.get(field or "")
        if col is not None:
            return f"({col} IS NULL OR {col} = '')", []
        if field == "LocationGeoPoint":
            return "s.n_geo = 0", []
        if field in ("LocationFacility", "LocationCity", "LocationCountry", "LocationState"):
            return "s.n_locations = 0", []
        if field in _TEXT_COLUMNS:
            return (f"s.sid NOT IN (SELECT rowid FROM study_text WHERE {_TEXT_COLUMNS[field][0]} != '')", [])
        raise E.SearchError("filter.advanced", f"MISSING is not supported on AREA[{field}]")

    def distance(self, d: Any) -> tuple[str, list[Any]]:
        dlat = d.radius_km / 111.0
        dlon = min(180.0, d.radius_km / (111.0 * max(math.cos(math.radians(d.lat)), 0.01)))
        return ("EXISTS (SELECT 1 FROM location_points p JOIN locations l ON l.lid = p.lid WHERE l.sid = s.sid "
                "AND p.min_lat BETWEEN ? AND ? AND p.min_lon BETWEEN ? AND ? "
                "AND tf_dist_km(?, ?, l.lat, l.lon) <= ?)",
                [d.lat - dlat, d.lat + dlat, d.lon - dlon, d.lon + dlon, d.lat, d.lon, d.radius_km])
