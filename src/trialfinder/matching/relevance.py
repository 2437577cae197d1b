"""Text relevance of studies to a patient: a condition-centred query built from the note, BM25F scoring.

A clinical note is a poor search query as it stands: most of its words (history, presented, weeks,
blood pressure values, medications taken years ago, denied symptoms) say nothing about which trials
fit, and plain BM25 over the whole note lets them drown out the one diagnosis that matters.  So the
query keeps the note's words that the registry itself uses to *name conditions*: a word's weight is its
rarity (IDF) times its "condition affinity" (the share of the studies containing the word that carry it
in their conditions, keywords or condition MeSH terms), learned from the database rather than from a
hand-written list, so it stays valid as the registry changes.  Negated and family-history clauses
("denies diabetes", "mother had breast cancer") are dropped first, repeated words and words early in the
note (the chief complaint) count more, and conditions the eligibility engine extracted are added.

Studies are then scored with BM25F over their fields (conditions and keywords above titles above the
summary and criteria), plus a bonus when two adjacent query words appear together in a condition
("aortic stenosis", "anaplastic astrocytoma").
"""

from __future__ import annotations

import math
import re
import threading
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

#: Fields used to score relevance and their BM25F weights.
SCORE_FIELDS: dict[str, float] = {
    "conditions": 3.0,
    "keywords": 2.0,
    "cond_mesh": 1.5,
    "title": 2.0,
    "summary": 0.6,
    "eligibility": 0.4,
}
#: Fields whose presence of a word makes it "condition-like".
CONDITION_FIELDS = ("conditions", "keywords", "cond_mesh")
#: Fields where a study must name one of the patient's anchor words to be shown (see ``anchors``).
ANCHOR_FIELDS = ("title", "conditions", "keywords", "cond_mesh", "summary")
#: A query word is an anchor when its weight is at least this share of the strongest word's.
ANCHOR_SHARE = 0.5
#: Fields searched when retrieving candidates from the whole database.
RETRIEVAL_FIELDS = ("title", "conditions", "keywords", "cond_mesh")
K1 = 1.2
B = 0.75
#: How strongly condition affinity shapes a word's weight (0 = plain IDF).
AFFINITY_POWER = 1.0
MAX_TERMS = 40
#: Weights are raised to this power so the few strongest words (the main diagnosis) dominate the many
#: weak ones (comorbidities, symptoms).
WEIGHT_POWER = 0.7
#: Every affirmed note word keeps this much weight (times its IDF) whatever its condition affinity, so a
#: diagnosis described only by its findings ("schistocytes", "shiga toxin") still counts. 0.5 rather than
#: the earlier 0.05: over the whole database (full-corpus TREC 2021 runs) it raised nDCG@10 from 0.353 to
#: 0.406 on all topics and on both halves of the odd/even split (the pooled re-rank lost 0.02).
PLAIN_SHARE = 0.5
#: Words less condition-like than this are left out of the query altogether.
MIN_AFFINITY = 0.0
#: The query's strongest terms whose presence in a study's condition fields :func:`score_studies`
#: reports as condition coverage (``covered``).
COVERAGE_TERMS = 8
#: Smoothing of condition affinity towards a prior, so a word seen in two studies cannot look certain.
AFFINITY_PRIOR = 0.05
AFFINITY_PRIOR_WEIGHT = 30.0

#: Function words: never condition words, and the largest posting lists of the index, so they are not
#: even looked up (over the whole registry each lookup would read megabytes).
STOPWORDS = (
    "a an and are as at be been being but by did do does for from had has have he her hers him his i if in "
    "into is it its of on or our she so than that the their them then there these they this those to was we "
    "were what when where which while who whom why will with would you your patient patients year years old "
    "also after before during about over under again who presented presents"
)
_STOP_STEMS: set[str] = set()

_CLAUSE_SPLIT = re.compile(r"[.;:!?\n]+|,\s+(?=(?:but|however|although|and)\b)", re.IGNORECASE)


@dataclass
class QueryTerm:
    """One weighted query word: ``term`` is the index's stem, ``word`` a surface form from the note."""

    term: str
    word: str
    weight: float
    tf: int = 1
    idf: float = 0.0
    affinity: float = 0.0
    source: str = "note"  # "note" or "condition" (named by the eligibility engine or the facts)


@dataclass
class PatientQuery:
    """The weighted words describing a patient's conditions, strongest first."""

    terms: list[QueryTerm] = field(default_factory=list)
    bigrams: dict[tuple[str, str], float] = field(default_factory=dict)
    #: every affirmed note word the index knows (stopwords out) with its count in the note and its IDF:
    #: the bag of words of plain BM25 (:func:`score_studies`'s ``plain``), which :mod:`.match` fuses in
    note_bag: dict[str, tuple[int, float]] = field(default_factory=dict)

    @property
    def weights(self) -> dict[str, float]:
        return {t.term: t.weight for t in self.terms}

    def top_words(self, k: int = 10, min_affinity: float = 0.1, min_idf: float = 0.5) -> list[str]:
        """Surface words of the ``k`` strongest condition-like terms, for retrieval and for display.

        Words with little condition affinity ("man", "old") or found in most studies ("and") still count
        when scoring but never retrieve on their own: a note without any condition-like word matches nothing.
        """
        good = [t.word for t in self.terms
                if t.idf >= min_idf and (t.affinity >= min_affinity or t.source == "condition")]
        return good[:k]

    def retrieval_words(self, k: int = 8, min_idf: float = 3.0, keep: int = 2) -> list[str]:
        """The words that retrieve candidates: the strongest condition-like words that are also
        selective (IDF >= ``min_idf``, i.e. in fewer than about 5% of studies), else the ``keep`` rarest.

        Why: a candidate search costs time in proportion to how many studies its words match, and words
        like "disease", "cell" or "pain" match a third of the registry while adding nothing that the
        rarer words of the same patient do not already find; they still count when scoring.
        """
        strong = [t for t in self.terms if t.word in set(self.top_words(2 * k))]
        chosen = [t.word for t in strong if t.idf >= min_idf][:k]
        if len(chosen) < keep:
            rest = sorted((t for t in strong if t.word not in chosen), key=lambda t: -t.idf)
            chosen += [t.word for t in rest[: keep - len(chosen)]]
        return chosen

    def anchors(self, share: float = ANCHOR_SHARE) -> set[str]:
        """The query's strongest terms (weight >= ``share`` of the top one): what a study must be about.

        Why: a long note shares some word with almost every study ("biopsy", "dose", "stable"); a study
        that names none of the patient's main words in what it is about (title, conditions, keywords,
        summary) is noise, such as a cancer trial for a lupus patient.
        """
        if not self.terms:
            return set()
        top = max(t.weight for t in self.terms)
        return {t.term for t in self.terms if t.weight >= share * top}

    def is_empty(self) -> bool:
        return not self.terms


class IndexStats:
    """Tokenisation and term statistics of a store's text index, with a per-database cache."""

    _cache: dict[tuple[str, str], dict[str, int]] = {}
    _cache_stamp: dict[str, int] = {}
    _n_docs: dict[str, int] = {}
    _guard = threading.Lock()

    def __init__(self, store: Any) -> None:
        from trialfinder.matching import text_stats

        self.store = store
        self.sql = text_stats
        self.key = str(getattr(store, "url", id(store)))
        stamp = store.data_seq()
        with self._guard:
            if self._cache_stamp.get(self.key) != stamp:
                for k in [k for k in self._cache if k[0] == self.key]:
                    del self._cache[k]
                self._n_docs.pop(self.key, None)
                self._cache_stamp[self.key] = stamp

    @property
    def n_docs(self) -> int:
        n = self._n_docs.get(self.key)
        if n is None:
            n = self._n_docs[self.key] = max(1, self.sql.study_count(self.store))
        return n

    def tokenize(self, texts: Sequence[str]) -> list[list[tuple[str, int]]]:
        return self.sql.tokenize(texts)

    def field_counts(self, terms: Iterable[str]) -> dict[str, dict[str, int]]:
        terms = set(terms)
        out: dict[str, dict[str, int]] = {}
        missing = []
        for t in terms:
            hit = self._cache.get((self.key, t))
            if hit is None:
                missing.append(t)
            else:
                out[t] = hit
        if missing:
            fetched = self.sql.term_field_counts(self.store, missing)
            with self._guard:
                if len(self._cache) > 200_000:
                    self._cache.clear()
                for t in missing:
                    counts = fetched.get(t, {})
                    self._cache[(self.key, t)] = counts
                    out[t] = counts
        return out

    def study_texts(self, nct_ids: Sequence[str]) -> dict[str, dict[str, str]]:
        return self.sql.study_texts(self.store, nct_ids)


# --------------------------------------------------------------------------------------------------
# query building


def affirmed_text(note: str) -> str:
    """The note without negated or family-history clauses, so "denies diabetes" adds no diabetes.

    A clause is cut at the first negation or family cue of the eligibility vocabulary up to the next
    clause boundary (punctuation, or a terminator such as "but" or "presented").
    """
    from trialfinder.eligibility.vocab import load_vocab

    rx_neg, rx_term = _cue_patterns(id(load_vocab()))
    kept: list[str] = []
    for clause in _CLAUSE_SPLIT.split(note):
        low = clause.lower()
        m = rx_neg.search(low)
        if m is None:
            kept.append(clause)
            continue
        end = len(clause)
        t = rx_term.search(low, m.end())
        if t is not None:
            end = t.start()
        kept.append(clause[: m.start()] + " " + clause[end:])
    return " . ".join(kept)


_PATTERNS: dict[int, tuple[re.Pattern[str], re.Pattern[str]]] = {}


def _cue_patterns(vocab_id: int) -> tuple[re.Pattern[str], re.Pattern[str]]:
    pats = _PATTERNS.get(vocab_id)
    if pats is None:
        from trialfinder.eligibility.vocab import load_vocab

        vocab = load_vocab()
        neg = [c for c in vocab.cues.get("negation_pre", []) if c not in ("resolved", "absent", "none")]
        neg += [c for c in vocab.cues.get("family", []) if c not in ("relative", "relatives", "partner")]
        terms = vocab.cues.get("terminators", [])

        def alt(words: list[str]) -> str:
            return "|".join(re.escape(w) for w in sorted(set(words), key=len, reverse=True))

        pats = (re.compile(rf"(?<![\w-])(?:{alt(neg)})(?![\w-])"), re.compile(rf"(?<![\w-])(?:{alt(terms)})(?![\w-])"))
        _PATTERNS[vocab_id] = pats
    return pats


_STAGE = re.compile(r"\b(?:class|stage|grade|nyha(?: class)?|who class|functional class)\s*[-:]?\s*"
                    r"(?:[ivx]{1,4}|[0-4])[a-c]?(?:\s*(?:-|to|or|/)\s*(?:[ivx]{1,4}|[0-4])[a-c]?)?(?![\w])",
                    re.IGNORECASE)
_TEST_RESULT = re.compile(r"\b([\w+]+)[\s-]+(?:negative|neg|non-?reactive|undetectable)\b", re.IGNORECASE)
#: Words before "negative" that name a kind of disease, not a test result ("triple negative breast cancer").
_NEGATIVE_KINDS = {"triple", "her2", "er", "pr", "hormone", "receptor", "estrogen", "progesterone", "double",
                   "gram", "seronegative", "sero", "philadelphia", "ph", "jak2", "alk", "egfr", "kras"}
_ANALYTE_RX: list[re.Pattern[str]] = []


def _analyte_value() -> re.Pattern[str]:
    """An analyte name followed by a value ("eGFR 68", "hemoglobin of 9.1 g/dL", "ECOG 1")."""
    if not _ANALYTE_RX:
        from trialfinder.eligibility.vocab import load_vocab

        names = {n.lower() for n in load_vocab().analyte_names if len(n) >= 2}
        alt = "|".join(re.escape(n) for n in sorted(names, key=len, reverse=True))
        _ANALYTE_RX.append(re.compile(
            rf"(?<![\w-])(?:{alt})(?![\w])\s*(?:\([^)]{{0,20}}\)\s*)?(?:level\s*)?(?:of|was|is|at|=|:)?\s*"
            r"(?:[<>≤≥~]=?\s*)?\d[\d.,]*(?:\s*(?:%|[a-zµμ/^.0-9]+(?:/[\w.^]+)*))?", re.IGNORECASE))
    return _ANALYTE_RX[0]


def search_text(note: str) -> str:
    """The note as a source of search words: affirmed clauses only, measurements and test results out.

    Why: a lab value names a measurement, not a condition ("eGFR 68" is kidney function, not the EGFR
    gene of lung-cancer trials); "HIV negative" says the patient does *not* have HIV; and a class or stage
    ("class IV", "stage 2") is a qualifier of the disease beside it, meaningless as a word of its own.
    The disease words around a removed class stay adjacent, so their phrase still counts.
    """
    text = _analyte_value().sub(" , ", note)

    def drop_result(m: re.Match[str]) -> str:
        return m.group(0) if m.group(1).lower() in _NEGATIVE_KINDS else " , "

    text = _TEST_RESULT.sub(drop_result, text)
    return affirmed_text(_STAGE.sub(" ", text))


def _idf(n: int, df: int) -> float:
    return math.log(1.0 + (n - df + 0.5) / (df + 0.5))


def build_query(stats: IndexStats, note: str | None, conditions: Sequence[str] = (),
                max_terms: int = MAX_TERMS) -> PatientQuery:
    """Weighted condition words of a patient: from the note (affirmed clauses only) and named conditions."""
    texts = [search_text(note) if note else "", " ; ".join(conditions)]
    words = list(dict.fromkeys(re.findall(r"[^\W_]+", ((note or "") + " ; " + texts[1]).lower())))
    toks_note, toks_cond, *toks_words = stats.tokenize([*texts, *words])
    surface: dict[str, str] = {}
    for w, tw in zip(words, toks_words, strict=True):
        if len(tw) == 1:
            surface.setdefault(tw[0][0], w)
    tf = Counter(t for t, _ in toks_note)
    length = max(1, len(toks_note))
    first: dict[str, int] = {}
    for t, pos in toks_note:
        first.setdefault(t, pos)
    cond_terms = {t for t, _ in toks_cond}
    if not _STOP_STEMS:
        _STOP_STEMS.update(t for t, _ in stats.tokenize([STOPWORDS])[0])
    vocab = (set(tf) | cond_terms) - _STOP_STEMS
    counts = stats.field_counts(vocab)
    n = stats.n_docs
    terms: list[QueryTerm] = []
    for t in vocab:
        c = counts.get(t) or {}
        df = c.get("*", 0)
        if df == 0 or not t.isalpha() or len(t) < 2:
            continue
        cond_df = max(c.get(f, 0) for f in CONDITION_FIELDS)
        affinity = (cond_df + AFFINITY_PRIOR_WEIGHT * AFFINITY_PRIOR) / (df + AFFINITY_PRIOR_WEIGHT)
        idf = _idf(n, df)
        w = idf * (affinity ** AFFINITY_POWER + PLAIN_SHARE)
        if affinity < MIN_AFFINITY and t not in cond_terms:
            continue
        if t in tf:
            position = 1.0 + 0.5 * (1.0 - first[t] / length)
            w *= (1.0 + math.log(tf[t])) * position
        if t in cond_terms:
            w *= 1.5
        w = w ** WEIGHT_POWER
        terms.append(QueryTerm(t, surface.get(t, t), w, tf.get(t, 0), idf, affinity,
                               "condition" if t in cond_terms and t not in tf else "note"))
    terms.sort(key=lambda q: (-q.weight, q.term))
    terms = terms[:max_terms]
    bag = {t: (k, _idf(n, counts[t]["*"])) for t, k in tf.items()
           if t not in _STOP_STEMS and (counts.get(t) or {}).get("*", 0) > 0}
    keep = {q.term for q in terms}
    bigrams: dict[tuple[str, str], float] = {}
    weights = {q.term: q.weight for q in terms}
    for seq in (toks_note, toks_cond):
        for (a, pa), (b, pb) in zip(seq, seq[1:], strict=False):
            if pb == pa + 1 and a in keep and b in keep and a != b:
                bigrams[(a, b)] = max(bigrams.get((a, b), 0.0), min(weights[a], weights[b]))
    return PatientQuery(terms, bigrams, bag)


# --------------------------------------------------------------------------------------------------
# scoring


def score_studies(stats: IndexStats, query: PatientQuery, nct_ids: Sequence[str],
                  texts: dict[str, dict[str, str]] | None = None,
                  matched: dict[str, list[str]] | None = None,
                  anchored: set[str] | None = None,
                  plain: dict[str, float] | None = None,
                  covered: dict[str, float] | None = None) -> dict[str, float]:
    """BM25F relevance of each study to the query (0 for a study that shares no query word).

    When ``plain`` is given it receives, per study, plain Okapi BM25 of the note's bag of words
    (:attr:`PatientQuery.note_bag`: every affirmed word, counted as often as the note says it, IDF
    only) over the same fields run together, lengths relative to the scored studies' average.

    When ``matched`` is given it receives, per study, the query words found in its conditions,
    keywords or title, strongest first (to show why a study came up). When ``anchored`` is given it
    receives the studies that name one of the query's anchor words (:meth:`PatientQuery.anchors`) in
    their title, conditions, keywords, condition MeSH terms or brief summary.

    When ``covered`` is given it receives, per study, the share of the weight of the query's
    :data:`COVERAGE_TERMS` strongest terms that the study names in its condition fields (conditions,
    keywords, condition MeSH terms): 1.0 when its conditions name everything the patient mainly has,
    whatever its summary says. BM25F counts a word wherever it occurs; this asks whether the study is
    *about* the patient's conditions, as a trial's condition list states.
    """
    scores = {n: 0.0 for n in nct_ids}
    if query.is_empty() or not nct_ids:
        return scores
    texts = texts if texts is not None else stats.study_texts(nct_ids)
    ids = [n for n in nct_ids if n in texts]
    fields = list(SCORE_FIELDS)
    flat = [texts[n][f] for n in ids for f in fields]
    toks = stats.tokenize(flat)
    lengths = [len(t) for t in toks]
    avg = {f: max(1.0, sum(lengths[i * len(fields) + j] for i in range(len(ids))) / max(1, len(ids)))
           for j, f in enumerate(fields)}
    weights = query.weights
    words = {t.term: t.word for t in query.terms}
    anchors = query.anchors() if anchored is not None else set()
    bag = query.note_bag if plain is not None else {}
    plain_avg = max(1.0, sum(lengths) / max(1, len(ids)))
    key = {t.term: t.weight for t in sorted(query.terms, key=lambda q: -q.weight)[:COVERAGE_TERMS]}
    key_total = sum(key.values()) or 1.0
    for i, nct in enumerate(ids):
        acc: dict[str, float] = {}  # BM25F pseudo term frequency: a float, so not a Counter
        pair_hit: set[tuple[str, str]] = set()
        topical: set[str] = set()
        in_conditions: set[str] = set()
        for j, f in enumerate(fields):
            seq = toks[i * len(fields) + j]
            if not seq:
                continue
            if covered is not None and f in CONDITION_FIELDS:
                in_conditions.update(t for t, _ in seq if t in key)
            norm = SCORE_FIELDS[f] / (1.0 - B + B * len(seq) / avg[f])
            for t, _ in seq:
                if t in weights:
                    acc[t] = acc.get(t, 0.0) + norm
                    if matched is not None and f in RETRIEVAL_FIELDS:
                        topical.add(t)
                    if anchored is not None and t in anchors and f in ANCHOR_FIELDS:
                        anchored.add(nct)
            if f in RETRIEVAL_FIELDS and query.bigrams:
                for (a, pa), (b, pb) in zip(seq, seq[1:], strict=False):
                    if pb == pa + 1 and (a, b) in query.bigrams:
                        pair_hit.add((a, b))
        s = sum(weights[t] * v / (K1 + v) for t, v in acc.items())
        s += 0.5 * sum(query.bigrams[p] for p in pair_hit)
        scores[nct] = s
        if covered is not None:
            covered[nct] = sum(key[t] for t in in_conditions) / key_total
        if plain is not None:
            plain[nct] = _plain_bm25(bag, toks[i * len(fields):(i + 1) * len(fields)], plain_avg)
        if matched is not None:
            matched[nct] = [words[t] for t in sorted(topical, key=lambda t: -weights[t])]
    return scores


def _plain_bm25(bag: dict[str, tuple[int, float]], seqs: Sequence[Sequence[tuple[str, int]]], avg: float) -> float:
    """Okapi BM25 (k1 = 1.2, b = 0.75) of a bag of words ``{term: (count in the query, IDF)}`` over the
    fields ``seqs`` taken as one text whose length is compared with ``avg``."""
    length = sum(len(seq) for seq in seqs)
    if not bag or not length:
        return 0.0
    tf = Counter(t for seq in seqs for t, _ in seq if t in bag)
    norm = K1 * (1.0 - B + B * length / avg)
    return sum(bag[t][0] * bag[t][1] * k * (K1 + 1.0) / (k + norm) for t, k in tf.items())
