"""``trialfinder match`` and ``trialfinder eval``: patient-to-trial matching and its evaluations.

``match PATIENT`` reads a patient from a ``.txt`` note or a ``.json`` facts file (``-`` reads standard
input) and prints the best-fitting studies with their eligibility verdicts and the criteria that
decided them.  The patient is read into memory only: nothing about it is written or logged.

``eval criteria`` scores the eligibility engine on criterion-level expert annotations; ``eval ranking``
compares trialfinder's ranking with plain BM25 on judged patient topics (TREC Clinical Trials format).
"""

from __future__ import annotations

import argparse
import importlib
import sys
import textwrap
from pathlib import Path
from typing import Any

import orjson


def register(sub: Any) -> None:
    """Add the ``match`` and ``eval`` subcommands to the main parser."""
    from trialfinder.cli.subcommand import add_db_options

    p = sub.add_parser("match", help="find studies that fit a patient (note or facts)",
                       description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("patient", metavar="PATIENT",
                   help="a .txt clinical note or a .json patient ({age, sex, conditions, note, ...}); - for stdin")
    p.add_argument("--near", metavar="PLACE", help="a place name or US ZIP code, resolved offline "
                                                    "(default: the patient's location, if given)")
    p.add_argument("--radius", metavar="DIST", help="radius with a unit, e.g. 50mi or 80km (default 50mi)")
    p.add_argument("--status", metavar="all|LIST", default=None,
                   help="which studies to consider: by default only those open for enrolment (RECRUITING, "
                        "NOT_YET_RECRUITING, ENROLLING_BY_INVITATION, AVAILABLE; with --near the site itself "
                        "must be recruiting); 'all' for every status, or a comma-separated list such as "
                        "RECRUITING,COMPLETED")
    p.add_argument("--recruiting", action="store_true", help=argparse.SUPPRESS)  # the default now; kept for scripts
    p.add_argument("--limit", type=int, default=10, metavar="N", help="number of studies (default 10)")
    p.add_argument("--all-criteria", action="store_true", help="with --json, every evaluated criterion")
    p.add_argument("--json", action="store_true", help="print JSON")
    add_db_options(p)
    p.set_defaults(func=cmd_match)

    e = sub.add_parser("eval", help="evaluate eligibility verdicts or the patient ranking")
    esub = e.add_subparsers(dest="eval_command", required=True, metavar="WHAT")
    c = esub.add_parser("criteria", help="criterion-level verdicts against expert annotations")
    c.add_argument("annotations", metavar="ANNOTATIONS.json")
    c.add_argument("--predictions", metavar="OUT.jsonl", help="write one prediction per annotation")
    c.add_argument("--cv", type=int, metavar="K", default=None,
                   help="also patient-level K-fold cross-validation: whole patients held out, the engine's "
                        "thresholds chosen on the other folds")
    c.add_argument("--split", choices=("halves",), default=None,
                   help="also score the two fixed patient halves (sorted ids, alternating) on their own")
    c.add_argument("--json", action="store_true", help="print the figures as JSON")
    c.set_defaults(func=cmd_eval_criteria)
    r = esub.add_parser("ranking", help="trialfinder vs plain BM25 on judged patient topics")
    r.add_argument("--queries", required=True, metavar="QUERIES.jsonl", help='topics: {"_id", "text"} per line')
    r.add_argument("--qrels", required=True, metavar="QRELS.tsv",
                   help="judgments: query-id corpus-id score (0 not relevant, 1 excluded, 2 eligible)")
    r.add_argument("--run", metavar="OUT.trec", help="write trialfinder's ranking in TREC run format "
                                                      "(with --full-corpus: the top 100 per topic)")
    r.add_argument("--full-corpus", action="store_true",
                   help="rank the whole database per topic with the same match() as 'trialfinder match' "
                        "(all statuses), against plain BM25 over the same texts; unjudged studies count as "
                        "not relevant (default: re-rank each topic's judged studies)")
    r.add_argument("--summary-only", action="store_true",
                   help="with --full-corpus: evaluate on a temporary copy of the database whose records keep "
                        "only their title and brief summary")
    r.add_argument("--json", action="store_true", help="print the figures as JSON")
    add_db_options(r)
    r.set_defaults(func=cmd_eval_ranking)


def read_patient(path: str) -> str | dict[str, Any]:
    """A patient from a file: JSON (an object of facts) when it parses as one, else the note text."""
    from trialfinder.cli.subcommand import CLIError

    if path == "-":
        data = sys.stdin.buffer.read()
    else:
        try:
            data = Path(path).read_bytes()
        except OSError as exc:
            raise CLIError(f"cannot read {path}: {exc.strerror or exc}", 1) from None
    text = data.decode("utf-8", errors="replace")
    stripped = text.strip()
    if not stripped:
        raise CLIError(f"{path}: empty patient file")
    if path.lower().endswith(".json") or stripped.startswith("{"):
        try:
            facts = orjson.loads(data)
        except orjson.JSONDecodeError as exc:
            if path.lower().endswith(".json"):
                raise CLIError(f"{path}: not valid JSON: {exc}") from None
            return text
        if not isinstance(facts, dict):
            raise CLIError(f"{path}: a JSON patient must be an object, e.g. "
                           '{"age": 58, "sex": "female", "conditions": ["type 2 diabetes"]}')
        return facts
    return text


def cmd_match(args: argparse.Namespace) -> int:
    from trialfinder import MatchError, match
    from trialfinder.cli.subcommand import CLIError, open_existing

    if args.limit < 1 or args.limit > 1000:
        raise CLIError("--limit must be between 1 and 1000")
    radius_km = None
    if args.radius:
        from trialfinder.search.request import parse_radius

        try:
            radius_km = parse_radius(args.radius, param="radius")
        except ValueError as exc:
            raise CLIError(str(exc)) from None
    patient = read_patient(args.patient)
    if radius_km is not None and not args.near and not (isinstance(patient, dict) and patient.get("location")):
        raise CLIError("--radius needs --near PLACE (or a \"location\" in the patient file)")
    with open_existing(args.db) as store:
        try:
            result = match(store, patient, near=args.near, radius_km=radius_km, status=args.status,
                           limit=args.limit)
        except MatchError as exc:
            raise CLIError(str(exc)) from None
    if args.json:
        sys.stdout.buffer.write(orjson.dumps(result.to_dict(all_criteria=args.all_criteria),
                                             option=orjson.OPT_INDENT_2) + b"\n")
        return 0
    print_match(result, sys.stdout)
    return 0


def print_match(result: Any, out: Any) -> None:
    """The ranked studies as text: verdict, title, why it matched, the deciding criteria."""
    from trialfinder.model.statuses import OPEN_STATUSES

    p = result.patient
    facts = [f"age {p['age']:g}" if p.get("age") is not None else "age unknown",
             p.get("sex") or "sex unknown"]
    if p.get("conditions"):
        facts.append("conditions: " + ", ".join(p["conditions"][:8]))
    out.write("patient: " + "; ".join(facts) + "\n")
    out.write("searched for: " + (", ".join(result.query_words) or "(nothing usable in the patient text)") + "\n")
    if result.place:
        out.write(f"near: {result.place}\n")
    considered = "all statuses" if not result.statuses else (
        "open for enrolment" if set(result.statuses) == set(OPEN_STATUSES)
        else ", ".join(s.replace("_", " ").lower() for s in result.statuses))
    out.write(f"studies considered: {considered}\n")
    out.write(f"{len(result.hits)} studies (of {result.candidates} candidates; eligibility: {result.engine}; "
              f"{result.elapsed_ms:.0f} ms)\n")
    for i, h in enumerate(result.hits, 1):
        out.write(f"\n{i:>2}. {h.nct_id}  [{h.verdict_label.upper()}]  {h.status.replace('_', ' ').lower()}\n")
        out.write(textwrap.indent(textwrap.fill(h.title, 100), "    ") + "\n")
        if h.conditions:
            out.write("    conditions: " + "; ".join(h.conditions[:5]) + "\n")
        if h.matched:
            out.write("    matched: " + ", ".join(h.matched[:8]) + "\n")
        if h.nearest:
            n = h.nearest
            where = ", ".join(x for x in (n["facility"], n["city"], n["state"], n["country"]) if x)
            dist = f" ({n['distanceMi']} mi)" if n.get("distanceMi") is not None else ""
            out.write(f"    nearest site: {where}{dist}\n")
        if h.verdict is not None:
            for c in h.verdict.deciding[:4]:
                why = f" -- {c.explanation}" if c.explanation else ""
                text = textwrap.shorten(c.text, 110, placeholder="...")
                out.write(f"    {c.label}: [{c.kind}] {text}{why}\n")


def cmd_eval_criteria(args: argparse.Namespace) -> int:
    from trialfinder.cli.subcommand import CLIError

    try:
        module = importlib.import_module("trialfinder.matching.criteria_eval")
    except ImportError:
        module = None
    fn = getattr(module, "evaluate_annotations", None)
    if fn is None:
        raise CLIError("criterion evaluation is not available in this version "
                       "(trialfinder.matching.criteria_eval.evaluate_annotations is missing)", 1)
    if not Path(args.annotations).is_file():
        raise CLIError(f"no annotations file at {args.annotations}", 1)
    if getattr(args, "split", None) == "halves" or args.cv is not None:
        from trialfinder.matching.criteria_eval import AnnotationError, cross_validate, split_halves

        try:  # a fixed half-split by patient, or k folds: both report the whole set beside the held-out part
            report = (split_halves(args.annotations) if getattr(args, "split", None) == "halves"
                      else cross_validate(args.annotations, args.cv))
        except AnnotationError as exc:
            raise CLIError(str(exc)) from None
        if args.json:
            sys.stdout.buffer.write(orjson.dumps(report.to_dict(), option=orjson.OPT_INDENT_2, default=str) + b"\n")
        else:
            print(report.whole.format())
            print()
            print(report.format())
        return 0
    result = _call_criteria_eval(fn, args.annotations, args.predictions)
    if args.json or not hasattr(result, "format"):
        data = result.to_dict() if hasattr(result, "to_dict") else result
        sys.stdout.buffer.write(orjson.dumps(data, option=orjson.OPT_INDENT_2, default=str) + b"\n")
    else:
        print(result.format())
    return 0


def _call_criteria_eval(fn: Any, annotations: str, predictions: str | None) -> Any:
    """Call the engine's evaluator whichever way it takes its prediction file (a path or a stream)."""
    import inspect

    params = inspect.signature(fn).parameters
    if predictions is None:
        return fn(annotations)
    for name in ("predictions", "predictions_path", "out", "predictions_out"):
        if name in params:
            ann = params[name].annotation
            if "TextIO" in str(ann) or "IO" in str(ann).split("|")[0]:
                with open(predictions, "w", encoding="utf-8") as fh:
                    return fn(annotations, **{name: fh})
            return fn(annotations, **{name: predictions})
    return fn(annotations, predictions)


def cmd_eval_ranking(args: argparse.Namespace) -> int:
    from trialfinder.cli.subcommand import CLIError, open_existing
    from trialfinder.matching.ranking_eval import (
        EvalError,
        evaluate_ranking,
        load_qrels,
        load_topics,
        write_trec_run,
    )

    for path in (args.queries, args.qrels):
        if not Path(path).is_file():
            raise CLIError(f"no such file: {path}", 1)
    try:
        topics = load_topics(args.queries)
        qrels = load_qrels(args.qrels)
    except EvalError as exc:
        raise CLIError(str(exc)) from None
    if args.summary_only and not args.full_corpus:
        raise CLIError("--summary-only goes with --full-corpus")
    if args.full_corpus:
        return _full_corpus(args, topics, qrels)
    with open_existing(args.db) as store:
        report = evaluate_ranking(store, topics, qrels, progress=sys.stderr if sys.stderr.isatty() else None)
    if report.topics == 0:
        raise CLIError("none of the judged studies is in the database: ingest them first", 1)
    if args.run:
        with open(args.run, "w", encoding="utf-8") as fh:
            write_trec_run(report.run, fh)
    if args.json:
        sys.stdout.buffer.write(orjson.dumps(report.to_dict(), option=orjson.OPT_INDENT_2) + b"\n")
    else:
        print(report.format())
    return 0


def _full_corpus(args: argparse.Namespace, topics: dict[str, str], qrels: dict[str, dict[str, int]]) -> int:
    import tempfile

    from trialfinder.cli.subcommand import CLIError, open_existing
    from trialfinder.matching.fullcorpus_eval import evaluate_full_corpus, summary_only_copy
    from trialfinder.matching.ranking_eval import write_trec_run
    from trialfinder.store import open_store

    progress = sys.stderr if sys.stderr.isatty() else None
    with tempfile.TemporaryDirectory(prefix="tf-eval-") as tmp:
        with open_existing(args.db) as store:
            if args.summary_only:
                path = Path(tmp) / "summary-only.sqlite"
                sys.stderr.write("writing the summary-only copy of the database...\n")
                summary_only_copy(store, path)
            else:
                report = evaluate_full_corpus(store, topics, qrels, progress=progress)
        if args.summary_only:
            with open_store(path) as copy:
                report = evaluate_full_corpus(copy, topics, qrels, progress=progress)
    if report.topics == 0:
        raise CLIError("none of the judged studies is in the database: ingest them first", 1)
    if args.run:
        with open(args.run, "w", encoding="utf-8") as fh:
            write_trec_run(report.run, fh)
    if args.json:
        data = report.to_dict()
        data["records"] = "summary-only" if args.summary_only else "full"
        sys.stdout.buffer.write(orjson.dumps(data, option=orjson.OPT_INDENT_2) + b"\n")
    else:
        if args.summary_only:
            print("records: title and brief summary only")
        print(report.format())
    return 0
