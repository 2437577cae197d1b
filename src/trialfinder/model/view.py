"""The study page as an ordered list of sections, shared by the CLI ``show`` command and the web page.

Why a view model: the terminal and the browser must show the same facts in the same order and wording
(the reference is the study page in ``tests/data/study-page-NCT05631717.txt``), so the decisions about
*what* a page says — labels, "40 estimated patients", "18 to 65 years old", which sections exist — are
made once here from the raw API v2 record, and the shells only lay the result out.

Every section is optional: a section whose source fields are missing is left out, never rendered empty,
so partial and legacy-converted records display cleanly.
"""

from __future__ import annotations

import dataclasses
import re
import textwrap
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from trialfinder.model.labels import age_range_text, label, status_badge, volunteers_text

STUDY_URL = "https://clinicaltrials.gov/study/{nct_id}"
DETAILS_GROUP = "Details and patient eligibility"


# --- view dataclasses ----------------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class Section:
    """Base of every section. ``key`` is a stable id for templates/tests, ``heading`` the page wording
    ("" for the unheaded title and sponsor lines), ``group`` an optional super-heading shared by a run
    of sections (the page's "Details and patient eligibility"), ``kind`` says which subclass it is so a
    template can dispatch without isinstance."""

    key: str
    heading: str
    group: str | None = None
    kind: str = field(default="section", init=False)


@dataclass(frozen=True, kw_only=True)
class LinesSection(Section):
    """Short values, one per line (status and phase, conditions, identifiers, ages, ...)."""

    lines: tuple[str, ...]
    kind: str = field(default="lines", init=False)


@dataclass(frozen=True, kw_only=True)
class TextSection(Section):
    """Free text kept as the registry wrote it (markdown), split into paragraphs."""

    paragraphs: tuple[str, ...]
    kind: str = field(default="text", init=False)


@dataclass(frozen=True, kw_only=True)
class Fact:
    """A labelled value such as ("Allocation", "Randomized")."""

    label: str
    value: str


@dataclass(frozen=True, kw_only=True)
class FactsSection(Section):
    """Label/value pairs (dates, sponsor and collaborators)."""

    facts: tuple[Fact, ...]
    kind: str = field(default="facts", init=False)


@dataclass(frozen=True, kw_only=True)
class CriterionItem:
    """One criterion bullet; ``number`` is the registry's own numbering ("3", "a") if it had one."""

    text: str
    depth: int = 0
    number: str | None = None
    children: tuple[CriterionItem, ...] = ()


@dataclass(frozen=True, kw_only=True)
class CriteriaSection(Section):
    """Inclusion or exclusion criteria: the preamble line(s), the items, and any unplaced notes."""

    preamble: tuple[str, ...]
    items: tuple[CriterionItem, ...]
    notes: tuple[str, ...] = ()
    kind: str = field(default="criteria", init=False)


@dataclass(frozen=True, kw_only=True)
class Arm:
    """One patient group: label, type label ("Experimental group"), description, treatments."""

    label: str
    type: str
    description: str
    treatments: tuple[str, ...]


@dataclass(frozen=True, kw_only=True)
class DesignSection(Section):
    """Trial design: facts (Primary purpose, Allocation, ...), a summary line
    ("40 participants in 2 patient groups") and the arms."""

    facts: tuple[Fact, ...]
    summary: str
    arms: tuple[Arm, ...]
    kind: str = field(default="design", init=False)


@dataclass(frozen=True, kw_only=True)
class Contact:
    """A person to contact: name as registered ("Jun Liang, Doctor"), role label, phone, email."""

    name: str
    role: str = ""
    phone: str = ""
    email: str = ""


@dataclass(frozen=True, kw_only=True)
class Site:
    """One trial location; ``geo`` is (lat, lon) when the record (or our geocoder) has it."""

    facility: str
    city: str = ""
    state: str = ""
    zip: str = ""
    country: str = ""
    status: str = ""
    contacts: tuple[Contact, ...] = ()
    geo: tuple[float, float] | None = None

    @property
    def place(self) -> str:
        """The place line (city, state, country) with missing parts skipped."""
        return ", ".join(p for p in (self.city, self.state, self.country) if p)


@dataclass(frozen=True, kw_only=True)
class LocationsSection(Section):
    """Trial contacts and locations: number of sites and the site list."""

    site_count: int
    sites: tuple[Site, ...]
    kind: str = field(default="locations", init=False)


@dataclass(frozen=True, kw_only=True)
class ContactsSection(Section):
    """Central trial contact(s)."""

    contacts: tuple[Contact, ...]
    kind: str = field(default="contacts", init=False)


@dataclass(frozen=True, kw_only=True)
class Outcome:
    """One outcome measure with its time frame."""

    measure: str
    time_frame: str = ""
    description: str = ""


@dataclass(frozen=True, kw_only=True)
class OutcomeGroup:
    """Primary, secondary or other outcomes."""

    heading: str
    outcomes: tuple[Outcome, ...]


@dataclass(frozen=True, kw_only=True)
class OutcomesSection(Section):
    """Outcome measures grouped by type."""

    groups: tuple[OutcomeGroup, ...]
    kind: str = field(default="outcomes", init=False)


@dataclass(frozen=True, kw_only=True)
class StudyView:
    """Everything a study page shows, in page order. ``sections`` is the single source for layout;
    the scalar attributes are conveniences for page titles, links and list rows."""

    nct_id: str
    title: str
    sponsor: str
    url: str
    data_as_of: str | None
    last_updated: str | None
    sections: tuple[Section, ...]

    def section(self, key: str) -> Section | None:
        """The section with ``key``, or None when the record lacked it."""
        return next((s for s in self.sections if s.key == key), None)

    def headings(self) -> list[str]:
        """Non-empty headings in order (what a reader scans)."""
        return [s.heading for s in self.sections if s.heading]

    def to_dict(self) -> dict[str, Any]:
        """Plain-JSON form for the web API and templates that prefer dicts."""
        return dataclasses.asdict(self)


# --- record access helpers -----------------------------------------------------------------------


def _get(obj: Any, *path: str) -> Any:
    """Walk nested dicts, returning None at the first missing or non-dict step (records are partial)."""
    for key in path:
        if not isinstance(obj, dict):
            return None
        obj = obj.get(key)
    return obj


def _str(value: Any) -> str:
    return value.strip() if isinstance(value, str) else ("" if value is None else str(value))


def _list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def _dicts(value: Any) -> list[dict[str, Any]]:
    return [v for v in _list(value) if isinstance(v, dict)]


def _strings(values: Iterable[Any]) -> tuple[str, ...]:
    return tuple(s for s in (_str(v) for v in values) if s)


def _dedupe(values: Iterable[str]) -> tuple[str, ...]:
    return tuple(dict.fromkeys(v for v in values if v))


def _plural(n: int, word: str, plural: str | None = None) -> str:
    return f"{n} {word if n == 1 else (plural or word + 's')}"


def _paragraphs(text: str) -> tuple[str, ...]:
    return tuple(p.strip("\n") for p in re.split(r"\n[ \t]*\n", text.replace("\r\n", "\n")) if p.strip())


# --- criteria splitting --------------------------------------------------------------------------


@dataclass
class _Split:
    inclusion_preamble: tuple[str, ...] = ()
    inclusion: tuple[CriterionItem, ...] = ()
    exclusion_preamble: tuple[str, ...] = ()
    exclusion: tuple[CriterionItem, ...] = ()
    notes: tuple[str, ...] = ()


def _preamble(value: Any) -> tuple[str, ...]:
    if isinstance(value, str):
        return (value.strip(),) if value.strip() else ()
    if isinstance(value, Sequence):
        return _strings(value)
    return ()


def _adapt_item(item: Any, level: int = 0) -> CriterionItem:
    """Convert the eligibility module's item (duck-typed: .text, .depth, .number?, .children?)."""
    depth = getattr(item, "depth", None)
    number = getattr(item, "number", None)
    return CriterionItem(
        text=_str(getattr(item, "text", item)),
        depth=depth if isinstance(depth, int) else level,
        number=_str(number) or None,
        children=tuple(_adapt_item(c, level + 1) for c in getattr(item, "children", None) or ()),
    )


def _split(text: str) -> _Split:
    """Use the shared splitter when it exists so the page and matching agree on what the items are."""
    try:
        from trialfinder.eligibility.criteria import split_criteria
    except ImportError:
        return _fallback_split(text)
    res = split_criteria(text)
    return _Split(
        inclusion_preamble=_preamble(getattr(res, "inclusion_preamble", None)),
        inclusion=tuple(_adapt_item(i) for i in getattr(res, "inclusion", None) or ()),
        exclusion_preamble=_preamble(getattr(res, "exclusion_preamble", None)),
        exclusion=tuple(_adapt_item(i) for i in getattr(res, "exclusion", None) or ()),
        notes=_strings(getattr(res, "notes", None) or ()),
    )


_HEADING_RE = re.compile(
    r"^(?:key |main |major |general |additional )?(inclusion|exclusion) criteria\b[^:]{0,60}:?$", re.I
)
_BULLET_RE = re.compile(r"^(\s*)(?:([*\-•+])|(\d{1,3}|[a-zA-Z]|[ivxIVX]{1,4})[.)])\s+(.*)$")


@dataclass
class _Node:
    text: str
    indent: int
    number: str | None
    children: list[_Node] = field(default_factory=list)

    def freeze(self, depth: int) -> CriterionItem:
        return CriterionItem(
            text=self.text,
            depth=depth,
            number=self.number,
            children=tuple(c.freeze(depth + 1) for c in self.children),
        )


def _fallback_split(text: str) -> _Split:
    """Minimal splitter used only while trialfinder.eligibility.criteria is unavailable: headings
    "Inclusion/Exclusion Criteria:", "* "/"- "/numbered bullets nested by indentation, and any prose
    before the first bullet kept as the preamble.  Text without headings counts as inclusion."""
    parts: dict[str, tuple[list[str], list[_Node]]] = {"inclusion": ([], []), "exclusion": ([], [])}
    current = "inclusion"
    stack: list[_Node] = []
    prev_blank = True
    for raw in text.replace("\r\n", "\n").split("\n"):
        if not raw.strip():
            prev_blank = True
            continue
        bare = raw.strip().strip("#*_ ").strip()
        heading = _HEADING_RE.match(bare)
        if heading and not _BULLET_RE.match(raw):
            current, stack, prev_blank = heading.group(1).lower(), [], True
            continue
        preamble, roots = parts[current]
        bullet = _BULLET_RE.match(raw)
        if bullet:
            indent = len(bullet.group(1).expandtabs(4))
            node = _Node(text=bullet.group(4).strip(), indent=indent, number=bullet.group(3))
            while stack and stack[-1].indent >= indent:
                stack.pop()
            (stack[-1].children if stack else roots).append(node)
            stack.append(node)
        elif stack and not prev_blank:
            stack[-1].text = f"{stack[-1].text} {raw.strip()}"
        elif not roots:
            preamble.append(raw.strip())
        else:
            node = _Node(text=raw.strip(), indent=0, number=None)
            roots.append(node)
            stack = [node]
        prev_blank = False
    inc_pre, inc = parts["inclusion"]
    exc_pre, exc = parts["exclusion"]
    return _Split(
        inclusion_preamble=(" ".join(inc_pre),) if inc_pre else (),
        inclusion=tuple(n.freeze(0) for n in inc),
        exclusion_preamble=(" ".join(exc_pre),) if exc_pre else (),
        exclusion=tuple(n.freeze(0) for n in exc),
    )


# --- section builders (each returns None when the record lacks the data) -------------------------


def _treatments(interventions: list[dict[str, Any]]) -> tuple[str, ...]:
    out = []
    for iv in interventions:
        name = _str(iv.get("name"))
        if not name:
            continue
        kind = label("InterventionType", _str(iv.get("type")))
        out.append(f"{kind}: {name}" if kind else name)
    return _dedupe(out)


def _arm_treatments(arm: dict[str, Any], interventions: list[dict[str, Any]]) -> tuple[str, ...]:
    names = _strings(_list(arm.get("interventionNames")))
    if names:
        return names
    arm_label = _str(arm.get("label"))
    return _treatments([iv for iv in interventions if arm_label in _strings(_list(iv.get("armGroupLabels")))])


def _enrollment(design: Any) -> str | None:
    count = _get(design, "enrollmentInfo", "count")
    if not isinstance(count, int) or isinstance(count, bool):
        return None
    estimated = _get(design, "enrollmentInfo", "type") == "ESTIMATED"
    return f"{count} {'estimated ' if estimated else ''}{'patient' if count == 1 else 'patients'}"


_INCLUSION = {"key": "inclusion", "heading": "Inclusion criteria", "group": DETAILS_GROUP}
_EXCLUSION = {"key": "exclusion", "heading": "Exclusion criteria", "group": DETAILS_GROUP}


def _criteria_sections(elig: Any) -> list[Section]:
    text = _str(_get(elig, "eligibilityCriteria"))
    if not text:
        return []
    split = _split(text)
    out: list[Section] = []
    for names, pre, items in (
        (_INCLUSION, split.inclusion_preamble, split.inclusion),
        (_EXCLUSION, split.exclusion_preamble, split.exclusion),
    ):
        if pre or items:
            out.append(CriteriaSection(**names, preamble=pre, items=items))
    if split.notes:  # unplaced text goes under the last criteria heading rather than being lost
        last = out.pop() if out else CriteriaSection(**_INCLUSION, preamble=(), items=())
        out.append(dataclasses.replace(last, notes=split.notes))
    return out


def _design_section(design: Any, arms_mod: Any) -> DesignSection | None:
    info = _get(design, "designInfo")
    facts: list[Fact] = []
    for fact_label, enum_type, path in (
        ("Primary purpose", "PrimaryPurpose", ("primaryPurpose",)),
        ("Allocation", "DesignAllocation", ("allocation",)),
        ("Interventional model", "InterventionalAssignment", ("interventionModel",)),
        ("Observational model", "ObservationalModel", ("observationalModel",)),
        ("Time perspective", "DesignTimePerspective", ("timePerspective",)),
    ):
        value = _str(_get(info, *path))
        if value:
            facts.append(Fact(label=fact_label, value=label(enum_type, value)))
    model_desc = _str(_get(info, "interventionModelDescription"))
    if model_desc:
        facts.append(Fact(label="Model description", value=model_desc))
    masking = _str(_get(info, "maskingInfo", "masking"))
    if masking:
        who = [label("WhoMasked", _str(w)) for w in _list(_get(info, "maskingInfo", "whoMasked"))]
        value = label("DesignMasking", masking) + (f" ({', '.join(w for w in who if w)})" if any(who) else "")
        facts.append(Fact(label="Masking", value=value))
    masking_desc = _str(_get(info, "maskingInfo", "maskingDescription"))
    if masking_desc:
        facts.append(Fact(label="Masking description", value=masking_desc))

    interventions = _dicts(_get(arms_mod, "interventions"))
    arms = tuple(
        Arm(
            label=_str(a.get("label")),
            type=label("ArmGroupType", _str(a.get("type"))),
            description=_str(a.get("description")),
            treatments=_arm_treatments(a, interventions),
        )
        for a in _dicts(_get(arms_mod, "armGroups"))
    )
    summary = ""
    if arms:
        count = _get(design, "enrollmentInfo", "count")
        groups = _plural(len(arms), "patient group")
        summary = f"{_plural(count, 'participant')} in {groups}" if isinstance(count, int) else groups
    if not facts and not arms:
        return None
    return DesignSection(key="design", heading="Trial design", facts=tuple(facts), summary=summary, arms=arms)


def _contact(c: dict[str, Any], role_type: str = "ContactRole") -> Contact:
    role = _str(c.get("role"))
    phone = _str(c.get("phone"))
    ext = _str(c.get("phoneExt"))
    return Contact(
        name=_str(c.get("name")),
        role="" if role in ("", "CONTACT") else label(role_type, role),
        phone=f"{phone} ext. {ext}" if phone and ext else phone,
        email=_str(c.get("email")),
    )


def _site(loc: dict[str, Any]) -> Site:
    lat, lon = _get(loc, "geoPoint", "lat"), _get(loc, "geoPoint", "lon")
    geo = (float(lat), float(lon)) if isinstance(lat, int | float) and isinstance(lon, int | float) else None
    return Site(
        facility=_str(loc.get("facility")),
        city=_str(loc.get("city")),
        state=_str(loc.get("state")),
        zip=_str(loc.get("zip")),
        country=_str(loc.get("country")),
        status=label("RecruitmentStatus", _str(loc.get("status"))),
        contacts=tuple(_contact(c) for c in _dicts(loc.get("contacts")) if _str(c.get("name"))),
        geo=geo,
    )


def _date_fact(status: Any, key: str, fact_label: str) -> Fact | None:
    date = _str(_get(status, key, "date"))
    if not date:
        return None
    estimated = _get(status, key, "type") == "ESTIMATED"
    return Fact(label=fact_label, value=f"{date} (estimated)" if estimated else date)


def _sponsors_section(sponsors: Any, contacts: Any) -> FactsSection | None:
    facts: list[Fact] = []
    lead = _get(sponsors, "leadSponsor")
    if _str(_get(lead, "name")):
        cls = _str(_get(lead, "class"))
        facts.append(Fact(label="Lead sponsor", value=_with_class(_str(_get(lead, "name")), cls)))
    for collab in _dicts(_get(sponsors, "collaborators")):
        if _str(collab.get("name")):
            value = _with_class(_str(collab.get("name")), _str(collab.get("class")))
            facts.append(Fact(label="Collaborator", value=value))
    party = _get(sponsors, "responsibleParty")
    ptype = _str(_get(party, "type"))
    if ptype:
        keys = ("investigatorFullName", "investigatorTitle", "investigatorAffiliation")
        who = ", ".join(_strings(_get(party, k) for k in keys))
        value = label("ResponsiblePartyType", ptype) + (f": {who}" if who else "")
        facts.append(Fact(label="Responsible party", value=value))
    for off in _dicts(_get(contacts, "overallOfficials")):
        name = _str(off.get("name"))
        if name:
            role = label("OfficialRole", _str(off.get("role"))) or "Study official"
            aff = _str(off.get("affiliation"))
            facts.append(Fact(label=role, value=f"{name}, {aff}" if aff else name))
    if not facts:
        return None
    return FactsSection(key="sponsors", heading="Sponsor and collaborators", facts=tuple(facts))


def _with_class(name: str, cls: str) -> str:
    return f"{name} ({label('AgencyClass', cls)})" if cls else name


def _outcomes_section(outcomes_mod: Any) -> OutcomesSection | None:
    groups = []
    for key, heading in (
        ("primaryOutcomes", "Primary outcomes"),
        ("secondaryOutcomes", "Secondary outcomes"),
        ("otherOutcomes", "Other outcomes"),
    ):
        items = tuple(
            Outcome(
                measure=_str(o.get("measure")),
                time_frame=_str(o.get("timeFrame")),
                description=_str(o.get("description")),
            )
            for o in _dicts(_get(outcomes_mod, key))
            if _str(o.get("measure"))
        )
        if items:
            groups.append(OutcomeGroup(heading=heading, outcomes=items))
    if not groups:
        return None
    return OutcomesSection(key="outcomes", heading="Outcomes", groups=tuple(groups))


# --- public API ----------------------------------------------------------------------------------


def study_view(record: dict[str, Any]) -> StudyView:
    """Build the study page for one API v2 record.  Never raises on missing modules: any section whose
    data is absent is simply omitted (legacy conversions and search-result stubs are often partial)."""
    if not isinstance(record, dict):
        raise TypeError(f"study_view expects a dict record, got {type(record).__name__}")
    proto = _get(record, "protocolSection") or {}
    ident = _get(proto, "identificationModule")
    status = _get(proto, "statusModule")
    sponsors = _get(proto, "sponsorCollaboratorsModule")
    desc = _get(proto, "descriptionModule")
    design = _get(proto, "designModule")
    arms_mod = _get(proto, "armsInterventionsModule")
    elig = _get(proto, "eligibilityModule")
    contacts = _get(proto, "contactsLocationsModule")

    nct_id = _str(_get(ident, "nctId"))
    title = _str(_get(ident, "briefTitle")) or _str(_get(ident, "officialTitle")) or nct_id
    sponsor = _str(_get(sponsors, "leadSponsor", "name")) or _str(_get(ident, "organization", "fullName"))
    sections: list[Section] = []

    def lines(key: str, heading: str, values: Iterable[str], group: str | None = None) -> None:
        vals = _dedupe(values)
        if vals:
            sections.append(LinesSection(key=key, heading=heading, lines=vals, group=group))

    def text(key: str, heading: str, value: Any, group: str | None = None) -> None:
        paras = _paragraphs(_str(value))
        if paras:
            sections.append(TextSection(key=key, heading=heading, paragraphs=paras, group=group))

    official = _str(_get(ident, "officialTitle"))
    lines("title", "", [title] + ([official] if official and official != title else []))
    lines("sponsor", "", [sponsor])
    overall = _str(_get(status, "overallStatus"))
    phases = [label("Phase", _str(p)) for p in _list(_get(design, "phases"))]
    lines("status", "Status and phase", [status_badge(overall)] + phases)
    lines("conditions", "Conditions", _strings(_list(_get(proto, "conditionsModule", "conditions"))))
    interventions = _dicts(_get(arms_mod, "interventions"))
    treatments = _treatments(interventions) or _dedupe(
        n for a in _dicts(_get(arms_mod, "armGroups")) for n in _strings(_list(a.get("interventionNames")))
    )
    lines("treatments", "Treatments", treatments)
    study_type = _str(_get(design, "studyType"))
    if study_type:
        registry = " [Patient Registry]" if _get(design, "patientRegistry") is True else ""
        lines("study_type", "Study type", [label("StudyType", study_type) + registry])
    classes = [_str(_get(sponsors, "leadSponsor", "class"))]
    classes += [_str(c.get("class")) for c in _dicts(_get(sponsors, "collaborators"))]
    lines("funder_types", "Funder types", [label("AgencyClass", c) for c in classes if c])
    ids = [nct_id, _str(_get(ident, "orgStudyIdInfo", "id"))]
    ids += [_str(s.get("id")) for s in _dicts(_get(ident, "secondaryIdInfos"))]
    ids += _strings(_list(_get(ident, "nctIdAliases")))
    lines("identifiers", "Identifiers", ids)

    text("about", "About", _get(desc, "briefSummary"), DETAILS_GROUP)
    text("description", "Full description", _get(desc, "detailedDescription"), DETAILS_GROUP)
    lines("enrollment", "Enrollment", [_enrollment(design) or ""], DETAILS_GROUP)
    sex = _str(_get(elig, "sex"))
    gender_desc = _str(_get(elig, "genderDescription"))
    lines("sex", "Sex", [label("Sex", sex) if sex else "", gender_desc if sex else ""], DETAILS_GROUP)
    min_age, max_age = _str(_get(elig, "minimumAge")), _str(_get(elig, "maximumAge"))
    std_ages = _list(_get(elig, "stdAges"))
    if min_age or max_age or std_ages:
        lines("ages", "Ages", [age_range_text(min_age or None, max_age or None)], DETAILS_GROUP)
    healthy = _get(elig, "healthyVolunteers")
    healthy = healthy if isinstance(healthy, bool) else None
    lines("volunteers", "Volunteers", [volunteers_text(healthy)], DETAILS_GROUP)
    text("study_population", "Study population", _get(elig, "studyPopulation"), DETAILS_GROUP)
    sections.extend(_criteria_sections(elig))

    design_sec = _design_section(design, arms_mod)
    if design_sec:
        sections.append(design_sec)
    locations = _dicts(_get(contacts, "locations"))
    central = tuple(_contact(c) for c in _dicts(_get(contacts, "centralContacts")) if _str(c.get("name")))
    if locations or central:
        sites = tuple(_site(loc) for loc in locations)
        sections.append(
            LocationsSection(
                key="locations", heading="Trial contacts and locations", site_count=len(sites), sites=sites
            )
        )
    if central:
        sections.append(
            ContactsSection(key="central_contact", heading="Central trial contact", contacts=central)
        )

    outcomes = _outcomes_section(_get(proto, "outcomesModule"))
    if outcomes:
        sections.append(outcomes)
    dates = [
        _date_fact(status, "startDateStruct", "Study start"),
        _date_fact(status, "primaryCompletionDateStruct", "Primary completion"),
        _date_fact(status, "completionDateStruct", "Study completion"),
        _date_fact(status, "studyFirstPostDateStruct", "First posted"),
        _date_fact(status, "resultsFirstPostDateStruct", "Results first posted"),
        _date_fact(status, "lastUpdatePostDateStruct", "Last update posted"),
    ]
    why = _str(_get(status, "whyStopped"))
    if why:
        dates.append(Fact(label="Why stopped", value=why))
    if any(dates):
        sections.append(FactsSection(key="dates", heading="Dates", facts=tuple(d for d in dates if d)))
    sponsors_sec = _sponsors_section(sponsors, contacts)
    if sponsors_sec:
        sections.append(sponsors_sec)

    url = STUDY_URL.format(nct_id=nct_id) if nct_id else ""
    data_as_of = _str(_get(record, "derivedSection", "miscInfoModule", "versionHolder")) or None
    last_updated = _str(_get(status, "lastUpdatePostDateStruct", "date")) or None
    source = ["Data sourced from clinicaltrials.gov"]
    if data_as_of:
        source.append(f"Data as of {data_as_of}")
    if last_updated:
        source.append(f"Last updated {last_updated}")
    if url:
        source.append(url)
    lines("source", "Source", source)
    return StudyView(
        nct_id=nct_id,
        title=title,
        sponsor=sponsor,
        url=url,
        data_as_of=data_as_of,
        last_updated=last_updated,
        sections=tuple(sections),
    )


# --- terminal rendering --------------------------------------------------------------------------

_LIST_LINE_RE = re.compile(r"^(\s*(?:[*\-•+]|\d{1,3}[.)])\s+)")


class _Writer:
    """Accumulates wrapped plain-text lines; wrapping never splits words or hyphenated terms, so
    "24-hour" and URLs survive intact and the output can be grepped."""

    def __init__(self, width: int) -> None:
        self.width = max(width, 20)
        self.out: list[str] = []

    def blank(self) -> None:
        if self.out and self.out[-1] != "":
            self.out.append("")

    def wrap(self, text: str, indent: str = "", hanging: str | None = None) -> None:
        sub = indent if hanging is None else hanging
        for raw in text.split("\n"):
            if not raw.strip():
                continue
            first, rest = indent, sub
            marker = _LIST_LINE_RE.match(raw)
            if marker:  # a markdown list line inside free text: hang the continuation under its text
                rest = sub + " " * len(marker.group(1).lstrip("\n"))
            wrapped = textwrap.wrap(
                raw.rstrip() if marker else raw.strip(),
                width=self.width,
                initial_indent=first,
                subsequent_indent=rest,
                break_long_words=False,
                break_on_hyphens=False,
            )
            self.out.extend(wrapped or [first.rstrip()])

    def heading(self, text: str, underline: str) -> None:
        self.blank()
        self.out.append(text)
        self.out.append(underline * min(len(text), self.width))


def _render_items(w: _Writer, items: Sequence[CriterionItem], level: int = 0) -> None:
    for item in items:
        depth = max(level, item.depth)
        pad = "  " + "    " * depth
        bullet = f"{item.number}." if item.number else ("•" if depth == 0 else "◦")
        w.wrap(item.text, indent=f"{pad}{bullet} ", hanging=pad + " " * (len(bullet) + 1))
        _render_items(w, item.children, depth + 1)


def _render_section(w: _Writer, sec: Section, max_sites: int | None) -> None:
    if isinstance(sec, LinesSection):
        for line in sec.lines:
            w.wrap(line)
    elif isinstance(sec, TextSection):
        for para in sec.paragraphs:
            w.wrap(para)
            w.blank()
    elif isinstance(sec, FactsSection):
        for fact in sec.facts:
            w.wrap(f"{fact.label}: {fact.value}", hanging="    ")
    elif isinstance(sec, CriteriaSection):
        for pre in sec.preamble:
            w.wrap(pre)
            w.blank()
        _render_items(w, sec.items)
        for note in sec.notes:
            w.blank()
            w.wrap(f"Note: {note}", hanging="    ")
    elif isinstance(sec, DesignSection):
        for fact in sec.facts:
            w.wrap(f"{fact.label}: {fact.value}", hanging="    ")
        if sec.summary:
            w.blank()
            w.wrap(sec.summary)
        for arm in sec.arms:
            w.blank()
            w.wrap(f"{arm.label} ({arm.type})" if arm.type else arm.label, indent="  ")
            if arm.description:
                w.wrap("Description:", indent="    ")
                w.wrap(arm.description, indent="      ")
            if arm.treatments:
                w.wrap("Treatment:", indent="    ")
                for t in arm.treatments:
                    w.wrap(t, indent="      ")
    elif isinstance(sec, LocationsSection):
        w.wrap(_plural(sec.site_count, "site") if sec.site_count else "No sites listed yet")
        shown = sec.sites if max_sites is None else sec.sites[:max_sites]
        for site in shown:
            w.wrap(site.facility or site.place or "Unnamed site", indent="  • ", hanging="    ")
            detail = " · ".join(p for p in (site.place if site.facility else "", site.status) if p)
            if detail:
                w.wrap(detail, indent="    ")
        if len(shown) < len(sec.sites):
            w.wrap(f"… and {len(sec.sites) - len(shown)} more", indent="  ")
    elif isinstance(sec, ContactsSection):
        for c in sec.contacts:
            w.wrap(f"{c.name} ({c.role})" if c.role else c.name)
            for extra in (c.phone, c.email):
                if extra:
                    w.wrap(extra, indent="  ")
    elif isinstance(sec, OutcomesSection):
        for group in sec.groups:
            w.wrap(group.heading + ":")
            for o in group.outcomes:
                w.wrap(o.measure, indent="  • ", hanging="    ")
                if o.time_frame:
                    w.wrap(f"Time frame: {o.time_frame}", indent="    ", hanging="      ")
                if o.description:
                    w.wrap(o.description, indent="    ")
            w.blank()


def render_text(view: StudyView, width: int = 100, *, max_sites: int | None = None) -> str:
    """Render the view as plain text for a terminal or a pipe: no ANSI codes, headings underlined,
    sections in page order, criteria as bullets.  ``max_sites`` trims very long site lists."""
    w = _Writer(width)
    group: str | None = None
    for sec in view.sections:
        if sec.key == "title":
            first, *rest = sec.lines
            start = len(w.out)
            w.wrap(first)
            w.out.append("=" * max(len(line) for line in w.out[start:]))
            for line in rest:
                w.wrap(line)
            continue
        if sec.group != group and sec.group:
            w.blank()
            w.heading(sec.group, "=")
        group = sec.group
        if sec.heading:
            w.heading(sec.heading, "-")
        else:
            w.blank()
        _render_section(w, sec, max_sites)
    while w.out and w.out[-1] == "":
        w.out.pop()
    return "\n".join(w.out) + "\n"
