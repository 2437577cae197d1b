"""Validation and normalisation of one API v2 study record.

The record itself is kept exactly as ingested (a plain dict in the ClinicalTrials.gov API v2 ``Study``
structure). What search, filters, facets, maps and matching need is pulled out of it here, once, into
a :class:`NormalizedStudy` whose rows the store writes to its indexed tables. Keeping this in the model
(not in the store) means every storage backend indexes exactly the same facts.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from trialfinder.errors import TrialfinderError
from trialfinder.model.countries import canonical_country

NCT_RE = re.compile(r"^NCT\d{8}$")

#: Enum fields that drive filters and facets: an unknown value here cannot be kept meaningfully, so the
#: record is rejected. Unknown values in other enum fields are kept as they are.
STRICT_ENUM_FIELDS: dict[str, str] = {
    "protocolSection.statusModule.overallStatus": "Status",
    "protocolSection.designModule.studyType": "StudyType",
    "protocolSection.designModule.phases": "Phase",
    "protocolSection.eligibilityModule.sex": "Sex",
    "protocolSection.sponsorCollaboratorsModule.leadSponsor.class": "AgencyClass",
    "protocolSection.armsInterventionsModule.interventions.type": "InterventionType",
    "protocolSection.contactsLocationsModule.locations.status": "RecruitmentStatus",
}

_AGE_RE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([A-Za-z]+)?\s*$")
_AGE_UNITS = {
    "year": 1.0, "years": 1.0, "yr": 1.0, "yrs": 1.0, "y": 1.0,
    "month": 1 / 12, "months": 1 / 12, "mo": 1 / 12,
    "week": 7 / 365.25, "weeks": 7 / 365.25, "wk": 7 / 365.25,
    "day": 1 / 365.25, "days": 1 / 365.25, "d": 1 / 365.25,
    "hour": 1 / 8766, "hours": 1 / 8766,
    "minute": 1 / 525960, "minutes": 1 / 525960,
}


class RecordError(TrialfinderError, ValueError):
    """A record that cannot be stored, with the reason (and the NCT id when it is known)."""

    def __init__(self, reason: str, nct_id: str | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.nct_id = nct_id


def parse_age(text: str | None) -> float | None:
    """``"18 Years"`` -> 18.0, ``"6 Months"`` -> 0.5; ``None``/``"N/A"`` -> None.

    Ages are compared as years everywhere (filters, eligibility), so every unit is converted once here.
    """
    if not text or not isinstance(text, str):
        return None
    m = _AGE_RE.match(text)
    if not m:
        return None
    unit = (m.group(2) or "years").lower()
    factor = _AGE_UNITS.get(unit)
    if factor is None:
        return None
    return round(float(m.group(1)) * factor, 4)


_DAY_RE = re.compile(r"\d{4}-\d{2}-\d{2}")
_MONTH_RE = re.compile(r"\d{4}-\d{2}")
_YEAR_RE = re.compile(r"\d{4}")


def normalize_date(text: str | None) -> str | None:
    """``"2022-12"`` -> ``"2022-12-01"``, so dates of mixed precision sort and compare as text."""
    if not text or not isinstance(text, str):
        return None
    text = text.strip()
    if _DAY_RE.fullmatch(text):
        return text
    if _MONTH_RE.fullmatch(text):
        return text + "-01"
    if _YEAR_RE.fullmatch(text):
        return text + "-01-01"
    return None


@dataclass(slots=True)
class NormalizedStudy:
    """The indexed facts of one study, ready for a store to write."""

    nct_id: str
    last_update: str
    brief_title: str = ""
    official_title: str = ""
    acronym: str = ""
    org_study_id: str = ""
    overall_status: str = ""
    study_type: str = ""
    phases: list[str] = field(default_factory=list)
    allocation: str = ""
    intervention_model: str = ""
    masking: str = ""
    primary_purpose: str = ""
    lead_sponsor: str = ""
    lead_class: str = ""
    sex: str = ""
    healthy_volunteers: bool | None = None
    min_age: float | None = None
    max_age: float | None = None
    std_ages: list[str] = field(default_factory=list)
    enrollment: int | None = None
    enrollment_type: str = ""
    start_date: str | None = None
    first_posted: str | None = None
    last_update_posted: str | None = None
    completion_date: str | None = None
    primary_completion_date: str | None = None
    has_results: bool = False
    criteria: str = ""
    brief_summary: str = ""
    detailed_description: str = ""
    #: (kind, value): kind in alias / secondary / org
    identifiers: list[tuple[str, str]] = field(default_factory=list)
    #: (kind, term): kind in condition / keyword / mesh / mesh_ancestor
    conditions: list[tuple[str, str]] = field(default_factory=list)
    #: (type, name, other names)
    interventions: list[tuple[str, str, list[str]]] = field(default_factory=list)
    #: (kind, term): kind in mesh / mesh_ancestor
    intervention_meshes: list[tuple[str, str]] = field(default_factory=list)
    #: (label, type, description, intervention names)
    arms: list[tuple[str, str, str, list[str]]] = field(default_factory=list)
    #: (name, class, role): role lead / collaborator
    sponsors: list[tuple[str, str, str]] = field(default_factory=list)
    #: (facility, city, state, zip, country, status, lat, lon, derived)
    locations: list[tuple[str, str, str, str, str, str, float | None, float | None, bool]] = field(
        default_factory=list
    )
    #: (kind, name, role, phone, email, affiliation): kind in central / official
    contacts: list[tuple[str, str, str, str, str, str]] = field(default_factory=list)
    outcomes: list[str] = field(default_factory=list)


def record_get(d: Any, *path: str) -> Any:
    """Walk nested dicts of a record, None at the first missing or non-dict step (records are partial)."""
    for key in path:
        if not isinstance(d, dict):
            return None
        d = d.get(key)
    return d


def _str(value: Any, where: str, nct: str) -> str:
    if value is None:
        return ""
    if not isinstance(value, str):
        raise RecordError(f"{where}: expected a string, got {type(value).__name__}", nct)
    return value


def _list(value: Any, where: str, nct: str) -> list:
    if value is None:
        return []
    if not isinstance(value, list):
        raise RecordError(f"{where}: expected a list, got {type(value).__name__}", nct)
    return value


def _dict(value: Any, where: str, nct: str) -> dict:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise RecordError(f"{where}: expected an object, got {type(value).__name__}", nct)
    return value


def record_nct_id(record: Any) -> str | None:
    """The NCT id of a record if it has a well-formed one, else None (for error messages)."""
    nct = record_get(record, "protocolSection", "identificationModule", "nctId")
    return nct if isinstance(nct, str) else None


def record_last_update(record: dict) -> str:
    """The version of a record, for upserts: its last-update-posted date (or the best substitute)."""
    status = record_get(record, "protocolSection", "statusModule") or {}
    for key in ("lastUpdatePostDateStruct", "lastUpdateSubmitDate"):
        value = status.get(key)
        if isinstance(value, dict):
            value = value.get("date")
        if isinstance(value, str) and value:
            return normalize_date(value) or value
    holder = record_get(record, "derivedSection", "miscInfoModule", "versionHolder")
    return holder if isinstance(holder, str) else ""


_ENUM_SETS: dict[str, frozenset[str]] = {}


def _allowed(enum_type: str) -> frozenset[str]:
    """The values of an enum type as a set (built once: validation runs for every study)."""
    allowed = _ENUM_SETS.get(enum_type)
    if allowed is None:
        from trialfinder.model.enums import ENUMS

        allowed = _ENUM_SETS[enum_type] = frozenset(ENUMS.get(enum_type) or ())
    return allowed


def _check_enum(enum_type: str, value: Any, where: str, nct: str) -> str:
    if value is None:
        return ""
    if not isinstance(value, str):
        raise RecordError(f"{where}: expected a string, got {type(value).__name__}", nct)
    allowed = _allowed(enum_type)
    if allowed and value not in allowed:
        raise RecordError(f"{where}: unknown {enum_type} value {value!r}", nct)
    return value


def _s(d: dict, key: str, where: str, nct: str) -> str:
    """``d[key]`` as a string ("" when missing), else :class:`RecordError` (fast path inlined)."""
    value = d.get(key)
    return value if value.__class__ is str else _str(value, where, nct)


def _date(struct: Any) -> str | None:
    if isinstance(struct, dict):
        return normalize_date(struct.get("date"))
    if isinstance(struct, str):
        return normalize_date(struct)
    return None


def normalize(record: Any) -> NormalizedStudy:
    """Validate a v2 record and extract its indexed facts; raise :class:`RecordError` if it is malformed.

    Types are checked on every field that is indexed, so that a wrong type is a clear rejection here
    rather than a crash in the store or a silently wrong filter later.

    This runs once per study at ingest (600,000 times for the registry), so the common case -- a value
    of the right type -- is tested inline (``x.__class__ is dict``) and the checking helpers, with their
    error messages, are only called otherwise; checks still run in the same order, so a record with
    several faults is rejected with the same first one.
    """
    if not isinstance(record, dict):
        raise RecordError(f"a study must be a JSON object, got {type(record).__name__}")
    ps = record.get("protocolSection")
    if not isinstance(ps, dict):
        raise RecordError("missing protocolSection", record_nct_id(record))
    ident = _dict(ps.get("identificationModule"), "identificationModule", "")
    nct = ident.get("nctId")
    if not isinstance(nct, str) or not nct:
        raise RecordError("missing protocolSection.identificationModule.nctId")
    if not NCT_RE.match(nct):
        raise RecordError(f"invalid NCT id {nct!r}: expected NCT followed by 8 digits", nct)

    status = _dict(ps.get("statusModule"), "statusModule", nct)
    design = _dict(ps.get("designModule"), "designModule", nct)
    sponsors_m = _dict(ps.get("sponsorCollaboratorsModule"), "sponsorCollaboratorsModule", nct)
    desc = _dict(ps.get("descriptionModule"), "descriptionModule", nct)
    conds_m = _dict(ps.get("conditionsModule"), "conditionsModule", nct)
    arms_m = _dict(ps.get("armsInterventionsModule"), "armsInterventionsModule", nct)
    elig = _dict(ps.get("eligibilityModule"), "eligibilityModule", nct)
    cl = _dict(ps.get("contactsLocationsModule"), "contactsLocationsModule", nct)
    outcomes_m = _dict(ps.get("outcomesModule"), "outcomesModule", nct)
    derived = _dict(record.get("derivedSection"), "derivedSection", nct)

    n = NormalizedStudy(nct_id=nct, last_update=record_last_update(record))
    n.brief_title = _s(ident, "briefTitle", "briefTitle", nct)
    n.official_title = _s(ident, "officialTitle", "officialTitle", nct)
    n.acronym = _s(ident, "acronym", "acronym", nct)
    org = _dict(ident.get("orgStudyIdInfo"), "orgStudyIdInfo", nct)
    n.org_study_id = _s(org, "id", "orgStudyIdInfo.id", nct)
    identifiers = n.identifiers
    if n.org_study_id:
        identifiers.append(("org", n.org_study_id))
    for i, sec in enumerate(_list(ident.get("secondaryIdInfos"), "secondaryIdInfos", nct)):
        if sec.__class__ is not dict:
            sec = _dict(sec, f"secondaryIdInfos[{i}]", nct)
        sid = sec.get("id")
        if sid.__class__ is not str:
            sid = _str(sid, f"secondaryIdInfos[{i}].id", nct)
        if sid:
            identifiers.append(("secondary", sid))
    for alias in _list(ident.get("nctIdAliases"), "nctIdAliases", nct):
        identifiers.append(("alias", alias if alias.__class__ is str else _str(alias, "nctIdAliases[]", nct)))

    n.overall_status = _check_enum("Status", status.get("overallStatus"), "overallStatus", nct)
    n.start_date = _date(status.get("startDateStruct"))
    n.first_posted = _date(status.get("studyFirstPostDateStruct"))
    n.last_update_posted = _date(status.get("lastUpdatePostDateStruct"))
    n.completion_date = _date(status.get("completionDateStruct"))
    n.primary_completion_date = _date(status.get("primaryCompletionDateStruct"))

    n.study_type = _check_enum("StudyType", design.get("studyType"), "studyType", nct)
    n.phases = [_check_enum("Phase", p, "phases[]", nct) for p in _list(design.get("phases"), "phases", nct)]
    info = _dict(design.get("designInfo"), "designInfo", nct)
    n.allocation = _s(info, "allocation", "designInfo.allocation", nct)
    n.intervention_model = _s(info, "interventionModel", "designInfo.interventionModel", nct)
    n.primary_purpose = _s(info, "primaryPurpose", "designInfo.primaryPurpose", nct)
    masking = _dict(info.get("maskingInfo"), "designInfo.maskingInfo", nct)
    n.masking = _s(masking, "masking", "maskingInfo.masking", nct)
    enroll = _dict(design.get("enrollmentInfo"), "enrollmentInfo", nct)
    count = enroll.get("count")
    if count is not None and (not isinstance(count, int) or isinstance(count, bool)):
        raise RecordError(f"enrollmentInfo.count: expected an integer, got {type(count).__name__}", nct)
    n.enrollment = count
    n.enrollment_type = _s(enroll, "type", "enrollmentInfo.type", nct)

    lead = _dict(sponsors_m.get("leadSponsor"), "leadSponsor", nct)
    n.lead_sponsor = _s(lead, "name", "leadSponsor.name", nct)
    n.lead_class = _check_enum("AgencyClass", lead.get("class"), "leadSponsor.class", nct)
    sponsors = n.sponsors
    if n.lead_sponsor:
        sponsors.append((n.lead_sponsor, n.lead_class, "lead"))
    for i, c in enumerate(_list(sponsors_m.get("collaborators"), "collaborators", nct)):
        if c.__class__ is not dict:
            c = _dict(c, f"collaborators[{i}]", nct)
        sponsors.append((_s(c, "name", "collaborators.name", nct), _s(c, "class", "collaborators.class", nct),
                         "collaborator"))

    n.brief_summary = _s(desc, "briefSummary", "briefSummary", nct)
    n.detailed_description = _s(desc, "detailedDescription", "detailedDescription", nct)

    conditions = n.conditions
    for c in _list(conds_m.get("conditions"), "conditions", nct):
        conditions.append(("condition", c if c.__class__ is str else _str(c, "conditions[]", nct)))
    for k in _list(conds_m.get("keywords"), "keywords", nct):
        conditions.append(("keyword", k if k.__class__ is str else _str(k, "keywords[]", nct)))
    browse = _dict(derived.get("conditionBrowseModule"), "conditionBrowseModule", nct)
    _mesh_terms(browse, "conditionBrowseModule", nct, conditions)
    ibrowse = _dict(derived.get("interventionBrowseModule"), "interventionBrowseModule", nct)
    _mesh_terms(ibrowse, "interventionBrowseModule", nct, n.intervention_meshes)

    for i, iv in enumerate(_list(arms_m.get("interventions"), "interventions", nct)):
        if iv.__class__ is not dict:
            iv = _dict(iv, f"interventions[{i}]", nct)
        other = [o if o.__class__ is str else _str(o, "interventions.otherNames[]", nct)
                 for o in _list(iv.get("otherNames"), "otherNames", nct)]
        n.interventions.append(
            (_check_enum("InterventionType", iv.get("type"), "interventions.type", nct),
             _s(iv, "name", "interventions.name", nct), other)
        )
    for i, arm in enumerate(_list(arms_m.get("armGroups"), "armGroups", nct)):
        if arm.__class__ is not dict:
            arm = _dict(arm, f"armGroups[{i}]", nct)
        names = [x if x.__class__ is str else _str(x, "armGroups.interventionNames[]", nct)
                 for x in _list(arm.get("interventionNames"), "interventionNames", nct)]
        n.arms.append(
            (_s(arm, "label", "armGroups.label", nct), _s(arm, "type", "armGroups.type", nct),
             _s(arm, "description", "armGroups.description", nct), names)
        )

    n.criteria = _s(elig, "eligibilityCriteria", "eligibilityCriteria", nct)
    n.sex = _check_enum("Sex", elig.get("sex"), "eligibilityModule.sex", nct)
    hv = elig.get("healthyVolunteers")
    if hv is not None and not isinstance(hv, bool):
        raise RecordError(f"healthyVolunteers: expected a boolean, got {type(hv).__name__}", nct)
    n.healthy_volunteers = hv
    n.min_age = parse_age(_s(elig, "minimumAge", "minimumAge", nct))
    n.max_age = parse_age(_s(elig, "maximumAge", "maximumAge", nct))
    n.std_ages = [a if a.__class__ is str else _str(a, "stdAges[]", nct)
                  for a in _list(elig.get("stdAges"), "stdAges", nct)]

    n.locations = _locations(_list(cl.get("locations"), "locations", nct), nct)
    contacts = n.contacts
    for i, c in enumerate(_list(cl.get("centralContacts"), "centralContacts", nct)):
        if c.__class__ is not dict:
            c = _dict(c, f"centralContacts[{i}]", nct)
        contacts.append(("central", _s(c, "name", "centralContacts.name", nct),
                         _s(c, "role", "centralContacts.role", nct),
                         _s(c, "phone", "centralContacts.phone", nct),
                         _s(c, "email", "centralContacts.email", nct), ""))
    for i, c in enumerate(_list(cl.get("overallOfficials"), "overallOfficials", nct)):
        if c.__class__ is not dict:
            c = _dict(c, f"overallOfficials[{i}]", nct)
        contacts.append(("official", _s(c, "name", "overallOfficials.name", nct),
                         _s(c, "role", "overallOfficials.role", nct), "", "",
                         _s(c, "affiliation", "overallOfficials.affiliation", nct)))

    outcomes = n.outcomes
    for key in ("primaryOutcomes", "secondaryOutcomes", "otherOutcomes"):
        for o in _list(outcomes_m.get(key), key, nct):
            if o.__class__ is not dict:
                o = _dict(o, key, nct)
            measure = o.get("measure")
            if isinstance(measure, str) and measure:
                outcomes.append(measure)

    hr = record.get("hasResults")
    n.has_results = bool(hr) if isinstance(hr, bool) else "resultsSection" in record
    return n


def _mesh_terms(browse: dict, module: str, nct: str, out: list[tuple[str, str]]) -> None:
    """``(mesh | mesh_ancestor, term)`` rows of a condition or intervention browse module."""
    for kind, key in (("mesh", "meshes"), ("mesh_ancestor", "ancestors")):
        for m in _list(browse.get(key), f"{module}.{key}", nct):
            if m.__class__ is not dict:
                m = _dict(m, key, nct)
            term = m.get("term")
            if isinstance(term, str) and term:
                out.append((kind, term))


def _locations(locs: list, nct: str) -> list[tuple[str, str, str, str, str, str, float | None, float | None, bool]]:
    """The sites of a study (a few thousand for the largest studies, hence the care)."""
    out = []
    statuses = _allowed("RecruitmentStatus")
    for i, loc in enumerate(locs):
        if loc.__class__ is not dict:
            loc = _dict(loc, f"locations[{i}]", nct)
        geo = loc.get("geoPoint")
        if geo is None:
            lat = lon = None
        else:
            if geo.__class__ is not dict:
                geo = _dict(geo, f"locations[{i}].geoPoint", nct)
            lat, lon = geo.get("lat"), geo.get("lon")
            if lat is not None or lon is not None:
                if not isinstance(lat, (int, float)) or not isinstance(lon, (int, float)) \
                        or not -90 <= lat <= 90 or not -180 <= lon <= 180:
                    raise RecordError(f"locations[{i}].geoPoint: invalid coordinates {lat!r}, {lon!r}", nct)
        facility = loc.get("facility")
        if facility.__class__ is not str:
            facility = _str(facility, "locations.facility", nct)
        city = loc.get("city")
        if city.__class__ is not str:
            city = _str(city, "locations.city", nct)
        state = loc.get("state")
        if state.__class__ is not str:
            state = _str(state, "locations.state", nct)
        zip_code = loc.get("zip")
        if zip_code.__class__ is not str:
            zip_code = _str(zip_code, "locations.zip", nct)
        country = loc.get("country")
        if country.__class__ is not str:
            country = _str(country, "locations.country", nct)
        if country:
            country = canonical_country(country)  # one name per country (legacy spellings mapped)
        status = loc.get("status")
        if status.__class__ is not str or status not in statuses:
            status = _check_enum("RecruitmentStatus", status, "locations.status", nct)
        out.append((facility, city, state, zip_code, country, status,
                    float(lat) if lat is not None else None, float(lon) if lon is not None else None,
                    bool(loc.get("geoPointDerived"))))
    return out
