"""Web eligibility pages and JSON endpoints on the real sample database (FastAPI TestClient)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from trialfinder.web.eligibility import install, router

NOTE = ("Patient is a 45-year-old man with a history of anaplastic astrocytoma of the spine, s/p radiation "
        "and temozolomide. He denies diabetes.")
STUDY = "NCT00004259"  # anaplastic astrocytoma, ages 18 and over


@pytest.fixture(scope="module")
def client(sample_db_master: Path):
    from trialfinder.web.app import create_app
    from trialfinder.web.settings import Settings

    app = create_app(Settings(db=str(sample_db_master), auto_load_sample=False))
    install(app)  # a no-op for routes the app factory already includes
    with TestClient(app) as c:
        yield c


def test_router_mounts_on_a_bare_app(sample_db_master: Path) -> None:
    from fastapi import FastAPI

    from trialfinder.store import open_store

    app = FastAPI()
    app.include_router(router)
    with open_store(sample_db_master, readonly=True) as store:
        app.state.store = store
        with TestClient(app) as c:
            r = c.post("/api/match", json={"patient": {"age": 60, "sex": "female", "conditions": ["breast cancer"]}})
            assert r.status_code == 200 and r.json()["studies"]
            assert c.get(f"/study/{STUDY}/eligibility").status_code == 200


def test_study_page_links_to_the_check(client: TestClient) -> None:
    r = client.get(f"/study/{STUDY}")
    assert r.status_code == 200
    assert f"/study/{STUDY}/eligibility" in r.text


def test_check_form_lists_questions(client: TestClient) -> None:
    r = client.get(f"/study/{STUDY}/eligibility")
    assert r.status_code == 200
    assert "Check my eligibility" in r.text and 'method="post"' in r.text
    assert 'name="q_age"' in r.text
    assert r.headers["cache-control"] == "no-store"
    as_json = client.get(f"/study/{STUDY}/eligibility.json")
    assert as_json.status_code == 200 and as_json.json()["nctId"] == STUDY
    missing = client.get("/study/NCT99999999/eligibility")
    assert missing.status_code == 404
    assert client.get("/study/BOGUS/eligibility").status_code == 404


def test_check_form_verdict(client: TestClient) -> None:
    r = client.post(f"/study/{STUDY}/eligibility", data={"q_age": "12", "q_sex": "male"})
    assert r.status_code == 200
    assert "Ineligible" in r.text and "Age" in r.text
    # answers are echoed back into the form, never stored
    assert re.search(r'name="q_age" value="12(\.0)?"', r.text)
    ok = client.post(f"/study/{STUDY}/eligibility", data={"q_age": "45"})
    assert "Ineligible" not in ok.text.split('id="verdict"')[1].split("</section>")[0] or "not met" in ok.text


def test_api_questions_and_verdict(client: TestClient) -> None:
    qs = client.get(f"/api/eligibility/{STUDY}")
    assert qs.status_code == 200
    questions = qs.json()["questions"]
    assert any(q["id"] == "age" and q["type"] == "number" for q in questions)
    r = client.post(f"/api/eligibility/{STUDY}", json={"answers": {"age": 10}})
    assert r.status_code == 200
    body = r.json()
    assert body["nctId"] == STUDY and body["verdict"] == "ineligible"
    assert any(c["text"].startswith("Age") for c in body["deciding"])
    assert r.headers["cache-control"] == "no-store"
    assert client.post(f"/api/eligibility/{STUDY}", content=b"[1]",
                       headers={"content-type": "application/json"}).status_code == 400
    assert client.post(f"/api/eligibility/{STUDY}", content=b"{bad",
                       headers={"content-type": "application/json"}).status_code == 400
    assert client.post("/api/eligibility/NCT99999999", json={}).status_code == 404


def test_match_page(client: TestClient) -> None:
    form = client.get("/match")
    assert form.status_code == 200 and "<textarea" in form.text and 'method="post"' in form.text
    r = client.post("/match", data={"note": NOTE, "near": "", "dist": "50mi", "status": "all"})
    assert r.status_code == 200
    assert "astrocytoma" in r.text.lower()
    assert "Possibly eligible" in r.text or "Eligible" in r.text or "Ineligible" in r.text
    assert r.headers["cache-control"] == "no-store"
    empty = client.post("/match", data={"note": "  "})
    assert empty.status_code == 400 and "Enter the patient" in empty.text
    bad_place = client.post("/match", data={"note": NOTE, "near": "Qqqzzz Xx", "dist": "50mi"})
    assert bad_place.status_code == 400 and "unknown place" in bad_place.text


def test_api_match(client: TestClient) -> None:
    r = client.post("/api/match", json={"patient": {"note": NOTE}, "limit": 3, "allCriteria": True, "status": "all"})
    assert r.status_code == 200
    body = r.json()
    assert len(body["studies"]) == 3 and body["patient"]["age"] == 45
    first = body["studies"][0]
    assert {"nctId", "verdict", "decidingCriteria", "criteria", "score"} <= set(first)
    near = client.post("/api/match", json={"patient": {"age": 60, "sex": "female", "conditions": ["breast cancer"]},
                                           "near": "Boston, MA", "radius": "50mi", "limit": 5})
    assert near.status_code == 200
    assert all(s["nearestSite"]["distanceMi"] <= 50.01 for s in near.json()["studies"])
    text = client.post("/api/match", content=b"woman with lupus nephritis", headers={"content-type": "text/plain"})
    assert text.status_code == 200 and text.json()["studies"]
    bare = client.post("/api/match", json={"age": 60, "sex": "female", "conditions": ["breast cancer"], "status": "all"})
    assert bare.status_code == 200 and bare.json()["patient"]["conditions"] == ["breast cancer"]


@pytest.mark.parametrize("body, message", [
    ({"patient": {}}, "no patient"),
    ({"patient": 5}, "patient must be"),
    ({"patient": "lung cancer", "limit": 0}, "limit"),
    ({"patient": "lung cancer", "near": "Boston, MA", "radius": "50"}, "unit"),
])
def test_api_match_errors(client: TestClient, body: dict, message: str) -> None:
    r = client.post("/api/match", json=body)
    assert r.status_code == 400
    assert message in r.text
