"""What field-level changes mean: typed changes with a materiality level, and words for them.

Why typed: a person watching a trial cares that it stopped recruiting or opened a site near them, not
that ``statusVerifiedDate`` moved. Each :class:`~trialfinder.history.diff.Change` is put in one kind
(status, sites added/removed, site status, enrollment, dates moved, results posted, eligibility, ...),
and each kind has a materiality: ``major`` (worth an alert on its own), ``moderate``, ``minor``, or
``none`` (bookkeeping the registry updates with every submission). Pure functions, no I/O.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from trialfinder.history.diff import Change
from trialfinder.model.labels import label

__all__ = ["MATERIALITY", "TypedChange", "classify", "describe"]

#: Levels, most material first.
MATERIALITY = ("major", "moderate", "minor", "none")

_PS = "protocolSection."
_SITES = _PS + "contactsLocationsModule.locations"
_DATES = {
    _PS + "statusModule.startDateStruct": "Start date",
    _PS + "statusModule.primaryCompletionDateStruct": "Primary completion date",
    _PS + "statusModule.completionDateStruct": "Completion date",
}
_BOOKKEEPING = (
    _PS + "statusModule.lastUpdatePostDateStruct", _PS + "statusModule.lastUpdateSubmitDate",
    _PS + "statusModule.statusVerifiedDate", _PS + "statusModule.lastUpdateQcDate", "derivedSection",
    _PS + "statusModule.lastKnownStatus",
)
_SECTIONS = (
    (_PS + "eligibilityModule", "eligibility", "major", "Eligibility changed"),
    (_PS + "armsInterventionsModule", "arms_interventions", "moderate", "Arms or interventions changed"),
    (_PS + "outcomesModule", "outcomes", "moderate", "Outcome measures changed"),
    (_PS + "contactsLocationsModule.centralContacts", "contacts", "minor", "Contacts changed"),
    (_PS + "contactsLocationsModule.overallOfficials", "contacts", "minor", "Contacts changed"),
    (_PS + "designModule", "design", "moderate", "Design changed"),
    (_PS + "identificationModule", "identification", "minor", "Titles or identifiers changed"),
    (_PS + "descriptionModule", "description", "minor", "Description changed"),
    (_PS + "conditionsModule", "conditions", "minor", "Conditions or keywords changed"),
    (_PS + "sponsorCollaboratorsModule", "sponsors", "minor", "Sponsor or collaborators changed"),
    ("resultsSection", "results", "moderate", "Results changed"),
)


@dataclass
class TypedChange:
    """Changes of one kind, with what to say about them."""

    kind: str
    materiality: str
    summary: str
    changes: list[Change] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "materiality": self.materiality, "summary": self.summary,
                "paths": [c.path for c in self.changes]}


def _under(path: str, prefix: str) -> bool:
    return path == prefix or path.startswith(prefix + ".") or path.startswith(prefix + "[")


def _site_name(site: Any) -> str:
    if not isinstance(site, dict):
        return str(site)
    place = ", ".join(str(site[k]) for k in ("city", "country") if site.get(k))
    name = str(site.get("facility") or "").strip()
    return f"{name} ({place})" if name and place else (name or place or "a site")


def _status(value: Any) -> str:
    return label("Status", str(value), plain=True) if value else "(none)"


def _listing(items: list[str], limit: int = 3) -> str:
    shown = "; ".join(items[:limit])
    return shown + (f"; and {len(items) - limit} more" if len(items) > limit else "")


def _date(value: Any) -> str:
    if isinstance(value, dict):
        value = value.get("date")
    return str(value) if value else "(none)"


def classify(changes: Iterable[Change]) -> list[TypedChange]:
    """Group changes into typed changes, most material first (stable within a level)."""
    groups: dict[str, TypedChange] = {}
    added_sites: list[Change] = []
    removed_sites: list[Change] = []
    site_status: list[Change] = []

    def put(kind: str, materiality: str, summary: str, change: Change) -> None:
        group = groups.setdefault(kind, TypedChange(kind, materiality, summary))
        group.changes.append(change)

    for c in changes:
        p = c.path
        if p == _PS + "statusModule.overallStatus":
            put("status", "major", f"Status: {_status(c.old)} → {_status(c.new)}", c)
        elif p == "hasResults" or (p == "resultsSection" and c.op == "added"):
            if (p == "hasResults" and c.new is True) or p == "resultsSection":
                put("results_posted", "major", "Results posted", c)
            else:
                put("results", "moderate", "Results withdrawn", c)
        elif _under(p, _SITES):
            rest = p[len(_SITES):]
            if rest.startswith("[") and rest.endswith("]") and c.op == "added":
                added_sites.append(c)
            elif rest.startswith("[") and rest.endswith("]") and c.op == "removed":
                removed_sites.append(c)
            elif rest.endswith("].status"):
                site_status.append(c)
            elif rest == "" and c.op == "added" and isinstance(c.new, list):
                added_sites.extend(Change(f"{_SITES}[{_site_name(s)}]", None, s, "added") for s in c.new)
            elif rest == "" and c.op == "removed" and isinstance(c.old, list):
                removed_sites.extend(Change(f"{_SITES}[{_site_name(s)}]", s, None, "removed") for s in c.old)
            else:
                put("sites_changed", "minor", "Site details changed", c)
        elif p.startswith(_PS + "designModule.enrollmentInfo"):
            put("enrollment", "moderate", "", c)
        elif any(_under(p, d) for d in _DATES):
            put("dates", "moderate", "", c)
        elif any(_under(p, b) for b in _BOOKKEEPING):
            put("bookkeeping", "none", "Registry bookkeeping dates", c)
        else:
            for prefix, kind, materiality, summary in _SECTIONS:
                if _under(p, prefix):
                    put(kind, materiality, summary, c)
                    break
            else:
                put("other", "minor", "Other details changed", c)

    if added_sites:
        names = [_site_name(c.new) for c in added_sites]
        n = len(names)
        groups["sites_added"] = TypedChange("sites_added", "major",
                                            f"{n} site{'s' if n != 1 else ''} added: {_listing(names)}", added_sites)
    if removed_sites:
        names = [_site_name(c.old) for c in removed_sites]
        n = len(names)
        groups["sites_removed"] = TypedChange("sites_removed", "major",
                                              f"{n} site{'s' if n != 1 else ''} removed: {_listing(names)}",
                                              removed_sites)
    if site_status:
        parts = [f"{c.path[len(_SITES) + 1:-len('].status')]}: {_status(c.old)} → {_status(c.new)}"
                 for c in site_status]
        groups["site_status"] = TypedChange("site_status", "moderate", f"Site status: {_listing(parts)}", site_status)
    if "enrollment" in groups:
        g = groups["enrollment"]
        count = [c for c in g.changes if c.path.endswith("enrollmentInfo.count")]
        g.summary = (f"Enrollment: {count[0].old if count[0].old is not None else '(none)'} → "
                     f"{count[0].new if count[0].new is not None else '(none)'}") if count else "Enrollment type changed"
    if "dates" in groups:
        g = groups["dates"]
        moved = []
        for prefix, name in _DATES.items():
            for c in g.changes:
                if c.path in (prefix, prefix + ".date"):
                    moved.append(f"{name} {_date(c.old)} → {_date(c.new)}")
        g.summary = "Dates moved: " + ("; ".join(moved) if moved else "date types changed")
    if "eligibility" in groups:
        g = groups["eligibility"]
        fields = sorted({c.path.split(".")[2].split("[")[0] for c in g.changes if c.path.count(".") >= 2})
        g.summary = "Eligibility changed" + (f" ({', '.join(_ELIGIBILITY_NAMES.get(f, f) for f in fields)})"
                                             if fields else "")
    order = {m: i for i, m in enumerate(MATERIALITY)}
    return sorted(groups.values(), key=lambda g: order[g.materiality])


_ELIGIBILITY_NAMES = {"eligibilityCriteria": "criteria", "minimumAge": "minimum age", "maximumAge": "maximum age",
                      "sex": "sex", "healthyVolunteers": "healthy volunteers", "stdAges": "age groups"}


def describe(typed: Iterable[TypedChange], *, min_materiality: str = "minor") -> str:
    """Typed changes in words, e.g. ``Status: Recruiting → Active, not recruiting; 2 sites added: ...``."""
    limit = MATERIALITY.index(min_materiality)
    return "; ".join(t.summary for t in typed if MATERIALITY.index(t.materiality) <= limit)


def materiality(typed: Iterable[TypedChange]) -> str:
    """The highest materiality among typed changes (``none`` when there are none)."""
    levels = [MATERIALITY.index(t.materiality) for t in typed]
    return MATERIALITY[min(levels)] if levels else "none"
