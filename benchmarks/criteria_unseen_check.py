"""Criterion verdicts on patients the eligibility rules were not written on: TREC-2021 judged pairs.

Why: the criterion-level dev annotations are the patients the rules were written looking at, so their
accuracy says little about new patients. TREC-2021 has no criterion labels, but its assessors judged
(patient, study) pairs as eligible (2) or excluded (1). For an *eligible* pair, every "excluded" /
"not included" criterion verdict is a likely false exclusion (assessors err too, so read the list, not only
the count). For excluded pairs the share judged ineligible is reported beside it: a change that lowers
the false exclusions by no longer excluding anyone would show there. "Inclusions met on eligible
pairs" counts inclusion verdicts "included" there: most inclusions of a study a patient is eligible for
hold, so this is a recall figure (most of the rest are "not enough information").

Runs the same ``evaluate_study`` as ``trialfinder match`` on the judged studies that have text in the
shared legacy XML download (about 550), for the 75 topics. Topics are also reported in two fixed halves
(sorted ids, alternating), as for the dev annotations.

    .venv/bin/python benchmarks/criteria_unseen_check.py [--shared ../shared] [--list]
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import sys
import tarfile
from collections import Counter
from pathlib import Path

from trialfinder.eligibility import Patient, extract_patient
from trialfinder.eligibility.evaluate import evaluate_study
from trialfinder.sources.legacy_xml import convert

SHARED = Path(os.environ.get("TRIALFINDER_SHARED", Path(__file__).resolve().parents[2] / "shared"))
NEGATIVE = ("excluded", "not included")


def _records(tar_path: Path, wanted: set[str]) -> dict[str, dict]:
    out: dict[str, dict] = {}
    with tarfile.open(tar_path) as tf:
        for m in tf:
            if not m.isfile() or not m.name.endswith(".xml"):
                continue
            nct = m.name.rsplit("/", 1)[-1][:-4]
            if nct in wanted:
                fh = tf.extractfile(m)
                if fh is not None:
                    out[nct] = convert(fh.read())
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--shared", type=Path, default=SHARED, help="the shared data folder (default ../shared)")
    ap.add_argument("--list", action="store_true", help="print every negative verdict on an eligible pair")
    args = ap.parse_args(argv)
    bench = args.shared / "data/benchmarks/trec-2021"
    topics = {}
    with open(bench / "queries.jsonl", encoding="utf-8") as fh:
        for line in fh:
            if line.strip():
                t = json.loads(line)
                topics[t["_id"]] = t["text"]
    with open(bench / "qrels.tsv", encoding="utf-8") as fh:
        qrels = [(q, d, int(s)) for q, d, s in csv.reader(fh, delimiter="\t") if s.isdigit() and int(s) > 0]
    records = _records(args.shared / "data/ctgov/legacy-xml/clinical_study_xml.tar.gz", {d for _q, d, _s in qrels})
    half = {q: "AB"[i % 2] for i, q in enumerate(sorted(topics))}
    pairs: Counter[tuple[str, int]] = Counter()
    ineligible: Counter[tuple[str, int]] = Counter()
    criteria: Counter[tuple[str, int]] = Counter()
    negative: Counter[tuple[str, int]] = Counter()
    inclusions: Counter[tuple[str, int]] = Counter()
    met: Counter[tuple[str, int]] = Counter()
    listed: list[str] = []
    patients: dict[str, Patient] = {}
    for qid, nct, score in qrels:
        if nct not in records or qid not in topics:
            continue
        p = patients.get(qid) or patients.setdefault(qid, extract_patient(topics[qid]))
        v = evaluate_study(p, records[nct])
        for h in (half[qid], "all"):
            pairs[h, score] += 1
            ineligible[h, score] += v.verdict == "ineligible"
            criteria[h, score] += len(v.criteria)
            negative[h, score] += sum(c.label in NEGATIVE for c in v.criteria)
            inclusions[h, score] += sum(c.kind == "inclusion" for c in v.criteria)
            met[h, score] += sum(c.label == "included" for c in v.criteria)
        if score == 2 and args.list:
            listed += [f"{qid} {nct} {c.label}: {c.text[:120]!r} -> {c.explanation[:120]}"
                       for c in v.criteria if c.label in NEGATIVE]
    print("TREC-2021 judged pairs with text (topics in halves by sorted id, alternating)")
    for h in ("A", "B", "all"):
        e, x = (h, 2), (h, 1)
        print(f"  {h:>3}: eligible pairs {pairs[e]}, judged ineligible {ineligible[e]} "
              f"({ineligible[e] / max(pairs[e], 1):.3f}); negative criterion verdicts {negative[e]}/{criteria[e]} "
              f"({negative[e] / max(criteria[e], 1):.4f}) | excluded pairs {pairs[x]}, judged ineligible "
              f"{ineligible[x]} ({ineligible[x] / max(pairs[x], 1):.3f}) | inclusions met on eligible pairs "
              f"{met[e]}/{inclusions[e]}")
    for line in listed:
        print("   ", line)
    return 0


if __name__ == "__main__":
    sys.exit(main())
