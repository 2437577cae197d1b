"""The ranking evaluation, and the fast tier that pins its figures on the bundled sample.

The sample contains every TREC 2021 judged study of the legacy XML set, so the figures here are the
development figures.  A change to the matcher or the eligibility engine that lowers them fails CI; a
change that raises them should raise the pins (MEASURED below) in the same commit.
"""

from __future__ import annotations

import io
from pathlib import Path

import pytest

from trialfinder.cli import main
from trialfinder.matching.ranking_eval import (
    EvalError,
    evaluate_ranking,
    load_qrels,
    load_topics,
    score_run,
    topic_number,
    write_trec_run,
)
from trialfinder.store import open_store

DATA = Path(__file__).parent / "data" / "trec-2021"
QUERIES = DATA / "queries.jsonl"
QRELS = DATA / "qrels.tsv"

#: Figures measured on the sample (all 57 topics with a judged study present); pins are these minus a
#: small margin, so only a real regression fails. Re-pinned when the verdict adjustments were
#: recalibrated on full-corpus runs (the "eligible" bonus is gone) and every note word given half its
#: IDF weight (PLAIN_SHARE 0.5, +0.06 nDCG@10 at full corpus): nDCG@10 0.836 -> 0.812 here.
MEASURED = {"nDCG@10": 0.8120, "P(rel=2)@10": 0.2228, "RR(rel=2)": 0.5916}
MARGIN = 0.02


@pytest.fixture(scope="module")
def report(sample_db_master: Path):
    with open_store(sample_db_master, readonly=True) as store:
        return evaluate_ranking(store, load_topics(QUERIES), load_qrels(QRELS))


def test_pinned_figures(report) -> None:
    tf = report.systems["trialfinder"].means
    bm = report.systems["bm25"].means
    assert report.topics >= 55
    for measure, value in MEASURED.items():
        assert tf[measure] >= value - MARGIN, (measure, tf[measure])
    assert tf["nDCG@10"] >= 1.2 * bm["nDCG@10"], (tf, bm)
    assert tf["P(rel=2)@10"] > bm["P(rel=2)@10"]
    assert tf["RR(rel=2)"] > bm["RR(rel=2)"]


def test_split_figures_beat_bm25_on_both_halves(report) -> None:
    assert set(report.splits) == {"odd", "even"}
    for half in report.splits.values():
        tf, bm = half["trialfinder"].means, half["bm25"].means
        assert tf["nDCG@10"] >= 1.1 * bm["nDCG@10"]
        assert tf["P(rel=2)@10"] >= bm["P(rel=2)@10"]


def test_bm25_baseline_is_stable(report) -> None:
    # the baseline must not drift silently: it is what the 1.2x target is measured against
    assert report.systems["bm25"].means["nDCG@10"] == pytest.approx(0.6698, abs=0.002)


def test_report_shapes(report) -> None:
    d = report.to_dict()
    assert d["topics"] == report.topics and d["ndcgRatio"] == pytest.approx(report.ratio(), abs=1e-3)
    text = report.format()
    assert "trialfinder" in text and "bm25" in text and "odd topics" in text
    out = io.StringIO()
    write_trec_run(report.run, out)
    lines = out.getvalue().splitlines()
    assert len(lines) == report.studies
    topic, q0, doc, rank, score, tag = lines[0].split()
    assert q0 == "Q0" and doc.startswith("NCT") and rank == "1" and tag == "trialfinder"
    float(score)


def test_loaders(tmp_path: Path) -> None:
    q = tmp_path / "q.jsonl"
    q.write_text('{"_id": "t1", "text": "note one"}\n\n{"_id": "t2", "text": "note two", "metadata": {}}\n')
    assert load_topics(q) == {"t1": "note one", "t2": "note two"}
    r = tmp_path / "r.tsv"
    r.write_text("query-id\tcorpus-id\tscore\nt1\tNCT1\t2\nt1 NCT2 0\nt2 0 NCT3 1\n")
    assert load_qrels(r) == {"t1": {"NCT1": 2, "NCT2": 0}, "t2": {"NCT3": 1}}
    bad = tmp_path / "bad.tsv"
    bad.write_text("t1\tNCT1\t2\nt1\tNCT2\tx\n")
    with pytest.raises(EvalError, match="bad.tsv:2"):
        load_qrels(bad)
    q.write_text('{"id": 1}\n')
    with pytest.raises(EvalError, match="q.jsonl:1"):
        load_topics(q)
    assert topic_number("trec-202113") == 13 and topic_number("trec-20211") == 1 and topic_number("7") == 7


def test_score_run_measures() -> None:
    qrels = {"t": {"a": 2, "b": 1, "c": 0}}
    perfect = score_run(qrels, {"t": [("a", 3.0), ("b", 2.0), ("c", 1.0)]}, "x")
    worst = score_run(qrels, {"t": [("c", 3.0), ("b", 2.0), ("a", 1.0)]}, "x")
    assert perfect.means["nDCG@10"] == pytest.approx(1.0)
    assert perfect.means["RR(rel=2)"] == pytest.approx(1.0)
    assert worst.means["RR(rel=2)"] == pytest.approx(1 / 3)
    assert worst.means["nDCG@10"] < perfect.means["nDCG@10"]


def test_cli_eval_ranking(sample_db_master: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # five topics keep this fast; the figures on all topics are pinned above
    qrels = tmp_path / "qrels.tsv"
    keep = ("trec-20211\t", "trec-20212\t", "trec-20214\t", "trec-202110\t", "trec-202113\t")
    qrels.write_text("".join(line for line in QRELS.read_text().splitlines(True)
                             if line.startswith(("query-id",) + keep)))
    run = tmp_path / "run.trec"
    rc = main(["eval", "ranking", "--queries", str(QUERIES), "--qrels", str(qrels), "--db", str(sample_db_master),
               "--run", str(run), "--json"])
    assert rc == 0
    import json

    data = json.loads(capsys.readouterr().out)
    assert data["topics"] == 5
    assert data["all"]["trialfinder"]["nDCG@10"] > data["all"]["bm25"]["nDCG@10"]
    assert run.read_text().startswith("trec-2021")
    assert main(["eval", "ranking", "--queries", str(QUERIES), "--qrels", str(qrels), "--db",
                 str(sample_db_master)]) == 0
    assert "nDCG@10 ratio" in capsys.readouterr().out


def test_cli_eval_ranking_errors(sample_db_master: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["eval", "ranking", "--queries", str(tmp_path / "none.jsonl"), "--qrels", str(QRELS),
                 "--db", str(sample_db_master)]) == 1
    assert "no such file" in capsys.readouterr().err
    empty = tmp_path / "q.tsv"
    empty.write_text("t1\tNCT99999999\t2\n")
    q = tmp_path / "q.jsonl"
    q.write_text('{"_id": "t1", "text": "a note"}\n')
    assert main(["eval", "ranking", "--queries", str(q), "--qrels", str(empty), "--db", str(sample_db_master)]) == 1
    assert "ingest them first" in capsys.readouterr().err


def test_full_corpus_mode(sample_db_master: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """`eval ranking --full-corpus` ranks the whole database with match() and BM25 and writes the run."""
    from trialfinder.matching.fullcorpus_eval import evaluate_full_corpus

    topics = load_topics(QUERIES)
    qrels = load_qrels(QRELS)
    few = {t: qrels[t] for t in sorted(qrels)[:3]}
    with open_store(sample_db_master, readonly=True) as store:
        report = evaluate_full_corpus(store, topics, few)
    assert 1 <= report.topics <= 3 and report.studies > 1000
    for tid, docs in report.run.items():
        assert 0 < len(docs) <= 100 and len(report.bm25_run[tid]) <= 100
        assert [s for _d, s in docs] == sorted((s for _d, s in docs), reverse=True)
    assert set(report.systems["trialfinder"].means) == {"nDCG@10", "P@10", "P(rel=2)@10", "R@100"}
    assert set(report.systems) == {"trialfinder", "bm25", "bm25-qtf"}
    assert "nDCG@10 ratio trialfinder / bm25-qtf" in report.format()
    queries = tmp_path / "q.jsonl"
    queries.write_text("".join(line + "\n" for line in QUERIES.read_text().splitlines()[:3]))
    run = tmp_path / "run.trec"
    assert main(["eval", "ranking", "--full-corpus", "--queries", str(queries), "--qrels", str(QRELS),
                 "--db", str(sample_db_master), "--run", str(run), "--json"]) == 0
    data = __import__("json").loads(capsys.readouterr().out)
    assert data["mode"] == "full-corpus" and data["records"] == "full"
    assert set(data["ndcgRatioByBaseline"]) == {"bm25", "bm25-qtf"}
    lines = run.read_text().splitlines()
    assert lines and all(len(x.split()) == 6 for x in lines)
    assert main(["eval", "ranking", "--summary-only", "--queries", str(queries), "--qrels", str(QRELS),
                 "--db", str(sample_db_master)]) == 2


def test_summary_only_record() -> None:
    from trialfinder.matching.fullcorpus_eval import summary_only_record

    rec = __import__("json").loads((Path(__file__).parent / "data" / "NCT05631717.json").read_text())
    cut = summary_only_record(rec)
    ps = cut["protocolSection"]
    assert set(ps) == {"identificationModule", "statusModule", "descriptionModule"}
    assert ps["identificationModule"]["nctId"] == "NCT05631717" and ps["descriptionModule"]["briefSummary"]
    assert "eligibilityModule" not in ps and "conditionsModule" not in ps
