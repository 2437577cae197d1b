"""The first stage of matching: candidates from the whole database through the search engine's index.

Why two routes, fused: a patient's note is long and a trial's text names a condition in a few words.

* **Whole-note route** -- every informative word of the note (conditions, findings, treatments,
  demographics; negated and family-history clauses already removed by :func:`.relevance.build_query`)
  becomes a term query over all the ranked text fields (title, conditions, keywords, condition MeSH,
  interventions, summary, description, eligibility), each boosted by its field weight times the word's
  weight in the patient query; adjacent word pairs of the note ("lupus nephritis", "aortic stenosis")
  add phrase queries over the topical fields. This is what reaches studies that name the disease only in
  their summary or criteria, and records that carry only a title and a summary. It never comes out empty
  when the note has a word the index knows.
* **Condition route** -- the condition vocabulary: the words the registry uses to name conditions, the
  conditions the eligibility engine read in the note and the registry's own expansions of the note's
  acronyms, searched in titles, conditions, keywords and condition MeSH only. Precise when it fires.

The two rankings are fused by reciprocal-rank fusion (Cormack et al. 2009), which needs no score
calibration between routes; the fused first-stage score is kept and fused again with the re-rank in
:mod:`.match`. Both routes use the search engine's own filters (age, sex, status, place), so matching and
search agree on what "recruiting", an age or a place admits.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

#: Field weights of the whole-note route (the BM25F weights of the re-rank, plus interventions and
#: descriptions so that treatments and long texts count).
NOTE_FIELDS: dict[str, float] = {
    "conditions": 3.0,
    "keywords": 2.0,
    "cond_mesh": 1.5,
    "title": 2.0,
    "interventions": 0.5,
    "summary": 0.6,
    "description": 0.2,
    "eligibility": 0.4,
}
#: Fields of the condition route and of the phrase boosts.
CONDITION_ROUTE_FIELDS = ("title", "conditions", "keywords", "cond_mesh")
#: Reciprocal-rank fusion constant (the usual 60).
RRF_K = 60.0
#: Weight of the whole-note route in the fusion (the condition route has 1.0).
NOTE_ROUTE_WEIGHT = 1.0
#: Weight of a phrase (adjacent query words) relative to its weaker word.
PHRASE_WEIGHT = 1.0
#: Query words taken into the whole-note route (strongest first), bounded for speed on large databases.
NOTE_TERMS = 32


@dataclass
class Candidate:
    """One retrieved study: its fused first-stage score and what the routes said."""

    nct_id: str
    fused: float = 0.0
    note_score: float = 0.0
    note_rank: int | None = None
    cond_rank: int | None = None
    distance_km: float | None = None
    location_id: int | None = None


def note_query_parts(query: Any, terms: int = NOTE_TERMS) -> tuple[list[tuple[str, float]], list[tuple[tuple[str, str], float]]]:
    """The whole-note route's weighted index terms and weighted adjacent pairs (phrases)."""
    chosen = [(t.term, t.weight) for t in query.terms[:terms] if t.weight > 0]
    keep = {t for t, _ in chosen}
    pairs = [(p, w * PHRASE_WEIGHT) for p, w in query.bigrams.items() if p[0] in keep and p[1] in keep]
    return chosen, pairs


def _note_builder(terms: list[tuple[str, float]], pairs: list[tuple[tuple[str, str], float]]) -> Any:
    """A callable building the whole-note route's tantivy clauses for a schema (see ``retrieve``)."""
    import tantivy

    Q, Occur = tantivy.Query, tantivy.Occur

    def build(schema: Any) -> list[Any]:
        out = []
        for tok, w in terms:
            per_field = [Q.boost_query(Q.term_query(schema, f, tok), fw * w) for f, fw in NOTE_FIELDS.items()]
            out.append(Q.boolean_query([(Occur.Should, q) for q in per_field]))
        for (a, b), w in pairs:
            per_field = [Q.boost_query(Q.phrase_query(schema, f, [a, b]), NOTE_FIELDS[f] * w)
                         for f in CONDITION_ROUTE_FIELDS]
            out.append(Q.boolean_query([(Occur.Should, q) for q in per_field]))
        return out

    return build


def retrieve_candidates(store: Any, query: Any, *, condition_words: Sequence[str], phrases: Sequence[str],
                        limit: int, filters: dict[str, Any], note_weight: float = NOTE_ROUTE_WEIGHT,
                        note_terms: int = NOTE_TERMS) -> list[Candidate]:
    """Both routes through the index, fused by reciprocal rank; best first, at most ``limit``."""
    from trialfinder.search.execute import retrieve

    by_id: dict[str, Candidate] = {}
    terms, pairs = note_query_parts(query, note_terms)
    if terms:
        rows = retrieve(store, [], (), limit=limit, extra=_note_builder(terms, pairs), **filters)
        for rank, (nct, score, dist, lid) in enumerate(rows, 1):
            c = by_id.setdefault(nct, Candidate(nct, distance_km=dist, location_id=lid))
            c.note_score, c.note_rank = score, rank
            c.fused += note_weight / (RRF_K + rank)
    if condition_words or phrases:
        from trialfinder.matching.relevance import RETRIEVAL_FIELDS

        rows = retrieve(store, list(condition_words), RETRIEVAL_FIELDS, limit=limit, phrases=list(phrases), **filters)
        for rank, (nct, _score, dist, lid) in enumerate(rows, 1):
            c = by_id.setdefault(nct, Candidate(nct, distance_km=dist, location_id=lid))
            c.cond_rank = rank
            c.fused += 1.0 / (RRF_K + rank)
    ranked = sorted(by_id.values(), key=lambda c: (-c.fused, c.nct_id))
    return ranked[:limit]
