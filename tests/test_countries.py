"""One name per country: legacy spellings are mapped when a record is normalised; old names still filter."""

from __future__ import annotations

import copy
import json
from pathlib import Path

from fastapi.testclient import TestClient

from trialfinder.ingest import ingest
from trialfinder.model.countries import canonical_country, spellings
from trialfinder.store import open_store
from trialfinder.web import Settings, create_app

DATA = Path(__file__).parent / "data"


def test_spellings_map_to_one_name() -> None:
    assert canonical_country("Russian Federation") == canonical_country("Russia") == "Russia"
    assert canonical_country("Turkey") == canonical_country("Türkiye") == "Türkiye"
    assert canonical_country("Korea, Republic of") == "South Korea"
    assert canonical_country("Czech Republic") == "Czechia"
    assert canonical_country("France") == "France"
    assert set(spellings("Russian Federation")) == {"Russia", "Russian Federation"}


def test_facets_locations_and_filters_agree(tmp_path: Path) -> None:
    ref = json.loads((DATA / "NCT05631717.json").read_text(encoding="utf-8"))
    docs = []
    for i, country in enumerate(("Russian Federation", "Russia", "Turkey", "Türkiye")):
        rec = copy.deepcopy(ref)
        rec["protocolSection"]["identificationModule"]["nctId"] = f"NCT0999998{i}"
        rec["protocolSection"]["contactsLocationsModule"]["locations"] = [
            {"facility": f"Hospital {i}", "city": "Moscow" if i < 2 else "Ankara", "country": country}]
        docs.append(rec)
    (tmp_path / "c.json").write_text(json.dumps(docs), encoding="utf-8")
    db = tmp_path / "c.sqlite"
    with open_store(db) as store:
        assert ingest(store, [tmp_path / "c.json"]).counts.added == 4
        assert dict(store.location_counts(None, None)) == {"Russia": 2, "Türkiye": 2}
    with TestClient(create_app(Settings(db=str(db), auto_load_sample=False, warm_up=False))) as c:
        page = c.get("/locations.json").json()
        assert {r["name"] for r in page["counts"]} == {"Russia", "Türkiye"}
        facets = c.get("/search.json", params={"cond": "lupus"}).json()["facets"]["country"]
        assert {f["value"] for f in facets} == {"Russia", "Türkiye"}
        for name in ("Russia", "Russian Federation"):  # the old spelling still filters
            assert c.get("/search.json", params={"country": name}).json()["totalCount"] == 2, name
