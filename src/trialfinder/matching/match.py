"""Patient-to-trial matching: which studies fit this patient, and why.

Pipeline, kept bounded so one patient is answered in about half a second over the whole registry:

1. the patient (a note and/or facts) goes to the eligibility engine for age, sex and conditions;
2. a weighted query is built from the whole note (:mod:`.relevance`): negated clauses, lab values,
   test results and stages left out, every informative word weighted;
3. two routes retrieve candidates through the search engine's index (:mod:`.first_stage`): the
   whole note over all text fields, and the condition vocabulary over the topical fields; they are
   fused by reciprocal rank, filtered by age, sex, place and status (open studies by default);
4. the candidates are re-scored (BM25F with the weighted query) and fused with the first-stage score,
   plain BM25 of the note and how much of the patient's main words the study's condition list names;
   studies that name none of the patient's main words are dropped;
5. the shown studies get an eligibility verdict (engine + structured age/sex), which adjusts the rank.

Nothing about the patient is written anywhere or logged: the note passes through memory only.
"""

from __future__ import annotations

import re
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from trialfinder.errors import TrialfinderError
from trialfinder.matching import eligibility_adapter as elig
from trialfinder.matching.first_stage import retrieve_candidates
from trialfinder.matching.relevance import (
    IndexStats,
    PatientQuery,
    build_query,
    score_studies,
)
from trialfinder.model.statuses import OPEN_STATUSES

#: Ranking adjustments by verdict, added to the relevance normalised to [0, 1] within the candidates.
#: Recalibrated on full-corpus runs (TREC 2021 topics over the whole 6,786-study legacy corpus, both
#: halves of the odd/even split; ``benchmarks/README.md``): over the whole database a bonus for an
#: "eligible" verdict lifts studies that are merely generic (few criteria to fail) above relevant ones
#: and cost 0.02-0.06 nDCG@10 at every value tried (0.1-0.5), so it is 0; an "ineligible" verdict from
#: free text moves a study only slightly below equally relevant ones; the registry's structured age/sex
#: fields exclude for certain and sink a study.
VERDICT_BONUS = {elig.ELIGIBLE: 0.0, elig.POSSIBLY: 0.0, elig.INELIGIBLE: -0.05}
STRUCTURED_PENALTY = -0.3
#: Weight of the engine's score (the share of criteria met, unknown counting half): 0 for the same reason.
ENGINE_SCORE_WEIGHT = 0.0
RETRIEVAL_WORDS = 8
#: Share of the first-stage (fused retrieval) score in the relevance that the verdict then adjusts
#: (0.3 was best on the even half and all topics, 0.0 on the odd half; 0.5 and 0.7 were worse on both).
FIRST_STAGE_WEIGHT = 0.3
#: Share of plain BM25 of the whole (affirmed) note in a match's final relevance (CombSUM of scores
#: normalised to the best candidate). The weighted query sees the patient through condition words and
#: plain BM25 through every word the note repeats; fused, they beat each alone over the whole database
#: (TREC 2021, 6,786-study legacy corpus: 0.4 was best on the even half and all topics, 0.5 on the odd
#: half, and both raise both halves; see ``benchmarks/README.md``). Only in :func:`match`: re-ranking a
#: judged pool (:func:`rank_studies`) keeps the condition query alone.
PLAIN_BM25_WEIGHT = 0.4
#: Weight of condition coverage (the share of the query's strongest words that a study names in its
#: conditions, keywords or condition MeSH terms, :func:`.relevance.score_studies`'s ``covered``,
#: normalised to the best candidate), added to the fused relevance in :func:`match`. A trial's
#: condition list says what it is about; BM25 also counts words its summary or criteria merely mention.
#: Chosen on the even half of the TREC 2021 topics over the whole legacy corpus (8 terms, 0.05) and
#: holding on the odd half (``benchmarks/README.md``); records without condition fields score 0 for all
#: candidates, so their ranking is unchanged.
COVERAGE_WEIGHT = 0.05
#: Statuses of studies that take patients now or soon.
DEFAULT_RADIUS_KM = 80.4672  # 50 miles
DEFAULT_CANDIDATES = 150
#: Studies given a verdict per match used to be at least 20 (twice ``limit``); now that a free-text
#: verdict moves a study only slightly (see :data:`VERDICT_BONUS`), only the ``limit`` shown are judged,
#: which halves the cost of a match (a verdict costs the engine tens of milliseconds at registry size).
MIN_EVALUATE = 20


class MatchError(TrialfinderError, ValueError):
    """Input the matcher cannot use (no patient text, an unknown place); the message is for the user."""


@dataclass
class MatchHit:
    """One study for the patient with its verdict and the criteria that decided it."""

    nct_id: str
    title: str = ""
    status: str = ""
    conditions: list[str] = field(default_factory=list)
    relevance: float = 0.0
    score: float = 0.0
    verdict: elig.Verdict | None = None
    matched: list[str] = field(default_factory=list)
    nearest: dict[str, Any] | None = None

    @property
    def verdict_label(self) -> str:
        return self.verdict.verdict if self.verdict else "not evaluated"

    def to_dict(self, *, all_criteria: bool = False) -> dict[str, Any]:
        out: dict[str, Any] = {
            "nctId": self.nct_id, "title": self.title, "overallStatus": self.status,
            "conditions": self.conditions, "score": round(self.score, 4), "relevance": round(self.relevance, 4),
            "verdict": self.verdict_label, "matched": self.matched,
        }
        if self.verdict is not None:
            v = self.verdict.to_dict(all_criteria=all_criteria)
            out["decidingCriteria"] = v["deciding"]
            if all_criteria:
                out["criteria"] = v["criteria"]
        if self.nearest is not None:
            out["nearestSite"] = self.nearest
        return out


@dataclass
class MatchResult:
    """The ranked studies plus what the matcher understood of the patient (returned, never stored)."""

    hits: list[MatchHit]
    query_words: list[str] = field(default_factory=list)
    patient: dict[str, Any] = field(default_factory=dict)
    candidates: int = 0
    evaluated: int = 0
    place: str | None = None
    elapsed_ms: float = 0.0
    engine: str = "engine"
    #: the overall statuses considered (empty: every status)
    statuses: tuple[str, ...] = ()

    def to_dict(self, *, all_criteria: bool = False) -> dict[str, Any]:
        return {
            "patient": self.patient, "queryWords": self.query_words, "place": self.place,
            "candidates": self.candidates, "evaluated": self.evaluated, "elapsedMs": round(self.elapsed_ms, 1),
            "eligibilityEngine": self.engine, "statuses": list(self.statuses) or "all",
            "studies": [h.to_dict(all_criteria=all_criteria) for h in self.hits],
        }


def split_input(patient_input: str | dict[str, Any] | None) -> tuple[str | None, dict[str, Any] | None]:
    """A patient given as a note, a facts dict (optionally with ``"note"``), or both -> (note, facts)."""
    if patient_input is None:
        return None, None
    if isinstance(patient_input, str):
        return (patient_input if patient_input.strip() else None), None
    if isinstance(patient_input, dict):
        facts = {k: v for k, v in patient_input.items() if k != "note"}
        note = patient_input.get("note")
        return (str(note) if note and str(note).strip() else None), (facts or None)
    raise MatchError("a patient is a note (text) or a JSON object of facts")


@dataclass
class PreparedPatient:
    """The engine's patient plus the query built from it."""

    patient: Any
    query: PatientQuery
    facts: dict[str, Any] | None
    #: phrases that also retrieve candidates (acronym expansions)
    expansions: list[str] = field(default_factory=list)
    #: the conditions the engine or the facts name, as phrases for the condition route
    condition_phrases: list[str] = field(default_factory=list)

    def summary(self) -> dict[str, Any]:
        p = self.patient
        return {"age": getattr(p, "age", None), "sex": elig.patient_sex(p),
                "conditions": elig.patient_conditions(p),
                "pregnant": getattr(p, "pregnant", None)}


def prepare(store: Any, patient_input: str | dict[str, Any] | None, stats: IndexStats | None = None) -> PreparedPatient:
    """Extract the patient and build the condition query (shared by :func:`match` and :func:`rank_studies`)."""
    note, facts = split_input(patient_input)
    if note is None and not facts:
        raise MatchError("no patient: give a note, or facts such as age, sex and conditions")
    patient = elig.extract(note, facts)
    stats = stats or IndexStats(store)
    conditions = elig.patient_conditions(patient)
    for c in (facts or {}).get("conditions") or []:
        name, status = (c.get("name"), c.get("status")) if isinstance(c, dict) else (c, None)
        if name and status in (None, "present", "possible", "current") and str(name) not in conditions:
            conditions.append(str(name))
    query = build_query(stats, note, conditions)
    expansions = [e for e in expand_acronyms(store, note or "") if condition_like(stats, e)]
    return PreparedPatient(patient, query, facts, expansions, conditions[:8])


def condition_like(stats: IndexStats, phrase: str, threshold: float = 0.15) -> bool:
    """Whether a phrase's words are, on average, words the registry uses to name conditions (so "chronic
    obstructive pulmonary disease" is, "body mass index" or "heart rate" is not)."""
    from trialfinder.matching.relevance import CONDITION_FIELDS

    words = [t for t, _ in stats.tokenize([phrase])[0]]
    if not words:
        return False
    counts = stats.field_counts(words)
    share = [max(counts[w].get(f, 0) for f in CONDITION_FIELDS) / max(1, counts[w].get("*", 0)) for w in words]
    return sum(share) / len(share) >= threshold


_ACRONYM = re.compile(r"\b[A-Z][A-Z0-9]{2,5}\b")


def expand_acronyms(store: Any, note: str, limit: int = 12) -> list[str]:
    """Expansions of the note's acronyms ("CLL", "COPD") as the registry itself spells them out.

    Uses the store's synonym vocabulary (acronyms that study records define), keeping an expansion
    when records agree on it (the most frequent reading, asserted by at least two studies).  They widen
    retrieval only: as scoring words they lowered nDCG@10 on the TREC 2021 pools (by about 0.01).
    """
    lookup = getattr(store, "synonyms", None)
    if not callable(lookup):
        return []
    out: list[str] = []
    for acronym in list(dict.fromkeys(_ACRONYM.findall(note)))[:limit]:
        rows = lookup(acronym.lower(), ("acronym",))
        if rows and rows[0][2] >= 2:
            out.append(rows[0][1].rstrip(".,;"))
    return out


def resolve_statuses(status: str | Sequence[str] | None) -> tuple[str, ...]:
    """The overall statuses a match considers: ``None``/"open" -> the open statuses, "all" -> every status
    (an empty tuple: no filter), else a comma-separated string or a list of API v2 status values."""
    from trialfinder.model.enums import ENUMS

    if status is None:
        return OPEN_STATUSES
    items = [x.strip() for x in status.split(",")] if isinstance(status, str) else [str(x).strip() for x in status]
    items = [x for x in items if x]
    low = [x.lower() for x in items]
    if not items or low == ["open"]:
        return OPEN_STATUSES
    if "all" in low:
        return ()
    known = set(ENUMS.get("Status", ()))
    out: list[str] = []
    for x in items:
        value = x.upper().replace(" ", "_").replace("-", "_")
        if value == "OPEN":
            out.extend(OPEN_STATUSES)
            continue
        if known and value not in known:
            raise MatchError(f"unknown status {x!r}: use 'all', 'open' or values such as "
                             + ", ".join(sorted(known)[:4]) + ", ...")
        out.append(value)
    return tuple(dict.fromkeys(out))


def match(store: Any, patient_input: str | dict[str, Any], *, near: str | None = None,
          radius_km: float | None = None, status: str | Sequence[str] | None = None,
          recruiting: bool | None = None, limit: int = 10,
          candidates: int = DEFAULT_CANDIDATES, evaluate: int | None = None) -> MatchResult:
    """The studies that best fit a patient, each with its eligibility verdict and deciding criteria.

    ``status`` chooses the studies considered: by default only those open for enrolment
    (:data:`OPEN_STATUSES`); ``"all"`` for every status, or a list / comma-separated string of
    statuses. ``recruiting`` is the older switch (``True`` = open studies, ``False`` = all) and is used
    only when ``status`` is not given. ``near`` (a place name, "City, ST", a US ZIP, a state or a country;
    defaults to the facts' ``location``) with ``radius_km`` keeps studies with a site nearby; when only
    open studies are considered, the site itself must be recruiting. At most ``candidates`` studies are
    retrieved and the ``evaluate`` most relevant (default: ``limit``) get a verdict.
    """
    started = time.perf_counter()
    if limit < 1:
        raise MatchError("limit must be at least 1")
    if status is None and recruiting is not None:
        status = "open" if recruiting else "all"
    statuses = resolve_statuses(status)
    stats = IndexStats(store)
    prepared = prepare(store, patient_input, stats)
    query = prepared.query
    near = near or (prepared.facts or {}).get("location") or None
    filters, place_name = _filters(prepared, near=near, radius_km=radius_km, statuses=statuses)
    cands = retrieve_candidates(store, query, condition_words=query.retrieval_words(RETRIEVAL_WORDS),
                                phrases=prepared.expansions + prepared.condition_phrases,
                                limit=max(candidates, limit), filters=filters)
    ids = [c.nct_id for c in cands]
    n_eval = limit if evaluate is None else max(evaluate, limit)
    first = {c.nct_id: c.fused for c in cands}
    hits = _rank(store, stats, prepared, ids, evaluate=n_eval, first_stage=first)[:limit]
    where = {c.nct_id: (c.distance_km, c.location_id) for c in cands if c.location_id is not None}
    sites = _nearest_sites(store, [where[h.nct_id][1] for h in hits if h.nct_id in where])
    for h in hits:
        if h.nct_id in where:
            dist, lid = where[h.nct_id]
            if lid in sites:
                h.nearest = _nearest({**sites[lid], "distance_km": None if dist is None else round(dist, 2)})
    shown_words = query.top_words(RETRIEVAL_WORDS) or [t.word for t in query.terms[:RETRIEVAL_WORDS]]
    return MatchResult(hits, shown_words, prepared.summary(), len(ids),
                       sum(h.verdict is not None for h in hits), place_name,
                       (time.perf_counter() - started) * 1000, _engine_name(), statuses)


def rank_studies(store: Any, patient_input: str | dict[str, Any], nct_ids: Sequence[str], *,
                 evaluate: int | None = None) -> list[MatchHit]:
    """Rank a given set of studies for a patient (all of them evaluated unless ``evaluate`` is set).

    The ranking evaluation uses this on the judged studies of each topic.
    """
    stats = IndexStats(store)
    prepared = prepare(store, patient_input, stats)
    ids = list(dict.fromkeys(nct_ids))
    return _rank(store, stats, prepared, ids, evaluate=len(ids) if evaluate is None else evaluate)


def _engine_name() -> str:
    return "engine" if elig.engine_available() else "structured fields only"


def _filters(prepared: PreparedPatient, *, near: str | None, radius_km: float | None,
             statuses: tuple[str, ...]) -> tuple[dict[str, Any], str | None]:
    """Retrieval filters for the patient (age, sex), the place and recruitment; and the place's name."""
    out: dict[str, Any] = {}
    p = prepared.patient
    age = getattr(p, "age", None)
    if isinstance(age, (int, float)):
        out["age"] = float(age)
    sex = elig.patient_sex(p)
    if sex in ("female", "male"):
        out["sexes"] = (sex.upper(), "ALL")
    if statuses:
        out["statuses"] = statuses
    # site-level status: when only open studies are wanted, the nearby site must itself be recruiting
    recruiting = bool(statuses) and set(statuses) <= set(OPEN_STATUSES)
    place_name = None
    if near:
        from trialfinder.search.engine import _gazetteer
        from trialfinder.sources.geocode import Gazetteer

        place = _gazetteer(Gazetteer).place(str(near))
        if place is None:
            raise MatchError(f"unknown place {near!r}: try a city, 'City, State', a country or a US ZIP code")
        place_name = place.name
        if place.kind == "country" and radius_km is None:
            out["country"] = place.country or place.name
        else:
            radius = float(radius_km) if radius_km else DEFAULT_RADIUS_KM
            if radius <= 0:
                raise MatchError("radius must be positive")
            out["geo"] = (place.lat, place.lon, radius, recruiting)
    return out, place_name


def _nearest_sites(store: Any, lids: list[int]) -> dict[int, dict[str, Any]]:
    return store.locations_by_id([lid for lid in lids if lid is not None])


def _nearest(n: dict[str, Any]) -> dict[str, Any]:
    km = n.get("distance_km")
    return {"facility": n.get("facility") or "", "city": n.get("city") or "", "state": n.get("state") or "",
            "country": n.get("country") or "", "status": n.get("status") or "",
            "distanceKm": km, "distanceMi": None if km is None else round(km / 1.609344, 1)}


def _rank(store: Any, stats: IndexStats, prepared: PreparedPatient, ids: list[str], *,
          evaluate: int, first_stage: dict[str, float] | None = None) -> list[MatchHit]:
    """Re-rank candidates: BM25F relevance (normalised to the best candidate), fused with the
    first-stage score when there is one, plus the verdict's adjustment."""
    if not ids:
        return []
    matched: dict[str, list[str]] = {}
    anchored: set[str] | None = set() if first_stage else None
    plain: dict[str, float] | None = {} if first_stage else None
    covered: dict[str, float] | None = {} if first_stage else None
    rel = score_studies(stats, prepared.query, ids, matched=matched, anchored=anchored, plain=plain,
                        covered=covered)
    if anchored is not None:
        ids = [n for n in ids if n in anchored]  # studies about none of the patient's main words are noise
        if not ids:
            return []
    top = max((rel.get(n, 0.0) for n in ids), default=0.0) or 1.0
    if first_stage:
        ftop = max(first_stage.values(), default=0.0) or 1.0
        rel = {n: (1.0 - FIRST_STAGE_WEIGHT) * rel.get(n, 0.0) / top
               + FIRST_STAGE_WEIGHT * first_stage.get(n, 0.0) / ftop for n in ids}
        if plain:
            ptop = max((plain.get(n, 0.0) for n in ids), default=0.0) or 1.0
            rel = {n: (1.0 - PLAIN_BM25_WEIGHT) * r + PLAIN_BM25_WEIGHT * plain.get(n, 0.0) / ptop
                   for n, r in rel.items()}
        if covered:
            ctop = max((covered.get(n, 0.0) for n in ids), default=0.0)
            if ctop > 0:
                rel = {n: r + COVERAGE_WEIGHT * covered.get(n, 0.0) / ctop for n, r in rel.items()}
        top = max(rel.values(), default=0.0) or 1.0
    order = sorted(ids, key=lambda n: (-rel.get(n, 0.0), n))
    hits = [MatchHit(n, relevance=rel.get(n, 0.0), score=rel.get(n, 0.0) / top, matched=matched.get(n, []))
            for n in order]
    done: set[str] = set()
    # judge the top ``evaluate``; a verdict can sink a study and lift an unjudged one into the top, so
    # repeat until every shown study has been judged (a few rounds at most: verdicts only lower scores)
    for _round in range(8):
        todo = [h for h in hits[:evaluate] if h.nct_id not in done]
        if not todo:
            break
        records = store.get_many([h.nct_id for h in todo])
        for h in todo:
            done.add(h.nct_id)
            rec = records.get(h.nct_id)
            if rec is None:
                continue
            h.verdict = elig.evaluate(prepared.patient, rec)
            h.score += _adjustment(h.verdict)
            _describe(h, rec)
        hits.sort(key=lambda h: (-h.score, h.nct_id))
    return hits


def _adjustment(verdict: elig.Verdict) -> float:
    """What a verdict adds to a study's normalised relevance (see :data:`VERDICT_BONUS`)."""
    if verdict.structured_fail:
        return STRUCTURED_PENALTY
    return VERDICT_BONUS.get(verdict.verdict, 0.0) + ENGINE_SCORE_WEIGHT * verdict.score


def _describe(hit: MatchHit, rec: dict) -> None:
    ps = rec.get("protocolSection") or {}
    hit.title = (ps.get("identificationModule") or {}).get("briefTitle") or ""
    hit.status = (ps.get("statusModule") or {}).get("overallStatus") or ""
    hit.conditions = list((ps.get("conditionsModule") or {}).get("conditions") or [])
