"""Web pages and JSON endpoints for eligibility: "check my eligibility" and "match a patient".

* ``GET/POST /study/{nct_id}/eligibility``: questions generated from the study's criteria, answered in
  an HTML form; the POST shows the verdict per criterion.
* ``GET/POST /match``: a clinical note (plus optional place, distance, study status; open studies by default) -> ranked studies
  with their verdicts and the criteria that decided them.
* ``GET /api/eligibility/{nct_id}`` (the questions), ``POST /api/eligibility/{nct_id}`` (answers ->
  verdict) and ``POST /api/match`` (patient -> results), as JSON.

Handlers that must read a form or body are ``async``; the matching and verdict work they start runs in
the thread pool so it never blocks the event loop.

Privacy is a design rule here, not a setting: patient input only travels in POST bodies (query strings
end up in access logs and browser history), it is never logged or stored, and every response that
contains it is marked ``Cache-Control: no-store``.

Mount with :func:`install` (router plus the "check my eligibility" link on study pages) or include
:data:`router` directly.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Iterator
from typing import Any

import orjson
from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import HTMLResponse, Response
from markupsafe import Markup, escape
from starlette.concurrency import run_in_threadpool

from trialfinder.matching import eligibility_adapter as elig

router = APIRouter()

#: Longest accepted patient note (characters) and request body (bytes).
MAX_NOTE_CHARS = 20_000
MAX_BODY_BYTES = 200_000
MAX_LIMIT = 100
NO_STORE = {"Cache-Control": "no-store", "Pragma": "no-cache"}
_NCT_RE = re.compile(r"^NCT0*([1-9]\d{0,7})$", re.IGNORECASE)
_RADII = (("10mi", "10 miles"), ("25mi", "25 miles"), ("50mi", "50 miles"), ("100mi", "100 miles"),
          ("250mi", "250 miles"), ("500mi", "500 miles"), ("50km", "50 km"), ("100km", "100 km"))
BADGES = {elig.ELIGIBLE: "status-recruiting", elig.POSSIBLY: "status-not_yet_recruiting",
          elig.INELIGIBLE: "status-terminated"}


def install(app: Any) -> None:
    """Add these routes to an app built by :func:`trialfinder.web.app.create_app`, and a "check my
    eligibility" link below the criteria on every study page."""
    if not any(getattr(r, "path", None) == "/api/match" for r in app.routes):
        app.include_router(router)
    hooks = getattr(app.state, "study_page_hooks", None)
    if isinstance(hooks, list) and study_page_link not in hooks:
        hooks.append(study_page_link)


def study_page_link(request: Request, store: Any, view: Any) -> Markup:
    """The study page hook: a link to this study's eligibility questions."""
    nct = getattr(view, "nct_id", None) or _view_nct(view)
    if not nct:
        return Markup("")
    return Markup('<p class="card"><a href="/study/{0}/eligibility">Check my eligibility for this study</a>'
                  " – answer a few questions; your answers are not stored.</p>").format(escape(nct))


def _view_nct(view: Any) -> str | None:
    to_dict = getattr(view, "to_dict", None)
    if callable(to_dict):
        d = to_dict()
        for key in ("nct_id", "nctId"):
            if d.get(key):
                return str(d[key])
    return None


# ------------------------------------------------------------------------------------------ plumbing


@contextlib.contextmanager
def _store(request: Request) -> Iterator[Any]:
    """A store for this request: the app's pool when there is one, else ``app.state.store``."""
    pool = getattr(request.app.state, "pool", None)
    if pool is not None:
        with pool.store() as store:
            yield store
        return
    store = getattr(request.app.state, "store", None)
    if store is None:
        raise HTTPException(503, "no database configured")
    yield store


def _templates(request: Request) -> Any:
    env = getattr(request.app.state, "templates", None)
    if env is None:
        from trialfinder.web.render import make_templates

        env = make_templates()
        request.app.state.templates = env
    return env


def _page(request: Request, template: str, context: dict[str, Any], status: int = 200) -> HTMLResponse:
    settings = getattr(request.app.state, "settings", None)
    base = {"site_name": getattr(settings, "site_name", "trialfinder"), "request": request,
            "data_timestamp": getattr(request.state, "data_timestamp", None), "nav": "match",
            "badges": BADGES}
    html = _templates(request).get_template(template).render({**base, **context})
    return HTMLResponse(html, status, headers=NO_STORE)


def _json(data: Any, status: int = 200) -> Response:
    return Response(orjson.dumps(data, default=str), status_code=status, media_type="application/json",
                    headers=NO_STORE)


def _wants_json(request: Request) -> bool:
    """JSON when asked by suffix (``/study/NCT…/eligibility.json``, set by the app's edge middleware) or
    by the Accept header."""
    if getattr(request.state, "format", None) == "json":
        return True
    accept = request.headers.get("accept", "")
    return "application/json" in accept and "text/html" not in accept


def _nct(raw: str) -> str:
    m = _NCT_RE.match(raw.strip())
    if not m:
        raise HTTPException(404, f"{raw[:40]!r} is not an NCT number (NCT followed by 8 digits)")
    return f"NCT{int(m.group(1)):08d}"


def _record(store: Any, raw: str) -> tuple[str, dict]:
    nct = _nct(raw)
    resolved = store.resolve_id(nct) if hasattr(store, "resolve_id") else nct
    record = store.get(resolved) if resolved else None
    if record is None:
        raise HTTPException(404, f"No study {nct} in this database.")
    return resolved, record


def _title(record: dict) -> str:
    ident = (record.get("protocolSection") or {}).get("identificationModule") or {}
    return ident.get("briefTitle") or ident.get("officialTitle") or ""


async def _body_json(request: Request) -> Any:
    body = await request.body()
    if len(body) > MAX_BODY_BYTES:
        raise HTTPException(413, f"request body too large (limit {MAX_BODY_BYTES} bytes)")
    if not body.strip():
        return {}
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise HTTPException(400, f"body is not valid JSON: {exc}") from None


async def _form(request: Request) -> dict[str, str]:
    form = await request.form()
    out: dict[str, str] = {}
    for key, value in form.multi_items():
        if isinstance(value, str):
            out[key] = value
    return out


# ------------------------------------------------------------------------------ check my eligibility


def _question_views(questions: list[dict[str, Any]], answers: dict[str, Any]) -> list[dict[str, Any]]:
    out = []
    for q in questions:
        options = q.get("options") or []
        if q["type"] == "yesno":
            options = [("yes", "Yes"), ("no", "No"), ("", "I don't know")]
        else:
            options = [(str(o), str(o)) if not isinstance(o, (list, tuple)) else (str(o[0]), str(o[1]))
                       for o in options]
        out.append({**q, "field": "q_" + re.sub(r"[^\w-]", "_", q["id"]), "choices": options,
                    "answer": "" if answers.get(q["id"]) is None else str(answers[q["id"]])})
    return out


def _answers_from_form(questions: list[dict[str, Any]], form: dict[str, str]) -> dict[str, Any]:
    answers: dict[str, Any] = {}
    for q in questions:
        field = "q_" + re.sub(r"[^\w-]", "_", q["id"])
        value = (form.get(field) or "").strip()[:200]
        if not value:
            continue
        if q["type"] == "number":
            try:
                answers[q["id"]] = float(value)
            except ValueError:
                continue
        else:
            answers[q["id"]] = value
    return answers


@router.get("/study/{nct_id}/eligibility", response_class=HTMLResponse, include_in_schema=False)
def eligibility_form(nct_id: str, request: Request) -> Response:
    """The study's pre-screening questions as a form."""
    with _store(request) as store:
        nct, record = _record(store, nct_id)
    questions = elig.questions(record)
    if _wants_json(request):
        return _json({"nctId": nct, "questions": questions})
    return _page(request, "eligibility/check.html", {
        "nct_id": nct, "title": _title(record), "questions": _question_views(questions, {}), "verdict": None})


@router.post("/study/{nct_id}/eligibility", response_class=HTMLResponse, include_in_schema=False)
async def eligibility_submit(nct_id: str, request: Request) -> Response:
    """The verdict for the answers of the form, criterion by criterion."""
    form = await _form(request)
    return await run_in_threadpool(_eligibility_page, nct_id, request, form)


def _eligibility_page(nct_id: str, request: Request, form: dict[str, str]) -> Response:
    with _store(request) as store:
        nct, record = _record(store, nct_id)
    questions = elig.questions(record)
    answers = _answers_from_form(questions, form)
    verdict = elig.check_answers(record, answers)
    return _page(request, "eligibility/check.html", {
        "nct_id": nct, "title": _title(record), "questions": _question_views(questions, answers),
        "verdict": verdict})


@router.get("/api/eligibility/{nct_id}", tags=["eligibility"])
def api_questions(nct_id: str, request: Request) -> Response:
    """The pre-screening questions of a study: ``{"nctId", "questions": [{id, text, type, ...}]}``."""
    with _store(request) as store:
        nct, record = _record(store, nct_id)
    return _json({"nctId": nct, "questions": elig.questions(record)})


@router.post("/api/eligibility/{nct_id}", tags=["eligibility"])
async def api_check(nct_id: str, request: Request) -> Response:
    """Answers (``{"answers": {question id: value}}`` or the mapping itself) -> the verdict per criterion."""
    body = await _body_json(request)
    if not isinstance(body, dict):
        raise HTTPException(400, 'expected a JSON object: {"answers": {"age": 54, "inc0": "yes", ...}}')
    answers = body.get("answers", body)
    if not isinstance(answers, dict):
        raise HTTPException(400, "answers must be an object keyed by question id")
    return await run_in_threadpool(_check_json, nct_id, request, answers)


def _check_json(nct_id: str, request: Request, answers: dict[str, Any]) -> Response:
    with _store(request) as store:
        nct, record = _record(store, nct_id)
    verdict = elig.check_answers(record, answers)
    return _json({"nctId": nct, **verdict.to_dict()})


# ---------------------------------------------------------------------------------- match a patient


def _parse_radius(text: str | None) -> float | None:
    if not text:
        return None
    from trialfinder.search.request import parse_radius

    try:
        return parse_radius(str(text), param="radius")
    except ValueError as exc:
        raise HTTPException(400, str(exc)) from None


#: The study-status choices of the match form: value -> label (the first is the default).
STATUS_CHOICES = (("open", "Open for enrolment (recruiting, not yet recruiting, by invitation, available)"),
                  ("RECRUITING", "Recruiting now"),
                  ("all", "All studies, whatever their status"))


def _status_option(value: Any, recruiting: Any = None) -> str | list[str]:
    """The ``status`` a request asks for: "open" by default, "all", or a list of statuses."""
    if value is None or value == "":
        if recruiting is not None and recruiting != "":
            return "open" if recruiting in (True, "1", "on", "true") else "all"
        return "open"
    if isinstance(value, list):
        return [str(v) for v in value]
    return str(value)[:500]


def _run_match(request: Request, patient: str | dict[str, Any], near: str | None, radius: str | None,
               status: str | list[str], limit: int) -> Any:
    from trialfinder import MatchError, match

    radius_km = _parse_radius(radius) if near else None
    with _store(request) as store:
        try:
            return match(store, patient, near=near or None, radius_km=radius_km, status=status, limit=limit)
        except MatchError as exc:
            raise HTTPException(400, str(exc)) from None


@router.get("/match", response_class=HTMLResponse, include_in_schema=False)
def match_form(request: Request) -> Response:
    """An empty "match a patient" form (the note is only ever sent by POST)."""
    return _page(request, "eligibility/match.html", {"form": {"dist": "50mi", "status": "open"}, "result": None,
                                                     "radii": _RADII, "statuses": STATUS_CHOICES, "error": None})


@router.post("/match", response_class=HTMLResponse, include_in_schema=False)
async def match_submit(request: Request) -> Response:
    """Results for the note of the form: studies with verdicts and deciding criteria."""
    form = await _form(request)
    note = (form.get("note") or "")[:MAX_NOTE_CHARS]
    near = (form.get("near") or "").strip()[:200]
    status = _status_option(form.get("status"), form.get("recruiting"))
    if status not in [v for v, _ in STATUS_CHOICES]:
        status = "open"
    dist = form.get("dist") or "50mi"
    shown = {"note": note, "near": near, "dist": dist, "status": status}
    common = {"form": shown, "radii": _RADII, "statuses": STATUS_CHOICES}
    if not note.strip():
        return _page(request, "eligibility/match.html", {**common, "result": None,
                                                         "error": "Enter the patient's note."}, 400)
    try:
        result = await run_in_threadpool(_run_match, request, note, near, dist, status, 20)
    except HTTPException as exc:
        if exc.status_code != 400:
            raise
        return _page(request, "eligibility/match.html", {**common, "result": None, "error": exc.detail}, 400)
    return _page(request, "eligibility/match.html", {**common, "result": result, "error": None})


@router.post("/api/match", tags=["eligibility"])
async def api_match(request: Request) -> Response:
    """A patient -> ranked studies with verdicts.

    Body: ``{"patient": {age, sex, conditions, medications, labs, pregnant, location, note}, "near",
    "radius": "50mi", "status": "open", "limit": 10, "allCriteria": false}``; ``status`` is "open" (the
    default: studies open for enrolment), "all", or a list of statuses; a body without
    ``"patient"`` is taken as the patient itself, and a plain-text body as a note.
    """
    ctype = request.headers.get("content-type", "")
    if ctype.startswith("text/plain"):
        raw = await request.body()
        if len(raw) > MAX_BODY_BYTES:
            raise HTTPException(413, f"request body too large (limit {MAX_BODY_BYTES} bytes)")
        body: Any = {"patient": raw.decode("utf-8", errors="replace")}
    else:
        body = await _body_json(request)
    if isinstance(body, str):
        body = {"patient": body}
    if not isinstance(body, dict):
        raise HTTPException(400, "expected a JSON object with a patient")
    options = {k: body.get(k) for k in ("near", "radius", "radiusKm", "recruiting", "status", "limit",
                                        "allCriteria")}
    for key, kind in (("near", str), ("radius", str), ("recruiting", bool), ("allCriteria", bool), ("limit", int)):
        if key in body and (options[key] is None or not isinstance(options[key], kind)
                            or kind is int and isinstance(options[key], bool)):
            word = {str: "a string", bool: "a boolean", int: "an integer"}[kind]
            raise HTTPException(400, f"{key} must be {word}")
    patient = body.get("patient") if "patient" in body else {k: v for k, v in body.items() if k not in options}
    if isinstance(patient, str):
        patient = patient[:MAX_NOTE_CHARS]
    elif isinstance(patient, dict):
        if isinstance(patient.get("note"), str):
            patient = {**patient, "note": patient["note"][:MAX_NOTE_CHARS]}
    else:
        raise HTTPException(400, "patient must be a note (string) or an object of facts")
    try:
        limit = 10 if options["limit"] is None else int(options["limit"])
    except (TypeError, ValueError):
        raise HTTPException(400, "limit must be an integer") from None
    if not 1 <= limit <= MAX_LIMIT:
        raise HTTPException(400, f"limit must be between 1 and {MAX_LIMIT}")
    radius = options["radius"]
    if radius is None and options["radiusKm"] is not None:
        radius = f"{options['radiusKm']}km"
    near = options["near"] if isinstance(options["near"], str) else None
    if near is None and isinstance(patient, dict) and isinstance(patient.get("location"), str):
        near = patient["location"]
    status = _status_option(options["status"], options["recruiting"])
    result = await run_in_threadpool(_run_match, request, patient, near, radius, status, limit)
    return _json(result.to_dict(all_criteria=bool(options["allCriteria"])))
