"""The API v2 ``fields`` parameter: cut a study record down to the requested pieces.

ClinicalTrials.gov accepts piece names (``NCTId``, ``BriefTitle``, ``OverallStatus``...), module names
(``IdentificationModule``, ``ProtocolSection``) and dotted paths (``protocolSection.statusModule``).
The result keeps the v2 nesting, so clients read it exactly as they read the full record.
"""

from __future__ import annotations

from typing import Any

PS = "protocolSection"
PIECES: dict[str, str] = {
    "NCTId": f"{PS}.identificationModule.nctId",
    "OrgStudyId": f"{PS}.identificationModule.orgStudyIdInfo.id",
    "BriefTitle": f"{PS}.identificationModule.briefTitle",
    "OfficialTitle": f"{PS}.identificationModule.officialTitle",
    "Acronym": f"{PS}.identificationModule.acronym",
    "OrgFullName": f"{PS}.identificationModule.organization.fullName",
    "OverallStatus": f"{PS}.statusModule.overallStatus",
    "StartDate": f"{PS}.statusModule.startDateStruct",
    "PrimaryCompletionDate": f"{PS}.statusModule.primaryCompletionDateStruct",
    "CompletionDate": f"{PS}.statusModule.completionDateStruct",
    "StudyFirstPostDate": f"{PS}.statusModule.studyFirstPostDateStruct",
    "LastUpdatePostDate": f"{PS}.statusModule.lastUpdatePostDateStruct",
    "LeadSponsorName": f"{PS}.sponsorCollaboratorsModule.leadSponsor.name",
    "LeadSponsorClass": f"{PS}.sponsorCollaboratorsModule.leadSponsor.class",
    "CollaboratorName": f"{PS}.sponsorCollaboratorsModule.collaborators",
    "BriefSummary": f"{PS}.descriptionModule.briefSummary",
    "DetailedDescription": f"{PS}.descriptionModule.detailedDescription",
    "Condition": f"{PS}.conditionsModule.conditions",
    "Keyword": f"{PS}.conditionsModule.keywords",
    "StudyType": f"{PS}.designModule.studyType",
    "Phase": f"{PS}.designModule.phases",
    "DesignAllocation": f"{PS}.designModule.designInfo.allocation",
    "DesignInterventionModel": f"{PS}.designModule.designInfo.interventionModel",
    "DesignPrimaryPurpose": f"{PS}.designModule.designInfo.primaryPurpose",
    "DesignMasking": f"{PS}.designModule.designInfo.maskingInfo.masking",
    "EnrollmentCount": f"{PS}.designModule.enrollmentInfo.count",
    "EnrollmentType": f"{PS}.designModule.enrollmentInfo.type",
    "ArmGroupLabel": f"{PS}.armsInterventionsModule.armGroups",
    "InterventionName": f"{PS}.armsInterventionsModule.interventions",
    "InterventionType": f"{PS}.armsInterventionsModule.interventions",
    "PrimaryOutcomeMeasure": f"{PS}.outcomesModule.primaryOutcomes",
    "SecondaryOutcomeMeasure": f"{PS}.outcomesModule.secondaryOutcomes",
    "EligibilityCriteria": f"{PS}.eligibilityModule.eligibilityCriteria",
    "HealthyVolunteers": f"{PS}.eligibilityModule.healthyVolunteers",
    "Sex": f"{PS}.eligibilityModule.sex",
    "Gender": f"{PS}.eligibilityModule.sex",
    "MinimumAge": f"{PS}.eligibilityModule.minimumAge",
    "MaximumAge": f"{PS}.eligibilityModule.maximumAge",
    "StdAge": f"{PS}.eligibilityModule.stdAges",
    "CentralContactName": f"{PS}.contactsLocationsModule.centralContacts",
    "OverallOfficialName": f"{PS}.contactsLocationsModule.overallOfficials",
    "LocationFacility": f"{PS}.contactsLocationsModule.locations",
    "LocationCity": f"{PS}.contactsLocationsModule.locations",
    "LocationState": f"{PS}.contactsLocationsModule.locations",
    "LocationCountry": f"{PS}.contactsLocationsModule.locations",
    "LocationGeoPoint": f"{PS}.contactsLocationsModule.locations",
    "ConditionMeshTerm": "derivedSection.conditionBrowseModule",
    "InterventionMeshTerm": "derivedSection.interventionBrowseModule",
    "HasResults": "hasResults",
}
MODULES = {
    "ProtocolSection": PS,
    "DerivedSection": "derivedSection",
    "ResultsSection": "resultsSection",
    "AnnotationSection": "annotationSection",
    "DocumentSection": "documentSection",
}
for _m in ("identification", "status", "sponsorCollaborators", "oversight", "description", "conditions",
           "design", "armsInterventions", "outcomes", "eligibility", "contactsLocations", "references",
           "ipdSharingStatement"):
    MODULES[_m[0].upper() + _m[1:] + "Module"] = f"{PS}.{_m}Module"


def resolve_field(name: str) -> str | None:
    """A field name as accepted by the ``fields`` parameter -> a dotted path, or None if unknown."""
    name = name.strip()
    if name in PIECES:
        return PIECES[name]
    if name in MODULES:
        return MODULES[name]
    lowered = {k.lower(): v for k, v in {**PIECES, **MODULES}.items()}
    if name.lower() in lowered:
        return lowered[name.lower()]
    if name.startswith((PS, "derivedSection", "resultsSection", "hasResults", "documentSection",
                        "annotationSection")):
        return name
    return None


def select_fields(record: dict, fields: Any) -> dict:
    """A copy of ``record`` holding only the requested fields (unknown names were rejected earlier)."""
    out: dict[str, Any] = {}
    for name in fields:
        path = resolve_field(name)
        if path is None:
            continue
        keys = path.split(".")
        src: Any = record
        for k in keys:
            if not isinstance(src, dict) or k not in src:
                src = None
                break
            src = src[k]
        if src is None:
            continue
        dst = out
        for k in keys[:-1]:
            dst = dst.setdefault(k, {})
        dst[keys[-1]] = src
    return out
