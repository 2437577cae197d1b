"""An in-memory columnar index of the filterable facts of every study, for filters and facets.

Why: counting nine facets "under the rest of the query" with SQL means nine GROUP BY scans over the
matching rows for every search; over 600,000 studies that is far too slow for an interactive finder.
Here each study is a row position in small numpy arrays (status code, phase bit mask, age range, ...),
so a filter is a boolean mask and a facet is one ``bincount`` over the candidates: a few milliseconds
even when a query matches most of the registry. The arrays come from the store
(:meth:`SQLiteStore.study_arrays`) and are rebuilt when the data changes (the store's data version).
Memory is about 40 bytes per study plus the country and condition pairs.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Any

import numpy as np

PHASE_BITS = {"EARLY_PHASE1": 1, "PHASE1": 2, "PHASE2": 4, "PHASE3": 8, "PHASE4": 16, "NA": 32}
AGE_BITS = {"CHILD": 1, "ADULT": 2, "OLDER_ADULT": 4}


def _date_int(text: str | None) -> int:
    if not text:
        return 0
    try:
        return int(text[:10].replace("-", ""))
    except ValueError:
        return 0


@dataclass
class StudyIndex:
    """Columns over row positions 0..n-1; ``pos_of_sid`` maps a store row id to its position."""

    version: str
    sids: np.ndarray
    nct_nums: np.ndarray  # the 8 digits of each NCT id, as int32 (ids are validated NCT + 8 digits)
    pos_of_sid: np.ndarray
    vocab: dict[str, list[str]]  # dimension -> code -> value
    codes: dict[str, np.ndarray]  # single-valued dimensions: status, study_type, sex, funder_type
    phase_bits: np.ndarray
    age_bits: np.ndarray
    itype_bits: np.ndarray
    has_results: np.ndarray
    healthy: np.ndarray  # -1 unknown, 0 no, 1 yes
    min_age: np.ndarray
    max_age: np.ndarray
    dates: dict[str, np.ndarray]  # start_date, first_posted, last_update_posted as yyyymmdd ints
    enrollment: np.ndarray
    country_pos: np.ndarray
    country_code: np.ndarray
    cond_pos: np.ndarray
    cond_code: np.ndarray
    #: sites with coordinates, sorted by latitude (for radius searches by binary search + numpy)
    loc_lat: np.ndarray
    loc_lon: np.ndarray
    loc_pos: np.ndarray
    loc_lid: np.ndarray
    loc_recruiting: np.ndarray
    #: in a :meth:`subset`, the full index's row positions of rows 0..k-1 (sorted); ``pos_of_sid`` is
    #: then the full index's map, shared rather than rebuilt for every query
    base_rows: np.ndarray | None = None
    #: False in a subset made without the country and condition pairs (nothing may then read them)
    has_pairs: bool = True

    @property
    def size(self) -> int:
        return len(self.sids)

    def nct_id(self, pos: int) -> str:
        return f"NCT{int(self.nct_nums[pos]):08d}"

    def subset(self, rows: np.ndarray, *, pairs: bool = True) -> StudyIndex:
        """The index restricted to row positions ``rows`` (renumbered 0..len(rows)-1).

        Why: a text query usually matches a small part of the registry; filtering, faceting and sorting
        arrays of that size instead of 600,000 rows is what keeps such searches in a few milliseconds.
        ``pairs=False`` skips the country and condition pairs (a third of the cost) when neither a
        country filter nor facets will read them.
        """
        rows = np.sort(rows)
        ranks = np.arange(len(rows))

        def pair_rows(pos: np.ndarray, code: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
            # pairs are sorted by position: gather each row's run by binary search (O(k log n))
            starts = np.searchsorted(pos, rows, side="left")
            lengths = np.searchsorted(pos, rows, side="right") - starts
            total = int(lengths.sum())
            if total == 0:
                return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=code.dtype)
            run_starts = np.concatenate(([0], np.cumsum(lengths)[:-1]))
            take = np.repeat(starts - run_starts, lengths) + np.arange(total)
            return np.repeat(ranks, lengths), code[take]

        keep = pairs and self.has_pairs
        cpos, ccode = pair_rows(self.country_pos, self.country_code) if keep else (
            self.country_pos[:0], self.country_code[:0])
        dpos, dcode = pair_rows(self.cond_pos, self.cond_code) if keep else (self.cond_pos[:0], self.cond_code[:0])
        base_rows = rows if self.base_rows is None else self.base_rows[rows]
        return StudyIndex(
            self.version, self.sids[rows], self.nct_nums[rows], self.pos_of_sid, self.vocab,
            {k: v[rows] for k, v in self.codes.items()}, self.phase_bits[rows], self.age_bits[rows],
            self.itype_bits[rows], self.has_results[rows], self.healthy[rows], self.min_age[rows],
            self.max_age[rows], {k: v[rows] for k, v in self.dates.items()}, self.enrollment[rows],
            cpos, ccode, dpos, dcode, self.loc_lat[:0], self.loc_lon[:0], self.loc_pos[:0], self.loc_lid[:0],
            self.loc_recruiting[:0], base_rows, keep)

    def positions(self, sids: Any) -> np.ndarray:
        """Row positions of store row ids (ids unknown to this index are dropped)."""
        arr = np.asarray(sids, dtype=np.int64)
        arr = arr[(arr >= 0) & (arr < len(self.pos_of_sid))]
        pos = self.pos_of_sid[arr]
        pos = pos[pos >= 0]
        if self.base_rows is None:
            return pos
        if len(self.base_rows) == 0:
            return pos[:0]
        at = np.minimum(np.searchsorted(self.base_rows, pos), len(self.base_rows) - 1)
        return at[self.base_rows[at] == pos]


class _Codes:
    """Maps string values to small integer codes while the index is built chunk by chunk."""

    def __init__(self) -> None:
        self.lookup: dict[str, int] = {}

    def encode(self, values: Any, dtype: Any = np.int32) -> np.ndarray:
        lookup = self.lookup
        return np.fromiter((lookup.setdefault(v or "", len(lookup)) for v in values), dtype=dtype,
                           count=len(values))

    def sorted_vocab(self, *arrays: np.ndarray) -> tuple[list[str], list[np.ndarray]]:
        """Vocabulary in sorted order and the arrays recoded to it (codes then sort like the values)."""
        vocab = sorted(self.lookup, key=lambda v: v)
        new_code = np.zeros(len(self.lookup), dtype=np.int64)
        for i, v in enumerate(vocab):
            new_code[self.lookup[v]] = i
        return vocab, [new_code[a].astype(a.dtype) for a in arrays]


def build_index(chunks: Any, version: str) -> StudyIndex:
    """Build the arrays from the store's column chunks (see :meth:`study_arrays`), keeping memory low.

    ``chunks`` yields ``(kind, rows)``: kind ``studies`` rows are tuples in :data:`STUDY_COLUMNS`
    order, ``itypes`` rows ``(sid, "DRUG BIOLOGICAL")``, ``countries``/``conditions`` rows
    ``(sid, value)``, ``sites`` rows ``(lid, sid, lat, lon, is_recruiting)``.
    """
    parts: dict[str, list[np.ndarray]] = {}
    codes = {dim: _Codes() for dim in ("status", "study_type", "sex", "funder_type", "country", "condition")}
    itype_codes = _Codes()
    itype_rows: list[tuple[int, str]] = []

    def add(key: str, arr: np.ndarray) -> None:
        parts.setdefault(key, []).append(arr)

    for kind, rows in chunks:
        if not rows:
            continue
        if kind == "studies":
            cols = list(zip(*rows, strict=True))
            c = dict(zip(STUDY_COLUMNS, cols, strict=True))
            add("sid", np.asarray(c["sid"], dtype=np.int64))
            add("nct", np.fromiter((int(x[3:]) for x in c["nct_id"]), dtype=np.int32, count=len(rows)))
            for dim, col in (("status", "overall_status"), ("study_type", "study_type"), ("sex", "sex"),
                             ("funder_type", "lead_class")):
                add(dim, codes[dim].encode(c[col], np.int16))
            add("phase", np.fromiter((sum(PHASE_BITS.get(p, 0) for p in (v or "").split()) for v in c["phases"]),
                                     dtype=np.int16, count=len(rows)))
            add("age", np.fromiter((sum(AGE_BITS.get(p, 0) for p in (v or "").split()) for v in c["std_ages"]),
                                   dtype=np.int16, count=len(rows)))
            add("has_results", np.asarray(c["has_results"], dtype=bool))
            add("healthy", np.fromiter((-1 if h is None else int(h) for h in c["healthy_volunteers"]),
                                       dtype=np.int8, count=len(rows)))
            add("min_age", np.asarray([np.nan if a is None else a for a in c["min_age"]], dtype=np.float32))
            add("max_age", np.asarray([np.nan if a is None else a for a in c["max_age"]], dtype=np.float32))
            for col in ("start_date", "first_posted", "last_update_posted"):
                add(col, np.fromiter((_date_int(d) for d in c[col]), dtype=np.int32, count=len(rows)))
            add("enrollment", np.asarray([-1 if e is None else e for e in c["enrollment"]], dtype=np.int64))
        elif kind == "itypes":
            for sid, types in rows:
                for t in set((types or "").split()):
                    itype_codes.lookup.setdefault(t, len(itype_codes.lookup))
                itype_rows.append((sid, types or ""))
        elif kind in ("countries", "conditions"):
            dim = "country" if kind == "countries" else "condition"
            add(f"{dim}_sid", np.asarray([r[0] for r in rows], dtype=np.int64))
            add(f"{dim}_code", codes[dim].encode([r[1] for r in rows]))
        elif kind == "sites":
            add("loc_lid", np.asarray([r[0] for r in rows], dtype=np.int64))
            add("loc_sid", np.asarray([r[1] for r in rows], dtype=np.int64))
            add("loc_lat", np.asarray([r[2] for r in rows], dtype=np.float64))
            add("loc_lon", np.asarray([r[3] for r in rows], dtype=np.float64))
            add("loc_rec", np.asarray([bool(r[4]) for r in rows], dtype=bool))

    def cat(key: str, dtype: Any) -> np.ndarray:
        return np.concatenate(parts[key]) if key in parts else np.zeros(0, dtype=dtype)

    sids = cat("sid", np.int64)
    n = len(sids)
    pos_of_sid = np.full(int(sids.max()) + 1 if n else 1, -1, dtype=np.int64)
    pos_of_sid[sids] = np.arange(n)
    vocab: dict[str, list[str]] = {}
    single: dict[str, np.ndarray] = {}
    for dim in ("status", "study_type", "sex", "funder_type"):
        vocab[dim], (single[dim],) = codes[dim].sorted_vocab(cat(dim, np.int16))
    itypes = sorted(itype_codes.lookup)
    vocab["intervention_type"] = itypes
    ibit = {t: 1 << i for i, t in enumerate(itypes)}
    itype_bits = np.zeros(n, dtype=np.int64)
    for sid, types in itype_rows:
        if 0 <= sid < len(pos_of_sid) and pos_of_sid[sid] >= 0:
            itype_bits[pos_of_sid[sid]] = sum(ibit[t] for t in set(types.split()))
    pairs: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    for dim in ("country", "condition"):
        vocab[dim], (code,) = codes[dim].sorted_vocab(cat(f"{dim}_code", np.int32))
        pos = pos_of_sid[cat(f"{dim}_sid", np.int64)] if n else np.zeros(0, dtype=np.int64)
        by_pos = np.argsort(pos, kind="stable")  # sorted by position, for StudyIndex.subset
        pairs[dim] = (pos[by_pos], code[by_pos])
    lat = cat("loc_lat", np.float64)
    order = np.argsort(lat, kind="stable")
    loc_sid = cat("loc_sid", np.int64)
    return StudyIndex(
        version, sids, cat("nct", np.int32), pos_of_sid, vocab, single, cat("phase", np.int16),
        cat("age", np.int16), itype_bits, cat("has_results", bool), cat("healthy", np.int8),
        cat("min_age", np.float32), cat("max_age", np.float32),
        {k: cat(k, np.int32) for k in ("start_date", "first_posted", "last_update_posted")},
        cat("enrollment", np.int64), pairs["country"][0], pairs["country"][1], pairs["condition"][0],
        pairs["condition"][1], lat[order], cat("loc_lon", np.float64)[order],
        pos_of_sid[loc_sid][order] if len(loc_sid) else np.zeros(0, dtype=np.int64),
        cat("loc_lid", np.int64)[order], cat("loc_rec", bool)[order])


#: The study columns :func:`build_index` reads, in order.
STUDY_COLUMNS = ("sid", "nct_id", "overall_status", "study_type", "sex", "lead_class", "phases", "std_ages",
                 "has_results", "healthy_volunteers", "min_age", "max_age", "start_date", "first_posted",
                 "last_update_posted", "enrollment")


_CACHE: dict[str, StudyIndex] = {}
_LOCK = threading.Lock()


def get_index(store: Any) -> StudyIndex:
    """The index for a store's current data, built once per process and per data version."""
    version = store.data_version()
    key = f"{store.url}"
    idx = _CACHE.get(key)
    if idx is not None and idx.version == version:
        return idx
    with _LOCK:
        idx = _CACHE.get(key)
        if idx is None or idx.version != version:
            idx = build_index(store.study_arrays(), version)
            _CACHE[key] = idx
    return idx


# -- filters ----------------------------------------------------------------------------------------

def _need_pairs(idx: StudyIndex) -> None:
    if not idx.has_pairs:
        raise RuntimeError("this index subset was made without its country and condition pairs")


def dimension_mask(idx: StudyIndex, dim: str, values: tuple[Any, ...]) -> np.ndarray | None:
    """Boolean mask over all rows for one filter dimension, or None if the index cannot express it."""
    if dim in idx.codes:
        vals = set(values)
        if dim == "sex":
            vals.add("ALL")
        wanted = [i for i, v in enumerate(idx.vocab[dim]) if v in vals]
        return np.isin(idx.codes[dim], np.asarray(wanted, dtype=np.int16))
    if dim == "phase":
        bits = sum(PHASE_BITS.get(v, 0) for v in values)
        return (idx.phase_bits & bits) != 0
    if dim == "age_group":
        bits = sum(AGE_BITS.get(v, 0) for v in values)
        return (idx.age_bits & bits) != 0
    if dim == "intervention_type":
        bits = sum(1 << i for i, t in enumerate(idx.vocab["intervention_type"]) if t in values)
        return (idx.itype_bits & bits) != 0
    if dim == "has_results":
        return idx.has_results == bool(values[0])
    if dim == "healthy":
        return idx.healthy == (1 if values[0] else 0)
    if dim == "country":
        _need_pairs(idx)
        wanted = {v.lower() for v in values}
        codes = [i for i, v in enumerate(idx.vocab["country"]) if v.lower() in wanted]
        mask = np.zeros(idx.size, dtype=bool)
        mask[idx.country_pos[np.isin(idx.country_code, np.asarray(codes, dtype=np.int32))]] = True
        return mask
    return None


def age_mask(idx: StudyIndex, age: float) -> np.ndarray:
    lo_ok = np.isnan(idx.min_age) | (idx.min_age <= age + 1e-6)
    hi_ok = np.isnan(idx.max_age) | (idx.max_age >= age - 1e-6)
    return lo_ok & hi_ok


def date_mask(idx: StudyIndex, col: str, lo: str | None, hi: str | None) -> np.ndarray:
    arr = idx.dates[col]
    mask = arr > 0
    if lo:
        mask &= arr >= _date_int(lo)
    if hi:
        mask &= arr <= _date_int(hi)
    return mask


EARTH_KM = 6371.0088


def within_radius(idx: StudyIndex, lat: float, lon: float, radius_km: float,
                  recruiting_only: bool = False) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(study positions, distance to their nearest site in km, that site's lid) for sites in the radius.

    A latitude band is cut by binary search on the sorted site latitudes, longitudes are checked with
    wrap-around at the antimeridian, then exact great-circle distances are computed for the band only.
    """
    dlat = radius_km / 111.0
    lo, hi = np.searchsorted(idx.loc_lat, [lat - dlat, lat + dlat], side="left")
    hi = np.searchsorted(idx.loc_lat, lat + dlat, side="right")
    la, lo_, pos, lid = idx.loc_lat[lo:hi], idx.loc_lon[lo:hi], idx.loc_pos[lo:hi], idx.loc_lid[lo:hi]
    keep = pos >= 0
    if recruiting_only:
        keep &= idx.loc_recruiting[lo:hi]
    coslat = max(np.cos(np.radians(lat)), 0.01)
    dlon = radius_km / (111.0 * coslat)
    if dlon < 180:
        keep &= np.abs((lo_ - lon + 540.0) % 360.0 - 180.0) <= dlon
    la, lo_, pos, lid = la[keep], lo_[keep], pos[keep], lid[keep]
    p1, p2 = np.radians(lat), np.radians(la)
    a = np.sin((p2 - p1) / 2) ** 2 + np.cos(p1) * np.cos(p2) * np.sin(np.radians(lo_ - lon) / 2) ** 2
    dist = 2 * EARTH_KM * np.arcsin(np.minimum(1.0, np.sqrt(a)))
    inside = dist <= radius_km
    dist, pos, lid = dist[inside], pos[inside], lid[inside]
    order = np.lexsort((lid, dist))
    pos_sorted = pos[order]
    uniq, first = np.unique(pos_sorted, return_index=True)
    return uniq, dist[order][first], lid[order][first]


# -- facets -----------------------------------------------------------------------------------------

def facet_counts(idx: StudyIndex, dim: str, rows: np.ndarray, top: int = 20) -> list[tuple[str, int]]:
    """Counts of one dimension's values over a set of row positions (a boolean mask)."""
    if dim in idx.codes:
        counts = np.bincount(idx.codes[dim][rows], minlength=len(idx.vocab[dim]))
        out = [(idx.vocab[dim][i], int(c)) for i, c in enumerate(counts) if c and idx.vocab[dim][i]]
    elif dim in ("phase", "age_group"):
        bits_arr = idx.phase_bits if dim == "phase" else idx.age_bits
        table = PHASE_BITS if dim == "phase" else AGE_BITS
        sub = bits_arr[rows]
        out = [(name, int(np.count_nonzero(sub & bit))) for name, bit in table.items()]
        out = [x for x in out if x[1]]
    elif dim == "intervention_type":
        sub = idx.itype_bits[rows]
        out = [(t, int(np.count_nonzero(sub & (1 << i)))) for i, t in enumerate(idx.vocab[dim])]
        out = [x for x in out if x[1] and x[0]]
    elif dim in ("country", "condition"):
        _need_pairs(idx)
        pos, code = (idx.country_pos, idx.country_code) if dim == "country" else (idx.cond_pos, idx.cond_code)
        sel = rows[pos]
        counts = np.bincount(code[sel], minlength=len(idx.vocab[dim]))
        k = min(top, int(np.count_nonzero(counts)))
        if k == 0:
            return []
        best = np.argpartition(-counts, k - 1)[:k]
        out = [(idx.vocab[dim][i], int(counts[i])) for i in best if counts[i]]
    else:
        return []
    return sorted(out, key=lambda x: (-x[1], x[0]))
