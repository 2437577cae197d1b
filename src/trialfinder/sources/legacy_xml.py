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
from typing import TYPE_CHECKING, Any

from trialfinder.model.enums import ENUMS
from trialfinder.model.study import NCT_RE, parse_age
from trialfinder.sources.errors import RecordError

if TYPE_CHECKING:
    from trialfinder.sources.geocode import Gazetteer

Element = ET.Element

# ---------------------------------------------------------------------------------------------- enums

#: Legacy spellings whose v2 value is not simply the upper-cased, underscore-joined text.
_ENUM_TABLE: dict[str, dict[str, str]] = {
    "Status": {"unknown status": "UNKNOWN", "unknown": "UNKNOWN"},
    "RecruitmentStatus": {},
    "Phase": {
        "phase 0": "EARLY_PHASE1", "early phase 1": "EARLY_PHASE1", "phase 1": "PHASE1", "phase 2": "PHASE2",
        "phase 3": "PHASE3", "phase 4": "PHASE4", "n/a": "NA", "na": "NA",
    },
    "StudyType": {"observational [patient registry]": "OBSERVATIONAL", "expanded access": "EXPANDED_ACCESS"},
    "DesignAllocation": {"n/a": "NA", "non-randomized": "NON_RANDOMIZED"},
    "InterventionalAssignment": {
        "single group assignment": "SINGLE_GROUP", "parallel assignment": "PARALLEL",
        "crossover assignment": "CROSSOVER", "factorial assignment": "FACTORIAL",
        "sequential assignment": "SEQUENTIAL",
    },
    "PrimaryPurpose": {"educational/counseling/training": "ECT"},
    "AgencyClass": {"u.s. fed": "FED", "us fed": "FED", "other gov": "OTHER_GOV", "individual": "INDIV"},
    "Sex": {"both": "ALL"},
    "DateType": {"actual": "ACTUAL", "anticipated": "ESTIMATED", "estimate": "ESTIMATED", "estimated": "ESTIMATED"},
    "EnrollmentType": {"actual": "ACTUAL", "anticipated": "ESTIMATED", "estimate": "ESTIMATED"},
    "IpdSharingInfoType": {
        "study protocol": "STUDY_PROTOCOL", "statistical analysis plan (sap)": "SAP",
        "informed consent form (icf)": "ICF", "clinical study report (csr)": "CSR", "analytic code": "ANALYTIC_CODE",
    },
    "WhoMasked": {
        "participant": "PARTICIPANT", "subject": "PARTICIPANT", "care provider": "CARE_PROVIDER",
        "caregiver": "CARE_PROVIDER", "investigator": "INVESTIGATOR", "outcomes assessor": "OUTCOMES_ASSESSOR",
    },
    "DesignMasking": {"none (open label)": "NONE", "open label": "NONE", "none": "NONE"},
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
    value = _ENUM_TABLE.get(enum_type, {}).get(low)
    if value is None:
        value = _NON_ALNUM.sub("_", low.upper()).strip("_")
    if value not in ENUMS.get(enum_type, ()):
        value = None
    _ENUM_MEMO[key] = value
    return value


def _bool(text: str | None) -> bool | None:
    if not text:
        return None
    low = text.strip().lower()
    if low in ("yes", "true", "accepts healthy volunteers"):
        return True
    if low in ("no", "false"):
        return False
    return None


# ---------------------------------------------------------------------------------------------- dates

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
    if el is None:
        return None
    date = convert_date(el.text)
    if not date:
        return None
    struct = {"date": date}
    dtype = _enum("DateType", el.get("type"))
    if dtype:
        struct["type"] = dtype
    return struct


# ---------------------------------------------------------------------------------------------- text

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
    if el is None or el.text is None:
        return None
    s = el.text.strip()
    return s or None


def _one_line(el: Element | None) -> str | None:
    """Text with all whitespace runs collapsed (short free text such as ``why_stopped``)."""
    if el is None or el.text is None:
        return None
    s = " ".join(el.text.split())
    return s or None


def _markup(el: Element | None) -> str | None:
    """A short markdown field (arm/outcome descriptions): CRLF -> LF, metacharacters escaped."""
    if el is None or el.text is None:
        return None
    s = el.text.replace("\r\n", "\n").replace("\r", "\n").strip()
    return _md(s) if s else None


def _block(el: Element | None) -> str | None:
    """The re-flowed ``<textblock>`` under ``el`` (brief_summary, criteria, ...)."""
    if el is None:
        return None
    tb = el.find("textblock")
    return textblock(tb.text if tb is not None else el.text)


# ---------------------------------------------------------------------------------------------- helpers


def _put(d: dict, key: str, value: Any) -> None:
    """Set ``d[key]`` unless the value is empty: v2 omits absent fields rather than sending nulls."""
    if value is not None and value != [] and value != {}:
        d[key] = value


def _texts(els: list[Element] | None) -> list[str]:
    out = []
    for e in els or ():
        t = _plain(e)
        if t:
            out.append(t)
    return out


def _person(el: Element) -> str | None:
    """Legacy person elements split a name in parts; most fill only ``last_name`` with the full name."""
    parts = [_plain(el.find(t)) for t in ("first_name", "middle_name", "last_name")]
    name = " ".join(p for p in parts if p)
    degrees = _plain(el.find("degrees"))
    if degrees:
        name = f"{name}, {degrees}" if name else degrees
    return name or None


def _contact(el: Element, role: str | None) -> dict:
    c: dict[str, Any] = {}
    _put(c, "name", _person(el))
    _put(c, "role", role)
    _put(c, "phone", _plain(el.find("phone")))
    _put(c, "phoneExt", _plain(el.find("phone_ext")))
    _put(c, "email", _plain(el.find("email")))
    return c


def _outcomes(els: list[Element] | None) -> list[dict]:
    out = []
    for e in els or ():
        o: dict[str, Any] = {}
        _put(o, "measure", _plain(e.find("measure")))
        _put(o, "description", _markup(e.find("description")))
        _put(o, "timeFrame", _plain(e.find("time_frame")))
        if o:
            out.append(o)
    return out


def std_ages(minimum: str | None, maximum: str | None) -> list[str]:
    """v2 age groups overlapped by an age range: CHILD (< 18), ADULT (18-64), OLDER_ADULT (>= 65).

    Why computed: legacy XML has no age-group field, and the age-group filter uses it.
    """
    lo = parse_age(minimum) or 0.0
    hi = parse_age(maximum)
    hi = float("inf") if hi is None else hi
    groups = []
    if lo < 18:
        groups.append("CHILD")
    if lo < 65 and hi >= 18:
        groups.append("ADULT")
    if hi >= 65:
        groups.append("OLDER_ADULT")
    return groups


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


_OLD_DESIGN_KEYS = {
    "allocation": "allocation", "intervention model": "intervention_model", "masking": "masking",
    "primary purpose": "primary_purpose", "observational model": "observational_model",
    "time perspective": "time_perspective",
}
_OLD_DESIGN_RE = re.compile(r"(?:^|,\s*)(" + "|".join(map(re.escape, _OLD_DESIGN_KEYS)) + r"|[A-Za-z ]+?):\s*", re.I)


def _old_study_design(text: str) -> dict[str, str]:
    """Pre-2017 records carry the design as one string: ``"Allocation: Randomized, Masking: ..."``."""
    parts = _OLD_DESIGN_RE.split(text)
    out: dict[str, str] = {}
    for i in range(1, len(parts) - 1, 2):
        key = _OLD_DESIGN_KEYS.get(parts[i].strip().lower())
        if key:
            out[key] = parts[i + 1].strip().rstrip(",")
    return out


# ---------------------------------------------------------------------------------------------- parsing

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


# ---------------------------------------------------------------------------------------------- convert

#: statusModule dates: (legacy tag, pre-2017 legacy tag, v2 key, is a DateStruct with a type)
_STATUS_DATES = (
    ("start_date", None, "startDateStruct", True),
    ("primary_completion_date", None, "primaryCompletionDateStruct", True),
    ("completion_date", None, "completionDateStruct", True),
    ("study_first_submitted", "firstreceived_date", "studyFirstSubmitDate", False),
    ("study_first_submitted_qc", None, "studyFirstSubmitQcDate", False),
    ("study_first_posted", None, "studyFirstPostDateStruct", True),
    ("results_first_submitted", "firstreceived_results_date", "resultsFirstSubmitDate", False),
    ("results_first_submitted_qc", None, "resultsFirstSubmitQcDate", False),
    ("results_first_posted", None, "resultsFirstPostDateStruct", True),
    ("disposition_first_submitted", None, "dispFirstSubmitDate", False),
    ("disposition_first_submitted_qc", None, "dispFirstSubmitQcDate", False),
    ("disposition_first_posted", None, "dispFirstPostDateStruct", True),
    ("last_update_submitted", "lastchanged_date", "lastUpdateSubmitDate", False),
)


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

    def first(*tags: str) -> Element | None:
        # (never ``a or b`` on elements: an element without children is falsy)
        for tag in tags:
            el = one.get(tag)
            if el is not None:
                return el
        return None

    id_info = first("id_info")
    nct = _plain(id_info.find("nct_id")) if id_info is not None else None
    if not nct:
        raise RecordError("missing <id_info>/<nct_id>")
    if not NCT_RE.match(nct):
        raise RecordError(f"invalid NCT id {nct!r}: expected NCT followed by 8 digits", nct)

    ps: dict[str, Any] = {}
    sponsors = first("sponsors")
    lead = sponsors.find("lead_sponsor") if sponsors is not None else None
    lead_name = _plain(lead.find("agency")) if lead is not None else None
    lead_class = _enum("AgencyClass", _plain(lead.find("agency_class"))) if lead is not None else None

    # identification
    ident = _identification(nct, id_info) if id_info is not None else {"nctId": nct}
    source = _plain(first("source"))
    if source:
        org = {"fullName": source}
        if lead_class and source == lead_name:
            org["class"] = lead_class
        ident["organization"] = org
    _put(ident, "briefTitle", _one_line(first("brief_title")))
    _put(ident, "officialTitle", _one_line(first("official_title")))
    _put(ident, "acronym", _plain(first("acronym")))
    ps["identificationModule"] = ident

    # status
    status: dict[str, Any] = {}
    _put(status, "statusVerifiedDate", convert_date(_plain(first("verification_date"))))
    _put(status, "overallStatus", _enum("Status", _plain(first("overall_status"))))
    _put(status, "lastKnownStatus", _enum("Status", _plain(first("last_known_status"))))
    _put(status, "whyStopped", _one_line(first("why_stopped")))
    hea = _bool(_plain(first("has_expanded_access")))
    if hea is not None:
        status["expandedAccessInfo"] = {"hasExpandedAccess": hea}
    eai = first("expanded_access_info")
    if eai is not None and "expandedAccessInfo" in status:
        alias = _plain(eai.find("expanded_access_nct_id"))
        if alias and NCT_RE.match(alias):
            status["expandedAccessInfo"]["nctId"] = alias
    for tag, alias, key, struct in _STATUS_DATES:
        el = one.get(tag)
        if el is None and alias:
            el = one.get(alias)
        if el is not None:
            if struct:
                _put(status, key, _date_struct(el))
            else:
                _put(status, key, convert_date(el.text))
    last_posted = _date_struct(first("last_update_posted"))
    if last_posted is None:
        # The store versions records by this date, so it is always set: fall back to the best substitute.
        for tag in ("lastchanged_date", "last_update_submitted", "study_first_posted", "firstreceived_date",
                    "study_first_submitted"):
            last_posted = _date_struct(first(tag))
            if last_posted:
                last_posted.pop("type", None)
                break
    if last_posted is None and first("required_header") is not None:
        dl = _plain(one["required_header"].find("download_date"))
        date = convert_date(dl.rsplit(" on ", 1)[-1]) if dl else None
        last_posted = {"date": date} if date else None
    if last_posted is None:
        raise RecordError("no usable last-update date (<last_update_posted> or a substitute)", nct)
    status["lastUpdatePostDateStruct"] = last_posted
    ps["statusModule"] = status

    # sponsors
    spons: dict[str, Any] = {}
    rp = first("responsible_party")
    if rp is not None:
        party: dict[str, Any] = {}
        _put(party, "type", _enum("ResponsiblePartyType", _plain(rp.find("responsible_party_type"))))
        _put(party, "investigatorFullName", _plain(rp.find("investigator_full_name")))
        _put(party, "investigatorTitle", _plain(rp.find("investigator_title")))
        _put(party, "investigatorAffiliation", _plain(rp.find("investigator_affiliation")))
        _put(party, "oldNameTitle", _plain(rp.find("name_title")))
        _put(party, "oldOrganization", _plain(rp.find("organization")))
        _put(spons, "responsibleParty", party)
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

    # oversight
    ov = first("oversight_info")
    if ov is not None:
        oversight: dict[str, Any] = {}
        for tag, key in (("has_dmc", "oversightHasDmc"), ("is_fda_regulated_drug", "isFdaRegulatedDrug"),
                         ("is_fda_regulated_device", "isFdaRegulatedDevice"),
                         ("is_unapproved_device", "isUnapprovedDevice"), ("is_ppsd", "isPpsd"),
                         ("is_us_export", "isUsExport")):
            _put(oversight, key, _bool(_plain(ov.find(tag))))
        _put(ps, "oversightModule", oversight)

    # description
    desc: dict[str, Any] = {}
    _put(desc, "briefSummary", _block(first("brief_summary")))
    _put(desc, "detailedDescription", _block(first("detailed_description")))
    _put(ps, "descriptionModule", desc)

    # conditions
    conds: dict[str, Any] = {}
    _put(conds, "conditions", _texts(kids.get("condition")))
    _put(conds, "keywords", _texts(kids.get("keyword")))
    _put(ps, "conditionsModule", conds)

    # design
    ps_design = _design(kids, first)
    _put(ps, "designModule", ps_design)

    # arms and interventions
    _put(ps, "armsInterventionsModule", _arms(kids))

    # outcomes
    outs: dict[str, Any] = {}
    _put(outs, "primaryOutcomes", _outcomes(kids.get("primary_outcome")))
    _put(outs, "secondaryOutcomes", _outcomes(kids.get("secondary_outcome")))
    _put(outs, "otherOutcomes", _outcomes(kids.get("other_outcome")))
    _put(ps, "outcomesModule", outs)

    # eligibility
    _put(ps, "eligibilityModule", _eligibility(first("eligibility")))

    # contacts and locations
    _put(ps, "contactsLocationsModule", _contacts_locations(kids, geocoder))

    # references
    _put(ps, "referencesModule", _references(kids))

    # IPD sharing
    _put(ps, "ipdSharingStatementModule", _ipd(first("patient_data")))

    study: dict[str, Any] = {"protocolSection": ps}
    docs = _documents(first("provided_document_section"))
    if docs:
        study["documentSection"] = {"largeDocumentModule": {"largeDocs": docs}}
    derived: dict[str, Any] = {}
    misc: dict[str, Any] = {}
    header = first("required_header")
    if header is not None:
        dl = _plain(header.find("download_date"))
        if dl:
            _put(misc, "versionHolder", convert_date(dl.rsplit(" on ", 1)[-1]))
    removed = first("removed_countries")
    if removed is not None:
        _put(misc, "removedCountries", _texts(removed.findall("country")))
    _put(derived, "miscInfoModule", misc)
    for tag, key in (("condition_browse", "conditionBrowseModule"), ("intervention_browse", "interventionBrowseModule")):
        browse = first(tag)
        if browse is not None:
            meshes = [{"term": t} for t in _texts(browse.findall("mesh_term"))]
            if meshes:
                derived[key] = {"meshes": meshes}
    _put(study, "derivedSection", derived)
    study["hasResults"] = has_results
    return study


def _identification(nct: str, id_info: Element) -> dict:
    ident: dict[str, Any] = {"nctId": nct}
    _put(ident, "nctIdAliases", [a for a in _texts(id_info.findall("nct_alias")) if NCT_RE.match(a)])
    org_id = _plain(id_info.find("org_study_id"))
    if org_id:
        ident["orgStudyIdInfo"] = {"id": org_id}
    _put(ident, "secondaryIdInfos", [{"id": s} for s in _texts(id_info.findall("secondary_id"))])
    return ident


def _design(kids: dict[str, list[Element]], first: Any) -> dict:
    design: dict[str, Any] = {}
    st_text = _plain(first("study_type"))
    study_type = _enum("StudyType", st_text)
    _put(design, "studyType", study_type)
    if study_type == "OBSERVATIONAL" and st_text:
        design["patientRegistry"] = "registry" in st_text.lower()
    _put(design, "targetDuration", _plain(first("target_duration")))
    phase_text = _plain(first("phase"))
    if phase_text:
        whole = _enum("Phase", phase_text)  # "N/A", "Phase 2"; else "Phase 1/Phase 2" is split
        phases = [whole] if whole else [_enum("Phase", p.strip()) for p in phase_text.split("/")]
        _put(design, "phases", [p for p in phases if p])
    sdi = first("study_design_info")
    fields: dict[str, str] = {}
    if sdi is not None:
        for el in sdi:
            t = _plain(el)
            if t:
                fields[el.tag] = t
    else:
        old = _plain(first("study_design"))
        if old:
            fields = _old_study_design(old)
    info: dict[str, Any] = {}
    _put(info, "allocation", _enum("DesignAllocation", fields.get("allocation")))
    _put(info, "interventionModel", _enum("InterventionalAssignment", fields.get("intervention_model")))
    if fields.get("intervention_model_description"):
        info["interventionModelDescription"] = _md(fields["intervention_model_description"].replace("\r\n", "\n"))
    _put(info, "primaryPurpose", _enum("PrimaryPurpose", fields.get("primary_purpose")))
    _put(info, "observationalModel", _enum("ObservationalModel", fields.get("observational_model")))
    _put(info, "timePerspective", _enum("DesignTimePerspective", fields.get("time_perspective")))
    masking = _masking(fields.get("masking"))
    if fields.get("masking_description"):
        masking["maskingDescription"] = _md(fields["masking_description"])
    _put(info, "maskingInfo", masking)
    _put(design, "designInfo", info)
    bio: dict[str, Any] = {}
    _put(bio, "retention", _enum("BioSpecRetention", _plain(first("biospec_retention"))))
    _put(bio, "description", _block(first("biospec_descr")))
    _put(design, "bioSpec", bio)
    enroll = first("enrollment")
    if enroll is not None and enroll.text and enroll.text.strip().isdigit():
        ei: dict[str, Any] = {"count": int(enroll.text.strip())}
        _put(ei, "type", _enum("EnrollmentType", enroll.get("type")))
        design["enrollmentInfo"] = ei
    eai = first("expanded_access_info")
    if eai is not None:
        types: dict[str, Any] = {}
        for tag, key in (("expanded_access_type_individual", "individual"),
                         ("expanded_access_type_intermediate", "intermediate"),
                         ("expanded_access_type_treatment", "treatment")):
            _put(types, key, _bool(_plain(eai.find(tag))))
        _put(design, "expandedAccessTypes", types)
    return design


def _arms(kids: dict[str, list[Element]]) -> dict:
    arms_m: dict[str, Any] = {}
    interventions = []
    names_by_arm: dict[str, list[str]] = {}
    for iv in kids.get("intervention") or ():
        entry: dict[str, Any] = {}
        type_text = _plain(iv.find("intervention_type"))
        name = _plain(iv.find("intervention_name"))
        _put(entry, "type", _enum("InterventionType", type_text))
        _put(entry, "name", name)
        _put(entry, "description", _markup(iv.find("description")))
        labels = _texts(iv.findall("arm_group_label"))
        _put(entry, "armGroupLabels", labels)
        _put(entry, "otherNames", _texts(iv.findall("other_name")))
        if entry:
            interventions.append(entry)
        # v2 lists each arm's interventions as "<Type display name>: <name>", e.g. "Drug: Palbociclib"
        display = f"{type_text}: {name}" if type_text and name else name
        for label in labels:
            if display:
                names_by_arm.setdefault(label, []).append(display)
    arms = []
    for ag in kids.get("arm_group") or ():
        arm: dict[str, Any] = {}
        label = _plain(ag.find("arm_group_label"))
        _put(arm, "label", label)
        _put(arm, "type", _enum("ArmGroupType", _plain(ag.find("arm_group_type"))))
        _put(arm, "description", _markup(ag.find("description")))
        _put(arm, "interventionNames", names_by_arm.get(label or "", []))
        if arm:
            arms.append(arm)
    _put(arms_m, "armGroups", arms)
    _put(arms_m, "interventions", interventions)
    return arms_m


def _eligibility(el: Element | None) -> dict:
    if el is None:
        return {}
    elig: dict[str, Any] = {}
    _put(elig, "eligibilityCriteria", _block(el.find("criteria")))
    _put(elig, "healthyVolunteers", _bool(_plain(el.find("healthy_volunteers"))))
    _put(elig, "sex", _enum("Sex", _plain(el.find("gender"))))
    _put(elig, "genderBased", _bool(_plain(el.find("gender_based"))))
    _put(elig, "genderDescription", _one_line(el.find("gender_description")))
    ages = []
    for tag, key in (("minimum_age", "minimumAge"), ("maximum_age", "maximumAge")):
        age = _one_line(el.find(tag))
        if age and age.upper() not in ("N/A", "NA", "NONE"):
            elig[key] = age
            ages.append(age)
        else:
            ages.append(None)
    given = [a for a in (_enum("StandardAge", t) for t in _texts(el.findall("std_age"))) if a]
    _put(elig, "stdAges", given or std_ages(ages[0], ages[1]))
    _put(elig, "studyPopulation", _block(el.find("study_pop")))
    _put(elig, "samplingMethod", _enum("SamplingMethod", _plain(el.find("sampling_method"))))
    return elig


def _contacts_locations(kids: dict[str, list[Element]], geocoder: Gazetteer | None) -> dict:
    cl: dict[str, Any] = {}
    central = [_contact(c, "CONTACT") for tag in ("overall_contact", "overall_contact_backup")
               for c in kids.get(tag) or ()]
    _put(cl, "centralContacts", [c for c in central if c.get("name") or c.get("email") or c.get("phone")])
    officials = []
    for o in kids.get("overall_official") or ():
        off: dict[str, Any] = {}
        _put(off, "name", _person(o))
        _put(off, "affiliation", _plain(o.find("affiliation")))
        _put(off, "role", _enum("OfficialRole", _plain(o.find("role"))))
        if off:
            officials.append(off)
    _put(cl, "overallOfficials", officials)
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


_ADDRESS_KEYS = {"city": "city", "state": "state", "zip": "zip", "country": "country"}


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
                    if f.text and f.text.strip():
                        entry["facility"] = f.text.strip()
                elif f.tag == "address":
                    for a in f:
                        key = _ADDRESS_KEYS.get(a.tag)
                        if key and a.text:
                            value = a.text.strip()
                            if value:
                                entry[key] = value
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
            ref: dict[str, Any] = {}
            _put(ref, "pmid", _plain(r.find("PMID")))
            ref["type"] = rtype
            _put(ref, "citation", _one_line(r.find("citation")))
            if len(ref) > 1:
                refs.append(ref)
    _put(refs_m, "references", refs)
    links = []
    for link in kids.get("link") or ():
        entry: dict[str, Any] = {}
        desc = _one_line(link.find("description"))
        _put(entry, "label", _md(desc) if desc else None)
        _put(entry, "url", _plain(link.find("url")))
        if entry.get("url"):
            links.append(entry)
    _put(refs_m, "seeAlsoLinks", links)
    ipds = []
    for docs in kids.get("study_docs") or ():
        for doc in docs.findall("study_doc"):
            entry = {}
            for tag, key in (("doc_id", "id"), ("doc_type", "type"), ("doc_url", "url"), ("doc_comment", "comment")):
                _put(entry, key, _one_line(doc.find(tag)))
            if entry:
                ipds.append(entry)
    _put(refs_m, "availIpds", ipds)
    return refs_m


def _ipd(el: Element | None) -> dict:
    if el is None:
        return {}
    ipd: dict[str, Any] = {}
    _put(ipd, "ipdSharing", _enum("IpdSharing", _plain(el.find("sharing_ipd"))))
    _put(ipd, "description", _markup(el.find("ipd_description")))
    types = [_enum("IpdSharingInfoType", t) for t in _texts(el.findall("ipd_info_type"))]
    _put(ipd, "infoTypes", [t for t in types if t])
    _put(ipd, "timeFrame", _markup(el.find("ipd_time_frame")))
    _put(ipd, "accessCriteria", _markup(el.find("ipd_access_criteria")))
    _put(ipd, "url", _plain(el.find("ipd_url")))
    return ipd


def _documents(el: Element | None) -> list[dict]:
    if el is None:
        return []
    docs = []
    for d in el.findall("provided_document"):
        doc: dict[str, Any] = {}
        url = _plain(d.find("document_url"))
        filename = url.rsplit("/", 1)[-1] if url else None
        if filename:
            # "Prot_SAP_000.pdf" -> typeAbbrev "Prot_SAP", as v2 has it
            doc["typeAbbrev"] = re.sub(r"_\d+\.\w+$", "", filename)
        _put(doc, "hasProtocol", _bool(_plain(d.find("document_has_protocol"))))
        _put(doc, "hasSap", _bool(_plain(d.find("document_has_sap"))))
        _put(doc, "hasIcf", _bool(_plain(d.find("document_has_icf"))))
        _put(doc, "label", _plain(d.find("document_type")))
        _put(doc, "date", convert_date(_plain(d.find("document_date"))))
        _put(doc, "filename", filename)
        if doc:
            docs.append(doc)
    return docs
