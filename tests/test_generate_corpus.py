"""The benchmark corpus generator must be deterministic and emit valid, ingestible v2 studies.

Benchmarks compare runs across machines and commits, so "same seed -> same bytes" is a contract, not a
nicety. The generator reads the small seed set in ``tests/data/corpus-seed`` (real records copied from
the 2024 sample) so this test never touches shared data outside the repo.
"""

from __future__ import annotations

import hashlib
import subprocess
import sys
import zipfile
from pathlib import Path

import orjson

from trialfinder.model.study import normalize

ROOT = Path(__file__).resolve().parent.parent
SCRIPT = ROOT / "benchmarks" / "generate_corpus.py"
SEED_DIR = Path(__file__).parent / "data" / "corpus-seed"


def _generate(out: Path, *extra: str, count: int = 50, seed: int = 7) -> dict:
    cmd = [sys.executable, str(SCRIPT), "--source", str(SEED_DIR), "--count", str(count),
           "--seed", str(seed), "--out", str(out), *extra]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=120, check=False)
    assert proc.returncode == 0, proc.stderr
    return orjson.loads(proc.stdout)


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _zip_studies(path: Path) -> list[tuple[str, dict]]:
    with zipfile.ZipFile(path) as zf:
        assert zf.testzip() is None
        return [(name, orjson.loads(zf.read(name))) for name in zf.namelist()]


def test_zip_is_deterministic_and_valid(tmp_path: Path) -> None:
    a, b = tmp_path / "a.zip", tmp_path / "b.zip"
    summary = _generate(a)
    _generate(b)
    assert _sha256(a) == _sha256(b)
    assert summary["studies"] == 50

    studies = _zip_studies(a)
    assert len(studies) == 50
    ids = [s["protocolSection"]["identificationModule"]["nctId"] for _, s in studies]
    assert len(set(ids)) == 50
    seed_ids = {p.stem for p in SEED_DIR.glob("*.json")}
    geocoded = 0
    for name, study in studies:
        ps = study["protocolSection"]
        nct = ps["identificationModule"]["nctId"]
        assert name == f"{nct}.json"
        assert nct.startswith("NCT9") and nct not in seed_ids
        assert ps["identificationModule"]["briefTitle"]
        sm = ps["statusModule"]
        assert sm["overallStatus"]
        assert sm["lastUpdatePostDateStruct"]["date"] <= "2025-06-30"
        assert sm["studyFirstSubmitDate"] <= sm["studyFirstPostDateStruct"]["date"]
        assert ps["designModule"]["studyType"] in ("INTERVENTIONAL", "OBSERVATIONAL")
        assert ps["conditionsModule"]["conditions"]
        assert ps["eligibilityModule"]["eligibilityCriteria"]
        assert isinstance(study["hasResults"], bool)
        assert study["hasResults"] == ("resultsSection" in study)
        for loc in ps.get("contactsLocationsModule", {}).get("locations", []):
            geo = loc.get("geoPoint")  # real sites occasionally lack one; the seed set keeps such a site
            if geo is not None:
                assert -90 <= geo["lat"] <= 90 and -180 <= geo["lon"] <= 180
                geocoded += 1
        normalize(study)  # the app's own validator accepts every generated record
    assert geocoded >= 40  # geographic search needs real coordinates on most sites


def test_seed_changes_output(tmp_path: Path) -> None:
    a, b = tmp_path / "a.zip", tmp_path / "b.zip"
    _generate(a, seed=1)
    _generate(b, seed=2)
    assert _sha256(a) != _sha256(b)


def test_ndjson_matches_zip(tmp_path: Path) -> None:
    z, n = tmp_path / "c.zip", tmp_path / "c.ndjson"
    _generate(z)
    _generate(n, "--format", "ndjson")
    lines = n.read_bytes().splitlines()
    assert [orjson.loads(line) for line in lines] == [s for _, s in _zip_studies(z)]


def test_folders_layout_stored(tmp_path: Path) -> None:
    out = tmp_path / "f.zip"
    _generate(out, "--layout", "folders", "--compression", "stored", count=3)
    names = [name for name, _ in _zip_studies(out)]
    assert names == [f"NCT9000xxxx/NCT9000000{i}.json" for i in range(3)]


def test_output_independent_of_workers(tmp_path: Path) -> None:
    """More than one 1,000-study chunk, so the multi-process path is really exercised."""
    a, b = tmp_path / "w1.zip", tmp_path / "w2.zip"
    _generate(a, "--workers", "1", count=2100)
    _generate(b, "--workers", "2", count=2100)
    assert _sha256(a) == _sha256(b)
