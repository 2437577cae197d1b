"""The in-memory site grid: a radius search finds exactly the sites a brute-force scan finds,
also across the date line and near the poles, where the bounding box of the circle wraps."""

from __future__ import annotations

import time

import numpy as np

from trialfinder.search.geo import Sites, _grid_key, haversine


def make_sites(rng: np.random.Generator, n: int) -> Sites:
    lat = np.concatenate([rng.uniform(-90, 90, n), rng.uniform(85, 90, n // 10), rng.uniform(-90, -85, n // 10)])
    lon = np.concatenate([rng.uniform(-180, 180, n), rng.uniform(-180, 180, n // 5)])
    lon[:50] = 180.0
    lon[50:100] = -180.0
    nct = rng.integers(1, n // 3, len(lat))
    lid = np.arange(len(lat))
    key = _grid_key(np.floor(lat).astype(np.int64), np.floor(lon).astype(np.int64))
    o = np.argsort(key, kind="stable")
    return Sites(1, key[o], lat[o], lon[o], nct[o], lid[o], (lid % 2 == 0)[o], time.monotonic())


def test_radius_equals_brute_force_everywhere() -> None:
    rng = np.random.default_rng(7)
    sites = make_sites(rng, 20_000)
    centres = [(0.0, 179.9, 500.0), (10.0, -179.5, 300.0), (89.5, 20.0, 200.0), (-88.0, -170.0, 800.0),
               (45.0, 7.0, 80.0), (60.0, 179.0, 2500.0), (0.0, 0.0, 20_000.0)]
    centres += [(float(rng.uniform(-90, 90)), float(rng.uniform(-180, 180)), float(rng.uniform(1, 3000)))
                for _ in range(40)]
    for lat, lon, r in centres:
        for rec in (False, True):
            got, dist, _lid = sites.within(lat, lon, r, rec)
            d = haversine(lat, lon, sites.lat, sites.lon)
            keep = (d <= r) & (sites.recruiting if rec else True)
            want = np.unique(sites.nct[keep])
            assert np.array_equal(got, want), (lat, lon, r, rec)
            if len(want):
                nearest = {int(n): float(d[keep][sites.nct[keep] == n].min()) for n in want[:20]}
                for n, dd in zip(got[:20], dist[:20], strict=True):
                    assert abs(nearest[int(n)] - float(dd)) < 1e-9


def _cells_cover_exactly(sites: Sites, lat: float, lon: float, r: float) -> tuple[int, int]:
    """Check that the cells of :meth:`Sites.cover` hold only sites within ``r`` and that cells + rest
    are exactly the studies in the circle; return (cell terms, leftover studies)."""
    from trialfinder.index.schema import geo_cells

    uniq, _d, _l, terms, rest = sites.cover(lat, lon, r)
    d = haversine(lat, lon, sites.lat, sites.lon)
    site_terms = [set(geo_cells(float(a), float(b))) for a, b in zip(sites.lat, sites.lon, strict=True)]
    wanted = set(terms)
    in_cells = {int(n) for n, ts in zip(sites.nct, site_terms, strict=True) if ts & wanted}
    for dist, ts in zip(d, site_terms, strict=True):
        if ts & wanted:
            assert dist <= r, (lat, lon, r, dist)  # a whole cell never holds a site outside the circle
    assert in_cells | {int(n) for n in rest} == {int(n) for n in uniq}
    return len(terms), len(rest)


def test_city_circle_is_said_in_fine_cells() -> None:
    """Sites cluster at town coordinates: a 25-mile circle around a city holds no whole half-degree
    cell, but the finer levels cover the city's sites whole, so few studies are left to list by key."""
    rng = np.random.default_rng(3)
    city = (39.9075, 116.3972)
    lat = np.concatenate([np.full(3000, city[0]), rng.uniform(39.3, 40.5, 300)])
    lon = np.concatenate([np.full(3000, city[1]), rng.uniform(115.7, 117.1, 300)])
    nct = np.arange(1, len(lat) + 1)
    key = _grid_key(np.floor(lat).astype(np.int64), np.floor(lon).astype(np.int64))
    o = np.argsort(key, kind="stable")
    sites = Sites(1, key[o], lat[o], lon[o], nct[o], np.arange(len(lat))[o], np.ones(len(lat), bool), time.monotonic())
    n_terms, n_rest = _cells_cover_exactly(sites, city[0], city[1], 40.0)
    assert n_terms >= 1
    assert n_rest < 300  # every one of the 3,000 city-centre studies is covered by a cell
    for la, lo, r in ((city[0] + 0.3, city[1] - 0.2, 15.0), (city[0], city[1], 150.0), (city[0], city[1], 1.0)):
        _cells_cover_exactly(sites, la, lo, r)


def test_sites_after_a_write_are_patched_to_what_a_full_load_gives(sample_db, tmp_path) -> None:
    """A write moves one study's site and gives another a new one: the patched arrays equal a full
    load of the new data, and a radius search around the new site finds its study."""
    import json

    import trialfinder
    from trialfinder.search import from_api_params
    from trialfinder.search.geo import load_sites, sites_for

    def rows(s: Sites) -> list[tuple]:
        assert np.all(np.diff(s.key) >= 0)  # still sorted by grid cell
        return sorted(zip(s.lid.tolist(), s.nct.tolist(), s.lat.tolist(), s.lon.tolist(), s.recruiting.tolist(),
                          strict=True))

    with trialfinder.open_store(sample_db) as store:
        before = sites_for(store, store.data_seq())
        assert len(before.nct) > 100
        sited = [r for r in store.iter_records()
                 if (r["protocolSection"].get("contactsLocationsModule", {}).get("locations") or [{}])[0]
                 .get("geoPoint")][:2]
        moved, grown = sited
        loc = moved["protocolSection"]["contactsLocationsModule"]["locations"][0]
        loc["geoPoint"] = {"lat": -54.8019, "lon": -68.3030}  # Ushuaia: no other site near
        loc["city"], loc["country"] = "Ushuaia", "Argentina"
        new_site = {"facility": "Hospital Regional", "city": "Longyearbyen", "country": "Norway",
                    "status": "RECRUITING", "geoPoint": {"lat": 78.2232, "lon": 15.6267}}
        grown["protocolSection"]["contactsLocationsModule"]["locations"].append(new_site)
        for rec in (moved, grown):
            rec["protocolSection"]["statusModule"]["lastUpdatePostDateStruct"] = {"date": "2031-01-01"}
        path = tmp_path / "changed.json"
        path.write_text(json.dumps([moved, grown]))
        trialfinder.ingest(store, [path])
        seq = store.data_seq()
        patched = sites_for(store, seq)
        assert patched is not before and patched.seq == seq
        assert rows(patched) == rows(load_sites(store, seq))
        for lat, lon, rec in ((-54.8019, -68.3030, moved), (78.2232, 15.6267, grown)):
            page = trialfinder.search(store, from_api_params({"filter.geo": f"distance({lat},{lon},20mi)"}))
            assert [h.nct_id for h in page.hits] == [rec["protocolSection"]["identificationModule"]["nctId"]]


def test_a_bulk_write_reads_all_sites_again_at_most_every_refresh(sample_db, tmp_path, monkeypatch) -> None:
    """More changed studies than PATCH_MAX: the sites are read again whole, but not more often than
    every REFRESH_S while the writes go on (until then the loaded ones answer)."""
    import json

    import trialfinder
    from trialfinder.search import geo

    with trialfinder.open_store(sample_db) as store:
        before = geo.sites_for(store, store.data_seq())
        rec = next(r for r in store.iter_records()
                   if (r["protocolSection"].get("contactsLocationsModule", {}).get("locations") or [{}])[0]
                   .get("geoPoint"))
        rec["protocolSection"]["statusModule"]["lastUpdatePostDateStruct"] = {"date": "2031-01-01"}
        rec["protocolSection"]["contactsLocationsModule"]["locations"][0]["geoPoint"] = {"lat": 1.0, "lon": 2.0}
        (tmp_path / "one.json").write_text(json.dumps(rec))
        trialfinder.ingest(store, [tmp_path / "one.json"])
        monkeypatch.setattr(geo, "PATCH_MAX", 0)  # one changed study is already "too many"
        seq = store.data_seq()
        assert geo.sites_for(store, seq) is before  # loaded less than REFRESH_S ago: kept for now
        monkeypatch.setattr(geo, "REFRESH_S", 0.0)
        reloaded = geo.sites_for(store, seq)
        assert reloaded.seq == seq and 1.0 in reloaded.lat.tolist()
        assert len(reloaded.nct) == len(geo.load_sites(store, seq).nct)
