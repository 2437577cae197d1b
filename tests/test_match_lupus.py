"""The lupus nephritis patient of the matching issue, end to end: pre-screen and /match.

She is 34, on a stable dose of mycophenolate, has class IV lupus nephritis, eGFR 68 and is HIV negative;
the reference study NCT05631717 (recruiting) was written for patients like her. The sample database
holds that study among ~1,900 others (many cancer trials, many closed).
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from trialfinder.eligibility import prescreen
from trialfinder.matching import eligibility_adapter as elig
from trialfinder.matching.match import OPEN_STATUSES, MatchError, match, resolve_statuses
from trialfinder.matching.relevance import IndexStats, build_query, search_text
from trialfinder.store import open_store

STUDY = json.loads((Path(__file__).parent / "data" / "NCT05631717.json").read_text())
NOTE = ("34-year-old woman with biopsy-proven class IV lupus nephritis, on a stable dose of mycophenolate "
        "mofetil for 6 months. eGFR 68 mL/min/1.73m2. HIV negative. No prior rituximab. Uses an IUD.")
CANCER = ("cancer", "carcinoma", "tumor", "tumour", "lymphoma", "leukemia", "glioma", "neoplasm", "malignan")


@pytest.fixture(scope="module")
def store(sample_db_master: Path):
    with open_store(sample_db_master, readonly=True) as s:
        yield s


def _answers(**extra: str) -> dict:
    """Her answers: the disease, age, and "no" to every exclusion rule but the mycophenolate one."""
    out: dict = {"disease": "yes", "age": 34, "sex": "female"}
    for q in elig.questions(STUDY):
        if q["id"].startswith("rule:exc"):
            out[q["id"]] = "no"
        if q["id"].startswith("rule:inc"):
            out[q["id"]] = "yes"
    out.update(extra)
    return out


def _mmf_rule() -> str:
    return next(q["id"] for q in elig.questions(STUDY)
                if q["id"].startswith("rule:") and "mycophenolate" in q.get("criterion", ""))


# ------------------------------------------------------------------------------------ the pre-screen


def test_one_question_per_rule_with_qualifiers() -> None:
    qs = elig.questions(STUDY)
    assert qs[0]["id"] == "disease" and "Lupus Nephritis" in qs[0]["text"]
    rules = [q for q in qs if q["id"].startswith("rule:")]
    ritux = [q for q in rules if "rituximab" in q["criterion"]]
    mmf = [q for q in rules if "mycophenolate" in q["criterion"]]
    # rituximab and an unstable mycophenolate dose are different rules of one bullet: separate questions
    assert len(ritux) == 1 and len(mmf) == 1 and ritux[0]["id"] != mmf[0]["id"]
    assert "24 weeks" in ritux[0]["criterion"] and "unstable" in mmf[0]["criterion"]
    assert any(q.get("followupOf") == mmf[0]["id"] and "stable" in q["text"] for q in qs)
    assert any("severe and uncontrolled" in q["criterion"] for q in rules)
    assert any("except for excised or cured basal cell" in q["criterion"] for q in rules)


def test_stable_mycophenolate_is_not_excluded() -> None:
    rule = _mmf_rule()
    stable = elig.check_answers(STUDY, _answers(**{rule: "yes", rule.replace("rule:", "stable:"): "yes"}))
    assert stable.verdict != elig.INELIGIBLE, [(c.label, c.text[:50]) for c in stable.criteria]
    unstable = elig.check_answers(STUDY, _answers(**{rule: "yes", rule.replace("rule:", "stable:"): "no"}))
    assert unstable.verdict == elig.INELIGIBLE
    reason = " ".join(c.explanation for c in unstable.deciding)
    assert "This would exclude you because you said yes to" in reason and "mycophenolate" in reason


def test_unasked_criteria_are_to_discuss_never_passed() -> None:
    v = elig.check_answers(STUDY, {"disease": "yes", "age": 34})
    assert v.verdict == elig.POSSIBLY
    open_points = [c for c in v.criteria if c.label == "unknown"]
    assert open_points and all("discuss with the study team" in c.explanation for c in open_points)
    assert not any(c.label == "met" and c.kind == "exclusion" for c in v.criteria)
    age = next(c for c in v.criteria if c.text.startswith("Age"))
    assert age.explanation == "You said you are 34."  # the value as entered, in a sentence
    no_disease = elig.check_answers(STUDY, {"disease": "no"})
    assert no_disease.verdict == elig.INELIGIBLE


def test_headlines_are_sentences() -> None:
    assert prescreen.headline("eligible").startswith("You may qualify")
    assert "not include you" in prescreen.headline("ineligible")


def test_check_page_speaks_plainly(sample_db_master: Path) -> None:
    from trialfinder.web.app import create_app
    from trialfinder.web.settings import Settings

    app = create_app(Settings(db=str(sample_db_master), auto_load_sample=False))
    with TestClient(app) as c:
        form = c.get("/study/NCT05631717/eligibility")
        assert "Have you been diagnosed with Lupus Nephritis" in form.text
        rule = _mmf_rule()
        data = {"q_" + k.replace(":", "_").replace(".", "_"): str(v) for k, v in
                _answers(**{rule: "yes", rule.replace("rule:", "stable:"): "yes"}).items()}
        r = c.post("/study/NCT05631717/eligibility", data=data)
        verdict = r.text.split('id="verdict"')[1].split("</section>")[0]
        assert "You may qualify" in verdict and "Excludes you" not in verdict
        # NLP diagnostics never reach the person
        assert "no mention of" not in r.text and "is negated in the note" not in r.text


# ---------------------------------------------------------------------------------------- /match


def test_search_words_leave_out_measurements_results_and_stages(store) -> None:
    text = search_text(NOTE).lower()
    assert "egfr" not in text and "hiv" not in text and " iv " not in f" {text} " and "rituximab" not in text
    assert "lupus nephritis" in " ".join(text.split())
    assert "egfr" in search_text("EGFR-mutant lung adenocarcinoma").lower()  # a gene named as such stays
    assert "triple negative" in search_text("triple negative breast cancer").lower()
    q = build_query(IndexStats(store), NOTE)
    words = {t.word for t in q.terms}
    assert {"egfr", "hiv", "iv", "rituximab"}.isdisjoint(words)
    assert ("lupus", "nephriti") in q.bigrams  # index stems


def test_match_lists_open_studies_first_and_no_cancer_trials(store) -> None:
    result = match(store, NOTE, limit=20)
    ids = [h.nct_id for h in result.hits]
    assert "NCT05631717" in ids[:3]
    assert all(h.status in OPEN_STATUSES for h in result.hits)
    for h in result.hits:
        about = (h.title + " " + " ".join(h.conditions)).lower()
        assert not any(w in about for w in CANCER), (h.nct_id, h.title)
    assert set(result.statuses) == set(OPEN_STATUSES)


def test_web_match_page_for_her(sample_db_master: Path) -> None:
    from trialfinder.web.app import create_app
    from trialfinder.web.settings import Settings

    app = create_app(Settings(db=str(sample_db_master), auto_load_sample=False))
    with TestClient(app) as c:
        page = c.get("/match")
        assert 'name="status"' in page.text and 'value="all"' in page.text
        r = c.post("/match", data={"note": NOTE, "dist": "50mi"})
        assert r.status_code == 200 and "NCT05631717" in r.text
        hits = r.text.split('class="hits"')[1]
        assert not any(w in hits.lower().split("why:")[0] for w in ("pancreatic", "lung cancer"))
        reasons = re.findall(r'class="matched">\u2013 ([^<]*)<', r.text)
        assert reasons and not any("no mention of" in w or "patient" in w or "negated" in w for w in reasons), reasons
        every = c.post("/match", data={"note": NOTE, "dist": "50mi", "status": "all"})
        assert "Studies of every status" in every.text


def test_status_choices(store) -> None:
    assert resolve_statuses(None) == OPEN_STATUSES and resolve_statuses("open") == OPEN_STATUSES
    assert resolve_statuses("all") == ()
    assert resolve_statuses("recruiting, completed") == ("RECRUITING", "COMPLETED")
    with pytest.raises(MatchError, match="unknown status"):
        resolve_statuses("FINISHED")
    done = match(store, "lupus", status=["COMPLETED"], limit=5)
    assert done.hits and all(h.status == "COMPLETED" for h in done.hits)
    assert match(store, "lupus", recruiting=False, limit=3).statuses == ()


def test_facts_she_wrote_are_used(store) -> None:
    """The stable mycophenolate dose, "no prior rituximab", the IUD and her age decide their criteria."""
    result = match(store, NOTE, limit=20)
    hit = next(h for h in result.hits if h.nct_id == "NCT05631717")
    crit = hit.to_dict(all_criteria=True)["criteria"]

    def label(words: str) -> str:
        return next(c["label"] for c in crit if words in c["text"])

    assert label("rituximab") == "met"  # the exclusion does not apply: no rituximab, MMF dose stable
    assert label("effective contraception") == "met"
    assert label("when obtaining informed consent") == "met"
    assert "at a stable dose" in next(c["explanation"] for c in crit if "rituximab" in c["text"])
