"""Full-corpus ranking evaluation: what a user of ``trialfinder match`` actually gets.

The pooled evaluation (:mod:`.ranking_eval`) re-ranks each topic's judged studies; it measures the
re-rank, not whether the right studies are found among all the others. Here every stored study is a
candidate: for each topic the same :func:`trialfinder.matching.match` the command line runs (all
statuses, top ``depth``) ranks the whole database, and so does plain Okapi BM25 of the whole note over
the same texts (every indexed field of a study concatenated, one field, statistics from the whole
database, in a private index built once per run). Unjudged studies count as not relevant; the judgments
are cut to the studies present in the database, so every system faces the same achievable ideal.

There are two BM25 baselines because "plain BM25 of the note" is not one thing: ORing each distinct
word once (``bm25``, the baseline the goals are stated against) and counting repeated words with stop
words removed (``bm25-qtf``, Anserini's bag-of-words query) differ by about 0.05 nDCG@10 on TREC 2021
(the counted query is stronger), and without stop-word removal a counted query is far weaker still.
Both are reported so that no ratio rests on a weak baseline.

Measures (``ir_measures``): nDCG@10 (graded 2 > 1 > 0), P@10 and recall@100 counting a study as relevant
when judged 1 or 2 (the patient has the condition it studies; 2 = also eligible), and P@10 counting only
eligible studies. Figures are given on all topics and on the odd/even topic split.

``summary_only_copy`` writes the summary-only variant of a corpus (each record cut to its title and brief
summary), the case of records with no condition list and no criteria.
"""

from __future__ import annotations

import tempfile
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

from trialfinder.matching.ranking_eval import SystemScores, system_tables, topic_number

FULL_MEASURES = ("nDCG@10", "P@10", "P(rel=2)@10", "R@100")
FULL_LABELS = {"nDCG@10": "nDCG@10", "P@10": "P@10", "P(rel=2)@10": "P@10 (eligible)", "R@100": "recall@100"}
DEPTH = 100
#: Lucene's English stop words (``EnglishAnalyzer``'s default set), for the query-counted baseline.
LUCENE_STOPWORDS = ("a an and are as at be but by for if in into is it no not of on or such that the their then "
                    "there these they this to was will with")
#: The baselines: ``bm25`` ORs every distinct note word once (the figure the goal is stated against);
#: ``bm25-qtf`` drops stop words and weights each word by how often the note says it, the bag-of-words
#: query of Anserini/Pyserini runs. Same index, same analyzer, tantivy's BM25 (k1 = 1.2, b = 0.75).
BASELINES = ("bm25", "bm25-qtf")


class CorpusBM25:
    """Plain BM25 over every study of a store, one concatenated text field, in a private tantivy index."""

    def __init__(self, store: Any) -> None:
        import tantivy

        from trialfinder.index.document import text_fields
        from trialfinder.index.schema import ANALYZER, analyzer
        from trialfinder.model.study import RecordError, normalize

        self._tmp = tempfile.TemporaryDirectory(prefix="tf-bm25-")
        sb = tantivy.SchemaBuilder()
        sb.add_text_field("doc_id", stored=True, tokenizer_name="raw")
        sb.add_text_field("body", tokenizer_name=ANALYZER)
        self.schema = sb.build()
        self.index = tantivy.Index(self.schema, path=self._tmp.name)
        self.index.register_tokenizer(ANALYZER, analyzer())
        w = self.index.writer(heap_size=100_000_000, num_threads=1)
        self.ids: list[str] = []
        for rec in store.iter_records():
            try:
                s = normalize(rec)
            except RecordError:
                continue
            self.ids.append(s.nct_id)
            w.add_document(tantivy.Document(doc_id=s.nct_id, body="\n".join(text_fields(s).values())))
        w.commit()
        w.wait_merging_threads()
        self.index.reload()
        self.searcher = self.index.searcher()

    def search(self, note: str, k: int = DEPTH, *, counted: bool = False,
               stopwords: str = LUCENE_STOPWORDS) -> list[tuple[str, float]]:
        """The top ``k`` studies for the whole note, every distinct word ORed; with ``counted``, the
        ``stopwords`` out and each word's score multiplied by its count in the note."""
        from collections import Counter

        import tantivy

        from trialfinder.index.schema import analyze

        Q = tantivy.Query
        if counted:
            stops = set(analyze(stopwords))
            bag = Counter(t for t in analyze(note) if t not in stops)
            clauses = [Q.boost_query(Q.term_query(self.schema, "body", t), float(c)) for t, c in sorted(bag.items())]
        else:
            clauses = [Q.term_query(self.schema, "body", t) for t in sorted(set(analyze(note)))]
        if not clauses:
            return []
        q = Q.boolean_query([(tantivy.Occur.Should, c) for c in clauses])
        res = self.searcher.search(q, limit=k, count=False)
        return [(self.searcher.doc(a)["doc_id"][0], float(s)) for s, a in res.hits]

    def close(self) -> None:
        self._tmp.cleanup()


def score_full(qrels: dict[str, dict[str, int]], run: dict[str, list[tuple[str, float]]], name: str,
               topics: Iterable[str] | None = None) -> SystemScores:
    """Mean and per-topic figures of :data:`FULL_MEASURES` (topics without hits score 0)."""
    import ir_measures

    wanted = set(run if topics is None else topics)
    measures = [ir_measures.parse_measure(m) for m in FULL_MEASURES]
    q = [ir_measures.Qrel(t, d, r) for t, docs in qrels.items() if t in wanted for d, r in docs.items()]
    r = [ir_measures.ScoredDoc(t, d, s) for t, docs in run.items() if t in wanted for d, s in docs]
    per: dict[str, dict[str, float]] = {t: {str(m): 0.0 for m in measures} for t in wanted}
    for m in ir_measures.iter_calc(measures, q, r):
        per.setdefault(m.query_id, {})[str(m.measure)] = float(m.value)
    means = {str(m): (sum(p[str(m)] for p in per.values()) / len(per) if per else 0.0) for m in measures}
    return SystemScores(name, means, per)


@dataclass
class FullCorpusReport:
    """trialfinder's ``match`` and plain BM25 over the whole database, on all topics and each half."""

    topics: int
    studies: int
    systems: dict[str, SystemScores]
    splits: dict[str, dict[str, SystemScores]]
    run: dict[str, list[tuple[str, float]]]
    bm25_run: dict[str, list[tuple[str, float]]]

    def ratio(self, measure: str = "nDCG@10", split: str | None = None, baseline: str = "bm25") -> float:
        systems = self.systems if split is None else self.splits[split]
        base = systems[baseline].means.get(measure, 0.0)
        return systems["trialfinder"].means.get(measure, 0.0) / base if base else float("inf")

    def to_dict(self) -> dict[str, Any]:
        return {
            "mode": "full-corpus", "topics": self.topics, "studies": self.studies,
            "all": {k: v.to_dict()["means"] for k, v in self.systems.items()},
            "splits": {s: {k: v.to_dict()["means"] for k, v in d.items()} for s, d in self.splits.items()},
            "ndcgRatio": round(self.ratio(), 4),
            "ndcgRatioSplits": {s: round(self.ratio(split=s), 4) for s in self.splits},
            "ndcgRatioByBaseline": {b: {"all": round(self.ratio(baseline=b), 4),
                                        **{s: round(self.ratio(split=s, baseline=b), 4) for s in self.splits}}
                                    for b in BASELINES if b in self.systems},
        }

    def format(self) -> str:
        lines = [f"full corpus: {self.studies} studies, {self.topics} topics (unjudged studies count as not relevant)"]
        lines += system_tables(self.systems, self.splits, FULL_MEASURES, FULL_LABELS, 17)
        return "\n".join(lines)


def evaluate_full_corpus(store: Any, topics: dict[str, str], qrels: dict[str, dict[str, int]], *,
                         depth: int = DEPTH, progress: TextIO | None = None,
                         match_options: dict[str, Any] | None = None) -> FullCorpusReport:
    """Rank the whole database for each judged topic with ``match`` (all statuses) and with BM25."""
    from trialfinder.matching.match import match

    bm25 = CorpusBM25(store)
    try:
        present = set(bm25.ids)
        cut: dict[str, dict[str, int]] = {}
        tf_run: dict[str, list[tuple[str, float]]] = {}
        bm_run: dict[str, list[tuple[str, float]]] = {}
        qtf_run: dict[str, list[tuple[str, float]]] = {}
        todo = [t for t in sorted(qrels) if t in topics]
        for i, tid in enumerate(todo):
            pool = {d: r for d, r in qrels[tid].items() if d in present}
            if not any(r > 0 for r in pool.values()):
                continue
            cut[tid] = pool
            result = match(store, topics[tid], status="all", limit=depth, **(match_options or {}))
            tf_run[tid] = [(h.nct_id, float(depth - k)) for k, h in enumerate(result.hits)]
            bm_run[tid] = [(d, float(depth - k)) for k, (d, _s) in enumerate(bm25.search(topics[tid], depth))]
            qtf_run[tid] = [(d, float(depth - k))
                            for k, (d, _s) in enumerate(bm25.search(topics[tid], depth, counted=True))]
            if progress is not None:
                progress.write(f"\rranked {i + 1}/{len(todo)} topics")
                progress.flush()
        if progress is not None:
            progress.write("\n")
    finally:
        bm25.close()
    runs = {"trialfinder": tf_run, "bm25": bm_run, "bm25-qtf": qtf_run}
    systems = {name: score_full(cut, r, name) for name, r in runs.items()}
    splits: dict[str, dict[str, SystemScores]] = {}
    for label, parity in (("odd", 1), ("even", 0)):
        ids = [t for t in cut if (topic_number(t) or 0) % 2 == parity]
        if ids:
            splits[label] = {name: score_full(cut, r, name, ids) for name, r in runs.items()}
    return FullCorpusReport(len(cut), len(present), systems, splits, tf_run, bm_run)


def summary_only_record(rec: dict[str, Any]) -> dict[str, Any]:
    """A record cut to its identity, status, title and brief summary (no conditions, criteria, sites)."""
    ps = rec.get("protocolSection") or {}
    ident = ps.get("identificationModule") or {}
    status = ps.get("statusModule") or {}
    out_ident = {k: ident[k] for k in ("nctId", "briefTitle") if ident.get(k)}
    out_ps: dict[str, Any] = {"identificationModule": out_ident}
    if status.get("overallStatus"):
        out_ps["statusModule"] = {"overallStatus": status["overallStatus"]}
    summary = (ps.get("descriptionModule") or {}).get("briefSummary")
    if summary:
        out_ps["descriptionModule"] = {"briefSummary": summary}
    return {"protocolSection": out_ps}


def summary_only_copy(store: Any, path: str | Path) -> int:
    """Write the summary-only copy of every study of ``store`` into a new database at ``path``."""
    import orjson

    from trialfinder.api import ingest
    from trialfinder.store import open_store

    dst = Path(path)
    with tempfile.TemporaryDirectory(prefix="tf-summary-") as tmp:
        src = Path(tmp) / "studies.ndjson"
        n = 0
        with open(src, "wb") as fh:
            for rec in store.iter_records():
                fh.write(orjson.dumps(summary_only_record(rec)) + b"\n")
                n += 1
        with open_store(dst) as out:
            ingest(out, [str(src)])
    return n
