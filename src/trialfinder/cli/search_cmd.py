"""``trialfinder search``: options named after ClinicalTrials.gov API v2 parameters, plus friendly ones.

The options are turned into the same API parameter mapping the JSON API receives, parsed by the same
:func:`trialfinder.search.from_api_params`, so a query carries over between the website, the API and the
terminal unchanged.
"""

from __future__ import annotations

import argparse
import csv
import dataclasses
import shutil
import sys
import textwrap
from typing import Any

import orjson

import trialfinder

API_OPTIONS = (
    ("cond", "query.cond", "conditions or disease"),
    ("term", "query.term", "other terms (searches every field)"),
    ("intr", "query.intr", "intervention / treatment"),
    ("locn", "query.locn", "location terms (facility, city, state, country)"),
    ("titles", "query.titles", "title or acronym"),
    ("outc", "query.outc", "outcome measures"),
    ("spons", "query.spons", "sponsor or collaborator"),
    ("id", "query.id", "NCT id, org study id or other identifier"),
    ("status", "filter.overallStatus", "overall status list, comma separated (e.g. RECRUITING,NOT_YET_RECRUITING)"),
    ("geo", "filter.geo", "distance(lat,lon,50mi)"),
    ("advanced", "filter.advanced", "an Essie expression, e.g. 'AREA[Phase]PHASE3 AND AREA[MinimumAge]RANGE[MIN, 18 years]'"),
    ("agg", "aggFilters", "the website's filters, e.g. 'phase:2 3,sex:f,status:rec'"),
    ("sort", "sort", "e.g. LastUpdatePostDate:desc, @relevance, distance"),
    ("page_size", "pageSize", "results per page (1-1000, default 10)"),
    ("page_token", "pageToken", "token from a previous page"),
    ("fields", "fields", "comma separated field names for --json (e.g. NCTId,BriefTitle)"),
)


def register(sub: Any) -> None:
    from trialfinder.cli.subcommand import add_db_options

    p = sub.add_parser("search", help="search studies", formatter_class=argparse.RawDescriptionHelpFormatter,
                       description=__doc__)
    for dest, api, help_text in API_OPTIONS:
        p.add_argument("--" + dest.replace("_", "-"), dest=dest, metavar=api.split(".")[-1].upper(),
                       help=f"{help_text} [{api}]")
    p.add_argument("--count-total", action="store_true", help="report the total number of matches [countTotal]")
    p.add_argument("--near", metavar="PLACE", help="a place name or US ZIP code, resolved offline")
    p.add_argument("--radius", metavar="DIST", help="radius with a unit, e.g. 50mi or 80km (default 50mi)")
    p.add_argument("--age", type=float, metavar="YEARS", help="patient age: trials whose age range admits it")
    p.add_argument("--recruiting", action="store_true",
                   help="only recruiting studies; with --near, only sites that are themselves recruiting")
    p.add_argument("--exact", action="store_true", help="no synonym expansion (exact terms only)")
    out = p.add_mutually_exclusive_group()
    out.add_argument("--json", action="store_true", help="API v2 response shape")
    out.add_argument("--csv", action="store_true", help="CSV with one row per study")
    p.add_argument("--facets", action="store_true", help="print facet counts")
    add_db_options(p)
    p.set_defaults(func=cmd_search)


def build_request(args: argparse.Namespace) -> Any:
    """CLI options -> API parameters -> SearchRequest, plus the friendly options."""
    from trialfinder.search import SearchError, from_api_params
    from trialfinder.search.request import parse_radius

    params: dict[str, str] = {}
    for dest, api, _ in API_OPTIONS:
        value = getattr(args, dest, None)
        if value is not None:
            params[api] = str(value)
    if args.count_total:
        params["countTotal"] = "true"
    request = from_api_params(params)
    changes: dict[str, Any] = {"facets": bool(args.facets)}
    if args.facets:
        changes["count_total"] = True
    if args.near:
        changes["near"] = args.near
        changes["radius_km"] = parse_radius(args.radius or "50mi", param="radius")
    elif args.radius:
        raise SearchError("radius", "--radius needs --near PLACE")
    if args.age is not None:
        if not 0 <= args.age <= 150:
            raise SearchError("age", f"age must be between 0 and 150 years, got {args.age:g}")
        changes["age"] = args.age
    if args.recruiting:
        changes["statuses"] = ("RECRUITING",)
        changes["recruiting_sites_only"] = True
    if args.exact:
        changes["synonyms"] = False
    return dataclasses.replace(request, **changes)


def cmd_search(args: argparse.Namespace) -> int:
    from trialfinder.cli.subcommand import CLIError, open_existing
    from trialfinder.search import SearchError

    try:
        request = build_request(args)
        with open_existing(args.db) as store:
            page = trialfinder.search(store, request)
    except SearchError as exc:
        raise CLIError(str(exc)) from exc
    if args.json:
        sys.stdout.buffer.write(orjson.dumps(page.to_api_json(), option=orjson.OPT_INDENT_2) + b"\n")
    elif args.csv:
        write_csv(page, sys.stdout)
    else:
        print_table(page, sys.stdout)
    if args.facets:
        print_facets(page, sys.stdout)
    return 0


def _summary(rec: dict) -> dict[str, str]:
    from trialfinder.model.labels import label

    ps = rec.get("protocolSection", {})
    return {
        "nct_id": ps.get("identificationModule", {}).get("nctId", ""),
        "title": ps.get("identificationModule", {}).get("briefTitle", ""),
        "status": label("Status", ps.get("statusModule", {}).get("overallStatus", "") or ""),
        "phase": ", ".join(label("Phase", p) for p in ps.get("designModule", {}).get("phases", []) or []),
        "conditions": "; ".join(ps.get("conditionsModule", {}).get("conditions", []) or []),
        "sponsor": ps.get("sponsorCollaboratorsModule", {}).get("leadSponsor", {}).get("name", ""),
    }


def _site(hit: Any) -> str:
    n = hit.nearest
    if n is None:
        return ""
    place = ", ".join(x for x in (n.city, n.state, n.country) if x)
    dist = f"{n.distance_mi:.1f} mi" if n.distance_mi is not None else ""
    return f"{dist} {n.facility + ' — ' if n.facility else ''}{place}".strip()


def print_table(page: Any, out: Any) -> None:
    width = shutil.get_terminal_size((110, 20)).columns
    if page.total_count is not None:
        out.write(f"{page.total_count:,} studies\n")
    if page.expansions:
        for area, used in page.expansions.items():
            out.write(f"also searched ({area}): {'; '.join(used)}\n")
    if not page.hits:
        out.write("no studies found\n")
    for hit in page.hits:
        s = _summary(hit.record)
        out.write(f"\n{s['nct_id']}  {s['status']}{'  ' + s['phase'] if s['phase'] else ''}\n")
        for line in textwrap.wrap(s["title"], width - 2) or [""]:
            out.write(f"  {line}\n")
        if s["conditions"]:
            out.write("  " + textwrap.shorten(f"Conditions: {s['conditions']}", width - 2) + "\n")
        if hit.nearest:
            out.write(f"  Nearest site: {_site(hit)}\n")
        if hit.matched:
            out.write("  Matched: " + "; ".join(hit.matched) + "\n")
    if page.next_page_token:
        out.write(f"\nmore results: --page-token {page.next_page_token}\n")


def write_csv(page: Any, out: Any) -> None:
    w = csv.writer(out)
    w.writerow(["NCT Number", "Title", "Status", "Phase", "Conditions", "Sponsor", "Nearest site",
                "Distance (mi)", "Matched"])
    for hit in page.hits:
        s = _summary(hit.record)
        dist = hit.nearest.distance_mi if hit.nearest else None
        w.writerow([s["nct_id"], s["title"], s["status"], s["phase"], s["conditions"], s["sponsor"],
                    _site(hit) if hit.nearest else "", "" if dist is None else dist, "; ".join(hit.matched)])


def print_facets(page: Any, out: Any) -> None:
    from trialfinder.search.facets import facet_label

    for dim, values in (page.facets or {}).items():
        out.write(f"\n{dim}:\n")
        for value, n in values[:15]:
            out.write(f"  {facet_label(dim, value):<40} {n:>8,}\n")
