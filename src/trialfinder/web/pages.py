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
from trialfinder.model.labels import label, status_badge
from trialfinder.model.study import record_get
from trialfinder.web import exports
from trialfinder.web.query import PAGE_SIZES, SORTS, WebQuery
from trialfinder.web.render import url_with

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


def error_page(request: Request, status: int, title: str, message: str) -> Response:
    """An error as a page (or JSON for JSON clients)."""
    if _format(request) == "json":
        return _json({"error": message, "status": status}, status)
    html = request.app.state.templates.get_template("error.html").render(
        {**_common(request), "title": title, "message": message})
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
            "search": "/search?cond=&intr=&near=&dist=50mi&recruiting=1", "advancedSearch": "/advanced"}
    return render(request, "home.html", {"q": q, "stats": summary, "nav": "find"}, data)


def _enum_options(enum_type: str, values: tuple[str, ...] | None = None) -> list[tuple[str, str]]:
    return [(v, label(enum_type, v)) for v in (values or ENUMS[enum_type])]


def _form_options() -> dict[str, list[tuple[str, str]]]:
    return {
        "status": [(v, status_badge(v) if v in ("RECRUITING", "NOT_YET_RECRUITING") else label("Status", v))
                   for v in ENUMS["Status"]],
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


def hit_summary(hit: Any) -> dict[str, Any]:
    """One search hit as the result list shows it (and as the page's JSON gives it)."""
    rec = hit.record
    ps = rec.get("protocolSection", {}) if isinstance(rec, dict) else {}
    status = record_get(ps, "statusModule", "overallStatus") or ""
    phases = record_get(ps, "designModule", "phases") or []
    nearest = None
    if hit.nearest is not None:
        n = hit.nearest
        place = ", ".join(x for x in (n.city, n.state, n.country) if x)
        nearest = {"facility": n.facility, "city": n.city, "state": n.state, "country": n.country,
                   "status": n.status, "lat": n.lat, "lon": n.lon, "distanceKm": n.distance_km,
                   "distanceMi": n.distance_mi,
                   "label": f"{n.facility}, {place}" if n.facility and place else (n.facility or place)}
    return {
        "nctId": hit.nct_id,
        "url": f"/study/{hit.nct_id}",
        "title": record_get(ps, "identificationModule", "briefTitle") or record_get(ps, "identificationModule",
                                                                        "officialTitle") or hit.nct_id,
        "status": status,
        "statusLabel": status_badge(status) if status else "Status unknown",
        "phases": phases,
        "phaseLabels": [label("Phase", p) for p in phases if p != "NA"],
        "conditions": (record_get(ps, "conditionsModule", "conditions") or [])[:8],
        "sponsor": record_get(ps, "sponsorCollaboratorsModule", "leadSponsor", "name") or "",
        "nearestSite": nearest,
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
    if q.recruiting:
        out.append({"label": "Recruiting", "href": url_with("/search", q.with_changes(recruiting=None).params())})
    for key, text in (("age", "Age {}"), ("healthy", "Healthy volunteers: {}"), ("results", "Results: {}"),
                      ("advanced", "Expression: {}"), ("agg", "Filters: {}")):
        if q.get(key):
            out.append({"label": text.format(q.get(key)),
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
    try:
        q = WebQuery.from_params(request.query_params)
        size = q.page_size(settings.html_page_size)
    except SearchError as exc:
        return _search_error(request, WebQuery(), str(exc), fmt)
    export = fmt in ("csv", "ris") or (fmt == "json" and q.get("export"))
    try:
        if fmt == "rss":
            req = q.to_request(page_size=settings.feed_items, facets=False, sort="updated")
        elif export:
            req = q.to_request(page_size=settings.export_limit, facets=False)
        else:
            req = q.to_request(page_size=size, page_token=q.get("page") or None)
        with request.app.state.pool.store() as store:
            _data_timestamp(request, store)
            page = search(store, req)
    except SearchError as exc:
        return _search_error(request, q, str(exc), fmt)
    if fmt == "csv":
        return _csv_export(page)
    if fmt == "ris":
        return Response(exports.to_ris([h.record for h in page.hits]),
                        media_type="application/x-research-info-systems",
                        headers={"content-disposition": 'attachment; filename="trialfinder-results.ris"'})
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


def _csv_export(page: Any) -> Response:
    hits = page.hits
    extra = [("Nearest Site", [hit_summary(h)["nearestSite"]["label"] if h.nearest else "" for h in hits]),
             ("Distance (mi)", [str(h.nearest.distance_mi) if h.nearest and h.nearest.distance_mi is not None
                                else "" for h in hits]),
             ("Matched", ["; ".join(h.matched) for h in hits])]
    body = exports.to_csv([h.record for h in hits], extra=extra)
    return Response(body, media_type="text/csv; charset=utf-8",
                    headers={"content-disposition": 'attachment; filename="trialfinder-results.csv"'})


def _search_error(request: Request, q: WebQuery, message: str, fmt: str) -> Response:
    if fmt != "html":
        if fmt == "json":
            return _json({"error": message}, 400)
        return PlainTextResponse(message, 400)
    context = {"q": q, "error": message, "nav": "find", "hidden": [], "links": _links(q, None, 1),
               "facets": [], "active": [], "hits": [], "total": None, "map": None}
    return render(request, "search.html", context, {"error": message}, status=400)


def _links(q: WebQuery, page: Any, n: int) -> dict[str, str | None]:
    params = q.params()
    links: dict[str, str | None] = {
        "csv": url_with("/search.csv", params),
        "ris": url_with("/search.ris", params),
        "json": url_with("/search.json", q.params(drop=())),
        "json_export": url_with("/search.json", [*params, ("export", "1")]),
        "rss": url_with("/search.rss", [(k, v) for k, v in params if k not in ("sort", "size")]),
        "advanced": url_with("/advanced", params),
        "first": url_with("/search", params) if n > 1 else None,
        "next": None,
    }
    if page is not None and page.next_page_token:
        links["next"] = url_with("/search", [*params, ("page", page.next_page_token), ("n", str(n + 1))])
    return links


def _results(request: Request, q: WebQuery, page: Any, size: int) -> Response:
    try:
        n = max(1, min(int(q.get("n", "1")), 100_000))
    except ValueError:
        n = 1
    summaries = [hit_summary(h) for h in page.hits]
    first = (n - 1) * size + 1
    facets = _facet_view(q, page.facets)
    links = _links(q, page, n)
    map_data = _map_for_hits(request, summaries, page) if q.get("near") else None
    shown = {"cond", "intr", "near", "dist", "recruiting"}
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
               "first_index": first, "last_index": first + len(summaries) - 1, "nav": "find", "error": None}
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
            raise HTTPException(404, f"No study {nct} in this database.")
        if resolved != raw:
            query = request.url.query
            return RedirectResponse(f"/study/{resolved}{suffix}" + (f"?{query}" if query else ""), 301)
        record = store.get(resolved)
        if record is None:
            raise HTTPException(404, f"No study {nct} in this database.")
        view = study_view(record)
        extensions = []
        for hook in request.app.state.study_page_hooks:
            html = hook(request, store, view)
            if html:
                extensions.append(html)
    if _format(request) == "json":
        return _json({"study": view.to_dict(), "record": record,
                      "dataTimestamp": request.state.data_timestamp})
    loc = view.section("locations")
    all_sites = tuple(getattr(loc, "sites", ()) or ())
    limit = request.app.state.settings.max_sites_listed
    sites = all_sites if request.query_params.get("sites") == "all" else all_sites[:limit]
    title_sec = view.section("title")
    context = {"view": view, "official": list(getattr(title_sec, "lines", ())[1:]), "sites": sites,
               "map": _study_map(request, view), "hook_after": _hook_after(view), "extensions": extensions,
               "status": record_get(record, "protocolSection", "statusModule", "overallStatus") or ""}
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
