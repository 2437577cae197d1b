"""The study page as an ordered list of sections, shared by the CLI ``show`` command and the web page.

Why a view model: the terminal and the browser must show the same facts in the same order and wording
(the reference is the study page in ``tests/data/study-page-NCT05631717.txt``), so the decisions about
*what* a page says — labels, "40 estimated patients", "18 to 65 years old", which sections exist — are
made once here from the raw API v2 record, and the shells only lay the result out.

The section types are in :mod:`trialfinder.model.view_sections` and the terminal layout in
:mod:`trialfinder.model.view_text`; both are re-exported here, so callers import the page from one place.

Every section is optional: a section whose source fields are missing is left out, never rendered empty,
so partial and legacy-converted records display cleanly.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any, TypedDict

from trialfinder.model.criteria import split_criteria
from trialfinder.model.labels import age_range_text, count_text, label, status_badge, volunteers_text
from trialfinder.model.study import record_get
from trialfinder.model.view_results import results_sections, study_info_sections
from trialfinder.model.view_sections import (
    Arm,
    Contact,
    ContactsSection,
    CriteriaSection,
    CriterionItem,
    DesignSection,
    Fact,
    FactsSection,
    LinesSection,
    LocationsSection,
    Outcome,
    OutcomeGroup,
    OutcomesSection,
    Section,
    Site,
    StudyView,
    TextSection,
)
from trialfinder.model.view_text import render_text

__all__ = [
    "DETAILS_GROUP", "STUDY_URL", "Arm", "Contact", "ContactsSection", "CriteriaSection", "CriterionItem",
    "DesignSection", "Fact", "FactsSection", "LinesSection", "LocationsSection", "Outcome", "OutcomeGroup",
    "OutcomesSection", "Section", "Site", "StudyView", "TextSection", "render_text", "study_view",
]

STUDY_URL = "https://clinicaltrials.gov/study/{nct_id}"
DETAILS_GROUP = "Details and patient eligibility"


# --- record access helpers -----------------------------------------------------------------------


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
    """The one criteria splitter (``model.criteria``), so the page and matching agree on the items."""
    res = split_criteria(text)
    return _Split(
        inclusion_preamble=_preamble(res.inclusion_preamble),
        inclusion=tuple(_adapt_item(i) for i in res.inclusion),
        exclusion_preamble=_preamble(res.exclusion_preamble),
        exclusion=tuple(_adapt_item(i) for i in res.exclusion),
        notes=_strings(res.notes),
    )


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
    count = record_get(design, "enrollmentInfo", "count")
    if not isinstance(count, int) or isinstance(count, bool):
        return None
    estimated = record_get(design, "enrollmentInfo", "type") == "ESTIMATED"
    return f"{count} {'estimated ' if estimated else ''}{'patient' if count == 1 else 'patients'}"


class _CriteriaNames(TypedDict):
    key: str
    heading: str
    group: str


_INCLUSION: _CriteriaNames = {"key": "inclusion", "heading": "Inclusion criteria", "group": DETAILS_GROUP}
_EXCLUSION: _CriteriaNames = {"key": "exclusion", "heading": "Exclusion criteria", "group": DETAILS_GROUP}


def _criteria_sections(elig: Any) -> list[CriteriaSection]:
    text = _str(record_get(elig, "eligibilityCriteria"))
    if not text:
        return []
    split = _split(text)
    out: list[CriteriaSection] = []
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
    info = record_get(design, "designInfo")
    facts: list[Fact] = []
    for fact_label, enum_type, path in (
        ("Primary purpose", "PrimaryPurpose", ("primaryPurpose",)),
        ("Allocation", "DesignAllocation", ("allocation",)),
        ("Interventional model", "InterventionalAssignment", ("interventionModel",)),
        ("Observational model", "ObservationalModel", ("observationalModel",)),
        ("Time perspective", "DesignTimePerspective", ("timePerspective",)),
    ):
        value = _str(record_get(info, *path))
        if value:
            facts.append(Fact(label=fact_label, value=label(enum_type, value)))
    model_desc = _str(record_get(info, "interventionModelDescription"))
    if model_desc:
        facts.append(Fact(label="Model description", value=model_desc))
    masking = _str(record_get(info, "maskingInfo", "masking"))
    if masking:
        who = [label("WhoMasked", _str(w)) for w in _list(record_get(info, "maskingInfo", "whoMasked"))]
        value = label("DesignMasking", masking) + (f" ({', '.join(w for w in who if w)})" if any(who) else "")
        facts.append(Fact(label="Masking", value=value))
    masking_desc = _str(record_get(info, "maskingInfo", "maskingDescription"))
    if masking_desc:
        facts.append(Fact(label="Masking description", value=masking_desc))

    interventions = _dicts(record_get(arms_mod, "interventions"))
    arms = tuple(
        Arm(
            label=_str(a.get("label")),
            type=label("ArmGroupType", _str(a.get("type"))),
            description=_str(a.get("description")),
            treatments=_arm_treatments(a, interventions),
        )
        for a in _dicts(record_get(arms_mod, "armGroups"))
    )
    summary = ""
    if arms:
        count = record_get(design, "enrollmentInfo", "count")
        groups = count_text(len(arms), "patient group")
        summary = f"{count_text(count, 'participant')} in {groups}" if isinstance(count, int) else groups
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
    lat, lon = record_get(loc, "geoPoint", "lat"), record_get(loc, "geoPoint", "lon")
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
    date = _str(record_get(status, key, "date"))
    if not date:
        return None
    estimated = record_get(status, key, "type") == "ESTIMATED"
    return Fact(label=fact_label, value=f"{date} (estimated)" if estimated else date)


def _sponsors_section(sponsors: Any, contacts: Any) -> FactsSection | None:
    facts: list[Fact] = []
    lead = record_get(sponsors, "leadSponsor")
    if _str(record_get(lead, "name")):
        cls = _str(record_get(lead, "class"))
        facts.append(Fact(label="Lead sponsor", value=_with_class(_str(record_get(lead, "name")), cls)))
    for collab in _dicts(record_get(sponsors, "collaborators")):
        if _str(collab.get("name")):
            value = _with_class(_str(collab.get("name")), _str(collab.get("class")))
            facts.append(Fact(label="Collaborator", value=value))
    party = record_get(sponsors, "responsibleParty")
    ptype = _str(record_get(party, "type"))
    if ptype:
        keys = ("investigatorFullName", "investigatorTitle", "investigatorAffiliation")
        who = ", ".join(_strings(record_get(party, k) for k in keys))
        value = label("ResponsiblePartyType", ptype) + (f": {who}" if who else "")
        facts.append(Fact(label="Responsible party", value=value))
    for off in _dicts(record_get(contacts, "overallOfficials")):
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
            for o in _dicts(record_get(outcomes_mod, key))
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
    proto = record_get(record, "protocolSection") or {}
    ident = record_get(proto, "identificationModule")
    status = record_get(proto, "statusModule")
    sponsors = record_get(proto, "sponsorCollaboratorsModule")
    desc = record_get(proto, "descriptionModule")
    design = record_get(proto, "designModule")
    arms_mod = record_get(proto, "armsInterventionsModule")
    elig = record_get(proto, "eligibilityModule")
    contacts = record_get(proto, "contactsLocationsModule")

    nct_id = _str(record_get(ident, "nctId"))
    title = _str(record_get(ident, "briefTitle")) or _str(record_get(ident, "officialTitle")) or nct_id
    sponsor = _str(record_get(sponsors, "leadSponsor", "name")) or _str(record_get(ident, "organization", "fullName"))
    sections: list[Section] = []

    def lines(key: str, heading: str, values: Iterable[str], group: str | None = None) -> None:
        vals = _dedupe(values)
        if vals:
            sections.append(LinesSection(key=key, heading=heading, lines=vals, group=group))

    def text(key: str, heading: str, value: Any, group: str | None = None) -> None:
        paras = _paragraphs(_str(value))
        if paras:
            sections.append(TextSection(key=key, heading=heading, paragraphs=paras, group=group))

    official = _str(record_get(ident, "officialTitle"))
    lines("title", "", [title] + ([official] if official and official != title else []))
    lines("sponsor", "", [sponsor])
    overall = _str(record_get(status, "overallStatus"))
    phases = [label("Phase", _str(p)) for p in _list(record_get(design, "phases"))]
    lines("status", "Status and phase", [status_badge(overall)] + phases)
    lines("conditions", "Conditions", _strings(_list(record_get(proto, "conditionsModule", "conditions"))))
    interventions = _dicts(record_get(arms_mod, "interventions"))
    treatments = _treatments(interventions) or _dedupe(
        n for a in _dicts(record_get(arms_mod, "armGroups")) for n in _strings(_list(a.get("interventionNames")))
    )
    lines("treatments", "Treatments", treatments)
    study_type = _str(record_get(design, "studyType"))
    if study_type:
        registry = " [Patient Registry]" if record_get(design, "patientRegistry") is True else ""
        lines("study_type", "Study type", [label("StudyType", study_type) + registry])
    classes = [_str(record_get(sponsors, "leadSponsor", "class"))]
    classes += [_str(c.get("class")) for c in _dicts(record_get(sponsors, "collaborators"))]
    lines("funder_types", "Funder types", [label("AgencyClass", c) for c in classes if c])
    ids = [nct_id, _str(record_get(ident, "orgStudyIdInfo", "id"))]
    ids += [_str(s.get("id")) for s in _dicts(record_get(ident, "secondaryIdInfos"))]
    ids += _strings(_list(record_get(ident, "nctIdAliases")))
    lines("identifiers", "Identifiers", ids)

    text("about", "About", record_get(desc, "briefSummary"), DETAILS_GROUP)
    text("description", "Full description", record_get(desc, "detailedDescription"), DETAILS_GROUP)
    lines("enrollment", "Enrollment", [_enrollment(design) or ""], DETAILS_GROUP)
    sex = _str(record_get(elig, "sex"))
    gender_desc = _str(record_get(elig, "genderDescription"))
    lines("sex", "Sex", [label("Sex", sex) if sex else "", gender_desc if sex else ""], DETAILS_GROUP)
    min_age, max_age = _str(record_get(elig, "minimumAge")), _str(record_get(elig, "maximumAge"))
    std_ages = _list(record_get(elig, "stdAges"))
    if min_age or max_age or std_ages:
        lines("ages", "Ages", [age_range_text(min_age or None, max_age or None)], DETAILS_GROUP)
    healthy = record_get(elig, "healthyVolunteers")
    healthy = healthy if isinstance(healthy, bool) else None
    lines("volunteers", "Volunteers", [volunteers_text(healthy)], DETAILS_GROUP)
    text("study_population", "Study population", record_get(elig, "studyPopulation"), DETAILS_GROUP)
    sections.extend(_criteria_sections(elig))

    design_sec = _design_section(design, arms_mod)
    if design_sec:
        sections.append(design_sec)
    locations = _dicts(record_get(contacts, "locations"))
    central = tuple(_contact(c) for c in _dicts(record_get(contacts, "centralContacts")) if _str(c.get("name")))
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

    outcomes = _outcomes_section(record_get(proto, "outcomesModule"))
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
    why = _str(record_get(status, "whyStopped"))
    if why:
        dates.append(Fact(label="Why stopped", value=why))
    if any(dates):
        sections.append(FactsSection(key="dates", heading="Dates", facts=tuple(d for d in dates if d)))
    sponsors_sec = _sponsors_section(sponsors, contacts)
    if sponsors_sec:
        sections.append(sponsors_sec)
    sections.extend(study_info_sections(record, nct_id))
    sections.extend(results_sections(record))

    url = STUDY_URL.format(nct_id=nct_id) if nct_id else ""
    data_as_of = _str(record_get(record, "derivedSection", "miscInfoModule", "versionHolder")) or None
    last_updated = _str(record_get(status, "lastUpdatePostDateStruct", "date")) or None
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
