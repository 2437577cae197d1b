"""Plain-text rendering of a :class:`~trialfinder.model.view_sections.StudyView` for the CLI ``show``
command: headings underlined, sections in page order, criteria as bullets, no ANSI codes.

Why apart from the view model: what the page says is decided once in :mod:`trialfinder.model.view`;
this module only lays it out for a terminal or a pipe (wrapping, indentation, bullets), as the web
templates do for the browser.
"""

from __future__ import annotations

import re
import textwrap
from collections.abc import Sequence

from trialfinder.model.labels import count_text
from trialfinder.model.view_results import (
    AdverseEventsSection,
    DocumentsSection,
    OutcomeResultsSection,
    ReferencesSection,
    ResultContactSection,
    ResultTable,
    ResultTablesSection,
)
from trialfinder.model.view_sections import (
    ContactsSection,
    CriteriaSection,
    CriterionItem,
    DesignSection,
    FactsSection,
    LinesSection,
    LocationsSection,
    OutcomesSection,
    Section,
    StudyView,
    TextSection,
)

__all__ = ["render_text"]

_LIST_LINE_RE = re.compile(r"^(\s*(?:[*\-•+]|\d{1,3}[.)])\s+)")


class _Writer:
    """Accumulates wrapped plain-text lines; wrapping never splits words or hyphenated terms, so
    "24-hour" and URLs survive intact and the output can be grepped."""

    def __init__(self, width: int) -> None:
        self.width = max(width, 20)
        self.out: list[str] = []

    def blank(self) -> None:
        if self.out and self.out[-1] != "":
            self.out.append("")

    def wrap(self, text: str, indent: str = "", hanging: str | None = None) -> None:
        sub = indent if hanging is None else hanging
        for raw in text.split("\n"):
            if not raw.strip():
                continue
            first, rest = indent, sub
            marker = _LIST_LINE_RE.match(raw)
            if marker:  # a markdown list line inside free text: hang the continuation under its text
                rest = sub + " " * len(marker.group(1).lstrip("\n"))
            wrapped = textwrap.wrap(
                raw.rstrip() if marker else raw.strip(),
                width=self.width,
                initial_indent=first,
                subsequent_indent=rest,
                break_long_words=False,
                break_on_hyphens=False,
            )
            self.out.extend(wrapped or [first.rstrip()])

    def heading(self, text: str, underline: str) -> None:
        self.blank()
        self.out.append(text)
        self.out.append(underline * min(len(text), self.width))


def _render_items(w: _Writer, items: Sequence[CriterionItem], level: int = 0) -> None:
    for item in items:
        depth = max(level, item.depth)
        pad = "  " + "    " * depth
        bullet = f"{item.number}." if item.number else ("•" if depth == 0 else "◦")
        w.wrap(item.text, indent=f"{pad}{bullet} ", hanging=pad + " " * (len(bullet) + 1))
        _render_items(w, item.children, depth + 1)


def _render_section(w: _Writer, sec: Section, max_sites: int | None) -> None:
    if isinstance(sec, LinesSection):
        for line in sec.lines:
            w.wrap(line)
    elif isinstance(sec, TextSection):
        for para in sec.paragraphs:
            w.wrap(para)
            w.blank()
    elif isinstance(sec, FactsSection):
        for fact in sec.facts:
            w.wrap(f"{fact.label}: {fact.value}", hanging="    ")
    elif isinstance(sec, CriteriaSection):
        for pre in sec.preamble:
            w.wrap(pre)
            w.blank()
        _render_items(w, sec.items)
        for note in sec.notes:
            w.blank()
            w.wrap(f"Note: {note}", hanging="    ")
    elif isinstance(sec, DesignSection):
        for fact in sec.facts:
            w.wrap(f"{fact.label}: {fact.value}", hanging="    ")
        if sec.summary:
            w.blank()
            w.wrap(sec.summary)
        for arm in sec.arms:
            w.blank()
            w.wrap(f"{arm.label} ({arm.type})" if arm.type else arm.label, indent="  ")
            if arm.description:
                w.wrap("Description:", indent="    ")
                w.wrap(arm.description, indent="      ")
            if arm.treatments:
                w.wrap("Treatment:", indent="    ")
                for t in arm.treatments:
                    w.wrap(t, indent="      ")
    elif isinstance(sec, LocationsSection):
        w.wrap(count_text(sec.site_count, "site") if sec.site_count else "No sites listed yet")
        shown = sec.sites if max_sites is None else sec.sites[:max_sites]
        for site in shown:
            w.wrap(site.facility or site.place or "Unnamed site", indent="  • ", hanging="    ")
            detail = " · ".join(p for p in (site.place if site.facility else "", site.status) if p)
            if detail:
                w.wrap(detail, indent="    ")
        if len(shown) < len(sec.sites):
            w.wrap(f"… and {len(sec.sites) - len(shown)} more", indent="  ")
    elif isinstance(sec, ContactsSection):
        for c in sec.contacts:
            w.wrap(f"{c.name} ({c.role})" if c.role else c.name)
            for extra in (c.phone, c.email):
                if extra:
                    w.wrap(extra, indent="  ")
    elif _render_results(w, sec):
        pass
    elif isinstance(sec, OutcomesSection):
        for group in sec.groups:
            w.wrap(group.heading + ":")
            for o in group.outcomes:
                w.wrap(o.measure, indent="  • ", hanging="    ")
                if o.time_frame:
                    w.wrap(f"Time frame: {o.time_frame}", indent="    ", hanging="      ")
                if o.description:
                    w.wrap(o.description, indent="    ")
            w.blank()


def _render_table(w: _Writer, table: ResultTable) -> None:
    """A results table as lines: each row's label, then one "group: value" line per group."""
    w.wrap(f"{table.title}:")
    for row in table.rows:
        pad = "  " + "  " * row.level
        if row.kind == "heading" or not row.cells:
            w.wrap(row.label, indent=pad, hanging=pad + "  ")
            continue
        w.wrap(row.label, indent=pad, hanging=pad + "  ")
        for group, cell in zip(table.groups, row.cells, strict=False):
            if cell:
                w.wrap(f"{group.title}: {cell}", indent=pad + "    ", hanging=pad + "      ")
    for note in table.notes:
        w.wrap(f"Note: {note}", indent="  ", hanging="    ")
    w.blank()


def _render_results(w: _Writer, sec: Section) -> bool:
    """The posted-results sections; False when ``sec`` is not one of them."""
    if isinstance(sec, ResultTablesSection):
        for fact in sec.facts:
            w.wrap(f"{fact.label}: {fact.value}", hanging="    ")
        for table in sec.tables:
            _render_table(w, table)
    elif isinstance(sec, OutcomeResultsSection):
        for m in sec.measures:
            w.wrap(f"{m.type}: {m.title}")
            for fact in m.facts:
                w.wrap(f"{fact.label}: {fact.value}", indent="  ", hanging="      ")
            if m.table:
                _render_table(w, m.table)
            for i, analysis in enumerate(m.analyses, 1):
                w.wrap(f"Statistical analysis {i}:", indent="  ")
                for fact in analysis.facts:
                    w.wrap(f"{fact.label}: {fact.value}", indent="    ", hanging="      ")
            w.blank()
    elif isinstance(sec, AdverseEventsSection):
        for fact in sec.facts:
            w.wrap(f"{fact.label}: {fact.value}", hanging="    ")
        groups = sec.groups
        for row in sec.summary:
            w.wrap(row.label + ":")
            for group, cell in zip(groups, row.cells, strict=False):
                w.wrap(f"{group.title}: {cell}", indent="    ", hanging="      ")
        for title, tables in (("Serious adverse events", sec.serious), ("Other adverse events", sec.other)):
            if tables:
                w.blank()
                w.wrap(f"{title}:")
            for t in tables:
                w.wrap(t.organ_system, indent="  ")
                for row in t.rows:
                    cells = "; ".join(f"{g.title}: {c}" for g, c in zip(groups, row.cells, strict=False) if c)
                    w.wrap(f"{row.label} – {cells}" if cells else row.label, indent="    • ", hanging="      ")
    elif isinstance(sec, ResultContactSection):
        if sec.contact:
            w.wrap(sec.contact.name)
            for extra in (sec.organization, sec.contact.phone, sec.contact.email):
                if extra and extra != sec.contact.name:
                    w.wrap(extra, indent="  ")
        for fact in sec.facts:
            w.wrap(f"{fact.label}: {fact.value}", hanging="    ")
    elif isinstance(sec, ReferencesSection):
        for ref in sec.references:
            w.wrap(ref.text + (f" {ref.url}" if ref.url else ""), indent="  • ", hanging="    ")
        for link in sec.links:
            w.wrap(f"{link.text}: {link.url}", indent="  • ", hanging="    ")
    elif isinstance(sec, DocumentsSection):
        for doc in sec.documents:
            note = f" ({doc.note})" if doc.note else ""
            w.wrap(f"{doc.text}{note}: {doc.url}", indent="  • ", hanging="    ")
    else:
        return False
    return True


def render_text(view: StudyView, width: int = 100, *, max_sites: int | None = None) -> str:
    """Render the view as plain text for a terminal or a pipe: no ANSI codes, headings underlined,
    sections in page order, criteria as bullets.  ``max_sites`` trims very long site lists."""
    w = _Writer(width)
    group: str | None = None
    for sec in view.sections:
        if sec.key == "title" and isinstance(sec, LinesSection):
            first, *rest = sec.lines
            start = len(w.out)
            w.wrap(first)
            w.out.append("=" * max(len(line) for line in w.out[start:]))
            for line in rest:
                w.wrap(line)
            continue
        if sec.group != group and sec.group:
            w.blank()
            w.heading(sec.group, "=")
        group = sec.group
        if sec.heading:
            w.heading(sec.heading, "-")
        else:
            w.blank()
        _render_section(w, sec, max_sites)
    while w.out and w.out[-1] == "":
        w.out.pop()
    return "\n".join(w.out) + "\n"
