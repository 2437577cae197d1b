"""The JSON API under ``/api/v2``, compatible with ClinicalTrials.gov API v2.

Why compatible rather than "inspired by": existing ClinicalTrials.gov clients (R and Python packages,
notebooks, pipelines) then work against a trialfinder server by changing only their base URL. So the
paths, parameter names, response shapes and errors follow the official OpenAPI description: a bad
request is a 400 with a plain-text message naming the parameter, an unknown study a 404, an alias id a
301 to the study's current id. Parameters are parsed by :func:`trialfinder.search.from_api_params`, the
same parser the CLI and the pages use; no request string ever becomes SQL.
"""

from __future__ import annotations

import functools
import io
import json
import zipfile
from importlib import resources
from typing import Any

import orjson
from fastapi import APIRouter, Request
from fastapi.responses import PlainTextResponse, RedirectResponse, Response

from trialfinder import SearchError, from_api_params
from trialfinder.search.fields import resolve_field
from trialfinder.search.request import MAX_PAGE_SIZE, normalize_nct_id
from trialfinder.web import exports
from trialfinder.web.openapi_params import (
    ERROR_RESPONSES,
    FETCH_STUDY_PARAMS,
    FIELD_VALUES_PARAMS,
    LIST_STUDIES_PARAMS,
    METADATA_PARAMS,
    json_response,
)

router = APIRouter(prefix="/api/v2", tags=["ClinicalTrials.gov API v2"])

#: Parameters of ``/studies`` with a type, pattern or enum (not free text): an empty value is invalid.
TYPED_PARAMS = frozenset(p["name"] for p in LIST_STUDIES_PARAMS
                         if p["schema"].get("type") != "string" or "pattern" in p["schema"] or "enum" in p["schema"])

JSON = "application/json"


def api_params(request: Request) -> dict[str, str | list[str]]:
    """Query parameters as name -> value, or -> list of values when a parameter is repeated."""
    out: dict[str, str | list[str]] = {}
    for key, value in request.query_params.multi_items():
        if key in out:
            prev = out[key]
            out[key] = [*prev, value] if isinstance(prev, list) else [prev, value]
        else:
            out[key] = value
    return out


def _single(params: dict[str, str | list[str]], name: str) -> str | None:
    value = params.get(name)
    if isinstance(value, list):
        if len(set(value)) > 1:
            raise SearchError(name, "given more than once with different values")
        value = value[0]
    return value.strip() if isinstance(value, str) else None


def _only(params: dict[str, Any], allowed: tuple[str, ...]) -> None:
    for name in params:
        if name not in allowed:
            raise SearchError(name, f"unknown parameter; supported: {', '.join(allowed) or 'none'}")


def _no_empty(params: dict[str, Any], names: frozenset[str] | tuple[str, ...]) -> None:
    """An enum, boolean, pattern or list parameter given with an empty value is an error, not a default."""
    for name in names:
        if name in params:
            values = params[name] if isinstance(params[name], list) else [params[name]]
            if any(not str(v).strip() for v in values):
                raise SearchError(name, "empty value; leave the parameter out instead")


def _bool_param(params: dict[str, Any], name: str) -> bool:
    value = _single(params, name)
    if value is None:
        return False
    if value.lower() not in ("true", "false"):
        raise SearchError(name, f"expected true or false, got {value!r}")
    return value.lower() == "true"


def _dump(value: Any) -> bytes:
    return orjson.dumps(value)


def _pool(request: Request) -> Any:
    return request.app.state.pool


# ----------------------------------------------------------------------------------- field names


@functools.lru_cache(maxsize=1)
def metadata_tree() -> list[dict[str, Any]]:
    """The field tree of ``/studies/metadata`` (generated from the official OpenAPI file)."""
    path = resources.files("trialfinder.web") / "static" / "api" / "metadata.json"
    return json.loads(path.read_text(encoding="utf-8"))


@functools.lru_cache(maxsize=1)
def _field_index() -> tuple[dict[str, str], dict[str, str], dict[str, str]]:
    """(piece lower-cased -> dotted path, dotted path lower-cased -> dotted path, dotted path -> piece)."""
    pieces: dict[str, str] = {}
    paths: dict[str, str] = {}
    piece_of: dict[str, str] = {}

    def walk(nodes: list[dict[str, Any]], prefix: str) -> None:
        for node in nodes:
            path = prefix + node["name"]
            paths[path.lower()] = path
            piece_of[path] = node["piece"]
            pieces.setdefault(node["piece"].lower(), path)
            walk(node.get("children", []), path + ".")

    walk(metadata_tree(), "")
    return pieces, paths, piece_of


def resolve_fields(names: list[str] | tuple[str, ...], param: str = "fields") -> tuple[str, ...]:
    """``fields`` items (piece names, module names, dotted paths) -> names :func:`select_fields` accepts.

    An unknown name is an error: silently returning less than was asked for hides typos."""
    pieces, paths, _ = _field_index()
    out: list[str] = []
    for raw in names:
        name = raw.strip()
        if not name:
            continue
        if name == "@query":
            out.extend(("NCTId", "BriefTitle", "OverallStatus", "Condition", "InterventionName"))
            continue
        known = resolve_field(name)
        if known is not None and (known.lower() in paths or known in ("hasResults",)):
            out.append(name)
            continue
        path = pieces.get(name.lower()) or paths.get(name.lower())
        if path is None:
            raise SearchError(param, f"unknown field {name!r}; see /api/v2/studies/metadata for field and "
                                     f"piece names")
        out.append(path)
    if not out:
        raise SearchError(param, "must list at least one field (leave it out for whole records)")
    return tuple(dict.fromkeys(out))


def _split(value: str | list[str] | None) -> list[str]:
    if value is None:
        return []
    values = value if isinstance(value, list) else [value]
    return [p.strip() for v in values for p in v.replace("|", ",").split(",") if p.strip()]


# ----------------------------------------------------------------------------------------- studies


@router.get("/studies", summary="Studies", operation_id="listStudies",
            openapi_extra={"parameters": LIST_STUDIES_PARAMS},
            responses={200: json_response("PagedStudies", csv=True), **ERROR_RESPONSES})
def list_studies(request: Request) -> Response:
    """Studies matching query and filter parameters, page by page (``nextPageToken``)."""
    from trialfinder import search

    params = api_params(request)
    _no_empty(params, TYPED_PARAMS)  # "filter.geo=" is not a circle, "countTotal=" no boolean
    fmt = (_single(params, "format") or "json").lower()
    columns = None
    if fmt == "csv" and "fields" in params:
        try:
            columns = exports.csv_columns(_split(params.pop("fields")))
        except ValueError as exc:
            raise SearchError("fields", str(exc)) from None
    elif "fields" in params:
        params["fields"] = ",".join(resolve_fields(_split(params["fields"])))
    size = _single(params, "pageSize")
    if size and size.isdigit() and int(size) > MAX_PAGE_SIZE:
        params["pageSize"] = str(MAX_PAGE_SIZE)  # coerced down, as ClinicalTrials.gov does
    req = from_api_params(params)
    with _pool(request).store() as store:
        page = search(store, req, explain=False)
    # an index behind the database (another process is mid-write) is said, never hidden
    behind = {"x-trialfinder-index-behind": str(page.index_behind)} if page.index_behind else {}
    if req.format == "csv":
        headers = dict(behind)
        if page.next_page_token:
            headers["x-next-page-token"] = page.next_page_token
        if page.total_count is not None:
            headers["x-total-count"] = str(page.total_count)
        body = exports.to_csv([h.record for h in page.hits], columns, header=not req.page_token)
        return Response(body, media_type="text/csv; charset=utf-8", headers=headers)
    return Response(page.to_api_bytes(), media_type=JSON, headers=behind)


@router.get("/studies/metadata", summary="Data Model Fields", operation_id="studiesMetadata",
            openapi_extra={"parameters": METADATA_PARAMS},
            responses={200: json_response("FieldNodeList"), **ERROR_RESPONSES})
def studies_metadata(request: Request) -> Response:
    """The study data model: every field with its piece name, type and children."""
    params = api_params(request)
    _only(params, ("includeIndexedOnly", "includeHistoricOnly"))
    for name in params:
        _bool_param(params, name)
    return Response(_dump(metadata_tree()), media_type=JSON)


@router.get("/studies/enums", summary="Enums", operation_id="enums",
            responses={200: json_response("EnumInfoList"), **ERROR_RESPONSES})
def studies_enums(request: Request) -> Response:
    """Every enum type, the pieces that use it and its values."""
    from trialfinder.model.enums import ENUMS, FIELD_ENUMS
    from trialfinder.model.labels import label

    _only(api_params(request), ())
    _, paths, piece_of = _field_index()
    pieces_of: dict[str, set[str]] = {}
    for path, enum_type in FIELD_ENUMS.items():
        canonical = paths.get(path.lower(), path)
        pieces_of.setdefault(enum_type, set()).add(piece_of.get(canonical, canonical.rsplit(".", 1)[-1]))
    out = [{"type": t, "pieces": sorted(pieces_of.get(t, ())),
            "values": [{"value": v, "legacyValue": label(t, v, plain=True)} for v in values]}
           for t, values in ENUMS.items()]
    return Response(_dump(out), media_type=JSON)


@router.get("/studies/search-areas", summary="Search Areas", operation_id="searchAreas",
            responses={200: json_response("SearchDocumentList"), **ERROR_RESPONSES})
def search_areas(request: Request) -> Response:
    """The search areas behind the ``query.*`` parameters and the weights of their parts."""
    from trialfinder.search.plan import AREA_FIELDS, FIELD_WEIGHTS

    _only(api_params(request), ())
    names = {"cond": "ConditionSearch", "term": "BasicSearch", "intr": "InterventionSearch",
             "locn": "LocationSearch", "titles": "TitleSearch", "outc": "OutcomeSearch",
             "spons": "SponsorSearch"}
    synonyms = {"cond": True, "intr": True, "term": True}
    areas = [{"name": names[area], "param": area,
              "parts": [{"isEnum": False, "isSynonyms": synonyms.get(area, False), "pieces": [f],
                         "type": "text", "weight": FIELD_WEIGHTS[f]} for f in fields]}
             for area, fields in AREA_FIELDS.items() if area in names]
    return Response(_dump([{"name": "Study", "areas": areas}]), media_type=JSON)


@router.get("/studies/{nctId}", summary="Single Study", operation_id="fetchStudy",
            openapi_extra={"parameters": FETCH_STUDY_PARAMS},
            responses={200: json_response("Study", csv=True, ris=True, zip_=True),
                       301: {"description": "Moved Permanently: the id is an alias of another study"},
                       404: {"description": "Not Found", "content": {"text/plain": {"schema": {"type": "string"}}}},
                       **ERROR_RESPONSES})
def fetch_study(nctId: str, request: Request) -> Response:  # noqa: N803 - the API's parameter name
    """One study; an alias NCT id redirects (301) to the study's current id."""
    params = api_params(request)
    _only(params, ("format", "markupFormat", "fields"))
    _no_empty(params, ("format", "markupFormat", "fields"))
    fmt = (_single(params, "format") or "json").lower()
    if fmt not in ("json", "csv", "ris", "json.zip"):
        if fmt == "fhir.json":
            raise SearchError("format", "fhir.json is not supported by this server; use json, csv, ris or "
                                        "json.zip")
        raise SearchError("format", f"unknown value {fmt!r}; expected one of json, csv, ris, json.zip")
    markup = (_single(params, "markupFormat") or "markdown").lower()
    if markup not in ("markdown", "legacy"):
        raise SearchError("markupFormat", f"unknown value {markup!r}; expected one of markdown, legacy")
    nct = normalize_nct_id(nctId, "nctId")
    fields = _split(params.get("fields")) if "fields" in params else None
    with _pool(request).store() as store:
        resolved = store.resolve_id(nct)
        record = store.get(resolved) if resolved and resolved == nct else None
    if resolved is None:
        return PlainTextResponse(f"study {nct} not found", 404)
    if resolved != nct:
        query = request.url.query
        return RedirectResponse(f"/api/v2/studies/{resolved}" + (f"?{query}" if query else ""), 301)
    if record is None:  # deleted between the two reads
        return PlainTextResponse(f"study {nct} not found", 404)
    if fmt == "csv":
        try:
            columns = exports.csv_columns(fields) if fields is not None else None
        except ValueError as exc:
            raise SearchError("fields", str(exc)) from None
        return Response(exports.to_csv([record], columns), media_type="text/csv; charset=utf-8")
    if fmt == "ris":
        return Response(exports.to_ris([record]), media_type="application/x-research-info-systems")
    if fields is not None:
        from trialfinder.search.fields import select_fields

        record = select_fields(record, resolve_fields(fields))
    body = _dump(record)
    if fmt == "json.zip":
        buf = io.BytesIO()
        with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
            zf.writestr(f"{nct}.json", body)
        return Response(buf.getvalue(), media_type="application/zip",
                        headers={"content-disposition": f'attachment; filename="{nct}.json.zip"'})
    return Response(body, media_type=JSON)


# ------------------------------------------------------------------------------------------- stats


_SIZE_CACHE: dict[tuple[str, str, int], dict[str, Any]] = {}


def _size_stats(store: Any) -> dict[str, Any]:
    """Sizes of the stored JSON records; cached per data version (it reads one value per study)."""
    key = _data_key(store)
    if key in _SIZE_CACHE:
        return _SIZE_CACHE[key]
    pairs = list(store.record_sizes())
    sizes = sorted(size for _, size in pairs)
    n = len(sizes)

    def pct(p: float) -> int:
        return sizes[min(n - 1, int(round(p / 100 * (n - 1))))] if n else 0

    bounds = [(0, 1), (1, 2), (2, 5), (5, 10), (10, 20), (20, 50), (50, 100), (100, 200), (200, 500),
              (500, 1000), (1000, None)]
    ranges = []
    for lo, hi in bounds:
        count = sum(1 for s in sizes if s >= lo * 1024 and (hi is None or s < hi * 1024))
        if count:
            ranges.append({"sizeRange": f"{lo}KB..{hi}KB" if hi else f"{lo}KB..", "studiesCount": count})
    largest = sorted(pairs, key=lambda p: -p[1])[:10]
    result = {
        "averageSizeBytes": int(sum(sizes) / n) if n else 0,
        "largestStudies": [{"id": nct, "sizeBytes": size} for nct, size in largest],
        "percentiles": {str(p): pct(p) for p in (5, 10, 25, 50, 75, 90, 95, 99)},
        "ranges": ranges,
        "totalStudies": n,
    }
    if len(_SIZE_CACHE) > 8:
        _SIZE_CACHE.clear()
    _SIZE_CACHE[key] = result
    return result


@router.get("/stats/size", summary="Study Sizes", operation_id="sizeStats",
            responses={200: json_response("GzipStats"), **ERROR_RESPONSES})
def stats_size(request: Request) -> Response:
    """Statistics of the stored studies' JSON sizes."""
    _only(api_params(request), ())
    with _pool(request).store() as store:
        return Response(_dump(_size_stats(store)), media_type=JSON)


#: Pieces whose value statistics the store can count from its indexed columns.
FIELD_VALUE_COLUMNS: dict[str, tuple[str, str]] = {
    "OverallStatus": ("protocolSection.statusModule.overallStatus", "overall_status"),
    "StudyType": ("protocolSection.designModule.studyType", "study_type"),
    "Phase": ("protocolSection.designModule.phases", "phases"),
    "LeadSponsorClass": ("protocolSection.sponsorCollaboratorsModule.leadSponsor.class", "lead_class"),
    "Sex": ("protocolSection.eligibilityModule.sex", "sex"),
    "DesignAllocation": ("protocolSection.designModule.designInfo.allocation", "allocation"),
    "DesignInterventionModel": ("protocolSection.designModule.designInfo.interventionModel",
                                "intervention_model"),
    "DesignMasking": ("protocolSection.designModule.designInfo.maskingInfo.masking", "masking"),
    "DesignPrimaryPurpose": ("protocolSection.designModule.designInfo.primaryPurpose", "primary_purpose"),
    "EnrollmentType": ("protocolSection.designModule.enrollmentInfo.type", "enrollment_type"),
}


_VALUES_CACHE: dict[tuple[str, str, int, str], dict[str, Any]] = {}


def _data_key(store: Any) -> tuple[str, str, int]:
    """Identifies one version of one database, for caching statistics that scan every study."""
    stamp = store.meta("data_timestamp") if hasattr(store, "meta") else ""
    return str(getattr(store, "url", "")), str(stamp), store.count()


def _value_stats(store: Any, piece: str) -> dict[str, Any]:
    """Value counts of one field; cached per data version (each is a scan of the studies table)."""
    key = (*_data_key(store), piece)
    if key not in _VALUES_CACHE:
        if len(_VALUES_CACHE) > 64:
            _VALUES_CACHE.clear()
        _VALUES_CACHE[key] = _count_values(store, piece)
    return _VALUES_CACHE[key]


def _count_values(store: Any, piece: str) -> dict[str, Any]:
    path, column = FIELD_VALUE_COLUMNS[piece]
    counts: dict[str, int] = {}
    missing = 0
    for value, n in store.field_values(column, limit=1000):
        parts = (value or "").split() if column == "phases" else ([value] if value else [])
        if not parts:
            missing += n
        for part in parts:
            counts[part] = counts.get(part, 0) + n
    top = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))
    return {"type": "ENUM", "piece": piece, "field": path, "missingStudiesCount": missing,
            "uniqueValuesCount": len(top), "topValues": [{"value": v, "studiesCount": n} for v, n in top]}


@router.get("/stats/field/values", summary="Field Values", operation_id="fieldValuesStats",
            openapi_extra={"parameters": FIELD_VALUES_PARAMS},
            responses={200: json_response("FieldValuesStatsList"), **ERROR_RESPONSES})
def stats_field_values(request: Request) -> Response:
    """Value counts of enum fields (those the store indexes; see ``FIELD_VALUE_COLUMNS``)."""
    from trialfinder.model.enums import ENUMS

    params = api_params(request)
    _only(params, ("fields", "types"))
    _no_empty(params, ("fields", "types"))
    types = [t.upper() for t in _split(params.get("types"))]
    for t in types:
        if t not in ENUMS["FieldStatsType"]:
            raise SearchError("types", f"unknown value {t!r}; expected one of {', '.join(ENUMS['FieldStatsType'])}")
    lookup = {p.lower(): p for p in FIELD_VALUE_COLUMNS} | {
        path.lower(): p for p, (path, _c) in FIELD_VALUE_COLUMNS.items()}
    if "fields" in params:
        wanted = []
        for name in _split(params.get("fields")):
            piece = lookup.get(name.lower())
            if piece is None:
                raise SearchError("fields", f"no value statistics for {name!r}; available: "
                                            f"{', '.join(FIELD_VALUE_COLUMNS)}")
            wanted.append(piece)
        if not wanted:
            raise SearchError("fields", "must list at least one field")
    else:
        wanted = list(FIELD_VALUE_COLUMNS)
    if types and "ENUM" not in types:
        return Response(b"[]", media_type=JSON)
    with _pool(request).store() as store:
        out = [_value_stats(store, piece) for piece in dict.fromkeys(wanted)]
    return Response(_dump(out), media_type=JSON)


@router.get("/version", summary="Version", operation_id="version",
            responses={200: json_response("Version"), **ERROR_RESPONSES})
def version(request: Request) -> Response:
    """API version (the ClinicalTrials.gov API version we follow) and the data timestamp."""
    from trialfinder.model.enums import API_VERSION

    _only(api_params(request), ())
    with _pool(request).store() as store:
        stamp = store.meta("data_timestamp") if hasattr(store, "meta") else None
    out: dict[str, str] = {"apiVersion": API_VERSION}
    if stamp:
        out["dataTimestamp"] = stamp.rstrip("Z")
    return Response(_dump(out), media_type=JSON)
