"""Corrections that make the generated OpenAPI description say what the server does.

Why a post-processing step: FastAPI describes a route from its Python signature, which does not know
that a path parameter must be an NCT number, that the edge middleware answers 414 for an oversized
query string, 503 while the database loads, and 400 for an unknown ``Host``, or what the eligibility
endpoints read from their bodies (they parse raw bodies, to give their own messages). The property-based
test (``tests/test_schemathesis.py``, schemathesis with every check) holds the result to the server.
"""

from __future__ import annotations

from typing import Any

from trialfinder.web.openapi_params import NCT_PATTERN

_TEXT = {"text/plain": {"schema": {"type": "string"}}}
_DETAIL = {"application/json": {"schema": {"type": "object", "properties": {"detail": {}}}}}

#: Facts are read leniently (unknown keys ignored, values coerced where they can be), so only their
#: container is described.
_FACTS = {"type": "object", "description": "Patient facts: age, sex, conditions, medications, labs, pregnant, "
                                           "location, note"}

#: Request bodies of the endpoints that read theirs raw (see ``trialfinder.web.eligibility``).
REQUEST_BODIES: dict[tuple[str, str], dict[str, Any]] = {
    ("/api/eligibility/{nct_id}", "post"): {
        "required": True, "description": 'Answers to the questions: {"answers": {question id: value}} '
                                          "or the mapping itself",
        "content": {"application/json": {"schema": {
            # {"answers": {...}} or the answers themselves; unknown question ids and values of
            # unexpected types are ignored
            "type": "object",
            "properties": {"answers": {"type": "object"}}}}}},
    ("/api/match", "post"): {
        "required": True, "description": "A patient (a note, or facts) and search options",
        # a JSON string is a note; an object without "patient" is the patient's facts themselves
        "content": {"application/json": {"schema": {"anyOf": [{"type": "string", "minLength": 1}, {
            "type": "object", "properties": {
                # a note longer than 20,000 characters is read up to there (not refused)
                "patient": {"anyOf": [{"type": "string", "minLength": 1}, _FACTS]},
                "near": {"type": "string", "maxLength": 200}, "radius": {"type": "string", "pattern": r"^\d+(\.\d+)?(km|mi)$"},
                "recruiting": {"type": "boolean"}, "limit": {"type": "integer", "minimum": 1, "maximum": 100},
                "allCriteria": {"type": "boolean"}}}]}},
            "text/plain": {"schema": {"type": "string", "minLength": 1}}}},
}


def fix_openapi(spec: dict[str, Any]) -> dict[str, Any]:
    """Correct ``spec`` in place (and return it): parameters, request bodies and error responses."""
    for path, item in spec.get("paths", {}).items():
        for method, op in item.items():
            if not isinstance(op, dict) or method not in ("get", "post", "put", "delete", "patch"):
                continue
            op["parameters"] = _dedupe(op.get("parameters", []))
            has_path_param = False
            for param in op["parameters"]:
                if param.get("in") == "path":
                    has_path_param = True
                    if param["name"] in ("nct_id", "nctId"):
                        param.setdefault("schema", {}).update({"type": "string", "pattern": NCT_PATTERN})
                        param["schema"].pop("title", None)
            body = REQUEST_BODIES.get((path, method))
            if body is not None:
                op["requestBody"] = body
            _add_errors(op, path, has_path_param, body is not None)
    return spec


def _dedupe(params: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One entry per (name, in): FastAPI lists a path parameter from the signature and again from the
    hand-written description; the later, fuller one wins."""
    out: dict[tuple[str, str], dict[str, Any]] = {}
    for param in params:
        key = (param.get("name", ""), param.get("in", ""))
        out[key] = {**out.get(key, {}), **param}
    return list(out.values())


def _add_errors(op: dict[str, Any], path: str, has_path_param: bool, has_body: bool) -> None:
    responses = op.setdefault("responses", {})
    v2 = path.startswith("/api/v2")
    content = _TEXT if v2 else _DETAIL
    responses.pop("422", None)  # handlers parse their own input: errors are 400, never FastAPI's 422
    responses.setdefault("400", {"description": "Bad Request: an invalid parameter or body, or a value the "
                                                "description cannot express (an Essie expression that does "
                                                "not parse, an unknown field name, a patient with no facts)",
                                 "content": content})
    if has_path_param:
        responses.setdefault("404", {"description": "Not Found: no such study", "content": content})
    if has_body:
        responses.setdefault("413", {"description": "Payload Too Large", "content": content})
    responses.setdefault("414", {"description": "URI Too Long: the query string is too long", "content": _TEXT})
    responses.setdefault("503", {"description": "Service Unavailable: the database is loading, the request "
                                                "needed too much work, or the server is busy (Retry-After)",
                                 "content": {**_TEXT, **_DETAIL}})
