"""An offline synonym vocabulary built from the data itself.

Why from the data: ClinicalTrials.gov records already carry the knowledge a patient's words need to reach
them — MeSH terms and ancestors in ``derivedSection``, intervention other names and brand names, and
acronyms defined in titles and descriptions ("lupus nephritis (LN)"). Each study contributes
``(kind, term, expansion)`` rows at ingest; at query time a term is expanded with the rows whose ``term``
equals it exactly (after case and accent folding). Expansion is never fuzzy: a typo expands to nothing.
"""

from __future__ import annotations

import functools
import re
import unicodedata
from collections.abc import Iterable

_WORD = re.compile(r"[A-Za-z0-9]+")
_DEFINED = re.compile(r"\(\s*([A-Z][A-Za-z0-9]{1,7})\s*\)")
_SKIP = {"of", "and", "the", "in", "with", "for", "to", "or", "a", "an", "on", "by"}
_STOP_ACRONYMS = {"II", "III", "IV", "VI", "VII", "VIII", "IX", "XI", "XII", "USA", "US", "UK", "OR", "AND",
                  "NOT", "TO", "IN", "OF", "ON", "AT", "BY", "IS", "IT", "NO", "VS"}


_ACRONYM_FULL = re.compile(r"[A-Z][A-Z0-9]{1,7}")

#: Entries of the memos of :func:`fold` and :func:`initials` for ingest (``_fold``, ``_initials``): the
#: same conditions, MeSH headings and drug names recur across thousands of studies. Bounded, so memory is.
_MEMO_MAX = 200_000


def fold(text: str) -> str:
    """Case- and accent-folded, whitespace-collapsed text: the key synonyms are looked up by."""
    if text.isascii():
        return " ".join(text.lower().split())
    text = unicodedata.normalize("NFKD", text)
    text = "".join(c for c in text if not unicodedata.combining(c))
    return " ".join(text.lower().replace("\u2019", "'").split())


_fold = functools.lru_cache(maxsize=_MEMO_MAX)(fold)


def initials(phrase: str) -> str:
    words = [w for w in _WORD.findall(phrase) if w.lower() not in _SKIP]
    return "".join(w[0] for w in words).upper()


_initials = functools.lru_cache(maxsize=_MEMO_MAX)(initials)


def _is_word_char(c: str) -> bool:
    return c.isalnum() or c == "_"  # exactly the regex \w


def _has_word(texts: list[str], word: str) -> bool:
    """Whether ``word`` occurs as a whole ``\\w+`` word in one of ``texts``.

    Why not a regex over the texts: an acronym pattern has no literal prefix, so the regex engine tries
    it at every position of every text, while ``str.find`` of the few candidate acronyms is a fast scan.
    """
    n = len(word)
    for text in texts:
        p = text.find(word)
        while p >= 0:
            q = p + n
            if (p == 0 or not _is_word_char(text[p - 1])) and (q == len(text) or not _is_word_char(text[q])):
                return True
            p = text.find(word, p + 1)
    return False


def extract_synonyms(study: object) -> list[tuple[str, str, str]]:
    """``(kind, term, expansion)`` rows for one normalised study (folded terms).

    kinds: ``acronym`` (LN -> lupus nephritis), ``other_name`` (brand or code name -> intervention name,
    and back), ``mesh`` (a condition or intervention as written -> its MeSH heading).
    """
    rows: set[tuple[str, str, str]] = set()
    all_conditions = study.conditions  # type: ignore[attr-defined]
    conditions = [t for k, t in all_conditions if t and (k == "condition" or k == "keyword")]
    texts = [t for t in (study.brief_title, study.official_title, study.brief_summary,  # type: ignore[attr-defined]
                         study.detailed_description[:4000]) if t]  # type: ignore[attr-defined]
    # acronyms used in titles/descriptions whose letters are the initials of a listed condition: a word
    # matching [A-Z][A-Z0-9]{1,7} with an optional plural "s" (stop words aside)
    if conditions:
        by_initials: dict[str, list[str]] = {}
        for cond in conditions:
            by_initials.setdefault(_initials(cond), []).append(cond)
        for key, conds in by_initials.items():
            if not _ACRONYM_FULL.fullmatch(key):
                continue
            for acr in (key, key + "s"):
                if acr not in _STOP_ACRONYMS and _has_word(texts, acr):
                    fkey = _fold(key)
                    for cond in conds:
                        rows.add(("acronym", fkey, _fold(cond)))
    # acronyms defined in running text: "... lupus nephritis (LN)"
    acronym = getattr(study, "acronym", "")
    for text in texts:
        if "(" not in text:
            continue
        for m in _DEFINED.finditer(text):
            acr = m.group(1)
            if acr in _STOP_ACRONYMS or acr == acronym:
                continue
            want = acr.upper().rstrip("S") if acr.endswith("s") else acr.upper()
            if len(want) < 2:
                continue
            words = _WORD.findall(text[max(0, m.start() - 100):m.start()])
            # initials of the last k words, grown one word at a time (initials() of the joined words)
            inits = ""
            for k in range(1, min(len(words), 8) + 1):
                word = words[-k]
                skip = word.lower() in _SKIP
                if not skip:
                    inits = word[0].upper() + inits
                if k >= 2 and not skip and inits == want:
                    rows.add(("acronym", _fold(acr), _fold(" ".join(words[-k:]))))
                    break
    # intervention names <-> other names
    for _type, name, others in study.interventions:  # type: ignore[attr-defined]
        if not name or not others:
            continue
        fn = _fold(name)
        for other in others:
            if other:
                fo = _fold(other)
                if fo != fn:
                    rows.add(("other_name", fo, fn))
                    rows.add(("other_name", fn, fo))
    # conditions as written -> their MeSH heading, only when the link is unambiguous: the heading holds
    # every word of the condition ("systemic lupus erythematosus" -> "lupus erythematosus, systemic"), or
    # the study names one condition and has one heading ("breast cancer" -> "breast neoplasms")
    meshes = [t for k, t in all_conditions if k == "mesh"]
    if meshes and conditions:
        named = [t for k, t in all_conditions if k == "condition"]
        folded_meshes = [(fm, set(_WORD.findall(fm))) for fm in map(_fold, meshes)]
        single = len(meshes) == 1 and len(named) == 1
        for cond in conditions:
            fc = _fold(cond)
            cw = set(_WORD.findall(fc))
            for fm, mw in folded_meshes:
                if fm == fc:
                    continue
                if cw and cw <= mw:
                    rows.add(("mesh", fc, fm))
                elif single and cond in named:
                    # weaker evidence: used only when several studies agree (see MIN_SUPPORT)
                    rows.add(("mesh_single", fc, fm))
    return sorted(rows)


#: How many studies must assert a weak synonym before it is used for expansion.
MIN_SUPPORT = {"mesh_single": 3}


def expansions_text(terms: Iterable[str]) -> str:
    """Render expansions for an explanation line."""
    return ", ".join(sorted(set(terms)))
