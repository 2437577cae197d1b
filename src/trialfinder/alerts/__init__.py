"""Saved searches and alerts: what is new, changed or gone for a search since it was last checked.

A saved search is API v2 query parameters, as in a search URL (``query.cond=lupus&filter.overallStatus=
RECRUITING``). Which studies match is judged by trialfinder's own search, the same one the website and
``/api/v2/studies`` run; what a study "was" is the stored version the previous check saw (its content
hash), so a change is reported with its field-level diff from the record history.

* ``new``: matches now and did not at the previous check;
* ``changed``: matched then and now, and its stored record changed (with the changes);
* ``gone``: matched then, not now (stopped recruiting, moved, withdrawn).

Creating a saved search records what matches at that moment, so the first check reports what happened
after it was saved, as a subscription should. Each check keeps its items as events (the latest
:data:`MAX_EVENTS`) for the RSS feed.
"""

from __future__ import annotations

import re
import time
from typing import Any
from urllib.parse import parse_qsl

from trialfinder.errors import TrialfinderError
from trialfinder.history import classify, describe, diff, materiality
from trialfinder.model.labels import label
from trialfinder.search.request import MAX_PAGE_SIZE, SearchError, from_api_params
from trialfinder.store.base import Store

__all__ = ["AlertError", "MAX_EVENTS", "add_alert", "check_alert", "list_alerts", "matching_ids", "parse_query",
           "pending_report", "remove_alert", "validate_name"]

#: Events kept per saved search (the RSS feed shows them, newest first).
MAX_EVENTS = 500
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
#: Paging parameters belong to a search page, not to a saved search.
_PAGING = ("pageToken", "pageSize", "countTotal", "format", "fields", "sort")


class AlertError(TrialfinderError):
    """A saved search that does not exist, a bad name, or a query that is not valid API v2 parameters."""


def _now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


def validate_name(name: str) -> str:
    """Names appear in URLs (``/alerts/NAME/rss``): letters, digits, ``_ . -``, at most 64."""
    if not _NAME.match(name or ""):
        raise AlertError(f"invalid saved-search name {name!r}: use letters, digits, '_', '.' or '-' "
                         "(at most 64, starting with a letter or digit)")
    return name


def parse_query(query: str) -> dict[str, str | list[str]]:
    """``"query.cond=lupus&filter.overallStatus=RECRUITING"`` -> API parameters, validated by the search."""
    params: dict[str, str | list[str]] = {}
    for key, value in parse_qsl(query.lstrip("?"), keep_blank_values=False):
        if key in _PAGING:
            continue
        prev = params.get(key)
        params[key] = value if prev is None else ([*prev, value] if isinstance(prev, list) else [prev, value])
    if not params:
        raise AlertError(f"the query {query!r} has no search parameters (expected e.g. query.cond=lupus)")
    try:
        from_api_params(params)
    except SearchError as exc:
        raise AlertError(f"invalid query: {exc}") from None
    return params


def matching_ids(store: Store, query: str) -> list[str]:
    """Every NCT id the saved search matches now (all pages), in the search's order."""
    from trialfinder.api import search
    from trialfinder.index.follow import recheck

    recheck(store)  # this process may have just written (a sync, then its alerts): see its own write
    params: dict[str, Any] = dict(parse_query(query))
    params["pageSize"] = str(MAX_PAGE_SIZE)
    out: list[str] = []
    token: str | None = None
    while True:
        if token:
            params["pageToken"] = token
        page = search(store, params, explain=False)
        out.extend(h.nct_id for h in page.hits)
        token = page.next_page_token
        if not token or not page.hits:
            return out


def _seen_now(store: Store, ids: list[str]) -> dict[str, str]:
    return {n: h for n, (_d, h) in store.version_keys(ids).items()}


def add_alert(store: Store, name: str, query: str, *, webhook: str | None = None,
              email: str | None = None) -> dict[str, Any]:
    """Save a search (replacing one of the same name) and record what it matches now."""
    validate_name(name)
    parse_query(query)
    if webhook and not webhook.startswith(("http://", "https://")):
        raise AlertError(f"webhook must be an http(s) URL, got {webhook!r}")
    if email and "@" not in email:
        raise AlertError(f"not an e-mail address: {email!r}")
    now = _now()
    doc: dict[str, Any] = {"name": name, "query": query, "createdAt": now, "checkedAt": now, "webhook": webhook, "email": email,
           "seen": _seen_now(store, matching_ids(store, query)), "events": []}
    store.put_alert(name, doc)
    return doc


def list_alerts(store: Store) -> list[dict[str, Any]]:
    """Saved searches without their bookkeeping (``seen``, ``events``)."""
    return [{k: v for k, v in a.items() if k not in ("seen", "events")} | {"matching": len(a.get("seen") or {})}
            for a in store.alerts()]


def remove_alert(store: Store, name: str) -> None:
    if not store.delete_alert(name):
        raise AlertError(f"no saved search named {name!r}")


def _get(store: Store, name: str) -> dict[str, Any]:
    doc = store.alert(name)
    if doc is None:
        raise AlertError(f"no saved search named {name!r} (see 'trialfinder alerts list')")
    return doc


def _title(record: dict[str, Any] | None) -> str:
    ident = ((record or {}).get("protocolSection") or {}).get("identificationModule") or {}
    return str(ident.get("briefTitle") or ident.get("officialTitle") or "")


def _status_words(record: dict[str, Any] | None) -> str:
    status = (((record or {}).get("protocolSection") or {}).get("statusModule") or {}).get("overallStatus")
    return f"Status: {label('Status', status, plain=True)}" if status else ""


def _report(store: Store, doc: dict[str, Any]) -> tuple[dict[str, Any], dict[str, str]]:
    """The report since the previous check, and what is seen now (not stored: the caller decides)."""
    now_ids = matching_ids(store, doc["query"])
    seen: dict[str, str] = doc.get("seen") or {}
    now = _seen_now(store, now_ids)
    new = [n for n in now_ids if n not in seen]
    gone = [n for n in seen if n not in now]
    changed: list[dict[str, Any]] = []
    records = store.get_many([*new, *gone, *[n for n in now_ids if n in seen and seen[n] != now.get(n)]])
    for nct in now_ids:
        if nct not in seen or seen[nct] == now.get(nct):
            continue
        versions = store.versions(nct)
        before = next((v.record for v in versions if v.content_hash == seen[nct]), None)
        current = records.get(nct)
        changes = diff(before, current) if before is not None and current is not None else []
        if before is not None and not changes:
            continue  # same content under another hash (e.g. loaded from another kind of file)
        typed = classify(changes)
        changed.append({"nctId": nct, "title": _title(current), "changes": [c.to_dict() for c in changes],
                        "typed": [t.to_dict() for t in typed], "materiality": materiality(typed),
                        "description": describe(typed) or "Record updated at the registry (dates only)"})
    report = {
        "name": doc["name"], "query": doc["query"], "since": doc.get("checkedAt"), "checkedAt": _now(),
        "new": new, "changed": changed, "gone": gone,
        "details": {
            "new": [{"nctId": n, "title": _title(records.get(n)), "description": "; ".join(
                x for x in ("New match", _status_words(records.get(n))) if x)} for n in new],
            "gone": [{"nctId": n, "title": _title(records.get(n)), "description": "; ".join(
                x for x in ("No longer matches" if records.get(n) else "No longer in this database",
                            _status_words(records.get(n))) if x)} for n in gone],
        },
    }
    return report, now


def pending_report(store: Store, name: str) -> dict[str, Any]:
    """What a check would report now, without marking it seen (the RSS feed shows it as it happens)."""
    report, _now_seen = _report(store, _get(store, name))
    return report


def check_alert(store: Store, name: str, *, mark_seen: bool = True) -> dict[str, Any]:
    """Everything new, changed or gone since the previous check; then (by default) mark it seen.

    The JSON shape: ``{"name", "since", "new": [nctId], "changed": [{"nctId", "changes"}], "gone": [nctId]}``
    (plus ``details`` and per-change ``typed`` and ``description`` words)."""
    doc = _get(store, name)
    report, seen = _report(store, doc)
    if mark_seen:
        events = list(doc.get("events") or [])
        at = report["checkedAt"]
        for item in report["details"]["new"]:
            events.append({"at": at, "kind": "new", **item})
        for item in report["changed"]:
            events.append({"at": at, "kind": "changed", "nctId": item["nctId"], "title": item["title"],
                           "description": item["description"], "materiality": item["materiality"]})
        for item in report["details"]["gone"]:
            events.append({"at": at, "kind": "gone", **item})
        store.put_alert(name, {**doc, "seen": seen, "checkedAt": at, "events": events[-MAX_EVENTS:]})
    return report


def is_empty(report: dict[str, Any]) -> bool:
    return not (report["new"] or report["changed"] or report["gone"])
