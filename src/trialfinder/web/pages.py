"""The server-rendered pages: find trials, results, study pages, trials by location, conditions A–Z.

Why server-rendered: pages must work on a phone over a poor connection, with a keyboard or a screen
reader, and with JavaScript off; script only adds the maps. Every page also answers as JSON (a ``.json``
suffix or ``Accept: application/json``), built from the same data the template gets, so what a script
reads is what a person sees.
"""

from __future__ import annotations

import re
import string
from typing import Any

import orjson
from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import HTMLResponse, PlainTextResponse, RedirectResponse, Response

from trialfinder import SearchError
from trialfinder.model.enums import ENUMS
from trialfinder.model.labels import label
from trialfinder.model.statuses import OPEN_STATUSES
from trialfinder.model.study import record_get
from trialfinder.search.page_token import make_page_token
from trialfinder.web import exports
from trialfinder.web.query import PAGE_SIZES, SORTS, WebQuery
from trialfinder.web.render import url_with
from trialfinder.web.study_sites import group_sites, resolve_place

router = APIRouter(include_in_schema=False)

_NCT_RE = re.compile(r"^NCT\d{8}$")
_LOOSE_NCT_RE = re.compile(r"^NCT0*([1-9]\d{0,7})$", re.IGNORECASE)


# --------------------------------------------------------------------------------------- plumbing


def _format(request: Request) -> str:
    """The representation asked for: a path suffix (set by the edge middleware), else the Accept header."""
    fmt = getattr(request.state, "format", None)
    if fmt:
        return fmt
    accept = request.headers.get("accept", "")
    if "application/json" in accept and "text/html" not in accept:
        return "json"
    return "html"


def _json(data: Any, status: int = 200) -> Response:
    return Response(orjson.dumps(data, default=str), status_code=status, media_type="application/json")


def _common(request: Request) -> dict[str, Any]:
    settings = request.app.state.settings
    return {"site_name": settings.site_name, "data_timestamp": getattr(request.state, "data_timestamp", None),
            "request": request}


def render(request: Request, template: str, context: dict[str, Any], data: dict[str, Any],
           status: int = 200, formats: tuple[str, ...] = ("html", "json")) -> Response:
    """The page as HTML from ``template``, or as JSON (``data``) when that was asked for."""
    fmt = _format(request)
    if fmt not in formats:
        raise HTTPException(404, f"this page has no .{fmt} version")
    if fmt == "json":
        return _json(data, status)
    html = request.app.state.templates.get_template(template).render({**_common(request), **context})
    return HTMLResponse(html, status)


def error_page(request: Request, status: int, title: str, message: str,
               link: tuple[str, str] | None = None) -> Response:
    """An error as a page (or JSON for JSON clients); ``link`` is (text, url) of a place to look next."""
    if _format(request) == "json":
        body: dict[str, Any] = {"error": message, "status": status}
        if link:
            body["see"] = link[1]
        return _json(body, status)
    html = request.app.state.templates.get_template("error.html").render(
        {**_common(request), "title": title, "message": message, "link": link})
    return HTMLResponse(html, status)


def _data_timestamp(request: Request, store: Any) -> str | None:
    stamp = store.meta("data_timestamp") if hasattr(store, "meta") else None
    request.state.data_timestamp = stamp
    return stamp


# -------------------------------------------------------------------------------------------- home


@router.get("/", response_class=HTMLResponse)
def home(request: Request) -> Response:
    """Find trials: condition, treatment, place and distance, recruiting switch."""
    with request.app.state.pool.store() as store:
        _data_timestamp(request, store)
        by_status = dict(store.field_values("overall_status")) if hasattr(store, "field_values") else {}
        total = store.count()
    summary = {"studies": total, "recruiting": by_status.get("RECRUITING", 0)}
    q = WebQuery()
    data = {"studies": summary["studies"], "recruiting": summary["recruiting"],
            "dataTimestamp": request.state.data_timestamp,
            "search": "/search?cond=&intr=&near=&dist=50mi&recruiting=open", "advancedSearch": "/advanced"}
    return render(request, "home.html", {"q": q, "stats": summary, "nav": "find"}, data)


def _enum_options(enum_type: str, values: tuple[str, ...] | None = None) -> list[tuple[str, str]]:
    return [(v, label(enum_type, v)) for v in (values or ENUMS[enum_type])]


def _form_options() -> dict[str, list[tuple[str, str]]]:
    return {
        "status": _enum_options("Status"),  # the facet's and the cards' wording, one label per status
        "phase": _enum_options("Phase"),
        "type": _enum_options("StudyType"),
        "sex": _enum_options("Sex"),
        "agegroup": _enum_options("StandardAge"),
        "funder": _enum_options("AgencyClass"),
        "itype": _enum_options("InterventionType"),
    }


@router.get("/advanced", response_class=HTMLResponse)
def advanced(request: Request) -> Response:
    """Advanced search: every filter, and an Essie expression box."""
    q = WebQuery.from_params(request.query_params)
    options = _form_options()
    context = {"q": q, "options": options, "nav": "advanced",
               "sorts": [("", "Best match")] + [(k, v[0]) for k, v in SORTS.items() if k != "relevance"],
               "page_sizes": [(str(n), str(n)) for n in PAGE_SIZES], "error": None}
    data = {"action": "/search", "parameters": {
        "text": ["cond", "intr", "term", "titles", "outc", "spons", "locn", "id", "advanced"],
        "place": ["near", "dist", "country", "state", "city"], "switches": ["recruiting", "exact"],
        "choices": {k: [v for v, _ in opts] for k, opts in options.items()},
        "other": ["age", "healthy", "results", "start_from", "start_to", "posted_from", "posted_to",
                  "updated_from", "updated_to", "sort", "size"]}}
    return render(request, "advanced.html", context, data)


# ----------------------------------------------------------------------------------------- results


def _date_text(status_mod: Any, key: str) -> str:
    date = record_get(status_mod, key, "date") or ""
    if date and record_get(status_mod, key, "type") == "ESTIMATED":
        return f"{date} (estimated)"
    return str(date)


def _site_place(site: Any) -> str:
    return ", ".join(str(site.get(k)) for k in ("city", "state", "country") if site.get(k))


def hit_summary(hit: Any) -> dict[str, Any]:
    """One search hit as the result list shows it (and as the page's JSON gives it): what (conditions,
    interventions), where (number of sites, the nearest or first one), when (start, completion, last
    update) and whether results are posted -- what ClinicalTrials.gov's and Veeva's cards answer."""
    rec = hit.record
    ps = rec.get("protocolSection", {}) if isinstance(rec, dict) else {}
    status = record_get(ps, "statusModule", "overallStatus") or ""
    phases = record_get(ps, "designModule", "phases") or []
    status_mod = record_get(ps, "statusModule")
    locations = [x for x in record_get(ps, "contactsLocationsModule", "locations") or [] if isinstance(x, dict)]
    interventions = []
    for iv in record_get(ps, "armsInterventionsModule", "interventions") or []:
        if isinstance(iv, dict) and iv.get("name"):
            kind = label("InterventionType", str(iv.get("type") or ""))
            interventions.append(f"{kind}: {iv['name']}" if kind else str(iv["name"]))
    nearest = None
    if hit.nearest is not None:
        n = hit.nearest
        place = ", ".join(x for x in (n.city, n.state, n.country) if x)
        nearest = {"facility": n.facility, "city": n.city, "state": n.state, "country": n.country,
                   "status": n.status, "lat": n.lat, "lon": n.lon, "distanceKm": n.distance_km,
                   "distanceMi": n.distance_mi, "approximate": bool(getattr(n, "derived", False)),
                   "label": f"{n.facility}, {place}" if n.facility and place else (n.facility or place)}
    first_site = None
    if nearest is None and locations:
        loc = locations[0]
        place = _site_place(loc)
        facility = str(loc.get("facility") or "")
        first_site = f"{facility}, {place}" if facility and place else (facility or place)
    has_results = bool(rec.get("hasResults")) if isinstance(rec, dict) else False
    return {
        "nctId": hit.nct_id,
        "url": f"/study/{hit.nct_id}",
        "title": record_get(ps, "identificationModule", "briefTitle") or record_get(ps, "identificationModule",
                                                                        "officialTitle") or hit.nct_id,
        "status": status,
        "statusLabel": label("Status", status) if status else "Status unknown",
        "phases": phases,
        "phaseLabels": [label("Phase", p) for p in phases if p != "NA"],
        "conditions": (record_get(ps, "conditionsModule", "conditions") or [])[:8],
        "interventions": list(dict.fromkeys(interventions))[:6],
        "sponsor": record_get(ps, "sponsorCollaboratorsModule", "leadSponsor", "name") or "",
        "siteCount": len(locations),
        "nearestSite": nearest,
        "firstSite": first_site,
        "startDate": _date_text(status_mod, "startDateStruct"),
        "completionDate": _date_text(status_mod, "completionDateStruct")
        or _date_text(status_mod, "primaryCompletionDateStruct"),
        "lastUpdate": str(record_get(status_mod, "lastUpdatePostDateStruct", "date") or ""),
        "hasResults": has_results,
        "matched": hit.matched,
        "score": hit.score,
    }


def _facet_view(q: WebQuery, facets: dict[str, list[tuple[str, int]]] | None) -> list[dict[str, Any]]:
    from trialfinder.search.facets import FACET_TITLES, facet_label
    from trialfinder.web.query import FACET_PARAMS

    out = []
    for dim, values in (facets or {}).items():
        param = FACET_PARAMS.get(dim)
        if param is None or not values:
            continue
        items = []
        for value, count in values[:20]:
            if value in (None, ""):
                continue
            selected = q.has(param, str(value))
            items.append({"value": value, "label": facet_label(dim, str(value)), "count": count,
                          "selected": selected, "href": url_with("/search", q.toggled(param, str(value)).params())})
        if items:
            out.append({"dimension": dim, "param": param, "title": FACET_TITLES.get(dim, dim), "values": items})
    return out


_TEXT_NAMES = {"cond": "Condition", "intr": "Treatment", "term": "Terms", "titles": "Title", "outc": "Outcome",
               "spons": "Sponsor", "locn": "Location", "id": "Study ID"}


def _active_filters(q: WebQuery) -> list[dict[str, str]]:
    """Chips for the filters in effect, each linking to the search without it."""
    from trialfinder.web.query import ENUM_PARAMS, PLACE_PARAMS

    enum_types = {"status": "Status", "phase": "Phase", "type": "StudyType", "sex": "Sex",
                  "agegroup": "StandardAge", "funder": "AgencyClass", "itype": "InterventionType"}
    out = []
    for param in (*ENUM_PARAMS, *PLACE_PARAMS, "fcond"):
        for value in q.values(param):
            text = label(enum_types[param], value) if param in enum_types else value
            out.append({"label": text, "href": url_with("/search", q.toggled(param, value).params())})
    if q.recruiting or q.open_to_patients:
        text = "Recruiting now" if q.recruiting else "Recruiting and not yet recruiting"
        out.append({"label": text, "href": url_with("/search", q.with_changes(recruiting=None).params())})
    yes_no = {"healthy": ("Accepts healthy volunteers", "No healthy volunteers"),
              "results": ("With posted results", "Without posted results")}
    for key, text in (("age", "Age {}"), ("healthy", "{}"), ("results", "{}"), ("near", "Near {}"),
                      ("advanced", "Expression: {}"), ("agg", "Filters: {}"),
                      *((f"{p}_{end}", f"{name} {word} {{}}") for p, name in
                        (("start", "Start"), ("posted", "First posted"), ("updated", "Updated"))
                        for end, word in (("from", "from"), ("to", "until")))):
        value = q.get(key)
        if value:
            if key in yes_no:
                value = yes_no[key][0] if value in ("yes", "with", "y") else yes_no[key][1]
            elif key == "near":
                value = f"{value} ({q.get('dist') or '50mi'})"
            changes: dict[str, Any] = {key: None}
            if key == "near":
                changes["dist"] = None
            out.append({"label": text.format(value), "href": url_with("/search", q.with_changes(**changes).params())})
    for key in ("cond", "intr", "term", "titles", "outc", "spons", "locn", "id"):
        if q.get(key):
            out.append({"label": f"{_TEXT_NAMES[key]}: {q.get(key)}",
                        "href": url_with("/search", q.with_changes(**{key: None}).params())})
    return out


def _map_for_hits(request: Request, summaries: list[dict[str, Any]], page: Any) -> dict[str, Any] | None:
    points = []
    for s in summaries:
        n = s["nearestSite"]
        if n and n["lat"] is not None and n["lon"] is not None:
            points.append({"lat": n["lat"], "lon": n["lon"], "title": s["title"], "href": s["url"],
                           "text": n["label"], "status": n["status"]})
    if not points:
        return None
    settings = request.app.state.settings
    center = None
    if getattr(page, "place", None) is not None:
        center = {"lat": page.place.lat, "lon": page.place.lon}
    return {"points": points, "center": center, "tiles": settings.tile_url,
            "attribution": settings.tile_attribution}  # empty tiles: offline outlines (web.maps)


@router.get("/search", response_class=HTMLResponse)
def search_page(request: Request) -> Response:
    """Results: count, facets, sorting, paging, exports (.csv, .json, .ris) and an RSS feed (.rss)."""
    from trialfinder import search

    settings = request.app.state.settings
    fmt = _format(request)
    items = request.query_params.multi_items()
    if fmt == "html" and any(not v.strip() or (k == "dist" and not request.query_params.get("near", "").strip())
                             for k, v in items):
        # a form sent empty fields (no script ran): the same search at its short, shareable address
        kept = [(k, v) for k, v in items if v.strip() and (k != "dist" or request.query_params.get("near", "").strip())]
        return RedirectResponse(url_with("/search", kept), 303)
    try:
        q = WebQuery.from_params(request.query_params)
        size = q.page_size(settings.html_page_size)
    except SearchError as exc:
        return _search_error(request, WebQuery(), exc, fmt)
    export = fmt in ("csv", "ris") or (fmt == "json" and q.get("export"))
    if fmt in ("csv", "ris") and request.query_params.get("all") == "1":
        return _stream_export(request, q, fmt)
    try:
        if fmt == "rss":
            req = q.to_request(page_size=settings.feed_items, facets=False, sort="updated")
        elif export:
            req = q.to_request(page_size=settings.export_limit, facets=False)
        else:
            req = q.to_request(page_size=size, page_token=q.get("page") or None)
            n = _page_number(q)
            if n > 1 and not q.get("page"):
                # page N of the HTML list: the engine's own page token, made for offset (N - 1) * size
                token = make_page_token({"q": req.fingerprint(), "o": (n - 1) * size})
                req = q.to_request(page_size=size, page_token=token)
        with request.app.state.pool.store() as store:
            _data_timestamp(request, store)
            page = search(store, req)
    except SearchError as exc:
        return _search_error(request, q, exc, fmt)
    if fmt == "csv":
        return _csv_export(page)
    if fmt == "ris":
        return Response(exports.to_ris([h.record for h in page.hits]),
                        media_type="application/x-research-info-systems",
                        headers=_capped_headers(page, "trialfinder-results.ris"))
    if fmt == "rss":
        base = str(request.base_url).rstrip("/")
        body = exports.to_rss([h.record for h in page.hits], channel_title=f"{settings.site_name}: {q.describe()}",
                              channel_link=base + url_with("/search", q.params()),
                              description=f"New and updated clinical studies: {q.describe()}",
                              study_link=lambda nct: f"{base}/study/{nct}")
        return Response(body, media_type="application/rss+xml; charset=utf-8")
    if export:
        return _json(page.to_api_json(include_extras=True))
    return _results(request, q, page, size)


#: Most studies a streamed whole-set export carries (deep pages cost the engine an offset scan each).
STREAM_EXPORT_MAX = 100_000
_STREAM_BATCH = 1000


def _stream_export(request: Request, q: WebQuery, fmt: str) -> Response:
    """The whole result set as one CSV or RIS download, written batch by batch as it is read, so
    neither the server nor the browser holds it all; each batch is one budgeted store visit."""
    from fastapi.responses import StreamingResponse

    from trialfinder import search

    try:
        first = q.to_request(page_size=_STREAM_BATCH, facets=False)
    except SearchError as exc:
        return PlainTextResponse(str(exc), 400)
    pool = request.app.state.pool

    def batches() -> Any:
        token: str | None = None
        done = 0
        while done < STREAM_EXPORT_MAX:
            req = first if token is None else q.to_request(page_size=_STREAM_BATCH, facets=False, page_token=token)
            with pool.store() as store:
                page = search(store, req, explain=False)
            hits = page.hits[: STREAM_EXPORT_MAX - done]
            if fmt == "csv":
                yield _csv_body(hits, header=done == 0)
            else:
                yield exports.to_ris([h.record for h in hits])
            done += len(hits)
            token = page.next_page_token
            if not token or not hits:
                break

    name, media = (("trialfinder-all-results.csv", "text/csv; charset=utf-8") if fmt == "csv" else
                   ("trialfinder-all-results.ris", "application/x-research-info-systems"))
    return StreamingResponse(batches(), media_type=media,
                             headers={"content-disposition": f'attachment; filename="{name}"'})


def _csv_body(hits: Any, header: bool = True) -> str:
    extra = [("Nearest Site", [hit_summary(h)["nearestSite"]["label"] if h.nearest else "" for h in hits]),
             ("Distance (mi)", [str(h.nearest.distance_mi) if h.nearest and h.nearest.distance_mi is not None
                                else "" for h in hits]),
             ("Matched", ["; ".join(h.matched) for h in hits])]
    return exports.to_csv([h.record for h in hits], extra=extra, header=header)


def _capped_headers(page: Any, name: str) -> dict[str, str]:
    """Download headers; a capped file says so (``X-Total-Count`` and ``X-Export-Capped``)."""
    headers = {"content-disposition": f'attachment; filename="{name}"'}
    total = page.total_count
    if total is not None:
        headers["x-total-count"] = str(total)
        if total > len(page.hits):
            headers["x-export-capped"] = f"{len(page.hits)} of {total}; add all=1 for every study"
    return headers


def _csv_export(page: Any) -> Response:
    return Response(_csv_body(page.hits), media_type="text/csv; charset=utf-8",
                    headers=_capped_headers(page, "trialfinder-results.csv"))


_INTERNALS_RE = re.compile(r"see trialfinder\.[\w.]+\(\),?\s*")
#: Form fields that take search expressions, with the label the form gives them.
_FIX_LABELS = {"advanced": "Essie expression", "cond": "Condition or disease", "intr": "Treatment",
               "term": "Other terms", "titles": "Title or acronym", "outc": "Outcome measure",
               "spons": "Sponsor or collaborator", "locn": "Location terms", "id": "Study ID"}


def public_message(exc: SearchError) -> str:
    """The error as a person should read it: no module paths or function names."""
    return _INTERNALS_RE.sub("", str(exc)).replace("(known fields: e.g.", "(known fields include")


def _fix_box(q: WebQuery, exc: SearchError) -> dict[str, Any] | None:
    """The field at fault, its text split at the error position, for an editable box with a marker."""
    param = exc.param
    if param not in _FIX_LABELS:
        return None
    value = q.get(param)
    if not value:
        return None
    pos = getattr(exc, "position", None)
    if isinstance(pos, int) and param == "advanced" and q.values("fcond"):
        pos -= 1  # with a condition facet, the expression is searched inside parentheses
    fix: dict[str, Any] = {"param": param, "label": _FIX_LABELS[param], "value": value, "position": None}
    if isinstance(pos, int) and pos >= 0:
        pos = min(pos, len(value))
        fix.update(position=pos, before=value[:pos], at=value[pos:pos + 1] or " ", after=value[pos + 1:])
    return fix


def _search_error(request: Request, q: WebQuery, exc: SearchError, fmt: str) -> Response:
    message = public_message(exc)
    if fmt != "html":
        if fmt == "json":
            return _json({"error": message, "param": exc.param}, 400)
        return PlainTextResponse(message, 400)
    fix = _fix_box(q, exc)
    hidden = [(k, v) for k, v in q.params() if not fix or k != fix["param"]]
    context = {"q": q, "error": message, "fix": fix, "fix_hidden": hidden, "nav": "find", "hidden": [],
               "links": _links(q, None, 1), "facets": [], "active": _active_filters(q), "hits": [], "total": None,
               "map": None, "pager": None}
    return render(request, "search.html", context, {"error": message, "param": exc.param}, status=400)


#: Highest page number offered (ClinicalTrials.gov's pages stop far earlier in practice; deep pages
#: cost the engine an offset scan).
MAX_PAGE = 1000


def _page_number(q: WebQuery) -> int:
    try:
        return max(1, min(int(q.get("n", "1")), MAX_PAGE))
    except ValueError:
        return 1


def pager(q: WebQuery, n: int, size: int, total: int | None, has_next: bool) -> dict[str, Any]:
    """Numbered pages around the current one, with previous and next: what every result list offers."""
    params = q.params()
    last = min(MAX_PAGE, max(1, -(-total // size))) if total is not None else (n + 1 if has_next else n)

    def href(k: int) -> str:
        return url_with("/search", [*params, ("n", str(k))] if k > 1 else params)

    window = sorted({1, last, *range(max(1, n - 2), min(last, n + 2) + 1)})
    pages: list[dict[str, Any]] = []
    for k in window:
        if pages and k - pages[-1]["number"] > 1:
            pages.append({"number": k - 1, "gap": True})
        pages.append({"number": k, "href": href(k), "current": k == n, "gap": False})
    return {"current": n, "last": last, "pages": pages if last > 1 else [],
            "previous": href(n - 1) if n > 1 else None,
            "next": href(n + 1) if n < last and (has_next or total is not None) else None}


def _links(q: WebQuery, page: Any, n: int) -> dict[str, str | None]:
    params = q.params()
    links: dict[str, str | None] = {
        "csv": url_with("/search.csv", params),
        "ris": url_with("/search.ris", params),
        "json": url_with("/search.json", q.params(drop=())),
        "json_export": url_with("/search.json", [*params, ("export", "1")]),
        "csv_all": url_with("/search.csv", [*params, ("all", "1")]),
        "ris_all": url_with("/search.ris", [*params, ("all", "1")]),
        "rss": url_with("/search.rss", [(k, v) for k, v in params if k not in ("sort", "size")]),
        "advanced": url_with("/advanced", params),
        "first": url_with("/search", params) if n > 1 else None,
        "next": None,
    }
    if page is not None and page.next_page_token:
        links["next"] = url_with("/search", [*params, ("page", page.next_page_token), ("n", str(n + 1))])
    return links


def _results(request: Request, q: WebQuery, page: Any, size: int) -> Response:
    n = _page_number(q)
    summaries = [hit_summary(h) for h in page.hits]
    if q.get("near"):  # the study page lists the sites nearest to the searched place first
        carry = url_with("", {"near": q.get("near"), "dist": q.get("dist")})
        for s in summaries:
            s["url"] += carry
    first = (n - 1) * size + 1
    facets = _facet_view(q, page.facets)
    links = _links(q, page, n)
    paging = pager(q, n, size, page.total_count, bool(page.next_page_token))
    links["previous"], links["next"] = paging["previous"], paging["next"]
    map_data = _map_for_hits(request, summaries, page) if q.get("near") else None
    shown = {"cond", "intr", "near", "dist", "recruiting", "age", "sex", "healthy", "results"}
    hidden = [(k, v) for k, v in q.params(drop=("page", "n", "export")) if k not in shown]
    sort_hidden = [(k, v) for k, v in q.params(drop=("page", "n", "export")) if k not in ("sort", "size")]
    sort_key = q.sort_key()
    sorts = [(k, v[0]) for k, v in SORTS.items() if k != "distance" or q.get("near")]
    data = {
        "query": dict(q.params(drop=())),
        "totalCount": page.total_count,
        "studies": summaries,
        "facets": {f["dimension"]: [{"value": v["value"], "count": v["count"], "selected": v["selected"]}
                                    for v in f["values"]] for f in facets},
        "expansions": page.expansions,
        "nextPageToken": page.next_page_token,
        "links": links,
    }
    context = {"q": q, "hits": summaries, "total": page.total_count, "facets": facets,
               "active": _active_filters(q), "links": links, "map": map_data, "hidden": hidden,
               "sort_hidden": sort_hidden, "sorts": sorts, "sort": sort_key, "size": size,
               "page_sizes": [(str(s), str(s)) for s in PAGE_SIZES], "expansions": page.expansions,
               "pager": paging, "first_index": first, "export_limit": request.app.state.settings.export_limit,
               "stream_max": STREAM_EXPORT_MAX, "last_index": first + len(summaries) - 1, "nav": "find", "error": None}
    return render(request, "search.html", context, data)


# ------------------------------------------------------------------------------------------- study


def _hook_after(view: Any) -> str:
    keys = [s.key for s in view.sections]
    for key in ("exclusion", "inclusion", "volunteers", "ages"):
        if key in keys:
            return key
    return keys[-1] if keys else ""


def _study_map(request: Request, view: Any) -> dict[str, Any]:
    loc = view.section("locations")
    points = []
    for site in getattr(loc, "sites", ()) or ():
        if site.geo:
            points.append({"lat": site.geo[0], "lon": site.geo[1], "title": site.facility or site.place,
                           "text": site.place, "status": site.status})
    settings = request.app.state.settings
    return {"points": points[:5000], "tiles": settings.tile_url, "attribution": settings.tile_attribution,
            "center": None}


def study_toc(view: Any) -> list[dict[str, Any]]:
    """The "On this page" list: every headed section, the runs of a group nested under the group."""
    out: list[dict[str, Any]] = []
    current: dict[str, Any] | None = None
    for sec in view.sections:
        if not sec.heading or sec.key in ("title", "sponsor", "source"):
            continue
        entry = {"label": sec.heading, "href": f"#sec-{sec.key}", "children": []}
        if sec.group:
            if current is None or current["label"] != sec.group:
                current = {"label": sec.group, "href": f"#sec-{sec.key}", "children": []}
                out.append(current)
            current["children"].append(entry)
        else:
            current = None
            out.append(entry)
    return out


def _missing_study(request: Request, nct: str) -> Response:
    """A study this copy does not hold: say so, and link to its page on the registry (it may be newer
    than this copy, or withheld)."""
    from trialfinder.model.view import STUDY_URL

    url = STUDY_URL.format(nct_id=nct)
    return error_page(request, 404, "Not found", f"No study {nct} in this database.",
                      link=(f"Look up {nct} on ClinicalTrials.gov", url))


def _study_place(request: Request) -> dict[str, Any] | None:
    """The place searched on the result list (``?near=``), resolved, so the nearest sites come first."""
    near = (request.query_params.get("near") or "").strip()[:200]
    if not near:
        return None
    found = resolve_place(near)
    if found is None:
        return None
    name, lat, lon = found
    return {"query": near, "name": name, "lat": lat, "lon": lon}


@router.get("/study/{nct_id}", response_class=HTMLResponse)
def study_page(nct_id: str, request: Request) -> Response:
    """One study, with every section of the reference study page in its order and wording."""
    from trialfinder.model.view import study_view

    raw = nct_id.strip()
    m = _LOOSE_NCT_RE.match(raw)
    if not m:
        raise HTTPException(404, f"{raw[:40]!r} is not an NCT number (NCT followed by 8 digits)")
    nct = f"NCT{int(m.group(1)):08d}"
    suffix = f".{request.state.format}" if getattr(request.state, "format", None) else ""
    with request.app.state.pool.store() as store:
        _data_timestamp(request, store)
        resolved = store.resolve_id(nct)
        if resolved is None:
            return _missing_study(request, nct)
        if resolved != raw:
            query = request.url.query
            return RedirectResponse(f"/study/{resolved}{suffix}" + (f"?{query}" if query else ""), 301)
        record = store.get(resolved)
        if record is None:
            return _missing_study(request, nct)
        view = study_view(record)
        extensions = []
        for hook in request.app.state.study_page_hooks:
            html = hook(request, store, view)
            if html:
                extensions.append(html)
        footer = [h for h in (hook(request, store, view) for hook in
                              getattr(request.app.state, "study_page_footer_hooks", ())) if h]
    if _format(request) == "json":
        return _json({"study": view.to_dict(), "record": record,
                      "dataTimestamp": request.state.data_timestamp})
    loc = view.section("locations")
    all_sites = tuple(getattr(loc, "sites", ()) or ())
    limit = request.app.state.settings.max_sites_listed
    show_all = request.query_params.get("sites") == "all"
    sites = all_sites if show_all else all_sites[:limit]
    place = _study_place(request)
    groups = group_sites(all_sites, (place["lat"], place["lon"]) if place else None,
                         None if show_all else limit) if all_sites else []
    carry = {"near": place["query"], "dist": request.query_params.get("dist")} if place else {}
    title_sec = view.section("title")
    context = {"view": view, "official": list(getattr(title_sec, "lines", ())[1:]), "sites": sites,
               "site_groups": groups, "place": place, "all_sites_href": url_with(
                   f"/study/{view.nct_id}", {**carry, "sites": "all"}) + "#sec-locations",
               "map": _study_map(request, view), "toc": study_toc(view), "hook_after": _hook_after(view),
               "extensions": extensions, "footer": footer,
               "status": record_get(record, "protocolSection", "statusModule", "overallStatus") or ""}
    context["is_open"] = context["status"] in OPEN_STATUSES
    return render(request, "study.html", context, {})


# ---------------------------------------------------------------------------------------- browsing


@router.get("/locations", response_class=HTMLResponse)
def locations(request: Request) -> Response:
    """Trials by location: countries -> states (or cities) -> cities, with study counts."""
    country = (request.query_params.get("country") or "").strip()[:200] or None
    state = (request.query_params.get("state") or "").strip()[:200] or None
    if state and not country:
        raise HTTPException(404, "a state needs a country")
    with request.app.state.pool.store() as store:
        _data_timestamp(request, store)
        rows = store.location_counts(country, state)
        if state and not rows:
            # the country lists cities directly (no states): this "state" is a city
            return RedirectResponse(url_with("/search", {"country": country, "city": state}), 302)
    rows = rows[:5000]
    if country is None:
        level, items = "Countries", [{"name": n, "count": c, "href": url_with("/locations", {"country": n})}
                                     for n, c in rows]
    elif state is None:
        level = "States, regions and cities"
        items = [{"name": n, "count": c, "href": url_with("/locations", {"country": country, "state": n})}
                 for n, c in rows]
    else:
        level = "Cities"
        items = [{"name": n, "count": c, "href": url_with("/search", {"country": country, "state": state,
                                                                      "city": n})} for n, c in rows]
    place = ", ".join(p for p in (state, country) if p)
    search_link = url_with("/search", {"country": country, "state": state}) if country else None
    total = sum(r["count"] for r in items)
    data = {"country": country, "state": state, "level": level.lower(),
            "counts": [{"name": r["name"], "count": r["count"], "href": r["href"]} for r in items],
            "search": search_link, "near": "/search?near=PLACE&dist=50mi&sort=distance"}
    from trialfinder.web.maps import country_map

    context = {"rows": items, "level_title": level, "country": country, "state": state, "place": place,
               "search_link": search_link, "total": total, "q": WebQuery(), "nav": "locations",
               "map": country_map(request, items) if country is None else None}
    return render(request, "locations.html", context, data)


LETTERS = tuple(string.ascii_uppercase)


@router.get("/conditions", response_class=HTMLResponse)
def conditions(request: Request) -> Response:
    """Conditions A–Z with study counts, each linking to a search."""
    letter = (request.query_params.get("letter") or "A").strip().upper()[:1]
    if letter not in LETTERS:
        raise HTTPException(404, "pick a letter from A to Z")
    with request.app.state.pool.store() as store:
        _data_timestamp(request, store)
        rows = store.condition_counts(letter)
    items = [{"name": t, "count": n, "href": url_with("/search", {"cond": f'"{t}"' if '"' not in t else t})}
             for t, n in rows]
    data = {"letter": letter, "conditions": items}
    return render(request, "conditions.html", {"rows": items, "letter": letter, "letters": LETTERS,
                                               "nav": "conditions"}, data)


@router.get("/api", response_class=HTMLResponse)
def api_page(request: Request) -> Response:
    """What the JSON API offers, with example links."""
    data = {"baseUrl": str(request.base_url) + "api/v2", "openapi": "/openapi.json"}
    return render(request, "api.html", {"base": str(request.base_url), "nav": "api"}, data)


@router.get("/healthz")
def healthz(request: Request) -> Response:
    """Liveness and readiness: the database answers."""
    with request.app.state.pool.store() as store:
        count = store.count()
    return _json({"status": "ok", "studies": count})
