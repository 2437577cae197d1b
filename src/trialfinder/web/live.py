"""The website's side of live sync (issue 12): record history, saved searches with RSS, freshness.

Mounted by :func:`install` like the other extensions, so the core pages stay as they are:

* ``GET /api/v2/studies/{nctId}/history`` -- our extension of the API (in the OpenAPI document);
* the study page's "History of changes" and freshness ("last updated at the registry", "synced", a badge
  when the last sync is older than 48 hours, a flag when the registry no longer lists the study);
* ``POST /alerts`` -- "Save this search" on the results page; ``GET /alerts/NAME`` and
  ``GET /alerts/NAME/rss``, an RSS 2.0 feed with one item per new, changed or gone study.

Saving a search is the only write the website does; it opens its own short-lived writable connection
(the request pool is read-only).
"""

from __future__ import annotations

import email.utils
import time
from datetime import datetime
from typing import Any
from xml.sax.saxutils import escape as xml_escape

import orjson
from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import HTMLResponse, PlainTextResponse, RedirectResponse, Response
from markupsafe import Markup, escape

from trialfinder.alerts import AlertError, add_alert, pending_report, validate_name
from trialfinder.history import study_history
from trialfinder.search.request import SearchError, normalize_nct_id
from trialfinder.store.base import StoreError
from trialfinder.sync.freshness import STALE_AFTER_HOURS, freshness
from trialfinder.web.openapi_params import ERROR_RESPONSES, FETCH_STUDY_PARAMS

api_router = APIRouter(prefix="/api/v2", tags=["trialfinder extensions"])
page_router = APIRouter(include_in_schema=False)

_HISTORY_DOC: dict[int | str, dict[str, Any]] = {
    200: {"description": "Every stored version, oldest first, with field-level changes from the one before",
          "content": {"application/json": {"schema": {"type": "object", "properties": {
              "nctId": {"type": "string"},
              "versions": {"type": "array", "items": {"type": "object", "properties": {
                  "lastUpdatePostDate": {"type": "string", "nullable": True},
                  "storedAt": {"type": "string", "nullable": True},
                  "current": {"type": "boolean"},
                  "materiality": {"type": "string", "nullable": True,
                                  "enum": ["major", "moderate", "minor", "none"]},
                  "summary": {"type": "string"},
                  "changes": {"type": "array", "items": {"type": "object", "properties": {
                      "path": {"type": "string"}, "old": {}, "new": {},
                      "op": {"type": "string", "enum": ["changed", "added", "removed"]}}}},
                  "typed": {"type": "array", "items": {"type": "object"}}}}}}}}}},
    404: {"description": "Not Found", "content": {"text/plain": {"schema": {"type": "string"}}}},
    **ERROR_RESPONSES,
}


@api_router.get("/studies/{nctId}/history", summary="Study History", operation_id="studyHistory",
                openapi_extra={"parameters": [p for p in FETCH_STUDY_PARAMS if p.get("in") == "path"]},
                responses=_HISTORY_DOC)
def history_api(nctId: str, request: Request) -> Response:  # noqa: N803 - the API's parameter name
    """Every version of the study this server has stored, with field-level changes (dotted v2 paths;
    list items matched by natural key) and typed changes with a materiality level. A trialfinder
    extension: ClinicalTrials.gov has no such endpoint."""
    nct = normalize_nct_id(nctId, "nctId")
    with request.app.state.pool.store() as store:
        resolved = store.resolve_id(nct)
        try:
            history = study_history(store, resolved) if resolved else None
        except StoreError as exc:
            return PlainTextResponse(str(exc), 501)
    if history is None:
        return PlainTextResponse(f"study {nct} not found", 404)
    return Response(orjson.dumps(history), media_type="application/json")


# ------------------------------------------------------------------------------------ study page


def _value(value: Any) -> str:
    if value is None:
        return "—"
    text = value if isinstance(value, str) else orjson.dumps(value).decode()
    return text if len(text) <= 400 else text[:399] + "…"


def history_html(history: dict[str, Any] | None) -> Markup:
    """The "History of changes" section: newest version first, each with its summary and a field table."""
    versions = (history or {}).get("versions") or []
    nct = (history or {}).get("nctId", "")
    parts = ['<section class="sec sec-history" id="sec-history" aria-labelledby="h-history">',
             '<h2 id="h-history">History of changes</h2>']
    if len(versions) <= 1:
        parts.append("<p>No changes recorded: this server has stored one version of this study.</p>")
    else:
        parts.append(f"<p>{len(versions)} versions stored by this server · "
                     f'<a href="/api/v2/studies/{escape(nct)}/history">as JSON</a></p><ol class="history" reversed>')
        for v in reversed(versions[1:]):
            level = v.get("materiality") or "none"
            parts.append(f'<li class="history-version"><p><strong>Updated at the registry '
                         f'{escape(v.get("lastUpdatePostDate") or "(no date)")}</strong> · stored '
                         f'{escape(v.get("storedAt") or "(unknown)")} · <span class="badge change-{escape(level)}">'
                         f'{escape(level)}</span></p>')
            if v.get("summary"):
                parts.append(f"<p>{escape(v['summary'])}</p>")
            changes = v.get("changes") or []
            parts.append(f"<details><summary>{len(changes)} field change{'s' if len(changes) != 1 else ''}"
                         "</summary><table class=\"diff\"><thead><tr><th scope=\"col\">Field</th>"
                         "<th scope=\"col\">Before</th><th scope=\"col\">After</th></tr></thead><tbody>")
            for c in changes[:200]:
                parts.append(f"<tr><td><code>{escape(c['path'])}</code></td><td>{escape(_value(c['old']))}</td>"
                             f"<td>{escape(_value(c['new']))}</td></tr>")
            parts.append("</tbody></table></details></li>")
        first = versions[0]
        parts.append(f"<li class=\"history-version\"><p><strong>First stored version</strong> (updated at the "
                     f"registry {escape(first.get('lastUpdatePostDate') or '(no date)')}, stored "
                     f"{escape(first.get('storedAt') or '(unknown)')})</p></li></ol>")
    parts.append("</section>")
    return Markup("".join(parts))


def freshness_html(fresh: dict[str, Any], current: dict[str, Any] | None, absent_since: str | None) -> Markup:
    """"Last updated at the registry", "synced", the stale badge and the absent-at-source flag."""
    parts = ['<section class="sec sec-freshness" id="sec-freshness" aria-label="Freshness">']
    if absent_since:
        parts.append(f'<p class="badge absent-at-source" role="status">No longer listed at the registry '
                     f'(noticed {escape(absent_since)}); this is the last version it published.</p>')
    if fresh.get("stale"):
        parts.append(f'<p class="badge stale" role="status">This copy may be out of date: last synced '
                     f'{escape(str(fresh.get("ageHours")))} hours ago (more than {STALE_AFTER_HOURS:.0f} h).</p>')
    updated = (current or {}).get("lastUpdatePostDate") or "(date not given)"
    synced = (current or {}).get("storedAt") or "(unknown)"
    parts.append(f"<p>Last updated at the registry: {escape(updated)} · synced: {escape(synced)}"
                 + (f" · last sync of this copy: {escape(fresh['syncedAt'])}" if fresh.get("syncedAt") else "")
                 + "</p></section>")
    return Markup("".join(parts))


def study_footer(request: Request, store: Any, view: Any) -> Markup:
    """Study-page footer hook: freshness, then the history of changes."""
    nct = getattr(view, "nct_id", None)
    if not nct:
        return Markup("")
    try:
        history = study_history(store, nct)
    except StoreError:  # a backend without record history still shows the study
        return Markup("")
    versions = (history or {}).get("versions") or []
    current = versions[-1] if versions else None
    return freshness_html(freshness(store), current, store.absent().get(nct)) + history_html(history)


# ------------------------------------------------------------------------------------ saved searches


_FORM_TO_API = {"cond": "query.cond", "term": "query.term", "intr": "query.intr", "titles": "query.titles",
                "outc": "query.outc", "spons": "query.spons", "locn": "query.locn", "id": "query.id",
                "advanced": "filter.advanced", "agg": "aggFilters"}
#: Form parameters that only change how results are shown, not which studies match.
_PRESENTATION = {"sort", "size", "page", "n", "export", "dist", "exact"}


def form_to_api_query(params: list[tuple[str, str]]) -> str:
    """The results page's form parameters as API v2 parameters (what a saved search keeps).

    Filters the API has no parameter for (phase, place, ...) are refused with a clear message rather
    than dropped, since a saved search that silently matches more than what was on screen misleads."""
    from urllib.parse import urlencode

    out: list[tuple[str, str]] = []
    statuses: list[str] = []
    unsupported: list[str] = []
    for key, value in params:
        if not value:
            continue
        if key in _FORM_TO_API:
            out.append((_FORM_TO_API[key], value))
        elif key == "status":
            statuses.append(value)
        elif key == "recruiting":
            statuses.append("RECRUITING")
        elif key == "fcond":
            out.append(("filter.advanced", f'AREA[Condition]"{value}"'))
        elif key not in _PRESENTATION:
            unsupported.append(key)
    if unsupported:
        raise AlertError(f"a saved search cannot keep these filters yet: {', '.join(sorted(set(unsupported)))}; "
                         "save it with 'trialfinder alerts add' and API parameters instead")
    if statuses:
        out.append(("filter.overallStatus", ",".join(dict.fromkeys(statuses))))
    merged: dict[str, list[str]] = {}
    for k, v in out:
        merged.setdefault(k, []).append(v)
    pairs = [(k, " AND ".join(f"({x})" for x in vs) if k == "filter.advanced" and len(vs) > 1 else vs[0])
             for k, vs in merged.items()]
    return urlencode(pairs)


@page_router.post("/alerts")
async def save_search(request: Request) -> Response:
    """"Save this search": the form's name plus the search's parameters; answers with the saved search."""
    from urllib.parse import parse_qsl

    from trialfinder.web.pages import error_page as error_page_for

    body = (await request.body()).decode("utf-8", "replace")
    form = parse_qsl(body, keep_blank_values=True)
    name = next((v for k, v in form if k == "alert_name"), "").strip()
    search_params = [(k, v) for k, v in form if k != "alert_name"]
    try:
        validate_name(name)
        query = form_to_api_query(search_params)
        from starlette.concurrency import run_in_threadpool

        await run_in_threadpool(_save, request, name, query)
    except (AlertError, SearchError) as exc:
        return error_page_for(request, 400, "Could not save the search", str(exc))
    return RedirectResponse(f"/alerts/{name}", 303)


def _save(request: Request, name: str, query: str) -> None:
    from trialfinder.store import open_store

    with open_store(request.app.state.pool.db) as store:
        # the website never replaces a saved search (anyone can post this form); the CLI may
        if store.alert(name) is not None:
            raise AlertError(f"a saved search named {name!r} already exists; pick another name")
        add_alert(store, name, query)


@page_router.get("/alerts/{name}", response_class=HTMLResponse)
def alert_page(name: str, request: Request) -> Response:
    """A saved search: its query, the feed link, and what changed since the last check."""
    from trialfinder.web.pages import error_page as error_page_for

    try:
        validate_name(name)
        with request.app.state.pool.store() as store:
            doc = store.alert(name)
            if doc is None:
                return error_page_for(request, 404, "Not found", f"no saved search named {name!r}")
            report = pending_report(store, name)
    except AlertError as exc:
        return error_page_for(request, 404, "Not found", str(exc))
    html = request.app.state.templates.get_template("alert.html").render({
        "site_name": request.app.state.settings.site_name, "request": request, "data_timestamp": None,
        "alert": doc, "report": report, "events": list(reversed(doc.get("events") or []))[:50]})
    return HTMLResponse(html)


def _rfc822(ts: str | None) -> str:
    if not ts:
        return email.utils.formatdate(time.time(), usegmt=True)
    try:
        when = datetime.fromisoformat(ts.replace("Z", "+00:00"))
    except ValueError:
        return email.utils.formatdate(time.time(), usegmt=True)
    return email.utils.format_datetime(when, usegmt=True) if when.tzinfo else email.utils.format_datetime(when)


def feed_items(doc: dict[str, Any], pending: dict[str, Any]) -> list[dict[str, Any]]:
    """Feed items, newest first: what happened since the last check, then what earlier checks found."""
    at = pending["checkedAt"]
    live: list[dict[str, Any]] = [{"at": at, "kind": "new", **i} for i in pending["details"]["new"]]
    live += [{"at": at, "kind": "changed", "nctId": c["nctId"], "title": c["title"], "description": c["description"]}
             for c in pending["changed"]]
    live += [{"at": at, "kind": "gone", **i} for i in pending["details"]["gone"]]
    return live + list(reversed(doc.get("events") or []))


@page_router.get("/alerts/{name}/rss")
def alert_rss(name: str, request: Request) -> Response:
    """RSS 2.0: one item per new, changed or gone study, linking to its page, described in words."""
    try:
        validate_name(name)
    except AlertError as exc:
        return PlainTextResponse(str(exc), 404)
    with request.app.state.pool.store() as store:
        doc = store.alert(name)
        if doc is None:
            return PlainTextResponse(f"no saved search named {name!r}", 404)
        pending = pending_report(store, name)
    base = str(request.base_url).rstrip("/")
    words = {"new": "New", "changed": "Changed", "gone": "No longer matches"}
    items = []
    for ev in feed_items(doc, pending)[:200]:
        link = f"{base}/study/{ev['nctId']}"
        title = f"{words[ev['kind']]}: {ev['nctId']}" + (f" {ev['title']}" if ev.get("title") else "")
        items.append(f"<item><title>{xml_escape(title)}</title><link>{xml_escape(link)}</link>"
                     f"<guid isPermaLink=\"false\">{xml_escape(ev['kind'] + ':' + ev['nctId'] + '@' + ev['at'])}</guid>"
                     f"<pubDate>{xml_escape(_rfc822(ev['at']))}</pubDate>"
                     f"<category>{ev['kind']}</category>"
                     f"<description>{xml_escape(ev.get('description') or '')}</description></item>")
    site = request.app.state.settings.site_name
    body = ('<?xml version="1.0" encoding="UTF-8"?>\n<rss version="2.0"><channel>'
            f"<title>{xml_escape(f'{site}: saved search {name}')}</title>"
            f"<link>{xml_escape(f'{base}/alerts/{name}')}</link>"
            f"<description>{xml_escape('New, changed and gone studies for ' + doc['query'])}</description>"
            + "".join(items) + "</channel></rss>\n")
    return Response(body, media_type="application/rss+xml; charset=utf-8")


def install(app: FastAPI) -> None:
    """Mount the routes and the study-page footer hook."""
    app.include_router(api_router)
    app.include_router(page_router)
    app.state.study_page_footer_hooks.append(study_footer)
