"""Posted results on the study page: participant flow, baseline characteristics, outcome measures, adverse
events, limitations and the results point of contact -- as ClinicalTrials.gov's "Results" tab shows them.

Why tables of strings: the registry's ``resultsSection`` is a deep structure (groups, denominators,
classes, categories, measurements, analyses) that every shell would otherwise walk on its own. Here it is
flattened once into :class:`ResultTable` rows whose cells are already worded ("59 (39 to 82)",
"3/2841 (0.11%)"), so the web page, the CLI and the JSON form agree on every number, and a template only
lays out rows. Values are copied as the sponsor posted them (strings such as "NA" stay), never recomputed,
except the percentage of participants affected by an adverse event, which ClinicalTrials.gov shows too.

Also here, because they come with results or point at them: references and links, study documents
(``documentSection``) and the plan to share individual participant data.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from trialfinder.model.labels import label
from trialfinder.model.study import record_get
from trialfinder.model.view_sections import Contact, Fact, FactsSection, Section, TextSection

__all__ = [
    "RESULTS_GROUP", "AdverseEventsSection", "Analysis", "DocumentsSection", "EventGroupTable",
    "MeasureBlock", "ReferencesSection", "ResultGroup", "ResultTable", "ResultTablesSection", "TableRow",
    "document_url", "results_sections", "study_info_sections",
]

RESULTS_GROUP = "Study results"
#: Where ClinicalTrials.gov serves a study's uploaded documents (protocol, SAP, consent form).
DOCUMENT_URL = "https://cdn.clinicaltrials.gov/large-docs/{tail}/{nct_id}/{filename}"
PUBMED_URL = "https://pubmed.ncbi.nlm.nih.gov/{pmid}/"

_MILESTONES = {"STARTED": "Started", "COMPLETED": "Completed", "NOT COMPLETED": "Not completed",
               "NOT_COMPLETED": "Not completed"}


# --- section types -------------------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class ResultGroup:
    """An arm or group as the results name it (``FG000`` "Palbociclib Plus Endocrine Therapy")."""

    id: str
    title: str
    description: str = ""


@dataclass(frozen=True, kw_only=True)
class TableRow:
    """One table row: ``kind`` is "data", "heading" (a class or measure title spanning the table) or
    "denom" (a number-analysed row); ``cells`` line up with the table's groups."""

    label: str
    cells: tuple[str, ...] = ()
    kind: str = "data"
    level: int = 0


@dataclass(frozen=True, kw_only=True)
class ResultTable:
    """A table with one column per group; ``facts`` are the lines shown above it (unit, measure type)."""

    title: str
    groups: tuple[ResultGroup, ...]
    rows: tuple[TableRow, ...]
    facts: tuple[Fact, ...] = ()
    notes: tuple[str, ...] = ()


@dataclass(frozen=True, kw_only=True)
class Analysis:
    """One statistical analysis of an outcome measure, as label/value lines."""

    facts: tuple[Fact, ...]


@dataclass(frozen=True, kw_only=True)
class MeasureBlock:
    """One outcome measure: its type ("Primary"), title, description lines, table and analyses."""

    type: str
    title: str
    description: str
    facts: tuple[Fact, ...]
    table: ResultTable | None
    analyses: tuple[Analysis, ...] = ()


@dataclass(frozen=True, kw_only=True)
class ResultTablesSection(Section, kind="result_tables"):
    """Participant flow or baseline characteristics: intro facts, then tables (one per period)."""

    facts: tuple[Fact, ...] = ()
    tables: tuple[ResultTable, ...] = ()


@dataclass(frozen=True, kw_only=True)
class OutcomeResultsSection(Section, kind="outcome_results"):
    """Outcome measures with their groups, values, dispersion and analyses."""

    measures: tuple[MeasureBlock, ...]


@dataclass(frozen=True, kw_only=True)
class EventGroupTable:
    """Adverse events of one organ system: rows are terms, cells "affected/at risk (percent)"."""

    organ_system: str
    rows: tuple[TableRow, ...]
    affected: int = 0


@dataclass(frozen=True, kw_only=True)
class AdverseEventsSection(Section, kind="adverse_events"):
    """Adverse events: summary table (deaths, serious, other), then serious and other events by organ system."""

    facts: tuple[Fact, ...]
    groups: tuple[ResultGroup, ...]
    summary: tuple[TableRow, ...]
    serious: tuple[EventGroupTable, ...]
    other: tuple[EventGroupTable, ...]
    serious_count: int = 0
    other_count: int = 0


@dataclass(frozen=True, kw_only=True)
class Link:
    """A labelled link (a publication, a document, a web page)."""

    text: str
    url: str
    note: str = ""


@dataclass(frozen=True, kw_only=True)
class ReferencesSection(Section, kind="references"):
    """Publications (citation with its PubMed link) and other links."""

    references: tuple[Link, ...]
    links: tuple[Link, ...] = ()


@dataclass(frozen=True, kw_only=True)
class DocumentsSection(Section, kind="documents"):
    """Study documents and other links: protocol, statistical analysis plan, consent form."""

    documents: tuple[Link, ...]


@dataclass(frozen=True, kw_only=True)
class ResultContactSection(Section, kind="result_contact"):
    """The results point of contact and the agreements between investigators and sponsor."""

    contact: Contact | None
    organization: str = ""
    facts: tuple[Fact, ...] = ()


# --- helpers -------------------------------------------------------------------------------------


def _s(value: Any) -> str:
    return value.strip() if isinstance(value, str) else ("" if value is None else str(value))


def _dicts(value: Any) -> list[dict[str, Any]]:
    return [v for v in value if isinstance(v, dict)] if isinstance(value, list) else []


def _groups(items: Any) -> tuple[ResultGroup, ...]:
    return tuple(ResultGroup(id=_s(g.get("id")), title=_s(g.get("title")) or _s(g.get("id")),
                             description=_s(g.get("description"))) for g in _dicts(items))


def _by_group(groups: tuple[ResultGroup, ...], values: dict[str, str]) -> tuple[str, ...]:
    return tuple(values.get(g.id, "") for g in groups)


def _facts(*pairs: tuple[str, Any]) -> tuple[Fact, ...]:
    return tuple(Fact(label=k, value=_s(v)) for k, v in pairs if _s(v))


def _measurement(m: dict[str, Any]) -> str:
    """ "59 (39 to 82)", "55.2 (10.4)" or "7": the value with its spread or limits, as posted."""
    value = _s(m.get("value")) or "NA"
    spread = _s(m.get("spread"))
    lo, hi = _s(m.get("lowerLimit")), _s(m.get("upperLimit"))
    if spread:
        value += f" (± {spread})"
    elif lo or hi:
        value += f" ({lo or 'NA'} to {hi or 'NA'})"
    return value


def _measure_kind(m: dict[str, Any]) -> str:
    param = label("MeasureParam", _s(m.get("paramType")))
    disp = _s(m.get("dispersionType"))
    disp_label = label("MeasureDispersionType", disp) if disp and disp != "NA" else ""
    return f"{param} ({disp_label})" if param and disp_label else param


def _denom_rows(denoms: Any, groups: tuple[ResultGroup, ...], text: str, level: int = 0) -> list[TableRow]:
    rows = []
    for d in _dicts(denoms):
        values = {_s(c.get("groupId")): _s(c.get("value")) for c in _dicts(d.get("counts"))}
        units = _s(d.get("units")) or "Participants"
        row_label = text if units == "Participants" else f"{text} ({units})"
        rows.append(TableRow(label=row_label, cells=_by_group(groups, values), kind="denom", level=level))
    return rows


def _class_rows(classes: Any, groups: tuple[ResultGroup, ...], notes: list[str]) -> list[TableRow]:
    """Rows of a measure's classes and categories, with any per-value comments kept as notes."""
    titles = {g.id: g.title for g in groups}
    rows: list[TableRow] = []
    for cls in _dicts(classes):
        ctitle = _s(cls.get("title"))
        level = 0
        cats = _dicts(cls.get("categories"))
        if ctitle and len(cats) == 1 and not _s(cats[0].get("title")):
            # one value per class ("Region of Enrollment: Netherlands 7"): one row, named by the class
            cls = {"categories": [{**cats[0], "title": ctitle}]}
            ctitle = ""
        if ctitle:
            rows.append(TableRow(label=ctitle, kind="heading"))
            level = 1
        if ctitle and cls.get("denoms"):
            rows.extend(_denom_rows(cls.get("denoms"), groups, "Number analysed", level))
        for cat in _dicts(cls.get("categories")):
            values = {}
            for m in _dicts(cat.get("measurements")):
                gid = _s(m.get("groupId"))
                values[gid] = _measurement(m)
                if _s(m.get("comment")):
                    where = " / ".join(p for p in (ctitle, _s(cat.get("title"))) if p)
                    prefix = f"{titles.get(gid, gid)}{', ' + where if where else ''}"
                    notes.append(f"{prefix}: {_s(m.get('comment'))}")
            rows.append(TableRow(label=_s(cat.get("title")) or ctitle or "Value",
                                 cells=_by_group(groups, values), level=level))
    return rows


# --- participant flow and baseline -------------------------------------------------------------------


def _flow_section(flow: Any) -> ResultTablesSection | None:
    groups = _groups(record_get(flow, "groups"))
    tables = []
    for period in _dicts(record_get(flow, "periods")):
        rows: list[TableRow] = []
        notes: list[str] = []
        titles = {g.id: g.title for g in groups}
        for ms in _dicts(period.get("milestones")):
            mtype = _s(ms.get("type"))
            values = {}
            for a in _dicts(ms.get("achievements")):
                gid = _s(a.get("groupId"))
                values[gid] = _s(a.get("numSubjects")) + (f" ({_s(a.get('numUnits'))} units)"
                                                          if _s(a.get("numUnits")) else "")
                if _s(a.get("comment")):
                    notes.append(f"{titles.get(gid, gid)}, {_MILESTONES.get(mtype, mtype)}: {_s(a.get('comment'))}")
            rows.append(TableRow(label=_MILESTONES.get(mtype, mtype), cells=_by_group(groups, values)))
        drops = _dicts(period.get("dropWithdraws"))
        if drops:
            rows.append(TableRow(label="Reasons for not completing", kind="heading"))
            for dw in drops:
                values = {_s(r.get("groupId")): _s(r.get("numSubjects")) for r in _dicts(dw.get("reasons"))}
                rows.append(TableRow(label=_s(dw.get("type")) or "Other", cells=_by_group(groups, values), level=1))
        if rows:
            tables.append(ResultTable(title=_s(period.get("title")) or "Overall study", groups=groups,
                                      rows=tuple(rows), notes=tuple(notes)))
    facts = _facts(("Recruitment details", record_get(flow, "recruitmentDetails")),
                   ("Pre-assignment details", record_get(flow, "preAssignmentDetails")),
                   ("Type of units assigned", record_get(flow, "typeUnitsAnalyzed")))
    if not tables and not facts:
        return None
    return ResultTablesSection(key="participant_flow", heading="Participant flow", group=RESULTS_GROUP,
                               facts=facts, tables=tuple(tables))


def _baseline_section(base: Any) -> ResultTablesSection | None:
    groups = _groups(record_get(base, "groups"))
    rows: list[TableRow] = _denom_rows(record_get(base, "denoms"), groups, "Baseline participants")
    notes: list[str] = []
    for m in _dicts(record_get(base, "measures")):
        title = _s(m.get("title"))
        if not title:
            continue
        kind = _measure_kind(m)
        unit = _s(m.get("unitOfMeasure"))
        if kind in ("Count of Participants", "Number") and unit:
            kind = ""  # "Sex: Female, Male (Participants)": the unit says it is a count
        detail = ", ".join(p for p in (kind, unit) if p)
        rows.append(TableRow(label=f"{title} ({detail})" if detail else title, kind="heading"))
        rows.extend(_denom_rows(m.get("denoms"), groups, "Number analysed", 1))
        for r in _class_rows(m.get("classes"), groups, notes):
            rows.append(TableRow(label=r.label, cells=r.cells, kind=r.kind, level=r.level + 1))
        if _s(m.get("populationDescription")):
            notes.append(f"{title}: {_s(m.get('populationDescription'))}")
    facts = _facts(("Population", record_get(base, "populationDescription")),
                   ("Type of units analysed", record_get(base, "typeUnitsAnalyzed")))
    if len(rows) == 0 and not facts:
        return None
    table = ResultTable(title="Baseline characteristics", groups=groups, rows=tuple(rows), notes=tuple(notes))
    return ResultTablesSection(key="baseline", heading="Baseline characteristics", group=RESULTS_GROUP,
                               facts=facts, tables=(table,) if rows else ())


# --- outcome measures ----------------------------------------------------------------------------


def _estimate(a: dict[str, Any]) -> str:
    param, value = _s(a.get("paramType")), _s(a.get("paramValue"))
    if not (param or value):
        return ""
    text = f"{param} {value}".strip()
    lo, hi, pct = _s(a.get("ciLowerLimit")), _s(a.get("ciUpperLimit")), _s(a.get("ciPctValue"))
    if lo or hi:
        sides = label("ConfidenceIntervalNumSides", _s(a.get("ciNumSides")))
        ci = f"{pct}% CI" if pct else "CI"
        text += f" ({ci}{', ' + sides if sides else ''}: {lo or 'NA'} to {hi or 'NA'})"
    disp, disp_value = _s(a.get("dispersionType")), _s(a.get("dispersionValue"))
    if disp_value:
        text += f"; {label('AnalysisDispersionType', disp) or 'dispersion'} {disp_value}"
    return text


def _analysis(a: dict[str, Any], titles: dict[str, str]) -> Analysis:
    compared = [titles.get(g, g) for g in (_s(x) for x in a.get("groupIds") or []) if g]
    ni = _s(a.get("nonInferiorityType"))
    return Analysis(facts=_facts(
        ("Comparison groups", ", ".join(compared)),
        ("Comments", a.get("groupDescription")),
        ("Non-inferiority or equivalence", label("NonInferiorityType", ni) if ni else ""),
        ("Non-inferiority comments", a.get("nonInferiorityComment")),
        ("P-value", a.get("pValue")),
        ("P-value comments", a.get("pValueComment")),
        ("Statistical method", a.get("statisticalMethod")),
        ("Statistical comments", a.get("statisticalComment")),
        ("Estimate", _estimate(a)),
        ("Estimate comments", a.get("estimateComment")),
        ("Other analysis", a.get("otherAnalysisDescription")),
    ))


def _outcome_results(mod: Any) -> OutcomeResultsSection | None:
    blocks = []
    for om in _dicts(record_get(mod, "outcomeMeasures")):
        title = _s(om.get("title"))
        if not title:
            continue
        groups = _groups(om.get("groups"))
        notes: list[str] = []
        rows = _denom_rows(om.get("denoms"), groups, "Participants analysed")
        rows += _class_rows(om.get("classes"), groups, notes)
        posted = _s(om.get("reportingStatus")) != "NOT_POSTED"
        facts = _facts(("Time frame", om.get("timeFrame")),
                       ("Population", om.get("populationDescription")),
                       ("Measure type", _measure_kind(om)),
                       ("Unit of measure", om.get("unitOfMeasure")),
                       ("Results", "" if posted else "Not posted yet"),
                       ("Anticipated posting", om.get("anticipatedPostingDate")))
        table = ResultTable(title=title, groups=groups, rows=tuple(rows), notes=tuple(notes)) \
            if rows and groups else None
        titles = {g.id: g.title for g in groups}
        blocks.append(MeasureBlock(
            type=label("OutcomeMeasureType", _s(om.get("type"))) or "Outcome", title=title,
            description=_s(om.get("description")), facts=facts, table=table,
            analyses=tuple(_analysis(a, titles) for a in _dicts(om.get("analyses")))))
    if not blocks:
        return None
    return OutcomeResultsSection(key="outcome_results", heading="Outcome measures", group=RESULTS_GROUP,
                                 measures=tuple(blocks))


# --- adverse events --------------------------------------------------------------------------------


def _rate(affected: Any, at_risk: Any) -> str:
    if not isinstance(affected, int) or not isinstance(at_risk, int):
        return ""
    if at_risk <= 0:
        return f"{affected}/{at_risk}"
    return f"{affected}/{at_risk} ({100 * affected / at_risk:.2f}%)"


def _event_tables(events: Any, groups: tuple[ResultGroup, ...]) -> tuple[tuple[EventGroupTable, ...], int]:
    by_system: dict[str, list[TableRow]] = {}
    affected: dict[str, int] = {}
    total = 0
    for ev in _dicts(events):
        term = _s(ev.get("term"))
        if not term:
            continue
        total += 1
        system = _s(ev.get("organSystem")) or "Other"
        values = {}
        any_affected = 0
        for st in _dicts(ev.get("stats")):
            text = _rate(st.get("numAffected"), st.get("numAtRisk"))
            events_n = st.get("numEvents")
            if text and isinstance(events_n, int):
                text += f" · {events_n} {'event' if events_n == 1 else 'events'}"
            values[_s(st.get("groupId"))] = text
            if isinstance(st.get("numAffected"), int):
                any_affected += st["numAffected"]
        assess = _s(ev.get("assessmentType"))
        row_label = term + (" (non-systematic)" if assess == "NON_SYSTEMATIC_ASSESSMENT" else "")
        by_system.setdefault(system, []).append(TableRow(label=row_label, cells=_by_group(groups, values)))
        affected[system] = affected.get(system, 0) + any_affected
    tables = tuple(EventGroupTable(organ_system=s, rows=tuple(rows), affected=affected[s])
                   for s, rows in sorted(by_system.items(), key=lambda kv: kv[0].lower()))
    return tables, total


def _adverse_events(ae: Any) -> AdverseEventsSection | None:
    groups = _groups(record_get(ae, "eventGroups"))
    if not groups:
        return None
    raw = {_s(g.get("id")): g for g in _dicts(record_get(ae, "eventGroups"))}
    summary = []
    for text, key in (("All-cause mortality", "deaths"), ("Serious adverse events", "serious"),
                      ("Other adverse events", "other")):
        values = {gid: _rate(g.get(f"{key}NumAffected"), g.get(f"{key}NumAtRisk")) for gid, g in raw.items()}
        if any(values.values()):
            summary.append(TableRow(label=text, cells=_by_group(groups, values)))
    serious, n_serious = _event_tables(record_get(ae, "seriousEvents"), groups)
    other, n_other = _event_tables(record_get(ae, "otherEvents"), groups)
    vocab = sorted({_s(e.get("sourceVocabulary")) for e in
                    _dicts(record_get(ae, "seriousEvents")) + _dicts(record_get(ae, "otherEvents"))} - {""})
    threshold = _s(record_get(ae, "frequencyThreshold"))
    facts = _facts(("Time frame", record_get(ae, "timeFrame")),
                   ("Adverse event reporting description", record_get(ae, "description")),
                   ("Source vocabulary", ", ".join(vocab)),
                   ("Frequency threshold for other adverse events", f"{threshold}%" if threshold else ""),
                   ("All-cause mortality description", record_get(ae, "allCauseMortalityComment")))
    return AdverseEventsSection(key="adverse_events", heading="Adverse events", group=RESULTS_GROUP, facts=facts,
                                groups=groups, summary=tuple(summary), serious=serious, other=other,
                                serious_count=n_serious, other_count=n_other)


# --- more information ------------------------------------------------------------------------------


def _more_info(info: Any) -> list[Section]:
    out: list[Section] = []
    limits = _s(record_get(info, "limitationsAndCaveats", "description"))
    if limits:
        out.append(TextSection(key="limitations", heading="Limitations and caveats", paragraphs=(limits,),
                               group=RESULTS_GROUP))
    poc = record_get(info, "pointOfContact")
    contact = None
    if isinstance(poc, dict) and (_s(poc.get("title")) or _s(poc.get("email")) or _s(poc.get("phone"))):
        phone, ext = _s(poc.get("phone")), _s(poc.get("phoneExt"))
        contact = Contact(name=_s(poc.get("title")) or _s(poc.get("organization")),
                          phone=f"{phone} ext. {ext}" if phone and ext else phone, email=_s(poc.get("email")))
    agreement = record_get(info, "certainAgreement")
    facts: list[Fact] = []
    if isinstance(agreement, dict):
        employee = agreement.get("piSponsorEmployee")
        if employee is True:
            facts.append(Fact(label="Certain agreements",
                              value="Principal investigators are employed by the organization sponsoring the study."))
        elif employee is False:
            restrictive = agreement.get("restrictiveAgreement")
            text = ("There is an agreement between principal investigators and the sponsor (or its agents) that "
                    "restricts the PI's rights to discuss or publish trial results after the trial is completed."
                    if restrictive else "Principal investigators are not employed by the organization sponsoring "
                    "the study. There is no agreement restricting their rights to discuss or publish results.")
            facts.append(Fact(label="Certain agreements", value=text))
            kind = _s(agreement.get("restrictionType"))
            if restrictive and kind:
                facts.append(Fact(label="Restriction", value=label("AgreementRestrictionType", kind)))
            if _s(agreement.get("otherDetails")):
                facts.append(Fact(label="Restriction details", value=_s(agreement.get("otherDetails"))))
    if contact or facts:
        out.append(ResultContactSection(key="results_contact", heading="Results point of contact",
                                        group=RESULTS_GROUP, contact=contact,
                                        organization=_s(record_get(poc, "organization")), facts=tuple(facts)))
    return out


def results_sections(record: dict[str, Any]) -> list[Section]:
    """The "Study results" sections of a record, in ClinicalTrials.gov's order; [] without results."""
    results = record_get(record, "resultsSection")
    if not isinstance(results, dict):
        return []
    built: Iterable[Section | None] = (
        _flow_section(record_get(results, "participantFlowModule")),
        _baseline_section(record_get(results, "baselineCharacteristicsModule")),
        _outcome_results(record_get(results, "outcomeMeasuresModule")),
        _adverse_events(record_get(results, "adverseEventsModule")),
    )
    out = [s for s in built if s is not None]
    out.extend(_more_info(record_get(results, "moreInfoModule")))
    return out


# --- references, documents, IPD ------------------------------------------------------------------------


def document_url(nct_id: str, filename: str) -> str:
    """The registry's address of an uploaded document (``Prot_SAP_000.pdf``) of study ``nct_id``."""
    return DOCUMENT_URL.format(tail=nct_id[-2:], nct_id=nct_id, filename=filename)


def study_info_sections(record: dict[str, Any], nct_id: str) -> list[Section]:
    """Publications, study documents and the IPD sharing statement (each only when the record has it)."""
    proto = record_get(record, "protocolSection")
    out: list[Section] = []
    refs_mod = record_get(proto, "referencesModule")
    refs = []
    for r in _dicts(record_get(refs_mod, "references")):
        citation = _s(r.get("citation"))
        if not citation:
            continue
        pmid = _s(r.get("pmid"))
        rtype = _s(r.get("type"))
        note = {"RESULT": "Results publication", "DERIVED": "From PubMed", "BACKGROUND": "Background"}.get(rtype, "")
        refs.append(Link(text=citation, url=PUBMED_URL.format(pmid=pmid) if pmid.isdigit() else "", note=note))
    links = tuple(Link(text=_s(x.get("label")) or _s(x.get("url")), url=_s(x.get("url")))
                  for x in _dicts(record_get(refs_mod, "seeAlsoLinks")) if _s(x.get("url")))
    if refs or links:
        out.append(ReferencesSection(key="references", heading="Publications and links", references=tuple(refs),
                                     links=links))
    docs = []
    for d in _dicts(record_get(record, "documentSection", "largeDocumentModule", "largeDocs")):
        filename = _s(d.get("filename"))
        if not filename or not nct_id:
            continue
        text = _s(d.get("label")) or filename
        date = _s(d.get("date"))
        size = d.get("size")
        note = ", ".join(p for p in (f"dated {date}" if date else "",
                                     f"{size / 1e6:.1f} MB" if isinstance(size, int) and size > 0 else "") if p)
        docs.append(Link(text=text, url=document_url(nct_id, filename), note=note))
    for x in _dicts(record_get(refs_mod, "availIpds")):
        if _s(x.get("url")):
            docs.append(Link(text=_s(x.get("type")) or "Document", url=_s(x.get("url")), note=_s(x.get("comment"))))
    if docs:
        out.append(DocumentsSection(key="documents", heading="Study documents", documents=tuple(docs)))
    ipd = record_get(proto, "ipdSharingStatementModule")
    sharing = _s(record_get(ipd, "ipdSharing"))
    if sharing:
        types = ", ".join(label("IpdSharingInfoType", _s(t)) for t in record_get(ipd, "infoTypes") or [] if _s(t))
        facts = _facts(("Plan to share", label("IpdSharing", sharing)),
                       ("Description", record_get(ipd, "description")),
                       ("Supporting information", types),
                       ("Time frame", record_get(ipd, "timeFrame")),
                       ("Access criteria", record_get(ipd, "accessCriteria")),
                       ("Address", record_get(ipd, "url")))
        out.append(FactsSection(key="ipd", heading="Individual participant data (IPD) sharing", facts=facts))
    return out
