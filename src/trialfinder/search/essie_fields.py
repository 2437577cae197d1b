"""The names Essie's bracket operators accept: fields and search areas for ``AREA[...]`` and ``TILT[...]``
(with the kind of value each holds), documents for ``SEARCH[...]``, modes for ``EXPANSION[...]`` and
``COVERAGE[...]``.

Why a table apart from the parser: the kind of a field decides how the parser reads its operand (a bare
``2022`` is a date range on ``StartDate``, ``true`` a boolean on ``HasResults``), and the same table is
what aggFilters options and the store's compiler refer to; keeping it as data means adding a field is
one line here, with no change to the grammar.
"""

from __future__ import annotations

import difflib
from collections.abc import Mapping
from types import MappingProxyType

__all__ = [
    "AREA_FIELDS", "COVERAGE_MODES", "EXPANSION_MODES", "SEARCH_DOCS", "canonical_field", "known_area_fields",
    "unknown_field_message",
]

# Canonical API v2 field ("piece") names and search areas usable in AREA[...], by kind. The kinds decide
# what an operand may be: "area" (a weighted group of fields, as query.* uses), "text", "id", "enum",
# "date", "number", "age" (compared in years), "bool", "geo".
_FIELD_KINDS: dict[str, tuple[str, ...]] = {
    "area": ("BasicSearch", "ConditionSearch", "InterventionSearch", "LocationSearch", "OutcomeSearch",
             "SponsorSearch", "TitleSearch", "IdSearch", "PatientSearch"),
    "id": ("NCTId", "NCTIdAlias", "OrgStudyId", "SecondaryId"),
    "text": ("BriefTitle", "OfficialTitle", "Acronym", "OrgFullName", "WhyStopped", "LeadSponsorName",
             "CollaboratorName", "ResponsiblePartyInvestigatorFullName", "BriefSummary",
             "DetailedDescription", "Condition", "Keyword", "ArmGroupLabel", "ArmGroupDescription",
             "InterventionName", "InterventionOtherName", "InterventionDescription",
             "PrimaryOutcomeMeasure", "PrimaryOutcomeDescription", "PrimaryOutcomeTimeFrame",
             "SecondaryOutcomeMeasure", "SecondaryOutcomeDescription", "SecondaryOutcomeTimeFrame",
             "OtherOutcomeMeasure", "EligibilityCriteria", "StudyPopulation", "CentralContactName",
             "OverallOfficialName", "OverallOfficialAffiliation", "LocationFacility", "LocationCity",
             "LocationState", "LocationZip", "LocationCountry", "LocationContactName",
             "ConditionMeshTerm", "ConditionMeshId", "ConditionAncestorTerm", "ConditionAncestorId",
             "InterventionMeshTerm", "InterventionMeshId", "InterventionAncestorTerm",
             "InterventionAncestorId", "ReferencePMID", "ReferenceCitation"),
    "enum": ("OverallStatus", "LastKnownStatus", "OrgClass", "LeadSponsorClass", "CollaboratorClass",
             "StudyType", "Phase", "DesignAllocation", "DesignInterventionModel", "DesignPrimaryPurpose",
             "DesignMasking", "DesignObservationalModel", "DesignTimePerspective", "EnrollmentType",
             "ArmGroupType", "InterventionType", "Sex", "StdAge", "SamplingMethod", "LocationStatus",
             "ResponsiblePartyType"),
    "date": ("StartDate", "PrimaryCompletionDate", "CompletionDate", "StudyFirstSubmitDate",
             "StudyFirstPostDate", "ResultsFirstSubmitDate", "ResultsFirstPostDate", "LastUpdateSubmitDate",
             "LastUpdatePostDate", "StatusVerifiedDate"),
    "number": ("EnrollmentCount",),
    "age": ("MinimumAge", "MaximumAge"),
    "bool": ("HealthyVolunteers", "HasResults", "PatientRegistry", "HasExpandedAccess",
             "IsFDARegulatedDrug", "IsFDARegulatedDevice", "OversightHasDMC", "GenderBased",
             "ExpAccTypeIndividual", "ExpAccTypeIntermediate", "ExpAccTypeTreatment",
             "LargeDocHasProtocol", "LargeDocHasSAP", "LargeDocHasICF", "FDAAA801Violation"),
    "geo": ("LocationGeoPoint",),
}
AREA_FIELDS: Mapping[str, str] = MappingProxyType(
    {name: kind for kind, names in _FIELD_KINDS.items() for name in names}
)
# Older names people still paste (classic site / API v1) -> the API v2 name.
_FIELD_ALIASES = {"gender": "Sex", "stdage": "StdAge", "conditions": "Condition", "phases": "Phase"}
_FIELD_LOOKUP = {name.lower(): name for name in AREA_FIELDS} | _FIELD_ALIASES

SEARCH_DOCS = ("Study", "Location")
EXPANSION_MODES = ("None", "Term", "Concept", "Relaxation", "Lossy")
COVERAGE_MODES = ("FullMatch", "StartsWith", "EndsWith", "Contains")


def known_area_fields() -> Mapping[str, str]:
    """Field and search-area names accepted in ``AREA[...]`` (canonical spelling) -> kind.

    Kinds: area, id, text, enum, date, number, age, bool, geo. Names are matched case-insensitively, and
    ``Gender`` is accepted for ``Sex``.
    """
    return AREA_FIELDS


def canonical_field(name: str) -> str | None:
    """The canonical spelling of a field or area name (any case, old aliases accepted), or None."""
    return _FIELD_LOOKUP.get(name.strip().lower())


def unknown_field_message(name: str, op: str) -> str:
    """Error text for an unknown ``AREA``/``TILT`` field, naming close matches so a typo is easy to fix."""
    close = difflib.get_close_matches(name, list(AREA_FIELDS), n=3, cutoff=0.7)
    if not close:
        close = difflib.get_close_matches(name.lower(), list(_FIELD_LOOKUP), n=3, cutoff=0.7)
        close = [_FIELD_LOOKUP[c] for c in close]
    hint = f"; did you mean {' or '.join(dict.fromkeys(close))}?" if close else ""
    return (f"unknown {op} field {name!r}{hint} (known fields: see trialfinder.search.essie."
            f"known_area_fields(), e.g. Condition, InterventionName, OverallStatus, StartDate)")
