"""How strong is "plain BM25 of the note"? Several off-the-shelf BM25 set-ups over the same texts.

`trialfinder eval ranking --full-corpus` states its goal against one BM25 (tantivy, the index's own
analyzer, every distinct note word ORed once) and reports a second (stop words out, each word weighted
by its count in the note, Anserini's bag-of-words query). Published and ad-hoc "BM25 of the whole note"
figures differ mostly by the query: whether repeated words count, whether stop words are removed and
whether words are stemmed. This script ranks the whole database for each judged TREC 2021 topic with
each variant, over the same concatenated study texts as the evaluation, and prints nDCG@10 (all topics,
odd and even halves), P@10 and recall@100, so a ratio can be read against each of them:

* ``tantivy, our analyzer, distinct words`` -- the evaluation's ``bm25``;
* ``tantivy, our analyzer, counted, stop words out`` -- the evaluation's ``bm25-qtf``;
* ``tantivy, our analyzer, counted, the matcher's longer stop-word list out`` -- the same with the
  matcher's own list (pronouns, "patient", "years", "presented", ...): the strongest of these;
* ``tantivy default tokenizer (no stemming), note as an OR query`` -- tantivy out of the box;
* ``rank_bm25 Okapi ...`` -- the ``rank_bm25`` package (if installed) on lower-cased words, the note's
  words with repeats, with and without Lucene's English stop words.

```sh
.venv/bin/python benchmarks/bm25_baselines.py --db /tmp/match-legacy.sqlite [--summary-only]
```
"""

from __future__ import annotations

import argparse
import re
import tempfile
from collections.abc import Callable
from pathlib import Path

import tantivy

from trialfinder.index.document import text_fields
from trialfinder.matching.fullcorpus_eval import (
    DEPTH,
    LUCENE_STOPWORDS,
    CorpusBM25,
    score_full,
    summary_only_copy,
)
from trialfinder.matching.ranking_eval import load_qrels, load_topics, topic_number
from trialfinder.matching.relevance import STOPWORDS
from trialfinder.model.study import RecordError, normalize
from trialfinder.store import open_store

DATA = Path(__file__).resolve().parent.parent / "tests" / "data" / "trec-2021"
Ranker = Callable[[str], list[str]]


def _words(text: str) -> list[str]:
    return re.findall(r"\w+", text.lower())


def rankers(store: object, ids: list[str], texts: list[str]) -> dict[str, Ranker]:
    """Each BM25 variant as a function note -> the top ``DEPTH`` study ids."""
    ours = CorpusBM25(store)
    out: dict[str, Ranker] = {
        "tantivy, our analyzer, distinct words (eval: bm25)": lambda n: [d for d, _ in ours.search(n)],
        "tantivy, our analyzer, counted, stop words out (eval: bm25-qtf)":
            lambda n: [d for d, _ in ours.search(n, counted=True)],
        "tantivy, our analyzer, counted, the matcher's longer stop-word list out":
            lambda n: [d for d, _ in ours.search(n, counted=True, stopwords=STOPWORDS)],
    }
    tmp = tempfile.mkdtemp(prefix="tf-bm25-default-")
    sb = tantivy.SchemaBuilder()
    sb.add_text_field("id", stored=True, tokenizer_name="raw")
    sb.add_text_field("body")  # tantivy's default tokenizer: split, lower-case, no stemming
    index = tantivy.Index(sb.build(), path=tmp)
    w = index.writer(100_000_000, 1)
    for d, t in zip(ids, texts, strict=True):
        w.add_document(tantivy.Document(id=d, body=t))
    w.commit()
    w.wait_merging_threads()
    index.reload()
    searcher = index.searcher()

    def default(note: str) -> list[str]:
        words = sorted(set(_words(note)))
        if not words:
            return []
        q = index.parse_query(" OR ".join(words), ["body"])
        return [searcher.doc(a)["id"][0] for _s, a in searcher.search(q, limit=DEPTH).hits]

    out["tantivy default tokenizer (no stemming), note as an OR query"] = default
    try:
        from rank_bm25 import BM25Okapi
    except ImportError:
        print("(rank_bm25 not installed: its rows are skipped; pip install rank-bm25)")
        return out
    okapi = BM25Okapi([_words(t) for t in texts])
    stops = set(LUCENE_STOPWORDS.split())

    def top(scores: object) -> list[str]:
        ranked = sorted(range(len(ids)), key=lambda i: -scores[i])[:DEPTH]  # type: ignore[index]
        return [ids[i] for i in ranked if scores[i] > 0]  # type: ignore[index]

    out["rank_bm25 Okapi, lower-cased words, note words with repeats"] = lambda n: top(okapi.get_scores(_words(n)))
    out["rank_bm25 Okapi, same, Lucene stop words out"] = lambda n: top(
        okapi.get_scores([x for x in _words(n) if x not in stops]))
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--db", required=True)
    ap.add_argument("--queries", default=str(DATA / "queries.jsonl"))
    ap.add_argument("--qrels", default=str(DATA / "qrels.tsv"))
    ap.add_argument("--summary-only", action="store_true", help="on a title + brief summary copy of the database")
    args = ap.parse_args()
    topics, qrels = load_topics(args.queries), load_qrels(args.qrels)
    with tempfile.TemporaryDirectory(prefix="tf-bm25b-") as tmp:
        db = args.db
        if args.summary_only:
            with open_store(args.db) as src:
                summary_only_copy(src, Path(tmp) / "summary.sqlite")
            db = str(Path(tmp) / "summary.sqlite")
        with open_store(db) as store:
            ids, texts = [], []
            for rec in store.iter_records():
                try:
                    s = normalize(rec)
                except RecordError:
                    continue
                ids.append(s.nct_id)
                texts.append("\n".join(text_fields(s).values()))
            present = set(ids)
            cut = {t: {d: r for d, r in q.items() if d in present} for t, q in qrels.items() if t in topics}
            cut = {t: q for t, q in cut.items() if any(r > 0 for r in q.values())}
            halves = {h: [t for t in cut if (topic_number(t) or 0) % 2 == p] for h, p in (("odd", 1), ("even", 0))}
            print(f"{len(ids)} studies, {len(cut)} topics; nDCG@10 all / odd / even, P@10, recall@100")
            for name, rank in rankers(store, ids, texts).items():
                run = {t: [(d, float(DEPTH - k)) for k, d in enumerate(rank(topics[t]))] for t in sorted(cut)}
                a = score_full(cut, run, name).means
                o, e = (score_full(cut, run, name, halves[h]).means["nDCG@10"] for h in ("odd", "even"))
                print(f"{name:<68} {a['nDCG@10']:.4f} / {o:.4f} / {e:.4f}   {a['P@10']:.4f}   {a['R@100']:.4f}")


if __name__ == "__main__":
    main()
