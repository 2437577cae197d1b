"""Ingestion on real SQLite files: formats, upserts, rejections, summaries."""

from __future__ import annotations

import copy
import io
import json
import random
import tarfile
import zipfile
from pathlib import Path

import orjson
import pytest

from trialfinder.cli import main
from trialfinder.ingest import ingest, sample_path
from trialfinder.store import open_store

DATA = Path(__file__).parent / "data"


def _ref() -> dict:
    return json.loads((DATA / "NCT05631717.json").read_text())


def _with_date(rec: dict, date: str) -> dict:
    rec = copy.deepcopy(rec)
    rec["protocolSection"].setdefault("statusModule", {})["lastUpdatePostDateStruct"] = {"date": date}
    return rec


def test_sample_ingests_completely_and_reingest_is_unchanged(sample_db_master: Path, tmp_path: Path) -> None:
    with zipfile.ZipFile(sample_path()) as zf:
        files = [n for n in zf.namelist() if n.endswith((".json", ".xml"))]
    # NCT02513394 is in the sample twice, as API v2 JSON and as legacy XML: one study
    distinct = {Path(n).stem for n in files}
    assert len(distinct) == len(files) - 1
    with open_store(sample_db_master) as store:
        assert store.count() == len(distinct)
        assert store.get("NCT05631717") is not None
        stats = store.stats()
    assert stats["with_coordinates"] > 700
    assert stats["with_derived_coordinates"] > 100  # legacy XML sites geocoded offline
    db = tmp_path / "again.sqlite"
    with open_store(db) as store:
        first = ingest(store, [sample_path()])
        second = ingest(store, [sample_path()])
    assert first.counts.added == len(distinct) and first.counts.rejected == 0
    assert first.counts.total == len(files)
    assert (second.counts.added, second.counts.updated, second.counts.rejected) == (0, 0, 0)
    assert second.counts.unchanged + second.counts.older == len(files)


def test_json_formats_single_page_array_ndjson(tmp_path: Path) -> None:
    ref = _ref()
    other = copy.deepcopy(ref)
    other["protocolSection"]["identificationModule"]["nctId"] = "NCT00000001"
    third = copy.deepcopy(ref)
    third["protocolSection"]["identificationModule"]["nctId"] = "NCT00000002"
    fourth = copy.deepcopy(ref)
    fourth["protocolSection"]["identificationModule"]["nctId"] = "NCT00000003"
    (tmp_path / "single.json").write_bytes(orjson.dumps(ref))
    (tmp_path / "page.json").write_bytes(orjson.dumps({"studies": [other], "nextPageToken": "abc"}))
    (tmp_path / "array.json").write_bytes(orjson.dumps([third]))
    (tmp_path / "lines.ndjson").write_bytes(orjson.dumps(fourth) + b"\n\n")
    with open_store(tmp_path / "db.sqlite") as store:
        result = ingest(store, [tmp_path])
        assert result.counts.added == 4 and result.counts.rejected == 0
        assert {r["protocolSection"]["identificationModule"]["nctId"] for r in store.iter_records()} == {
            "NCT05631717", "NCT00000001", "NCT00000002", "NCT00000003"}


def test_bulk_zip_layout_with_folders(tmp_path: Path) -> None:
    ref = _ref()
    zpath = tmp_path / "ctg-studies.json.zip"
    with zipfile.ZipFile(zpath, "w") as zf:
        zf.writestr("ctg-studies.json/NCT05631717.json", orjson.dumps(ref))
    with open_store(tmp_path / "db.sqlite") as store:
        assert ingest(store, [zpath]).counts.added == 1


def test_upsert_newer_replaces_same_is_noop_older_ignored(tmp_path: Path) -> None:
    base = _with_date(_ref(), "2024-01-10")
    newer = _with_date(_ref(), "2024-06-01")
    newer["protocolSection"]["identificationModule"]["briefTitle"] = "Newer title"
    older = _with_date(_ref(), "2023-01-01")
    older["protocolSection"]["identificationModule"]["briefTitle"] = "Older title"
    paths = {}
    for name, rec in (("base", base), ("newer", newer), ("older", older)):
        paths[name] = tmp_path / f"{name}.json"
        paths[name].write_bytes(orjson.dumps(rec))
    with open_store(tmp_path / "db.sqlite") as store:
        assert ingest(store, [paths["base"]]).counts.added == 1
        assert ingest(store, [paths["base"]]).counts.unchanged == 1
        assert ingest(store, [paths["newer"]]).counts.updated == 1
        assert store.get("NCT05631717")["protocolSection"]["identificationModule"]["briefTitle"] == "Newer title"
        r = ingest(store, [paths["older"]])
        assert r.counts.older == 1 and r.counts.updated == 0
        assert store.get("NCT05631717")["protocolSection"]["identificationModule"]["briefTitle"] == "Newer title"
        assert store.count() == 1
        # children were replaced, not duplicated
        n = store.conn.execute("SELECT count(*) FROM conditions WHERE kind = 'condition'").fetchone()[0]
        assert n == 2


def test_unknown_fields_are_kept_and_record_round_trips(tmp_path: Path) -> None:
    rec = _ref()
    rec["protocolSection"]["identificationModule"]["futureField"] = {"x": [1, 2]}
    rec["someNewSection"] = {"a": "b"}
    (tmp_path / "r.json").write_bytes(orjson.dumps(rec))
    with open_store(tmp_path / "db.sqlite") as store:
        ingest(store, [tmp_path / "r.json"])
        assert store.get("NCT05631717") == rec


def _bad_inputs(tmp_path: Path) -> Path:
    good = _ref()
    d = tmp_path / "in"
    d.mkdir()
    (d / "a_good.json").write_bytes(orjson.dumps(good))
    (d / "b_badjson.json").write_bytes(b'{"protocolSection": {')
    bad_id = copy.deepcopy(good)
    bad_id["protocolSection"]["identificationModule"]["nctId"] = "NCT123"
    (d / "c_badid.json").write_bytes(orjson.dumps(bad_id))
    no_id = copy.deepcopy(good)
    del no_id["protocolSection"]["identificationModule"]["nctId"]
    (d / "d_noid.json").write_bytes(orjson.dumps(no_id))
    wrong_type = copy.deepcopy(good)
    wrong_type["protocolSection"]["identificationModule"]["nctId"] = "NCT00000011"
    wrong_type["protocolSection"]["conditionsModule"]["conditions"] = "Lupus"
    (d / "e_wrongtype.json").write_bytes(orjson.dumps(wrong_type))
    bad_enum = copy.deepcopy(good)
    bad_enum["protocolSection"]["identificationModule"]["nctId"] = "NCT00000012"
    bad_enum["protocolSection"]["statusModule"]["overallStatus"] = "RECRUTING"
    (d / "f_badenum.json").write_bytes(orjson.dumps(bad_enum))
    (d / "g_bad.xml").write_bytes(b"<clinical_study><id_info><nct_id>NCT0000")
    # a zip with one good entry and one corrupt entry
    zpath = d / "h_archive.zip"
    ok2 = copy.deepcopy(good)
    ok2["protocolSection"]["identificationModule"]["nctId"] = "NCT00000013"
    with zipfile.ZipFile(zpath, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("studies/NCT00000013.json", orjson.dumps(ok2))
        zf.writestr("studies/NCT00000014.json", orjson.dumps(ok2).replace(b"00000013", b"00000014") * 3)
    raw = bytearray(zpath.read_bytes())
    # corrupt the compressed bytes of the second entry (CRC / inflate error)
    with zipfile.ZipFile(zpath) as zf:
        info = zf.getinfo("studies/NCT00000014.json")
    start = info.header_offset + 30 + len(info.filename) + 10
    for i in range(start, start + 20):
        raw[i] ^= 0xFF
    zpath.write_bytes(bytes(raw))
    # a truncated tar.gz
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tf:
        for i in range(15, 40):
            rec = copy.deepcopy(good)
            rec["protocolSection"]["identificationModule"]["nctId"] = f"NCT000000{i:02d}"
            rec["padding"] = random.Random(i).randbytes(3000).hex()  # incompressible, so members spread out
            data = orjson.dumps(rec)
            ti = tarfile.TarInfo(f"NCT000000{i:02d}.json")
            ti.size = len(data)
            tf.addfile(ti, io.BytesIO(data))
    (d / "i_truncated.tar.gz").write_bytes(buf.getvalue()[: len(buf.getvalue()) // 2])
    return d


def test_bad_input_is_rejected_with_file_entry_id_and_reason(tmp_path: Path) -> None:
    d = _bad_inputs(tmp_path)
    errors = io.BytesIO()
    with open_store(tmp_path / "db.sqlite") as store:
        result = ingest(store, [d], errors=errors)
        stored = {r["protocolSection"]["identificationModule"]["nctId"] for r in store.iter_records()}
    lines = [orjson.loads(x) for x in errors.getvalue().splitlines()]
    assert len(lines) == result.counts.rejected
    by_file = {Path(x["file"]).name: x for x in lines}
    assert "invalid JSON" in by_file["b_badjson.json"]["reason"]
    assert by_file["c_badid.json"]["nct_id"] == "NCT123" and "invalid NCT id" in by_file["c_badid.json"]["reason"]
    assert "missing" in by_file["d_noid.json"]["reason"] and "nctId" in by_file["d_noid.json"]["reason"]
    assert by_file["e_wrongtype.json"]["nct_id"] == "NCT00000011"
    assert "conditions: expected a list" in by_file["e_wrongtype.json"]["reason"]
    assert "unknown Status value 'RECRUTING'" in by_file["f_badenum.json"]["reason"]
    assert "g_bad.xml" in by_file
    zip_rej = [x for x in lines if x["file"].endswith("h_archive.zip")]
    assert zip_rej and zip_rej[0]["entry"] == "studies/NCT00000014.json"
    assert "corrupt archive entry" in zip_rej[0]["reason"]
    tar_rej = [x for x in lines if x["file"].endswith("i_truncated.tar.gz")]
    assert tar_rej and ("corrupt" in tar_rej[0]["reason"] or "truncated" in tar_rej[0]["reason"])
    # the good records went on and were stored
    assert {"NCT05631717", "NCT00000013"} <= stored
    assert any(s.startswith("NCT000000") and s not in ("NCT00000013",) for s in stored)  # early tar members
    assert not {"NCT00000011", "NCT00000012", "NCT00000014"} & stored


def test_cli_ingest_summary_errors_file_show_and_stats(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    d = _bad_inputs(tmp_path)
    db = tmp_path / "cli.sqlite"
    err = tmp_path / "errors.jsonl"
    assert main(["ingest", str(d), "--db", str(db), "--errors", str(err)]) == 0
    out = capsys.readouterr()
    summary = out.out.strip().splitlines()[-1]
    assert summary.startswith("added ") and "updated 0" in summary and "rejected " in summary
    assert len(err.read_text().splitlines()) >= 7
    assert main(["show", "NCT05631717", "--db", str(db), "--json"]) == 0
    assert json.loads(capsys.readouterr().out) == _ref()
    assert main(["show", "NCT05631717", "--db", str(db)]) == 0
    text = capsys.readouterr().out
    assert "Lupus Nephritis" in text and "Phase 3" in text
    assert main(["show", "NCT09999999", "--db", str(db)]) == 1
    assert "not found" in capsys.readouterr().err
    assert main(["stats", "--db", str(db), "--json"]) == 0
    stats = json.loads(capsys.readouterr().out)
    assert stats["studies"] >= 3 and stats["last_ingest"]["rejected"] >= 7


def test_db_from_environment_variable(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                      capsys: pytest.CaptureFixture) -> None:
    (tmp_path / "r.json").write_bytes(orjson.dumps(_ref()))
    monkeypatch.setenv("TRIALFINDER_DB", str(tmp_path / "env.sqlite"))
    assert main(["ingest", str(tmp_path / "r.json")]) == 0
    assert (tmp_path / "env.sqlite").exists()
    capsys.readouterr()
    assert main(["stats", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["studies"] == 1


def test_missing_database_is_a_clear_error(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    assert main(["stats", "--db", str(tmp_path / "nope.sqlite")]) == 1
    assert "no database at" in capsys.readouterr().err


def test_record_sizes_are_the_json_sizes_also_for_rows_stored_before_the_column(tmp_path: Path) -> None:
    """``/stats/size`` reads sizes kept at ingest: compressed zip members and plain JSON alike."""
    ref = _ref()
    other = copy.deepcopy(ref)
    other["protocolSection"]["identificationModule"]["nctId"] = "NCT00000009"
    zpath = tmp_path / "ctg-studies.json.zip"
    with zipfile.ZipFile(zpath, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("NCT05631717.json", orjson.dumps(ref))
    (tmp_path / "one.json").write_bytes(orjson.dumps(other))
    db = tmp_path / "s.sqlite"
    with open_store(db) as store:
        ingest(store, [zpath, tmp_path / "one.json"], workers=1)
        expected = {"NCT05631717": len(orjson.dumps(ref)), "NCT00000009": len(orjson.dumps(other))}
        assert dict(store.record_sizes()) == expected
        # a row from before the column existed has no size: it is measured from the record itself
        store.conn.execute("UPDATE studies SET record_size = NULL")
        assert dict(store.record_sizes()) == expected


def test_same_version_different_records_keep_the_fuller_in_any_order(tmp_path: Path) -> None:
    """API pages fetched with ``fields`` carry no last-update date: the outcome must not depend on order."""
    full = _ref()
    full["protocolSection"].get("statusModule", {}).pop("lastUpdatePostDateStruct", None)
    partial = {"protocolSection": {"identificationModule": copy.deepcopy(
        full["protocolSection"]["identificationModule"])}}
    (tmp_path / "full.json").write_bytes(orjson.dumps(full))
    (tmp_path / "page.json").write_bytes(orjson.dumps({"studies": [partial]}))
    results = []
    for order in (["full.json", "page.json"], ["page.json", "full.json"]):
        db = tmp_path / f"{order[0]}.sqlite"
        with open_store(db) as store:
            ingest(store, [tmp_path / n for n in order])
            again = ingest(store, [tmp_path / n for n in order])
            assert (again.counts.added, again.counts.updated) == (0, 0)
            results.append(store.get("NCT05631717"))
    assert results[0] == results[1] == full
