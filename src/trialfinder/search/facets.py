"""Facet dimensions and their display labels (the website's filter panel)."""

from __future__ import annotations

FACET_ENUM_TYPES = {
    "status": "Status",
    "phase": "Phase",
    "study_type": "StudyType",
    "sex": "Sex",
    "age_group": "StandardAge",
    "funder_type": "AgencyClass",
    "intervention_type": "InterventionType",
}

FACET_TITLES = {
    "status": "Recruitment status",
    "phase": "Phase",
    "study_type": "Study type",
    "sex": "Sex",
    "age_group": "Age group",
    "funder_type": "Funder type",
    "intervention_type": "Intervention type",
    "country": "Country",
    "condition": "Conditions",
}


def facet_label(dimension: str, value: str) -> str:
    """A human label for a facet value (enum values get their display label)."""
    from trialfinder.model.labels import label

    enum_type = FACET_ENUM_TYPES.get(dimension)
    return label(enum_type, value) if enum_type else value
