"""Legacy ClinicalTrials.gov ``<clinical_study>`` XML -> API v2 ``Study`` dict.

Why: the old AllPublicXML dump (and the TREC Clinical Trials collections built from it) is the only
source for many historical snapshots, but everything downstream of the readers works on the v2 record.
So each XML document is converted once, on the way in, into exactly the v2 shape -- same module and
field names, same enum values, same date format, same markdown conventions for free text -- and the rest
of trialfinder never needs to know a record started life as XML. ``docs/legacy-xml-mapping.md`` lists
every mapped path.

What is deliberately *not* converted: the posted results (``clinical_results``) -- only ``hasResults`` is
set -- and elements that v2 does not have (``number_of_arms``, ``location_countries``, ...).

Speed matters (the whole dump is converted at ingest): the ``clinical_results`` block, often most of a
document's bytes, is cut out before parsing; children are grouped by tag in one pass; enum and date
conversions are memoised.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from trialfinder.model.enums import ENUMS
from trialfinder.model.study import NCT_RE, parse_age
from trialfinder.sources.errors import RecordError

if TYPE_CHECKING:
    from trialfinder.sources.geocode import Gazetteer

Element = ET.Element


#: Legacy spellings whose v2 value is not the upper-cased, underscore-joined text (nor that without
#: "_ASSIGNMENT", or with "PHASE_1" -> "PHASE1", which :func:`_enum` also tries).
_ENUM_TABLE: dict[str, dict[str, str]] = {
    "Status": {"unknown status": "UNKNOWN"}, "DesignAllocation": {"n/a": "NA"},
    "Phase": {"phase 0": "EARLY_PHASE1", "n/a": "NA", "early phase 1": "EARLY_PHASE1"},
    "StudyType": {"observational [patient registry]": "OBSERVATIONAL"},
    "PrimaryPurpose": {"educational/counseling/training": "ECT"}, "Sex": {"both": "ALL"},
    "AgencyClass": {"u.s. fed": "FED", "us fed": "FED", "other gov": "OTHER_GOV", "individual": "INDIV"},
    "DateType": {"anticipated": "ESTIMATED", "estimate": "ESTIMATED"},
    "EnrollmentType": {"anticipated": "ESTIMATED", "estimate": "ESTIMATED"},
    "IpdSharingInfoType": {"statistical analysis plan (sap)": "SAP", "informed consent form (icf)": "ICF",
                           "clinical study report (csr)": "CSR"},
    "WhoMasked": {"subject": "PARTICIPANT", "caregiver": "CARE_PROVIDER"},
    "DesignMasking": {"none (open label)": "NONE", "open label": "NONE"},
}
_ENUM_MEMO: dict[tuple[str, str], str | None] = {}
_NON_ALNUM = re.compile(r"[^A-Z0-9]+")


def _enum(enum_type: str, text: str | None) -> str | None:
    """The v2 value of enum ``enum_type`` for a legacy display string, or None if it has none.

    An unmappable value is dropped rather than passed through: an invalid enum value would make the whole
    record fail validation, and a missing optional field is the smaller loss.
    """
    if not text:
        return None
    key = (enum_type, text)
    if key in _ENUM_MEMO:
        return _ENUM_MEMO[key]
    low = " ".join(text.split()).lower()
    allowed = ENUMS.get(enum_type, ())
    value = _ENUM_TABLE.get(enum_type, {}).get(low)
    if value is None:
        generic = _NON_ALNUM.sub("_", low.upper()).strip("_")
        for cand in (generic, generic.removesuffix("_ASSIGNMENT"), generic.replace("PHASE_", "PHASE")):
            if cand in allowed:
                value = cand
                break
    _ENUM_MEMO[key] = value if value in allowed else None
    return _ENUM_MEMO[key]


_BOOLS = {"yes": True, "true": True, "accepts healthy volunteers": True, "no": False, "false": False}


def _bool(text: str | None) -> bool | None:
    return _BOOLS.get(text.strip().lower()) if text else None



_MONTHS = {m: i for i, m in enumerate(
    ("january", "february", "march", "april", "may", "june", "july", "august", "september", "october",
     "november", "december"), 1)}
_MONTHS.update({name[:3]: i for name, i in list(_MONTHS.items())})
_MONTHS["sept"] = 9
_DATE_MDY = re.compile(r"^([A-Za-z]+)\.?\s+(\d{1,2}),?\s+(\d{4})$")
_DATE_MY = re.compile(r"^([A-Za-z]+)\.?,?\s+(\d{4})$")
_DATE_ISO = re.compile(r"^(\d{4})(?:-(\d{2})(?:-(\d{2}))?)?$")
_DATE_MEMO: dict[str, str | None] = {}


def convert_date(text: str | None) -> str | None:
    """``"March 2016"`` -> ``"2016-03"``, ``"March 5, 2016"`` -> ``"2016-03-05"``; unparseable -> None."""
    if not text:
        return None
    if text in _DATE_MEMO:
        return _DATE_MEMO[text]
    s = " ".join(text.split())
    out: str | None = None
    m = _DATE_MDY.match(s)
    if m and m.group(1).lower() in _MONTHS:
        out = f"{m.group(3)}-{_MONTHS[m.group(1).lower()]:02d}-{int(m.group(2)):02d}"
    else:
        m = _DATE_MY.match(s)
        if m and m.group(1).lower() in _MONTHS:
            out = f"{m.group(2)}-{_MONTHS[m.group(1).lower()]:02d}"
        elif _DATE_ISO.match(s):
            out = s
    if len(_DATE_MEMO) < 100_000:
        _DATE_MEMO[text] = out
    return out


def _date_struct(el: Element | None) -> dict | None:
    date = convert_date(el.text) if el is not None else None
    if not date:
        return None
    dtype = _enum("DateType", el.get("type"))  # type: ignore[union-attr]
    return {"date": date, "type": dtype} if dtype else {"date": date}



# List markers, matched after markdown escaping (so a "*" bullet reads "\\*").
_MARKER = r"(?:(\\\*|[-•·o‣▪■◦–])|(\d{1,3}[.)])|([a-zA-Z][.)])|((?:i|ii|iii|iv|v|vi|vii|viii|ix|x)[.)]))"
_BULLET_RE = re.compile(_MARKER + r"(\s+)(?=\S)")
_SYMBOL_BULLETS = ("\\*", "•", "·")
#: a marker-like start on a line that continues a non-blank line (then the text is read line by line)
# (anchored on a newline so the scan only starts at line breaks: ~5x faster than a leading \S)
_MID_MARKER_RE = re.compile(r"\n[ \t]*\S[^\n]*\n[ \t]*" + _MARKER + r"\s")
#: a chunk: a run of non-blank lines, with the indentation of its first line
_CHUNK_RE = re.compile(r"([ \t]*)(\S[^\n]*(?:\n[ \t]*\S[^\n]*)*)")
_MD_SPECIAL = "<>[]&*^~|"


def _md(text: str) -> str:
    """Escape the characters v2 escapes in markdown fields (``\\<``, ``\\>``, ``\\[`` ...).

    (A chain of ``str.replace`` is ~7x faster than one ``re.sub`` here: most texts contain none.)
    """
    if "\\" in text:
        text = text.replace("\\", "\\\\")
    for ch in _MD_SPECIAL:
        if ch in text:
            text = text.replace(ch, "\\" + ch)
    return text


def textblock(text: str | None) -> str | None:
    """Re-flow a legacy ``<textblock>`` into the markdown the v2 API serves.

    Legacy text is hard-wrapped at ~100 columns and indented: paragraphs at the block's base column,
    list items as ``-  item`` or ``1. item`` two columns in, nested items further in, wrapped lines
    aligned under the item text, and a blank line between every item. v2 has the same text as markdown:
    wrapped lines joined, ``* item`` bullets, tight lists (one newline between items), nested items
    indented by their parent's marker width, a blank line around paragraphs, and markdown metacharacters
    escaped. Reconstructing the item structure from the columns is what makes the two agree.
    """
    if not text:
        return None
    if "\r" in text:
        text = text.replace("\r\n", "\n").replace("\r", "\n")
    text = _md(text)  # once for the whole text; the markers allow for it
    # Units of (column, text, follows a blank line). Usually each blank-line-separated chunk is one
    # paragraph or one list item; only when a marker starts a line inside a chunk is it read by line.
    units: list[tuple[int, str, bool]]
    if _MID_MARKER_RE.search(text if text.startswith("\n") else "\n" + text):
        units = []
        blank = True
        for raw in text.split("\n"):
            body = raw.strip()
            if body:
                units.append((len(raw) - len(raw.lstrip()), body, blank))
                blank = False
            else:
                blank = True
    else:
        units = [(len(m.group(1)), m.group(2), True) for m in _CHUNK_RE.finditer(text)]

    blocks: list[tuple[bool, str, list[str]]] = []  # (is list item, line prefix, text parts)
    stack: list[tuple[int, str]] = []  # open list items: (content column, prefix for their children)
    current: list[str] | None = None
    content_col = 0
    for col, body, blank in units:
        m = _BULLET_RE.match(body)
        if m is not None:
            bullet, num, alpha, roman, space = m.groups()
            if bullet == "o" and len(space) < 2:
                m = None  # a line starting with the word "o"
            elif not blank and current is not None and not (
                bullet in _SYMBOL_BULLETS or len(space) >= 2 or col != content_col
            ):
                # Inside a chunk a marker-like start is usually a wrapped line ("stage II\n - III");
                # the legacy writer's own items have "-  " (two spaces), a symbol, or their own column.
                m = None
        if m is not None:
            while stack and stack[-1][0] > col:
                stack.pop()
            prefix = stack[-1][1] if stack else ""
            marker = "*" if bullet else (num or alpha or roman)
            content_col = col + m.end()
            stack.append((content_col, prefix + " " * (len(marker) + 1)))
            current = [body[m.end():]]
            blocks.append((True, f"{prefix}{marker} ", current))
        elif current is not None and not blank and col >= content_col - 1:
            current.append(body)  # a wrapped line
        else:
            while stack and stack[-1][0] > col + 1:
                stack.pop()
            current = [body]
            content_col = col
            blocks.append((False, stack[-1][1] if stack else "", current))

    out: list[str] = []
    prev_item = False
    for is_item, prefix, parts in blocks:
        if out:
            out.append("\n" if is_item and prev_item else "\n\n")
        out.append(prefix + " ".join((parts[0] if len(parts) == 1 else " ".join(parts)).split()))
        prev_item = is_item
    return "".join(out) or None


def _plain(el: Element | None) -> str | None:
    """Text of a simple element, whitespace-trimmed; None when empty."""
    return (el.text.strip() or None) if el is not None and el.text else None


def _one_line(el: Element | None) -> str | None:
    """Text with all whitespace runs collapsed (short free text such as ``why_stopped``)."""
    return (" ".join(el.text.split()) or None) if el is not None and el.text else None


def _markup(el: Element | None) -> str | None:
    """A short markdown field (arm/outcome descriptions): CRLF -> LF, metacharacters escaped."""
    s = el.text.replace("\r\n", "\n").replace("\r", "\n").strip() if el is not None and el.text else None
    return _md(s) if s else None


def _block(el: Element | None) -> str | None:
    """The re-flowed ``<textblock>`` under ``el`` (brief_summary, criteria, ...)."""
    tb = el.find("textblock") if el is not None else None
    return textblock(tb.text if tb is not None else el.text if el is not None else None)




def _put(d: dict, key: str, value: Any) -> None:
    """Set ``d[key]`` unless the value is empty: v2 omits absent fields rather than sending nulls."""
    if value is not None and value != [] and value != {}:
        d[key] = value


def _yes_no(el: Element | None) -> bool | None:
    return _bool(_plain(el))


def _date_of(el: Element | None) -> str | None:
    return convert_date(_plain(el))


def _enum_of(enum_type: str) -> Callable[[Element | None], str | None]:
    return lambda el: _enum(enum_type, _plain(el))


Spec = tuple[tuple[str, str, Callable[[Element | None], Any]], ...]


def _fields(el: Element, spec: Spec, out: dict | None = None) -> dict:
    """``{v2 key: convert(child)}`` for each ``(child tag, v2 key, convert)`` whose value is not empty."""
    out = {} if out is None else out
    for tag, key, fn in spec:
        value = fn(el.find(tag))
        if value is not None and value != []:
            out[key] = value
    return out


def _texts(els: list[Element] | None) -> list[str]:
    return [t for t in map(_plain, els or ()) if t]


def _person(el: Element) -> str | None:
    """Legacy person elements split a name in parts; most fill only ``last_name`` with the full name."""
    parts = [_plain(el.find(t)) for t in ("first_name", "middle_name", "last_name")]
    name = " ".join(p for p in parts if p)
    degrees = _plain(el.find("degrees"))
    if degrees:
        name = f"{name}, {degrees}" if name else degrees
    return name or None


_CONTACT: Spec = (("phone", "phone", _plain), ("phone_ext", "phoneExt", _plain), ("email", "email", _plain))
_OFFICIAL: Spec = (("affiliation", "affiliation", _plain), ("role", "role", _enum_of("OfficialRole")))
_OUTCOME: Spec = (("measure", "measure", _plain), ("description", "description", _markup),
                  ("time_frame", "timeFrame", _plain))


def _contact(el: Element, role: str | None) -> dict:
    c: dict[str, Any] = {}
    _put(c, "name", _person(el))
    _put(c, "role", role)
    return _fields(el, _CONTACT, c)


def _outcomes(els: list[Element] | None) -> list[dict]:
    return [o for o in (_fields(e, _OUTCOME) for e in els or ()) if o]


def std_ages(minimum: str | None, maximum: str | None) -> list[str]:
    """v2 age groups overlapped by an age range: CHILD (< 18), ADULT (18-64), OLDER_ADULT (>= 65).

    Why computed: legacy XML has no age-group field, and the age-group filter uses it.
    """
    lo = parse_age(minimum) or 0.0
    hi = parse_age(maximum)
    hi = float("inf") if hi is None else hi
    return [g for g, yes in (("CHILD", lo < 18), ("ADULT", lo < 65 and hi >= 18), ("OLDER_ADULT", hi >= 65)) if yes]


def _masking(text: str | None) -> dict:
    """``"Quadruple (Participant, Care Provider, ...)"`` -> masking QUADRUPLE + whoMasked list."""
    if not text:
        return {}
    info: dict[str, Any] = {}
    head, _, rest = text.partition("(")
    masking = _enum("DesignMasking", text) or _enum("DesignMasking", head.strip().split(" ")[0])
    _put(info, "masking", masking)
    if rest and masking != "NONE":
        who = [_enum("WhoMasked", w.strip()) for w in rest.rstrip(")").split(",")]
        _put(info, "whoMasked", [w for w in who if w])
    return info


_OLD_DESIGN_KEYS = {"allocation", "intervention_model", "masking", "primary_purpose", "observational_model",
                    "time_perspective"}
_OLD_DESIGN_SPLIT = re.compile(r",\s*(?=[A-Za-z ]+:)")


def _old_study_design(text: str) -> dict[str, str]:
    """Pre-2017 records carry the design as one string: ``"Allocation: Randomized, Masking: ..."``."""
    pairs = (part.partition(":") for part in _OLD_DESIGN_SPLIT.split(text))
    return {k: v.strip() for k, _, v in ((k.strip().lower().replace(" ", "_"), c, v) for k, c, v in pairs)
            if k in _OLD_DESIGN_KEYS and v.strip()}


_RESULTS_OPEN = b"<clinical_results>"
_RESULTS_CLOSE = b"</clinical_results>"


def _parse(xml: bytes) -> tuple[Element, bool]:
    """Parse the document; return the root and whether it has posted results."""
    if isinstance(xml, str):
        xml = xml.encode("utf-8")
    if not isinstance(xml, (bytes, bytearray, memoryview)):
        raise RecordError(f"expected XML bytes, got {type(xml).__name__}")
    data = bytes(xml)
    if not data.strip():
        raise RecordError("empty document: not XML")
    has_results = False
    start = data.find(_RESULTS_OPEN)
    if start >= 0:
        end = data.rfind(_RESULTS_CLOSE)
        if end > start:
            # The results are not converted (only hasResults is), and they are often most of the bytes.
            has_results = True
            data = data[:start] + data[end + len(_RESULTS_CLOSE):]
    try:
        root = ET.fromstring(data)
    except ET.ParseError as exc:
        raise RecordError(f"not well-formed XML: {exc}", _nct_hint(data)) from None
    if root.tag != "clinical_study":
        raise RecordError(f"not a ClinicalTrials.gov legacy study: root element is <{root.tag}>, "
                          "expected <clinical_study>", _nct_hint(data))
    if not has_results and root.find("clinical_results") is not None:
        has_results = True
    return root, has_results


_NCT_HINT = re.compile(rb"<nct_id>\s*(NCT\d{8})\s*</nct_id>")


def _nct_hint(data: bytes) -> str | None:
    m = _NCT_HINT.search(data[:4000])
    return m.group(1).decode() if m else None



def _from(one: dict[str, Element], spec: Spec, out: dict) -> dict:
    """Like :func:`_fields` for top-level elements; a key already set is kept (so aliases come last)."""
    for tag, key, fn in spec:
        el = one.get(tag)
        if el is not None and key not in out:
            value = fn(el)
            if value is not None and value != []:
                out[key] = value
    return out


_IDENTIFICATION_TOP: Spec = (
    ("brief_title", "briefTitle", _one_line), ("official_title", "officialTitle", _one_line),
    ("acronym", "acronym", _plain),
)
#: statusModule, in v2 key order; the pre-2017 tag names (firstreceived_date, ...) come after their
#: current equivalents so that they only fill in when those are missing.
_STATUS_TOP: Spec = (
    ("verification_date", "statusVerifiedDate", _date_of), ("overall_status", "overallStatus", _enum_of("Status")),
    ("last_known_status", "lastKnownStatus", _enum_of("Status")), ("why_stopped", "whyStopped", _one_line),
    ("has_expanded_access", "expandedAccessInfo", lambda el: _expanded_access(_yes_no(el))),
    ("start_date", "startDateStruct", _date_struct), ("completion_date", "completionDateStruct", _date_struct),
    ("primary_completion_date", "primaryCompletionDateStruct", _date_struct),
    ("study_first_submitted", "studyFirstSubmitDate", _date_of), ("firstreceived_date", "studyFirstSubmitDate", _date_of),
    ("study_first_submitted_qc", "studyFirstSubmitQcDate", _date_of),
    ("study_first_posted", "studyFirstPostDateStruct", _date_struct),
    ("results_first_submitted", "resultsFirstSubmitDate", _date_of),
    ("firstreceived_results_date", "resultsFirstSubmitDate", _date_of),
    ("results_first_submitted_qc", "resultsFirstSubmitQcDate", _date_of),
    ("results_first_posted", "resultsFirstPostDateStruct", _date_struct),
    ("disposition_first_submitted", "dispFirstSubmitDate", _date_of),
    ("disposition_first_submitted_qc", "dispFirstSubmitQcDate", _date_of),
    ("disposition_first_posted", "dispFirstPostDateStruct", _date_struct),
    ("last_update_submitted", "lastUpdateSubmitDate", _date_of), ("lastchanged_date", "lastUpdateSubmitDate", _date_of),
    ("last_update_posted", "lastUpdatePostDateStruct", _date_struct),
)
#: Substitutes for a missing last_update_posted, best first (the store versions records by it).
_LAST_UPDATE_FALLBACKS = ("lastchanged_date", "last_update_submitted", "study_first_posted", "firstreceived_date",
                          "study_first_submitted")
_DESCRIPTION_TOP: Spec = (("brief_summary", "briefSummary", _block),
                          ("detailed_description", "detailedDescription", _block))


def _expanded_access(value: bool | None) -> dict | None:
    return None if value is None else {"hasExpandedAccess": value}


def _download_date(one: dict[str, Element]) -> str | None:
    header = one.get("required_header")
    dl = _plain(header.find("download_date")) if header is not None else None
    return convert_date(dl.rsplit(" on ", 1)[-1]) if dl else None


def convert(xml: bytes, geocoder: Gazetteer | None = None) -> dict:
    """Convert one legacy ``<clinical_study>`` document to an API v2 study dict.

    Raises :class:`~trialfinder.sources.errors.RecordError` (reason, and NCT id when known) for input
    that is not XML, not a ``clinical_study``, or has no valid NCT id. With a ``geocoder``, every
    location whose city it can resolve gets ``geoPoint`` plus ``geoPointDerived: "city-centroid"``.
    """
    root, has_results = _parse(xml)
    kids: dict[str, list[Element]] = {}  # tag -> all children with that tag
    one: dict[str, Element] = {}  # tag -> first child with that tag
    for el in root:
        lst = kids.get(el.tag)
        if lst is None:
            kids[el.tag] = [el]
            one[el.tag] = el
        else:
            lst.append(el)

    id_info = one.get("id_info")
    nct = _plain(id_info.find("nct_id")) if id_info is not None else None
    if not nct or id_info is None:
        raise RecordError("missing <id_info>/<nct_id>")
    if not NCT_RE.match(nct):
        raise RecordError(f"invalid NCT id {nct!r}: expected NCT followed by 8 digits", nct)

    sponsors = one.get("sponsors")
    lead = sponsors.find("lead_sponsor") if sponsors is not None else None
    lead_name = _plain(lead.find("agency")) if lead is not None else None
    lead_class = _enum("AgencyClass", _plain(lead.find("agency_class"))) if lead is not None else None

    ident = _identification(nct, id_info)
    source = _plain(one.get("source"))
    if source:
        ident["organization"] = {"fullName": source}
        if lead_class and source == lead_name:
            ident["organization"]["class"] = lead_class
    ps: dict[str, Any] = {"identificationModule": _from(one, _IDENTIFICATION_TOP, ident)}

    status = _from(one, _STATUS_TOP, {})
    if "lastUpdatePostDateStruct" not in status:
        for tag in _LAST_UPDATE_FALLBACKS:
            substitute = _date_struct(one.get(tag))
            if substitute:
                status["lastUpdatePostDateStruct"] = {"date": substitute["date"]}
                break
        else:
            download = _download_date(one)
            if not download:
                raise RecordError("no usable last-update date (<last_update_posted> or a substitute)", nct)
            status["lastUpdatePostDateStruct"] = {"date": download}
    ps["statusModule"] = status

    spons: dict[str, Any] = {}
    rp = one.get("responsible_party")
    if rp is not None:
        _put(spons, "responsibleParty", _fields(rp, _RESPONSIBLE_PARTY))
    if lead_name:
        spons["leadSponsor"] = {"name": lead_name, **({"class": lead_class} if lead_class else {})}
    collabs = []
    for c in sponsors.findall("collaborator") if sponsors is not None else ():
        name = _plain(c.find("agency"))
        if name:
            cls = _enum("AgencyClass", _plain(c.find("agency_class")))
            collabs.append({"name": name, **({"class": cls} if cls else {})})
    _put(spons, "collaborators", collabs)
    _put(ps, "sponsorCollaboratorsModule", spons)
    ov = one.get("oversight_info")
    if ov is not None:
        _put(ps, "oversightModule", _fields(ov, _OVERSIGHT))
    _put(ps, "descriptionModule", _from(one, _DESCRIPTION_TOP, {}))
    conds: dict[str, Any] = {}
    _put(conds, "conditions", _texts(kids.get("condition")))
    _put(conds, "keywords", _texts(kids.get("keyword")))
    _put(ps, "conditionsModule", conds)
    _put(ps, "designModule", _design(one))
    _put(ps, "armsInterventionsModule", _arms(kids))
    outs: dict[str, Any] = {}
    for tag, key in (("primary_outcome", "primaryOutcomes"), ("secondary_outcome", "secondaryOutcomes"),
                     ("other_outcome", "otherOutcomes")):
        _put(outs, key, _outcomes(kids.get(tag)))
    _put(ps, "outcomesModule", outs)
    _put(ps, "eligibilityModule", _eligibility(one.get("eligibility")))
    _put(ps, "contactsLocationsModule", _contacts_locations(kids, geocoder))
    _put(ps, "referencesModule", _references(kids))
    _put(ps, "ipdSharingStatementModule", _ipd(one.get("patient_data")))

    study: dict[str, Any] = {"protocolSection": ps}
    docs = _documents(one.get("provided_document_section"))
    if docs:
        study["documentSection"] = {"largeDocumentModule": {"largeDocs": docs}}
    misc: dict[str, Any] = {}
    _put(misc, "versionHolder", _download_date(one))
    removed = one.get("removed_countries")
    if removed is not None:
        _put(misc, "removedCountries", _texts(removed.findall("country")))
    derived: dict[str, Any] = {}
    _put(derived, "miscInfoModule", misc)
    for tag, key in (("condition_browse", "conditionBrowseModule"), ("intervention_browse", "interventionBrowseModule")):
        browse = one.get(tag)
        meshes = [{"term": t} for t in _texts(browse.findall("mesh_term"))] if browse is not None else []
        if meshes:
            derived[key] = {"meshes": meshes}
    _put(study, "derivedSection", derived)
    study["hasResults"] = has_results
    return study


_RESPONSIBLE_PARTY: Spec = (
    ("responsible_party_type", "type", _enum_of("ResponsiblePartyType")),
    ("investigator_full_name", "investigatorFullName", _plain), ("investigator_title", "investigatorTitle", _plain),
    ("investigator_affiliation", "investigatorAffiliation", _plain), ("name_title", "oldNameTitle", _plain),
    ("organization", "oldOrganization", _plain),
)
_OVERSIGHT: Spec = (
    ("has_dmc", "oversightHasDmc", _yes_no), ("is_fda_regulated_drug", "isFdaRegulatedDrug", _yes_no),
    ("is_fda_regulated_device", "isFdaRegulatedDevice", _yes_no),
    ("is_unapproved_device", "isUnapprovedDevice", _yes_no), ("is_ppsd", "isPpsd", _yes_no),
    ("is_us_export", "isUsExport", _yes_no),
)
_ELIGIBILITY: Spec = (
    ("criteria", "eligibilityCriteria", _block), ("healthy_volunteers", "healthyVolunteers", _yes_no),
    ("gender", "sex", _enum_of("Sex")), ("gender_based", "genderBased", _yes_no),
    ("gender_description", "genderDescription", _one_line),
)
_ELIGIBILITY_TAIL: Spec = (
    ("study_pop", "studyPopulation", _block), ("sampling_method", "samplingMethod", _enum_of("SamplingMethod")),
)
_IPD: Spec = (
    ("sharing_ipd", "ipdSharing", _enum_of("IpdSharing")), ("ipd_description", "description", _markup),
    ("ipd_time_frame", "timeFrame", _markup), ("ipd_access_criteria", "accessCriteria", _markup),
    ("ipd_url", "url", _plain),
)
_AVAIL_IPD: Spec = (("doc_id", "id", _one_line), ("doc_type", "type", _one_line), ("doc_url", "url", _one_line),
                    ("doc_comment", "comment", _one_line))
_REFERENCE: Spec = (("PMID", "pmid", _plain), ("citation", "citation", _one_line))
_LINK: Spec = (("description", "label", lambda el: _md(t) if (t := _one_line(el)) else None), ("url", "url", _plain))
_DOCUMENT: Spec = (
    ("document_has_protocol", "hasProtocol", _yes_no), ("document_has_sap", "hasSap", _yes_no),
    ("document_has_icf", "hasIcf", _yes_no), ("document_type", "label", _plain), ("document_date", "date", _date_of),
)


def _identification(nct: str, id_info: Element) -> dict:
    ident: dict[str, Any] = {"nctId": nct}
    _put(ident, "nctIdAliases", [a for a in _texts(id_info.findall("nct_alias")) if NCT_RE.match(a)])
    org_id = _plain(id_info.find("org_study_id"))
    if org_id:
        ident["orgStudyIdInfo"] = {"id": org_id}
    _put(ident, "secondaryIdInfos", [{"id": s} for s in _texts(id_info.findall("secondary_id"))])
    return ident


_DESIGN_INFO = (("allocation", "allocation", "DesignAllocation"),
                ("intervention_model", "interventionModel", "InterventionalAssignment"),
                ("primary_purpose", "primaryPurpose", "PrimaryPurpose"),
                ("observational_model", "observationalModel", "ObservationalModel"),
                ("time_perspective", "timePerspective", "DesignTimePerspective"))
_EXPANDED_ACCESS_TYPES: Spec = (("expanded_access_type_individual", "individual", _yes_no),
                                ("expanded_access_type_intermediate", "intermediate", _yes_no),
                                ("expanded_access_type_treatment", "treatment", _yes_no))


def _design(one: dict[str, Element]) -> dict:
    design: dict[str, Any] = {}
    st_text = _plain(one.get("study_type"))
    _put(design, "studyType", _enum("StudyType", st_text))
    eai = one.get("expanded_access_info")
    if eai is not None:
        _put(design, "expandedAccessTypes", _fields(eai, _EXPANDED_ACCESS_TYPES))
    if design.get("studyType") == "OBSERVATIONAL" and st_text:
        design["patientRegistry"] = "registry" in st_text.lower()
    _put(design, "targetDuration", _plain(one.get("target_duration")))
    phase_text = _plain(one.get("phase"))
    if phase_text:
        whole = _enum("Phase", phase_text)  # "N/A", "Phase 2"; else "Phase 1/Phase 2" is split
        phases = [whole] if whole else [_enum("Phase", p.strip()) for p in phase_text.split("/")]
        _put(design, "phases", [p for p in phases if p])
    sdi = one.get("study_design_info")
    fields: dict[str, str] = {}
    if sdi is not None:
        fields = {el.tag: el.text.strip() for el in sdi if el.text and el.text.strip()}
    elif one.get("study_design") is not None:
        fields = _old_study_design(_plain(one["study_design"]) or "")
    info: dict[str, Any] = {}
    for tag, key, enum_type in _DESIGN_INFO:
        _put(info, key, _enum(enum_type, fields.get(tag)))
    if fields.get("intervention_model_description"):
        info["interventionModelDescription"] = _md(fields["intervention_model_description"].replace("\r\n", "\n"))
    masking = _masking(fields.get("masking"))
    if fields.get("masking_description"):
        masking["maskingDescription"] = _md(fields["masking_description"])
    _put(info, "maskingInfo", masking)
    _put(design, "designInfo", info)
    bio: dict[str, Any] = {}
    _put(bio, "retention", _enum("BioSpecRetention", _plain(one.get("biospec_retention"))))
    _put(bio, "description", _block(one.get("biospec_descr")))
    _put(design, "bioSpec", bio)
    enroll = one.get("enrollment")
    if enroll is not None and enroll.text and enroll.text.strip().isdecimal():  # what int() reads ("²" is a digit)
        design["enrollmentInfo"] = {"count": int(enroll.text.strip())}
        _put(design["enrollmentInfo"], "type", _enum("EnrollmentType", enroll.get("type")))
    return design


_INTERVENTION: Spec = (("intervention_type", "type", _enum_of("InterventionType")),
                       ("intervention_name", "name", _plain), ("description", "description", _markup))
_ARM: Spec = (("arm_group_label", "label", _plain), ("arm_group_type", "type", _enum_of("ArmGroupType")),
              ("description", "description", _markup))


def _arms(kids: dict[str, list[Element]]) -> dict:
    arms_m: dict[str, Any] = {}
    interventions = []
    names_by_arm: dict[str, list[str]] = {}
    for iv in kids.get("intervention") or ():
        entry = _fields(iv, _INTERVENTION)
        labels = _texts(iv.findall("arm_group_label"))
        _put(entry, "armGroupLabels", labels)
        _put(entry, "otherNames", _texts(iv.findall("other_name")))
        if entry:
            interventions.append(entry)
        # v2 lists each arm's interventions as "<Type display name>: <name>", e.g. "Drug: Palbociclib"
        type_text, name = _plain(iv.find("intervention_type")), entry.get("name")
        display = f"{type_text}: {name}" if type_text and name else name
        if display:
            for label in labels:
                names_by_arm.setdefault(label, []).append(display)
    arms = [_fields(ag, _ARM) for ag in kids.get("arm_group") or ()]
    for arm in arms:
        _put(arm, "interventionNames", names_by_arm.get(arm.get("label", ""), []))
    _put(arms_m, "armGroups", [a for a in arms if a])
    _put(arms_m, "interventions", interventions)
    return arms_m


def _eligibility(el: Element | None) -> dict:
    if el is None:
        return {}
    elig = _fields(el, _ELIGIBILITY)
    ages: list[str | None] = []
    for tag, key in (("minimum_age", "minimumAge"), ("maximum_age", "maximumAge")):
        age = _one_line(el.find(tag))
        if age and age.upper() not in ("N/A", "NA", "NONE"):
            elig[key] = age
            ages.append(age)
        else:
            ages.append(None)
    given = [a for a in (_enum("StandardAge", t) for t in _texts(el.findall("std_age"))) if a]
    _put(elig, "stdAges", given or std_ages(ages[0], ages[1]))
    return _fields(el, _ELIGIBILITY_TAIL, elig)


def _contacts_locations(kids: dict[str, list[Element]], geocoder: Gazetteer | None) -> dict:
    cl: dict[str, Any] = {}
    central = [_contact(c, "CONTACT") for tag in ("overall_contact", "overall_contact_backup")
               for c in kids.get(tag) or ()]
    _put(cl, "centralContacts", [c for c in central if c.get("name") or c.get("email") or c.get("phone")])
    officials = [_fields(o, _OFFICIAL, {"name": _person(o)}) for o in kids.get("overall_official") or ()]
    _put(cl, "overallOfficials", [{k: v for k, v in o.items() if v} for o in officials if any(o.values())])
    locations = []
    for loc in kids.get("location") or ():
        entry = _location(loc)
        if geocoder is not None and "city" in entry:
            point = geocoder.locate(entry["city"], entry.get("state"), entry.get("country"))
            if point:
                entry["geoPoint"] = {"lat": point[0], "lon": point[1]}
                entry["geoPointDerived"] = "city-centroid"
        if entry:
            locations.append(entry)
    _put(cl, "locations", locations)
    return cl


_ADDRESS_KEYS = frozenset({"city", "state", "zip", "country"})


def _location(loc: Element) -> dict:
    """One ``<location>``; children are walked once (big trials have hundreds of sites)."""
    entry: dict[str, Any] = {}
    contacts: list[dict] = []
    investigators: list[dict] = []
    for ch in loc:
        tag = ch.tag
        if tag == "facility":
            for f in ch:
                if f.tag == "name":
                    _put(entry, "facility", _plain(f))
                elif f.tag == "address":
                    for a in f:
                        if a.tag in _ADDRESS_KEYS:
                            _put(entry, a.tag, _plain(a))
        elif tag == "status":
            _put(entry, "status", _enum("RecruitmentStatus", _plain(ch)))
        elif tag == "contact" or tag == "contact_backup":
            c = _contact(ch, "CONTACT")
            if len(c) > 1:
                contacts.append(c)
        elif tag == "investigator":
            c = _contact(ch, _enum("ContactRole", _plain(ch.find("role"))))
            if c.get("name"):
                investigators.append(c)
    # v2 field order: facility, status, city, state, zip, country, contacts
    if "status" in entry and len(entry) > 2:
        entry = {k: entry[k] for k in ("facility", "status", "city", "state", "zip", "country") if k in entry}
    if contacts or investigators:
        entry["contacts"] = contacts + investigators
    return entry


def _references(kids: dict[str, list[Element]]) -> dict:
    refs_m: dict[str, Any] = {}
    refs = []
    for tag, rtype in (("reference", "BACKGROUND"), ("results_reference", "RESULT")):
        for r in kids.get(tag) or ():
            ref = _fields(r, _REFERENCE[1:], _fields(r, _REFERENCE[:1]) | {"type": rtype})
            if len(ref) > 1:
                refs.append(ref)
    _put(refs_m, "references", refs)
    links = [_fields(link, _LINK) for link in kids.get("link") or ()]
    _put(refs_m, "seeAlsoLinks", [x for x in links if "url" in x])
    ipds: list[dict] = []
    for docs in kids.get("study_docs") or ():
        ipds.extend(entry for entry in (_fields(d, _AVAIL_IPD) for d in docs.findall("study_doc")) if entry)
    _put(refs_m, "availIpds", ipds)
    return refs_m


def _ipd(el: Element | None) -> dict:
    if el is None:
        return {}
    ipd = _fields(el, _IPD[:2])
    _put(ipd, "infoTypes", [t for t in (_enum("IpdSharingInfoType", x) for x in _texts(el.findall("ipd_info_type"))) if t])
    return _fields(el, _IPD[2:], ipd)  # (v2 key order)


def _documents(el: Element | None) -> list[dict]:
    docs: list[dict] = []
    for d in el.findall("provided_document") if el is not None else ():
        doc: dict[str, Any] = {}
        url = _plain(d.find("document_url"))
        filename = url.rsplit("/", 1)[-1] if url else None
        if filename:
            # "Prot_SAP_000.pdf" -> typeAbbrev "Prot_SAP", as v2 has it
            doc["typeAbbrev"] = re.sub(r"_\d+\.\w+$", "", filename)
        _fields(d, _DOCUMENT, doc)
        _put(doc, "filename", filename)
        if doc:
            docs.append(doc)
    return docs
