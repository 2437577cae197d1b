"""Site coordinates in memory, for radius searches, DISTANCE and the nearest site of each hit.

Why numpy arrays rather than the index: a radius search is a few binary searches on the sites sorted
by 1-degree grid cell (one run of cells per latitude row of the circle's bounding box) plus exact
great-circle distances for those candidates only (a few milliseconds over the
registry's millions of sites), and the nearest site of each study comes out of the same pass. The
arrays are loaded from the store once per process, then patched with the sites of the studies each
write changed (see :func:`sites_for`), about 40 bytes per site.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from typing import Any

import numpy as np

from trialfinder.index.schema import GEO_CELL_LEVELS, geo_cell_term

EARTH_KM = 6371.0088
#: Cell (i, j) as one integer: (i + OFF) * MUL + (j + OFF); |i| <= 90 / deg and |j| <= 180 / deg are
#: below 9,000 for the finest level (0.02 degrees).
_CELL_OFF = 16384
_CELL_MUL = 32768
#: While more than PATCH_MAX studies keep changing (a bulk ingest), read all sites at most this often.
REFRESH_S = 5.0


@dataclass
class Sites:
    seq: int
    key: np.ndarray  # 1-degree grid cell of each site (:func:`_grid_key`), sorted; the rest in its order
    lat: np.ndarray
    lon: np.ndarray
    nct: np.ndarray
    lid: np.ndarray
    recruiting: np.ndarray
    loaded_at: float

    def within(self, lat: float, lon: float, radius_km: float,
               recruiting_only: bool = False) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(NCT numbers sorted, distance of each one's nearest site in km, that site's id) in the circle."""
        uniq, dist, lid, _la, _lo, _nct = self._inside(lat, lon, radius_km, recruiting_only)
        return uniq, dist, lid

    def cover(self, lat: float, lon: float, radius_km: float
              ) -> tuple[np.ndarray, np.ndarray, np.ndarray, list[str], np.ndarray]:
        """:meth:`within`, plus the same set of studies said in fewer index terms: the ``geo_cell``
        terms of the cells wholly inside the circle (every site there is within the radius, so every
        study with a site there is in), coarse cells first, then finer ones for the sites left, and the
        NCT numbers of the studies in the circle that no whole cell covers."""
        uniq, dist, lid, la, lo, nct = self._inside(lat, lon, radius_km, False)
        if len(uniq) == 0:
            return uniq, dist, lid, [], uniq
        terms: list[str] = []
        covered: list[np.ndarray] = []
        left = np.ones(len(la), dtype=bool)  # sites not in a whole cell yet
        fr = np.array([0.0, 0.5, 1.0])
        for level, deg in enumerate(GEO_CELL_LEVELS):
            idx = np.flatnonzero(left)
            if len(idx) == 0:
                break
            ci = np.floor(la[idx] / deg).astype(np.int64)
            cj = np.floor(lo[idx] / deg).astype(np.int64)
            # one integer per cell (1-D unique and isin are an order of magnitude faster than row-wise ones)
            key = (ci + _CELL_OFF) * _CELL_MUL + (cj + _CELL_OFF)
            keys = np.unique(key)
            cells = np.stack([keys // _CELL_MUL - _CELL_OFF, keys % _CELL_MUL - _CELL_OFF], axis=1)
            # a cell is inside when its corners and edge midpoints are, with a margin for the curvature
            # of its edges between those points (4 km per degree of cell: 2 km for half-degree cells,
            # well above the bulge of a great-circle distance over half a degree)
            pts_i = (cells[:, 0:1, None] + fr[None, :, None]) * deg  # (n, 3, 1) latitudes
            pts_j = (cells[:, 1:2, None] + fr[None, None, :]) * deg  # (n, 1, 3) longitudes
            d = haversine(lat, lon, np.broadcast_to(pts_i, (len(cells), 3, 3)),
                          np.broadcast_to(pts_j, (len(cells), 3, 3)))
            inside = (d <= radius_km - 4.0 * deg).reshape(len(cells), -1).all(axis=1)
            if not inside.any():
                continue
            hit = np.isin(key, keys[inside])
            covered.append(nct[idx[hit]])
            left[idx[hit]] = False
            terms += [geo_cell_term(level, int(a), int(b)) for a, b in cells[inside]]
        if not terms:
            return uniq, dist, lid, [], uniq
        rest = np.setdiff1d(uniq, np.unique(np.concatenate(covered)), assume_unique=True)
        return uniq, dist, lid, terms, rest

    def _inside(self, lat: float, lon: float, radius_km: float, recruiting_only: bool
                ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        # candidates: the slices of the grid-sorted arrays for the 1-degree cells of the bounding box
        # (one contiguous run of keys per latitude row and longitude range), then exact distances
        dlat = radius_km / 111.0 + 1e-9
        rows = range(max(-90, int(np.floor(lat - dlat))), min(90, int(np.floor(lat + dlat))) + 1)
        polar = min(90.0, abs(lat) + dlat)
        coslat = np.cos(np.radians(polar))
        dlon = radius_km / (111.0 * coslat) + 1e-9 if coslat > 1e-6 else 360.0
        if dlon >= 180.0:
            spans = [(-180, 180)]
        else:
            a, b = int(np.floor(lon - dlon)), int(np.floor(lon + dlon))
            if a < -180:
                spans = [(a + 360, 180), (-180, b)]
            elif b >= 180:
                spans = [(a, 180), (-180, b - 360)]
            else:
                spans = [(a, b)]
        lows, highs = [], []
        for r in rows:
            for a, b in spans:
                lows.append(_grid_key(r, a))
                highs.append(_grid_key(r, b))
        starts = np.searchsorted(self.key, np.asarray(lows, dtype=np.int64), side="left")
        ends = np.searchsorted(self.key, np.asarray(highs, dtype=np.int64), side="right")
        idx = np.concatenate([np.arange(i, j) for i, j in zip(starts, ends, strict=True) if j > i] or
                             [np.zeros(0, dtype=np.int64)])
        if recruiting_only:
            idx = idx[self.recruiting[idx]]
        la, lo_, nct, lid = self.lat[idx], self.lon[idx], self.nct[idx], self.lid[idx]
        dist = haversine(lat, lon, la, lo_)
        inside = dist <= radius_km
        dist, nct, lid, la, lo_ = dist[inside], nct[inside], lid[inside], la[inside], lo_[inside]
        order = np.lexsort((lid, dist))
        nct_sorted = nct[order]
        uniq, first = np.unique(nct_sorted, return_index=True)
        return uniq, dist[order][first], lid[order][first], la, lo_, nct

    def nearest(self, ncts: list[int], lat: float, lon: float) -> dict[int, tuple[float, int]]:
        """Nearest site (distance km, location id) of each given study, wherever it is."""
        wanted = np.asarray(sorted(set(ncts)), dtype=np.int64)
        if len(wanted) == 0 or len(self.nct) == 0:
            return {}
        mask = np.isin(self.nct, wanted)
        dist = haversine(lat, lon, self.lat[mask], self.lon[mask])
        nct, lid = self.nct[mask], self.lid[mask]
        out: dict[int, tuple[float, int]] = {}
        for i in np.lexsort((lid, dist)):
            out.setdefault(int(nct[i]), (float(dist[i]), int(lid[i])))
        return out


def haversine(lat: float, lon: float, la: np.ndarray, lo: np.ndarray) -> np.ndarray:
    p1, p2 = np.radians(lat), np.radians(la)
    a = np.sin((p2 - p1) / 2) ** 2 + np.cos(p1) * np.cos(p2) * np.sin(np.radians(lo - lon) / 2) ** 2
    return 2 * EARTH_KM * np.arcsin(np.minimum(1.0, np.sqrt(a)))


_CACHE: dict[str, Sites] = {}
_LOCK = threading.Lock()


#: At most this many studies changed since the sites were loaded are patched in (milliseconds); more
#: and every site is read again (seconds at registry size: 4.6 s for 1.5 million sites on SQLite).
PATCH_MAX = 20_000


def sites_for(store: Any, seq: int) -> Sites:
    """The sites of a store's data at (about) sequence ``seq``.

    After a write (a sync, an ingest batch) the sites of the studies it changed are patched into the
    arrays, so the first radius search after it does not read every site again inside its request
    budget (which, on PostgreSQL at registry size, ran past the budget and answered 503).
    """
    key = str(store.index_path())
    s = _CACHE.get(key)
    if s is not None and s.seq == seq:
        return s
    with _LOCK:
        s = _CACHE.get(key)
        if s is not None and s.seq == seq:
            return s
        patched = _patched(store, s, seq) if s is not None and s.seq > 0 else None
        if patched is None and s is not None and s.seq > 0 and time.monotonic() - s.loaded_at < REFRESH_S:
            return s  # a bulk write is under way: read every site again at most every REFRESH_S
        s = _CACHE[key] = patched if patched is not None else load_sites(store, seq)
    return s


def _patched(store: Any, old: Sites, seq: int) -> Sites | None:
    """``old`` with the sites of the studies written after it replaced from the store, or None when
    too many changed (then a full load is cheaper)."""
    changed = store.studies_changed_after(old.seq, PATCH_MAX)
    if changed is None:
        return None
    new = _columns(store.site_points(after_seq=old.seq))
    keep = ~np.isin(old.nct, np.asarray(changed, dtype=np.int64))
    cols = {"key": old.key[keep], "lat": old.lat[keep], "lon": old.lon[keep], "nct": old.nct[keep],
            "lid": old.lid[keep], "rec": old.recruiting[keep]}
    order = np.argsort(new["key"], kind="stable")
    at = np.searchsorted(cols["key"], new["key"][order], side="right")
    merged = {k: np.insert(v, at, new[k][order]) for k, v in cols.items()}
    return Sites(seq, merged["key"], merged["lat"], merged["lon"], merged["nct"], merged["lid"], merged["rec"],
                 time.monotonic())


def load_sites(store: Any, seq: int) -> Sites:
    c = _columns(store.site_points())
    order = np.argsort(c["key"], kind="stable")
    return Sites(seq, c["key"][order], c["lat"][order], c["lon"][order], c["nct"][order], c["lid"][order],
                 c["rec"][order], time.monotonic())


def _columns(chunks: Any) -> dict[str, np.ndarray]:
    """The site columns of ``Store.site_points`` chunks as arrays, with each site's grid key."""
    parts: dict[str, list[np.ndarray]] = {k: [] for k in ("lid", "nct", "lat", "lon", "rec")}
    for lids, ncts, lats, lons, rec in chunks:
        parts["lid"].append(np.asarray(lids, dtype=np.int64))
        parts["nct"].append(np.asarray(ncts, dtype=np.int64))
        parts["lat"].append(np.asarray(lats, dtype=np.float64))
        parts["lon"].append(np.asarray(lons, dtype=np.float64))
        parts["rec"].append(np.asarray(rec, dtype=bool))

    def cat(k: str, dtype: Any) -> np.ndarray:
        return np.concatenate(parts[k]) if parts[k] else np.zeros(0, dtype=dtype)

    lat, lon = cat("lat", np.float64), cat("lon", np.float64)
    key = _grid_key(np.floor(lat).astype(np.int64), np.floor(lon).astype(np.int64))
    return {"key": key, "lat": lat, "lon": lon, "nct": cat("nct", np.int64), "lid": cat("lid", np.int64),
            "rec": cat("rec", bool)}


def _grid_key(row: Any, col: Any) -> Any:
    """The 1-degree cell of (floor(lat), floor(lon)) as one sortable integer; a latitude row's cells are
    consecutive in longitude order, so a longitude range of a row is one run of keys."""
    return (np.clip(row, -90, 90) + 90) * 362 + (np.clip(col, -180, 180) + 180)
