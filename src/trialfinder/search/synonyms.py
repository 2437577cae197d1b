"""An offline synonym vocabulary built from the data itself.

Why from the data: ClinicalTrials.gov records already carry the knowledge a patient's words need to reach
them — MeSH terms and ancestors in ``derivedSection``, intervention other names and brand names, and
acronyms defined in titles and descriptions ("lupus nephritis (LN)"). Each study contributes
``(kind, term, expansion)`` rows at ingest; at query time a term is expanded with the rows whose ``term``
equals it exactly (after case and accent folding). Expansion is never fuzzy: a typo expands to nothing.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable

_WORD = re.compile(r"[A-Za-z0-9]+")
_ACRONYM = re.compile(r"\b([A-Z][A-Z0-9]{1,7}s?)\b")
_DEFINED = re.compile(r"\(\s*([A-Z][A-Za-z0-9]{1,7})\s*\)")
_SKIP = {"of", "and", "the", "in", "with", "for", "to", "or", "a", "an", "on", "by"}
_STOP_ACRONYMS = {"II", "III", "IV", "VI", "VII", "VIII", "IX", "XI", "XII", "USA", "US", "UK", "OR", "AND",
                  "NOT", "TO", "IN", "OF", "ON", "AT", "BY", "IS", "IT", "NO", "VS"}


def fold(text: str) -> str:
    """Case- and accent-folded, whitespace-collapsed text: the key synonyms are looked up by."""
    if text.isascii():
        return " ".join(text.lower().split())
    text = unicodedata.normalize("NFKD", text)
    text = "".join(c for c in text if not unicodedata.combining(c))
    return " ".join(text.lower().replace("\u2019", "'").split())


def initials(phrase: str) -> str:
    words = [w for w in _WORD.findall(phrase) if w.lower() not in _SKIP]
    return "".join(w[0] for w in words).upper()


def _acronym_matches(acronym: str, phrase: str) -> bool:
    a = acronym.upper().rstrip("S") if acronym.endswith("s") else acronym.upper()
    return len(a) >= 2 and initials(phrase) == a


def extract_synonyms(study: object) -> list[tuple[str, str, str]]:
    """``(kind, term, expansion)`` rows for one normalised study (folded terms).

    kinds: ``acronym`` (LN -> lupus nephritis), ``other_name`` (brand or code name -> intervention name,
    and back), ``mesh`` (a condition or intervention as written -> its MeSH heading).
    """
    rows: set[tuple[str, str, str]] = set()
    conditions = [t for k, t in study.conditions if k in ("condition", "keyword") and t]  # type: ignore[attr-defined]
    texts = [study.brief_title, study.official_title, study.brief_summary,  # type: ignore[attr-defined]
             study.detailed_description[:4000]]  # type: ignore[attr-defined]
    # acronyms used in titles/descriptions whose letters are the initials of a listed condition
    seen: set[str] = set()
    for text in texts:
        for m in _ACRONYM.finditer(text or ""):
            seen.add(m.group(1))
    acronym = getattr(study, "acronym", "")
    by_initials: dict[str, list[str]] = {}
    for cond in conditions:
        by_initials.setdefault(initials(cond), []).append(cond)
    for acr in seen:
        if acr in _STOP_ACRONYMS:
            continue
        key = acr[:-1] if acr.endswith("s") and acr[:-1].isupper() else acr
        for cond in by_initials.get(key.upper(), ()):
            if len(key) >= 2:
                rows.add(("acronym", fold(key), fold(cond)))
    # acronyms defined in running text: "... lupus nephritis (LN)"
    for text in texts:
        for m in _DEFINED.finditer(text or ""):
            phrase, acr = text[max(0, m.start() - 100):m.start()], m.group(1)
            if acr in _STOP_ACRONYMS or acr == acronym:
                continue
            words = _WORD.findall(phrase)
            for k in range(2, min(len(words), 8) + 1):
                candidate = " ".join(words[-k:])
                if _acronym_matches(acr, candidate) and candidate.split()[0].lower() not in _SKIP:
                    rows.add(("acronym", fold(acr), fold(candidate)))
                    break
    # intervention names <-> other names
    for _type, name, others in study.interventions:  # type: ignore[attr-defined]
        if not name:
            continue
        for other in others:
            if other and fold(other) != fold(name):
                rows.add(("other_name", fold(other), fold(name)))
                rows.add(("other_name", fold(name), fold(other)))
    # conditions as written -> their MeSH heading, only when the link is unambiguous: the heading holds
    # every word of the condition ("systemic lupus erythematosus" -> "lupus erythematosus, systemic"), or
    # the study names one condition and has one heading ("breast cancer" -> "breast neoplasms")
    meshes = [t for k, t in study.conditions if k == "mesh"]  # type: ignore[attr-defined]
    named = [t for k, t in study.conditions if k == "condition"]  # type: ignore[attr-defined]
    for cond in conditions:
        fc = fold(cond)
        cw = set(_WORD.findall(fc))
        for mesh in meshes:
            fm = fold(mesh)
            if fm == fc:
                continue
            if cw and cw <= set(_WORD.findall(fm)):
                rows.add(("mesh", fc, fm))
            elif len(meshes) == 1 and len(named) == 1 and cond in named:
                # weaker evidence: used only when several studies agree (see MIN_SUPPORT)
                rows.add(("mesh_single", fc, fm))
    return sorted(rows)


#: How many studies must assert a weak synonym before it is used for expansion.
MIN_SUPPORT = {"mesh_single": 3}


def expansions_text(terms: Iterable[str]) -> str:
    """Render expansions for an explanation line."""
    return ", ".join(sorted(set(terms)))
