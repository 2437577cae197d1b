"""The study page's building blocks: the section types a :class:`StudyView` is made of.

Why a module of their own: :mod:`trialfinder.model.view` builds these from a record, while the terminal
renderer (:mod:`trialfinder.model.view_text`), the web templates and the JSON API only read them. Keeping
the types apart lets each shell depend on the page's shape without depending on how it is derived.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

__all__ = [
    "Arm", "Contact", "ContactsSection", "CriteriaSection", "CriterionItem", "DesignSection", "Fact",
    "FactsSection", "LinesSection", "LocationsSection", "Outcome", "OutcomeGroup", "OutcomesSection",
    "Section", "Site", "StudyView", "TextSection",
]


@dataclass(frozen=True, kw_only=True)
class Section:
    """Base of every section. ``key`` is a stable id for templates/tests, ``heading`` the page wording
    ("" for the unheaded title and sponsor lines), ``group`` an optional super-heading shared by a run
    of sections (the page's "Details and patient eligibility"), ``kind`` says which subclass it is so a
    template can dispatch without isinstance."""

    key: str
    heading: str
    group: str | None = None
    kind: str = field(default="section", init=False)

    def __init_subclass__(cls, kind: str | None = None, **kwargs: Any) -> None:
        """``class LinesSection(Section, kind="lines")`` names the subclass's kind once: a field of every
        instance (so :meth:`StudyView.to_dict` carries it) that no constructor takes. Dataclasses read
        an ``init=False`` field with a default from the class, so the class attribute set here is what
        every instance has."""
        super().__init_subclass__(**kwargs)
        if kind is not None:
            cls.kind = kind


@dataclass(frozen=True, kw_only=True)
class LinesSection(Section, kind="lines"):
    """Short values, one per line (status and phase, conditions, identifiers, ages, ...)."""

    lines: tuple[str, ...]


@dataclass(frozen=True, kw_only=True)
class TextSection(Section, kind="text"):
    """Free text kept as the registry wrote it (markdown), split into paragraphs."""

    paragraphs: tuple[str, ...]


@dataclass(frozen=True, kw_only=True)
class Fact:
    """A labelled value such as ("Allocation", "Randomized")."""

    label: str
    value: str


@dataclass(frozen=True, kw_only=True)
class FactsSection(Section, kind="facts"):
    """Label/value pairs (dates, sponsor and collaborators)."""

    facts: tuple[Fact, ...]


@dataclass(frozen=True, kw_only=True)
class CriterionItem:
    """One criterion bullet; ``number`` is the registry's own numbering ("3", "a") if it had one."""

    text: str
    depth: int = 0
    number: str | None = None
    children: tuple[CriterionItem, ...] = ()


@dataclass(frozen=True, kw_only=True)
class CriteriaSection(Section, kind="criteria"):
    """Inclusion or exclusion criteria: the preamble line(s), the items, and any unplaced notes."""

    preamble: tuple[str, ...]
    items: tuple[CriterionItem, ...]
    notes: tuple[str, ...] = ()


@dataclass(frozen=True, kw_only=True)
class Arm:
    """One patient group: label, type label ("Experimental group"), description, treatments."""

    label: str
    type: str
    description: str
    treatments: tuple[str, ...]


@dataclass(frozen=True, kw_only=True)
class DesignSection(Section, kind="design"):
    """Trial design: facts (Primary purpose, Allocation, ...), a summary line
    ("40 participants in 2 patient groups") and the arms."""

    facts: tuple[Fact, ...]
    summary: str
    arms: tuple[Arm, ...]


@dataclass(frozen=True, kw_only=True)
class Contact:
    """A person to contact: name as registered ("Jun Liang, Doctor"), role label, phone, email."""

    name: str
    role: str = ""
    phone: str = ""
    email: str = ""


@dataclass(frozen=True, kw_only=True)
class Site:
    """One trial location; ``geo`` is (lat, lon) when the record (or our geocoder) has it."""

    facility: str
    city: str = ""
    state: str = ""
    zip: str = ""
    country: str = ""
    status: str = ""
    contacts: tuple[Contact, ...] = ()
    geo: tuple[float, float] | None = None

    @property
    def place(self) -> str:
        """The place line (city, state, country) with missing parts skipped."""
        return ", ".join(p for p in (self.city, self.state, self.country) if p)


@dataclass(frozen=True, kw_only=True)
class LocationsSection(Section, kind="locations"):
    """Trial contacts and locations: number of sites and the site list."""

    site_count: int
    sites: tuple[Site, ...]


@dataclass(frozen=True, kw_only=True)
class ContactsSection(Section, kind="contacts"):
    """Central trial contact(s)."""

    contacts: tuple[Contact, ...]


@dataclass(frozen=True, kw_only=True)
class Outcome:
    """One outcome measure with its time frame."""

    measure: str
    time_frame: str = ""
    description: str = ""


@dataclass(frozen=True, kw_only=True)
class OutcomeGroup:
    """Primary, secondary or other outcomes."""

    heading: str
    outcomes: tuple[Outcome, ...]


@dataclass(frozen=True, kw_only=True)
class OutcomesSection(Section, kind="outcomes"):
    """Outcome measures grouped by type."""

    groups: tuple[OutcomeGroup, ...]


@dataclass(frozen=True, kw_only=True)
class StudyView:
    """Everything a study page shows, in page order. ``sections`` is the single source for layout;
    the scalar attributes are conveniences for page titles, links and list rows."""

    nct_id: str
    title: str
    sponsor: str
    url: str
    data_as_of: str | None
    last_updated: str | None
    sections: tuple[Section, ...]

    def section(self, key: str) -> Section | None:
        """The section with ``key``, or None when the record lacked it."""
        return next((s for s in self.sections if s.key == key), None)

    def headings(self) -> list[str]:
        """Non-empty headings in order (what a reader scans)."""
        return [s.heading for s in self.sections if s.heading]

    def to_dict(self) -> dict[str, Any]:
        """Plain-JSON form for the web API and templates that prefer dicts."""
        return dataclasses.asdict(self)
