"""Study lists as files: CSV (ClinicalTrials.gov's CSV download columns), RIS citations and an RSS feed.

Why ClinicalTrials.gov's column names and RIS tags: people open these exports in the same spreadsheets
and reference managers they use with ClinicalTrials.gov downloads; matching its columns means their
templates and macros keep working. Everything here is pure formatting of v2 records: no I/O.
"""

from __future__ import annotations

import csv
import datetime as _dt
import io
from collections.abc import Callable, Iterable, Sequence
from email.utils import format_datetime
from typing import Any
from xml.sax.saxutils import escape

from trialfinder.model.labels import label
from trialfinder.model.study import record_get

STUDY_URL = "https://clinicaltrials.gov/study/{}"


def _list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def _s(value: Any) -> str:
    return "" if value is None else str(value).strip()


def _ps(rec: dict, module: str, *path: str) -> Any:
    return record_get(rec, "protocolSection", module, *path)


def nct_id(rec: dict) -> str:
    return _s(_ps(rec, "identificationModule", "nctId"))


def title(rec: dict) -> str:
    return _s(_ps(rec, "identificationModule", "briefTitle")) or _s(_ps(rec, "identificationModule",
                                                                       "officialTitle"))


def _date(rec: dict, struct: str) -> str:
    return _s(_ps(rec, "statusModule", struct, "date"))


def _interventions(rec: dict) -> str:
    return "|".join(f"{_s(i.get('type'))}: {_s(i.get('name'))}" for i in
                    _list(_ps(rec, "armsInterventionsModule", "interventions")) if isinstance(i, dict))


def _outcomes(rec: dict, key: str) -> str:
    return "|".join(
        ", ".join(x for x in (_s(o.get("measure")), _s(o.get("description")), _s(o.get("timeFrame"))) if x)
        for o in _list(_ps(rec, "outcomesModule", key)) if isinstance(o, dict))


def _age(rec: dict) -> str:
    elig = record_get(rec, "protocolSection", "eligibilityModule") or {}
    lo, hi = _s(elig.get("minimumAge")), _s(elig.get("maximumAge"))
    parts = [f"{lo or 'up to'} to {hi}" if hi else (f"{lo} and older" if lo else "")]
    ages = ", ".join(_s(a) for a in _list(elig.get("stdAges")))
    return " ".join(p for p in (parts[0], f"({ages})" if ages else "") if p)


def _design(rec: dict) -> str:
    info = _ps(rec, "designModule", "designInfo") or {}
    items = [("Allocation", _s(record_get(info, "allocation"))),
             ("Intervention Model", _s(record_get(info, "interventionModel"))),
             ("Masking", _s(record_get(info, "maskingInfo", "masking"))),
             ("Primary Purpose", _s(record_get(info, "primaryPurpose"))),
             ("Observational Model", _s(record_get(info, "observationalModel"))),
             ("Time Perspective", _s(record_get(info, "timePerspective")))]
    return "|".join(f"{k}: {v}" for k, v in items if v)


def _locations(rec: dict) -> str:
    return "|".join(
        ", ".join(x for x in (_s(loc.get(k)) for k in ("facility", "city", "state", "zip", "country")) if x)
        for loc in _list(_ps(rec, "contactsLocationsModule", "locations")) if isinstance(loc, dict))


def _other_ids(rec: dict) -> str:
    ident = record_get(rec, "protocolSection", "identificationModule") or {}
    ids = [_s(record_get(ident, "orgStudyIdInfo", "id"))]
    ids += [_s(s.get("id")) for s in _list(ident.get("secondaryIdInfos")) if isinstance(s, dict)]
    return "|".join(i for i in ids if i)


def _funders(rec: dict) -> str:
    sp = record_get(rec, "protocolSection", "sponsorCollaboratorsModule") or {}
    classes = [_s(record_get(sp, "leadSponsor", "class"))]
    classes += [_s(c.get("class")) for c in _list(sp.get("collaborators")) if isinstance(c, dict)]
    return "|".join(dict.fromkeys(c for c in classes if c))


#: ClinicalTrials.gov CSV download columns, in its order, with how to fill each from a v2 record.
CSV_COLUMNS: dict[str, Callable[[dict], str]] = {
    "NCT Number": nct_id,
    "Study Title": title,
    "Study URL": lambda r: STUDY_URL.format(nct_id(r)) if nct_id(r) else "",
    "Acronym": lambda r: _s(_ps(r, "identificationModule", "acronym")),
    "Study Status": lambda r: _s(_ps(r, "statusModule", "overallStatus")),
    "Brief Summary": lambda r: _s(_ps(r, "descriptionModule", "briefSummary")),
    "Study Results": lambda r: "YES" if r.get("hasResults") else "NO",
    "Conditions": lambda r: "|".join(_s(c) for c in _list(_ps(r, "conditionsModule", "conditions"))),
    "Interventions": _interventions,
    "Primary Outcome Measures": lambda r: _outcomes(r, "primaryOutcomes"),
    "Secondary Outcome Measures": lambda r: _outcomes(r, "secondaryOutcomes"),
    "Other Outcome Measures": lambda r: _outcomes(r, "otherOutcomes"),
    "Sponsor": lambda r: _s(_ps(r, "sponsorCollaboratorsModule", "leadSponsor", "name")),
    "Collaborators": lambda r: "|".join(_s(c.get("name")) for c in
                                        _list(_ps(r, "sponsorCollaboratorsModule", "collaborators"))
                                        if isinstance(c, dict)),
    "Sex": lambda r: _s(_ps(r, "eligibilityModule", "sex")),
    "Age": _age,
    "Phases": lambda r: "|".join(_s(p) for p in _list(_ps(r, "designModule", "phases"))),
    "Enrollment": lambda r: _s(_ps(r, "designModule", "enrollmentInfo", "count")),
    "Funder Type": _funders,
    "Study Type": lambda r: _s(_ps(r, "designModule", "studyType")),
    "Study Design": _design,
    "Other IDs": _other_ids,
    "Start Date": lambda r: _date(r, "startDateStruct"),
    "Primary Completion Date": lambda r: _date(r, "primaryCompletionDateStruct"),
    "Completion Date": lambda r: _date(r, "completionDateStruct"),
    "First Posted": lambda r: _date(r, "studyFirstPostDateStruct"),
    "Results First Posted": lambda r: _date(r, "resultsFirstPostDateStruct"),
    "Last Update Posted": lambda r: _date(r, "lastUpdatePostDateStruct"),
    "Locations": _locations,
    "Study Documents": lambda r: "|".join(
        _s(d.get("label")) or _s(d.get("filename")) for d in
        _list(record_get(r, "documentSection", "largeDocumentModule", "largeDocs")) if isinstance(d, dict)),
}


def csv_columns(requested: Sequence[str] | None) -> list[str]:
    """The CSV columns for a ``fields`` list (case-insensitive column names); all columns when None.

    Raises ValueError naming the first unknown column."""
    if not requested:
        return list(CSV_COLUMNS)
    lookup = {name.lower(): name for name in CSV_COLUMNS}
    out = []
    for name in requested:
        canonical = lookup.get(name.strip().lower())
        if canonical is None:
            raise ValueError(f"unknown CSV column {name.strip()!r}; columns: {', '.join(CSV_COLUMNS)}")
        if canonical not in out:
            out.append(canonical)
    return out


def _cell(text: str) -> str:
    """Defuse spreadsheet formulas: a cell starting with = + - @ is prefixed with a quote."""
    return "'" + text if text[:1] in ("=", "+", "-", "@", "\t", "\r") else text


def to_csv(records: Iterable[dict], columns: Sequence[str] | None = None, *, header: bool = True,
           extra: Sequence[tuple[str, Sequence[str]]] = ()) -> str:
    """Records as CSV text with ClinicalTrials.gov's column names (plus ``extra`` columns, one value per
    record, e.g. the nearest site of each search hit)."""
    cols = list(columns or CSV_COLUMNS)
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    if header:
        writer.writerow(cols + [name for name, _ in extra])
    for i, rec in enumerate(records):
        row = [_cell(CSV_COLUMNS[c](rec)) for c in cols]
        row += [_cell(values[i]) if i < len(values) else "" for _, values in extra]
        writer.writerow(row)
    return buf.getvalue()


def _ris_line(tag: str, value: str) -> str:
    return f"{tag}  - {' '.join(value.split())}\n" if value else ""


def to_ris(records: Iterable[dict]) -> str:
    """Records as RIS citations (type DBASE, as ClinicalTrials.gov exports them)."""
    out = []
    for rec in records:
        nct = nct_id(rec)
        first = _date(rec, "studyFirstPostDateStruct")
        parts = [_ris_line("TY", "DBASE"), _ris_line("ID", nct), _ris_line("TI", title(rec)),
                 _ris_line("T2", _s(_ps(rec, "identificationModule", "officialTitle")))]
        for off in _list(_ps(rec, "contactsLocationsModule", "overallOfficials")):
            if isinstance(off, dict):
                parts.append(_ris_line("AU", _s(off.get("name"))))
        parts += [_ris_line("PB", _s(_ps(rec, "sponsorCollaboratorsModule", "leadSponsor", "name"))),
                  _ris_line("PY", first[:4]), _ris_line("DA", first.replace("-", "/")),
                  _ris_line("Y2", _date(rec, "lastUpdatePostDateStruct").replace("-", "/")),
                  _ris_line("AN", nct), _ris_line("DB", "ClinicalTrials.gov"),
                  _ris_line("UR", STUDY_URL.format(nct) if nct else ""),
                  _ris_line("AB", _s(_ps(rec, "descriptionModule", "briefSummary")))]
        for cond in _list(_ps(rec, "conditionsModule", "conditions")):
            parts.append(_ris_line("KW", _s(cond)))
        parts.append(_ris_line("N1", "Status: " + label("Status", _s(_ps(rec, "statusModule", "overallStatus")))
                               if _ps(rec, "statusModule", "overallStatus") else ""))
        parts.append("ER  - \n")
        out.append("".join(parts))
    return "\n".join(out)


def _rfc822(date: str) -> str:
    try:
        parts = [int(p) for p in date.split("-")] + [1, 1]
        day = _dt.datetime(parts[0], parts[1], parts[2], tzinfo=_dt.UTC)
    except (ValueError, IndexError):
        return ""
    return format_datetime(day)


def to_rss(records: Iterable[dict], *, channel_title: str, channel_link: str, description: str,
           study_link: Callable[[str], str]) -> str:
    """An RSS 2.0 feed of studies, newest update first. The item guid includes the last-update date, so
    an updated study shows up again as a new item in feed readers."""
    items = []
    for rec in records:
        nct = nct_id(rec)
        updated = _date(rec, "lastUpdatePostDateStruct")
        status = label("Status", _s(_ps(rec, "statusModule", "overallStatus")))
        phases = ", ".join(label("Phase", _s(p)) for p in _list(_ps(rec, "designModule", "phases")))
        conds = "; ".join(_s(c) for c in _list(_ps(rec, "conditionsModule", "conditions")))
        first = _date(rec, "studyFirstPostDateStruct")
        results_first = _date(rec, "resultsFirstPostDateStruct")
        if first and first == updated:
            what = "New study"
        elif results_first and results_first == updated:
            what = "Results posted"  # the update that posted the results
        else:
            what = "Updated study"
        summary = " · ".join(x for x in (what, status, phases, conds) if x)
        pub = _rfc822(updated)
        items.append(
            "<item>"
            f"<title>{escape(f'{nct}: {title(rec)}')}</title>"
            f"<link>{escape(study_link(nct))}</link>"
            f"<guid isPermaLink=\"false\">{escape(f'{nct}@{updated}')}</guid>"
            + (f"<pubDate>{escape(pub)}</pubDate>" if pub else "")
            + f"<description>{escape(summary)}</description>"
            "</item>")
    return ('<?xml version="1.0" encoding="UTF-8"?>\n<rss version="2.0"><channel>'
            f"<title>{escape(channel_title)}</title><link>{escape(channel_link)}</link>"
            f"<description>{escape(description)}</description>"
            + "".join(items) + "</channel></rss>\n")
