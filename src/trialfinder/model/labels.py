"""Human labels for ClinicalTrials.gov API v2 enum values, plus the small phrase builders the study page
uses for ages and healthy volunteers.

Why a table rather than title-casing: the page wording is not mechanical ("None (Open label)",
"Other U.S. federal agency", "Early Phase 1", "Parallel Assignment"), and the CLI, the web page and
facets must all say the same thing.  Values not in the table (a newer API release, or an enum nobody
displays) fall back to title-cased words so nothing ever shows a raw ``SNAKE_CASE`` token.
"""

from __future__ import annotations

import re

__all__ = [
    "LABELS",
    "PAGE_LABELS",
    "STATUS_BADGES",
    "age_range_text",
    "count_text",
    "fallback_label",
    "label",
    "status_badge",
    "volunteers_text",
]

_STATUS = {
    "ACTIVE_NOT_RECRUITING": "Active, not recruiting",
    "COMPLETED": "Completed",
    "ENROLLING_BY_INVITATION": "Enrolling by invitation",
    "NOT_YET_RECRUITING": "Not yet recruiting",
    "RECRUITING": "Recruiting",
    "SUSPENDED": "Suspended",
    "TERMINATED": "Terminated",
    "WITHDRAWN": "Withdrawn",
    "AVAILABLE": "Available",
    "NO_LONGER_AVAILABLE": "No longer available",
    "TEMPORARILY_NOT_AVAILABLE": "Temporarily not available",
    "APPROVED_FOR_MARKETING": "Approved for marketing",
    "WITHHELD": "Withheld",
    "UNKNOWN": "Unknown status",
}

_ID_TYPES = {
    "NIH": "U.S. NIH Grant/Contract",
    "FDA": "U.S. FDA Grant/Contract",
    "VA": "U.S. VA Grant/Contract",
    "CDC": "U.S. CDC Grant/Contract",
    "AHRQ": "U.S. AHRQ Grant/Contract",
    "SAMHSA": "U.S. SAMHSA Grant/Contract",
}

_ROLES = {
    "STUDY_CHAIR": "Study Chair",
    "STUDY_DIRECTOR": "Study Director",
    "PRINCIPAL_INVESTIGATOR": "Principal Investigator",
    "SUB_INVESTIGATOR": "Sub-Investigator",
}

_DATE_TYPE = {"ACTUAL": "Actual", "ESTIMATED": "Estimated"}

#: Plain labels (ClinicalTrials.gov wording), by enum type then value.
LABELS: dict[str, dict[str, str]] = {
    "Status": dict(_STATUS),
    "RecruitmentStatus": dict(_STATUS),
    "ExpandedAccessStatus": dict(_STATUS),
    "StudyType": {
        "EXPANDED_ACCESS": "Expanded access",
        "INTERVENTIONAL": "Interventional",
        "OBSERVATIONAL": "Observational",
    },
    "Phase": {
        "NA": "Not applicable",
        "EARLY_PHASE1": "Early Phase 1",
        "PHASE1": "Phase 1",
        "PHASE2": "Phase 2",
        "PHASE3": "Phase 3",
        "PHASE4": "Phase 4",
    },
    "Sex": {"FEMALE": "Female", "MALE": "Male", "ALL": "All"},
    "StandardAge": {"CHILD": "Child", "ADULT": "Adult", "OLDER_ADULT": "Older adult"},
    "SamplingMethod": {
        "PROBABILITY_SAMPLE": "Probability Sample",
        "NON_PROBABILITY_SAMPLE": "Non-Probability Sample",
    },
    "IpdSharing": {"YES": "Yes", "NO": "No", "UNDECIDED": "Undecided"},
    "IpdSharingInfoType": {
        "STUDY_PROTOCOL": "Study Protocol",
        "SAP": "Statistical Analysis Plan (SAP)",
        "ICF": "Informed Consent Form (ICF)",
        "CSR": "Clinical Study Report (CSR)",
        "ANALYTIC_CODE": "Analytic Code",
    },
    "OrgStudyIdType": dict(_ID_TYPES),
    "SecondaryIdType": {
        **_ID_TYPES,
        "OTHER_GRANT": "Other Grant/Funding Number",
        "EUDRACT_NUMBER": "EudraCT Number",
        "CTIS": "EU Trial (CTIS) Number",
        "REGISTRY": "Registry Identifier",
        "OTHER": "Other Identifier",
    },
    "AgencyClass": {
        "NIH": "NIH",
        "FED": "Other U.S. federal agency",
        "OTHER_GOV": "Other government",
        "INDIV": "Individual",
        "INDUSTRY": "Industry",
        "NETWORK": "Network",
        "AMBIG": "Ambiguous",
        "OTHER": "Other",
        "UNKNOWN": "Unknown",
    },
    "DateType": dict(_DATE_TYPE),
    "EnrollmentType": dict(_DATE_TYPE),
    "ResponsiblePartyType": {
        "SPONSOR": "Sponsor",
        "PRINCIPAL_INVESTIGATOR": "Principal Investigator",
        "SPONSOR_INVESTIGATOR": "Sponsor-Investigator",
    },
    "DesignAllocation": {"RANDOMIZED": "Randomized", "NON_RANDOMIZED": "Non-Randomized", "NA": "N/A"},
    "InterventionalAssignment": {
        "SINGLE_GROUP": "Single Group Assignment",
        "PARALLEL": "Parallel Assignment",
        "CROSSOVER": "Crossover Assignment",
        "FACTORIAL": "Factorial Assignment",
        "SEQUENTIAL": "Sequential Assignment",
    },
    "PrimaryPurpose": {
        "TREATMENT": "Treatment",
        "PREVENTION": "Prevention",
        "DIAGNOSTIC": "Diagnostic",
        "ECT": "Educational/Counseling/Training",
        "SUPPORTIVE_CARE": "Supportive Care",
        "SCREENING": "Screening",
        "HEALTH_SERVICES_RESEARCH": "Health Services Research",
        "BASIC_SCIENCE": "Basic Science",
        "DEVICE_FEASIBILITY": "Device Feasibility",
        "OTHER": "Other",
    },
    "ObservationalModel": {
        "COHORT": "Cohort",
        "CASE_CONTROL": "Case-Control",
        "CASE_ONLY": "Case-Only",
        "CASE_CROSSOVER": "Case-Crossover",
        "ECOLOGIC_OR_COMMUNITY": "Ecologic or Community",
        "FAMILY_BASED": "Family-Based",
        "DEFINED_POPULATION": "Defined Population",
        "NATURAL_HISTORY": "Natural History",
        "OTHER": "Other",
    },
    "DesignTimePerspective": {
        "RETROSPECTIVE": "Retrospective",
        "PROSPECTIVE": "Prospective",
        "CROSS_SECTIONAL": "Cross-Sectional",
        "OTHER": "Other",
    },
    "BioSpecRetention": {
        "NONE_RETAINED": "None Retained",
        "SAMPLES_WITH_DNA": "Samples With DNA",
        "SAMPLES_WITHOUT_DNA": "Samples Without DNA",
    },
    "ArmGroupType": {
        "EXPERIMENTAL": "Experimental",
        "ACTIVE_COMPARATOR": "Active Comparator",
        "PLACEBO_COMPARATOR": "Placebo Comparator",
        "SHAM_COMPARATOR": "Sham Comparator",
        "NO_INTERVENTION": "No Intervention",
        "OTHER": "Other",
    },
    "InterventionType": {
        "BEHAVIORAL": "Behavioral",
        "BIOLOGICAL": "Biological",
        "COMBINATION_PRODUCT": "Combination Product",
        "DEVICE": "Device",
        "DIAGNOSTIC_TEST": "Diagnostic Test",
        "DIETARY_SUPPLEMENT": "Dietary Supplement",
        "DRUG": "Drug",
        "GENETIC": "Genetic",
        "PROCEDURE": "Procedure",
        "RADIATION": "Radiation",
        "OTHER": "Other",
    },
    "ContactRole": {**_ROLES, "CONTACT": "Contact"},
    "OfficialRole": dict(_ROLES),
    "ReferenceType": {"BACKGROUND": "Background", "RESULT": "Result", "DERIVED": "Derived"},
    "MeasureParam": {
        "GEOMETRIC_MEAN": "Geometric Mean",
        "GEOMETRIC_LEAST_SQUARES_MEAN": "Geometric Least Squares Mean",
        "LEAST_SQUARES_MEAN": "Least Squares Mean",
        "LOG_MEAN": "Log Mean",
        "MEAN": "Mean",
        "MEDIAN": "Median",
        "NUMBER": "Number",
        "COUNT_OF_PARTICIPANTS": "Count of Participants",
        "COUNT_OF_UNITS": "Count of Units",
    },
    "MeasureDispersionType": {
        "NA": "Not Applicable",
        "STANDARD_DEVIATION": "Standard Deviation",
        "STANDARD_ERROR": "Standard Error",
        "INTER_QUARTILE_RANGE": "Inter-Quartile Range",
        "FULL_RANGE": "Full Range",
        "CONFIDENCE_80": "80% Confidence Interval",
        "CONFIDENCE_90": "90% Confidence Interval",
        "CONFIDENCE_95": "95% Confidence Interval",
        "CONFIDENCE_975": "97.5% Confidence Interval",
        "CONFIDENCE_99": "99% Confidence Interval",
        "CONFIDENCE_OTHER": "Other Confidence Interval",
        "GEOMETRIC_COEFFICIENT": "Geometric Coefficient of Variation",
    },
    "OutcomeMeasureType": {
        "PRIMARY": "Primary",
        "SECONDARY": "Secondary",
        "OTHER_PRE_SPECIFIED": "Other Pre-specified",
        "POST_HOC": "Post-Hoc",
    },
    "ReportingStatus": {"NOT_POSTED": "Not Posted", "POSTED": "Posted"},
    "EventAssessment": {
        "NON_SYSTEMATIC_ASSESSMENT": "Non-systematic Assessment",
        "SYSTEMATIC_ASSESSMENT": "Systematic Assessment",
    },
    "AgreementRestrictionType": {"LTE60": "60 days or less", "GT60": "More than 60 days", "OTHER": "Other"},
    "BrowseLeafRelevance": {"LOW": "Low", "HIGH": "High"},
    "DesignMasking": {
        "NONE": "None (Open label)",
        "SINGLE": "Single Blind",
        "DOUBLE": "Double Blind",
        "TRIPLE": "Triple Blind",
        "QUADRUPLE": "Quadruple Blind",
    },
    "WhoMasked": {
        "PARTICIPANT": "Participant",
        "CARE_PROVIDER": "Care Provider",
        "INVESTIGATOR": "Investigator",
        "OUTCOMES_ASSESSOR": "Outcomes Assessor",
    },
    "AnalysisDispersionType": {
        "STANDARD_DEVIATION": "Standard Deviation",
        "STANDARD_ERROR_OF_MEAN": "Standard Error of the Mean",
    },
    "ConfidenceIntervalNumSides": {"ONE_SIDED": "1-Sided", "TWO_SIDED": "2-Sided"},
    "NonInferiorityType": {
        "SUPERIORITY": "Superiority",
        "NON_INFERIORITY": "Non-Inferiority",
        "EQUIVALENCE": "Equivalence",
        "OTHER": "Other",
        "NON_INFERIORITY_OR_EQUIVALENCE": "Non-Inferiority or Equivalence",
        "SUPERIORITY_OR_OTHER": "Superiority or Other",
        "NON_INFERIORITY_OR_EQUIVALENCE_LEGACY": "Non-Inferiority or Equivalence (legacy)",
        "SUPERIORITY_OR_OTHER_LEGACY": "Superiority or Other (legacy)",
    },
    "UnpostedEventType": {"RESET": "Reset", "RELEASE": "Release", "UNRELEASE": "Unrelease"},
    "ViolationEventType": {
        "VIOLATION_IDENTIFIED": "Violation Identified",
        "CORRECTION_CONFIRMED": "Correction Confirmed",
        "PENALTY_IMPOSED": "Penalty Imposed",
        "ISSUES_IN_LETTER_ADDRESSED_CONFIRMED": "Issues in Letter Addressed Confirmed",
    },
    "FieldStatsType": {
        "ENUM": "Enum",
        "STRING": "String",
        "DATE": "Date",
        "INTEGER": "Integer",
        "NUMBER": "Number",
        "BOOLEAN": "Boolean",
    },
}

#: Study-page wording where it differs from the plain label (the reference page says "Experimental group").
PAGE_LABELS: dict[str, dict[str, str]] = {
    "ArmGroupType": {k: f"{v} group" for k, v in LABELS["ArmGroupType"].items()},
}

#: Patient-facing status badges: "recruiting" is registry jargon, patients read "enrolling".
STATUS_BADGES: dict[str, str] = {
    **_STATUS,
    "RECRUITING": "Enrolling",
    "NOT_YET_RECRUITING": "Not yet enrolling",
}


def fallback_label(value: str) -> str:
    """Title-case a ``SNAKE_CASE`` token, so an unknown value still reads as words ("FOO_BAR" -> "Foo Bar")."""
    words = [w for w in re.split(r"[_\s]+", str(value)) if w]
    return " ".join(w[:1].upper() + w[1:].lower() for w in words)


def label(enum_type: str, value: str, *, plain: bool = False) -> str:
    """Human label for ``value`` of API enum ``enum_type``.

    Page wording is the default because every caller renders a study page or a facet; pass
    ``plain=True`` for the ClinicalTrials.gov wording (e.g. ArmGroupType EXPERIMENTAL -> "Experimental"
    instead of "Experimental group").  Unknown types/values never raise: records from a newer API
    release must still render.
    """
    if value is None or value == "":
        return ""
    value = str(value)
    if not plain:
        page = PAGE_LABELS.get(enum_type, {}).get(value)
        if page is not None:
            return page
    known = LABELS.get(enum_type, {}).get(value)
    if known is not None:
        return known
    if plain is False and enum_type == "ArmGroupType":
        return f"{fallback_label(value)} group"
    return fallback_label(value)


def status_badge(value: str) -> str:
    """Patient-friendly overall-status badge as the reference page shows it (RECRUITING -> "Enrolling")."""
    if value is None or value == "":
        return ""
    return STATUS_BADGES.get(str(value)) or fallback_label(str(value))


_AGE_RE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([A-Za-z]+)?\s*$")
_UNITS = {
    "year": "years",
    "years": "years",
    "yr": "years",
    "yrs": "years",
    "month": "months",
    "months": "months",
    "week": "weeks",
    "weeks": "weeks",
    "day": "days",
    "days": "days",
    "hour": "hours",
    "hours": "hours",
    "minute": "minutes",
    "minutes": "minutes",
}


def _parse_age(text: str | None) -> tuple[str, str] | None:
    """Split an API age string ("18 Years", "6 Months") into (number, plural unit); None if unusable
    (absent, "N/A", free text) so the caller treats that bound as open."""
    if not text:
        return None
    m = _AGE_RE.match(str(text))
    if not m:
        return None
    number, unit = m.group(1), (m.group(2) or "years").lower()
    if unit not in _UNITS:
        return None
    if number.endswith(".0"):
        number = number[:-2]
    return number, _UNITS[unit]


def _unit_for(number: str, unit: str) -> str:
    return unit[:-1] if number == "1" else unit


def age_range_text(min_age: str | None, max_age: str | None) -> str:
    """Eligible ages as the page phrases them: "18 to 65 years old", "18+ years old", "up to 65 years old",
    or "All ages".  Mixed units keep both ("6 months to 17 years old") rather than converting, because
    the registry's own unit is what the investigators wrote."""
    lo, hi = _parse_age(min_age), _parse_age(max_age)
    if lo and hi:
        if lo[1] == hi[1]:
            return f"{lo[0]} to {hi[0]} {hi[1]} old"
        return f"{lo[0]} {_unit_for(*lo)} to {hi[0]} {_unit_for(*hi)} old"
    if lo:
        return f"{lo[0]}+ {lo[1]} old"
    if hi:
        return f"up to {hi[0]} {_unit_for(*hi)} old"
    return "All ages"


def count_text(n: int, word: str, plural: str | None = None) -> str:
    """A count with its noun agreeing: "1 site", "3 sites", "2 patient groups" (``plural`` for irregulars)."""
    return f"{n} {word if n == 1 else (plural or word + 's')}"


def volunteers_text(healthy: bool | None) -> str:
    """The page's Volunteers line; "" when the record does not say, so the section can be omitted."""
    if healthy is None:
        return ""
    return "Accepts Healthy Volunteers" if healthy else "No Healthy Volunteers"
