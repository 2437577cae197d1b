"""Split free-text eligibility criteria into inclusion and exclusion items.

Registries write criteria in many shapes: API v2 markdown ("Inclusion Criteria:" + ``*`` bullets),
legacy XML text blocks (hard-wrapped at ~100 columns, ``-`` bullets, NCI "DISEASE CHARACTERISTICS:"
sub-headings, AIDS-trial "Excluded within 4 weeks of study entry:" groups), numbered lists, and plain
paragraphs without any bullets.  Matching needs one stable shape, so this module turns all of them into
a :class:`CriteriaSplit`: two lists of :class:`CriterionItem` trees that keep the numbering, nesting
("one of the following" lists become children) and the preambles and notes around them.

The parser is deliberately forgiving: it never raises on odd text, and whatever it cannot place goes
to ``notes`` rather than being dropped, because a silently lost criterion is worse than a misplaced one.
"""

from __future__ import annotations

import re
import textwrap
from dataclasses import dataclass, field
from typing import Any

__all__ = ["CriteriaSplit", "CriterionItem", "split_criteria"]


@dataclass
class CriterionItem:
    """One criterion; ``children`` holds its sub-bullets (e.g. the options of "one of the following")."""

    text: str
    number: str | None = None
    depth: int = 0
    children: list[CriterionItem] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        """Plain-JSON form, so the store can persist splits without pickling."""
        return {
            "text": self.text,
            "number": self.number,
            "depth": self.depth,
            "children": [c.to_dict() for c in self.children],
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> CriterionItem:
        """Inverse of :meth:`to_dict`; tolerant of missing keys so old rows keep loading."""
        return cls(
            text=str(data.get("text", "")),
            number=data.get("number"),
            depth=int(data.get("depth", 0)),
            children=[cls.from_dict(c) for c in data.get("children", []) or []],
        )

    def full_text(self) -> str:
        """The item text with its children appended, for matching code that wants one string."""
        parts = [self.text]
        parts.extend(c.full_text() for c in self.children)
        return " ".join(p for p in parts if p)

    def walk(self) -> list[CriterionItem]:
        """This item and all descendants in document order."""
        out = [self]
        for c in self.children:
            out.extend(c.walk())
        return out


@dataclass
class CriteriaSplit:
    """The result of :func:`split_criteria`."""

    inclusion: list[CriterionItem] = field(default_factory=list)
    exclusion: list[CriterionItem] = field(default_factory=list)
    inclusion_preamble: str = ""
    exclusion_preamble: str = ""
    notes: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        """Plain-JSON form (stable keys) for persistence."""
        return {
            "inclusion": [i.to_dict() for i in self.inclusion],
            "exclusion": [i.to_dict() for i in self.exclusion],
            "inclusion_preamble": self.inclusion_preamble,
            "exclusion_preamble": self.exclusion_preamble,
            "notes": list(self.notes),
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> CriteriaSplit:
        """Inverse of :meth:`to_dict`."""
        return cls(
            inclusion=[CriterionItem.from_dict(i) for i in data.get("inclusion", []) or []],
            exclusion=[CriterionItem.from_dict(i) for i in data.get("exclusion", []) or []],
            inclusion_preamble=str(data.get("inclusion_preamble", "") or ""),
            exclusion_preamble=str(data.get("exclusion_preamble", "") or ""),
            notes=[str(n) for n in data.get("notes", []) or []],
        )

    def items(self) -> list[tuple[str, CriterionItem]]:
        """Top-level items as ``(kind, item)`` pairs, inclusion first."""
        return [("inclusion", i) for i in self.inclusion] + [("exclusion", i) for i in self.exclusion]


# --------------------------------------------------------------------------------------------------
# line classification

_MD_ESCAPE = re.compile(r"\\([\\`*_{}\[\]()#+\-.!<>~|=^&])")

_BULLET_RE = re.compile(
    r"""^(?P<marker>
        [-*\u2022\u00b7\u25cf\u25aa\u25e6\u2023\u2043\u2013\u2014+>\u27a2\uf0b7o]   # symbol bullets
        (?=\s)
      | \(?(?P<num>\d{1,3}(?:\.\d{1,3})*)[.)](?=\s|$)    # 1.  1)  (1)  1.2.
      | \((?P<pnum>\d{1,3})\)
      | \(?(?P<roman>(?:i{1,3}|iv|vi{0,3}|ix|x))[.)](?=\s)  # i.  ii)  (iv)
      | \(?(?P<alpha>[a-zA-Z])[.)](?=\s)                 # a.  b)  (c)
      | (?P<numnodot>\d{1,2})(?=\s+[A-Z])                # "1 Age over 18" (no dot)
    )\s*""",
    re.VERBOSE,
)


def _side_header(keywords: str) -> re.Pattern[str]:
    """The header line of one side's criteria ("Key inclusion criteria for part A (all cohorts):"):
    both sides share every word of it but their own ``keywords``."""
    return re.compile(
        r"""^(?:(?:key|main|major|general|principal|specific|primary|additional|other)\s+)?
        (?:(?:patient|subject|participant|study|trial)s?\s+)?
        (?:""" + keywords + r""")
        (?:\s+(?:criteria|criterion|criterias|requirements|conditions))?
        (?:\s+for\s+[^:]{1,60})?
        (?:\s*\([^)]{0,60}\))?
        (?:\s+(?:include|includes|are|is))?
        \s*(?:[:.\-\u2013]|$)""",
        re.I | re.X,
    )


_INCL_HEADER = _side_header(r"inclusion|inclusionary|include|eligibility\s+\(inclusion\)")
_EXCL_HEADER = _side_header(r"exclusion|exclusionary|exclude|non[- ]?inclusion")
_CRITERIA_FOR_HEADER = re.compile(r"^criteria\s+for\s+(inclusion|exclusion)\s*[:.]?", re.I)
_GENERIC_HEADER = re.compile(
    r"^(?:inclusion\s*(?:/|and|&|or)\s*exclusion|eligibility)(?:\s+criteria)?\s*[:.]?\s*$", re.I
)
# whole-sentence headers used by the older NIH/AIDS records
_INCL_SENTENCE = re.compile(
    r"^(?:patients|subjects|participants|volunteers|you|children|your child|women|men|infants|adults)"
    r"\b[^:]{0,80}\b(?:may|must|will|can)\s+(?:be\s+)?(?:eligible|included|enrolled|qualify)\b[^:]{0,60}:\s*$"
    r"|^(?:patients|subjects|participants)\s+must\s+have\s*:\s*$"
    r"|^(?:required|eligible|inclusion)\s*:\s*$",
    re.I,
)
_EXCL_SENTENCE = re.compile(
    r"^(?:patients|subjects|participants|volunteers|you|children|your child|women|men|infants|adults|the following)"
    r"\b[^:]{0,100}\b(?:(?:will|may|must|should|can)\s+not|cannot|won't)\s+(?:be\s+)?"
    r"(?:eligible|included|enrolled|participate|qualify)\b[^:]{0,60}:\s*$"
    r"|^(?:patients|subjects|participants|volunteers|the following|individuals|persons)\b[^:]{0,100}"
    r"\b(?:are|is|will be)\s+(?:excluded|ineligible|not eligible)\b[^:]{0,60}[:.]?\s*$"
    r"|^(?:excluded|exclusions?|ineligible|not eligible)\s*:\s*$",
    re.I,
)
_NOTE_RE = re.compile(
    r"^(?:\*?\s*note\b|\*\s*please\s+note|n\.?b\.?\b|other\s+protocol[- ]defined|"
    r"(?:additional|other|further)\b.{0,60}\bcriteria\b.{0,40}\b(?:may\s+)?apply|"
    r"no\s+eligibility\s+criteria|see\s+(?:general\s+)?eligibility\s+criteria|"
    r"for\s+more\s+information|\(?the\s+above\s+(?:criteria|information))",
    re.I,
)


@dataclass
class _Line:
    indent: int
    marker: str | None
    style: str | None
    text: str
    blank_before: bool


def _marker_style(m: re.Match[str]) -> tuple[str, str]:
    """Return (number-or-symbol, style) for a bullet match; style groups markers of one list."""
    if m.group("num"):
        num = m.group("num")
        return num, "num" if "." not in num else "numdot"
    if m.group("pnum"):
        return m.group("pnum"), "pnum"
    if m.group("roman"):
        return m.group("roman"), "roman"
    if m.group("alpha"):
        a = m.group("alpha")
        return a, "alpha-upper" if a.isupper() else "alpha"
    if m.group("numnodot"):
        return m.group("numnodot"), "num"
    sym = m.group("marker").strip()
    return sym, "sym" + sym


def _normalise(text: str) -> list[str]:
    """Unescape markdown, normalise whitespace and dedent, returning raw lines."""
    text = text.replace("\r\n", "\n").replace("\r", "\n").replace("\t", "    ").replace("\u00a0", " ")
    text = _MD_ESCAPE.sub(r"\1", text)
    text = textwrap.dedent(text.strip("\n"))
    return text.split("\n")


def _split_inline_header(text: str) -> tuple[str | None, str, str]:
    """Detect a section header at the start of ``text``.

    Returns ``(kind, header, rest)`` where kind is "inclusion", "exclusion", "generic" or None and
    ``rest`` is any criterion text that follows the header on the same line.
    """
    s = text.strip().strip("*_#").strip()
    if len(s) > 200:
        return None, "", text
    m = _CRITERIA_FOR_HEADER.match(s)
    if m:
        kind = m.group(1).lower()
        return kind, s[: m.end()], s[m.end() :].strip()
    for kind, rx in (("inclusion", _INCL_HEADER), ("exclusion", _EXCL_HEADER)):
        m = rx.match(s)
        if m:
            rest = s[m.end() :].strip().lstrip("*_ ").strip()
            # "Inclusion of women ..." / "Exclusion of patients ..." are criteria, not headers
            head = s[: m.end()]
            if not re.search(
                r"criteri|[:]|^\s*(?:key\s+)?(?:inclusion|exclusion)s?\s*[:.\-]?\s*$", head, re.I
            ):
                if rest:
                    return None, "", text
            return kind, head, rest
    if _GENERIC_HEADER.match(s):
        return "generic", s, ""
    return None, "", text


def _classify(lines: list[str]) -> list[_Line]:
    """Turn raw lines into logical lines, joining hard-wrapped continuation lines."""
    out: list[_Line] = []
    blank = False
    prev_raw = ""
    for raw in lines:
        if not raw.strip():
            blank = True
            prev_raw = ""
            continue
        indent = len(raw) - len(raw.lstrip(" "))
        body = raw.strip()
        m = _BULLET_RE.match(body)
        marker = style = None
        if m and m.end() < len(body) + 1:
            rest = body[m.end() :].strip()
            # "o" only counts as a bullet when followed by text; "-" alone is a divider
            if rest or m.group("num") or m.group("pnum"):
                marker, style = _marker_style(m)
                body = rest
        if marker is None and out and not blank and prev_raw and _is_wrapped(prev_raw, raw, out[-1]):
            out[-1].text = (out[-1].text + " " + body).strip()
            prev_raw = raw
            continue
        out.append(_Line(indent, marker, style, body, blank or not out))
        blank = False
        prev_raw = raw
    return out


def _is_wrapped(prev_raw: str, raw: str, prev: _Line) -> bool:
    """Whether ``raw`` continues the hard-wrapped line ``prev_raw`` (legacy XML wraps at ~100 cols)."""
    prev_s = prev_raw.rstrip()
    cur = raw.strip()
    indent = len(raw) - len(raw.lstrip(" "))
    if prev.marker is not None and indent > prev.indent:
        # text aligned under a bullet's body is a wrapped continuation
        if len(prev_s) >= 60 or not prev_s.endswith((".", ":", ";")):
            return True
    if len(prev_s) >= 70 and not prev_s.endswith((":",)):
        return True
    if cur[:1].islower() and not prev_s.endswith((".", ":", ";")):
        return True
    return False


# --------------------------------------------------------------------------------------------------
# tree building


@dataclass
class _Section:
    kind: str
    lines: list[_Line] = field(default_factory=list)
    header_rest: list[str] = field(default_factory=list)


_PROSE_EXCL = re.compile(
    r"(?<=[.;])\s+(?=(?:key\s+)?exclusion\s+criteria\s+(?:include|included|includes|are|were|is|was)\b"
    r"|excluded\s+from\s+(?:the\s+)?(?:study|trial|participation)\s+(?:were|are|will\s+be)\b)",
    re.I,
)
_PROSE_EXCL_LEAD = re.compile(
    r"^(?:key\s+)?(?:exclusion\s+criteria\s+(?:include|included|includes|are|were|is|was)|"
    r"excluded\s+from\s+(?:the\s+)?(?:study|trial|participation)\s+(?:were|are|will\s+be))\b\s*:?\s*",
    re.I,
)


def _split_prose(lines: list[_Line]) -> list[_Line]:
    """Split prose paragraphs at "Exclusion criteria included ..." so they land in the right section."""
    out: list[_Line] = []
    for ln in lines:
        parts = _PROSE_EXCL.split(ln.text) if ln.marker is None else [ln.text]
        out.append(_Line(ln.indent, ln.marker, ln.style, parts[0], ln.blank_before))
        for part in parts[1:]:
            m = _PROSE_EXCL_LEAD.match(part)
            if m:
                out.append(_Line(ln.indent, None, None, "Exclusion Criteria:", True))
                part = part[m.end() :]
            if part.strip():
                out.append(_Line(ln.indent, None, None, part.strip(), True))
    if out and out[0].marker is None:
        m = _PROSE_EXCL_LEAD.match(out[0].text)
        if m and out[0].text[m.end() :].strip():
            first = out.pop(0)
            out[:0] = [
                _Line(first.indent, None, None, "Exclusion Criteria:", True),
                _Line(first.indent, None, None, first.text[m.end() :].strip(), True),
            ]
    return out


def _sectionise(lines: list[_Line]) -> tuple[list[_Section], list[str]]:
    """Group logical lines under inclusion/exclusion headers; lines before any header are "none"."""
    sections: list[_Section] = [_Section("none")]
    notes: list[str] = []
    for ln in _split_prose(lines):
        kind, header, rest = _split_inline_header(ln.text)
        if kind is None and ln.marker is None and len(ln.text) < 160:
            if _EXCL_SENTENCE.match(ln.text) and sections[-1].kind != "exclusion":
                kind, header, rest = "exclusion-sentence", ln.text, ""
            elif _INCL_SENTENCE.match(ln.text) and sections[-1].kind in ("none", "generic"):
                kind, header, rest = "inclusion-sentence", ln.text, ""
        if kind in ("inclusion", "exclusion"):
            sec = _Section(kind)
            sections.append(sec)
            if rest:
                sec.lines.append(_Line(ln.indent, None, None, rest, True))
            continue
        if kind in ("inclusion-sentence", "exclusion-sentence"):
            sec = _Section(kind.split("-")[0])
            sections.append(sec)
            sec.lines.append(_Line(ln.indent, None, None, header, True))
            continue
        if kind == "generic":
            if sections[-1].kind == "none" and not sections[-1].lines:
                continue
            notes.append(ln.text)
            continue
        sections[-1].lines.append(ln)
    return sections, notes


class _Node:
    __slots__ = ("item", "indent", "style", "rank")

    def __init__(self, item: CriterionItem, indent: int, style: str | None, rank: int = 9):
        self.item = item
        self.indent = indent
        self.style = style
        self.rank = rank  # heading rank for group parents (style None); lower ranks enclose higher


def _heading_rank(text: str) -> int:
    """ALL-CAPS headings ("PATIENT CHARACTERISTICS:") enclose short ones ("Hepatic:") enclose sentences."""
    letters = [c for c in text if c.isalpha()]
    if letters and all(c.isupper() for c in letters) and len(text) < 60:
        return 0
    if len(text) < 45:
        return 1
    return 2


def _headings(lines: list[_Line]) -> set[int]:
    """Indexes of non-bullet ``...:`` lines that open a list (followed by bullets or another heading)."""
    found: set[int] = set()
    for idx in range(len(lines) - 1, -1, -1):
        ln = lines[idx]
        if ln.marker is not None or not ln.text.endswith(":") or idx + 1 >= len(lines):
            continue
        nxt = lines[idx + 1]
        if (nxt.marker is not None and nxt.indent >= ln.indent) or (idx + 1 in found):
            found.add(idx)
    return found


def _build_items(lines: list[_Line]) -> tuple[list[CriterionItem], str, list[str]]:
    """Build the item forest of one section; returns (items, preamble, notes)."""
    items: list[CriterionItem] = []
    notes: list[str] = []
    preamble_parts: list[str] = []
    has_bullets = any(ln.marker is not None for ln in lines)
    headings = _headings(lines) if has_bullets else set()
    grouped = len(headings) >= 2
    stack: list[_Node] = []
    seen_item = False
    prev_heading = False

    for idx, ln in enumerate(lines):
        is_heading = idx in headings
        chained = prev_heading
        prev_heading = is_heading
        if ln.marker is None:
            text = ln.text
            if _NOTE_RE.match(text):
                # an indented note under an item stays with the item, and is also listed as a note
                if stack and stack[-1].style is not None and ln.indent > stack[-1].indent:
                    stack[-1].item.text += " " + text
                notes.append(text)
                continue
            if has_bullets:
                if (
                    not is_heading
                    and stack
                    and stack[-1].style not in (None, "para")
                    and ln.indent > stack[-1].indent
                ):
                    # indented paragraph belonging to the current item
                    stack[-1].item.text += " " + text
                    continue
                if not seen_item and not (is_heading and grouped) and _looks_like_preamble(text):
                    preamble_parts.append(text)
                    continue
                seen_item = True
                if is_heading:
                    # sub-heading ("Hepatic:", "Excluded within 4 weeks of study entry:") -> group parent
                    rank = _heading_rank(text)
                    item = CriterionItem(text=text, number=None, depth=0)
                    while stack and stack[-1].style is not None:
                        stack.pop()
                    if not chained:
                        while stack and (stack[-1].rank >= rank or stack[-1].indent >= ln.indent):
                            stack.pop()
                    if stack:
                        item.depth = stack[-1].item.depth + 1
                        stack[-1].item.children.append(item)
                    else:
                        items.append(item)
                    # group parents sit "above" bullets written at the same indentation
                    stack.append(_Node(item, ln.indent - 1, None, rank))
                    continue
                # stray top-level paragraph between bullets: keep it as an item
                stack.clear()
                items.append(CriterionItem(text=text, number=None, depth=0))
                stack.append(_Node(items[-1], ln.indent, "para"))
                continue
            # section without any bullets: a leading "...:" line is the preamble, every other
            # paragraph is an item
            if not seen_item and text.endswith(":") and idx + 1 < len(lines):
                preamble_parts.append(text)
                continue
            items.append(CriterionItem(text=text, number=None, depth=0))
            seen_item = True
            continue

        # bulleted line
        seen_item = True
        number = ln.marker if not ln.style or not ln.style.startswith("sym") else None
        while stack:
            top = stack[-1]
            if top.indent < ln.indent:
                break
            if top.style == "para":
                stack.pop()
                continue
            if top.indent == ln.indent and top.style != ln.style and top.style is not None:
                # same indentation, different list style: a nested list written flat, unless an
                # ancestor at this indentation already uses this style (then we're back to it)
                if not any(n.indent == ln.indent and n.style == ln.style for n in stack) and (
                    top.item.text.rstrip().endswith((":", "following")) or _is_sub_style(top.style, ln.style)
                ):
                    break
            stack.pop()
        item = CriterionItem(text=ln.text, number=number, depth=0)
        if stack:
            parent = stack[-1].item
            item.depth = parent.depth + 1
            parent.children.append(item)
        else:
            items.append(item)
        stack.append(_Node(item, ln.indent, ln.style))

    return items, " ".join(preamble_parts).strip(), notes


def _is_sub_style(parent: str | None, child: str | None) -> bool:
    """Conventional nesting order of flat-written lists: 1. > a. > i. / symbols."""
    order = {"num": 0, "pnum": 0, "alpha-upper": 0, "alpha": 1, "numdot": 1, "roman": 2}
    if parent is None or child is None:
        return False
    p = order.get(parent, 3 if parent.startswith("sym") else 0)
    c = order.get(child, 3 if child.startswith("sym") else 0)
    return c > p


_PREAMBLE_WORDS = re.compile(
    r"\b(?:following|criteria|eligible|eligibility|must\s+(?:meet|have|fulfil|fulfill|satisfy)|include[sd]?|"
    r"are\s+required|will\s+be|who\s+meet|may\s+(?:be|participate|enrol)|excluded|qualify|participants?\s+must)\b",
    re.I,
)


def _looks_like_preamble(text: str) -> bool:
    """An unbulleted lead-in ("Patients must meet all of the following:") rather than a criterion."""
    t = text.strip()
    return t.endswith(":") or (len(t) < 300 and bool(_PREAMBLE_WORDS.search(t)))


_NCI_HEADINGS = (
    "DISEASE CHARACTERISTICS",
    "PATIENT CHARACTERISTICS",
    "PRIOR CONCURRENT THERAPY",
    "Age",
    "Sex",
    "Menopausal status",
    "Performance status",
    "Life expectancy",
    "Hematopoietic",
    "Hepatic",
    "Renal",
    "Cardiovascular",
    "Pulmonary",
    "Neurologic",
    "Other",
    "Biologic therapy",
    "Chemotherapy",
    "Endocrine therapy",
    "Radiotherapy",
    "Surgery",
)
_NCI_SPLIT = re.compile(r"(?:(?<=\s)|^)(" + "|".join(re.escape(h) for h in _NCI_HEADINGS) + r"):\s+")


def _split_flat_nci(items: list[CriterionItem]) -> list[CriterionItem]:
    """Old NCI records flattened to one paragraph ("Age: 18 and over Performance status: ECOG 0-2 ...")
    get their sub-headings back as parents, so each category becomes its own item."""
    out: list[CriterionItem] = []
    for it in items:
        parts = _NCI_SPLIT.split(it.text)
        if it.children or len(parts) < 5:
            out.append(it)
            continue
        lead = parts[0].strip()
        if lead:
            out.append(CriterionItem(lead, it.number, it.depth))
        for head, body in zip(parts[1::2], parts[2::2], strict=False):
            body = body.strip()
            parent = CriterionItem(f"{head}:", None, it.depth)
            if body:
                parent.children.append(CriterionItem(body, None, it.depth + 1))
            out.append(parent)
    return out


def split_criteria(text: str | None) -> CriteriaSplit:
    """Split an eligibility-criteria text block into inclusion and exclusion item trees.

    Text before any header (or a record with no headers at all) is treated as inclusion, because
    ClinicalTrials.gov criteria without headings are requirements the participant must meet.
    """
    result = CriteriaSplit()
    if not text or not text.strip():
        return result
    lines = _classify(_normalise(text))
    sections, notes = _sectionise(lines)
    result.notes.extend(notes)
    for sec in sections:
        if not sec.lines:
            continue
        items, preamble, sec_notes = _build_items(sec.lines)
        items = _split_flat_nci(items)
        result.notes.extend(sec_notes)
        kind = "exclusion" if sec.kind == "exclusion" else "inclusion"
        if kind == "inclusion":
            result.inclusion.extend(items)
            if preamble:
                result.inclusion_preamble = (result.inclusion_preamble + " " + preamble).strip()
        else:
            result.exclusion.extend(items)
            if preamble:
                result.exclusion_preamble = (result.exclusion_preamble + " " + preamble).strip()
    return result
