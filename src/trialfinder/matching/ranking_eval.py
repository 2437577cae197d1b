"""Ranking evaluation: trialfinder's matcher against plain BM25 on judged patient topics.

Input is the TREC Clinical Trials shape: topics as JSON lines ``{"_id", "text"}`` (a patient note each)
and judgments ``query-id corpus-id score`` (0 not relevant, 1 excluded, 2 eligible; an optional header
line).  For each topic, the judged studies that are in the database are ranked twice in the same run:

* by trialfinder (:func:`trialfinder.matching.match.rank_studies`: condition-centred relevance plus
  eligibility verdicts), and
* by plain Okapi BM25 of the whole note over the same studies' indexed text (every field concatenated,
  no field weights, statistics from the pool), the usual baseline;

and both are scored with ``ir_measures``: nDCG@10 (graded: 2 > 1 > 0), P@10 and reciprocal rank counting
only *eligible* studies (relevance level 2).

Only judged studies present in the database are ranked, and the judgments are cut to those, so both
systems face the same achievable ideal.  Topics without any present study judged 1 or 2 are skipped
(every system scores 0 on them).  Figures are also given on a fixed split (odd / even topic numbers)
so a change tuned on one half can be checked on the other.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

import orjson

from trialfinder.errors import TrialfinderError

MEASURE_NAMES = ("nDCG@10", "P(rel=2)@10", "RR(rel=2)")
#: Short names for printing.
LABELS = {"nDCG@10": "nDCG@10", "P(rel=2)@10": "P@10 (eligible)", "RR(rel=2)": "RR (eligible)"}


class EvalError(TrialfinderError, ValueError):
    """Malformed topics or judgments; the message names the file and line."""


def load_topics(path: str | Path) -> dict[str, str]:
    """Topic id -> patient text, from JSON lines with ``_id`` and ``text``."""
    topics: dict[str, str] = {}
    with open(path, "rb") as fh:
        for n, line in enumerate(fh, 1):
            if not line.strip():
                continue
            try:
                d = orjson.loads(line)
            except orjson.JSONDecodeError as exc:
                raise EvalError(f"{path}:{n}: not JSON: {exc}") from exc
            if not isinstance(d, dict) or "_id" not in d or not isinstance(d.get("text"), str):
                raise EvalError(f"{path}:{n}: expected an object with '_id' and 'text'")
            topics[str(d["_id"])] = d["text"]
    return topics


def load_qrels(path: str | Path) -> dict[str, dict[str, int]]:
    """Topic id -> {study id: relevance}, from ``query-id corpus-id score`` lines (tabs or spaces).

    Also accepts the four-column TREC form ``query-id 0 corpus-id score``.
    """
    qrels: dict[str, dict[str, int]] = {}
    with open(path, encoding="utf-8") as fh:
        for n, line in enumerate(fh, 1):
            parts = line.split()
            if not parts:
                continue
            if len(parts) == 4:
                parts = [parts[0], parts[2], parts[3]]
            if len(parts) != 3:
                raise EvalError(f"{path}:{n}: expected 'query-id corpus-id score'")
            try:
                score = int(parts[2])
            except ValueError:
                if n == 1:
                    continue  # header
                raise EvalError(f"{path}:{n}: score {parts[2]!r} is not an integer") from None
            qrels.setdefault(parts[0], {})[parts[1]] = score
    return qrels


def topic_number(topic_id: str) -> int | None:
    """The trailing number of a topic id ("trec-202113" -> 13 after the year prefix is removed).

    TREC 2021/2022 ids are ``trec-2021N``; the number after the four-digit year decides the split.
    """
    m = re.search(r"(\d+)$", topic_id)
    if not m:
        return None
    digits = m.group(1)
    if len(digits) > 4 and digits[:2] in ("19", "20"):
        digits = digits[4:]
    return int(digits) if digits else None


@dataclass
class SystemScores:
    """Mean figures of one system over a set of topics, and per topic."""

    name: str
    means: dict[str, float]
    per_topic: dict[str, dict[str, float]] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "means": {k: round(v, 4) for k, v in self.means.items()}}


@dataclass
class RankingReport:
    """The evaluation of trialfinder and BM25 on all topics and on the odd/even split."""

    topics: int
    studies: int
    missing: int
    systems: dict[str, SystemScores]
    splits: dict[str, dict[str, SystemScores]]
    run: dict[str, list[tuple[str, float]]]

    def ratio(self, measure: str = "nDCG@10", split: str | None = None) -> float:
        systems = self.systems if split is None else self.splits[split]
        base = systems["bm25"].means.get(measure, 0.0)
        return systems["trialfinder"].means.get(measure, 0.0) / base if base else float("inf")

    def to_dict(self) -> dict[str, Any]:
        return {
            "topics": self.topics, "judgedStudiesRanked": self.studies, "judgedStudiesMissing": self.missing,
            "all": {k: v.to_dict()["means"] for k, v in self.systems.items()},
            "splits": {s: {k: v.to_dict()["means"] for k, v in d.items()} for s, d in self.splits.items()},
            "ndcgRatio": round(self.ratio(), 4),
        }

    def format(self) -> str:
        lines = [f"topics: {self.topics}   judged studies ranked: {self.studies}"
                 + (f"   (judged but not in the database: {self.missing})" if self.missing else "")]
        lines += system_tables(self.systems, self.splits, MEASURE_NAMES, LABELS, 18)
        return "\n".join(lines)


def system_tables(systems: dict[str, Any], splits: dict[str, dict[str, Any]], measures: Sequence[str],
                  labels: dict[str, str], width: int) -> list[str]:
    """The report's tables: each system's means per measure (trialfinder first, then the baselines), for
    all topics and each split, with the nDCG@10 ratio to each baseline (shared by the pooled and the
    full-corpus reports)."""
    lines: list[str] = []
    header = f"{'':<22}" + "".join(f"{labels[m]:>{width}}" for m in measures)
    for title, by_name in [("all topics", systems)] + [(f"{s} topics", d) for s, d in splits.items()]:
        lines.append("")
        lines.append(f"{title} ({len(next(iter(by_name.values())).per_topic)})")
        lines.append(header)
        for name, sys_ in by_name.items():
            lines.append(f"  {name:<20}" + "".join(f"{sys_.means.get(m, 0.0):>{width}.4f}" for m in measures))
        for name in by_name:
            base = by_name[name].means.get("nDCG@10", 0.0)
            if name != "trialfinder" and base:
                label = "BM25" if name == "bm25" else name
                lines.append(f"  nDCG@10 ratio trialfinder / {label}: {by_name['trialfinder'].means['nDCG@10'] / base:.3f}")
    return lines


def _measures() -> list[Any]:
    import ir_measures

    return [ir_measures.parse_measure(m) for m in MEASURE_NAMES]


def score_run(qrels: dict[str, dict[str, int]], run: dict[str, list[tuple[str, float]]], name: str,
              topics: Iterable[str] | None = None) -> SystemScores:
    """Mean and per-topic nDCG@10, P(rel=2)@10 and RR(rel=2) of a run (ids -> [(doc, score)])."""
    import ir_measures

    wanted = set(run if topics is None else topics)
    q = [ir_measures.Qrel(t, d, r) for t, docs in qrels.items() if t in wanted for d, r in docs.items()]
    r = [ir_measures.ScoredDoc(t, d, s) for t, docs in run.items() if t in wanted for d, s in docs]
    measures = _measures()
    per: dict[str, dict[str, float]] = {t: {str(m): 0.0 for m in measures} for t in wanted}
    for m in ir_measures.iter_calc(measures, q, r):
        per.setdefault(m.query_id, {})[str(m.measure)] = float(m.value)
    means = {str(m): (sum(p[str(m)] for p in per.values()) / len(per) if per else 0.0) for m in measures}
    return SystemScores(name, means, per)


def _ranked(scores: dict[str, float]) -> list[tuple[str, float]]:
    """Scores made strictly decreasing in rank order (ties broken by id), as trec_eval expects."""
    order = sorted(scores, key=lambda d: (-scores[d], d))
    n = len(order)
    return [(d, float(n - i)) for i, d in enumerate(order)]


def evaluate_ranking(store: Any, topics: dict[str, str], qrels: dict[str, dict[str, int]],
                     progress: TextIO | None = None) -> RankingReport:
    """Rank each topic's judged studies with trialfinder and with BM25 and score both."""
    from trialfinder.matching import text_stats
    from trialfinder.matching.match import rank_studies

    judged = {d for t in qrels.values() for d in t}
    present = store.existing_ids(judged)
    texts = text_stats.study_texts(store, sorted(present))
    flat = {d: "\n".join(v.values()) for d, v in texts.items()}
    cut: dict[str, dict[str, int]] = {}
    tf_run: dict[str, list[tuple[str, float]]] = {}
    bm_run: dict[str, list[tuple[str, float]]] = {}
    for i, (tid, docs) in enumerate(sorted(qrels.items())):
        pool = {d: r for d, r in docs.items() if d in present}
        if tid not in topics or not any(r > 0 for r in pool.values()):
            continue
        cut[tid] = pool
        hits = rank_studies(store, topics[tid], sorted(pool))
        tf_run[tid] = _ranked({h.nct_id: h.score for h in hits})
        bm = text_stats.pool_bm25({d: flat[d] for d in pool}, topics[tid])
        bm_run[tid] = _ranked(bm)
        if progress is not None:
            progress.write(f"\rranked {i + 1}/{len(qrels)} topics")
            progress.flush()
    if progress is not None:
        progress.write("\n")
    systems = {"trialfinder": score_run(cut, tf_run, "trialfinder"), "bm25": score_run(cut, bm_run, "bm25")}
    splits: dict[str, dict[str, SystemScores]] = {}
    for label, parity in (("odd", 1), ("even", 0)):
        ids = [t for t in cut if (topic_number(t) or 0) % 2 == parity]
        if ids:
            splits[label] = {"trialfinder": score_run(cut, tf_run, "trialfinder", ids),
                             "bm25": score_run(cut, bm_run, "bm25", ids)}
    missing = len(judged - present)
    return RankingReport(len(cut), sum(len(p) for p in cut.values()), missing, systems, splits, tf_run)


def write_trec_run(run: dict[str, list[tuple[str, float]]], out: TextIO, tag: str = "trialfinder") -> None:
    """A run in TREC format: ``topic Q0 study rank score tag`` per line."""
    for tid in sorted(run):
        for rank, (doc, score) in enumerate(run[tid], 1):
            out.write(f"{tid} Q0 {doc} {rank} {score:.6f} {tag}\n")

