"""The full-text result cache: same answers as without it, invalidated by new data, bounded in bytes."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import numpy as np
import pytest

from trialfinder.ingest import ingest
from trialfinder.search import from_api_params
from trialfinder.search.engine import search
from trialfinder.store import open_store
from trialfinder.store.sqlite_exec import TEXT_CACHE, TextCache

DATA = Path(__file__).parent / "data"


@pytest.fixture(autouse=True)
def fresh_cache():
    TEXT_CACHE.clear()
    old = TEXT_CACHE.max_bytes
    yield
    TEXT_CACHE.max_bytes = old
    TEXT_CACHE.clear()


def _page(store, **params):
    page = search(store, from_api_params({"countTotal": "true", "pageSize": "50", **params}))
    return [(h.nct_id, round(h.score, 9)) for h in page.hits], page.total_count


def test_cached_and_uncached_results_are_identical(sample_db_master: Path) -> None:
    queries = [{"query.cond": "lupus nephritis"}, {"query.cond": "breast cancer", "aggFilters": "phase:2"},
               {"query.term": "diabetes", "sort": "LastUpdatePostDate:desc"}, {"query.intr": "pembrolizumab"}]
    with open_store(sample_db_master, readonly=True) as store:
        TEXT_CACHE.max_bytes = 0
        cold = [_page(store, **q) for q in queries]
        assert not TEXT_CACHE._entries  # off means nothing is kept
        TEXT_CACHE.max_bytes = 64 << 20
        first = [_page(store, **q) for q in queries]
        filled = len(TEXT_CACHE._entries)
        again = [_page(store, **q) for q in queries]
    assert cold == first == again
    assert all(total and total > 0 for _, total in cold)
    assert filled >= len(queries)  # one entry per distinct text expression (synonyms included)
    assert len(TEXT_CACHE._entries) == filled  # the repeat ran from the cache


def test_a_cached_text_sees_studies_ingested_after_it(tmp_path: Path) -> None:
    ref = json.loads((DATA / "NCT05631717.json").read_text())
    db = tmp_path / "db.sqlite"
    (tmp_path / "a.json").write_bytes(json.dumps(ref).encode())
    with open_store(db) as store:
        ingest(store, [tmp_path / "a.json"])
        assert _page(store, **{"query.cond": "lupus nephritis"})[1] == 1
        twin = copy.deepcopy(ref)
        twin["protocolSection"]["identificationModule"]["nctId"] = "NCT00000042"
        (tmp_path / "b.json").write_bytes(json.dumps(twin).encode())
        ingest(store, [tmp_path / "b.json"])
        hits, total = _page(store, **{"query.cond": "lupus nephritis"})
    assert total == 2 and {h[0] for h in hits} == {"NCT05631717", "NCT00000042"}


def test_cache_is_bounded_in_bytes_and_drops_the_least_recent() -> None:
    cache = TextCache(max_bytes=3 * 800)
    entry = (np.zeros(50, dtype=np.int64), np.zeros(50, dtype=np.float64))  # 800 bytes
    for i in range(3):
        cache.put(("db", "v1", f"q{i}"), entry)
    assert cache.get(("db", "v1", "q0")) is not None  # q0 is now the most recent
    cache.put(("db", "v1", "q3"), entry)
    assert cache.get(("db", "v1", "q1")) is None
    assert all(cache.get(("db", "v1", q)) is not None for q in ("q0", "q2", "q3"))
    big = (np.zeros(500, dtype=np.int64), np.zeros(500, dtype=np.float64))
    cache.put(("db", "v1", "big"), big)  # larger than the whole cache: not kept, nothing evicted
    assert cache.get(("db", "v1", "big")) is None and cache.get(("db", "v1", "q3")) is not None


def test_bad_cache_size_setting_is_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TRIALFINDER_TEXT_CACHE_MB", "lots")
    with pytest.raises(ValueError, match="TRIALFINDER_TEXT_CACHE_MB must be a number of megabytes, not 'lots'"):
        _ = TextCache().max_bytes

