"""The versioned vocabularies and their validating loader."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from trialfinder.eligibility.vocab import VOCAB_FILES, VocabError, load_vocab, validate_vocab_file

PACKAGED = Path(__file__).resolve().parents[1] / "src" / "trialfinder" / "eligibility" / "data"


def test_packaged_vocab_loads_with_versions() -> None:
    v = load_vocab()
    assert set(v.versions) == set(VOCAB_FILES)
    assert all(ver.count(".") == 2 for ver in v.versions.values())
    assert "cues@" in v.version()
    assert v.analyte_names["egfr"] == "egfr"
    assert "calcium_channel_blocker" in v.drug_members["amlodipine"]
    assert "hypertension" in v.synonym_index["htn"]
    assert "bipolar_disorder" in v.class_members("axis_i_disorder")
    assert load_vocab() is load_vocab()  # cached


def test_every_packaged_file_has_a_version() -> None:
    for name in VOCAB_FILES:
        data = json.loads((PACKAGED / name).read_text())
        assert isinstance(data["version"], str)


def _copy(tmp_path: Path) -> Path:
    for name in VOCAB_FILES:
        shutil.copy(PACKAGED / name, tmp_path / name)
    return tmp_path


def test_directory_override(tmp_path: Path) -> None:
    d = _copy(tmp_path)
    data = json.loads((d / "drugs.json").read_text())
    data["classes"]["test_class"] = {"names": ["widgets"], "members": ["widgetol"]}
    (d / "drugs.json").write_text(json.dumps(data))
    v = load_vocab(d)
    assert v.drug_members["widgetol"] == {"test_class"}


@pytest.mark.parametrize(
    ("name", "mutate", "message"),
    [
        ("cues.json", lambda d: d.pop("version"), "version"),
        ("cues.json", lambda d: d.update(version="one"), "version"),
        ("cues.json", lambda d: d.update(negation_pre="no"), "negation_pre"),
        ("cues.json", lambda d: d["comparators"].update({"!=": ["not"]}), "comparator"),
        ("units.json", lambda d: d["analytes"]["egfr"].update(unit="furlongs"), "unit"),
        ("units.json", lambda d: d["analytes"]["egfr"].update(normal=[5, 1]), "low is greater"),
        ("units.json", lambda d: d["analytes"]["hemoglobin"]["convert"].update({"g/l": "ten"}), "factor"),
        ("units.json", lambda d: d["qualitative"]["fever"].update(analyte="nope"), "analyte"),
        ("drugs.json", lambda d: d["classes"]["statin"].update(members=[]), "empty"),
        ("conditions.json", lambda d: d["classes"].update(x=["not_a_concept"]), "not a concept"),
    ],
)
def test_validation_errors(name: str, mutate, message: str) -> None:  # type: ignore[no-untyped-def]
    data = json.loads((PACKAGED / name).read_text())
    mutate(data)
    with pytest.raises(VocabError, match=message):
        validate_vocab_file(name, data)


def test_unreadable_files(tmp_path: Path) -> None:
    with pytest.raises(VocabError, match="cannot read"):
        load_vocab(tmp_path)
    d = _copy(tmp_path)
    (d / "units.json").write_text("{not json")
    with pytest.raises(VocabError, match="not valid JSON"):
        load_vocab(d)
    with pytest.raises(VocabError, match="not a known"):
        validate_vocab_file("other.json", {})
