"""Shared text routines of the eligibility engine: normalisation, sentences, numbers, assertion status.

Criteria and patient notes are matched by rules, not a model, so that the engine runs offline and every
verdict can be explained.  The rules follow the ConText idea: a mention's status (negated, uncertain,
family member's, hypothetical, historical) is set by cue words whose scope ends at a clause boundary.
Offsets always refer to the caller's original text so evidence spans can be shown to a person.
"""

from __future__ import annotations

import functools
import re
import unicodedata
from dataclasses import dataclass
from functools import lru_cache

from trialfinder.eligibility.vocab import Vocab, load_vocab

__all__ = [
    "Assertion",
    "Sentence",
    "assertion",
    "cue_regex",
    "find_time",
    "normalize",
    "parse_number",
    "split_sentences",
    "stem",
    "tokens",
    "unit_days",
]

_WORD_RE = re.compile(r"[a-z0-9\u00b5\u03bc]+(?:['\u2019][a-z]+)?")
_TRANSLATE = str.maketrans(
    {
        "\u2019": "'",
        "\u2018": "'",
        "\u201c": '"',
        "\u201d": '"',
        "\u2013": "-",
        "\u2014": "-",
        "\u2212": "-",
        "\u00a0": " ",
        "\u2009": " ",
        "\u202f": " ",
        "\ufb01": "fi",
        "\ufb02": "fl",
        "\u00ad": "-",
    }
)
_NUMBER_WORDS = {
    "zero": 0,
    "one": 1,
    "two": 2,
    "three": 3,
    "four": 4,
    "five": 5,
    "six": 6,
    "seven": 7,
    "eight": 8,
    "nine": 9,
    "ten": 10,
    "eleven": 11,
    "twelve": 12,
    "thirteen": 13,
    "fourteen": 14,
    "fifteen": 15,
    "sixteen": 16,
    "seventeen": 17,
    "eighteen": 18,
    "nineteen": 19,
    "twenty": 20,
    "thirty": 30,
    "forty": 40,
    "fifty": 50,
    "sixty": 60,
    "a": 1,
    "an": 1,
    "a few": 3,
    "few": 3,
    "several": 3,
    "a couple of": 2,
    "couple of": 2,
}
_UNIT_DAYS = {"hour": 1 / 24, "day": 1, "week": 7, "month": 30.44, "year": 365.25}


def normalize(text: str, vocab: Vocab | None = None) -> tuple[str, list[int]]:
    """Lower-case, fold punctuation and British spellings; return the text and a map to original offsets.

    ``mapping[i]`` is the index in ``text`` of normalised character ``i`` (plus a final sentinel), so a
    match in the normalised string can be reported as a span of the original.
    """
    vocab = vocab or load_vocab()
    src = text.translate(_TRANSLATE)
    if len(src) != len(text):
        # a ligature expanded ("ﬁ" -> "fi"): normalise piecewise so offsets still point into ``text``
        pieces = [ch.translate(_TRANSLATE) for ch in text]
        norm_parts, maps = [], []
        for i, piece in enumerate(pieces):
            norm_parts.append(piece.lower())
            maps.extend([i] * len(piece))
        joined = "".join(norm_parts)
        inner, inner_map = normalize(joined, vocab)
        return inner, [maps[j] if j < len(maps) else len(text) for j in inner_map]
    low = src.lower()
    if len(low) != len(src):  # exotic case mappings: fall back to a per-character fold
        low = "".join(c.lower()[:1] or c for c in src)
    if not _spelling_regex(vocab).search(low):
        # fast path: nothing to respell, offsets are the identity
        norm = low
        if not norm.isascii():
            norm = "".join(
                c if c.isascii() or unicodedata.normalize("NFKD", c) == c else _strip_accent(c) for c in norm
            )
        return norm, list(range(len(low) + 1))
    out: list[str] = []
    mapping: list[int] = []
    pos = 0
    for m in re.finditer(r"[a-z]+", low):
        for i in range(pos, m.start()):
            out.append(low[i])
            mapping.append(i)
        word = m.group(0)
        new = _respell(word, vocab)
        for j, ch in enumerate(new):
            out.append(ch)
            mapping.append(m.start() + min(j, len(word) - 1))
        pos = m.end()
    for i in range(pos, len(low)):
        out.append(low[i])
        mapping.append(i)
    mapping.append(len(low))
    norm = "".join(out)
    folded = unicodedata.normalize("NFKD", norm)
    if len(folded) != len(norm):
        norm = "".join(c if unicodedata.normalize("NFKD", c) == c else _strip_accent(c) for c in norm)
    return norm, mapping


def _spelling_regex(vocab: Vocab) -> re.Pattern[str]:
    rx = vocab.cache.get("spelling_regex")
    if rx is None:
        rx = re.compile("|".join(re.escape(k) for k, _v in vocab.spelling_pairs) or "(?!)")
        vocab.cache["spelling_regex"] = rx
    return rx


def _strip_accent(ch: str) -> str:
    base = unicodedata.normalize("NFKD", ch)
    kept = "".join(c for c in base if not unicodedata.combining(c))
    return kept[:1] if len(kept) >= 1 else ch


@lru_cache(maxsize=4096)
def _respell_cached(word: str, pairs: tuple[tuple[str, str], ...]) -> str:
    for old, new in pairs:
        if old in word:
            word = word.replace(old, new)
    return word


def _respell(word: str, vocab: Vocab) -> str:
    return _respell_cached(word, vocab.spelling_pairs)


def stem(word: str) -> str:
    """A deliberately light stemmer: plural and possessive endings only, so medical terms stay distinct."""
    if word.endswith("'s"):
        word = word[:-2]
    if len(word) > 4 and word.endswith("ies"):
        return word[:-3] + "y"
    if len(word) > 4 and word.endswith(("ches", "shes", "sses", "xes")):
        return word[:-2]
    if len(word) > 3 and word.endswith("s") and not word.endswith(("ss", "us", "is", "sis", "ous")):
        return word[:-1]
    return word


def tokens(norm: str) -> list[tuple[str, int, int]]:
    """Stemmed word tokens of normalised text with their offsets."""
    return list(_tokens(norm))


@functools.lru_cache(maxsize=8192)
def _tokens(norm: str) -> tuple[tuple[str, int, int], ...]:
    # cached: matching asks for the tokens of the same sentence once per fact and constraint, which
    # made a long note take minutes
    return tuple((stem(m.group(0)), m.start(), m.end()) for m in _WORD_RE.finditer(norm))


@dataclass
class Sentence:
    """One sentence of a patient note; ``sid`` is the id used as evidence."""

    sid: int
    text: str
    norm: str
    mapping: list[int]

    def original(self, start: int, end: int) -> str:
        """The original text behind the normalised span ``norm[start:end]``."""
        if not self.mapping:
            return self.text[start:end]
        a = self.mapping[min(start, len(self.mapping) - 1)]
        b = self.mapping[min(max(end - 1, start), len(self.mapping) - 1)] + 1
        return self.text[a:b]


_NUMBERED_LINE = re.compile(r"^\s*(\d+)\.\s+(.*\S)\s*$")
_SENT_SPLIT = re.compile(r"(?<=[.!?])\s+(?=[A-Z0-9\"'(])")
_ABBREV_END = re.compile(r"\b(?:e\.g|i\.e|dr|mr|mrs|ms|vs|approx|no|st|fig|etc|pt|yo|y\.o)\.$", re.I)


def split_sentences(note: str, vocab: Vocab | None = None) -> list[Sentence]:
    """Split a note into sentences; lines numbered "0. ...", "1. ..." keep their numbers as ids."""
    vocab = vocab or load_vocab()
    lines = [ln for ln in note.splitlines() if ln.strip()]
    numbered = [_NUMBERED_LINE.match(ln) for ln in lines]
    out: list[Sentence] = []
    if lines and all(numbered):
        for m in numbered:
            if m:
                text = m.group(2)
                out.append(Sentence(int(m.group(1)), text, *normalize(text, vocab)))
        return out
    pieces: list[str] = []
    for para in re.split(r"\n\s*\n|\n(?=\s*[-*\u2022])", note):
        buf = ""
        for part in _SENT_SPLIT.split(" ".join(para.split())):
            buf = f"{buf} {part}".strip() if buf else part
            if not _ABBREV_END.search(buf):
                pieces.append(buf)
                buf = ""
        if buf:
            pieces.append(buf)
    for i, text in enumerate(p for p in pieces if p.strip()):
        out.append(Sentence(i, text, *normalize(text, vocab)))
    return out


@lru_cache(maxsize=256)
def cue_regex(cues: tuple[str, ...]) -> re.Pattern[str]:
    """One alternation over cue phrases with word-ish boundaries, longest first."""
    parts = sorted({c for c in cues if c}, key=len, reverse=True)
    body = "|".join(re.escape(c).replace(r"\ ", r"\s+") for c in parts)
    return re.compile(rf"(?<![a-z0-9])(?:{body})(?![a-z0-9])")


def _cues(vocab: Vocab, key: str) -> re.Pattern[str]:
    return cue_regex(tuple(vocab.cues.get(key, [])))


_CLAUSE_END = re.compile(r"[.;:!?]|\s-\s|\(|\)")
_EXTRA_TERMINATORS = (
    "besides",
    "other than",
    "says",
    "said",
    "tells",
    "told",
    "notes",
    "noted",
    "brought",
    "was seen",
    "is seen",
    "returned",
    "shows",
    "showed",
    "reveals",
    "revealed",
)


@dataclass
class Assertion:
    """Status of one mention in a sentence; ``days_ago`` is when the event happened, if stated."""

    negated: bool = False
    uncertain: bool = False
    family: bool = False
    hypothetical: bool = False
    historical: bool = False
    days_ago: float | None = None
    ongoing_days: float | None = None

    @property
    def affirmed(self) -> bool:
        """True when the mention asserts the patient has the thing."""
        return not (self.negated or self.uncertain or self.family or self.hypothetical)


def _terminated(text: str, vocab: Vocab) -> bool:
    if _CLAUSE_END.search(text):
        return True
    return bool(cue_regex(tuple(vocab.cues.get("terminators", [])) + _EXTRA_TERMINATORS).search(text))


def assertion(
    norm: str, start: int, end: int, vocab: Vocab | None = None, *, age: float | None = None
) -> Assertion:
    """Status of the mention ``norm[start:end]`` within its (normalised) sentence."""
    vocab = vocab or load_vocab()
    res = Assertion()
    before = norm[:start]
    after = norm[end:]
    # pre-negation: the cue's scope runs to the mention unless a clause boundary intervenes
    for m in _cues(vocab, "negation_pre").finditer(before):
        gap = before[m.end() :]
        words = len(_WORD_RE.findall(gap))
        limit = 4 if m.group(0) in ("not", "is not", "was not", "are not", "were not") else 14
        if words <= limit and not _terminated(gap, vocab):
            res.negated = True
    head = after[:60]
    for m in _cues(vocab, "negation_post").finditer(head):
        gap = head[: m.start()]
        if len(_WORD_RE.findall(gap)) <= 5 and not _CLAUSE_END.search(gap):
            res.negated = True
            break
    # family: a relative mentioned earlier in the same clause
    clause_start = max((m.end() for m in _CLAUSE_END.finditer(before)), default=0)
    clause = before[clause_start:]
    for m in _cues(vocab, "family").finditer(clause):
        gap = clause[m.end() :]
        if not _terminated(gap, vocab) or m.group(0).startswith("family"):
            res.family = True
    # uncertainty: cue anywhere earlier in the sentence, or a trailing "is suspected"
    if _cues(vocab, "uncertainty").search(before) or re.match(
        r"^\s*(?:is|was)?\s*(?:suspected|possible|likely)", after
    ):
        res.uncertain = True
    hyp = _cues(vocab, "hypothetical")
    for m in hyp.finditer(clause):
        if m.group(0) not in ("should", "would", "could", "if"):
            res.hypothetical = True
    if re.match(r"^\s*(?:prevention|prophylaxis|screening|risk)\b", after):
        res.hypothetical = True
    if re.search(r"\b(?:history of|past medical history|previous|prior|remote|status post|s/p)\b", clause):
        res.historical = True
    when = find_time(norm, start, end, age=age)
    if when is not None:
        kind, days = when
        if kind == "ago":
            res.days_ago = days
            res.historical = res.historical or days > 30
        else:
            res.ongoing_days = days
    return res


_TIME_NUM = r"(\d+(?:\.\d+)?|a|an|one|two|three|four|five|six|seven|eight|nine|ten|eleven|twelve|twenty|thirty|several|few|a few|couple of|a couple of)"
_TIME_UNIT = r"(hours?|hrs?|days?|weeks?|wks?|months?|mos?|years?|yrs?)"
_AGO_RE = re.compile(rf"\b{_TIME_NUM}[\s-]+{_TIME_UNIT}\s+(?:ago|earlier|before|prior|previously|back)\b")
_PAST_RE = re.compile(
    rf"\b(?:over\s+|in\s+|during\s+|for\s+)?(?:the\s+)?(?:last|past|previous|preceding)\s+(?:{_TIME_NUM}\s+)?{_TIME_UNIT}"
)
_FOR_RE = re.compile(rf"\b(?:for|since)\s+(?:the\s+)?(?:last\s+|past\s+)?{_TIME_NUM}\s+{_TIME_UNIT}")
_DAY_POST_RE = re.compile(r"\b(\d+)(?:st|nd|rd|th)\s+(?:day|post-?operative day)\s+(?:post|after)")
_AT_AGE_RE = re.compile(r"\bat (?:the )?age (?:of )?(\d{1,3})\b")
_SIMPLE_TIMES = {
    "yesterday": 1.0,
    "today": 0.0,
    "last night": 0.5,
    "this morning": 0.2,
    "last week": 7.0,
    "last month": 30.0,
    "last year": 365.0,
    "recently": 30.0,
    "recent": 30.0,
}


def unit_days(unit: str) -> float:
    """Days in one ``unit`` ("day", "weeks", "months", "yr"...); 1 for a unit it does not know."""
    u = unit.rstrip("s")
    for key, days in _UNIT_DAYS.items():
        if u.startswith(key[:2]) and not (key == "month" and u.startswith("mi")):
            if key == "hour" and not u.startswith("h"):
                continue
            return days
    return 1.0


def _num(text: str | None) -> float:
    if not text:
        return 1.0
    text = text.strip()
    try:
        return float(text)
    except ValueError:
        return float(_NUMBER_WORDS.get(text, 1))


def find_time(norm: str, start: int, end: int, *, age: float | None = None) -> tuple[str, float] | None:
    """The time expression nearest to a mention: ("ago", days) for past events, ("ongoing", days) for durations."""
    best: tuple[int, str, float] | None = None

    def consider(m: re.Match[str], kind: str, days: float) -> None:
        nonlocal best
        dist = m.start() - end if m.start() >= end else (start - m.end()) * 3 + 10
        between = (
            norm[min(end, m.start()) : max(end, m.start())] if m.start() >= end else norm[m.end() : start]
        )
        if re.search(r"[.;]", between) or _terminated(between, load_vocab()):
            return
        if best is None or dist < best[0]:
            best = (dist, kind, days)

    for m in _AGO_RE.finditer(norm):
        consider(m, "ago", _num(m.group(1)) * unit_days(m.group(2)))
    for m in _PAST_RE.finditer(norm):
        consider(m, "ongoing", _num(m.group(1)) * unit_days(m.group(2)))
    for m in _FOR_RE.finditer(norm):
        consider(m, "ongoing", _num(m.group(1)) * unit_days(m.group(2)))
    for m in _DAY_POST_RE.finditer(norm):
        consider(m, "ago", float(m.group(1)))
    if age is not None:
        for m in _AT_AGE_RE.finditer(norm):
            consider(m, "ago", max(0.0, (age - float(m.group(1))) * 365.25))
    for phrase, days in _SIMPLE_TIMES.items():
        for m in re.finditer(rf"\b{phrase}\b", norm):
            consider(m, "ago", days)
    if best is None:
        return None
    return best[1], best[2]


_NUM_RE = re.compile(r"^\s*(\d{1,3}(?:,\d{3})+|\d+(?:[.,]\d+)?)")


def parse_number(text: str) -> float | None:
    """Parse "1,500", "1.5", European "1,5" and spelled-out small numbers; None when it isn't a number."""
    text = text.strip()
    m = _NUM_RE.match(text)
    if m:
        raw = m.group(1)
        if re.fullmatch(r"\d{1,3}(?:,\d{3})+", raw):
            return float(raw.replace(",", ""))
        return float(raw.replace(",", "."))
    word = re.match(r"^([a-z]+)", text)
    if word and word.group(1) in _NUMBER_WORDS and word.group(1) not in ("a", "an"):
        return float(_NUMBER_WORDS[word.group(1)])
    return None


#: One pattern per vocabulary term set; the sets come from the versioned vocabulary (a few thousand at
#: most), and 64 entries thrashed: 37% misses in a match, each a regex compile of hundreds of terms.
@lru_cache(maxsize=8192)
def _plural_regex(terms: tuple[str, ...]) -> tuple[re.Pattern[str], frozenset[str]]:
    parts = sorted({t for t in terms if t}, key=len, reverse=True)
    body = "|".join(re.escape(c).replace(r"\ ", r"\s+") for c in parts)
    return re.compile(rf"(?<![a-z0-9])(?:{body})(?:e?s)?(?![a-z0-9])"), frozenset(parts)


def find_terms(norm: str, terms: tuple[str, ...]) -> list[tuple[int, int, str]]:
    """Non-overlapping occurrences of vocabulary terms (longest first, plurals allowed) as (start, end, term)."""
    if not terms:
        return []
    rx, known = _plural_regex(terms)
    out = []
    for m in rx.finditer(norm):
        term = re.sub(r"\s+", " ", m.group(0))
        if term not in known:
            for cut in (1, 2):
                if term[:-cut] in known:
                    term = term[:-cut]
                    break
        out.append((m.start(), m.end(), term))
    return out


def short_term_ok(original: str) -> bool:
    """Short synonyms ("MI", "PE", "TB") only count when written as an acronym, not as a common word."""
    core = re.sub(r"[^A-Za-z]", "", original)
    return len(core) > 3 or (bool(core) and core.isupper())


def find_concepts(sentence: Sentence, vocab: Vocab | None = None) -> list[tuple[int, int, set[str]]]:
    """Condition concepts mentioned in a sentence, as (start, end, concept ids)."""
    vocab = vocab or load_vocab()
    out = []
    for start, end, term in find_terms(sentence.norm, vocab.synonym_terms):
        if len(term) <= 3 and not short_term_ok(sentence.original(start, end)):
            continue
        out.append((start, end, set(vocab.synonym_index.get(term, set()))))
    return out
