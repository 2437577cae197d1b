"""OpenAPI descriptions of the ``/api/v2`` parameters and responses, written out as data.

Why by hand instead of FastAPI signatures: the API's parameter names (``query.cond``, ``filter.geo``) are
not Python identifiers, unknown parameters must be rejected rather than ignored, and every error must be
ClinicalTrials.gov's plain-text 400, not FastAPI's 422 JSON. So handlers read the raw query string and
the published description is this data, following the official OpenAPI file's names, types and
patterns. The property-based API test (schemathesis) generates requests from exactly this description.
"""

from __future__ import annotations

from typing import Any

from trialfinder.model.enums import ENUMS

_STATUS = {"type": "string", "enum": list(ENUMS["Status"])}
NCT_PATTERN = "^[Nn][Cc][Tt]0*[1-9]\\d{0,7}$"
_FIELD_PATTERN = "^[a-zA-Z][a-zA-Z0-9\\-. ]*$"
_GEO_PATTERN = "^distance\\(-?\\d+(\\.\\d+)?,-?\\d+(\\.\\d+)?,\\d+(\\.\\d+)?(km|mi)?\\)$"


def _q(name: str, description: str, schema: dict[str, Any], **extra: Any) -> dict[str, Any]:
    return {"name": name, "in": "query", "required": False, "description": description, "schema": schema,
            **extra}


def _text(max_length: int = 1000) -> dict[str, Any]:
    return {"type": "string", "maxLength": max_length}


def _list(items: dict[str, Any], max_items: int | None = None) -> dict[str, Any]:
    schema: dict[str, Any] = {"type": "array", "items": items, "minItems": 1}
    if max_items:
        schema["maxItems"] = max_items
    return schema


_PIPE = {"style": "pipeDelimited", "explode": False}

_QUERY_AREAS = (
    ("query.cond", "Conditions or disease (Essie expression; synonyms such as acronyms are expanded)"),
    ("query.term", "Other terms: searches every field (Essie expression)"),
    ("query.locn", "Location terms: facility, city, state, country (Essie expression)"),
    ("query.titles", "Title or acronym (Essie expression)"),
    ("query.intr", "Intervention / treatment (Essie expression)"),
    ("query.outc", "Outcome measure (Essie expression)"),
    ("query.spons", "Sponsor or collaborator (Essie expression)"),
    ("query.lead", "Lead sponsor name (Essie expression)"),
    ("query.id", "Study identifiers: NCT id, org study id, secondary ids (Essie expression)"),
    ("query.patient", "Patient-oriented search (Essie expression)"),
)

LIST_STUDIES_PARAMS: list[dict[str, Any]] = [
    _q("format", "json (default) or csv (one page; CSV headers x-next-page-token, x-total-count)",
       {"type": "string", "enum": ["csv", "json"], "default": "json"}),
    _q("markupFormat", "Format of markup fields; records are stored as markdown",
       {"type": "string", "enum": ["markdown", "legacy"], "default": "markdown"}),
    *(_q(name, desc, _text()) for name, desc in _QUERY_AREAS),
    _q("filter.overallStatus", "Comma- or pipe-separated list of overall statuses", _list(_STATUS), **_PIPE),
    _q("filter.geo", "distance(latitude,longitude,radius): studies with a site in the circle; the radius "
                     "needs a unit (mi or km)", {"type": "string", "pattern": _GEO_PATTERN}),
    _q("filter.ids", "Comma- or pipe-separated NCT ids (current or alias ids)",
       _list({"type": "string", "pattern": NCT_PATTERN}, 1000), **_PIPE),
    _q("filter.advanced", "Filter by an Essie expression, e.g. AREA[Phase]PHASE3", _text()),
    _q("filter.synonyms", "area:synonym_id pairs (accepted for compatibility)",
       _list({"type": "string", "pattern": "^[A-Za-z]+:\\d+$"}, 100), **_PIPE),
    _q("postFilter.overallStatus", "As filter.overallStatus", _list(_STATUS), **_PIPE),
    _q("postFilter.geo", "As filter.geo", {"type": "string", "pattern": _GEO_PATTERN}),
    _q("postFilter.ids", "As filter.ids", _list({"type": "string", "pattern": NCT_PATTERN}, 1000), **_PIPE),
    _q("postFilter.advanced", "As filter.advanced", _text()),
    _q("postFilter.synonyms", "As filter.synonyms",
       _list({"type": "string", "pattern": "^[A-Za-z]+:\\d+$"}, 100), **_PIPE),
    _q("aggFilters", "The website's filters: comma-separated filter_id:space-separated option codes, "
                     "e.g. results:with,status:com or status:not rec,sex:f,healthy:y", _text()),
    _q("geoDecay", "Proximity factor for ranking by distance from filter.geo",
       {"type": "string", "pattern": "^func:(gauss|exp|linear),scale:(\\d+(\\.\\d+)?(km|mi)),"
                                     "offset:(\\d+(\\.\\d+)?(km|mi)),decay:(\\d+(\\.\\d+)?)$"}),
    _q("fields", "Fields to return: piece names (NCTId, BriefTitle), module names or dotted paths; for "
                 "csv, CSV column names", _list({"type": "string", "pattern": _FIELD_PATTERN}, 100), **_PIPE),
    _q("sort", "Up to two of @relevance, LastUpdatePostDate, StudyFirstPostDate, StartDate, "
               "EnrollmentCount, distance, each with :asc or :desc",
       {"type": "array", "maxItems": 2, "items": {"type": "string", "enum": [
           f"{f}{d}" for f in ("@relevance", "LastUpdatePostDate", "StudyFirstPostDate", "StartDate",
                               "EnrollmentCount", "distance") for d in ("", ":asc", ":desc")]}}, **_PIPE),
    _q("countTotal", "Return totalCount with the first page", {"type": "boolean", "default": False}),
    _q("pageSize", "Studies per page: default 10; values above 1,000 are coerced down to 1,000",
       {"type": "integer", "minimum": 0, "default": 10}),
    _q("pageToken", "nextPageToken of the previous page (same parameters otherwise)", _text(4096)),
]

FETCH_STUDY_PARAMS: list[dict[str, Any]] = [
    {"name": "nctId", "in": "path", "required": True, "description": "NCT number; an alias id redirects (301)",
     "schema": {"type": "string", "pattern": NCT_PATTERN}},
    _q("format", "json (default), csv, ris or json.zip",
       {"type": "string", "enum": ["csv", "json", "json.zip", "ris"], "default": "json"}),
    _q("markupFormat", "Format of markup fields", {"type": "string", "enum": ["markdown", "legacy"]}),
    _q("fields", "Fields to return (json) or CSV columns (csv)",
       _list({"type": "string", "pattern": _FIELD_PATTERN}, 100), **_PIPE),
]

METADATA_PARAMS: list[dict[str, Any]] = [
    _q("includeIndexedOnly", "Accepted for compatibility", {"type": "boolean", "default": False}),
    _q("includeHistoricOnly", "Accepted for compatibility", {"type": "boolean", "default": False}),
]

FIELD_VALUES_PARAMS: list[dict[str, Any]] = [
    _q("types", "Field types", {"type": "array", "items": {"type": "string", "enum": list(
        ENUMS["FieldStatsType"])}}, **_PIPE),
    _q("fields", "Piece names or field paths (enum fields indexed by the store)",
       _list({"type": "string", "enum": [
           "OverallStatus", "StudyType", "Phase", "LeadSponsorClass", "Sex", "DesignAllocation",
           "DesignInterventionModel", "DesignMasking", "DesignPrimaryPurpose", "EnrollmentType"]}), **_PIPE),
]

_INT = {"type": "integer"}
_STR = {"type": "string"}
_FIELD_NODE = {"type": "object", "required": ["name", "piece", "sourceType", "type"],
               "properties": {"name": _STR, "piece": _STR, "sourceType": _STR, "type": _STR,
                              "isEnum": {"type": "boolean"}, "children": {"type": "array"}}}

SCHEMAS: dict[str, dict[str, Any]] = {
    "PagedStudies": {"type": "object", "required": ["studies"], "additionalProperties": False,
                     "properties": {"studies": {"type": "array", "items": {"type": "object"}},
                                    "nextPageToken": _STR, "totalCount": _INT}},
    "Study": {"type": "object"},
    "FieldNodeList": {"type": "array", "items": _FIELD_NODE},
    "EnumInfoList": {"type": "array", "items": {
        "type": "object", "required": ["pieces", "type", "values"], "additionalProperties": False,
        "properties": {"pieces": {"type": "array", "items": _STR}, "type": _STR, "values": {
            "type": "array", "items": {"type": "object", "required": ["legacyValue", "value"],
                                       "properties": {"legacyValue": _STR, "value": _STR}}}}}},
    "SearchDocumentList": {"type": "array", "items": {
        "type": "object", "required": ["areas", "name"], "properties": {"areas": {"type": "array"}, "name": _STR}}},
    "GzipStats": {"type": "object", "additionalProperties": False,
                  "required": ["averageSizeBytes", "largestStudies", "percentiles", "ranges", "totalStudies"],
                  "properties": {"averageSizeBytes": _INT, "totalStudies": _INT, "percentiles": {"type": "object"},
                                 "largestStudies": {"type": "array", "items": {
                                     "type": "object", "required": ["id", "sizeBytes"],
                                     "properties": {"id": _STR, "sizeBytes": _INT}}},
                                 "ranges": {"type": "array", "items": {
                                     "type": "object", "required": ["sizeRange", "studiesCount"],
                                     "properties": {"sizeRange": _STR, "studiesCount": _INT}}}}},
    "FieldValuesStatsList": {"type": "array", "items": {
        "type": "object", "required": ["field", "missingStudiesCount", "piece", "type"],
        "properties": {"field": _STR, "piece": _STR, "type": _STR, "missingStudiesCount": _INT,
                       "uniqueValuesCount": _INT, "topValues": {"type": "array", "items": {
                           "type": "object", "required": ["studiesCount", "value"],
                           "properties": {"studiesCount": _INT, "value": _STR}}}}}},
    "Version": {"type": "object", "required": ["apiVersion"], "additionalProperties": False,
                "properties": {"apiVersion": _STR, "dataTimestamp": _STR}},
}


def json_response(schema: str, *, csv: bool = False, ris: bool = False, zip_: bool = False) -> dict[str, Any]:
    """The 200 response of an operation: JSON with the named schema, plus the other formats it offers."""
    content: dict[str, Any] = {"application/json": {"schema": SCHEMAS[schema]}}
    if csv:
        content["text/csv"] = {"schema": {"type": "string"}}
    if ris:
        content["application/x-research-info-systems"] = {"schema": {"type": "string"}}
    if zip_:
        content["application/zip"] = {"schema": {"type": "string", "format": "binary"}}
    return {"description": "OK", "content": content}


ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    400: {"description": "Bad Request: a plain-text message naming the parameter",
          "content": {"text/plain": {"schema": {"type": "string"}}}},
    414: {"description": "URI Too Long: the query string exceeds 48 KB",
          "content": {"text/plain": {"schema": {"type": "string"}}}},
    503: {"description": "The request needed more work than one request may do",
          "content": {"text/plain": {"schema": {"type": "string"}}}},
}
