"""aggFilters: the website's filter codes (``aggFilters=phase:2 3,status:rec,sex:f``), what each code
means in API v2 fields, and parsing them.

Why a table: each code stands for one or more values of one or more API v2 fields (``sex:f`` is FEMALE
or ALL, ``funderType:other`` six agency classes), and that mapping is data the store, the facet panel
and the tests must all read the same way. :data:`AGG_FILTERS` is the implemented table and
:func:`agg_options` says for each selected code which field(s) must hold which value(s). Options of one
filter are ORed, filters are ANDed.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from trialfinder.search.errors import SearchError
from trialfinder.search.param_values import dedupe, split_list

__all__ = ["AGG_FILTERS", "AggOption", "agg_entry", "agg_options", "parse_agg"]

@dataclass(frozen=True, slots=True)
class AggOption:
    """One aggFilters option: a study matches when any of ``fields`` (API v2 field names, as in
    :func:`trialfinder.search.essie.known_area_fields`) has any of ``values``."""

    code: str
    label: str
    fields: tuple[str, ...]
    values: tuple[str | bool, ...]


def _opts(fields: str | tuple[str, ...], *rows: tuple[str, str, tuple[str | bool, ...]]) -> dict[str, AggOption]:
    fields = (fields,) if isinstance(fields, str) else fields
    return {code: AggOption(code, label, fields, values) for code, label, values in rows}


_OTHER_CLASSES = ("OTHER", "OTHER_GOV", "INDIV", "NETWORK", "AMBIG", "UNKNOWN")

#: The aggFilters table: filter id -> option code -> AggOption. Codes are those of clinicaltrials.gov's
#: search page (``/search?aggFilters=...``); each option lists the API v2 field values it stands for.
AGG_FILTERS: dict[str, dict[str, AggOption]] = {
    "status": _opts(
        "OverallStatus",
        ("rec", "Recruiting", ("RECRUITING",)),
        ("not", "Not yet recruiting", ("NOT_YET_RECRUITING",)),
        ("act", "Active, not recruiting", ("ACTIVE_NOT_RECRUITING",)),
        ("enr", "Enrolling by invitation", ("ENROLLING_BY_INVITATION",)),
        ("com", "Completed", ("COMPLETED",)),
        ("ter", "Terminated", ("TERMINATED",)),
        ("sus", "Suspended", ("SUSPENDED",)),
        ("wit", "Withdrawn", ("WITHDRAWN",)),
        ("unk", "Unknown status", ("UNKNOWN",)),
        ("ava", "Available (expanded access)", ("AVAILABLE",)),
        ("nla", "No longer available (expanded access)", ("NO_LONGER_AVAILABLE",)),
        ("tna", "Temporarily not available (expanded access)", ("TEMPORARILY_NOT_AVAILABLE",)),
        ("afm", "Approved for marketing (expanded access)", ("APPROVED_FOR_MARKETING",)),
    ),
    "phase": _opts(
        "Phase",
        ("0", "Early phase 1 (formerly phase 0)", ("EARLY_PHASE1",)),
        ("1", "Phase 1", ("PHASE1",)),
        ("2", "Phase 2", ("PHASE2",)),
        ("3", "Phase 3", ("PHASE3",)),
        ("4", "Phase 4", ("PHASE4",)),
        ("na", "Not applicable", ("NA",)),
    ),
    "sex": _opts(
        "Sex",
        # a study open to all sexes accepts women and men, so it matches f and m too
        ("f", "Female", ("FEMALE", "ALL")),
        ("m", "Male", ("MALE", "ALL")),
        ("a", "All (any sex; no restriction)", ("FEMALE", "MALE", "ALL")),
    ),
    "ages": _opts(
        "StdAge",
        ("child", "Child (birth-17)", ("CHILD",)),
        ("adult", "Adult (18-64)", ("ADULT",)),
        ("older", "Older adult (65+)", ("OLDER_ADULT",)),
    ),
    "healthy": _opts("HealthyVolunteers", ("y", "Accepts healthy volunteers", (True,))),
    "funderType": _opts(
        ("LeadSponsorClass", "CollaboratorClass"),
        ("nih", "NIH", ("NIH",)),
        ("fed", "Other U.S. federal agency", ("FED",)),
        ("industry", "Industry", ("INDUSTRY",)),
        ("other", "All others (individuals, universities, organizations)", _OTHER_CLASSES),
    ),
    "studyType": {
        **_opts("StudyType",
                ("int", "Interventional", ("INTERVENTIONAL",)),
                ("obs", "Observational", ("OBSERVATIONAL",)),
                ("exp", "Expanded access", ("EXPANDED_ACCESS",))),
        **_opts("PatientRegistry", ("obs_patreg", "Observational: patient registry", (True,))),
        **_opts("ExpAccTypeIndividual", ("exp_indiv", "Expanded access: individual patients", (True,))),
        **_opts("ExpAccTypeIntermediate",
                ("exp_inter", "Expanded access: intermediate-size population", (True,))),
        **_opts("ExpAccTypeTreatment", ("exp_treat", "Expanded access: treatment IND/protocol", (True,))),
    },
    "results": _opts(
        "HasResults",
        ("with", "With posted results", (True,)),
        ("without", "Without posted results", (False,)),
    ),
    "docs": {
        **_opts("LargeDocHasProtocol", ("prot", "Study protocol posted", (True,))),
        **_opts("LargeDocHasSAP", ("sap", "Statistical analysis plan posted", (True,))),
        **_opts("LargeDocHasICF", ("icf", "Informed consent form posted", (True,))),
    },
    "violation": _opts("FDAAA801Violation", ("y", "FDAAA 801 violation reported", (True,))),
}
_AGG_IDS = {name.lower(): name for name in AGG_FILTERS}


def agg_entry(filter_id: str, codes: Iterable[str], param: str) -> tuple[str, tuple[str, ...]]:
    """One filter's codes checked and lower-cased: ``("Phase", ["2", "3"])`` -> ``("phase", ("2", "3"))``."""
    canonical = _AGG_IDS.get(filter_id.strip().lower())
    if canonical is None:
        raise SearchError(param, f"unknown filter {filter_id.strip()!r}; expected one of {', '.join(AGG_FILTERS)}")
    options = AGG_FILTERS[canonical]
    out = []
    for code in codes:
        key = code.strip().lower()
        if key not in options:
            raise SearchError(param, f"unknown {canonical} option {code.strip()!r}; expected one of "
                               f"{', '.join(options)}")
        out.append(key)
    if not out:
        raise SearchError(param, f"{canonical!r} has no options; write e.g. {canonical}:{next(iter(options))}")
    return canonical, dedupe(out)


def parse_agg(text: str, param: str = "aggFilters") -> dict[str, tuple[str, ...]]:
    """``"phase:2 3,status:rec,sex:f"`` -> ``{"phase": ("2", "3"), "status": ("rec",), "sex": ("f",)}``.

    Pairs are comma- or pipe-separated ``filter:codes``; codes are space- (or ``+``-) separated. Filter
    ids and codes are case-insensitive; a filter given twice merges its codes.
    """
    if not isinstance(text, str):
        raise SearchError(param, "expected text like phase:2 3,status:rec")
    result: dict[str, tuple[str, ...]] = {}
    for pair in split_list(text):
        if ":" not in pair:
            raise SearchError(param, f"expected filter:options, e.g. phase:2 3, not {pair!r}")
        filter_id, _, codes = pair.partition(":")
        name, values = agg_entry(filter_id, re.split(r"[\s+]+", codes.strip()) if codes.strip() else [], param)
        result[name] = dedupe(result.get(name, ()) + values)
    return result


def agg_options(agg: Mapping[str, Iterable[str]]) -> dict[str, tuple[AggOption, ...]]:
    """What each selected aggFilters code means: filter id -> its selected options (ORed; filters ANDed)."""
    return {name: tuple(AGG_FILTERS[name][code] for code in codes) for name, codes in agg.items()}
