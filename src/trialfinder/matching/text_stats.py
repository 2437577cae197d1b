"""What the patient matcher reads from the text index: tokens, term statistics, study texts, pool BM25.

The matcher builds its query from a patient's note, so it needs the note's words exactly as the text
index sees them (:func:`trialfinder.index.schema.analyze`: same tokenizer, same stems) and how many
studies contain each word, per field, across the whole database (tantivy's document frequencies of
the current snapshot). Patient text is analysed in memory and never written anywhere.
"""

from __future__ import annotations

import tempfile
from collections.abc import Iterable, Sequence
from typing import Any

import tantivy

from trialfinder.index.document import text_fields
from trialfinder.index.follow import current_snapshot
from trialfinder.index.schema import ANALYZER, TEXT_FIELDS, analyze, analyzer
from trialfinder.model.study import RecordError, normalize


def tokenize(texts: Sequence[str]) -> list[list[tuple[str, int]]]:
    """Each text's index terms as ``(term, position)`` in order."""
    return [[(tok, i) for i, tok in enumerate(analyze(t or ""))] for t in texts]


def term_field_counts(store: Any, terms: Iterable[str]) -> dict[str, dict[str, int]]:
    """For each index term, the number of studies whose field contains it, per text field, plus ``"*"``:
    an estimate of the number of studies containing it anywhere (the largest per-field count, a lower
    bound; an exact count would need the union of the postings)."""
    searcher = current_snapshot(store).snapshot.searcher
    out: dict[str, dict[str, int]] = {}
    for t in sorted({t for t in terms if t}):
        counts = {}
        for f in TEXT_FIELDS:
            n = int(searcher.doc_freq(f, t))
            if n:
                counts[f] = n
        if counts:
            counts["*"] = max(counts.values())
        out[t] = counts
    return out


def study_count(store: Any) -> int:
    """Studies in the current snapshot (the N of inverse document frequencies)."""
    return current_snapshot(store).snapshot.num_docs


def study_texts(store: Any, nct_ids: Sequence[str]) -> dict[str, dict[str, str]]:
    """The indexed texts of the given studies, field by field (the texts the search ranks)."""
    out: dict[str, dict[str, str]] = {}
    ids = list(nct_ids)
    for i in range(0, len(ids), 500):
        for nct, rec in store.get_many(ids[i:i + 500]).items():
            try:
                out[nct] = text_fields(normalize(rec))
            except RecordError:
                continue
    return out


def pool_bm25(texts: dict[str, str], query: str) -> dict[str, float]:
    """Plain Okapi BM25 (k1 = 1.2, b = 0.75) of ``query`` over a pool of texts, in a private index.

    This is the baseline of the ranking evaluation: one unweighted field, the index's own analyzer,
    every distinct query word ORed, statistics from the pool alone. Texts matching no word score 0.
    """
    scores = {k: 0.0 for k in texts}
    words = sorted(set(analyze(query)))
    if not words or not texts:
        return scores
    sb = tantivy.SchemaBuilder()
    sb.add_text_field("doc_id", stored=True, tokenizer_name="raw")
    sb.add_text_field("body", tokenizer_name=ANALYZER)
    schema = sb.build()
    with tempfile.TemporaryDirectory(prefix="tf-pool-") as tmp:
        index = tantivy.Index(schema, path=tmp)
        index.register_tokenizer(ANALYZER, analyzer())
        w = index.writer(heap_size=50_000_000, num_threads=1)
        for doc_id, body in texts.items():
            w.add_document(tantivy.Document(doc_id=doc_id, body=body or ""))
        w.commit()
        w.wait_merging_threads()
        index.reload()
        searcher = index.searcher()
        q = tantivy.Query.boolean_query([(tantivy.Occur.Should, tantivy.Query.term_query(schema, "body", w_))
                                         for w_ in words])
        for score, addr in searcher.search(q, limit=len(texts), count=False).hits:
            scores[searcher.doc(addr)["doc_id"][0]] = float(score)
    return scores
