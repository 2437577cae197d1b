#!/usr/bin/env python3
"""Generate a registry-scale synthetic ClinicalTrials.gov corpus by recombining real API v2 records.

Why: trialfinder must ingest, index and search the whole registry (~600,000 studies, ~10 GB of JSON)
on a small machine, and we cannot ship or re-download the real bulk file for every benchmark run.
Rather than invent text, each synthetic study is stitched together from modules of *real* records
(titles/description/conditions from one, arms/interventions/outcomes from another, eligibility from a
third, sites with real geoPoint coordinates from a fourth), with status, dates, phases and enrollment
re-drawn from registry-like distributions. The result has real vocabulary, a real size distribution
(including a tail of large records with posted results) and realistic geography, so ingest speed,
index size, ranking and geo queries behave as they would on the real registry.

Output mirrors the official bulk download ``ctg-studies.json.zip``: a zip (DEFLATE level 1 by default,
like the official file; ``--compression stored`` is faster) with one compact JSON document per study
named ``NCT<8 digits>.json`` (``--layout folders`` instead mirrors the legacy
``NCT0123xxxx/NCT01234567.json`` folders). ``--format ndjson`` writes one study per line instead.

Determinism: the same ``--seed``/``--count``/sources give byte-identical output regardless of
``--workers``: every chunk of studies has its own RNG derived from (seed, chunk index), source records
are sorted by NCT id after loading, and zip entries carry a fixed timestamp and attributes.

Synthetic ids are ``NCT9xxxxxxx`` (NCT90000000 + i): real ids are assigned sequentially and are
around NCT07xxxxxx today, so the 9-range cannot collide with a real study for decades.

Usage::

    .venv/bin/python benchmarks/generate_corpus.py                 # 600k -> benchmarks/out/ctg-studies.json.zip
    .venv/bin/python benchmarks/generate_corpus.py --count 2000 --seed 7 --out /tmp/c.zip
    .venv/bin/python benchmarks/generate_corpus.py --format ndjson --out benchmarks/out/ctg-studies.ndjson
    .venv/bin/python benchmarks/generate_corpus.py --source tests/data/corpus-seed --count 50
"""

from __future__ import annotations

import argparse
import hashlib
import io
import json
import multiprocessing
import os
import random
import struct
import sys
import tarfile
import time
import zipfile
import zlib
from bisect import bisect_right
from collections import deque
from collections.abc import Iterable, Iterator
from concurrent.futures import Future, ProcessPoolExecutor
from dataclasses import dataclass, field
from datetime import date
from itertools import accumulate
from pathlib import Path
from typing import Any, BinaryIO

import orjson

REPO_ROOT = Path(__file__).resolve().parent.parent
#: ../shared beside the repository, as in CI (override with --source or $TRIALFINDER_SHARED)
SHARED_V2 = Path(os.environ.get("TRIALFINDER_SHARED", Path(__file__).resolve().parents[2] / "shared")) / "data/ctgov/v2"
DEFAULT_SOURCES = (
    SHARED_V2 / "nsclcbench-100-studies.json",
    SHARED_V2 / "studies-2024-1000.tar.gz",
    SHARED_V2 / "NCT02513394.json",
    SHARED_V2 / "NCT05631717.json",
)
DEFAULT_COUNT = 600_000
DEFAULT_AS_OF = "2025-06-30"
NCT_BASE = 90_000_000  # NCT9xxxxxxx: far above any real id
MAX_COUNT = 10_000_000
CHUNK = 1000  # studies per RNG stream / work unit; fixed so output is independent of --workers
ZIP_DATE_TIME = (2024, 1, 1, 0, 0, 0)

Study = dict[str, Any]
Member = tuple[bytes, int, int]  # (payload as written, CRC-32 of the JSON, JSON length)

# Approximate shares of overallStatus in the full registry (2024-2025), so status filters and facets
# see registry-like selectivity rather than the recruiting-heavy mix of a "recent studies" sample.
STATUS_WEIGHTS: tuple[tuple[str, float], ...] = (
    ("COMPLETED", 52.0),
    ("UNKNOWN", 14.0),
    ("RECRUITING", 12.0),
    ("TERMINATED", 5.5),
    ("ACTIVE_NOT_RECRUITING", 4.5),
    ("NOT_YET_RECRUITING", 3.5),
    ("WITHDRAWN", 2.8),
    ("ENROLLING_BY_INVITATION", 1.2),
    ("SUSPENDED", 0.3),
)
# Phase mix for interventional studies when we re-draw instead of keeping the donor's phases.
PHASE_WEIGHTS: tuple[tuple[tuple[str, ...], float], ...] = (
    (("NA",), 40.0),
    (("PHASE2",), 18.0),
    (("PHASE1",), 12.0),
    (("PHASE3",), 11.0),
    (("PHASE4",), 10.0),
    (("PHASE1", "PHASE2"), 4.5),
    (("EARLY_PHASE1",), 2.0),
    (("PHASE2", "PHASE3"), 2.5),
)
ACTIVE_STATUSES = frozenset({"RECRUITING", "NOT_YET_RECRUITING", "ACTIVE_NOT_RECRUITING",
                             "ENROLLING_BY_INVITATION", "SUSPENDED"})
STOPPED_STATUSES = frozenset({"TERMINATED", "WITHDRAWN", "SUSPENDED"})
LAST_KNOWN = ("RECRUITING", "ACTIVE_NOT_RECRUITING", "NOT_YET_RECRUITING", "ENROLLING_BY_INVITATION")
# Used only if the sources carry no whyStopped text of their own.
FALLBACK_WHY_STOPPED = (
    "Slow accrual",
    "Sponsor decision",
    "Funding not obtained",
    "Business decision, not related to safety.",
    "PI left the institution",
)
# Probability that a closed interventional study gets a results section (the registry has results for
# roughly one in five of them, ~12% of all studies); tuned so the corpus averages ~17 KB per study.
P_RESULTS_CLOSED = 0.2
P_RESULTS_ACTIVE = 0.04  # ACTIVE_NOT_RECRUITING studies with primary-outcome results posted
P_KEEP_PHASES = 0.6
P_NO_SITES = 0.08  # share of studies drawn from donors without (geocoded) locations
P_MONTH_ONLY_DATES = 0.2  # older records often give yyyy-MM dates only


# ---------------------------------------------------------------------------------------------------
# Loading sources
# ---------------------------------------------------------------------------------------------------


def _records_from_json_bytes(data: bytes) -> Iterator[Study]:
    """Accept a single study, a JSON array of studies, an API page ``{"studies": [...]}`` or NDJSON."""
    try:
        doc = orjson.loads(data)
    except orjson.JSONDecodeError:
        for line in data.splitlines():
            if line.strip():
                yield from _records_from_json_bytes(line)
        return
    if isinstance(doc, list):
        yield from (d for d in doc if isinstance(d, dict))
    elif isinstance(doc, dict) and isinstance(doc.get("studies"), list):
        yield from (d for d in doc["studies"] if isinstance(d, dict))
    elif isinstance(doc, dict):
        yield doc


def _iter_source(path: Path) -> Iterator[Study]:
    """Yield study dicts from a file, directory, tar(.gz) or zip; other files are ignored."""
    name = path.name.lower()
    if path.is_dir():
        for p in sorted(path.rglob("*")):
            if p.is_file() and p.name.lower().endswith((".json", ".ndjson", ".jsonl")):
                yield from _records_from_json_bytes(p.read_bytes())
    elif name.endswith((".tar.gz", ".tgz", ".tar")):
        with tarfile.open(path) as tf:
            # Stream order: sorting members would make gzip seek backwards (quadratic re-decompression);
            # load_sources sorts records afterwards anyway.
            for member in tf:
                if member.isfile() and member.name.lower().endswith(".json"):
                    fh = tf.extractfile(member)
                    if fh is not None:
                        yield from _records_from_json_bytes(fh.read())
    elif name.endswith(".zip"):
        with zipfile.ZipFile(path) as zf:
            for zname in sorted(zf.namelist()):
                if zname.lower().endswith(".json"):
                    yield from _records_from_json_bytes(zf.read(zname))
    elif name.endswith((".json", ".ndjson", ".jsonl")):
        yield from _records_from_json_bytes(path.read_bytes())


def load_sources(paths: Iterable[Path]) -> list[Study]:
    """Load, de-duplicate (by NCT id) and sort real records so generation is order-independent."""
    by_id: dict[str, Study] = {}
    for path in paths:
        if not path.exists():
            raise FileNotFoundError(f"source not found: {path}")
        for rec in _iter_source(path):
            ps = rec.get("protocolSection")
            if not isinstance(ps, dict):
                continue
            nct = ps.get("identificationModule", {}).get("nctId")
            if isinstance(nct, str) and nct not in by_id:
                by_id[nct] = rec
    return [by_id[k] for k in sorted(by_id)]


# ---------------------------------------------------------------------------------------------------
# Donor pools
# ---------------------------------------------------------------------------------------------------


@dataclass
class Pools:
    """Real records split by the role they can play; indexes into ``records``.

    Topic, design and eligibility donors are grouped by studyType so an observational study gets an
    observational eligibility module (with studyPopulation) and no phases.
    """

    records: list[Study]
    study_types: list[str] = field(default_factory=list)
    type_cum: list[float] = field(default_factory=list)
    topics: dict[str, list[int]] = field(default_factory=dict)
    designs: dict[str, list[int]] = field(default_factory=dict)
    eligibility: dict[str, list[int]] = field(default_factory=dict)
    sites: list[int] = field(default_factory=list)
    no_sites: list[int] = field(default_factory=list)
    results: list[int] = field(default_factory=list)
    results_cum: list[float] = field(default_factory=list)
    why_stopped: list[str] = field(default_factory=list)


def build_pools(records: list[Study]) -> Pools:
    """Classify source records into donor pools (see ``Pools``)."""
    pools = Pools(records=records)
    type_counts: dict[str, int] = {}
    results_weights: list[float] = []
    why: set[str] = set()
    for i, rec in enumerate(records):
        ps = rec["protocolSection"]
        ident = ps.get("identificationModule", {})
        design = ps.get("designModule", {})
        stype = design.get("studyType")
        if stype not in ("INTERVENTIONAL", "OBSERVATIONAL"):
            continue  # expanded access has its own status vocabulary; too rare to model
        if ident.get("briefTitle") and ps.get("conditionsModule", {}).get("conditions"):
            pools.topics.setdefault(stype, []).append(i)
            type_counts[stype] = type_counts.get(stype, 0) + 1
        if ps.get("armsInterventionsModule") and not rec.get("resultsSection"):
            pools.designs.setdefault(stype, []).append(i)
        if ps.get("eligibilityModule", {}).get("eligibilityCriteria"):
            pools.eligibility.setdefault(stype, []).append(i)
        locs = ps.get("contactsLocationsModule", {}).get("locations") or []
        if locs and all(isinstance(loc.get("geoPoint"), dict) for loc in locs):
            pools.sites.append(i)
        else:
            pools.no_sites.append(i)
        if rec.get("resultsSection") and ps.get("armsInterventionsModule") and stype == "INTERVENTIONAL":
            pools.results.append(i)
            # Weight results donors by 1/size so a single 600 KB record stays a rare tail, not the mean.
            results_weights.append(1.0 / max(1, len(orjson.dumps(rec["resultsSection"]))))
        ws = ps.get("statusModule", {}).get("whyStopped")
        if isinstance(ws, str) and ws.strip():
            why.add(ws)
    pools.study_types = sorted(t for t in type_counts if pools.designs.get(t) and pools.eligibility.get(t))
    if not pools.study_types:
        raise ValueError("sources need at least one interventional or observational record with "
                         "conditions, arms/interventions and eligibility criteria")
    pools.type_cum = list(accumulate(float(type_counts[t]) for t in pools.study_types))
    pools.results_cum = list(accumulate(results_weights))
    pools.why_stopped = sorted(why) or list(FALLBACK_WHY_STOPPED)
    if not pools.sites:
        pools.sites = pools.no_sites
    return pools


# ---------------------------------------------------------------------------------------------------
# Generation
# ---------------------------------------------------------------------------------------------------

_STATUS_NAMES = [s for s, _ in STATUS_WEIGHTS]
_STATUS_CUM = list(accumulate(w for _, w in STATUS_WEIGHTS))
_PHASE_NAMES = [list(p) for p, _ in PHASE_WEIGHTS]
_PHASE_CUM = list(accumulate(w for _, w in PHASE_WEIGHTS))


def _pick_weighted(rng: random.Random, items: list[Any], cum: list[float]) -> Any:
    return items[bisect_right(cum, rng.random() * cum[-1])]


def _iso(ordinal: int) -> str:
    return date.fromordinal(ordinal).isoformat()


def _struct(ordinal: int, as_of: int, month_only: bool) -> dict[str, str]:
    text = _iso(ordinal)
    return {"date": text[:7] if month_only else text, "type": "ACTUAL" if ordinal <= as_of else "ESTIMATED"}


class Generator:
    """Builds synthetic studies from donor pools; one instance per process (pools are read-only)."""

    def __init__(self, pools: Pools, seed: int, as_of: date) -> None:
        self.pools = pools
        self.seed = seed
        self.as_of = as_of.toordinal()
        self.epoch = date(2000, 1, 1).toordinal()

    def chunk_rng(self, chunk_index: int) -> random.Random:
        """An RNG per chunk, derived from (seed, chunk) so workers can run chunks in any order."""
        digest = hashlib.sha256(f"{self.seed}:{chunk_index}".encode()).digest()
        return random.Random(int.from_bytes(digest[:16], "big"))

    def _dates(self, rng: random.Random, status: str, has_results: bool) -> dict[str, Any]:
        """Registry-consistent dates for a status: closed studies end before as-of, open ones after."""
        as_of = self.as_of
        span = as_of - self.epoch
        if status == "NOT_YET_RECRUITING":
            submit = as_of - int(rng.random() * 300) - 5
            start = as_of + 10 + int(rng.random() * 200)
        elif status in ACTIVE_STATUSES:
            submit = as_of - 30 - int(rng.triangular(0, 365 * 8, 0))
            start = min(submit + int(rng.uniform(-90, 120)), as_of - 1)
        elif status == "UNKNOWN":
            submit = self.epoch + int(rng.triangular(0, span - 365 * 3, span - 365 * 3))
            start = submit + int(rng.uniform(-90, 120))
        else:  # COMPLETED, TERMINATED, WITHDRAWN: registry growth is ~linear-to-increasing per year
            submit = self.epoch + int(rng.triangular(0, span - 200, span - 200))
            start = submit + int(rng.uniform(-180, 120))
        duration = int(rng.lognormvariate(6.6, 0.7))  # median ~2 years
        primary = start + duration
        completion = primary + int(rng.random() * 200)
        if status in ("COMPLETED", "TERMINATED", "WITHDRAWN"):
            if completion > as_of - 30:  # closed studies have finished
                completion = rng.randint(min(start + 30, as_of - 30), as_of - 30)
                primary = min(primary, completion)
            if status == "WITHDRAWN":
                primary = completion = start = min(start, as_of - 30)
        elif status in ACTIVE_STATUSES:
            if completion <= as_of:
                completion = as_of + 30 + int(rng.random() * 900)
            if primary <= as_of and status != "ACTIVE_NOT_RECRUITING":
                primary = min(completion, as_of + 30 + int(rng.random() * 600))
        first_post = min(as_of, submit + 1 + int(rng.random() * 40))
        qc = min(first_post - 1, submit + int(rng.random() * 20))
        closed = status not in ACTIVE_STATUSES
        if status == "UNKNOWN":
            last_update = min(as_of - 730, max(first_post, start) + int(rng.random() * 900))
            last_update = max(last_update, first_post)
        elif closed:
            last_update = min(as_of - 2, max(first_post, completion) + int(rng.random() * 400))
        else:
            last_update = first_post + int(rng.random() * max(1, as_of - first_post))
        last_update = max(last_update, first_post)
        last_post = min(as_of, last_update + 1 + int(rng.random() * 6))
        month_only = rng.random() < P_MONTH_ONLY_DATES and submit < date(2015, 1, 1).toordinal()

        sm: dict[str, Any] = {
            "statusVerifiedDate": _iso(last_update if closed else min(as_of, last_update + 30))[:7],
            "overallStatus": status,
        }
        if status == "UNKNOWN":
            sm["lastKnownStatus"] = LAST_KNOWN[int(rng.random() * len(LAST_KNOWN))]
        if status in STOPPED_STATUSES:
            sm["whyStopped"] = self.pools.why_stopped[int(rng.random() * len(self.pools.why_stopped))]
        sm["expandedAccessInfo"] = {"hasExpandedAccess": False}
        sm["startDateStruct"] = _struct(start, as_of, month_only)
        primary_struct = _struct(primary, as_of, month_only)
        completion_struct = _struct(completion, as_of, month_only)
        if status == "UNKNOWN":  # unknown = never confirmed, so completion dates stay estimates
            primary_struct["type"] = completion_struct["type"] = "ESTIMATED"
        sm["primaryCompletionDateStruct"] = primary_struct
        sm["completionDateStruct"] = completion_struct
        sm["studyFirstSubmitDate"] = _iso(submit)
        sm["studyFirstSubmitQcDate"] = _iso(max(submit, qc))
        sm["studyFirstPostDateStruct"] = {"date": _iso(first_post), "type": "ACTUAL"}
        if has_results:
            res_submit = min(as_of - 20, max(primary, first_post) + 200 + int(rng.random() * 200))
            res_submit = max(res_submit, first_post)
            sm["resultsFirstSubmitDate"] = _iso(res_submit)
            sm["resultsFirstSubmitQcDate"] = _iso(min(as_of, res_submit + int(rng.random() * 30)))
            res_post = min(as_of, res_submit + 20 + int(rng.random() * 20))
            sm["resultsFirstPostDateStruct"] = {"date": _iso(res_post), "type": "ACTUAL"}
            last_update = max(last_update, res_post)
            last_post = max(last_post, res_post)
        sm["lastUpdateSubmitDate"] = _iso(min(last_update, last_post))
        sm["lastUpdatePostDateStruct"] = {"date": _iso(last_post), "type": "ACTUAL"}
        return sm

    def study(self, rng: random.Random, index: int) -> Study:
        """One synthetic study. Donor modules are shared by reference and never mutated."""
        pools = self.pools
        recs = pools.records
        status = _pick_weighted(rng, _STATUS_NAMES, _STATUS_CUM)
        stype = _pick_weighted(rng, pools.study_types, pools.type_cum)
        has_results = False
        if pools.results and stype == "INTERVENTIONAL":
            p = P_RESULTS_CLOSED if status in ("COMPLETED", "TERMINATED") else (
                P_RESULTS_ACTIVE if status == "ACTIVE_NOT_RECRUITING" else 0.0)
            has_results = rng.random() < p
        if has_results:
            # Arms, outcomes and design come with the results so group ids and measures stay consistent.
            design_rec = recs[_pick_weighted(rng, pools.results, pools.results_cum)]
        else:
            pool = pools.designs[stype]
            design_rec = recs[pool[int(rng.random() * len(pool))]]
        topic_pool = pools.topics[stype]
        topic = recs[topic_pool[int(rng.random() * len(topic_pool))]]
        elig_pool = pools.eligibility[stype]
        elig = recs[elig_pool[int(rng.random() * len(elig_pool))]]
        site_pool = pools.no_sites if (pools.no_sites and rng.random() < P_NO_SITES) else pools.sites
        sites = recs[site_pool[int(rng.random() * len(site_pool))]]

        tps = topic["protocolSection"]
        dps = design_rec["protocolSection"]
        nct = f"NCT{NCT_BASE + index:08d}"

        ident = {k: v for k, v in tps["identificationModule"].items() if k != "nctIdAliases"}
        ident["nctId"] = nct
        org_id = dict(ident.get("orgStudyIdInfo") or {})
        org_id["id"] = f"{org_id.get('id', 'SYN')}-{index:x}"  # org ids are unique per sponsor in reality
        ident["orgStudyIdInfo"] = org_id

        design = dict(dps.get("designModule") or {"studyType": stype})
        if stype == "INTERVENTIONAL" and not has_results and rng.random() >= P_KEEP_PHASES:
            design["phases"] = _pick_weighted(rng, _PHASE_NAMES, _PHASE_CUM)
        enrollment = dict(design.get("enrollmentInfo") or {})
        count = enrollment.get("count")
        if status == "WITHDRAWN":
            enrollment = {"count": 0, "type": "ACTUAL"}
        else:
            if isinstance(count, int) and not has_results:
                count = max(1, round(count * rng.lognormvariate(0.0, 0.5)))
                enrollment["count"] = count
            if enrollment:
                enrollment["type"] = "ESTIMATED" if status in ACTIVE_STATUSES or status == "UNKNOWN" else "ACTUAL"
        if enrollment:
            design["enrollmentInfo"] = enrollment

        ps: dict[str, Any] = {
            "identificationModule": ident,
            "statusModule": self._dates(rng, status, has_results),
        }
        for key in ("sponsorCollaboratorsModule", "oversightModule", "descriptionModule", "conditionsModule"):
            if key in tps:
                ps[key] = tps[key]
        ps["designModule"] = design
        for key in ("armsInterventionsModule", "outcomesModule"):
            if key in dps:
                ps[key] = dps[key]
        if "eligibilityModule" in elig["protocolSection"]:
            ps["eligibilityModule"] = elig["protocolSection"]["eligibilityModule"]
        clm = sites["protocolSection"].get("contactsLocationsModule")
        if clm:
            ps["contactsLocationsModule"] = clm
        for key in ("referencesModule", "ipdSharingStatementModule"):
            if key in tps:
                ps[key] = tps[key]

        study: Study = {"protocolSection": ps}
        if has_results:
            study["resultsSection"] = design_rec["resultsSection"]
            if "documentSection" in design_rec:
                study["documentSection"] = design_rec["documentSection"]
        derived: dict[str, Any] = {"miscInfoModule": {"versionHolder": _iso(self.as_of)}}
        tds = topic.get("derivedSection") or {}
        if "conditionBrowseModule" in tds:
            derived["conditionBrowseModule"] = tds["conditionBrowseModule"]
        dds = design_rec.get("derivedSection") or {}
        if "interventionBrowseModule" in dds:
            derived["interventionBrowseModule"] = dds["interventionBrowseModule"]
        study["derivedSection"] = derived
        study["hasResults"] = has_results
        return study

    def chunk(self, chunk_index: int, start: int, stop: int, encoding: str = "json") -> list[Member]:
        """Studies ``start..stop-1`` of ``chunk_index``, serialized and encoded for the writer.

        Encoding (CRC, DEFLATE) happens here, in the worker processes, so the single writer process
        only does sequential I/O and DEFLATE scales with ``--workers``.
        """
        rng = self.chunk_rng(chunk_index)
        dumps = orjson.dumps
        docs = [dumps(self.study(rng, i)) for i in range(start, stop)]
        if encoding == "json":
            return [(d, 0, len(d)) for d in docs]
        if encoding == "stored":
            return [(d, zlib.crc32(d), len(d)) for d in docs]
        out: list[Member] = []
        for d in docs:
            comp = zlib.compressobj(1, zlib.DEFLATED, -15)  # raw deflate, as stored in zip members
            out.append((comp.compress(d) + comp.flush(), zlib.crc32(d), len(d)))
        return out


# Worker-process state: set before the pool forks (or by the initializer under spawn).
_GEN: Generator | None = None


def _init_worker(source_paths: list[str], seed: int, as_of: str) -> None:
    global _GEN
    if _GEN is None:
        _GEN = Generator(build_pools(load_sources(Path(p) for p in source_paths)), seed, date.fromisoformat(as_of))


def _run_chunk(args: tuple[int, int, int, str]) -> list[Member]:
    assert _GEN is not None
    return _GEN.chunk(*args)


def iter_chunks(gen: Generator, count: int, workers: int, encoding: str,
                init_args: tuple[Any, ...]) -> Iterator[list[Member]]:
    """Yield encoded chunks in order; with workers > 1 keep a bounded window of chunks in flight."""
    tasks = [(c, c * CHUNK, min(count, (c + 1) * CHUNK), encoding) for c in range((count + CHUNK - 1) // CHUNK)]
    if workers <= 1 or len(tasks) <= 1:
        for t in tasks:
            yield gen.chunk(*t)
        return
    global _GEN
    _GEN = gen  # inherited by forked workers; the initializer only loads sources under spawn
    methods = multiprocessing.get_all_start_methods()
    ctx = multiprocessing.get_context("fork" if "fork" in methods else None)
    with ProcessPoolExecutor(workers, mp_context=ctx, initializer=_init_worker, initargs=init_args) as ex:
        window: deque[Future[list[Member]]] = deque()
        pending = iter(tasks)
        for t in pending:
            window.append(ex.submit(_run_chunk, t))
            if len(window) >= workers * 3:  # bounded: ~3 chunks (~50 MB) per worker in memory
                break
        while window:
            fut = window.popleft()
            nxt = next(pending, None)
            if nxt is not None:
                window.append(ex.submit(_run_chunk, nxt))
            yield fut.result()


# ---------------------------------------------------------------------------------------------------
# Writers
# ---------------------------------------------------------------------------------------------------


def entry_name(index: int, layout: str) -> str:
    """Zip member name: flat ``NCT9xxxxxxx.json`` (current bulk file) or legacy ``NCT9xxxxxxx/`` folders."""
    nct = f"NCT{NCT_BASE + index:08d}"
    return f"{nct[:7]}xxxx/{nct}.json" if layout == "folders" else f"{nct}.json"


class ZipWriter:
    """Minimal deterministic ZIP64-capable writer for pre-encoded (STORED or DEFLATE) members.

    Why not ``zipfile``: it compresses in the calling process (so DEFLATE could not use the worker
    processes) and its per-entry overhead adds up at 600k entries. Every member gets the same fixed
    timestamp and attributes, so the archive depends only on its contents. The output is a standard
    zip (``zipfile``, ``unzip -t`` and ``python -m zipfile -t`` accept it).
    """

    def __init__(self, fh: BinaryIO, method: int, date_time: tuple[int, int, int, int, int, int]) -> None:
        self.fh = fh
        self.method = method  # 0 = STORED, 8 = DEFLATE
        self.offset = 0
        self.central = io.BytesIO()
        self.entries = 0
        y, mo, d, h, mi, s = date_time
        self.dos_time = (h << 11) | (mi << 5) | (s // 2)
        self.dos_date = ((y - 1980) << 9) | (mo << 5) | d

    def add(self, name: str, payload: bytes, crc: int, size: int) -> None:
        """Append one member: ``payload`` is already encoded; ``crc``/``size`` describe the raw bytes."""
        fname = name.encode("ascii")
        csize = len(payload)
        if size >= 0xFFFFFFFF or csize >= 0xFFFFFFFF:
            raise ValueError("member too large for this writer")
        header = struct.pack("<4sHHHHHIIIHH", b"PK\x03\x04", 20, 0, self.method, self.dos_time, self.dos_date,
                             crc, csize, size, len(fname), 0)
        self.fh.write(header)
        self.fh.write(fname)
        self.fh.write(payload)
        # Central directory record; offsets past 4 GiB go into a ZIP64 extra field.
        if self.offset >= 0xFFFFFFFF:
            extra = struct.pack("<HHQ", 0x0001, 8, self.offset)
            off32 = 0xFFFFFFFF
            version = 45
        else:
            extra = b""
            off32 = self.offset
            version = 20
        self.central.write(struct.pack("<4sBBHHHHHIIIHHHHHII", b"PK\x01\x02", version, 3, version, 0,
                                       self.method, self.dos_time, self.dos_date, crc, csize, size,
                                       len(fname), len(extra), 0, 0, 0, 0o100644 << 16, off32))
        self.central.write(fname)
        self.central.write(extra)
        self.offset += len(header) + len(fname) + csize
        self.entries += 1

    def close(self) -> None:
        """Write the central directory (plus ZIP64 end records when the archive needs them)."""
        cd = self.central.getvalue()
        cd_offset = self.offset
        self.fh.write(cd)
        end = cd_offset + len(cd)
        if self.entries >= 0xFFFF or cd_offset >= 0xFFFFFFFF or len(cd) >= 0xFFFFFFFF:
            self.fh.write(struct.pack("<4sQHHIIQQQQ", b"PK\x06\x06", 44, 45, 45, 0, 0,
                                      self.entries, self.entries, len(cd), cd_offset))
            self.fh.write(struct.pack("<4sIQI", b"PK\x06\x07", 0, end, 1))
        n16 = min(self.entries, 0xFFFF)
        self.fh.write(struct.pack("<4sHHHHIIH", b"PK\x05\x06", 0, 0, n16, n16,
                                  min(len(cd), 0xFFFFFFFF), min(cd_offset, 0xFFFFFFFF), 0))


def write_zip(chunks: Iterator[list[Member]], out: Path, layout: str, deflate: bool) -> int:
    """Write encoded chunks into a zip at ``out``; returns total uncompressed JSON bytes."""
    total = 0
    index = 0
    with open(out, "wb", buffering=1 << 22) as fh:
        zw = ZipWriter(fh, 8 if deflate else 0, ZIP_DATE_TIME)
        for chunk in chunks:
            for payload, crc, size in chunk:
                zw.add(entry_name(index, layout), payload, crc, size)
                total += size
                index += 1
        zw.close()
    return total


def write_ndjson(chunks: Iterator[list[Member]], out: Path) -> int:
    """One compact JSON study per line; returns total JSON bytes (without newlines)."""
    total = 0
    with open(out, "wb", buffering=1 << 22) as fh:
        for chunk in chunks:
            for doc, _crc, size in chunk:
                fh.write(doc)
                fh.write(b"\n")
                total += size
    return total


# ---------------------------------------------------------------------------------------------------
# CLI
# ---------------------------------------------------------------------------------------------------


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n", 1)[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--count", type=int, default=DEFAULT_COUNT, help="number of studies (default 600000)")
    p.add_argument("--seed", type=int, default=1, help="RNG seed (default 1)")
    p.add_argument("--out", type=Path, default=None,
                   help="output path (default benchmarks/out/ctg-studies.json.zip or .ndjson)")
    p.add_argument("--format", choices=("zip", "ndjson"), default="zip")
    p.add_argument("--layout", choices=("flat", "folders"), default="flat",
                   help="zip member names: flat NCTxxxxxxxx.json (current bulk file) or legacy NCTxxxxxxx/ folders")
    p.add_argument("--compression", choices=("deflate", "stored"), default="deflate",
                   help="zip member encoding: deflate (level 1, like the official file; ~3x smaller, "
                        "compressed in the workers) or stored (fastest to write and read)")
    p.add_argument("--source", nargs="+", type=Path, default=None, metavar="DIR_OR_FILE",
                   help="real v2 records: JSON file/array/NDJSON, directory, .tar.gz or .zip "
                        "(default: the shared nsclcbench-100 + studies-2024-1000 sets)")
    p.add_argument("--as-of", default=DEFAULT_AS_OF, help="the 'today' for statuses and dates (YYYY-MM-DD)")
    p.add_argument("--workers", type=int, default=os.cpu_count() or 1,
                   help="generator processes (output is identical for any value)")
    args = p.parse_args(argv)
    if not 1 <= args.count <= MAX_COUNT:
        p.error(f"--count must be between 1 and {MAX_COUNT}")
    if args.out is None:
        name = "ctg-studies.json.zip" if args.format == "zip" else "ctg-studies.ndjson"
        args.out = REPO_ROOT / "benchmarks" / "out" / name
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    t0 = time.perf_counter()
    sources = list(args.source or DEFAULT_SOURCES)
    records = load_sources(sources)
    pools = build_pools(records)
    gen = Generator(pools, args.seed, date.fromisoformat(args.as_of))
    t_load = time.perf_counter() - t0

    out: Path = args.out
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(out.name + ".tmp")
    init_args = ([str(s) for s in sources], args.seed, args.as_of)
    encoding = "json" if args.format == "ndjson" else args.compression
    chunks = iter_chunks(gen, args.count, args.workers, encoding, init_args)
    try:
        if args.format == "zip":
            json_bytes = write_zip(chunks, tmp, args.layout, args.compression == "deflate")
        else:
            json_bytes = write_ndjson(chunks, tmp)
        os.replace(tmp, out)
    finally:
        if tmp.exists():
            tmp.unlink()
    elapsed = time.perf_counter() - t0
    size = out.stat().st_size
    summary = {
        "studies": args.count,
        "sources": len(records),
        "json_bytes": json_bytes,
        "avg_study_bytes": round(json_bytes / args.count),
        "file": str(out),
        "file_bytes": size,
        "seconds": round(elapsed, 2),
        "load_seconds": round(t_load, 2),
        "studies_per_second": round(args.count / elapsed),
    }
    print(json.dumps(summary, indent=2), file=sys.stdout)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
